//! Loom models of [`shm_lock::RawSemaphore`] (RELIABILITY.md row 22): the real `acquire`,
//! `try_acquire` and `release` on a heap-backed semaphore, with the futex calls on loom's
//! model of the kernel. A lost wake-up shows as a loom deadlock, a permit too many as a
//! failed assertion, a missing Acquire/Release pairing as a loom causality error on the
//! data the permits protect.
//!
//! Run: `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p shm-lock --release --test loom_semaphore`.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use shm_lock::RawSemaphore;
use shm_lock::loom_support;

/// The critical section a permit of a one-permit semaphore protects: never two threads at
/// once, and each sees the previous holder's write (loom checks the cell's accesses are
/// ordered by happens-before, i.e. by the [sem-permit] Release/Acquire pair).
struct Guarded {
    inside: AtomicUsize,
    data: UnsafeCell<u32>,
}

impl Guarded {
    fn enter(&self) {
        assert_eq!(
            self.inside.fetch_add(1, Ordering::Relaxed),
            0,
            "two holders of a one-permit semaphore"
        );
        // SAFETY: loom checks that no other access to the cell is concurrent with this one.
        self.data.with_mut(|data| unsafe { *data += 1 });
        self.inside.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Holds a permit for the critical section, then gives it back with `release` (not the
/// guard's drop, which ignores errors): a release beyond the bounded limit panics.
fn critical_section(sem: &RawSemaphore, guarded: &Guarded) {
    guarded.enter();
    sem.release().expect("a release beyond the limit");
}

/// A release while a thread sleeps in `acquire` wakes it: the sleeper announces itself in
/// `sleepers` before its last check of the value, the releaser reads `sleepers` after its
/// increment (both `SeqCst`), so one of them sees the other.
#[test]
fn release_wakes_a_sleeper() {
    loom::model(|| {
        let sem = loom_support::semaphore(0, None);
        let waiter = {
            let sem = Arc::clone(&sem);
            thread::spawn(move || sem.acquire().forget())
        };
        sem.release().unwrap();
        waiter.join().unwrap();
        assert_eq!(sem.value(), 0);
    });
}

/// `release_many(2)` with two threads in `acquire` wakes both (or lets them take the
/// permits without sleeping): all three threads finish and no permit is left over.
#[test]
fn release_many_wakes_two_sleepers() {
    loom::model(|| {
        let sem = loom_support::semaphore(0, None);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let sem = Arc::clone(&sem);
                thread::spawn(move || sem.acquire().forget())
            })
            .collect();
        sem.release_many(2).unwrap();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(sem.value(), 0);
    });
}

/// Two separate releases with two threads in `acquire`: the second release must wake the
/// second sleeper even when the first woken one has not yet left `acquire` (its
/// announcement is withdrawn only after it stops sleeping).
#[test]
fn two_releases_wake_two_sleepers() {
    loom::model(|| {
        let sem = loom_support::semaphore(0, None);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let sem = Arc::clone(&sem);
                thread::spawn(move || sem.acquire().forget())
            })
            .collect();
        sem.release().unwrap();
        sem.release().unwrap();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(sem.value(), 0);
    });
}

/// A bounded one-permit semaphore used as a mutex by `acquire` (two threads) and
/// `try_acquire` (one): never two holders, every holder sees the previous one's writes,
/// no release exceeds the limit, nobody hangs, and the permit is free at the end.
#[test]
fn permits_never_exceed_the_count() {
    loom::model(|| {
        let sem = loom_support::semaphore(1, Some(1));
        let guarded = Arc::new(Guarded {
            inside: AtomicUsize::new(0),
            data: UnsafeCell::new(0),
        });
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (sem, guarded) = (Arc::clone(&sem), Arc::clone(&guarded));
                thread::spawn(move || {
                    sem.acquire().forget();
                    critical_section(&sem, &guarded);
                })
            })
            .collect();
        let mut entered = 2;
        if let Ok(permit) = sem.try_acquire() {
            permit.forget();
            critical_section(&sem, &guarded);
            entered += 1;
        }
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(sem.value(), 1);
        // SAFETY: every other thread has been joined.
        assert_eq!(guarded.data.with(|data| unsafe { *data }), entered);
    });
}
