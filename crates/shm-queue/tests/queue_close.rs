//! `close` while others block: three getters on an empty queue and three putters on a full
//! one, each in its own process, are all woken by a seventh process that closes both.

mod common;

use common::{QUEUE_ENV, QUEUE2_ENV, WAIT, WATCHDOG, from_env, share, spin_until};
use shm_queue::{GetError, PutError, Queue, SpscQueue, TryGetError};
use test_support::{Watchdog, child_builder, signal_parent, test_name, wait_parent_line};

#[test]
fn close_wakes_every_blocked_process() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let empty = Queue::<u32>::builder()
        .capacity(2)
        .create_anonymous()
        .unwrap();
    let full = Queue::<u32>::builder()
        .capacity(1)
        .create_anonymous()
        .unwrap();
    // Full before any putter starts.
    full.put(1).unwrap();
    let (empty_token, full_token) = (share(&empty), share(&full));
    let name = test_name!();
    let mut children = Vec::new();
    for i in 0..3 {
        children.push(
            child_builder(&name, &format!("getter-{i}"))
                .env(QUEUE_ENV, &empty_token)
                .spawn(|| {
                    let q: Queue<u32> = from_env(QUEUE_ENV);
                    assert_eq!(q.get(), Err(GetError::Closed));
                }),
        );
        children.push(
            child_builder(&name, &format!("putter-{i}"))
                .env(QUEUE_ENV, &full_token)
                .spawn(move || {
                    let q: Queue<u32> = from_env(QUEUE_ENV);
                    assert!(matches!(q.put(100 + i), Err(PutError::Closed(v)) if v == 100 + i));
                }),
        );
    }
    let mut closer = child_builder(&name, "closer")
        .env(QUEUE_ENV, &empty_token)
        .env(QUEUE2_ENV, &full_token)
        .spawn(|| {
            let empty: Queue<u32> = from_env(QUEUE_ENV);
            let full: Queue<u32> = from_env(QUEUE2_ENV);
            signal_parent("opened");
            assert_eq!(wait_parent_line(), "close");
            empty.close();
            full.close();
        });
    closer.wait_line("opened", WAIT).unwrap();
    // Every getter and putter is asleep in its blocking call.
    spin_until(|| empty.waiting().getters == 3 && full.waiting().putters == 3);
    closer.send_line("close").unwrap();
    closer.wait_success(WAIT);
    for child in &mut children {
        child.wait_success(WAIT);
    }
    // Close is sticky, and gets drain what is left first.
    assert!(matches!(
        full.try_put(5),
        Err(shm_queue::TryPutError::Closed(5))
    ));
    assert_eq!(full.get(), Ok(1));
    assert_eq!(full.get(), Err(GetError::Closed));
    assert_eq!(empty.try_get(), Err(TryGetError::Closed));
    assert_eq!(
        empty.waiting(),
        shm_queue::Waiting {
            getters: 0,
            putters: 0
        }
    );
}

#[test]
fn spsc_close_wakes_both_halves() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let empty = SpscQueue::<u32>::builder()
        .capacity(1)
        .create_anonymous()
        .unwrap();
    let full = SpscQueue::<u32>::builder()
        .capacity(1)
        .create_anonymous()
        .unwrap();
    let mut tx = full.producer().unwrap();
    tx.put(1).unwrap();
    let getter = {
        let mut rx = empty.consumer().unwrap();
        std::thread::spawn(move || rx.get())
    };
    let putter = std::thread::spawn(move || tx.put(2).map_err(PutError::into_inner));
    spin_until(|| empty.waiting().getters == 1 && full.waiting().putters == 1);
    empty.close();
    full.close();
    assert_eq!(getter.join().unwrap(), Err(GetError::Closed));
    assert_eq!(putter.join().unwrap(), Err(2));
    let mut rx = full.consumer().unwrap();
    assert_eq!(rx.get(), Ok(1));
    assert_eq!(rx.get(), Err(GetError::Closed));
}

/// A getter racing a putter that puts and then closes never sees `Closed` before the value
/// put before `close` (the empty slot it loaded may predate the put; the closed flag it
/// loads next does not). Threads of one process race exactly as processes do.
#[test]
fn closed_is_reported_only_after_the_values_put_before_close() {
    let _watchdog = Watchdog::new(WATCHDOG);
    for round in 0..2_000_u32 {
        let q = Queue::<u32>::builder()
            .capacity(4)
            .create_anonymous()
            .unwrap();
        let batch = round % 2 == 1;
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                q.put(round).unwrap();
                q.close();
            });
            if batch {
                let mut buf = Vec::new();
                match q.get_many(&mut buf, 4) {
                    Ok(_) => buf,
                    Err(e) => panic!("round {round}: get_many failed with {e:?} first"),
                }
            } else {
                match q.get() {
                    Ok(value) => vec![value],
                    Err(e) => panic!("round {round}: get failed with {e:?} first"),
                }
            }
        });
        assert_eq!(got, [round]);
        assert_eq!(q.get(), Err(GetError::Closed));
    }
}

/// Putters racing `close`: every put that returned `Ok` is taken by one of the getters
/// before both see `Closed`, and every put after the close fails (or is withdrawn) instead
/// of being stranded behind the `Closed` a getter reported.
#[test]
fn puts_racing_close_are_delivered_or_refused_never_stranded() {
    let _watchdog = Watchdog::new(WATCHDOG);
    for round in 0..3_000_u64 {
        let q = Queue::<u64>::builder()
            .capacity(2)
            .create_anonymous()
            .unwrap();
        let (mut put, got) = std::thread::scope(|s| {
            let putters: Vec<_> = (0..2_u64)
                .map(|p| {
                    let q = &q;
                    s.spawn(move || {
                        let mut put = Vec::new();
                        for i in 0.. {
                            let value = p << 32 | i;
                            match q.put(value) {
                                Ok(()) => put.push(value),
                                Err(PutError::Closed(v)) => {
                                    assert_eq!(v, value);
                                    return put;
                                }
                                Err(e) => panic!("round {round}: {e}"),
                            }
                        }
                        unreachable!()
                    })
                })
                .collect();
            // Two getters: one may be lapped while it looks at an empty slot.
            let getters: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut got = Vec::new();
                        loop {
                            match q.get() {
                                Ok(value) => got.push(value),
                                Err(GetError::Closed) => return got,
                                Err(e) => panic!("round {round}: {e}"),
                            }
                        }
                    })
                })
                .collect();
            // Close after a round-dependent number of spins, while everyone is busy.
            for _ in 0..(round * 37) % 2_000 {
                std::hint::spin_loop();
            }
            q.close();
            let put: Vec<u64> = putters
                .into_iter()
                .flat_map(|p| p.join().unwrap())
                .collect();
            let got: Vec<u64> = getters
                .into_iter()
                .flat_map(|g| g.join().unwrap())
                .collect();
            (put, got)
        });
        // Nothing left behind the close the getter saw.
        assert_eq!(q.try_get(), Err(TryGetError::Closed), "round {round}");
        let mut got = got;
        put.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, put, "round {round}");
    }
}
