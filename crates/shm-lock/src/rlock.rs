//! [`RLock`] and [`RawRLock`]: a robust, process-shared, re-entrant mutex.

use std::marker::PhantomData;
use std::ops::Deref;
use std::time::{Duration, Instant};

use shm_segment::futex::deadline_after;
use shm_segment::{CreateError, ObjectKind, OpenError};

use crate::error::{AcquireError, AcquireTimeoutError, ReleaseError, TryAcquireError};
use crate::layout::{MutexCell, RawRLock};
use crate::lock::{NotTaken, Taken, Wait};
use crate::shared::{Shared, handle_common};
use crate::sync::Ordering;
use crate::sys::{self, MutexType};

impl RawRLock {
    /// Initialises a re-entrant lock in place (unlocked).
    ///
    /// # Safety
    ///
    /// As [`RawLock::init`](crate::RawLock::init): `ptr` valid for writes, 8-aligned, unused
    /// by anyone until this returns.
    ///
    /// # Panics
    ///
    /// If glibc refuses to initialise a robust process-shared mutex (it never does on Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::MaybeUninit;
    /// use shm_lock::RawRLock;
    /// let mut memory = Box::new(MaybeUninit::<RawRLock>::uninit());
    /// // SAFETY: the memory is ours, writable and aligned.
    /// let lock = unsafe {
    ///     RawRLock::init(memory.as_mut_ptr());
    ///     RawRLock::from_ptr(memory.as_ptr())
    /// };
    /// let outer = lock.acquire().unwrap();
    /// let inner = lock.acquire().unwrap();
    /// assert_eq!(lock.count(), 2);
    /// # drop((inner, outer));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn init(ptr: *mut RawRLock) {
        // SAFETY: `ptr` is valid for writes (caller); the other fields are plain integers
        // (atomics have the layout of their integer), written before anyone can look.
        unsafe {
            MutexCell::init(std::ptr::addr_of_mut!((*ptr).mutex), MutexType::Recursive);
            std::ptr::addr_of_mut!((*ptr).owner_pid)
                .cast::<u32>()
                .write(0);
            std::ptr::addr_of_mut!((*ptr).owner_tid)
                .cast::<u32>()
                .write(0);
            std::ptr::addr_of_mut!((*ptr).count).cast::<u32>().write(0);
            std::ptr::addr_of_mut!((*ptr)._reserved).write(0);
        }
    }

    /// A reference to a lock initialised with [`init`](Self::init) (by any process).
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `RawRLock` initialised by [`init`](Self::init), mapped for `'a`.
    ///
    /// # Examples
    ///
    /// See [`init`](Self::init).
    pub unsafe fn from_ptr<'a>(ptr: *const RawRLock) -> &'a RawRLock {
        // SAFETY: the caller promises an initialised, mapped `RawRLock` for 'a; all fields
        // are interior-mutable.
        unsafe { &*ptr }
    }

    fn lock_with(&self, wait: Wait) -> Result<RLockGuard<'_>, (Option<RLockGuard<'_>>, NotTaken)> {
        let taken = self.mutex.lock(wait).map_err(|e| (None, e))?;
        let (pid, tid) = (sys::getpid(), sys::gettid());
        // Only the owner writes these fields, and we are the owner now.
        let reentry = taken == Taken::Clean
            && self.owner_tid.load(Ordering::Relaxed) == tid
            && self.owner_pid.load(Ordering::Relaxed) == pid;
        if reentry {
            self.count.fetch_add(1, Ordering::Relaxed);
        } else {
            // A fresh acquisition (also after a dead owner: glibc restarts its depth at 1).
            self.owner_pid.store(pid, Ordering::Relaxed);
            self.owner_tid.store(tid, Ordering::Relaxed);
            self.count.store(1, Ordering::Relaxed);
        }
        let guard = RLockGuard {
            lock: self,
            _not_send: PhantomData,
        };
        match taken {
            Taken::Clean => Ok(guard),
            Taken::OwnerDied => Err((Some(guard), NotTaken::WouldBlock)),
        }
    }

    /// Acquires the lock, blocking until it is free; re-entry by the owning thread only
    /// increments the depth. Each guard releases one level.
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] when the previous owner died holding it (the depth
    /// restarts at 1); [`AcquireError::NotRecoverable`] after an unmarked such guard was
    /// released. Never [`WouldDeadlock`](AcquireError::WouldDeadlock).
    ///
    /// # Panics
    ///
    /// If glibc reports an impossible error (the shared memory was overwritten) or at a re-entry depth of 2^32.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// let a = lock.acquire().unwrap();
    /// let b = lock.acquire().unwrap();
    /// assert_eq!(lock.count(), 2);
    /// drop(b);
    /// assert_eq!(lock.count(), 1);
    /// # drop(a);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        self.lock_with(Wait::Until(None)).map_err(|e| match e {
            (Some(guard), _) => AcquireError::OwnerDied(guard),
            (None, NotTaken::NotRecoverable) => AcquireError::NotRecoverable,
            (None, _) => AcquireError::WouldDeadlock,
        })
    }

    /// Acquires the lock if it is free or already held by the calling thread.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::WouldBlock`] when another thread holds it; otherwise as
    /// [`acquire`](Self::acquire).
    ///
    /// # Panics
    ///
    /// If glibc reports an impossible error (the shared memory was overwritten) or at a re-entry depth of 2^32.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// let a = lock.acquire().unwrap();
    /// assert!(lock.try_acquire().is_ok()); // re-entry
    /// let other = std::thread::scope(|s| s.spawn(|| lock.try_acquire().is_err()).join().unwrap());
    /// assert!(other);
    /// # drop(a);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<RLockGuard<'_>, TryAcquireError<RLockGuard<'_>>> {
        self.lock_with(Wait::No).map_err(|e| match e {
            (Some(guard), _) => TryAcquireError::OwnerDied(guard),
            (None, NotTaken::NotRecoverable) => TryAcquireError::NotRecoverable,
            (None, NotTaken::WouldDeadlock) => TryAcquireError::WouldDeadlock,
            (None, _) => TryAcquireError::WouldBlock,
        })
    }

    /// Acquires the lock, waiting at most `timeout` on the monotonic clock.
    ///
    /// # Errors
    ///
    /// [`AcquireTimeoutError::Timeout`]; otherwise as [`acquire`](Self::acquire).
    ///
    /// # Panics
    ///
    /// If glibc reports an impossible error (the shared memory was overwritten) or at a re-entry depth of 2^32.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = shm_lock::RLock::new()?;
    /// let guard = lock.acquire_timeout(Duration::from_secs(1)).unwrap();
    /// assert!(lock.is_owned());
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, AcquireTimeoutError<RLockGuard<'_>>> {
        self.acquire_until(deadline_after(timeout))
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout) with an absolute deadline.
    ///
    /// # Errors
    ///
    /// As [`acquire_timeout`](Self::acquire_timeout).
    ///
    /// # Panics
    ///
    /// If glibc reports an impossible error (the shared memory was overwritten) or at a re-entry depth of 2^32.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// let guard = lock.acquire_until(None).unwrap();
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<RLockGuard<'_>, AcquireTimeoutError<RLockGuard<'_>>> {
        self.lock_with(Wait::Until(deadline)).map_err(|e| match e {
            (Some(guard), _) => AcquireTimeoutError::OwnerDied(guard),
            (None, NotTaken::NotRecoverable) => AcquireTimeoutError::NotRecoverable,
            (None, NotTaken::WouldDeadlock) => AcquireTimeoutError::WouldDeadlock,
            (None, _) => AcquireTimeoutError::Timeout,
        })
    }

    /// Whether the calling thread holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// assert!(!lock.is_owned());
    /// let guard = lock.acquire().unwrap();
    /// assert!(lock.is_owned());
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_owned(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
            && self.owner_tid.load(Ordering::Relaxed) == sys::gettid()
            && self.owner_pid.load(Ordering::Relaxed) == sys::getpid()
    }

    /// How many levels the calling thread holds (0 when it does not own the lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// assert_eq!(lock.count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn count(&self) -> u32 {
        if self.is_owned() {
            self.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// The owner's process and thread id, as last recorded (`None` when free). A dead
    /// owner stays recorded until the next acquisition.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// let guard = lock.acquire().unwrap();
    /// assert_eq!(lock.owner().map(|(pid, _)| pid), Some(std::process::id()));
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn owner(&self) -> Option<(u32, u32)> {
        let pid = self.owner_pid.load(Ordering::Relaxed);
        (pid != 0).then(|| (pid, self.owner_tid.load(Ordering::Relaxed)))
    }

    /// Releases one level held by the calling thread without a guard (Python's
    /// `release()`): for a level kept with [`RLockGuard::keep`].
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotOwner`] when the calling thread does not hold the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// lock.acquire().unwrap().keep();
    /// assert!(lock.is_owned());
    /// lock.release()?;
    /// assert!(!lock.is_owned());
    /// assert_eq!(lock.release(), Err(shm_lock::ReleaseError::NotOwner));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        if !self.is_owned() {
            return Err(ReleaseError::NotOwner);
        }
        self.release_level();
        Ok(())
    }

    /// Releases one level; the caller is the owner.
    fn release_level(&self) {
        if self.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.owner_tid.store(0, Ordering::Relaxed);
            self.owner_pid.store(0, Ordering::Relaxed);
        }
        let owner = self.mutex.unlock();
        debug_assert!(owner, "shm-lock: RLock level released by a non-owner");
    }
}

// SAFETY: a process-shared pthread mutex plus atomics, made for concurrent use.
unsafe impl Sync for RawRLock {}
// SAFETY: holds no thread-affine data; ownership is the kernel thread id stored inside.
unsafe impl Send for RawRLock {}

impl std::fmt::Debug for RawRLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRLock")
            .field("owner", &self.owner())
            .finish_non_exhaustive()
    }
}

/// Holds one level of an [`RLock`] until dropped. Not `Send`: the owning thread releases.
///
/// # Examples
///
/// ```
/// let lock = shm_lock::RLock::new()?;
/// {
///     let _guard = lock.acquire().unwrap();
///     assert!(lock.is_owned());
/// }
/// assert!(!lock.is_owned());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RawRLock,
    _not_send: PhantomData<*const ()>,
}

impl RLockGuard<'_> {
    /// Declares the protected state consistent after
    /// [`OwnerDied`](AcquireError::OwnerDied); see
    /// [`LockGuard::mark_consistent`](crate::LockGuard::mark_consistent).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// std::thread::scope(|s| s.spawn(|| std::mem::forget(lock.acquire())).join().unwrap());
    /// let guard = lock.acquire().unwrap_err().into_owner_died().unwrap();
    /// guard.mark_consistent();
    /// drop(guard);
    /// assert!(lock.acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mark_consistent(&self) {
        self.lock.mutex.mark_consistent();
    }

    /// Keeps the level held after the guard is gone; release it later with
    /// [`RLock::release`](RawRLock::release) from the same thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::RLock::new()?;
    /// lock.acquire().unwrap().keep();
    /// assert_eq!(lock.count(), 1);
    /// lock.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release_level();
    }
}

impl std::fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RLockGuard { .. }")
    }
}

/// A robust re-entrant lock shared between processes (Python's `multiprocessing.RLock`), in
/// its own segment: the owning thread may acquire it again; it is free once every level is
/// released. A dead owner is reported like [`Lock`](crate::Lock)'s, whatever its depth.
///
/// All operations come from [`RawRLock`] through `Deref`.
///
/// # Examples
///
/// ```
/// let lock = shm_lock::RLock::new()?;
/// let outer = lock.acquire().unwrap();
/// let inner = lock.acquire().unwrap();
/// assert_eq!(lock.count(), 2);
/// drop(inner);
/// drop(outer);
/// assert_eq!(lock.count(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    shared: Shared<RawRLock>,
}

impl RLock {
    /// A new, unlocked re-entrant lock in an anonymous segment.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_lock::RLock::new()?.owner().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Self, CreateError> {
        let shared = Shared::create_anonymous(ObjectKind::RLOCK, size_of::<RawRLock>(), |raw| {
            // SAFETY: fresh segment memory, writable and aligned, seen by no one yet.
            unsafe { RawRLock::init(raw) }
        })?;
        Ok(RLock { shared })
    }

    /// A new re-entrant lock in the named segment `name`.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] and the other [`CreateError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-rlock-{}", std::process::id());
    /// let lock = shm_lock::RLock::create(&name)?;
    /// let same = shm_lock::RLock::open(&name)?;
    /// let guard = lock.acquire().unwrap();
    /// assert!(same.is_owned());
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<Self, CreateError> {
        let shared = Shared::create(ObjectKind::RLOCK, size_of::<RawRLock>(), name, |raw| {
            // SAFETY: fresh segment memory; openers wait until it is ready.
            unsafe { RawRLock::init(raw) }
        })?;
        Ok(RLock { shared })
    }

    /// Opens the re-entrant lock created under `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::KindMismatch`] and the other [`OpenError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_lock::RLock::open("no-such-rlock").is_err());
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_shared(Shared::open(
            ObjectKind::RLOCK,
            size_of::<RawRLock>(),
            name,
        )?)
    }

    fn from_shared(shared: Shared<RawRLock>) -> Result<Self, OpenError> {
        Ok(RLock { shared })
    }
}

impl Deref for RLock {
    type Target = RawRLock;

    fn deref(&self) -> &RawRLock {
        self.shared.raw()
    }
}

handle_common!(
    RLock,
    RawRLock,
    ObjectKind::RLOCK,
    size_of::<RawRLock>(),
    "RLock::new()"
);
