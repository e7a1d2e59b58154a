//! loom model of the `SpscQueue` record protocol, through the real `put_record` /
//! `get_record` code: room checks against cached indices, wrap markers, publication of the
//! tail and the head, and close. Every ring access is reported to loom's race detector, so
//! a record read before it is published, or overwritten before it is released, fails.
//!
//! Every thread makes a bounded number of `try_` calls with `yield_now` between them (no
//! futex sleeps, which loom cannot run); what is left is finished and checked after the
//! threads are joined.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-queue --release
//! --test loom_spsc`.

#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::thread;
use shm_queue::spsc_loom_model::{ModelConsumer, ModelProducer, ModelSpsc, Stopped};

/// Ring bytes in every model: room for two records of [`MAX`].
const RING: usize = 64;
/// Largest payload: its record (8-byte header + payload) is half the ring.
const MAX: usize = 24;

/// Record `index`'s payload of `len` bytes, distinct per record and per byte.
fn payload(index: u8, len: usize) -> Vec<u8> {
    (0..len as u8).map(|b| index * 32 + b).collect()
}

/// Up to `tries` calls of `try_put`, yielding between them: whether it was put.
fn put_with_retries(tx: &mut ModelProducer, record: &[u8], tries: usize) -> bool {
    for _ in 0..tries {
        match tx.try_put(record) {
            Ok(()) => return true,
            Err(Stopped::Blocked) => thread::yield_now(),
            Err(Stopped::Closed) => panic!("nobody closes this queue"),
        }
    }
    false
}

/// Everything left in the queue, until it reports empty (or closed).
fn drain(rx: &mut ModelConsumer) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| rx.try_get().ok()).collect()
}

#[test]
fn variable_size_records_wrap_and_arrive_once_in_order_intact() {
    static WRAPPED_CONCURRENTLY: AtomicUsize = AtomicUsize::new(0);
    // Records of 24, 32 and 16 bytes: the third does not fit in the 8 bytes left before
    // the ring's end, so it goes behind a wrap marker at offset 0, over the first record.
    let records = [payload(1, 12), payload(2, 20), payload(3, 3)];
    loom::model(move || {
        let (mut tx, mut rx) = ModelSpsc::new(RING, 8, MAX).split();
        let producer = {
            let records = records.clone();
            thread::spawn(move || {
                let sent = records
                    .iter()
                    .take_while(|r| put_with_retries(&mut tx, r, 3))
                    .count();
                (tx, sent)
            })
        };
        let mut got = Vec::new();
        for _ in 0..4 {
            match rx.try_get() {
                Ok(record) => got.push(record),
                Err(Stopped::Blocked) => thread::yield_now(),
                Err(Stopped::Closed) => panic!("nobody closes this queue"),
            }
        }
        let (mut tx, sent) = producer.join().unwrap();
        if sent == records.len() {
            WRAPPED_CONCURRENTLY.fetch_add(1, Ordering::Relaxed);
        }
        // Finish alone: free room whenever the ring is full.
        for record in &records[sent..] {
            while tx.try_put(record).is_err() {
                got.push(rx.try_get().expect("a full ring holds a record"));
            }
        }
        got.extend(drain(&mut rx));
        assert_eq!(got, records, "every record once, in order, intact");
        assert!(tx.tail() > RING as u64, "the ring wrapped");
    });
    // Some executions sent the wrapped record while the consumer ran.
    assert!(WRAPPED_CONCURRENTLY.load(Ordering::Relaxed) > 0);
}

#[test]
fn full_ring_blocks_the_producer_until_the_consumer_frees_room() {
    static FULL_THEN_PUT: AtomicUsize = AtomicUsize::new(0);
    let (a, b, c, d) = (
        payload(1, MAX),
        payload(2, MAX),
        payload(3, 8),
        payload(4, MAX),
    );
    loom::model(move || {
        let (mut tx, mut rx) = ModelSpsc::new(RING, 8, MAX).split();
        // Two records of half the ring each: full.
        assert_eq!(tx.try_put(&a), Ok(()));
        assert_eq!(tx.try_put(&b), Ok(()));
        assert_eq!(tx.try_put(&c), Err(Stopped::Blocked));
        let consumer = thread::spawn(move || {
            let got = [rx.try_get(), rx.try_get()];
            (rx, got)
        });
        // C reuses A's bytes: it may only be written once the consumer has read them.
        let c_sent = put_with_retries(&mut tx, &c, 3);
        let (mut rx, got) = consumer.join().unwrap();
        assert_eq!(got, [Ok(a.clone()), Ok(b.clone())]);
        if c_sent {
            FULL_THEN_PUT.fetch_add(1, Ordering::Relaxed);
        } else {
            // The consumer freed the whole ring: a stale cached head must not keep the
            // producer out.
            assert_eq!(tx.try_put(&c), Ok(()), "room freed by the consumer is seen");
        }
        // D (32 bytes) fits after C (16 bytes) only if the cached head moved past B.
        assert_eq!(tx.try_put(&d), Ok(()));
        assert_eq!(drain(&mut rx), [c.clone(), d.clone()]);
    });
    assert!(FULL_THEN_PUT.load(Ordering::Relaxed) > 0);
}

#[test]
fn close_is_seen_after_the_data() {
    static CLOSED_IN_THREAD: AtomicUsize = AtomicUsize::new(0);
    let records = [payload(1, 5), payload(2, 13)];
    loom::model(move || {
        let (mut tx, mut rx) = ModelSpsc::new(RING, 8, MAX).split();
        let producer = {
            let records = records.clone();
            thread::spawn(move || {
                for record in &records {
                    assert_eq!(tx.try_put(record), Ok(()));
                }
                tx.close();
                assert_eq!(tx.try_put(&records[0]), Err(Stopped::Closed));
            })
        };
        let mut got = Vec::new();
        let mut closed = false;
        for _ in 0..4 {
            match rx.try_get() {
                Ok(record) => got.push(record),
                Err(Stopped::Blocked) => thread::yield_now(),
                Err(Stopped::Closed) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            // Closed is only reported once everything sent before `close` was taken.
            CLOSED_IN_THREAD.fetch_add(1, Ordering::Relaxed);
            assert_eq!(got, records, "closed seen before the data");
        }
        producer.join().unwrap();
        got.extend(drain(&mut rx));
        assert_eq!(got, records);
        assert_eq!(rx.try_get(), Err(Stopped::Closed));
    });
    assert!(CLOSED_IN_THREAD.load(Ordering::Relaxed) > 0);
}
