//! Loom models of [`shm_lock::RawCondition`] (RELIABILITY.md row 22): the real `wait`,
//! `wait_while`, `notify` and `notify_all` on a heap-backed condition, with the futex calls
//! and the condition's lock on loom's model of the kernel (the robust pthread mutex cannot
//! run under loom; the model is an error-checking mutex whose owner never dies). A lost
//! notification shows as a loom deadlock; the state the lock protects is a loom cell, so
//! an access the lock does not order is a loom causality error.
//!
//! Run: `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p shm-lock --release --test loom_condition`.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use shm_lock::RawCondition;
use shm_lock::loom_support;

/// A flag protected by the condition's lock.
struct Shared {
    cond: Arc<RawCondition>,
    ready: UnsafeCell<bool>,
}

// SAFETY: `ready` is only touched with the condition's lock held (loom checks it).
unsafe impl Sync for Shared {}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            cond: loom_support::condition(),
            ready: UnsafeCell::new(false),
        })
    }

    /// Waits, under the lock, until the flag is set.
    fn wait_ready(&self) {
        let guard = self.cond.acquire().unwrap();
        // SAFETY: the lock is held whenever the predicate runs.
        let guard = self
            .cond
            .wait_while(guard, || !self.ready.with(|r| unsafe { *r }))
            .unwrap();
        drop(guard);
    }

    /// Sets the flag under the lock.
    fn set_ready(&self) -> shm_lock::LockGuard<'_> {
        let guard = self.cond.acquire().unwrap();
        // SAFETY: the lock is held.
        self.ready.with_mut(|r| unsafe { *r = true });
        guard
    }
}

/// `notify(1)` after changing the state under the lock wakes a waiter that checked the
/// predicate under the lock and went to sleep: the waiter reads `seq` before releasing the
/// lock, so a notification between its check and its sleep changes the word it sleeps on.
#[test]
fn notify_one_wakes_a_registered_waiter() {
    loom::model(|| {
        let shared = Shared::new();
        let waiter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || shared.wait_ready())
        };
        let guard = shared.set_ready();
        shared.cond.notify(1);
        drop(guard);
        waiter.join().unwrap();
    });
}

/// The same with the notification sent after the lock is released (allowed: notifying
/// does not need the lock).
#[test]
fn notify_one_after_unlock_wakes_a_registered_waiter() {
    loom::model(|| {
        let shared = Shared::new();
        let waiter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || shared.wait_ready())
        };
        drop(shared.set_ready());
        shared.cond.notify(1);
        waiter.join().unwrap();
    });
}

/// `notify_all` wakes every waiter: two threads waiting for the flag both return.
#[test]
fn notify_all_wakes_every_waiter() {
    loom::model(|| {
        let shared = Shared::new();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || shared.wait_ready())
            })
            .collect();
        let guard = shared.set_ready();
        shared.cond.notify_all();
        drop(guard);
        for waiter in waiters {
            waiter.join().unwrap();
        }
    });
}

/// Two waiters each consuming one item, and a producer that adds one item and calls
/// `notify(1)` twice: every notification reaches a waiter that is registered (or finds
/// the item before sleeping), so both waiters return.
#[test]
fn each_notify_one_wakes_a_waiter() {
    loom::model(|| {
        let cond = loom_support::condition();
        let items = Arc::new(Items(UnsafeCell::new(0)));
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let (cond, items) = (Arc::clone(&cond), Arc::clone(&items));
                thread::spawn(move || {
                    let guard = cond.acquire().unwrap();
                    // SAFETY: the lock is held whenever the predicate runs.
                    let guard = cond
                        .wait_while(guard, || items.0.with(|n| unsafe { *n }) == 0)
                        .unwrap();
                    // SAFETY: the lock is held.
                    items.0.with_mut(|n| unsafe { *n -= 1 });
                    drop(guard);
                })
            })
            .collect();
        for _ in 0..2 {
            let guard = cond.acquire().unwrap();
            // SAFETY: the lock is held.
            items.0.with_mut(|n| unsafe { *n += 1 });
            cond.notify(1);
            drop(guard);
        }
        for consumer in consumers {
            consumer.join().unwrap();
        }
        // SAFETY: every other thread has been joined.
        assert_eq!(items.0.with(|n| unsafe { *n }), 0);
    });
}

/// A count protected by the condition's lock.
struct Items(UnsafeCell<u32>);

// SAFETY: the count is only touched with the condition's lock held (loom checks it).
unsafe impl Sync for Items {}
