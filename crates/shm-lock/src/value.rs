//! [`Value<T>`] and [`RawValue<T>`]: one plain-data value with its own robust lock, and
//! lock-free atomic arithmetic for integers.
//!
//! The value is always read and written with atomic operations of one fixed width per type
//! (the whole value for 1-, 2-, 4- and 8-byte types, 8-, 4-, 2- or 1-byte pieces for
//! bigger ones), so the lock-free integer operations never race with a non-atomic access,
//! and a [`ValueGuard`] works on a private copy that it writes back when dropped. A process
//! killed while holding the guard therefore leaves the old value (or, for values wider than
//! 8 bytes, possibly a mix of old and new pieces), and the next locker gets
//! [`AcquireError::OwnerDied`](crate::AcquireError::OwnerDied).
//!
//! The lock-free operations (`fetch_add` and friends) do not take the lock: mixing them
//! with [`lock`](RawValue::lock) on the same value is memory-safe, but an update made by
//! `fetch_add` while a guard is held is overwritten when the guard writes back.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use shm_segment::{CreateError, ObjectKind, OpenError};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::{AcquireError, AcquireTimeoutError, TryAcquireError};
use crate::layout::{RawLock, RawValue};
use crate::lock::LockGuard;
use crate::shared::{Shared, handle_common};
use crate::sync::Ordering;

/// Plain data a [`Value`] or [`Array`](crate::Array) can hold: any bit pattern is a valid
/// value, and it has no padding and no interior mutability (zerocopy's bounds).
///
/// Implemented for every type with those bounds, e.g. integers, floats, arrays of them, and
/// `#[repr(C)]` structs deriving zerocopy's traits.
///
/// # Examples
///
/// ```
/// fn takes<T: shm_lock::Plain>() {}
/// takes::<u64>();
/// takes::<[f32; 4]>();
/// ```
pub trait Plain:
    FromBytes + IntoBytes + Immutable + KnownLayout + Copy + Send + Sync + 'static
{
}

impl<T: FromBytes + IntoBytes + Immutable + KnownLayout + Copy + Send + Sync + 'static> Plain
    for T
{
}

/// The width of the atomic pieces a `T` is copied in.
const fn piece<T>() -> usize {
    let size = size_of::<T>();
    if size.is_multiple_of(8) {
        8
    } else if size.is_multiple_of(4) {
        4
    } else if size.is_multiple_of(2) {
        2
    } else {
        1
    }
}

/// Reads `*src` with relaxed atomic loads of [`piece`] width.
///
/// # Safety
///
/// `src` is valid for reads of a `T`, aligned to `piece::<T>()` and to `T`, and every
/// concurrent access to it is atomic with the same piece width.
pub(crate) unsafe fn atomic_read<T: Plain>(src: *const T) -> T {
    let mut out = T::new_zeroed();
    let dst = out.as_mut_bytes();
    let src = src.cast::<u8>();
    let step = piece::<T>();
    for offset in (0..dst.len()).step_by(step) {
        // SAFETY: `src + offset` is inside the value, aligned to `step` (the value is, and
        // `offset` is a multiple of `step`), and only accessed atomically (caller).
        unsafe {
            let at = src.add(offset).cast_mut();
            match step {
                8 => dst[offset..offset + 8].copy_from_slice(
                    &std::sync::atomic::AtomicU64::from_ptr(at.cast())
                        .load(Ordering::Relaxed)
                        .to_ne_bytes(),
                ),
                4 => dst[offset..offset + 4].copy_from_slice(
                    &std::sync::atomic::AtomicU32::from_ptr(at.cast())
                        .load(Ordering::Relaxed)
                        .to_ne_bytes(),
                ),
                2 => dst[offset..offset + 2].copy_from_slice(
                    &std::sync::atomic::AtomicU16::from_ptr(at.cast())
                        .load(Ordering::Relaxed)
                        .to_ne_bytes(),
                ),
                _ => {
                    dst[offset] = std::sync::atomic::AtomicU8::from_ptr(at).load(Ordering::Relaxed)
                }
            }
        }
    }
    out
}

/// Writes `value` to `*dst` with relaxed atomic stores of [`piece`] width.
///
/// # Safety
///
/// As [`atomic_read`], for writes.
pub(crate) unsafe fn atomic_write<T: Plain>(dst: *mut T, value: &T) {
    let src = value.as_bytes();
    let dst = dst.cast::<u8>();
    let step = piece::<T>();
    for offset in (0..src.len()).step_by(step) {
        let bytes = &src[offset..offset + step];
        // SAFETY: as in `atomic_read`: in bounds, aligned to `step`, atomic-only access.
        unsafe {
            let at = dst.add(offset);
            match step {
                8 => std::sync::atomic::AtomicU64::from_ptr(at.cast()).store(
                    u64::from_ne_bytes(bytes.try_into().expect("8 bytes")),
                    Ordering::Relaxed,
                ),
                4 => std::sync::atomic::AtomicU32::from_ptr(at.cast()).store(
                    u32::from_ne_bytes(bytes.try_into().expect("4 bytes")),
                    Ordering::Relaxed,
                ),
                2 => std::sync::atomic::AtomicU16::from_ptr(at.cast()).store(
                    u16::from_ne_bytes(bytes.try_into().expect("2 bytes")),
                    Ordering::Relaxed,
                ),
                _ => std::sync::atomic::AtomicU8::from_ptr(at).store(bytes[0], Ordering::Relaxed),
            }
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Integers with lock-free atomic read-modify-write on a [`Value`]: `u8`..`u64`,
/// `i8`..`i64`, `usize`, `isize`.
///
/// # Examples
///
/// ```
/// fn takes<T: shm_lock::AtomicInteger>() {}
/// takes::<i32>();
/// ```
pub trait AtomicInteger: Plain + sealed::Sealed {
    #[doc(hidden)]
    type Atomic;
    #[doc(hidden)]
    /// # Safety
    ///
    /// `ptr` valid, aligned, only accessed atomically, for `'a`.
    unsafe fn atomic<'a>(ptr: *mut Self) -> &'a Self::Atomic;
    #[doc(hidden)]
    fn fetch_add(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn fetch_sub(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn fetch_and(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn fetch_or(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn fetch_xor(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn fetch_max(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn fetch_min(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn swap(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn compare_exchange(a: &Self::Atomic, current: Self, new: Self) -> Result<Self, Self>;
    #[doc(hidden)]
    fn load(a: &Self::Atomic) -> Self;
    #[doc(hidden)]
    fn store(a: &Self::Atomic, v: Self);
}

macro_rules! atomic_integer {
    ($($int:ty => $atomic:ty),*) => {$(
        impl sealed::Sealed for $int {}
        impl AtomicInteger for $int {
            type Atomic = $atomic;
            unsafe fn atomic<'a>(ptr: *mut Self) -> &'a $atomic {
                // SAFETY: forwarded from the caller: valid, aligned, atomic-only, for 'a.
                unsafe { <$atomic>::from_ptr(ptr) }
            }
            fn fetch_add(a: &$atomic, v: Self) -> Self { a.fetch_add(v, Ordering::SeqCst) }
            fn fetch_sub(a: &$atomic, v: Self) -> Self { a.fetch_sub(v, Ordering::SeqCst) }
            fn fetch_and(a: &$atomic, v: Self) -> Self { a.fetch_and(v, Ordering::SeqCst) }
            fn fetch_or(a: &$atomic, v: Self) -> Self { a.fetch_or(v, Ordering::SeqCst) }
            fn fetch_xor(a: &$atomic, v: Self) -> Self { a.fetch_xor(v, Ordering::SeqCst) }
            fn fetch_max(a: &$atomic, v: Self) -> Self { a.fetch_max(v, Ordering::SeqCst) }
            fn fetch_min(a: &$atomic, v: Self) -> Self { a.fetch_min(v, Ordering::SeqCst) }
            fn swap(a: &$atomic, v: Self) -> Self { a.swap(v, Ordering::SeqCst) }
            fn compare_exchange(a: &$atomic, current: Self, new: Self) -> Result<Self, Self> {
                a.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
            }
            fn load(a: &$atomic) -> Self { a.load(Ordering::SeqCst) }
            fn store(a: &$atomic, v: Self) { a.store(v, Ordering::SeqCst) }
        }
    )*};
}

atomic_integer!(
    u8 => std::sync::atomic::AtomicU8, u16 => std::sync::atomic::AtomicU16,
    u32 => std::sync::atomic::AtomicU32, u64 => std::sync::atomic::AtomicU64,
    usize => std::sync::atomic::AtomicUsize,
    i8 => std::sync::atomic::AtomicI8, i16 => std::sync::atomic::AtomicI16,
    i32 => std::sync::atomic::AtomicI32, i64 => std::sync::atomic::AtomicI64,
    isize => std::sync::atomic::AtomicIsize
);

const _: () = {
    // Integer atomics use the same width as `atomic_read`/`atomic_write` pieces.
    assert!(
        piece::<u8>() == 1 && piece::<u16>() == 2 && piece::<u32>() == 4 && piece::<u64>() == 8
    );
    assert!(piece::<usize>() == size_of::<usize>());
};

// SAFETY: the value is only accessed through atomics or under the robust lock; `T: Plain`
// is `Send + Sync` plain data.
unsafe impl<T: Plain> Sync for RawValue<T> {}
// SAFETY: as above.
unsafe impl<T: Plain> Send for RawValue<T> {}

impl<T: Plain> RawValue<T> {
    /// Initialises a value (and its lock) in place.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for writes of a `RawValue<T>`, aligned for it, and unused until
    /// this returns.
    ///
    /// # Panics
    ///
    /// If glibc refuses to initialise the robust mutex (it never does on Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::MaybeUninit;
    /// use shm_lock::RawValue;
    /// let mut memory = Box::new(MaybeUninit::<RawValue<u32>>::uninit());
    /// // SAFETY: the memory is ours, writable and aligned.
    /// let value = unsafe {
    ///     RawValue::init(memory.as_mut_ptr(), 7);
    ///     RawValue::from_ptr(memory.as_ptr())
    /// };
    /// assert_eq!(value.get().unwrap(), 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn init(ptr: *mut RawValue<T>, value: T) {
        // SAFETY: valid for writes and unused (caller).
        unsafe {
            RawLock::init(std::ptr::addr_of_mut!((*ptr).lock));
            UnsafeCell::raw_get(std::ptr::addr_of!((*ptr).value)).write(value);
        }
    }

    /// A reference to a value initialised with [`init`](Self::init).
    ///
    /// # Safety
    ///
    /// `ptr` must point to an initialised `RawValue<T>`, mapped for `'a`.
    ///
    /// # Examples
    ///
    /// See [`init`](Self::init).
    pub unsafe fn from_ptr<'a>(ptr: *const RawValue<T>) -> &'a RawValue<T> {
        // SAFETY: the caller promises an initialised, mapped value; interior-mutable.
        unsafe { &*ptr }
    }

    fn cell(&self) -> *mut T {
        self.value.get()
    }

    fn read(&self) -> T {
        // SAFETY: the cell is valid and aligned for the life of `self`; every access to it
        // in this crate is atomic with `piece::<T>()` width (or the same-width integer
        // atomics, see the const assert).
        unsafe { atomic_read(self.cell()) }
    }

    fn write(&self, value: &T) {
        // SAFETY: as in `read`.
        unsafe { atomic_write(self.cell(), value) }
    }

    fn guard<'a>(&'a self, lock: LockGuard<'a>) -> ValueGuard<'a, T> {
        ValueGuard {
            copy: self.read(),
            value: self,
            lock,
        }
    }

    /// Locks the value and returns a guard that reads and writes it (`*guard = ...`); the
    /// new value is stored when the guard drops.
    ///
    /// # Errors
    ///
    /// [`AcquireError::OwnerDied`] with the guard when a process died holding it (the guard
    /// holds the value as last stored); [`AcquireError::NotRecoverable`];
    /// [`AcquireError::WouldDeadlock`] when this thread holds it already.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(1u64)?;
    /// *value.lock().unwrap() += 41;
    /// assert_eq!(value.get().unwrap(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, AcquireError<ValueGuard<'_, T>>> {
        match self.lock.acquire() {
            Ok(lock) => Ok(self.guard(lock)),
            Err(e) => Err(e.map_guard(|lock| self.guard(lock))),
        }
    }

    /// Locks the value if the lock is free now.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::WouldBlock`]; otherwise as [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(1u8)?;
    /// let guard = value.try_lock().unwrap();
    /// assert_eq!(*guard, 1);
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_lock(&self) -> Result<ValueGuard<'_, T>, TryAcquireError<ValueGuard<'_, T>>> {
        match self.lock.try_acquire() {
            Ok(lock) => Ok(self.guard(lock)),
            Err(e) => Err(e.map_guard(|lock| self.guard(lock))),
        }
    }

    /// Locks the value, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`AcquireTimeoutError::Timeout`]; otherwise as [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let value = shm_lock::Value::new(1i32)?;
    /// *value.lock_timeout(Duration::from_secs(1)).unwrap() = -1;
    /// assert_eq!(value.get().unwrap(), -1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ValueGuard<'_, T>, AcquireTimeoutError<ValueGuard<'_, T>>> {
        match self.lock.acquire_timeout(timeout) {
            Ok(lock) => Ok(self.guard(lock)),
            Err(e) => Err(e.map_guard(|lock| self.guard(lock))),
        }
    }

    /// The value, read under the lock (Python's `v.value`).
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock); after `OwnerDied` the lock is marked consistent only by the
    /// caller, through the guard in the error.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Value::new(3.5f64)?.get().unwrap(), 3.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, AcquireError<ValueGuard<'_, T>>> {
        self.lock().map(|guard| *guard)
    }

    /// Replaces the value under the lock (Python's `v.value = x`).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); nothing is written then.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(0u16)?;
    /// value.set(9).unwrap();
    /// assert_eq!(value.get().unwrap(), 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, value: T) -> Result<(), AcquireError<ValueGuard<'_, T>>> {
        self.lock().map(|mut guard| *guard = value)
    }

    /// The lock protecting the value (Python's `get_lock()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(0u32)?;
    /// let guard = value.get_lock().acquire().unwrap();
    /// assert!(value.try_lock().is_err());
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_lock(&self) -> &RawLock {
        &self.lock
    }
}

impl<T: AtomicInteger> RawValue<T> {
    fn atomic(&self) -> &T::Atomic {
        // SAFETY: the cell is valid and aligned for `self`'s life, and accessed only
        // atomically with this width (see `read`).
        unsafe { T::atomic(self.cell()) }
    }

    /// Adds `v` (wrapping) without taking the lock; returns the previous value. Unlike
    /// Python's `v.value += 1`, never loses an update to a concurrent one.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(1u64)?;
    /// assert_eq!(value.fetch_add(2), 1);
    /// assert_eq!(value.load(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_add(&self, v: T) -> T {
        T::fetch_add(self.atomic(), v)
    }

    /// Subtracts `v` (wrapping) without the lock; returns the previous value.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(5i32)?;
    /// assert_eq!(value.fetch_sub(7), 5);
    /// assert_eq!(value.load(), -2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_sub(&self, v: T) -> T {
        T::fetch_sub(self.atomic(), v)
    }

    /// Bitwise and, without the lock; returns the previous value.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(0b110u8)?;
    /// value.fetch_and(0b011);
    /// assert_eq!(value.load(), 0b010);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_and(&self, v: T) -> T {
        T::fetch_and(self.atomic(), v)
    }

    /// Bitwise or, without the lock; returns the previous value.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(0b100u8)?;
    /// value.fetch_or(0b001);
    /// assert_eq!(value.load(), 0b101);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_or(&self, v: T) -> T {
        T::fetch_or(self.atomic(), v)
    }

    /// Bitwise xor, without the lock; returns the previous value.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(0b101u8)?;
    /// value.fetch_xor(0b001);
    /// assert_eq!(value.load(), 0b100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_xor(&self, v: T) -> T {
        T::fetch_xor(self.atomic(), v)
    }

    /// Stores the maximum of the value and `v`, without the lock; returns the previous
    /// value.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(3u32)?;
    /// value.fetch_max(10);
    /// assert_eq!(value.load(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_max(&self, v: T) -> T {
        T::fetch_max(self.atomic(), v)
    }

    /// Stores the minimum of the value and `v`, without the lock; returns the previous
    /// value.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(3i64)?;
    /// value.fetch_min(-1);
    /// assert_eq!(value.load(), -1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_min(&self, v: T) -> T {
        T::fetch_min(self.atomic(), v)
    }

    /// Stores `v` without the lock; returns the previous value.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(1usize)?;
    /// assert_eq!(value.swap(2), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn swap(&self, v: T) -> T {
        T::swap(self.atomic(), v)
    }

    /// Stores `new` if the value is `current`, without the lock.
    ///
    /// # Errors
    ///
    /// The actual value, when it was not `current` (nothing stored).
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(1u32)?;
    /// assert_eq!(value.compare_exchange(1, 2), Ok(1));
    /// assert_eq!(value.compare_exchange(1, 3), Err(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        T::compare_exchange(self.atomic(), current, new)
    }

    /// The value, read atomically without the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Value::new(8u8)?.load(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(&self) -> T {
        T::load(self.atomic())
    }

    /// Stores `v` atomically without the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(8u8)?;
    /// value.store(9);
    /// assert_eq!(value.load(), 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store(&self, v: T) {
        T::store(self.atomic(), v)
    }
}

impl<T: Plain + std::fmt::Debug> std::fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawValue").finish_non_exhaustive()
    }
}

/// The locked value of a [`Value`]: dereferences to a private copy, stored back when the
/// guard drops, then the lock is released. Not `Send` (the lock belongs to this thread).
///
/// # Examples
///
/// ```
/// let value = shm_lock::Value::new([0u8; 4])?;
/// {
///     let mut guard = value.lock().unwrap();
///     guard[1] = 7;
/// }
/// assert_eq!(value.get().unwrap(), [0, 7, 0, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the value is stored and unlocked as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: Plain> {
    copy: T,
    value: &'a RawValue<T>,
    lock: LockGuard<'a>,
}

impl<T: Plain> ValueGuard<'_, T> {
    /// Declares the value consistent after
    /// [`OwnerDied`](crate::AcquireError::OwnerDied); see
    /// [`LockGuard::mark_consistent`].
    ///
    /// # Examples
    ///
    /// ```
    /// let value = shm_lock::Value::new(1u32)?;
    /// std::thread::scope(|s| s.spawn(|| std::mem::forget(value.lock())).join().unwrap());
    /// let guard = value.lock().unwrap_err().into_owner_died().unwrap();
    /// assert_eq!(*guard, 1);
    /// guard.mark_consistent();
    /// drop(guard);
    /// assert_eq!(value.get().unwrap(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mark_consistent(&self) {
        self.lock.mark_consistent();
    }
}

impl<T: Plain> Deref for ValueGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.copy
    }
}

impl<T: Plain> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.copy
    }
}

impl<T: Plain> Drop for ValueGuard<'_, T> {
    fn drop(&mut self) {
        // Stored while the lock is still held: `self.lock` is dropped after this body.
        self.value.write(&self.copy);
    }
}

impl<T: Plain + std::fmt::Debug> std::fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueGuard").field(&self.copy).finish()
    }
}

/// A plain-data value shared between processes, with its own robust lock (Python's
/// `multiprocessing.Value`), in its own segment. Operations come from [`RawValue`] through
/// `Deref`; integers also have lock-free `fetch_add` and friends.
///
/// # Examples
///
/// ```
/// let counter = shm_lock::Value::new(0u64)?;
/// counter.fetch_add(1);
/// *counter.lock().unwrap() += 1;
/// assert_eq!(counter.get().unwrap(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Value<T: Plain> {
    shared: Shared<RawValue<T>>,
}

impl<T: Plain> Value<T> {
    /// A new value holding `value`, in an anonymous segment.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Value::new(5u32)?.get().unwrap(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(value: T) -> Result<Self, CreateError> {
        let shared =
            Shared::create_anonymous(ObjectKind::VALUE, size_of::<RawValue<T>>(), |raw| {
                // SAFETY: fresh segment memory, writable, 128-aligned, seen by no one.
                unsafe { RawValue::init(raw, value) }
            })?;
        Ok(Value { shared })
    }

    /// A new value holding `value` in the named segment `name`.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] and the other [`CreateError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-value-{}", std::process::id());
    /// let value = shm_lock::Value::create(&name, 1u64)?;
    /// shm_lock::Value::<u64>::open(&name)?.fetch_add(1);
    /// assert_eq!(value.load(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, value: T) -> Result<Self, CreateError> {
        let shared = Shared::create(ObjectKind::VALUE, size_of::<RawValue<T>>(), name, |raw| {
            // SAFETY: fresh segment memory; openers wait until it is ready.
            unsafe { RawValue::init(raw, value) }
        })?;
        Ok(Value { shared })
    }

    /// Opens the value created under `name`, which must hold a `T`.
    ///
    /// # Errors
    ///
    /// [`OpenError::TypeMismatch`] for another element type, [`OpenError::NotFound`],
    /// [`OpenError::KindMismatch`] and the other [`OpenError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::OpenError;
    /// # let name = format!("doc-value-open-{}", std::process::id());
    /// let value = shm_lock::Value::create(&name, 1u64)?;
    /// let wrong = shm_lock::Value::<u32>::open(&name);
    /// assert!(matches!(wrong, Err(OpenError::TypeMismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_shared(Shared::open(
            ObjectKind::VALUE,
            size_of::<RawValue<T>>(),
            name,
        )?)
    }

    fn from_shared(shared: Shared<RawValue<T>>) -> Result<Self, OpenError> {
        Ok(Value { shared })
    }
}

impl<T: Plain> Deref for Value<T> {
    type Target = RawValue<T>;

    fn deref(&self) -> &RawValue<T> {
        self.shared.raw()
    }
}

handle_common!(Value<T: Plain>, RawValue<T>, ObjectKind::VALUE, size_of::<RawValue<T>>(), "Value::new(0u32)");
