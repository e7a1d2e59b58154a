//! Robust cross-process synchronisation for multiproc: Python's `multiprocessing` locks,
//! on shared memory, without Python's worst failure — no lock is ever left held by a dead
//! process.
//!
//! # Contents
//!
//! | type | Python | in shared memory | a participant that dies |
//! |---|---|---|---|
//! | [`Lock`] / [`RawLock`] | `Lock` | robust pthread mutex | next acquirer gets [`AcquireError::OwnerDied`] |
//! | [`RLock`] / [`RawRLock`] | `RLock` | robust recursive mutex + owner/count | as `Lock` |
//! | [`Semaphore`], [`BoundedSemaphore`] / [`RawSemaphore`] | same | futex word | its permits are lost ([`semaphore`]) |
//! | [`Event`] / [`RawEvent`] | `Event` | futex word | nothing to repair ([`event`]) |
//! | [`Condition`] / [`RawCondition`] | `Condition` | robust lock + futex sequence | see [`condition`] |
//! | [`Barrier`] / [`RawBarrier`] | `Barrier` | robust lock + futex + party table | barrier breaks ([`barrier`]) |
//! | [`Value<T>`] / [`RawValue<T>`] | `Value` | robust lock + atomically accessed `T` | as `Lock`; old value kept |
//! | [`Array<T>`] | `Array` | robust lock + `[T]` | as `Lock` |
//!
//! * Each handle owns its own segment: `new()` makes an anonymous one (freed by the kernel
//!   when the last process holding it exits), `create(name)` / `open(name)` a named one in
//!   `/dev/shm`. Handles are `Send + Sync` and `Clone` (clones share one mapping), and they
//!   serialise (serde) as their segment's token, so they can be passed to child processes;
//!   see [`shm_segment::transfer`].
//! * Each `Raw*` type is the `#[repr(C)]` shared part ([`layout`]), to embed in another
//!   shared structure and initialise in place with its `unsafe fn init`; handles `Deref` to
//!   it, so the operations are documented there.
//! * Every blocking call has a time-out form (`acquire` / `try_acquire` /
//!   `acquire_timeout`, `wait` / `wait_timeout`): deadlines are absolute on the monotonic
//!   clock, interrupted sleeps keep the original deadline, and no call reports a time-out
//!   before it has passed. Guards are RAII.
//! * Errors are per operation ([`AcquireError`], [`TryAcquireError`],
//!   [`AcquireTimeoutError`], [`ReleaseError`], [`SemaphoreReleaseError`], [`WouldBlock`],
//!   [`Timeout`], [`BrokenBarrier`], [`BarrierError`]); creating and opening return
//!   [`shm_segment::CreateError`] / [`shm_segment::OpenError`].
//! * [`inspect`] reads any of these segments without taking its lock (holder pid and
//!   liveness, count, permits, flag, parties), for tools such as `multiproc inspect`.
//!
//! # Process death
//!
//! Liveness never comes from `Drop` (SIGKILL runs none): the lock types use the kernel's
//! robust-futex list, through glibc's robust process-shared mutexes; the [`Barrier`]
//! records each waiting party's pid and start time ([`shm_segment::ProcessId`]). What a
//! death means for each primitive is documented in its module.
//!
//! # Examples
//!
//! ```
//! use shm_lock::{AcquireError, Lock, Value};
//!
//! let lock = Lock::new()?;
//! let counter = Value::new(0u64)?;
//! match lock.acquire() {
//!     Ok(_guard) => { counter.fetch_add(1); }
//!     Err(AcquireError::OwnerDied(guard)) => {
//!         // The previous holder died in the middle: repair, then say so.
//!         guard.mark_consistent();
//!     }
//!     Err(e) => return Err(e.to_string().into()),
//! }
//! assert_eq!(counter.load(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod array;
mod error;
mod lock;
mod rlock;
mod shared;
mod sync;
mod sys;
mod value;

pub mod barrier;
pub mod condition;
pub mod event;
#[cfg(not(loom))]
pub mod inspect;
pub mod layout;
pub mod semaphore;

/// Heap-backed constructors of the `Raw*` state machines for the loom models in
/// `tests/loom_*.rs` (only under `cfg(loom)`).
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_support;

pub use array::{Array, ArrayGuard};
pub use barrier::{Barrier, LIVENESS_CHECK};
pub use condition::{Condition, WaitTimeoutResult};
pub use error::{
    AcquireError, AcquireTimeoutError, BarrierError, BrokenBarrier, ReleaseError,
    SemaphoreReleaseError, Timeout, TryAcquireError, WouldBlock,
};
pub use event::Event;
pub use layout::{
    MAX_BARRIER_PARTIES, RawBarrier, RawCondition, RawEvent, RawLock, RawRLock, RawSemaphore,
    RawValue,
};
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};
pub use value::{AtomicInteger, Plain, Value, ValueGuard};
