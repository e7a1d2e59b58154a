//! Every operating-system and libc call this crate makes, and nothing else.
//!
//! The robust mutex is glibc's process-shared robust pthread mutex: the kernel walks a dying
//! thread's robust list and marks every mutex it held `FUTEX_OWNER_DIED`, so the next locker
//! gets `EOWNERDEAD` whatever killed the owner. Futex sleeps go through [`futex`] (which is
//! [`shm_segment::futex`]); this module adds the pthread calls, the monotonic clock and
//! thread ids.
//!
//! Under `cfg(loom)` the futex calls and the pthread mutex calls are replaced by a model of
//! the kernel built on loom's `Mutex` and `Condvar` ([`kernel`]), so that loom sees every
//! sleep and wake-up of the state machines built on them; the algorithms themselves are
//! compiled unchanged. The normal build compiles none of the model.

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")))]
compile_error!(
    "shm-lock needs 64-bit Linux with glibc >= 2.30 (robust process-shared pthread mutexes \
     and pthread_mutex_clocklock)."
);

use std::io;
use std::time::Instant;

use libc::pthread_mutex_t;
#[cfg(not(loom))]
use libc::{c_int, clockid_t, timespec};

/// `errno` values the pthread calls return.
#[cfg_attr(loom, allow(dead_code))]
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

/// Futex wait and wake: [`shm_segment::futex`], or under `cfg(loom)` the same functions on
/// the loom model of the kernel.
#[cfg(not(loom))]
pub(crate) mod futex {
    pub(crate) use shm_segment::futex::{WaitOutcome, wait, wait_until, wake, wake_all};
}

#[cfg(loom)]
pub(crate) use kernel::futex;

#[cfg(not(loom))]
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
#[cfg(not(loom))]
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

#[cfg(not(loom))]
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
#[cfg(not(loom))]
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
#[cfg(not(loom))]
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
#[cfg(not(loom))]
pub(crate) unsafe fn mutex_unlock(mutex: *mut pthread_mutex_t) -> i32 {
    // SAFETY: the caller guarantees an initialised, mapped mutex.
    unsafe { libc::pthread_mutex_unlock(mutex) }
}

/// `pthread_mutex_consistent`: 0 or an error number.
///
/// # Safety
///
/// As [`mutex_lock`].
#[cfg(not(loom))]
pub(crate) unsafe fn mutex_consistent(mutex: *mut pthread_mutex_t) -> i32 {
    // SAFETY: the caller guarantees an initialised, mapped mutex.
    unsafe { libc::pthread_mutex_consistent(mutex) }
}

/// The absolute `CLOCK_MONOTONIC` time of `deadline` (an [`Instant`], which is
/// `CLOCK_MONOTONIC` on Linux), normalised (`0 <= tv_nsec < 1e9`). Rounds later, never
/// earlier: the clock is read after `Instant::now()`.
#[cfg(not(loom))]
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

/// The loom stand-in for [`mutex_init`]: registers a mutex of type `kind` with the kernel
/// model and writes its number into the mutex's memory (so it survives the move of the
/// structure it is embedded in, before use).
///
/// # Safety
///
/// As the real one.
#[cfg(loom)]
pub(crate) unsafe fn mutex_init(mutex: *mut pthread_mutex_t, kind: MutexType) -> io::Result<()> {
    let id = kernel::mutex_register(kind);
    // SAFETY: `mutex` is valid for writes of a `pthread_mutex_t` and unused until this
    // returns (caller); that type has room for a `u64` and its alignment (asserted below).
    unsafe { mutex.cast::<u64>().write(id) };
    Ok(())
}

#[cfg(loom)]
const _: () = assert!(
    std::mem::size_of::<pthread_mutex_t>() >= std::mem::size_of::<u64>()
        && std::mem::align_of::<pthread_mutex_t>() >= std::mem::align_of::<u64>()
);

/// The number [`mutex_init`] wrote into a modelled mutex.
///
/// # Safety
///
/// `mutex` was initialised by the loom [`mutex_init`] and is mapped; the number is never
/// written again, so reading it races with nothing.
#[cfg(loom)]
unsafe fn mutex_id(mutex: *mut pthread_mutex_t) -> u64 {
    // SAFETY: see the function's contract.
    unsafe { mutex.cast::<u64>().read() }
}

/// The loom stand-in for [`mutex_lock`] (a mutex that never has a dead owner).
///
/// # Safety
///
/// As the real one.
#[cfg(loom)]
pub(crate) unsafe fn mutex_lock(mutex: *mut pthread_mutex_t) -> i32 {
    // SAFETY: forwarded from the caller.
    kernel::mutex_lock(unsafe { mutex_id(mutex) }, true)
}

/// The loom stand-in for [`mutex_clocklock`]: a deadline that has passed makes it a
/// try-lock (`ETIMEDOUT` when held); otherwise it waits like [`mutex_lock`] (a model never
/// waits long enough to time out).
///
/// # Safety
///
/// As the real one.
#[cfg(loom)]
pub(crate) unsafe fn mutex_clocklock(mutex: *mut pthread_mutex_t, deadline: Instant) -> i32 {
    // SAFETY: forwarded from the caller.
    let id = unsafe { mutex_id(mutex) };
    kernel::mutex_lock(id, Instant::now() < deadline)
}

/// The loom stand-in for [`mutex_unlock`].
///
/// # Safety
///
/// As the real one.
#[cfg(loom)]
pub(crate) unsafe fn mutex_unlock(mutex: *mut pthread_mutex_t) -> i32 {
    // SAFETY: forwarded from the caller.
    kernel::mutex_unlock(unsafe { mutex_id(mutex) })
}

/// The loom stand-in for [`mutex_consistent`]: a modelled mutex is never inconsistent, so
/// this is glibc's answer for that case.
///
/// # Safety
///
/// As the real one.
#[cfg(loom)]
pub(crate) unsafe fn mutex_consistent(_mutex: *mut pthread_mutex_t) -> i32 {
    libc::EINVAL
}

/// The kernel as loom sees it: futex wait queues behind one loom `Mutex` (the futex
/// hash-bucket lock), pthread mutexes behind another (their lock words), with loom
/// `Condvar`s for sleeping. Loom resets it with every execution it explores.
///
/// What the model keeps of the real thing:
/// * `futex::wait` compares the word with the expected value and queues the caller
///   atomically with respect to `futex::wake` on the same word (both hold the futex
///   lock), so a wake-up between the caller's last check and its sleep is never lost by
///   the model, and never invented either: a sleeper returns only when a `wake` picked it.
/// * The kernel reads the word's latest value; so does the model (see `futex::wait`).
/// * The futex calls synchronise only with each other (through the futex lock), never
///   with the mutexes, so the model adds no ordering the real code does not have.
/// * Deadlines never pass while a thread sleeps: a time-out is a wake-up the algorithms
///   may not rely on (their re-check intervals are defence in depth), so the model waits
///   as if there were none, and a lost wake-up shows as a deadlock.
/// * Mutexes are error-checking or recursive as asked; an owner never dies.
#[cfg(loom)]
mod kernel {
    use loom::sync::{Condvar, Mutex, MutexGuard};
    use loom::thread::ThreadId;

    use super::MutexType;

    #[derive(Default)]
    struct Futexes {
        next_ticket: u64,
        /// Sleepers, first come first: (address of the word, ticket).
        sleepers: Vec<(usize, u64)>,
    }

    struct MutexState {
        recursive: bool,
        owner: Option<ThreadId>,
        depth: u32,
    }

    struct Kernel {
        futexes: Mutex<Futexes>,
        /// Signalled when a `wake` dequeued sleepers.
        woken: Condvar,
        /// Every pthread mutex, by the number `mutex_register` gave it.
        mutexes: Mutex<Vec<MutexState>>,
        /// Signalled when a mutex became free.
        unlocked: Condvar,
    }

    loom::lazy_static! {
        static ref KERNEL: Kernel = Kernel {
            futexes: Mutex::new(Futexes::default()),
            woken: Condvar::new(),
            mutexes: Mutex::new(Vec::new()),
            unlocked: Condvar::new(),
        };
    }

    const POISONED: &str = "the kernel model never panics holding its locks";

    fn futexes() -> MutexGuard<'static, Futexes> {
        KERNEL.futexes.lock().expect(POISONED)
    }

    fn mutexes() -> MutexGuard<'static, Vec<MutexState>> {
        KERNEL.mutexes.lock().expect(POISONED)
    }

    /// `futex(2)` as [`shm_segment::futex`] wraps it, on loom atomics.
    pub(crate) mod futex {
        use std::time::Instant;

        pub(crate) use shm_segment::futex::{TimedOut, WaitOutcome};

        use super::{KERNEL, POISONED, futexes};
        use crate::sync::{AtomicU32, Ordering};

        fn address(word: &AtomicU32) -> usize {
            std::ptr::from_ref(word) as usize
        }

        /// The word's latest value, as the kernel reads it (after a full barrier).
        ///
        /// A plain load would not do: loom treats `SeqCst` loads as acquire loads and may
        /// return a value C11 rules out (one that happens before a later `SeqCst` write),
        /// which would make correct code sleep forever in the model. A read-modify-write
        /// reads the latest value, but a successful one writes, and loom's bookkeeping of
        /// that extra write lets later loads return values they could not in reality. So:
        /// a compare-exchange that fails, against a value the models never reach (the
        /// expected value with its top bit flipped), with `Relaxed` ordering (the kernel's
        /// read adds no synchronisation of its own).
        fn latest(word: &AtomicU32, expected: u32) -> u32 {
            let never = expected ^ (1 << 31);
            match word.compare_exchange(never, never, Ordering::Relaxed, Ordering::Relaxed) {
                Err(value) => value,
                Ok(_) => panic!(
                    "the loom kernel model reads futex words with a compare-exchange against \
                     {never:#x}, which a model reached: keep model values small"
                ),
            }
        }

        /// Sleeps while `word == expected`, until a [`wake`] on `word` picks this thread.
        /// The deadline is ignored (see the [module docs](super)).
        pub(crate) fn wait(
            word: &AtomicU32,
            expected: u32,
            _deadline: Option<Instant>,
        ) -> WaitOutcome {
            let mut state = futexes();
            if latest(word, expected) != expected {
                return WaitOutcome::ValueChanged;
            }
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            state.sleepers.push((address(word), ticket));
            loop {
                state = KERNEL.woken.wait(state).expect(POISONED);
                if !state.sleepers.iter().any(|&(_, t)| t == ticket) {
                    return WaitOutcome::Woken;
                }
            }
        }

        /// [`shm_segment::futex::wait_until`], line for line, on [`wait`].
        pub(crate) fn wait_until(
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

        /// Wakes the first `count` sleepers on `word`; returns how many.
        pub(crate) fn wake(word: &AtomicU32, count: u32) -> usize {
            let mut state = futexes();
            let address = address(word);
            let mut woken = 0;
            state.sleepers.retain(|&(a, _)| {
                let wake = a == address && woken < count as usize;
                woken += usize::from(wake);
                !wake
            });
            if woken > 0 {
                KERNEL.woken.notify_all();
            }
            woken
        }

        /// Wakes every sleeper on `word`.
        pub(crate) fn wake_all(word: &AtomicU32) -> usize {
            wake(word, i32::MAX as u32)
        }
    }

    /// A new, free mutex; returns its number.
    pub(super) fn mutex_register(kind: MutexType) -> u64 {
        let mut table = mutexes();
        table.push(MutexState {
            recursive: kind == MutexType::Recursive,
            owner: None,
            depth: 0,
        });
        table.len() as u64 - 1
    }

    /// Locks mutex `id`, waiting while another thread holds it if `block`, else failing
    /// with `ETIMEDOUT` (what a past-deadline `pthread_mutex_clocklock` returns).
    pub(super) fn mutex_lock(id: u64, block: bool) -> i32 {
        let me = loom::thread::current().id();
        let mut table = mutexes();
        loop {
            let mutex = &mut table[id as usize];
            match mutex.owner {
                None => {
                    mutex.owner = Some(me);
                    mutex.depth = 1;
                    return 0;
                }
                Some(owner) if owner == me => {
                    if !mutex.recursive {
                        return libc::EDEADLK;
                    }
                    mutex.depth += 1;
                    return 0;
                }
                Some(_) if !block => return libc::ETIMEDOUT,
                Some(_) => table = KERNEL.unlocked.wait(table).expect(POISONED),
            }
        }
    }

    /// Unlocks mutex `id`: `EPERM` unless the caller holds it.
    pub(super) fn mutex_unlock(id: u64) -> i32 {
        let me = loom::thread::current().id();
        let mut table = mutexes();
        let mutex = &mut table[id as usize];
        if mutex.owner != Some(me) {
            return libc::EPERM;
        }
        mutex.depth -= 1;
        if mutex.depth == 0 {
            mutex.owner = None;
            KERNEL.unlocked.notify_all();
        }
        0
    }
}

#[cfg(all(test, not(loom)))]
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
