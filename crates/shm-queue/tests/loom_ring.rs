//! loom model of the `Queue` slot protocol on a heap-backed ring: claims, publication,
//! freeing, lap changes and hint advancing never lose, duplicate or reorder a message.
//!
//! Every thread makes a bounded number of `try_` calls (no spinning on another thread's
//! progress, which loom cannot bound); what was enqueued is then drained and checked.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-queue --release
//! --test loom_ring`.

#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shm_queue::loom_model::{HeapRing, RingClosed};

/// Every message left in `ring`, in order.
fn drain(ring: &HeapRing) -> Vec<u32> {
    std::iter::from_fn(|| ring.try_get(1)).collect()
}

/// Runs `actor` on `ring` in a thread of its own. Every actor of a model gets one: loom
/// explored a single execution of a model whose main thread raced a spawned one.
fn spawn_on<R: 'static>(
    ring: &Arc<HeapRing>,
    actor: impl FnOnce(&HeapRing) -> R + 'static,
) -> thread::JoinHandle<R> {
    let ring = Arc::clone(ring);
    thread::spawn(move || actor(&ring))
}

#[test]
fn two_producers_and_a_consumer_on_one_slot() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::new(1));

        let producers: Vec<_> = (0..2)
            .map(|p| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || ring.try_put(10 + p, 100 + p).then_some(100 + p))
            })
            .collect();
        let mut taken: Vec<u32> = (0..2).filter_map(|_| ring.try_get(1)).collect();
        let mut put: Vec<u32> = producers
            .into_iter()
            .filter_map(|p| p.join().unwrap())
            .collect();
        taken.extend(drain(&ring));
        taken.sort_unstable();
        put.sort_unstable();
        // Exactly what was enqueued came out, once; one slot holds one message at a time,
        // so the first put always succeeds.
        assert_eq!(taken, put);
        assert!(!put.is_empty());
    });
}

#[test]
fn two_consumers_take_each_message_once_in_order() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::new(2));
        assert!(ring.try_put(10, 1));
        let consumers: Vec<_> = (0..2)
            .map(|c| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || ring.try_get(20 + c))
            })
            .collect();
        // Laps: the producer reuses slots as the consumers free them.
        let second = ring.try_put(10, 2);
        let third = ring.try_put(10, 3);
        let taken: Vec<u32> = consumers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        let left = drain(&ring);
        // What is left is in order, and after everything taken from the front.
        assert!(left.windows(2).all(|w| w[0] < w[1]), "{left:?}");
        assert!(
            taken.iter().all(|t| left.iter().all(|l| t < l)),
            "{taken:?} then {left:?}"
        );
        let mut all: Vec<u32> = taken.iter().chain(&left).copied().collect();
        all.sort_unstable();
        let mut expected = vec![1];
        expected.extend(
            [second.then_some(2), third.then_some(3)]
                .into_iter()
                .flatten(),
        );
        assert_eq!(all, expected);
    });
}

#[test]
fn close_stops_puts_but_not_draining_gets() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::new(2));
        assert!(ring.try_put(10, 7));
        let closer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.close())
        };
        let late = ring.try_put(10, 8);
        closer.join().unwrap();
        assert!(!ring.try_put(10, 9));
        assert_eq!(drain(&ring), if late { vec![7, 8] } else { vec![7] });
    });
}

#[test]
fn closed_is_reported_only_after_what_was_put_before_close() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::new(2));
        let putter = spawn_on(&ring, |ring| {
            assert!(ring.try_put(10, 7));
            ring.close();
        });
        let getter = spawn_on(&ring, |ring| ring.try_get_or_closed(1));
        putter.join().unwrap();
        let first = getter.join().unwrap();
        let rest = drain(&ring);
        match first {
            // The put happened before `close`: a get that reports closed has taken it.
            Err(RingClosed) => panic!("closed reported while {rest:?} was still queued"),
            Ok(Some(value)) => assert_eq!((value, rest), (7, vec![])),
            Ok(None) => assert_eq!(rest, vec![7]),
        }
        assert_eq!(ring.try_get_or_closed(1), Err(RingClosed));
    });
}

#[test]
fn a_put_racing_close_is_either_refused_or_delivered_before_closed() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::new(2));
        let putter = spawn_on(&ring, |ring| ring.try_put(10, 7));
        let closer = spawn_on(&ring, |ring| ring.close());
        let getter = spawn_on(&ring, |ring| ring.try_get_or_closed(1));
        let put = putter.join().unwrap();
        closer.join().unwrap();
        let first = getter.join().unwrap();
        let rest = drain(&ring);
        match first {
            // A put that returned true is never left behind a reported close.
            Err(RingClosed) => assert_eq!(rest, vec![], "put: {put}"),
            Ok(Some(value)) => assert_eq!((put, value, rest), (true, 7, vec![])),
            Ok(None) => assert_eq!(rest, if put { vec![7] } else { vec![] }),
        }
        assert_eq!(ring.try_get_or_closed(1), Err(RingClosed));
    });
}

#[test]
fn puts_racing_close_are_never_left_behind_a_reported_close() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::new(2));
        let putters: Vec<_> = (0..2)
            .map(|p| {
                spawn_on(&ring, move |ring| {
                    ring.try_put(10 + p, 100 + p).then_some(100 + p)
                })
            })
            .collect();
        let closer = spawn_on(&ring, |ring| ring.close());
        let getter = spawn_on(&ring, |ring| ring.try_get_or_closed(1));
        let put: Vec<u32> = putters
            .into_iter()
            .filter_map(|p| p.join().unwrap())
            .collect();
        closer.join().unwrap();
        let first = getter.join().unwrap();
        let rest = drain(&ring);
        let mut taken: Vec<u32> = match first {
            Err(RingClosed) => {
                assert_eq!(rest, vec![], "put: {put:?}");
                vec![]
            }
            Ok(value) => value.into_iter().chain(rest).collect(),
        };
        taken.sort_unstable();
        assert_eq!(taken, put);
    });
}

#[test]
fn a_getter_lapped_while_it_looked_does_not_miss_a_later_message() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::new(1));
        // This getter may find slot 0 empty, then stall while the others go round the
        // ring: put 7, take 7, put 8 (the slot then holds a later lap), close.
        let getter = spawn_on(&ring, |ring| ring.try_get_or_closed(20));
        let others = spawn_on(&ring, |ring| {
            let mut put = Vec::new();
            put.extend(ring.try_put(10, 7).then_some(7));
            let taken = ring.try_get(11);
            put.extend(ring.try_put(10, 8).then_some(8));
            ring.close();
            (put, taken)
        });
        let (put, taken) = others.join().unwrap();
        let first = getter.join().unwrap();
        let mut all: Vec<u32> = taken.into_iter().collect();
        match first {
            Err(RingClosed) => assert_eq!(drain(&ring), vec![], "put: {put:?}"),
            Ok(value) => all.extend(value),
        }
        all.extend(drain(&ring));
        all.sort_unstable();
        assert_eq!(all, put);
    });
}
