//! [`Lock`] and [`RawLock`]: a robust, process-shared, non-re-entrant mutex.

use std::marker::PhantomData;
use std::ops::Deref;
use std::time::{Duration, Instant};

use shm_segment::futex::deadline_after;
use shm_segment::{CreateError, ObjectKind, OpenError};

use crate::error::{AcquireError, AcquireTimeoutError, TryAcquireError};
use crate::layout::{MutexCell, RawLock};
use crate::shared::{Shared, handle_common};
use crate::sys::{self, MutexType, errno};

/// How long a lock call may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all.
    No,
    /// Until the deadline; `None` is forever.
    Until(Option<Instant>),
}

/// The lock was taken; whether its previous owner died holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    Clean,
    OwnerDied,
}

/// The lock was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotTaken {
    WouldBlock,
    Timeout,
    NotRecoverable,
    WouldDeadlock,
}

impl MutexCell {
    /// Initialises the robust process-shared mutex in place.
    ///
    /// # Safety
    ///
    /// `this` is valid for writes and not in use by anyone.
    pub(crate) unsafe fn init(this: *mut MutexCell, kind: MutexType) {
        // SAFETY: `MutexCell` is large and aligned enough for a `pthread_mutex_t` (layout
        // asserts) and the caller gives us exclusive, writable memory.
        let result = unsafe { sys::mutex_init(this.cast(), kind) };
        if let Err(e) = result {
            panic!("cannot initialise a robust process-shared pthread mutex: {e}");
        }
    }

    /// Locks, returning the raw pthread result classified.
    pub(crate) fn lock(&self, wait: Wait) -> Result<Taken, NotTaken> {
        let m = self.get();
        // SAFETY: every `MutexCell` reachable through a reference was initialised by
        // `init` (the `Raw*::init`/`from_ptr` contracts and segment creation guarantee it)
        // and is mapped for the lifetime of `&self`.
        let code = unsafe {
            match wait {
                // Not `pthread_mutex_trylock`: on a not-recoverable robust mutex, glibc's
                // trylock (2.36 at least) returns ENOTRECOVERABLE but leaves the lock word
                // held by the caller, so every later lock fails with EDEADLK or hangs. A
                // clocklock with a deadline already past does the same fast-path CAS and
                // unlocks correctly in that case.
                Wait::No => sys::mutex_clocklock(m, Instant::now()),
                Wait::Until(None) => sys::mutex_lock(m),
                Wait::Until(Some(deadline)) => sys::mutex_clocklock(m, deadline),
            }
        };
        match code {
            0 => Ok(Taken::Clean),
            errno::EOWNERDEAD => Ok(Taken::OwnerDied),
            errno::EBUSY => Err(NotTaken::WouldBlock),
            errno::ETIMEDOUT if matches!(wait, Wait::No) => Err(NotTaken::WouldBlock),
            errno::ETIMEDOUT => Err(NotTaken::Timeout),
            errno::ENOTRECOVERABLE => Err(NotTaken::NotRecoverable),
            errno::EDEADLK => Err(NotTaken::WouldDeadlock),
            errno::EAGAIN => {
                panic!("shm-lock: re-entry depth limit of the recursive mutex reached")
            }
            code => panic!(
                "shm-lock: pthread mutex call failed with {} (is the shared memory corrupt?)",
                std::io::Error::from_raw_os_error(code)
            ),
        }
    }

    /// Unlocks; `false` if the calling thread is not the owner (`EPERM`).
    pub(crate) fn unlock(&self) -> bool {
        // SAFETY: as in `lock`.
        let code = unsafe { sys::mutex_unlock(self.get()) };
        code != errno::EPERM
    }

    /// Marks the state protected by an `EOWNERDEAD` mutex consistent again.
    pub(crate) fn mark_consistent(&self) {
        // SAFETY: as in `lock`. On a mutex that is not inconsistent, or not held by the
        // caller, glibc returns EINVAL and changes nothing.
        let _ = unsafe { sys::mutex_consistent(self.get()) };
    }
}

impl RawLock {
    /// Initialises a lock in place (unlocked): for a `RawLock` embedded in a shared
    /// structure. [`Lock::new`] does this for you.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for writes of a `RawLock`, 8-aligned, and in memory no other
    /// thread or process uses until this returns. Re-initialising a lock someone may hold
    /// or wait on is undefined behaviour.
    ///
    /// # Panics
    ///
    /// If glibc refuses to initialise a robust process-shared mutex (it never does on
    /// Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::MaybeUninit;
    /// use shm_lock::RawLock;
    /// let mut memory = Box::new(MaybeUninit::<RawLock>::uninit());
    /// // SAFETY: the memory is ours, writable and aligned.
    /// let lock = unsafe {
    ///     RawLock::init(memory.as_mut_ptr());
    ///     RawLock::from_ptr(memory.as_ptr())
    /// };
    /// assert!(lock.try_acquire().is_ok());
    /// ```
    pub unsafe fn init(ptr: *mut RawLock) {
        // SAFETY: `ptr` is valid for writes (caller); the fields are plain data.
        unsafe {
            MutexCell::init(std::ptr::addr_of_mut!((*ptr).mutex), MutexType::ErrorCheck);
            std::ptr::addr_of_mut!((*ptr)._reserved).write([0; 2]);
        }
    }

    /// A reference to a lock initialised with [`init`](Self::init) (by any process).
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `RawLock` initialised by [`init`](Self::init), and stay mapped
    /// for `'a`.
    ///
    /// # Examples
    ///
    /// See [`init`](Self::init).
    pub unsafe fn from_ptr<'a>(ptr: *const RawLock) -> &'a RawLock {
        // SAFETY: the caller promises an initialised, mapped `RawLock` for 'a; it only has
        // interior-mutable fields, so a shared reference is sound.
        unsafe { &*ptr }
    }

    pub(crate) fn lock_with(&self, wait: Wait) -> Result<Taken, NotTaken> {
        self.mutex.lock(wait)
    }

    /// Acquires the lock, blocking until it is free.
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] with the guard when the previous owner died holding it;
    /// [`AcquireError::NotRecoverable`] when an earlier such guard was released without
    /// [`LockGuard::mark_consistent`]; [`AcquireError::WouldDeadlock`] when the calling
    /// thread holds it already.
    ///
    /// # Panics
    ///
    /// If glibc reports an impossible error (the shared memory was overwritten).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::Lock::new()?;
    /// let guard = lock.acquire().unwrap();
    /// assert!(lock.try_acquire().is_err());
    /// drop(guard);
    /// assert!(lock.try_acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        match self.lock_with(Wait::Until(None)) {
            Ok(taken) => self.guard(taken).map_err(AcquireError::OwnerDied),
            Err(NotTaken::NotRecoverable) => Err(AcquireError::NotRecoverable),
            Err(NotTaken::WouldDeadlock) => Err(AcquireError::WouldDeadlock),
            Err(NotTaken::WouldBlock | NotTaken::Timeout) => {
                unreachable!("a blocking lock neither fails nor times out")
            }
        }
    }

    /// Acquires the lock if it is free now.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::WouldBlock`] when it is held; otherwise as [`acquire`](Self::acquire).
    ///
    /// # Panics
    ///
    /// If glibc reports an impossible error (the shared memory was overwritten).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::Lock::new()?;
    /// let guard = lock.try_acquire().unwrap();
    /// assert!(matches!(lock.try_acquire(), Err(shm_lock::TryAcquireError::WouldDeadlock)));
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<LockGuard<'_>, TryAcquireError<LockGuard<'_>>> {
        match self.lock_with(Wait::No) {
            Ok(taken) => self.guard(taken).map_err(TryAcquireError::OwnerDied),
            Err(NotTaken::WouldBlock | NotTaken::Timeout) => Err(TryAcquireError::WouldBlock),
            Err(NotTaken::NotRecoverable) => Err(TryAcquireError::NotRecoverable),
            Err(NotTaken::WouldDeadlock) => Err(TryAcquireError::WouldDeadlock),
        }
    }

    /// Acquires the lock, waiting at most `timeout` (measured on the monotonic clock from
    /// now; never returns [`Timeout`](AcquireTimeoutError::Timeout) earlier).
    ///
    /// # Errors
    ///
    /// [`AcquireTimeoutError::Timeout`]; otherwise as [`acquire`](Self::acquire).
    ///
    /// # Panics
    ///
    /// If glibc reports an impossible error (the shared memory was overwritten).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = shm_lock::Lock::new()?;
    /// let guard = lock.acquire_timeout(Duration::from_secs(1)).unwrap();
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, AcquireTimeoutError<LockGuard<'_>>> {
        self.acquire_until(deadline_after(timeout))
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout) with an absolute deadline (`None`:
    /// none).
    ///
    /// # Errors
    ///
    /// As [`acquire_timeout`](Self::acquire_timeout).
    ///
    /// # Panics
    ///
    /// If glibc reports an impossible error (the shared memory was overwritten).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let lock = shm_lock::Lock::new()?;
    /// let guard = lock.acquire_until(Some(Instant::now() + Duration::from_secs(1))).unwrap();
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<LockGuard<'_>, AcquireTimeoutError<LockGuard<'_>>> {
        match self.lock_with(Wait::Until(deadline)) {
            Ok(taken) => self.guard(taken).map_err(AcquireTimeoutError::OwnerDied),
            Err(NotTaken::WouldBlock | NotTaken::Timeout) => Err(AcquireTimeoutError::Timeout),
            Err(NotTaken::NotRecoverable) => Err(AcquireTimeoutError::NotRecoverable),
            Err(NotTaken::WouldDeadlock) => Err(AcquireTimeoutError::WouldDeadlock),
        }
    }

    /// Wraps a lock the caller now holds in a guard: `Ok` when clean, `Err` (the same
    /// guard) when the previous owner died.
    pub(crate) fn guard(&self, taken: Taken) -> Result<LockGuard<'_>, LockGuard<'_>> {
        let guard = LockGuard {
            lock: self,
            _not_send: PhantomData,
        };
        match taken {
            Taken::Clean => Ok(guard),
            Taken::OwnerDied => Err(guard),
        }
    }

    /// Releases a lock held by the calling thread without a guard.
    pub(crate) fn unlock(&self) {
        let owner = self.mutex.unlock();
        debug_assert!(owner, "shm-lock: unlocking a lock the thread does not hold");
    }
}

/// Holds a [`Lock`] (or an embedded [`RawLock`]) until dropped.
///
/// A guard belongs to the thread that acquired the lock (a pthread mutex is released by
/// its owner), so it is neither `Send` nor `Sync`.
///
/// # Examples
///
/// ```
/// let lock = shm_lock::Lock::new()?;
/// {
///     let _guard = lock.acquire().unwrap();
///     // ... the protected section ...
/// }
/// assert!(lock.try_acquire().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    pub(crate) lock: &'a RawLock,
    _not_send: PhantomData<*const ()>,
}

impl LockGuard<'_> {
    /// Declares the state protected by the lock consistent again after
    /// [`OwnerDied`](AcquireError::OwnerDied): the lock then works normally. Without this,
    /// releasing a guard received with `OwnerDied` makes the lock permanently
    /// [`NotRecoverable`](AcquireError::NotRecoverable). Does nothing on a guard acquired
    /// normally.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_lock::{AcquireError, Lock};
    /// let lock = Lock::new()?;
    /// // A thread that exits holding the lock counts as a dead owner too.
    /// std::thread::scope(|s| s.spawn(|| std::mem::forget(lock.acquire())).join().unwrap());
    /// match lock.acquire() {
    ///     Err(AcquireError::OwnerDied(guard)) => guard.mark_consistent(),
    ///     other => panic!("expected OwnerDied, got {:?}", other.map(drop)),
    /// }
    /// assert!(lock.acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mark_consistent(&self) {
        self.lock.mutex.mark_consistent();
    }

    /// The lock this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::Lock::new()?;
    /// let guard = lock.acquire().unwrap();
    /// assert!(std::ptr::eq(guard.lock(), &*lock));
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> &RawLock {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl std::fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard { .. }")
    }
}

impl std::fmt::Debug for RawLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawLock { .. }")
    }
}

// SAFETY: a `RawLock` is a process-shared pthread mutex, made to be used from many threads
// and processes at once; every access goes through pthread calls.
unsafe impl Sync for RawLock {}
// SAFETY: as above; it holds no thread-affine data (ownership is tracked by the kernel
// thread id inside the mutex, not by where the `RawLock` value lives).
unsafe impl Send for RawLock {}

/// A robust lock shared between processes (Python's `multiprocessing.Lock`), in its own
/// segment.
///
/// Not re-entrant: a thread acquiring it twice gets [`AcquireError::WouldDeadlock`]
/// instead of hanging. If the owner dies — killed by any signal, or exiting without
/// releasing — the next acquirer gets the lock with [`AcquireError::OwnerDied`]; see
/// [`LockGuard::mark_consistent`]. The kernel's robust-futex list reports the death, so
/// this works even after `SIGKILL`; no lock is ever left held by a dead process.
///
/// All lock operations come from [`RawLock`] through `Deref`.
///
/// # Examples
///
/// ```
/// use shm_lock::Lock;
/// let lock = Lock::new()?;
/// let guard = lock.acquire().unwrap();
/// assert!(lock.try_acquire().is_err());
/// drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    shared: Shared<RawLock>,
}

impl Lock {
    /// A new, unlocked lock in an anonymous segment; share it with other processes by
    /// serialising the handle.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the segment cannot be made (out of memory).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shm_lock::Lock::new()?;
    /// assert!(lock.name().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Self, CreateError> {
        let shared = Shared::create_anonymous(ObjectKind::LOCK, size_of::<RawLock>(), |raw| {
            // SAFETY: fresh segment memory, writable, 128-aligned, seen by no one yet.
            unsafe { RawLock::init(raw) }
        })?;
        Ok(Lock { shared })
    }

    /// A new, unlocked lock in the named segment `/dev/shm/multiproc.<name>` (removed when
    /// this handle drops, unless [`persist`](shm_segment::Segment::persist)ed).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`], an invalid name, and the other [`CreateError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-lock-{}", std::process::id());
    /// let lock = shm_lock::Lock::create(&name)?;
    /// let same = shm_lock::Lock::open(&name)?;
    /// let guard = lock.acquire().unwrap();
    /// assert!(same.try_acquire().is_err());
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<Self, CreateError> {
        let shared = Shared::create(ObjectKind::LOCK, size_of::<RawLock>(), name, |raw| {
            // SAFETY: fresh segment memory, writable, 128-aligned; openers wait for ready.
            unsafe { RawLock::init(raw) }
        })?;
        Ok(Lock { shared })
    }

    /// Opens the lock created under `name` by [`create`](Self::create).
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::KindMismatch`] for another kind of object, and
    /// the other [`OpenError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::OpenError;
    /// assert!(matches!(shm_lock::Lock::open("no-such-lock-here"), Err(OpenError::NotFound { .. })));
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_shared(Shared::open(ObjectKind::LOCK, size_of::<RawLock>(), name)?)
    }

    fn from_shared(shared: Shared<RawLock>) -> Result<Self, OpenError> {
        Ok(Lock { shared })
    }
}

impl Deref for Lock {
    type Target = RawLock;

    fn deref(&self) -> &RawLock {
        self.shared.raw()
    }
}

handle_common!(
    Lock,
    RawLock,
    ObjectKind::LOCK,
    size_of::<RawLock>(),
    "Lock::new()"
);
