//! `put_many` / `get_many` across processes: every value exactly once and each
//! producer's order kept, with batches larger than the queue (so they wait for room
//! midway and must wake the consumers first); partial batches hand back exactly the
//! values that were not enqueued.

mod common;

use std::time::{Duration, Instant};

use common::{QUEUE_ENV, QUEUE2_ENV, WAIT, WATCHDOG, from_env, share};
use shm_queue::{
    GetError, GetTimeoutError, PutManyError, PutManyTimeoutError, Queue, SpscQueue, TryGetError,
    TryPutManyError,
};
use test_support::{Watchdog, child_builder, iterations, test_name};

/// Batch sizes cycle through 1..=17 so that batches end at every slot of the ring.
fn batch_len(i: u64) -> u64 {
    i % 17 + 1
}

#[test]
fn mpmc_batches_arrive_exactly_once_in_producer_order() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let per_producer = iterations(20_000) as u64;
    let producers = 2_u32;
    // Smaller than most batches: a batch fills the queue and waits for room midway.
    let q = Queue::<(u32, u64)>::builder()
        .capacity(8)
        .max_message_size(16)
        .create_anonymous()
        .unwrap();
    let results = Queue::<(u32, u64)>::builder()
        .capacity((per_producer * u64::from(producers)) as usize)
        .max_message_size(16)
        .create_anonymous()
        .unwrap();
    let (token, results_token) = (share(&q), share(&results));
    let name = test_name!();
    let mut children = Vec::new();
    for p in 0..producers {
        children.push(
            child_builder(&name, &format!("producer-{p}"))
                .env(QUEUE_ENV, &token)
                .spawn(move || {
                    let q: Queue<(u32, u64)> = from_env(QUEUE_ENV);
                    let (mut seq, mut i) = (0, 0);
                    while seq < per_producer {
                        let end = (seq + batch_len(i)).min(per_producer);
                        q.put_many((seq..end).map(|s| (p, s)).collect()).unwrap();
                        seq = end;
                        i += 1;
                    }
                }),
        );
    }
    let mut consumers = Vec::new();
    for c in 0..2_u64 {
        consumers.push(
            child_builder(&name, &format!("consumer-{c}"))
                .env(QUEUE_ENV, &token)
                .env(QUEUE2_ENV, &results_token)
                .spawn(move || {
                    let q: Queue<(u32, u64)> = from_env(QUEUE_ENV);
                    let results: Queue<(u32, u64)> = from_env(QUEUE2_ENV);
                    let mut last = [None::<u64>; 2];
                    let mut buf = Vec::new();
                    for i in c.. {
                        buf.clear();
                        match q.get_many(&mut buf, batch_len(i) as usize) {
                            Ok(n) => {
                                assert!(n >= 1 && n == buf.len() && n <= batch_len(i) as usize)
                            }
                            Err(GetError::Closed) => break,
                            Err(e) => panic!("{e}"),
                        }
                        for &(p, seq) in &buf {
                            // Each producer's values reach one consumer in their order.
                            let last = &mut last[p as usize];
                            assert!(last.is_none_or(|l| l < seq), "{p}: {seq} after {last:?}");
                            *last = Some(seq);
                        }
                        results.put_many(buf.clone()).unwrap();
                    }
                }),
        );
    }
    for child in &mut children {
        child.wait_success(WAIT);
    }
    // Every value is in; the consumers drain what is left, then see `Closed`.
    q.close();
    for child in &mut consumers {
        child.wait_success(WAIT);
    }
    let mut got = Vec::new();
    while let Ok(n) = results.try_get_many(&mut got, 1000) {
        assert!(n > 0);
    }
    got.sort_unstable();
    let expected: Vec<_> = (0..producers)
        .flat_map(|p| (0..per_producer).map(move |s| (p, s)))
        .collect();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "a value was lost or duplicated");
}

#[test]
fn spsc_batches_cross_processes_in_order() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let count = iterations(50_000) as u64;
    let q = SpscQueue::<(u64, Vec<u8>)>::builder()
        .capacity(16)
        .max_message_size(64)
        .create_anonymous()
        .unwrap();
    let payload = |seq: u64| vec![seq as u8; (seq % 23) as usize];
    let mut producer = child_builder(&test_name!(), "producer")
        .env(QUEUE_ENV, share(&q))
        .spawn(move || {
            let q: SpscQueue<(u64, Vec<u8>)> = from_env(QUEUE_ENV);
            let mut tx = q.producer().unwrap();
            let (mut seq, mut i) = (0, 0);
            while seq < count {
                let end = (seq + batch_len(i) * 2).min(count);
                tx.put_many((seq..end).map(|s| (s, payload(s))).collect())
                    .unwrap();
                seq = end;
                i += 1;
            }
            tx.close();
        });
    let mut rx = q.consumer().unwrap();
    let mut buf = Vec::new();
    let mut next = 0;
    for i in 0.. {
        buf.clear();
        match rx.get_many(&mut buf, batch_len(i) as usize) {
            Ok(n) => assert_eq!(n, buf.len()),
            Err(GetError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
        for (seq, bytes) in buf.drain(..) {
            assert_eq!((seq, &bytes), (next, &payload(next)));
            next += 1;
        }
    }
    assert_eq!(next, count);
    producer.wait_success(WAIT);
}

#[test]
fn partial_mpmc_batches_hand_back_the_rest() {
    let q = Queue::<u32>::builder()
        .capacity(3)
        .max_message_size(8)
        .create_anonymous()
        .unwrap();
    match q.try_put_many(vec![1, 2, 3, 4, 5]) {
        Err(TryPutManyError::Full { put, rest }) => assert_eq!((put, rest), (3, vec![4, 5])),
        other => panic!("{other:?}"),
    }
    let timeout = Duration::from_millis(5);
    let start = Instant::now();
    match q.put_many_timeout(vec![6, 7], timeout) {
        Err(PutManyTimeoutError::Timeout { put, rest }) => assert_eq!((put, rest), (0, vec![6, 7])),
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() >= timeout,
        "put_many_timeout returned early"
    );
    let mut got = Vec::new();
    assert_eq!(q.get_many(&mut got, 2), Ok(2));
    assert_eq!(q.try_get_many(&mut got, 0), Ok(0));
    assert_eq!(q.try_get_many(&mut got, 10), Ok(1));
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(q.try_get_many(&mut got, 10), Err(TryGetError::Empty));
    let start = Instant::now();
    assert_eq!(
        q.get_many_timeout(&mut got, 10, timeout),
        Err(GetTimeoutError::Timeout)
    );
    assert!(
        start.elapsed() >= timeout,
        "get_many_timeout returned early"
    );
    // Too large: nothing is written, the whole batch comes back.
    let big = Queue::<Vec<u8>>::builder()
        .capacity(4)
        .max_message_size(8)
        .create_anonymous()
        .unwrap();
    match big.put_many(vec![vec![1], vec![0; 100], vec![2]]) {
        Err(PutManyError::TooLarge {
            put, rest, index, ..
        }) => {
            assert_eq!((put, index, rest.len()), (0, 1, 3));
        }
        other => panic!("{other:?}"),
    }
    assert!(big.is_empty());
    // An empty batch is fine; a closed queue takes nothing and drains.
    q.put_many(Vec::new()).unwrap();
    q.put_many(vec![8]).unwrap();
    q.close();
    match q.put_many(vec![9, 10]) {
        Err(PutManyError::Closed { put, rest }) => assert_eq!((put, rest), (0, vec![9, 10])),
        other => panic!("{other:?}"),
    }
    got.clear();
    assert_eq!(q.get_many(&mut got, 10), Ok(1));
    assert_eq!(got, [8]);
    assert_eq!(q.get_many(&mut got, 10), Err(GetError::Closed));
}

#[test]
fn partial_spsc_batches_hand_back_the_rest() {
    let q = SpscQueue::<u32>::builder()
        .capacity(3)
        .create_anonymous()
        .unwrap();
    let (mut tx, mut rx) = q.split().unwrap();
    match tx.try_put_many(vec![1, 2, 3, 4, 5]) {
        Err(TryPutManyError::Full { put, rest }) => assert_eq!((put, rest), (3, vec![4, 5])),
        other => panic!("{other:?}"),
    }
    let timeout = Duration::from_millis(5);
    let start = Instant::now();
    let err = tx.put_many_timeout(vec![6], timeout).unwrap_err();
    assert!(matches!(err, PutManyTimeoutError::Timeout { put: 0, .. }));
    assert!(
        start.elapsed() >= timeout,
        "put_many_timeout returned early"
    );
    let mut got = Vec::new();
    assert_eq!(rx.get_many(&mut got, 2), Ok(2));
    assert_eq!(rx.try_get_many(&mut got, 10), Ok(1));
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(rx.try_get_many(&mut got, 10), Err(TryGetError::Empty));
    assert_eq!(
        rx.get_many_timeout(&mut got, 1, timeout),
        Err(GetTimeoutError::Timeout)
    );
    tx.put_many(vec![7]).unwrap();
    tx.close();
    match tx.put_many(vec![8]) {
        Err(PutManyError::Closed { put, rest }) => assert_eq!((put, rest), (0, vec![8])),
        other => panic!("{other:?}"),
    }
    got.clear();
    assert_eq!(rx.get_many(&mut got, 10), Ok(1));
    assert_eq!(got, [7]);
    assert_eq!(rx.get_many(&mut got, 10), Err(GetError::Closed));
}

#[test]
fn producer_killed_inside_put_many_loses_only_the_value_it_was_writing() {
    const POINT: &str = "shm_queue.put_many.claimed";
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<(u32, u64)>::builder()
        .capacity(4)
        .max_message_size(16)
        .create_anonymous()
        .unwrap();
    let mut victim = child_builder(&test_name!(), "victim")
        .park_at(POINT)
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: Queue<(u32, u64)> = from_env(QUEUE_ENV);
            q.put_many(vec![(9, 0), (9, 1), (9, 2)]).unwrap();
            unreachable!("the fault point parks the process");
        });
    // Parked after claiming the slot of its first value, before writing it.
    victim.wait_parked(POINT, WAIT).unwrap();
    q.put_many(vec![(0, 0), (0, 1)]).unwrap();
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    victim.kill();
    victim.wait_timeout(WAIT).unwrap();
    // The dead producer's slot is skipped; the rest of its batch was never enqueued.
    let mut got = Vec::new();
    assert_eq!(q.get_many(&mut got, 10), Ok(2));
    assert_eq!(got, [(0, 0), (0, 1)]);
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    // As good as new.
    q.try_put_many((0..4).map(|s| (1, s)).collect()).unwrap();
    got.clear();
    assert_eq!(q.try_get_many(&mut got, 10), Ok(4));
    assert_eq!(got, (0..4).map(|s| (1, s)).collect::<Vec<_>>());
}

#[test]
fn consumer_killed_inside_get_many_loses_only_the_message_it_was_reading() {
    const POINT: &str = "shm_queue.get_many.claimed";
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<u64>::builder()
        .capacity(4)
        .create_anonymous()
        .unwrap();
    let mut victim = child_builder(&test_name!(), "victim")
        .park_at(POINT)
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: Queue<u64> = from_env(QUEUE_ENV);
            let _ = q.get_many(&mut Vec::new(), 10);
            unreachable!("the fault point parks the process");
        });
    q.put_many(vec![0, 1, 2, 3]).unwrap();
    // Parked after claiming message 0, before reading it.
    victim.wait_parked(POINT, WAIT).unwrap();
    victim.kill();
    victim.wait_timeout(WAIT).unwrap();
    let mut got = Vec::new();
    assert_eq!(q.get_many(&mut got, 10), Ok(3));
    assert_eq!(got, [1, 2, 3]);
    // Producers reclaim the dead reader's slot: the whole capacity is usable again.
    q.put_many_timeout(vec![4, 5, 6, 7], WAIT).unwrap();
    got.clear();
    assert_eq!(q.get_many(&mut got, 10), Ok(4));
    assert_eq!(got, [4, 5, 6, 7]);
}

/// A value whose encoding fails hard at [`Trap::SPRUNG`], the second time it is encoded
/// in a process (`put_many` sizes every value before it writes any): `Trap(SPRUNG, Panic)`
/// panics in `Serialize`, `Trap(SPRUNG, Kill)` SIGKILLs its own process there.
#[derive(Debug, PartialEq, serde::Deserialize)]
struct Trap(u32, Spring);

#[derive(Debug, PartialEq, serde::Deserialize)]
enum Spring {
    Panic,
    Kill,
}

impl Trap {
    const SPRUNG: u32 = 0xdead;
}

impl serde::Serialize for Trap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTupleStruct;
        static SIZED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if self.0 == Self::SPRUNG && SIZED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            match self.1 {
                Spring::Panic => panic!("the trap's Serialize panics"),
                Spring::Kill => {
                    let me = rustix::process::getpid();
                    rustix::process::kill_process(me, rustix::process::Signal::KILL).unwrap();
                    unreachable!("SIGKILL cannot be caught");
                }
            }
        }
        let mut s = serializer.serialize_tuple_struct("Trap", 2)?;
        s.serialize_field(&self.0)?;
        s.serialize_field(&(self.1 == Spring::Kill))?;
        s.end()
    }
}

/// Starts a getter thread on `q` and returns once it sleeps; the thread yields what its
/// `get_timeout(WAIT)` returned and when.
fn sleeping_getter(
    q: &Queue<Trap>,
) -> std::thread::JoinHandle<(Result<Trap, GetTimeoutError>, Instant)> {
    let getter = {
        let q = q.clone();
        std::thread::spawn(move || (q.get_timeout(WAIT), Instant::now()))
    };
    common::spin_until(|| q.waiting().getters == 1);
    // Registered sleepers look once more before they sleep: let it get to the futex.
    std::thread::sleep(Duration::from_millis(50));
    getter
}

#[test]
fn a_put_many_ended_by_a_panicking_serialize_still_wakes_a_sleeping_getter() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<Trap>::builder()
        .capacity(4)
        .create_anonymous()
        .unwrap();
    let getter = sleeping_getter(&q);
    let batch = vec![Trap(1, Spring::Panic), Trap(Trap::SPRUNG, Spring::Panic)];
    let put = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.put_many(batch)));
    let unwound = Instant::now();
    assert!(put.is_err(), "the second value's Serialize panics");
    let (got, at) = getter.join().unwrap();
    assert_eq!(got, Ok(Trap(1, Spring::Panic)));
    // Woken while the panic unwound; the sleepers' own look comes only 1 s after they
    // went to sleep (some 50 ms before the batch).
    let late = at.saturating_duration_since(unwound);
    assert!(
        late < Duration::from_millis(500),
        "the getter woke {late:?} late"
    );
    // The panicking value's slot holds a tombstone, skipped by gets.
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
}

#[test]
fn a_producer_killed_inside_put_many_strands_no_sleeping_getter() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<Trap>::builder()
        .capacity(4)
        .create_anonymous()
        .unwrap();
    let getter = sleeping_getter(&q);
    let mut victim = child_builder(&test_name!(), "victim")
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: Queue<Trap> = from_env(QUEUE_ENV);
            // Publishes the first value, then dies encoding the second, before the
            // batch's one wake-up.
            let _ = q.put_many(vec![
                Trap(1, Spring::Kill),
                Trap(Trap::SPRUNG, Spring::Kill),
            ]);
            unreachable!("the second value kills the process");
        });
    victim.wait_timeout(WAIT).unwrap();
    let died = Instant::now();
    let (got, at) = getter.join().unwrap();
    assert_eq!(got, Ok(Trap(1, Spring::Kill)));
    // Found by the sleepers' periodic look (every second), not at the end of the wait.
    let late = at.saturating_duration_since(died);
    assert!(
        late < Duration::from_secs(10),
        "the getter woke {late:?} late"
    );
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
}
