//! Heap-backed copies of the shared layouts, for the loom models in `tests/loom_*.rs`.
//!
//! Under `cfg(loom)` the atomics of the layouts are loom's ([`crate::sync`]), which do not
//! have the integers' layout, so the `Raw*::init` functions (which write integers into
//! segment memory) cannot build them. These constructors build the same structs field by
//! field on the heap, in the state `init` leaves them in; the methods the models call are
//! the real ones. The embedded locks are the loom model of the pthread mutex
//! ([`crate::sys`]).

use std::cell::UnsafeCell;

use loom::sync::Arc;

use crate::layout::{
    BarrierSlot, MAX_BARRIER_PARTIES, MutexCell, RawBarrier, RawCondition, RawEvent, RawLock,
    RawSemaphore,
};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::sys::MutexType;

/// A word holding `value`, stored once more with `SeqCst`.
///
/// Loom records an atomic's initial value as a non-`SeqCst` store, and lets a `SeqCst`
/// load return it even after a `SeqCst` read-modify-write that ran before the load; C11
/// forbids that (the initial value happens before every access, and a `SeqCst` load reads
/// the last `SeqCst` write before it in the single total order). Without the extra store,
/// the Dekker handshakes (`sleepers`/`value`, `waiters`/`state`) would fail in the model
/// where the real code is correct.
fn word(value: u32) -> AtomicU32 {
    let word = AtomicU32::new(value);
    word.store(value, Ordering::SeqCst);
    word
}

fn word64(value: u64) -> AtomicU64 {
    let word = AtomicU64::new(value);
    word.store(value, Ordering::SeqCst);
    word
}

/// An unlocked [`RawLock`] (error-checking, as `RawLock::init` makes it).
fn lock() -> RawLock {
    let mut lock = RawLock {
        mutex: MutexCell(UnsafeCell::new([0; 6])),
        _reserved: [0; 2],
    };
    // SAFETY: the cell is ours, writable, aligned, and seen by no other thread yet.
    unsafe { MutexCell::init(&mut lock.mutex, MutexType::ErrorCheck) };
    lock
}

/// A semaphore as `RawSemaphore::init(ptr, value, limit)` leaves it.
///
/// # Panics
///
/// If `limit` is below `value`.
pub fn semaphore(value: u32, limit: Option<u32>) -> Arc<RawSemaphore> {
    let limit = limit.unwrap_or(u32::MAX);
    assert!(
        value <= limit,
        "initial value {value} exceeds limit {limit}"
    );
    Arc::new(RawSemaphore {
        value: word(value),
        sleepers: word(0),
        limit: word(limit),
        _reserved: 0,
    })
}

/// A clear event, as `RawEvent::init` leaves it.
pub fn event() -> Arc<RawEvent> {
    Arc::new(RawEvent {
        state: word(0),
        waiters: word(0),
    })
}

/// A condition with its (unlocked) lock, as `RawCondition::init` leaves it.
pub fn condition() -> Arc<RawCondition> {
    Arc::new(RawCondition {
        lock: lock(),
        seq: word(0),
        _reserved: [0; 15],
    })
}

/// A barrier for `parties` parties, as `RawBarrier::init` leaves it.
///
/// # Panics
///
/// If `parties` is 0 or above [`MAX_BARRIER_PARTIES`].
pub fn barrier(parties: usize) -> Arc<RawBarrier> {
    assert!((1..=MAX_BARRIER_PARTIES).contains(&parties));
    Arc::new(RawBarrier {
        lock: lock(),
        phase: word(0),
        parties: word(parties as u32),
        count: word(0),
        _pad: 0,
        outcomes: word64(0),
        _reserved: [0; 5],
        // Only ever accessed under the internal lock: no `SeqCst` re-store needed.
        slots: std::array::from_fn(|_| BarrierSlot {
            pid: AtomicU32::new(0),
            _pad: 0,
            start_time: AtomicU64::new(0),
        }),
    })
}
