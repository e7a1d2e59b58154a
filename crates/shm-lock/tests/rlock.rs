//! `RLock`: re-entry with owner and count, release by a non-owner (another thread or
//! another process) is an error, and a dead owner is reported whatever its depth.

mod common;

use std::time::Duration;

use common::{TEST_LIMIT, WAIT, park_forever, recv, send};
use shm_lock::{AcquireError, RLock, ReleaseError, TryAcquireError};
use test_support::{Watchdog, run_child, signal_parent, test_name};

#[test]
fn reentry_counts_levels() {
    let lock = RLock::new().unwrap();
    assert_eq!(
        (lock.count(), lock.is_owned(), lock.owner()),
        (0, false, None)
    );
    let a = lock.acquire().unwrap();
    let b = lock.try_acquire().unwrap();
    let c = lock.acquire_timeout(Duration::from_millis(1)).unwrap();
    assert_eq!(lock.count(), 3);
    assert_eq!(lock.owner().map(|(pid, _)| pid), Some(std::process::id()));
    drop(c);
    drop(b);
    assert_eq!(lock.count(), 1);
    drop(a);
    assert_eq!((lock.count(), lock.owner()), (0, None));
    // Python-style: keep a level, release it explicitly.
    lock.acquire().unwrap().keep();
    lock.acquire().unwrap().keep();
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
}

#[test]
fn another_thread_cannot_release_or_enter() {
    let lock = RLock::new().unwrap();
    let guard = lock.acquire().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
            assert!(matches!(
                lock.try_acquire(),
                Err(TryAcquireError::WouldBlock)
            ));
            assert!(!lock.is_owned());
            assert_eq!(lock.count(), 0);
        })
        .join()
        .unwrap();
    });
    assert_eq!(lock.count(), 1);
    drop(guard);
}

#[test]
fn another_process_cannot_release_and_a_dead_owner_is_reported() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let mut child = run_child(&test_name!(), "owner", || {
        let lock: RLock = recv();
        lock.acquire().unwrap().keep();
        lock.acquire().unwrap().keep();
        assert_eq!(lock.count(), 2);
        signal_parent("held");
        park_forever();
    });
    let lock = RLock::new().unwrap();
    send(&mut child, &lock);
    child.wait_line("held", WAIT).unwrap();
    assert_eq!(lock.owner().map(|(pid, _)| pid), Some(child.pid()));
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
    assert!(matches!(
        lock.try_acquire(),
        Err(TryAcquireError::WouldBlock)
    ));
    child.kill();
    child.wait_timeout(WAIT).unwrap();
    match lock.acquire() {
        Err(AcquireError::OwnerDied(guard)) => {
            // The dead owner's two levels are gone; we hold exactly one.
            assert_eq!(lock.count(), 1);
            guard.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {:?}", other.map(drop)),
    }
    assert_eq!(lock.count(), 0);
    let again = lock.acquire().expect("usable after mark_consistent");
    assert_eq!(lock.count(), 1);
    drop(again);
}
