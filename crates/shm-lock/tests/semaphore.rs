//! `Semaphore` and `BoundedSemaphore` across processes: permits bound concurrency,
//! over-release is an error, a dead holder's permit is lost (documented) without hanging
//! anyone past a time-out, and a waiter killed while blocked does not disturb the others.

mod common;

use std::time::{Duration, Instant};

use common::{TEST_LIMIT, WAIT, park_forever, recv, send};
use shm_lock::{BoundedSemaphore, Semaphore, SemaphoreReleaseError, Value, WouldBlock};
use test_support::{
    ShmLeakCheck, Watchdog, iterations, run_child, signal_parent, test_name, unique_name,
    wait_parent_line,
};

#[test]
fn bounded_semaphore_rejects_over_release_across_processes() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = unique_name("bsem");
    let leaks = ShmLeakCheck::new(&name);
    let mut child = run_child(&test_name!(), "releaser", || {
        let sem = BoundedSemaphore::open(&wait_parent_line()).unwrap();
        // The parent took one permit: one release is fine, the second is over the bound.
        assert_eq!(sem.release(), Ok(()));
        assert_eq!(
            sem.release(),
            Err(SemaphoreReleaseError::TooManyReleases { limit: 2 })
        );
        assert_eq!(sem.release_many(0), Ok(()));
    });
    let sem = BoundedSemaphore::create(&name, 2).unwrap();
    sem.acquire().forget();
    assert_eq!(sem.value(), 1);
    child.send_line(&name).unwrap();
    child.wait_success(WAIT);
    assert_eq!(sem.value(), 2);
    assert!(matches!(
        Semaphore::open(&name),
        Err(shm_segment::OpenError::KindMismatch { .. })
    ));
    drop(sem);
    leaks.finish();
}

#[test]
fn permits_bound_concurrency_across_processes() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let rounds = iterations(2_000);
    let body = move || {
        let (sem, inside, most): (Semaphore, Value<u32>, Value<u32>) = recv();
        for _ in 0..rounds {
            let permit = sem
                .acquire_timeout(WAIT)
                .expect("a permit within the limit");
            let now = inside.fetch_add(1) + 1;
            most.fetch_max(now);
            inside.fetch_sub(1);
            drop(permit);
        }
    };
    let mut children = [
        run_child(&name, "a", body),
        run_child(&name, "b", body),
        run_child(&name, "c", body),
    ];
    let sem = Semaphore::new(2).unwrap();
    let inside = Value::new(0u32).unwrap();
    let most = Value::new(0u32).unwrap();
    for child in &mut children {
        send(child, &(&sem, &inside, &most));
    }
    for child in &mut children {
        child.wait_success(WAIT);
    }
    assert!(
        most.load() <= 2,
        "{} processes were inside at once",
        most.load()
    );
    assert_eq!(sem.value(), 2);
}

/// Documented behaviour: a permit held by a process that dies is lost; waiters time out
/// (never early) instead of hanging, and an explicit release restores it.
#[test]
fn a_dead_holders_permit_is_lost_but_nobody_hangs() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let mut child = run_child(&test_name!(), "holder", || {
        let sem: Semaphore = recv();
        let _permit = sem.acquire();
        signal_parent("held");
        park_forever();
    });
    let sem = Semaphore::new(1).unwrap();
    send(&mut child, &sem);
    child.wait_line("held", WAIT).unwrap();
    child.kill();
    child.wait_timeout(WAIT).unwrap();
    assert_eq!(sem.value(), 0);
    assert_eq!(sem.try_acquire().err(), Some(WouldBlock));
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    assert!(sem.acquire_timeout(timeout).is_err());
    assert!(start.elapsed() >= timeout, "timed out early");
    sem.release().unwrap();
    assert!(sem.try_acquire().is_ok());
}

#[test]
fn a_waiter_killed_while_blocked_does_not_disturb_the_others() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let waiter = || {
        let sem: Semaphore = recv();
        signal_parent("waiting");
        let permit = sem.acquire();
        permit.forget();
    };
    let mut victim = run_child(&name, "victim", waiter);
    let mut survivor = run_child(&name, "survivor", waiter);
    let sem = Semaphore::new(0).unwrap();
    send(&mut victim, &sem);
    send(&mut survivor, &sem);
    victim.wait_line("waiting", WAIT).unwrap();
    survivor.wait_line("waiting", WAIT).unwrap();
    victim.kill();
    victim.wait_timeout(WAIT).unwrap();
    sem.release().unwrap();
    survivor.wait_success(WAIT);
    assert_eq!(sem.value(), 0);
}
