//! [`Array<T>`]: a fixed-length array of plain data with its own robust lock.
//!
//! Every element access happens under the lock (there are no lock-free element
//! operations), so [`ArrayGuard`] hands out the shared elements themselves as `&mut [T]`.
//! A process killed while holding the guard may leave some elements written and others
//! not; the next locker gets [`AcquireError::OwnerDied`] and decides.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use shm_segment::{CreateError, ObjectKind, OpenError};

use crate::error::{AcquireError, AcquireTimeoutError, TryAcquireError};
use crate::layout::{ARRAY_DATA_OFFSET, RawArrayHeader, RawLock};
use crate::lock::LockGuard;
use crate::shared::{Shared, handle_common};
use crate::sync::Ordering;
use crate::value::Plain;

fn data_len<T>(len: usize) -> Option<usize> {
    len.checked_mul(size_of::<T>())?
        .checked_add(ARRAY_DATA_OFFSET)
}

/// Initialises an array header and zeroes (or fills) the elements.
///
/// # Safety
///
/// `ptr` is valid for writes of `data_len::<T>(len)` bytes, 128-aligned, unused by anyone.
unsafe fn init<T: Plain>(ptr: *mut RawArrayHeader<T>, len: usize, from: Option<&[T]>) {
    // SAFETY: valid for writes and unused (caller); the elements start at a 128-aligned
    // offset, which is aligned for `T` (asserted by the callers).
    unsafe {
        RawLock::init(std::ptr::addr_of_mut!((*ptr).lock));
        std::ptr::addr_of_mut!((*ptr).len)
            .cast::<u64>()
            .write(len as u64);
        std::ptr::addr_of_mut!((*ptr)._reserved).write([0; 7]);
        let elems = ptr.cast::<u8>().add(ARRAY_DATA_OFFSET);
        match from {
            Some(values) => std::ptr::copy_nonoverlapping(values.as_ptr(), elems.cast::<T>(), len),
            None => elems.write_bytes(0, len * size_of::<T>()),
        }
    }
}

/// A fixed-length array of plain data shared between processes, with its own robust lock
/// (Python's `multiprocessing.Array`), in its own segment.
///
/// # Examples
///
/// ```
/// let array = shm_lock::Array::<u32>::new(4)?;
/// array.lock().unwrap()[2] = 7;
/// assert_eq!(array.to_vec().unwrap(), [0, 0, 7, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Array<T: Plain> {
    shared: Shared<RawArrayHeader<T>>,
    len: usize,
}

impl<T: Plain> Array<T> {
    const ALIGNED: () = assert!(
        align_of::<T>() <= ARRAY_DATA_OFFSET,
        "Array elements must be aligned to at most 128"
    );

    /// A new array of `len` zeroed elements, in an anonymous segment.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidSize`] when the length is too large, and the other
    /// [`CreateError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// let array = shm_lock::Array::<f64>::new(3)?;
    /// assert_eq!(array.len(), 3);
    /// assert_eq!(array.get(0).unwrap(), 0.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(len: usize) -> Result<Self, CreateError> {
        Self::make(None, len, None)
    }

    /// A new array holding a copy of `values`, in an anonymous segment.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let array = shm_lock::Array::from_slice(&[1u8, 2, 3])?;
    /// assert_eq!(array.to_vec().unwrap(), [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Self, CreateError> {
        Self::make(None, values.len(), Some(values))
    }

    /// A new array of `len` zeroed elements in the named segment `name`.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] and the errors of [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-array-{}", std::process::id());
    /// let array = shm_lock::Array::<u16>::create(&name, 2)?;
    /// shm_lock::Array::<u16>::open(&name)?.set(1, 5).unwrap();
    /// assert_eq!(array.to_vec().unwrap(), [0, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, len: usize) -> Result<Self, CreateError> {
        Self::make(Some(name), len, None)
    }

    fn make(name: Option<&str>, len: usize, from: Option<&[T]>) -> Result<Self, CreateError> {
        #[allow(clippy::let_unit_value)]
        let () = Self::ALIGNED;
        let bytes = data_len::<T>(len).ok_or_else(|| CreateError::InvalidSize {
            reason: format!("an array of {len} elements is too large"),
        })?;
        let init = |raw: *mut RawArrayHeader<T>| {
            // SAFETY: fresh segment memory of `bytes` data bytes, 128-aligned, unused.
            unsafe { init(raw, len, from) }
        };
        let shared = match name {
            None => Shared::create_anonymous(ObjectKind::ARRAY, bytes, init)?,
            Some(name) => Shared::create(ObjectKind::ARRAY, bytes, name, init)?,
        };
        Ok(Array { shared, len })
    }

    /// Opens the array created under `name`, which must hold `T`s.
    ///
    /// # Errors
    ///
    /// [`OpenError::TypeMismatch`] for another element type, [`OpenError::Corrupt`] when
    /// the segment is shorter than its length says, [`OpenError::NotFound`] and the other
    /// [`OpenError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_lock::Array::<u8>::open("no-such-array").is_err());
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_shared(Shared::open(ObjectKind::ARRAY, ARRAY_DATA_OFFSET, name)?)
    }

    fn from_shared(shared: Shared<RawArrayHeader<T>>) -> Result<Self, OpenError> {
        #[allow(clippy::let_unit_value)]
        let () = Self::ALIGNED;
        let len = shared.raw().len.load(Ordering::Relaxed);
        let needed = usize::try_from(len).ok().and_then(data_len::<T>);
        match needed {
            Some(needed) if needed <= shared.segment().data_len() => Ok(Array {
                shared,
                len: len as usize,
            }),
            _ => Err(OpenError::Corrupt {
                segment: shared
                    .segment()
                    .name()
                    .map_or("anonymous segment".to_owned(), |n| format!("segment '{n}'")),
                reason: format!(
                    "array of {len} elements does not fit {} data bytes",
                    shared.segment().data_len()
                ),
            }),
        }
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Array::<u8>::new(5)?.len(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_lock::Array::<u8>::new(0)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The lock protecting the elements (Python's `get_lock()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let array = shm_lock::Array::<u8>::new(1)?;
    /// let guard = array.get_lock().acquire().unwrap();
    /// assert!(array.try_lock().is_err());
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_lock(&self) -> &RawLock {
        &self.shared.raw().lock
    }

    fn guard<'a>(&'a self, lock: LockGuard<'a>) -> ArrayGuard<'a, T> {
        // SAFETY: the segment holds `len` initialised `T`s from ARRAY_DATA_OFFSET (checked
        // at open), aligned for `T`; the lock is held, so no other thread or process
        // touches them while the guard — which borrows `self` — lives.
        let elems = unsafe { self.shared.data_ptr().add(ARRAY_DATA_OFFSET).cast::<T>() };
        ArrayGuard {
            elems,
            len: self.len,
            lock,
            _elems: PhantomData,
        }
    }

    /// Locks the array and returns a guard that dereferences to the elements.
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] with the guard when a process died holding the lock
    /// (elements may be half-updated); [`AcquireError::NotRecoverable`];
    /// [`AcquireError::WouldDeadlock`].
    ///
    /// # Examples
    ///
    /// ```
    /// let array = shm_lock::Array::<i32>::new(3)?;
    /// array.lock().unwrap().copy_from_slice(&[1, 2, 3]);
    /// assert_eq!(array.lock().unwrap().iter().sum::<i32>(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, AcquireError<ArrayGuard<'_, T>>> {
        match self.get_lock().acquire() {
            Ok(lock) => Ok(self.guard(lock)),
            Err(e) => Err(e.map_guard(|lock| self.guard(lock))),
        }
    }

    /// Locks the array if the lock is free now.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::WouldBlock`]; otherwise as [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let array = shm_lock::Array::<u8>::new(1)?;
    /// assert_eq!(array.try_lock().unwrap().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, TryAcquireError<ArrayGuard<'_, T>>> {
        match self.get_lock().try_acquire() {
            Ok(lock) => Ok(self.guard(lock)),
            Err(e) => Err(e.map_guard(|lock| self.guard(lock))),
        }
    }

    /// Locks the array, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`AcquireTimeoutError::Timeout`]; otherwise as [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let array = shm_lock::Array::<u8>::new(1)?;
    /// array.lock_timeout(Duration::from_secs(1)).unwrap()[0] = 1;
    /// assert_eq!(array.get(0).unwrap(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T>, AcquireTimeoutError<ArrayGuard<'_, T>>> {
        match self.get_lock().acquire_timeout(timeout) {
            Ok(lock) => Ok(self.guard(lock)),
            Err(e) => Err(e.map_guard(|lock| self.guard(lock))),
        }
    }

    /// Element `index`, read under the lock (Python's `a[i]`).
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Array::from_slice(&[4u8, 5])?.get(1).unwrap(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<T, AcquireError<ArrayGuard<'_, T>>> {
        assert!(
            index < self.len,
            "index {index} out of bounds for an Array of length {}",
            self.len
        );
        self.lock().map(|guard| guard[index])
    }

    /// Stores `value` at `index` under the lock (Python's `a[i] = x`).
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock); nothing is written then.
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let array = shm_lock::Array::<u8>::new(2)?;
    /// array.set(0, 9).unwrap();
    /// assert_eq!(array.to_vec().unwrap(), [9, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<(), AcquireError<ArrayGuard<'_, T>>> {
        assert!(
            index < self.len,
            "index {index} out of bounds for an Array of length {}",
            self.len
        );
        self.lock().map(|mut guard| guard[index] = value)
    }

    /// A copy of all elements, taken under the lock.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Array::<u8>::new(2)?.to_vec().unwrap(), [0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>, AcquireError<ArrayGuard<'_, T>>> {
        self.lock().map(|guard| guard.to_vec())
    }
}

/// The locked elements of an [`Array`]; dereferences to `[T]`. Not `Send` (the lock belongs
/// to this thread).
///
/// # Examples
///
/// ```
/// let array = shm_lock::Array::<u8>::new(3)?;
/// let mut guard = array.lock().unwrap();
/// guard.fill(1);
/// assert_eq!(&*guard, &[1, 1, 1]);
/// # drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the array is unlocked as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: Plain> {
    elems: *mut T,
    len: usize,
    lock: LockGuard<'a>,
    _elems: PhantomData<&'a mut [T]>,
}

impl<T: Plain> ArrayGuard<'_, T> {
    /// Declares the elements consistent after
    /// [`OwnerDied`](crate::AcquireError::OwnerDied); see [`LockGuard::mark_consistent`].
    ///
    /// # Examples
    ///
    /// ```
    /// let array = shm_lock::Array::<u8>::new(1)?;
    /// std::thread::scope(|s| s.spawn(|| std::mem::forget(array.lock())).join().unwrap());
    /// let guard = array.lock().unwrap_err().into_owner_died().unwrap();
    /// guard.mark_consistent();
    /// drop(guard);
    /// assert!(array.lock().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mark_consistent(&self) {
        self.lock.mark_consistent();
    }
}

impl<T: Plain> Deref for ArrayGuard<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `elems` points to `len` initialised, aligned `T`s that the held lock
        // reserves to this guard for its lifetime.
        unsafe { std::slice::from_raw_parts(self.elems, self.len) }
    }
}

impl<T: Plain> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow of the elements.
        unsafe { std::slice::from_raw_parts_mut(self.elems, self.len) }
    }
}

impl<T: Plain + std::fmt::Debug> std::fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

handle_common!(Array<T: Plain>, RawArrayHeader<T>, ObjectKind::ARRAY, ARRAY_DATA_OFFSET, "Array::<u8>::new(1)");
