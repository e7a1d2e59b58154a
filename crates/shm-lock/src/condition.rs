//! [`Condition`] and [`RawCondition`]: a condition variable bound to its own robust lock.
//!
//! # Processes that die
//!
//! * A waiter killed while blocked is dropped from the kernel's futex queue: other waiters
//!   and [`notify_all`](RawCondition::notify_all) are unaffected.
//! * A waiter killed after [`notify`](RawCondition::notify) woke it, before it re-acquired
//!   the lock, takes that notification with it: `notify(n)` then wakes fewer than `n`
//!   living waiters. Waiters should use [`wait_while`](RawCondition::wait_while) or a
//!   time-out, or notifiers `notify_all`, where processes may die.
//! * A process killed while holding the lock (before waiting, or after waking) is a dead
//!   lock owner: the next acquirer, or the next waiter to wake, gets
//!   [`AcquireError::OwnerDied`] with the guard.
//!
//! `wait` may return spuriously (as `std::sync::Condvar` can); loop on a predicate, as
//! [`wait_while`](RawCondition::wait_while) does.

use std::ops::Deref;
use std::time::{Duration, Instant};

use shm_segment::futex::deadline_after;
use shm_segment::{CreateError, ObjectKind, OpenError};

use crate::error::AcquireError;
use crate::layout::{RawCondition, RawLock};
use crate::lock::{LockGuard, NotTaken, Wait};
use crate::shared::{Shared, handle_common};
use crate::sync::Ordering;
use crate::sys::futex::{self, WaitOutcome};

/// Whether a timed condition wait ran out of time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let cond = shm_lock::Condition::new()?;
/// let guard = cond.acquire().unwrap();
/// let (_guard, result) = cond.wait_timeout(guard, Duration::from_millis(1)).unwrap();
/// assert!(result.timed_out());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the time-out passed (for the `_while` forms: with the condition still
    /// true).
    ///
    /// # Examples
    ///
    /// See [`WaitTimeoutResult`].
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl RawCondition {
    /// Initialises a condition (and its lock) in place.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for writes of a `RawCondition`, 8-aligned, and unused until this
    /// returns.
    ///
    /// # Panics
    ///
    /// If glibc refuses to initialise the robust mutex (it never does on Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::MaybeUninit;
    /// use shm_lock::RawCondition;
    /// let mut memory = Box::new(MaybeUninit::<RawCondition>::uninit());
    /// // SAFETY: the memory is ours, writable and aligned.
    /// let cond = unsafe {
    ///     RawCondition::init(memory.as_mut_ptr());
    ///     RawCondition::from_ptr(memory.as_ptr())
    /// };
    /// assert!(cond.try_acquire().is_ok());
    /// ```
    pub unsafe fn init(ptr: *mut RawCondition) {
        // SAFETY: valid for writes (caller); the lock is initialised by its own `init` and
        // the rest are integers.
        unsafe {
            RawLock::init(std::ptr::addr_of_mut!((*ptr).lock));
            std::ptr::addr_of_mut!((*ptr).seq).cast::<u32>().write(0);
            std::ptr::addr_of_mut!((*ptr)._reserved).write([0; 15]);
        }
    }

    /// A reference to a condition initialised with [`init`](Self::init).
    ///
    /// # Safety
    ///
    /// `ptr` must point to an initialised `RawCondition`, mapped for `'a`.
    ///
    /// # Examples
    ///
    /// See [`init`](Self::init).
    pub unsafe fn from_ptr<'a>(ptr: *const RawCondition) -> &'a RawCondition {
        // SAFETY: the caller promises an initialised, mapped condition; interior-mutable.
        unsafe { &*ptr }
    }

    /// The lock the condition is bound to; acquire it through `acquire`, `try_acquire`,
    /// `acquire_timeout` (by `Deref`, see [`RawLock`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = shm_lock::Condition::new()?;
    /// let guard = cond.lock().acquire().unwrap();
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> &RawLock {
        &self.lock
    }

    fn check_guard(&self, guard: &LockGuard<'_>) {
        assert!(
            std::ptr::eq(guard.lock, &self.lock),
            "shm-lock: Condition::wait called with a guard of another lock"
        );
    }

    /// Releases the lock, sleeps until notified or `deadline`, re-acquires it. Returns
    /// whether the deadline passed.
    fn wait_once<'a>(
        &self,
        guard: LockGuard<'a>,
        deadline: Option<Instant>,
    ) -> Result<(LockGuard<'a>, bool), AcquireError<LockGuard<'a>>> {
        self.check_guard(&guard);
        let lock = guard.lock;
        // Read under the lock: a notifier that changed the state under the lock bumps
        // `seq` after our read, so the futex wait below sees the change and returns.
        // [cond-seq] Acquire: pairs with the Release in `notify_n`.
        let seq = self.seq.load(Ordering::Acquire);
        drop(guard);
        let outcome = futex::wait(&self.seq, seq, deadline);
        let timed_out = outcome == WaitOutcome::TimedOut;
        match lock.lock_with(Wait::Until(None)) {
            Ok(taken) => match lock.guard(taken) {
                Ok(guard) => Ok((guard, timed_out)),
                Err(guard) => Err(AcquireError::OwnerDied(guard)),
            },
            Err(NotTaken::NotRecoverable) => Err(AcquireError::NotRecoverable),
            Err(_) => Err(AcquireError::WouldDeadlock),
        }
    }

    /// Releases the lock held by `guard`, sleeps until notified, and re-acquires the lock.
    /// May return spuriously: re-check the condition ([`wait_while`](Self::wait_while) does).
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] (with the guard) when another process died holding the
    /// lock while this one slept; [`AcquireError::NotRecoverable`].
    ///
    /// # Panics
    ///
    /// If `guard` holds a lock other than this condition's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let cond = shm_lock::Condition::new()?;
    /// let ready = AtomicBool::new(false);
    /// std::thread::scope(|s| -> Result<(), Box<dyn std::error::Error + '_>> {
    ///     s.spawn(|| {
    ///         let _guard = cond.acquire().unwrap();
    ///         ready.store(true, Ordering::Relaxed);
    ///         cond.notify_all();
    ///     });
    ///     let mut guard = cond.acquire().unwrap();
    ///     while !ready.load(Ordering::Relaxed) {
    ///         guard = cond.wait(guard).unwrap();
    ///     }
    ///     Ok(())
    /// }).map_err(|e| e.to_string())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait<'a>(
        &self,
        guard: LockGuard<'a>,
    ) -> Result<LockGuard<'a>, AcquireError<LockGuard<'a>>> {
        self.wait_once(guard, None).map(|(guard, _)| guard)
    }

    /// Like [`wait`](Self::wait), sleeping at most `timeout` (the re-acquisition of the
    /// lock afterwards is not bounded by it, as with `std::sync::Condvar`).
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// If `guard` holds a lock other than this condition's.
    ///
    /// # Examples
    ///
    /// See [`WaitTimeoutResult`].
    pub fn wait_timeout<'a>(
        &self,
        guard: LockGuard<'a>,
        timeout: Duration,
    ) -> Result<(LockGuard<'a>, WaitTimeoutResult), AcquireError<LockGuard<'a>>> {
        self.wait_once(guard, deadline_after(timeout))
            .map(|(guard, t)| (guard, WaitTimeoutResult(t)))
    }

    /// Waits while `condition()` is true (Python's `wait_for` with the predicate negated),
    /// checking it first under the lock.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// If `guard` holds a lock other than this condition's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// let cond = shm_lock::Condition::new()?;
    /// let items = AtomicU32::new(0);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let _guard = cond.acquire().unwrap();
    ///         items.store(3, Ordering::Relaxed);
    ///         cond.notify(1);
    ///     });
    ///     let guard = cond.acquire().unwrap();
    ///     let _guard = cond.wait_while(guard, || items.load(Ordering::Relaxed) == 0).unwrap();
    ///     assert_eq!(items.load(Ordering::Relaxed), 3);
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_while<'a>(
        &self,
        mut guard: LockGuard<'a>,
        mut condition: impl FnMut() -> bool,
    ) -> Result<LockGuard<'a>, AcquireError<LockGuard<'a>>> {
        while condition() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Waits while `condition()` is true, at most `timeout` in all. The result tells
    /// whether it timed out with the condition still true.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// If `guard` holds a lock other than this condition's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let cond = shm_lock::Condition::new()?;
    /// let guard = cond.acquire().unwrap();
    /// let (_guard, result) = cond.wait_timeout_while(guard, Duration::from_millis(5), || true).unwrap();
    /// assert!(result.timed_out());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout_while<'a>(
        &self,
        mut guard: LockGuard<'a>,
        timeout: Duration,
        mut condition: impl FnMut() -> bool,
    ) -> Result<(LockGuard<'a>, WaitTimeoutResult), AcquireError<LockGuard<'a>>> {
        let deadline = deadline_after(timeout);
        loop {
            if !condition() {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = self.wait_once(guard, deadline)?.0;
        }
    }

    /// Wakes at most `n` waiters (Python's `notify(n)`). Hold the lock while changing the
    /// state the waiters test; notifying itself does not need it.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = shm_lock::Condition::new()?;
    /// cond.notify(1); // nobody waits: nothing happens
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn notify(&self, n: u32) {
        // [cond-seq] Release: pairs with the Acquire load in `wait_once`.
        self.seq.fetch_add(1, Ordering::Release);
        if n > 0 {
            futex::wake(&self.seq, n);
        }
    }

    /// Wakes every waiter, in every process.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = shm_lock::Condition::new()?;
    /// cond.notify_all();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn notify_all(&self) {
        // [cond-seq] Release: pairs with the Acquire load in `wait_once`.
        self.seq.fetch_add(1, Ordering::Release);
        futex::wake_all(&self.seq);
    }
}

impl Deref for RawCondition {
    type Target = RawLock;

    fn deref(&self) -> &RawLock {
        &self.lock
    }
}

impl std::fmt::Debug for RawCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawCondition { .. }")
    }
}

/// A condition variable shared between processes, bound to its own robust lock (Python's
/// `multiprocessing.Condition`), in its own segment.
///
/// Operations come from [`RawCondition`] through `Deref`, and the lock's from [`RawLock`].
/// What a dying waiter means for the others is in the [module docs](crate::condition).
///
/// # Examples
///
/// ```
/// let cond = shm_lock::Condition::new()?;
/// let guard = cond.acquire().unwrap();
/// cond.notify_all();
/// drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Condition {
    shared: Shared<RawCondition>,
}

impl Condition {
    /// A new condition with its lock, in an anonymous segment.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = shm_lock::Condition::new()?;
    /// assert!(cond.try_acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Self, CreateError> {
        let shared =
            Shared::create_anonymous(ObjectKind::CONDITION, size_of::<RawCondition>(), |raw| {
                // SAFETY: fresh segment memory, writable and aligned, seen by no one.
                unsafe { RawCondition::init(raw) }
            })?;
        Ok(Condition { shared })
    }

    /// A new condition in the named segment `name`.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] and the other [`CreateError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-cond-{}", std::process::id());
    /// let cond = shm_lock::Condition::create(&name)?;
    /// let same = shm_lock::Condition::open(&name)?;
    /// let guard = cond.acquire().unwrap();
    /// assert!(same.try_acquire().is_err());
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<Self, CreateError> {
        let shared = Shared::create(
            ObjectKind::CONDITION,
            size_of::<RawCondition>(),
            name,
            |raw| {
                // SAFETY: fresh segment memory; openers wait until it is ready.
                unsafe { RawCondition::init(raw) }
            },
        )?;
        Ok(Condition { shared })
    }

    /// Opens the condition created under `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::KindMismatch`] and the other [`OpenError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_lock::Condition::open("no-such-condition").is_err());
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_shared(Shared::open(
            ObjectKind::CONDITION,
            size_of::<RawCondition>(),
            name,
        )?)
    }

    fn from_shared(shared: Shared<RawCondition>) -> Result<Self, OpenError> {
        Ok(Condition { shared })
    }
}

impl Deref for Condition {
    type Target = RawCondition;

    fn deref(&self) -> &RawCondition {
        self.shared.raw()
    }
}

handle_common!(
    Condition,
    RawCondition,
    ObjectKind::CONDITION,
    size_of::<RawCondition>(),
    "Condition::new()"
);
