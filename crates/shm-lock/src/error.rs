//! The errors of every operation, one type per outcome set.
//!
//! Errors that hand over a held lock (`OwnerDied`) are generic over the guard `G`, like
//! std's `PoisonError<G>`: the caller gets the lock *and* the news that the previous owner
//! died, and decides what to do with the state it protects.

use std::fmt;

macro_rules! guard_errors {
    ($(#[$doc:meta])* $name:ident { $($(#[doc = $vdoc:literal])* #[error($msg:literal)] $variant:ident,)* }) => {
        $(#[$doc])*
        #[derive(thiserror::Error)]
        pub enum $name<G> {
            $($(#[doc = $vdoc])* #[error($msg)] $variant,)*
            /// The previous owner died (killed, or exited) while holding the lock. The lock
            /// is now held by the caller through the guard inside. Check or repair the
            /// protected state, then call the guard's `mark_consistent()`; releasing the
            /// guard without it makes the lock permanently unusable
            /// ([`NotRecoverable`](Self::NotRecoverable)) for everyone.
            #[error(
                "the previous owner of the lock died while holding it; you hold it now: check \
                 the state it protects, then call mark_consistent() on the guard"
            )]
            OwnerDied(G),
            /// A previous owner died and its successor released the lock without marking it
            /// consistent: the lock can never be acquired again. Create a new one.
            #[error(
                "the lock is not recoverable: an owner died and the next owner released it \
                 without mark_consistent(); create a new lock"
            )]
            NotRecoverable,
            /// The calling thread holds this (non-re-entrant) lock already: waiting would
            /// deadlock. Use an [`RLock`](crate::RLock) for re-entry.
            #[error("the calling thread already holds this lock; it is not re-entrant (use RLock)")]
            WouldDeadlock,
        }

        impl<G> $name<G> {
            /// The guard, if the error is [`OwnerDied`](Self::OwnerDied).
            pub fn into_owner_died(self) -> Option<G> {
                match self {
                    Self::OwnerDied(guard) => Some(guard),
                    _ => None,
                }
            }

            /// Whether this is [`OwnerDied`](Self::OwnerDied).
            pub fn is_owner_died(&self) -> bool {
                matches!(self, Self::OwnerDied(_))
            }

            /// Converts the guard inside with `f`.
            pub fn map_guard<H>(self, f: impl FnOnce(G) -> H) -> $name<H> {
                match self {
                    $(Self::$variant => $name::$variant,)*
                    Self::OwnerDied(guard) => $name::OwnerDied(f(guard)),
                    Self::NotRecoverable => $name::NotRecoverable,
                    Self::WouldDeadlock => $name::WouldDeadlock,
                }
            }
        }

        impl<G> fmt::Debug for $name<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Self::$variant => f.write_str(stringify!($variant)),)*
                    Self::OwnerDied(_) => f.write_str("OwnerDied(..)"),
                    Self::NotRecoverable => f.write_str("NotRecoverable"),
                    Self::WouldDeadlock => f.write_str("WouldDeadlock"),
                }
            }
        }
    };
}

guard_errors! {
    /// Why a blocking `acquire` (or a [`Condition`](crate::Condition) wait, which
    /// re-acquires) did not simply return a guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_lock::{AcquireError, Lock};
    /// let lock = Lock::new()?;
    /// let guard = lock.acquire().unwrap();
    /// assert!(matches!(lock.acquire(), Err(AcquireError::WouldDeadlock)));
    /// drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    AcquireError {}
}

guard_errors! {
    /// Why `try_acquire` did not return a guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_lock::{Lock, TryAcquireError};
    /// let lock = Lock::new()?;
    /// let guard = lock.acquire().unwrap();
    /// let would_block = std::thread::scope(|s| {
    ///     s.spawn(|| matches!(lock.try_acquire(), Err(TryAcquireError::WouldBlock))).join().unwrap()
    /// });
    /// assert!(would_block);
    /// drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    TryAcquireError {
        /// Another thread or process holds the lock.
        #[error("the lock is held by another thread or process")]
        WouldBlock,
    }
}

guard_errors! {
    /// Why `acquire_timeout` did not return a guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shm_lock::{AcquireTimeoutError, Lock};
    /// let lock = Lock::new()?;
    /// let guard = lock.acquire().unwrap();
    /// let timed_out = std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         matches!(lock.acquire_timeout(Duration::from_millis(10)), Err(AcquireTimeoutError::Timeout))
    ///     })
    ///     .join()
    ///     .unwrap()
    /// });
    /// assert!(timed_out);
    /// drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    AcquireTimeoutError {
        /// The time-out passed while another thread or process held the lock.
        #[error("timed out waiting for the lock (another thread or process holds it)")]
        Timeout,
    }
}

/// Why an [`RLock::release`](crate::RawRLock::release) failed.
///
/// # Examples
///
/// ```
/// use shm_lock::{RLock, ReleaseError};
/// let lock = RLock::new()?;
/// assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// The calling thread does not hold the lock (Python's "cannot release un-acquired
    /// lock").
    #[error("cannot release: the calling thread does not hold this lock")]
    NotOwner,
}

/// Why a semaphore `release` failed; nothing was released.
///
/// # Examples
///
/// ```
/// use shm_lock::{BoundedSemaphore, SemaphoreReleaseError};
/// let sem = BoundedSemaphore::new(1)?;
/// assert_eq!(sem.release(), Err(SemaphoreReleaseError::TooManyReleases { limit: 1 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SemaphoreReleaseError {
    /// Releasing would raise the value above its limit: the initial value of a
    /// [`BoundedSemaphore`](crate::BoundedSemaphore) (Python's "Semaphore released too many
    /// times"), or `u32::MAX` for a plain [`Semaphore`](crate::Semaphore).
    #[error("semaphore released too many times: the value may not exceed {limit}")]
    TooManyReleases {
        /// The largest value the semaphore may have.
        limit: u32,
    },
}

/// A non-blocking call found the primitive unavailable.
///
/// # Examples
///
/// ```
/// use shm_lock::{Semaphore, WouldBlock};
/// let sem = Semaphore::new(0)?;
/// assert_eq!(sem.try_acquire().err(), Some(WouldBlock));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operation would block")]
pub struct WouldBlock;

/// A time-out passed before the awaited state was reached.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shm_lock::{Event, Timeout};
/// let event = Event::new()?;
/// assert_eq!(event.wait_timeout(Duration::from_millis(1)), Err(Timeout));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out")]
pub struct Timeout;

/// The barrier is broken (Python's `BrokenBarrierError`): a party timed out, died while
/// waiting, or called [`abort`](crate::RawBarrier::abort), or [`reset`](crate::RawBarrier::reset)
/// was called while this party waited. It stays broken until `reset`.
///
/// # Examples
///
/// ```
/// use shm_lock::{Barrier, BrokenBarrier};
/// let barrier = Barrier::new(2)?;
/// barrier.abort();
/// assert_eq!(barrier.wait(), Err(BrokenBarrier));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the barrier is broken (a party timed out, died or aborted, or it was reset); call reset() \
     to use it again"
)]
pub struct BrokenBarrier;

/// Why a [`Barrier::wait_timeout`](crate::RawBarrier::wait_timeout) failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shm_lock::{Barrier, BarrierError};
/// let barrier = Barrier::new(2)?;
/// assert_eq!(barrier.wait_timeout(Duration::from_millis(1)), Err(BarrierError::Timeout));
/// // Timing out broke it for everyone, as in Python.
/// assert_eq!(barrier.wait_timeout(Duration::from_millis(1)), Err(BarrierError::Broken));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BarrierError {
    /// The barrier is (or became) broken; see [`BrokenBarrier`].
    #[error(
        "the barrier is broken (a party timed out, died or aborted, or it was reset); call \
         reset() to use it again"
    )]
    Broken,
    /// This party's time-out passed first; it broke the barrier for the others.
    #[error("timed out waiting at the barrier; the barrier is now broken for every party")]
    Timeout,
}

impl From<BrokenBarrier> for BarrierError {
    fn from(_: BrokenBarrier) -> Self {
        BarrierError::Broken
    }
}
