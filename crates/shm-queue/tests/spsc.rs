//! `SpscQueue` across processes: order and content over many wraps of the ring, and a dead
//! process's half re-attached by another.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share};
use shm_queue::{AttachError, GetError, Side, SpscQueue, TryGetError};
use test_support::{
    Watchdog, child_builder, iterations, signal_parent, test_name, wait_parent_line,
};

/// Sequence number and a payload whose length varies, so records wrap at every offset.
type Message = (u64, Vec<u8>);

fn payload(seq: u64) -> Vec<u8> {
    vec![seq as u8; (seq % 61) as usize]
}

#[test]
fn order_and_content_survive_the_trip() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = SpscQueue::<Message>::builder()
        .capacity(32)
        .max_message_size(80)
        .create_anonymous()
        .unwrap();
    let count = iterations(100_000) as u64;
    let mut producer = child_builder(&test_name!(), "producer")
        .env(QUEUE_ENV, share(&q))
        .spawn(move || {
            let q: SpscQueue<Message> = from_env(QUEUE_ENV);
            let mut tx = q.producer().unwrap();
            for seq in 0..count {
                tx.put((seq, payload(seq))).unwrap();
            }
            tx.close();
        });
    let mut rx = q.consumer().unwrap();
    for seq in 0..count {
        assert_eq!(rx.get(), Ok((seq, payload(seq))));
    }
    assert_eq!(rx.get(), Err(GetError::Closed));
    producer.wait_success(WAIT);
}

#[test]
fn dead_producer_half_is_reattached() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = SpscQueue::<Message>::builder()
        .capacity(8)
        .max_message_size(80)
        .create_anonymous()
        .unwrap();
    let mut rx = q.consumer().unwrap();
    let mut victim = child_builder(&test_name!(), "producer")
        .park_at("shm_queue.spsc.put.written")
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: SpscQueue<Message> = from_env(QUEUE_ENV);
            let mut tx = q.producer().unwrap();
            signal_parent("attached");
            tx.put((1, payload(1))).unwrap();
            unreachable!("the fault point parks the process");
        });
    victim.wait_line("attached", WAIT).unwrap();
    victim
        .wait_parked("shm_queue.spsc.put.written", WAIT)
        .unwrap();
    // Written but not published: nothing to get, and the half is taken.
    assert_eq!(rx.try_get(), Err(TryGetError::Empty));
    match q.producer() {
        Err(AttachError::AlreadyAttached { side, owner }) => {
            assert_eq!((side, owner.pid), (Side::Producer, victim.pid()));
        }
        other => panic!("{other:?}"),
    }
    victim.kill();
    assert_eq!(victim.wait_timeout(WAIT).unwrap().signal(), Some(9));
    // The dead process's half is free; its unpublished message is gone, nothing else.
    let mut tx = q.producer().unwrap();
    for seq in 2..20 {
        tx.put((seq, payload(seq))).unwrap();
        assert_eq!(rx.get(), Ok((seq, payload(seq))));
    }
    assert!(rx.is_empty());
}

#[test]
fn dead_consumer_half_is_reattached() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = SpscQueue::<u64>::builder()
        .capacity(4)
        .create_anonymous()
        .unwrap();
    let mut tx = q.producer().unwrap();
    let mut victim = child_builder(&test_name!(), "consumer")
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: SpscQueue<u64> = from_env(QUEUE_ENV);
            let mut rx = q.consumer().unwrap();
            assert_eq!(rx.get(), Ok(1));
            signal_parent("got");
            // Hold the half until killed.
            let _ = wait_parent_line();
            unreachable!("the parent never writes");
        });
    tx.put(1).unwrap();
    tx.put(2).unwrap();
    victim.wait_line("got", WAIT).unwrap();
    match q.consumer() {
        Err(AttachError::AlreadyAttached { side, owner }) => {
            assert_eq!((side, owner.pid), (Side::Consumer, victim.pid()));
        }
        other => panic!("{other:?}"),
    }
    victim.kill();
    victim.wait_timeout(WAIT).unwrap();
    let mut rx = q.consumer().unwrap();
    assert_eq!(rx.get(), Ok(2));
    tx.put(3).unwrap();
    assert_eq!(rx.get(), Ok(3));
    assert!(matches!(
        q.consumer(),
        Err(AttachError::AlreadyAttached { .. })
    ));
}
