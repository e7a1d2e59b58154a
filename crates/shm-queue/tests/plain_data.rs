//! Plain data: `put_plain` writes a value's own bytes, `get_plain` copies them out (no
//! serialisation), across processes and mixed with postcard messages; the typed paths
//! refuse a plain message instead of misreading it.

mod common;

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share};
use serde::{Deserialize, Serialize};
use shm_queue::{GetError, PutError, Queue, SpscQueue, TryGetError};
use test_support::{Watchdog, child_builder, iterations, test_name};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Serialize,
    Deserialize,
    IntoBytes,
    FromBytes,
    Immutable,
    KnownLayout,
)]
#[repr(C)]
struct Sample {
    seq: u64,
    values: [f32; 6],
}

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        values: std::array::from_fn(|i| seq as f32 + i as f32 / 8.0),
    }
}

#[test]
fn plain_values_cross_processes_without_serialisation() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let count = iterations(10_000) as u64;
    let q = Queue::<Sample>::builder()
        .capacity(8)
        .max_message_size(64)
        .create_anonymous()
        .unwrap();
    let mut producer = child_builder(&test_name!(), "producer")
        .env(QUEUE_ENV, share(&q))
        .spawn(move || {
            let q: Queue<Sample> = from_env(QUEUE_ENV);
            for seq in 0..count {
                if seq % 5 == 0 {
                    q.put(sample(seq)).unwrap();
                } else {
                    q.put_plain(sample(seq)).unwrap();
                }
            }
            q.close();
        });
    // `get_plain` reads both encodings, in order, each exactly once.
    for seq in 0..count {
        assert_eq!(q.get_plain(), Ok(sample(seq)));
    }
    assert_eq!(q.get_plain(), Err(GetError::Closed));
    producer.wait_success(WAIT);
}

#[test]
fn typed_paths_refuse_plain_messages() {
    let q = Queue::<Sample>::builder()
        .capacity(4)
        .max_message_size(64)
        .create_anonymous()
        .unwrap();
    q.put_plain(sample(1)).unwrap();
    assert!(matches!(q.get(), Err(GetError::Decode(_))));
    q.put_plain(sample(2)).unwrap();
    let mut got = Vec::new();
    assert!(matches!(q.get_many(&mut got, 4), Err(GetError::Decode(_))));
    assert!(got.is_empty());
    // The bytes in the slot are the value's own.
    q.put_plain(sample(3)).unwrap();
    assert_eq!(q.get_with(|bytes| bytes == sample(3).as_bytes()), Ok(true));
    // The queue goes on.
    q.put(sample(4)).unwrap();
    assert_eq!(q.get(), Ok(sample(4)));
    assert_eq!(q.try_get_plain(), Err(TryGetError::Empty));

    let small = Queue::<[u64; 4]>::builder()
        .max_message_size(16)
        .create_anonymous()
        .unwrap();
    match small.put_plain([1, 2, 3, 4]) {
        Err(PutError::TooLarge { value, size, max }) => {
            assert_eq!((value, size, max), ([1, 2, 3, 4], 32, 16));
        }
        other => panic!("{other:?}"),
    }
    assert!(small.is_empty());
}

#[test]
fn spsc_plain_values_cross_processes_and_wrap() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let count = iterations(10_000) as u64;
    // A small ring (records of 40 bytes in 256) wraps every few messages.
    let q = SpscQueue::<Sample>::builder()
        .capacity(8)
        .max_message_size(64)
        .buffer_size(256)
        .create_anonymous()
        .unwrap();
    let mut producer = child_builder(&test_name!(), "producer")
        .env(QUEUE_ENV, share(&q))
        .spawn(move || {
            let q: SpscQueue<Sample> = from_env(QUEUE_ENV);
            let mut tx = q.producer().unwrap();
            for seq in 0..count {
                if seq % 5 == 0 {
                    tx.put(sample(seq)).unwrap();
                } else {
                    tx.put_plain(sample(seq)).unwrap();
                }
            }
            tx.close();
        });
    let mut rx = q.consumer().unwrap();
    // `get_plain` reads both kinds of record, in order, each exactly once.
    for seq in 0..count {
        assert_eq!(rx.get_plain(), Ok(sample(seq)));
    }
    assert_eq!(rx.get_plain(), Err(GetError::Closed));
    producer.wait_success(WAIT);
}

#[test]
fn spsc_typed_paths_refuse_plain_records() {
    let (mut tx, mut rx) = SpscQueue::<Sample>::builder()
        .capacity(4)
        .max_message_size(64)
        .create_anonymous()
        .unwrap()
        .split()
        .unwrap();
    tx.put_plain(sample(1)).unwrap();
    assert!(matches!(rx.get(), Err(GetError::Decode(_))));
    tx.put_plain(sample(2)).unwrap();
    let mut got = Vec::new();
    assert!(matches!(rx.get_many(&mut got, 4), Err(GetError::Decode(_))));
    assert!(got.is_empty());
    // The bytes in the record are the value's own.
    tx.put_plain(sample(3)).unwrap();
    assert_eq!(rx.get_with(|bytes| bytes == sample(3).as_bytes()), Ok(true));
    // The queue goes on.
    tx.put(sample(4)).unwrap();
    assert_eq!(rx.get(), Ok(sample(4)));
    assert_eq!(rx.try_get_plain(), Err(TryGetError::Empty));

    let (mut tx, rx) = SpscQueue::<[u64; 4]>::builder()
        .max_message_size(16)
        .create_anonymous()
        .unwrap()
        .split()
        .unwrap();
    match tx.put_plain([1, 2, 3, 4]) {
        Err(PutError::TooLarge { value, size, max }) => {
            assert_eq!((value, size, max), ([1, 2, 3, 4], 32, 16));
        }
        other => panic!("{other:?}"),
    }
    assert!(rx.is_empty());
}
