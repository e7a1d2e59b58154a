//! Every operating-system and libc call this crate makes, and nothing else.
//!
//! The robust mutex is glibc's process-shared robust pthread mutex: the kernel walks a dying
//! thread's robust list and marks every mutex it held `FUTEX_OWNER_DIED`, so the next locker
//! gets `EOWNERDEAD` whatever killed the owner. Futex sleeps go through
//! [`shm_segment::futex`]; this module adds the pthread calls, the monotonic clock and
//! thread ids.

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")))]
compile_error!(
    "shm-lock needs 64-bit Linux with glibc >= 2.30 (robust process-shared pthread mutexes \
     and pthread_mutex_clocklock)."
);

use std::io;
use std::time::Instant;

use libc::{c_int, clockid_t, pthread_mutex_t, timespec};

/// `errno` values the pthread calls return.
pub(crate) mod errno {
    pub(crate) const EOWNERDEAD: i32 = libc::EOWNERDEAD;
    pub(crate) const ENOTRECOVERABLE: i32 = libc::ENOTRECOVERABLE;
    pub(crate) const EDEADLK: i32 = libc::EDEADLK;
    pub(crate) const ETIMEDOUT: i32 = libc::ETIMEDOUT;
    pub(crate) const EBUSY: i32 = libc::EBUSY;
    pub(crate) const EPERM: i32 = libc::EPERM;
    pub(crate) const EAGAIN: i32 = libc::EAGAIN;
    pub(crate) const EINTR: i32 = libc::EINTR;
}

unsafe extern "C" {
    // glibc >= 2.30; not (yet) declared by the `libc` crate. 64-bit targets only, where
    // `timespec` has a 64-bit `tv_sec` and no `__pthread_mutex_clocklock64` alias exists.
    fn pthread_mutex_clocklock(
        mutex: *mut pthread_mutex_t,
        clock: clockid_t,
        abstime: *const timespec,
    ) -> c_int;
}

/// Which kind of pthread mutex [`mutex_init`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexType {
    /// `PTHREAD_MUTEX_ERRORCHECK`: relocking by the owner is `EDEADLK`, unlocking by a
    /// non-owner `EPERM`.
    ErrorCheck,
    /// `PTHREAD_MUTEX_RECURSIVE`: the owner may relock; unlocking by a non-owner is `EPERM`.
    Recursive,
}

/// Initialises a process-shared, robust pthread mutex of type `kind` at `mutex`.
///
/// # Safety
///
/// `mutex` must be valid for writes of a `pthread_mutex_t`, and no thread may use the
/// memory as a mutex until this returns.
pub(crate) unsafe fn mutex_init(mutex: *mut pthread_mutex_t, kind: MutexType) -> io::Result<()> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    let kind = match kind {
        MutexType::ErrorCheck => libc::PTHREAD_MUTEX_ERRORCHECK,
        MutexType::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
    };
    // SAFETY: `attr` is a local we own; it is initialised by `pthread_mutexattr_init` before
    // any other use and destroyed once at the end. `mutex` is valid for writes (caller).
    unsafe {
        check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let result = (|| {
            check(libc::pthread_mutexattr_setpshared(
                attr.as_mut_ptr(),
                libc::PTHREAD_PROCESS_SHARED,
            ))?;
            check(libc::pthread_mutexattr_setrobust(
                attr.as_mut_ptr(),
                libc::PTHREAD_MUTEX_ROBUST,
            ))?;
            check(libc::pthread_mutexattr_settype(attr.as_mut_ptr(), kind))?;
            check(libc::pthread_mutex_init(mutex, attr.as_ptr()))
        })();
        libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        result
    }
}

fn check(code: c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// `pthread_mutex_lock`: 0 or an error number.
///
/// # Safety
///
/// `mutex` points to a mutex initialised by [`mutex_init`] that stays mapped.
pub(crate) unsafe fn mutex_lock(mutex: *mut pthread_mutex_t) -> i32 {
    // SAFETY: the caller guarantees an initialised, mapped mutex.
    unsafe { libc::pthread_mutex_lock(mutex) }
}

/// `pthread_mutex_clocklock(CLOCK_MONOTONIC, deadline)`: 0 or an error number. `ETIMEDOUT`
/// only once `deadline` has passed.
///
/// # Safety
///
/// As [`mutex_lock`].
pub(crate) unsafe fn mutex_clocklock(mutex: *mut pthread_mutex_t, deadline: Instant) -> i32 {
    loop {
        let abstime = monotonic_timespec(deadline);
        // SAFETY: the caller guarantees an initialised, mapped mutex; `abstime` is a valid,
        // normalised timespec on the stack.
        let code = unsafe { pthread_mutex_clocklock(mutex, libc::CLOCK_MONOTONIC, &abstime) };
        match code {
            // POSIX forbids EINTR here, but keep the original deadline if a libc returns it.
            errno::EINTR => continue,
            // Never report a time-out before the deadline, whatever the kernel's rounding.
            errno::ETIMEDOUT if Instant::now() < deadline => continue,
            code => return code,
        }
    }
}

/// `pthread_mutex_unlock`: 0 or an error number (`EPERM` when the caller is not the owner).
///
/// # Safety
///
/// As [`mutex_lock`].
pub(crate) unsafe fn mutex_unlock(mutex: *mut pthread_mutex_t) -> i32 {
    // SAFETY: the caller guarantees an initialised, mapped mutex.
    unsafe { libc::pthread_mutex_unlock(mutex) }
}

/// `pthread_mutex_consistent`: 0 or an error number.
///
/// # Safety
///
/// As [`mutex_lock`].
pub(crate) unsafe fn mutex_consistent(mutex: *mut pthread_mutex_t) -> i32 {
    // SAFETY: the caller guarantees an initialised, mapped mutex.
    unsafe { libc::pthread_mutex_consistent(mutex) }
}

/// The absolute `CLOCK_MONOTONIC` time of `deadline` (an [`Instant`], which is
/// `CLOCK_MONOTONIC` on Linux), normalised (`0 <= tv_nsec < 1e9`). Rounds later, never
/// earlier: the clock is read after `Instant::now()`.
pub(crate) fn monotonic_timespec(deadline: Instant) -> timespec {
    let left = deadline.saturating_duration_since(Instant::now());
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mut sec = now
        .tv_sec
        .saturating_add(i64::try_from(left.as_secs()).unwrap_or(i64::MAX));
    let mut nsec = now.tv_nsec + i64::from(left.subsec_nanos());
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

/// The calling thread's kernel thread id.
pub(crate) fn gettid() -> u32 {
    rustix::thread::gettid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

/// The calling process's id.
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timespec_is_normalised_and_not_early() {
        for ms in [0u64, 1, 999, 1000, 1500, 86_400_000] {
            let deadline = Instant::now() + Duration::from_millis(ms);
            let ts = monotonic_timespec(deadline);
            assert!((0..1_000_000_000).contains(&ts.tv_nsec));
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            let ts_ns = i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec);
            let now_ns = i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec);
            // The absolute time lies `ms` ahead of a clock read before it, give or take the
            // time this loop takes.
            assert!(ts_ns + 50_000_000 >= now_ns + i128::from(ms) * 1_000_000);
        }
    }

    extern "C" fn ignore_signal(_: libc::c_int) {}

    /// Row 21 of RELIABILITY.md: SIGUSR1 every millisecond at a blocked waiter (no
    /// SA_RESTART) neither cuts a time-out short nor extends it past the original deadline
    /// by more than scheduling noise; the result is still a plain time-out.
    #[test]
    fn signals_do_not_cut_timed_waits_short() {
        // SAFETY: installs a handler that does nothing, for a signal this test binary
        // does not otherwise use; the sigaction struct is fully initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
        let lock = crate::Lock::new().unwrap();
        let event = crate::Event::new().unwrap();
        let semaphore = crate::Semaphore::new(0).unwrap();
        let barrier = crate::Barrier::new(2).unwrap();
        let guard = lock.acquire().unwrap();
        let timeout = Duration::from_millis(150);
        let done = std::sync::atomic::AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                // SAFETY: pthread_self has no preconditions.
                tx.send(unsafe { libc::pthread_self() }).unwrap();
                let mut elapsed = Vec::new();
                let start = Instant::now();
                assert!(lock.acquire_timeout(timeout).is_err());
                elapsed.push(start.elapsed());
                let start = Instant::now();
                assert!(event.wait_timeout(timeout).is_err());
                elapsed.push(start.elapsed());
                let start = Instant::now();
                assert!(semaphore.acquire_timeout(timeout).is_err());
                elapsed.push(start.elapsed());
                let start = Instant::now();
                assert_eq!(
                    barrier.wait_timeout(timeout),
                    Err(crate::BarrierError::Timeout)
                );
                elapsed.push(start.elapsed());
                elapsed
            });
            let target = rx.recv().unwrap();
            let done = &done;
            let pinger = s.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    // SAFETY: the waiter thread is alive until `done` is set, which happens
                    // before it is joined.
                    unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            while !waiter.is_finished() {
                std::thread::sleep(Duration::from_millis(5));
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            pinger.join().unwrap();
            for elapsed in waiter.join().unwrap() {
                assert!(
                    elapsed >= timeout,
                    "a wait ended after {elapsed:?}, before {timeout:?}"
                );
            }
        });
        drop(guard);
    }

    #[test]
    fn ids_are_nonzero() {
        assert_eq!(getpid(), std::process::id());
        assert!(gettid() > 0);
    }
}
