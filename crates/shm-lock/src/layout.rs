//! Every struct of this crate that lives in shared memory.
//!
//! All are `#[repr(C)]` and hold only plain data, atomics, and glibc's `pthread_mutex_t`
//! (which is made for shared memory when initialised process-shared): no pointers, no heap
//! types. Sizes and field offsets are checked below at compile time; bump
//! [`LAYOUT_VERSION`] on any change (it is folded into every segment's type fingerprint, so
//! an old segment is refused with `OpenError::TypeMismatch` rather than misread).
//!
//! Each `Raw*` type can live in its own segment (the handle types of this crate) or be
//! embedded in a bigger shared struct and initialised in place with its `init` function.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
#[cfg(not(loom))]
use std::mem::{align_of, offset_of, size_of};

use shm_segment::TypeFingerprint;

use crate::sync::{AtomicU32, AtomicU64};

/// The version of the layouts in this module.
///
/// # Examples
///
/// ```
/// assert!(shm_lock::layout::LAYOUT_VERSION >= 1);
/// ```
pub const LAYOUT_VERSION: u32 = 1;

/// The most parties a [`Barrier`](crate::Barrier) can have: the barrier records every
/// waiting party (pid and start time) so that a dead one breaks it.
///
/// # Examples
///
/// ```
/// assert!(shm_lock::Barrier::new(shm_lock::MAX_BARRIER_PARTIES).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_BARRIER_PARTIES: usize = 64;

/// Room for a `pthread_mutex_t` (40 bytes on x86-64, 48 on aarch64), 8-aligned.
#[repr(C, align(8))]
pub(crate) struct MutexCell(pub(crate) UnsafeCell<[u64; 6]>);

impl MutexCell {
    pub(crate) fn get(&self) -> *mut libc::pthread_mutex_t {
        self.0.get().cast()
    }
}

/// A robust, process-shared, non-re-entrant mutex: the shared part of
/// [`Lock`](crate::Lock), and what other shared structures embed. 64 bytes.
///
/// Initialise it in place with [`RawLock::init`], then use it through a reference from
/// [`RawLock::from_ptr`]; see [`RawLock`]'s methods.
///
/// # Examples
///
/// ```
/// #[repr(C)]
/// struct MyShared {
///     lock: shm_lock::RawLock, // initialised with RawLock::init
///     count: u64,
/// }
/// assert_eq!(std::mem::size_of::<shm_lock::RawLock>(), 64);
/// ```
#[repr(C)]
pub struct RawLock {
    pub(crate) mutex: MutexCell,
    pub(crate) _reserved: [u64; 2],
}

/// A robust, process-shared, re-entrant mutex with owner and count: the shared part of
/// [`RLock`](crate::RLock). 64 bytes.
///
/// # Examples
///
/// ```
/// assert_eq!(std::mem::size_of::<shm_lock::RawRLock>(), 64);
/// ```
#[repr(C)]
pub struct RawRLock {
    pub(crate) mutex: MutexCell,
    /// Process id of the owner, 0 when free. Written only by the owner.
    pub(crate) owner_pid: AtomicU32,
    /// Kernel thread id of the owner, 0 when free. Written only by the owner.
    pub(crate) owner_tid: AtomicU32,
    /// Re-entry depth. Written only by the owner.
    pub(crate) count: AtomicU32,
    pub(crate) _reserved: u32,
}

/// A counting semaphore on a futex word: the shared part of [`Semaphore`](crate::Semaphore)
/// and [`BoundedSemaphore`](crate::BoundedSemaphore). 16 bytes.
///
/// # Examples
///
/// ```
/// assert_eq!(std::mem::size_of::<shm_lock::RawSemaphore>(), 16);
/// ```
#[repr(C)]
pub struct RawSemaphore {
    /// Free permits (the futex word).
    pub(crate) value: AtomicU32,
    /// Processes (threads) sleeping or about to sleep on `value`; may overcount after a
    /// sleeper was killed, which only costs a needless wake-up.
    pub(crate) sleepers: AtomicU32,
    /// The most permits `release` may make free: the initial value for a bounded semaphore,
    /// `u32::MAX` otherwise. Written once by `init`.
    pub(crate) limit: AtomicU32,
    pub(crate) _reserved: u32,
}

/// A manual-reset event on a futex word: the shared part of [`Event`](crate::Event). 8 bytes.
///
/// # Examples
///
/// ```
/// assert_eq!(std::mem::size_of::<shm_lock::RawEvent>(), 8);
/// ```
#[repr(C)]
pub struct RawEvent {
    /// Bit 0: the flag. Bits 1..: how many times it was set (wrapping), so a waiter that saw
    /// the flag clear notices a `set` even if a `clear` follows at once.
    pub(crate) state: AtomicU32,
    /// Threads sleeping or about to sleep in `wait` (the setter skips the wake-up call when
    /// there are none); may overcount after a waiter was killed, which only costs a
    /// needless wake-up.
    pub(crate) waiters: AtomicU32,
}

/// A condition variable bound to its own robust lock: the shared part of
/// [`Condition`](crate::Condition). 128 bytes.
///
/// # Examples
///
/// ```
/// assert_eq!(std::mem::size_of::<shm_lock::RawCondition>(), 128);
/// ```
#[repr(C)]
pub struct RawCondition {
    pub(crate) lock: RawLock,
    /// Bumped by every notify (the futex word waiters sleep on).
    pub(crate) seq: AtomicU32,
    pub(crate) _reserved: [u32; 15],
}

/// One party waiting at a barrier.
#[repr(C)]
pub(crate) struct BarrierSlot {
    pub(crate) pid: AtomicU32,
    pub(crate) _pad: u32,
    pub(crate) start_time: AtomicU64,
}

/// A cyclic barrier whose waiting parties are recorded so a dead one breaks it: the shared
/// part of [`Barrier`](crate::Barrier). 1152 bytes.
///
/// # Examples
///
/// ```
/// assert_eq!(std::mem::size_of::<shm_lock::RawBarrier>(), 1152);
/// ```
#[repr(C)]
pub struct RawBarrier {
    /// Protects every other field's updates (robust: a party dying inside breaks the
    /// barrier instead of wedging it).
    pub(crate) lock: RawLock,
    /// `generation << 1 | broken` (the futex word waiters sleep on).
    pub(crate) phase: AtomicU32,
    /// Parties needed to trip. Written once by `init`.
    pub(crate) parties: AtomicU32,
    /// Parties waiting in the current generation.
    pub(crate) count: AtomicU32,
    pub(crate) _pad: u32,
    /// Bit `g % 64` tells how generation `g` ended: 1 broken or reset, 0 tripped.
    pub(crate) outcomes: AtomicU64,
    pub(crate) _reserved: [u64; 5],
    /// The parties waiting in the current generation, by arrival index.
    pub(crate) slots: [BarrierSlot; MAX_BARRIER_PARTIES],
}

/// A plain-data value with its own robust lock: the shared part of
/// [`Value<T>`](crate::Value).
///
/// # Examples
///
/// ```
/// assert_eq!(std::mem::size_of::<shm_lock::RawValue<u64>>(), 72);
/// ```
#[repr(C)]
pub struct RawValue<T> {
    pub(crate) lock: RawLock,
    pub(crate) value: UnsafeCell<T>,
}

/// The header of an [`Array<T>`](crate::Array); the elements follow at
/// [`ARRAY_DATA_OFFSET`]. 128 bytes.
#[repr(C)]
pub(crate) struct RawArrayHeader<T> {
    pub(crate) lock: RawLock,
    /// Number of elements. Written once by the creator.
    pub(crate) len: AtomicU64,
    pub(crate) _reserved: [u64; 7],
    pub(crate) _elem: PhantomData<T>,
}

/// Offset of an array's first element from the start of its [`RawArrayHeader`].
pub(crate) const ARRAY_DATA_OFFSET: usize = 128;

// The integer layouts hold for `std` atomics; loom's are bigger (a loom build only ever
// makes these structs on the heap, see `loom_support`).
#[cfg(not(loom))]
const _: () = {
    assert!(size_of::<libc::pthread_mutex_t>() <= size_of::<MutexCell>());
    assert!(align_of::<libc::pthread_mutex_t>() <= align_of::<MutexCell>());
    assert!(size_of::<MutexCell>() == 48);

    assert!(size_of::<RawLock>() == 64);
    assert!(offset_of!(RawLock, mutex) == 0);

    assert!(size_of::<RawRLock>() == 64);
    assert!(offset_of!(RawRLock, mutex) == 0);
    assert!(offset_of!(RawRLock, owner_pid) == 48);
    assert!(offset_of!(RawRLock, owner_tid) == 52);
    assert!(offset_of!(RawRLock, count) == 56);

    assert!(size_of::<RawSemaphore>() == 16);
    assert!(offset_of!(RawSemaphore, value) == 0);
    assert!(offset_of!(RawSemaphore, sleepers) == 4);
    assert!(offset_of!(RawSemaphore, limit) == 8);

    assert!(size_of::<RawEvent>() == 8);
    assert!(offset_of!(RawEvent, state) == 0);
    assert!(offset_of!(RawEvent, waiters) == 4);

    assert!(size_of::<RawCondition>() == 128);
    assert!(offset_of!(RawCondition, lock) == 0);
    assert!(offset_of!(RawCondition, seq) == 64);

    assert!(size_of::<BarrierSlot>() == 16);
    assert!(offset_of!(BarrierSlot, start_time) == 8);
    assert!(size_of::<RawBarrier>() == 128 + 16 * MAX_BARRIER_PARTIES);
    assert!(offset_of!(RawBarrier, lock) == 0);
    assert!(offset_of!(RawBarrier, phase) == 64);
    assert!(offset_of!(RawBarrier, parties) == 68);
    assert!(offset_of!(RawBarrier, count) == 72);
    assert!(offset_of!(RawBarrier, outcomes) == 80);
    assert!(offset_of!(RawBarrier, slots) == 128);

    assert!(size_of::<RawArrayHeader<u8>>() == ARRAY_DATA_OFFSET);
    assert!(offset_of!(RawArrayHeader<u8>, len) == 64);
    assert!(offset_of!(RawValue<u8>, value) == 64);
};

/// The fingerprint a segment holding `R` is created and checked with: `R`'s size, alignment
/// and type name (which names the element type of generic layouts), with
/// [`LAYOUT_VERSION`] folded into the hash.
pub(crate) fn fingerprint_of<R>() -> TypeFingerprint {
    let mut fingerprint = TypeFingerprint::of::<R>();
    fingerprint.name_hash ^= u64::from(LAYOUT_VERSION).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    fingerprint
}
