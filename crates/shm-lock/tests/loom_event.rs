//! Loom models of [`shm_lock::RawEvent`] (RELIABILITY.md row 22): the real `set`, `clear`
//! and `wait` on a heap-backed event, with the futex calls on loom's model of the kernel.
//! A lost wake-up shows as a loom deadlock.
//!
//! Run: `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p shm-lock --release --test loom_event`.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use shm_lock::loom_support;

/// A `set` wakes a waiter that is already waiting even when a `clear` follows at once (the
/// set counter in the state word changes it for good), and what the setter wrote before
/// `set` is visible to the waiter when `wait` returns ([event-set]).
#[test]
fn set_then_clear_wakes_a_waiter() {
    loom::model(|| {
        let event = loom_support::event();
        let data = Arc::new(UnsafeCell::new(0u32));
        let waiter = {
            let (event, data) = (Arc::clone(&event), Arc::clone(&data));
            thread::spawn(move || {
                event.wait();
                // SAFETY: loom checks this read happens after the setter's write.
                assert_eq!(data.with(|d| unsafe { *d }), 1);
            })
        };
        // The property is about a waiter that started before `set`: one that starts after
        // `set` and `clear` rightly waits for the next `set`.
        while event.waiters() == 0 {
            thread::yield_now();
        }
        // SAFETY: the waiter reads the cell only after `wait` returns.
        data.with_mut(|d| unsafe { *d = 1 });
        event.set();
        event.clear();
        waiter.join().unwrap();
        assert!(!event.is_set());
    });
}

/// A `set` racing with two threads entering `wait` wakes both (or they see the flag and
/// do not sleep): nobody hangs, and every waiter sees the setter's write.
#[test]
fn set_wakes_every_waiter() {
    loom::model(|| {
        let event = loom_support::event();
        let data = Arc::new(UnsafeCell::new(0u32));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (event, data) = (Arc::clone(&event), Arc::clone(&data));
                thread::spawn(move || {
                    event.wait();
                    // SAFETY: loom checks this read happens after the setter's write.
                    assert_eq!(data.with(|d| unsafe { *d }), 1);
                })
            })
            .collect();
        // SAFETY: the waiters read the cell only after `wait` returns.
        data.with_mut(|d| unsafe { *d = 1 });
        event.set();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert!(event.is_set());
        assert_eq!(event.waiters(), 0);
    });
}
