//! A `Lock` whose holder dies — SIGKILLed at a known or a random point, or exiting
//! normally — is reported to the next acquirer as `OwnerDied`, and works again once marked
//! consistent. Every test runs under a watchdog, so a hang fails instead of stalling.

mod common;

use std::time::{Duration, Instant};

use common::{Rng, TEST_LIMIT, WAIT, park_forever, recv, send};
use shm_lock::{AcquireError, AcquireTimeoutError, Lock, TryAcquireError, Value};
use test_support::{
    ShmLeakCheck, Watchdog, iterations, run_child, signal_parent, test_name, unique_name,
};

/// How long the next acquirer may take to learn of a dead owner (the bound).
const OWNER_DIED_WITHIN: Duration = Duration::from_secs(1);

fn expect_owner_died(lock: &Lock) {
    match lock.acquire_timeout(OWNER_DIED_WITHIN) {
        Err(AcquireTimeoutError::OwnerDied(guard)) => {
            guard.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {:?}", other.map(drop)),
    }
    // Marked consistent: the lock works normally again.
    let guard = lock
        .acquire_timeout(OWNER_DIED_WITHIN)
        .expect("lock usable after mark_consistent");
    drop(guard);
}

#[test]
fn killed_holder_is_reported_to_the_next_acquirer() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = unique_name("lock-killed");
    let leaks = ShmLeakCheck::new(&name);
    let mut child = run_child(&test_name!(), "holder", || {
        let lock: Lock = recv();
        let _guard = lock.acquire().expect("child acquires");
        signal_parent("held");
        park_forever();
    });
    let lock = Lock::create(&name).unwrap();
    send(&mut child, &lock);
    child.wait_line("held", WAIT).unwrap();
    assert!(matches!(
        lock.try_acquire(),
        Err(TryAcquireError::WouldBlock)
    ));
    child.kill();
    child.wait_timeout(WAIT).unwrap();
    expect_owner_died(&lock);
    drop(lock);
    leaks.finish();
}

#[test]
fn holder_exiting_normally_is_reported() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let mut child = run_child(&test_name!(), "leaver", || {
        let lock: Lock = recv();
        // Exits holding the lock (and still mapping it, as the guard's borrow of the handle
        // guarantees in normal code).
        std::mem::forget(lock.acquire().expect("child acquires"));
        std::process::exit(0);
    });
    let lock = Lock::new().unwrap();
    send(&mut child, &lock);
    child.wait_success(WAIT);
    expect_owner_died(&lock);
}

#[test]
fn recoverer_that_dies_too_is_reported_again() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let mut first = run_child(&name, "first", || {
        let lock: Lock = recv();
        std::mem::forget(lock.acquire().expect("first acquires"));
        signal_parent("held");
        park_forever();
    });
    let mut second = run_child(&name, "second", || {
        let lock: Lock = recv();
        match lock.acquire() {
            // Dies while recovering, before marking the lock consistent.
            Err(AcquireError::OwnerDied(guard)) => {
                std::mem::forget(guard);
                signal_parent("recovering");
                park_forever();
            }
            other => panic!("second expected OwnerDied, got {:?}", other.map(drop)),
        }
    });
    let lock = Lock::new().unwrap();
    send(&mut first, &lock);
    first.wait_line("held", WAIT).unwrap();
    first.kill();
    first.wait_timeout(WAIT).unwrap();
    send(&mut second, &lock);
    second.wait_line("recovering", WAIT).unwrap();
    second.kill();
    second.wait_timeout(WAIT).unwrap();
    expect_owner_died(&lock);
}

#[test]
fn release_without_mark_consistent_makes_the_lock_not_recoverable() {
    let lock = Lock::new().unwrap();
    // A thread that exits holding the lock is a dead owner too.
    std::thread::scope(|s| s.spawn(|| std::mem::forget(lock.acquire())).join().unwrap());
    let guard = lock
        .acquire()
        .unwrap_err()
        .into_owner_died()
        .expect("OwnerDied");
    drop(guard); // not marked consistent
    assert!(matches!(lock.acquire(), Err(AcquireError::NotRecoverable)));
    assert!(matches!(
        lock.try_acquire(),
        Err(TryAcquireError::NotRecoverable)
    ));
    let timed = lock.acquire_timeout(Duration::from_millis(10));
    assert!(
        matches!(timed, Err(AcquireTimeoutError::NotRecoverable)),
        "{:?}",
        timed.map(drop)
    );
    let message = AcquireError::<()>::NotRecoverable.to_string();
    assert!(message.contains("mark_consistent"), "{message}");
}

/// The child loops acquire / work / release and is SIGKILLed at a random moment. A shared
/// flag is 1 exactly while the child holds the lock (set after acquiring, cleared before
/// releasing): when the child died with the flag set, the next acquire must report
/// `OwnerDied`; otherwise either result is right (it may have died just after acquiring or
/// just before releasing). It must never time out or be not-recoverable.
#[test]
fn holder_killed_at_random_points_never_wedges_the_lock() {
    let _watchdog = Watchdog::new(Duration::from_secs(170));
    let name = test_name!();
    let rounds = iterations(200);
    let lock = Lock::new().unwrap();
    let flag = Value::new(0u32).unwrap();
    let counter = Value::new(0u64).unwrap();
    let mut rng = Rng::from_clock();
    let mut owner_died = 0;
    for round in 0..rounds {
        let mut child = run_child(&name, "looper", || {
            let (lock, flag, counter): (Lock, Value<u32>, Value<u64>) = recv();
            let mut signalled = false;
            loop {
                let guard = match lock.acquire() {
                    Ok(guard) => guard,
                    Err(AcquireError::OwnerDied(guard)) => {
                        guard.mark_consistent();
                        guard
                    }
                    Err(e) => panic!("child acquire failed: {e}"),
                };
                flag.store(1);
                counter.fetch_add(1);
                flag.store(0);
                drop(guard);
                if !signalled {
                    signal_parent("running");
                    signalled = true;
                }
            }
        });
        send(&mut child, &(&lock, &flag, &counter));
        child.wait_line("running", WAIT).unwrap();
        // A random kill moment (not a wait for the child: it runs regardless).
        let until = Instant::now() + Duration::from_micros(rng.below(2_000));
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        child.kill();
        child.wait_timeout(WAIT).unwrap();
        let held = flag.load() == 1;
        match lock.acquire_timeout(OWNER_DIED_WITHIN) {
            Ok(guard) => {
                assert!(
                    !held,
                    "round {round}: the child died holding the lock, but no OwnerDied"
                );
                drop(guard);
            }
            Err(AcquireTimeoutError::OwnerDied(guard)) => {
                owner_died += 1;
                flag.store(0);
                guard.mark_consistent();
            }
            Err(e) => panic!("round {round}: acquire after the kill failed: {e}"),
        }
    }
    assert!(counter.load() >= rounds as u64);
    println!("{rounds} rounds, OwnerDied reported in {owner_died}");
}

/// Regression: glibc's `pthread_mutex_trylock` on a not-recoverable robust mutex leaves
/// the lock word held by the caller, after which every acquire in every process failed
/// with `WouldDeadlock` or hung. `try_acquire` must leave it merely not recoverable.
#[test]
fn try_acquire_on_a_not_recoverable_lock_does_not_wedge_it() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let lock = Lock::new().unwrap();
    std::thread::scope(|s| s.spawn(|| std::mem::forget(lock.acquire())).join().unwrap());
    drop(
        lock.acquire()
            .unwrap_err()
            .into_owner_died()
            .expect("OwnerDied"),
    );
    for _ in 0..3 {
        assert!(matches!(
            lock.try_acquire(),
            Err(TryAcquireError::NotRecoverable)
        ));
    }
    let from_other_thread = std::thread::scope(|s| {
        s.spawn(|| matches!(lock.acquire(), Err(AcquireError::NotRecoverable)))
            .join()
            .unwrap()
    });
    assert!(from_other_thread);
    assert!(matches!(lock.acquire(), Err(AcquireError::NotRecoverable)));
}
