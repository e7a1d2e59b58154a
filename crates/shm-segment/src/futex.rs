//! Futex wait and wake on shared (non-private) words, so waiters in other processes that
//! map the same segment — at any address — are found.
//!
//! Every wait takes an absolute [`Instant`] deadline: interrupted waits (`EINTR`) are
//! retried with the time that is left, so a signal never extends or cuts short a time-out.
//! [`wait`] can still return spuriously, as every futex wait can; [`wait_until`] loops until
//! a condition on the word holds and is what most callers want.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sys;

/// How a single [`wait`] ended.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use shm_segment::futex::{wait, WaitOutcome};
/// assert_eq!(wait(&AtomicU32::new(1), 0, None), WaitOutcome::ValueChanged);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Woken by [`wake`], or spuriously: re-check the condition.
    Woken,
    /// The word no longer held the expected value when the wait began.
    ValueChanged,
    /// The deadline passed.
    TimedOut,
}

/// A deadline passed before the awaited condition held.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use std::time::Instant;
/// use shm_segment::futex::{wait_until, TimedOut};
/// assert_eq!(wait_until(&AtomicU32::new(0), |v| v == 1, Some(Instant::now())), Err(TimedOut));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out")]
pub struct TimedOut;

/// `Instant::now() + timeout`, or `None` ("forever") when that overflows.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// assert!(shm_segment::futex::deadline_after(Duration::from_secs(1)).is_some());
/// assert!(shm_segment::futex::deadline_after(Duration::MAX).is_none());
/// ```
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Sleeps while `word == expected`, until woken or until `deadline` (`None`: no deadline).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use std::time::{Duration, Instant};
/// use shm_segment::futex::{wait, WaitOutcome};
///
/// let word = AtomicU32::new(7);
/// assert_eq!(wait(&word, 8, None), WaitOutcome::ValueChanged);
/// let deadline = Instant::now() + Duration::from_millis(5);
/// assert_eq!(wait(&word, 7, Some(deadline)), WaitOutcome::TimedOut);
/// assert!(Instant::now() >= deadline);
/// ```
pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> WaitOutcome {
    loop {
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return WaitOutcome::TimedOut,
            },
        };
        match sys::futex_wait(word, expected, timeout) {
            Ok(()) => return WaitOutcome::Woken,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return WaitOutcome::ValueChanged,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The kernel rounds its timer; only report a time-out once the deadline passed.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            // FUTEX_WAIT fails otherwise only for a bad address, which `&AtomicU32` excludes;
            // treat anything else as a spurious wake-up so the caller re-checks.
            Err(_) => return WaitOutcome::Woken,
        }
    }
}

/// Waits until `ready(word)` holds, and returns the value that satisfied it.
///
/// The word is loaded with `Acquire`, so writes published (with `Release`) before the
/// value was stored are visible to the caller. Spurious wake-ups and `EINTR` are absorbed.
///
/// # Errors
///
/// [`TimedOut`] when `deadline` passes first (the condition is checked once more at the
/// deadline, so a value stored just in time is still seen).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use shm_segment::futex;
///
/// let word = Arc::new(AtomicU32::new(0));
/// let setter = {
///     let word = Arc::clone(&word);
///     std::thread::spawn(move || {
///         word.store(1, Ordering::Release);
///         futex::wake_all(&word);
///     })
/// };
/// assert_eq!(futex::wait_until(&word, |v| v == 1, None), Ok(1));
/// setter.join().unwrap();
/// ```
pub fn wait_until(
    word: &AtomicU32,
    mut ready: impl FnMut(u32) -> bool,
    deadline: Option<Instant>,
) -> Result<u32, TimedOut> {
    loop {
        let value = word.load(Ordering::Acquire);
        if ready(value) {
            return Ok(value);
        }
        if wait(word, value, deadline) == WaitOutcome::TimedOut {
            let value = word.load(Ordering::Acquire);
            return if ready(value) {
                Ok(value)
            } else {
                Err(TimedOut)
            };
        }
    }
}

/// Wakes at most `count` waiters on `word`, in this or any other process. Returns how many
/// were woken.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// let word = AtomicU32::new(0);
/// assert_eq!(shm_segment::futex::wake(&word, 1), 0); // nobody waits
/// ```
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    sys::futex_wake(word, count)
}

/// Wakes every waiter on `word`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// let word = AtomicU32::new(0);
/// assert_eq!(shm_segment::futex::wake_all(&word), 0);
/// ```
pub fn wake_all(word: &AtomicU32) -> usize {
    sys::futex_wake(word, i32::MAX as u32)
}
