//! Raw records: `put_bytes` copies bytes straight into a slot or record, `get_with` lends
//! a message's bytes in place and frees the slot when the closure returns or panics;
//! across processes for `Queue` and `SpscQueue`, mixed with typed puts and gets.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share};
use shm_queue::{GetError, PutError, Queue, SpscQueue, TryGetError, TryPutError};
use test_support::{Watchdog, child_builder, iterations, test_name};

type Message = (u64, String);

fn message(seq: u64) -> Message {
    (seq, "x".repeat((seq % 13) as usize))
}

fn encoded(seq: u64) -> Vec<u8> {
    postcard::to_allocvec(&message(seq)).unwrap()
}

#[test]
fn queue_bytes_and_values_mix_across_processes() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let count = iterations(5_000) as u64;
    let q = Queue::<Message>::builder()
        .capacity(4)
        .max_message_size(32)
        .create_anonymous()
        .unwrap();
    let mut producer = child_builder(&test_name!(), "producer")
        .env(QUEUE_ENV, share(&q))
        .spawn(move || {
            let q: Queue<Message> = from_env(QUEUE_ENV);
            for seq in 0..count {
                if seq % 3 == 0 {
                    q.put(message(seq)).unwrap();
                } else {
                    q.put_bytes(&encoded(seq)).unwrap();
                }
            }
            q.close();
        });
    for seq in 0..count {
        if seq % 2 == 0 {
            // In place: the bytes are exactly the encoding, whichever way they were put.
            assert_eq!(q.get_with(|bytes| bytes == encoded(seq)), Ok(true));
        } else {
            assert_eq!(q.get(), Ok(message(seq)));
        }
    }
    assert_eq!(q.get_with(|bytes| bytes.len()), Err(GetError::Closed));
    producer.wait_success(WAIT);
}

#[test]
fn spsc_bytes_and_values_mix_across_processes() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let count = iterations(5_000) as u64;
    let q = SpscQueue::<Message>::builder()
        .capacity(8)
        .max_message_size(32)
        .create_anonymous()
        .unwrap();
    let mut producer = child_builder(&test_name!(), "producer")
        .env(QUEUE_ENV, share(&q))
        .spawn(move || {
            let q: SpscQueue<Message> = from_env(QUEUE_ENV);
            let mut tx = q.producer().unwrap();
            for seq in 0..count {
                if seq % 3 == 0 {
                    tx.put(message(seq)).unwrap();
                } else {
                    tx.put_bytes(&encoded(seq)).unwrap();
                }
            }
            tx.close();
        });
    let mut rx = q.consumer().unwrap();
    for seq in 0..count {
        if seq % 2 == 0 {
            assert_eq!(rx.get_with(|bytes| bytes == encoded(seq)), Ok(true));
        } else {
            assert_eq!(rx.get(), Ok(message(seq)));
        }
    }
    assert_eq!(rx.get_with(|bytes| bytes.len()), Err(GetError::Closed));
    producer.wait_success(WAIT);
}

#[test]
fn a_panicking_reader_frees_the_slot() {
    let q = Queue::<u32>::builder()
        .capacity(1)
        .create_anonymous()
        .unwrap();
    q.put(1).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _ = q.get_with(|_| panic!("reader fails"));
    }));
    assert!(outcome.is_err());
    // The message is gone and its slot is free again.
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    q.try_put(2).unwrap();
    assert_eq!(q.get(), Ok(2));

    let (mut tx, mut rx) = SpscQueue::<u32>::builder()
        .capacity(1)
        .create_anonymous()
        .unwrap()
        .split()
        .unwrap();
    tx.put(1).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _ = rx.get_with(|_| panic!("reader fails"));
    }));
    assert!(outcome.is_err());
    tx.try_put(2).unwrap();
    assert_eq!(rx.get(), Ok(2));
}

#[test]
fn bad_bytes_are_refused_or_reported() {
    let q = Queue::<u32>::builder()
        .capacity(2)
        .max_message_size(4)
        .create_anonymous()
        .unwrap();
    let big = [0_u8; 5];
    match q.put_bytes(&big) {
        Err(PutError::TooLarge { value, size, max }) => {
            assert_eq!((value.len(), size, max), (5, 5, 4));
        }
        other => panic!("{other:?}"),
    }
    assert!(q.is_empty());
    // Bytes that are not a `u32`: `get` reports them and removes them.
    q.put_bytes(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    assert!(matches!(q.get(), Err(GetError::Decode(_))));
    q.put(5).unwrap();
    assert_eq!(q.get(), Ok(5));
    q.close();
    assert!(matches!(
        q.try_put_bytes(&[1]),
        Err(TryPutError::Closed(&[1]))
    ));
}
