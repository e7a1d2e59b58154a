//! [`Semaphore`], [`BoundedSemaphore`] and [`RawSemaphore`]: counting semaphores on a futex.
//!
//! # A process that dies holding a permit
//!
//! Permits have no owner (any process may release what another acquired, as in Python), so
//! nothing can tell a permit held by a dead process from one held by a slow process: **the
//! permit is lost**, and the value stays one lower for good. Waiters are never stuck by it
//! beyond their time-out: use [`acquire_timeout`](RawSemaphore::acquire_timeout) where a
//! holder may die, or a [`Lock`](crate::Lock) (which does detect a dead owner) when one
//! permit is all you need. A process killed while *waiting* costs nothing: the kernel drops
//! it from the futex queue, and at worst a later release makes one needless wake-up call.
//! A waiter killed just after being woken leaves the permit it was going to take free; the
//! other sleepers re-check the value at least every [`RECHECK`] and take it.

use std::ops::Deref;
use std::time::{Duration, Instant};

use shm_segment::futex::deadline_after;
use shm_segment::{CreateError, ObjectKind, OpenError};

use crate::error::{SemaphoreReleaseError, Timeout, WouldBlock};
use crate::layout::RawSemaphore;
use crate::shared::{Shared, handle_common};
use crate::sync::Ordering;
use crate::sys::futex;

/// The longest a semaphore waiter sleeps without re-checking the value (so that a wake-up
/// taken by a waiter that then died is never lost for longer).
///
/// # Examples
///
/// ```
/// assert!(shm_lock::semaphore::RECHECK <= std::time::Duration::from_secs(1));
/// ```
pub const RECHECK: Duration = Duration::from_millis(100);

impl RawSemaphore {
    /// Initialises a semaphore in place with `value` free permits. A `limit` makes it
    /// bounded: `release` may not raise the value above it (`None`: `u32::MAX`).
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for writes of a `RawSemaphore`, 4-aligned, and unused by anyone
    /// until this returns.
    ///
    /// # Panics
    ///
    /// If `limit` is below `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::MaybeUninit;
    /// use shm_lock::RawSemaphore;
    /// let mut memory = Box::new(MaybeUninit::<RawSemaphore>::uninit());
    /// // SAFETY: the memory is ours, writable and aligned.
    /// let sem = unsafe {
    ///     RawSemaphore::init(memory.as_mut_ptr(), 2, Some(2));
    ///     RawSemaphore::from_ptr(memory.as_ptr())
    /// };
    /// assert_eq!(sem.value(), 2);
    /// ```
    pub unsafe fn init(ptr: *mut RawSemaphore, value: u32, limit: Option<u32>) {
        let limit = limit.unwrap_or(u32::MAX);
        assert!(
            value <= limit,
            "a semaphore's initial value {value} exceeds its limit {limit}"
        );
        // SAFETY: `ptr` is valid for writes (caller); the fields are integers or atomics,
        // which have the layout of their integer.
        unsafe {
            ptr.cast::<[u32; 4]>().write([value, 0, limit, 0]);
        }
    }

    /// A reference to a semaphore initialised with [`init`](Self::init).
    ///
    /// # Safety
    ///
    /// `ptr` must point to an initialised `RawSemaphore`, mapped for `'a`.
    ///
    /// # Examples
    ///
    /// See [`init`](Self::init).
    pub unsafe fn from_ptr<'a>(ptr: *const RawSemaphore) -> &'a RawSemaphore {
        // SAFETY: the caller promises an initialised, mapped semaphore; atomics only.
        unsafe { &*ptr }
    }

    /// Takes a permit if one is free.
    fn take(&self) -> bool {
        let mut value = self.value.load(Ordering::Relaxed);
        while value > 0 {
            // [sem-permit] Acquire: pairs with the Release in `release_many`, so what the
            // releaser wrote before releasing is visible to the acquirer.
            match self.value.compare_exchange_weak(
                value,
                value - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => value = now,
            }
        }
        false
    }

    fn acquire_until_inner(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.take() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            // Announce the sleep, then re-check: with both sides SeqCst, either we see the
            // releaser's increment or it sees our announcement and wakes us.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            if self.value.load(Ordering::SeqCst) == 0 {
                let recheck = Instant::now() + RECHECK;
                let until = deadline.map_or(recheck, |d| d.min(recheck));
                futex::wait(&self.value, 0, Some(until));
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Takes a permit, blocking while none is free. The permit returns when the guard drops
    /// (or never, after [`SemaphorePermit::forget`]).
    ///
    /// A permit held by a process that dies is lost (see the [module docs](self)): prefer
    /// [`acquire_timeout`](Self::acquire_timeout) where that can happen.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shm_lock::Semaphore::new(1)?;
    /// let permit = sem.acquire();
    /// assert_eq!(sem.value(), 0);
    /// drop(permit);
    /// assert_eq!(sem.value(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        let taken = self.acquire_until_inner(None);
        debug_assert!(taken);
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is free now.
    ///
    /// # Errors
    ///
    /// [`WouldBlock`] when the value is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shm_lock::Semaphore::new(1)?;
    /// let permit = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_err());
    /// # drop(permit);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, WouldBlock> {
        if self.take() {
            Ok(SemaphorePermit { sem: self })
        } else {
            Err(WouldBlock)
        }
    }

    /// Takes a permit, waiting at most `timeout` (monotonic clock; never fails earlier).
    ///
    /// # Errors
    ///
    /// [`Timeout`] when no permit became free in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = shm_lock::Semaphore::new(0)?;
    /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_err());
    /// sem.release()?;
    /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, Timeout> {
        self.acquire_until(deadline_after(timeout))
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout) with an absolute deadline.
    ///
    /// # Errors
    ///
    /// [`Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shm_lock::Semaphore::new(0)?;
    /// assert!(sem.acquire_until(Some(std::time::Instant::now())).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_until(&self, deadline: Option<Instant>) -> Result<SemaphorePermit<'_>, Timeout> {
        if self.acquire_until_inner(deadline) {
            Ok(SemaphorePermit { sem: self })
        } else {
            Err(Timeout)
        }
    }

    /// Makes one permit free (Python's `release()`), waking a waiter.
    ///
    /// # Errors
    ///
    /// [`SemaphoreReleaseError::TooManyReleases`] when the value is at its limit (a
    /// bounded semaphore's initial value); nothing changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shm_lock::Semaphore::new(0)?;
    /// sem.release()?;
    /// assert_eq!(sem.value(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<(), SemaphoreReleaseError> {
        self.release_many(1)
    }

    /// Makes `n` permits free at once (Python's `release(n)`).
    ///
    /// # Errors
    ///
    /// [`SemaphoreReleaseError::TooManyReleases`] when that would exceed the limit; nothing
    /// is released then.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shm_lock::BoundedSemaphore::new(3)?;
    /// let permits = [sem.acquire(), sem.acquire()];
    /// permits.into_iter().for_each(shm_lock::SemaphorePermit::forget);
    /// sem.release_many(2)?;
    /// assert!(sem.release_many(1).is_err());
    /// assert_eq!(sem.value(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_many(&self, n: u32) -> Result<(), SemaphoreReleaseError> {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut value = self.value.load(Ordering::Relaxed);
        loop {
            let new = match value.checked_add(n) {
                Some(new) if new <= limit => new,
                _ => return Err(SemaphoreReleaseError::TooManyReleases { limit }),
            };
            // [sem-permit] Release (SeqCst): pairs with the Acquire CAS in `take`; SeqCst
            // also orders it before the `sleepers` load below (Dekker with the waiter).
            match self
                .value
                .compare_exchange_weak(value, new, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => value = now,
            }
        }
        if n > 0 && self.sleepers.load(Ordering::SeqCst) > 0 {
            futex::wake(&self.value, n);
        }
        Ok(())
    }

    /// The number of free permits now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Semaphore::new(4)?.value(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn value(&self) -> u32 {
        self.value.load(Ordering::Relaxed)
    }

    /// The most the value may reach: the initial value of a bounded semaphore, `u32::MAX`
    /// for a plain one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::BoundedSemaphore::new(4)?.limit(), 4);
    /// assert_eq!(shm_lock::Semaphore::new(4)?.limit(), u32::MAX);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for RawSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSemaphore")
            .field("value", &self.value())
            .field("limit", &self.limit())
            .finish()
    }
}

/// One permit of a semaphore, returned when dropped. It may move to another thread (permits
/// have no owner).
///
/// # Examples
///
/// ```
/// let sem = shm_lock::Semaphore::new(1)?;
/// {
///     let _permit = sem.acquire();
///     assert_eq!(sem.value(), 0);
/// }
/// assert_eq!(sem.value(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the permit is returned as soon as it is dropped"]
#[derive(Debug)]
pub struct SemaphorePermit<'a> {
    sem: &'a RawSemaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken (Python's acquire without a matching release); give it back
    /// later with [`release`](RawSemaphore::release), from any process.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shm_lock::Semaphore::new(1)?;
    /// sem.acquire().forget();
    /// assert_eq!(sem.value(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        // Cannot exceed the limit unless someone released a permit they never took; the
        // value is then at its limit already, which is what returning would reach.
        let _ = self.sem.release();
    }
}

macro_rules! semaphore_handle {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $bounded:expr, $new:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            shared: Shared<RawSemaphore>,
        }

        impl $name {
            #[doc = concat!("A new ", stringify!($name), " with `value` free permits, in an anonymous segment.")]
            ///
            /// # Errors
            ///
            /// [`CreateError`] when the segment cannot be made.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = shm_lock::", stringify!($name), "::new(2)?;")]
            /// assert_eq!(sem.value(), 2);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn new(value: u32) -> Result<Self, CreateError> {
                let shared = Shared::create_anonymous($kind, size_of::<RawSemaphore>(), |raw| {
                    // SAFETY: fresh segment memory, writable and aligned, seen by no one.
                    unsafe { RawSemaphore::init(raw, value, $bounded.then_some(value)) }
                })?;
                Ok($name { shared })
            }

            #[doc = concat!("A new ", stringify!($name), " with `value` free permits in the named segment `name`.")]
            ///
            /// # Errors
            ///
            /// [`CreateError::AlreadyExists`] and the other [`CreateError`]s.
            ///
            /// # Examples
            ///
            /// ```
            /// # let name = format!("doc-sem-{}", std::process::id());
            #[doc = concat!("let sem = shm_lock::", stringify!($name), "::create(&name, 1)?;")]
            #[doc = concat!("let same = shm_lock::", stringify!($name), "::open(&name)?;")]
            /// sem.acquire().forget();
            /// assert_eq!(same.value(), 0);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn create(name: &str, value: u32) -> Result<Self, CreateError> {
                let shared = Shared::create($kind, size_of::<RawSemaphore>(), name, |raw| {
                    // SAFETY: fresh segment memory; openers wait until it is ready.
                    unsafe { RawSemaphore::init(raw, value, $bounded.then_some(value)) }
                })?;
                Ok($name { shared })
            }

            #[doc = concat!("Opens the ", stringify!($name), " created under `name`.")]
            ///
            /// # Errors
            ///
            /// [`OpenError::NotFound`], [`OpenError::KindMismatch`] (a `Semaphore` is not a
            /// `BoundedSemaphore`) and the other [`OpenError`]s.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("assert!(shm_lock::", stringify!($name), "::open(\"no-such-semaphore\").is_err());")]
            /// ```
            pub fn open(name: &str) -> Result<Self, OpenError> {
                Self::from_shared(Shared::open($kind, size_of::<RawSemaphore>(), name)?)
            }

            fn from_shared(shared: Shared<RawSemaphore>) -> Result<Self, OpenError> {
                Ok($name { shared })
            }
        }

        impl Deref for $name {
            type Target = RawSemaphore;

            fn deref(&self) -> &RawSemaphore {
                self.shared.raw()
            }
        }

        handle_common!($name, RawSemaphore, $kind, size_of::<RawSemaphore>(), $new);
    };
}

semaphore_handle!(
    /// A counting semaphore shared between processes (Python's
    /// `multiprocessing.Semaphore`), in its own segment.
    ///
    /// Operations come from [`RawSemaphore`] through `Deref`. A permit held by a process
    /// that dies is lost; see the [module docs](crate::semaphore).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shm_lock::Semaphore::new(2)?;
    /// let a = sem.acquire();
    /// let b = sem.acquire();
    /// assert!(sem.try_acquire().is_err());
    /// drop((a, b));
    /// assert_eq!(sem.value(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Semaphore,
    ObjectKind::SEMAPHORE,
    false,
    "Semaphore::new(1)"
);

semaphore_handle!(
    /// A semaphore whose value may never exceed its initial value (Python's
    /// `multiprocessing.BoundedSemaphore`): releasing more than was acquired is
    /// [`SemaphoreReleaseError::TooManyReleases`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shm_lock::BoundedSemaphore::new(1)?;
    /// assert!(sem.release().is_err());
    /// sem.acquire().forget();
    /// assert!(sem.release().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    BoundedSemaphore,
    ObjectKind::BOUNDED_SEMAPHORE,
    true,
    "BoundedSemaphore::new(1)"
);
