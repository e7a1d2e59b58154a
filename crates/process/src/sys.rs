//! Every operating-system call this crate makes, and nothing else.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shm-process supports Linux only (memfd, pidfd, prctl(PR_SET_PDEATHSIG), /proc). \
     A `sys` module for another OS is welcome."
);

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, Signal, WaitOptions};

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It called `exit(code)`.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// It ended, but its status was reaped by someone else.
    Lost,
}

/// An anonymous in-memory file (`memfd_create`), close-on-exec.
pub(crate) fn memfd(name: &str) -> io::Result<OwnedFd> {
    rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).map_err(Into::into)
}

/// Replaces the whole content of `fd` with `bytes`.
pub(crate) fn write_all_at_start(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    rustix::fs::ftruncate(fd, 0)?;
    let mut done = 0;
    while done < bytes.len() {
        match rustix::io::pwrite(fd, &bytes[done..], done as u64) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads the whole content of `fd`.
pub(crate) fn read_all(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let len = rustix::fs::fstat(fd)?.st_size as usize;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match rustix::io::pread(fd, &mut buf[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// Borrows descriptor number `fd`.
///
/// # Safety
///
/// `fd` must be open for as long as the result is used.
pub(crate) unsafe fn borrow_raw<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: forwarded to the caller.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Clears `FD_CLOEXEC` (async-signal-safe: used between fork and exec).
pub(crate) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: the caller passes descriptors it keeps open across the fork.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(Into::into)
}

/// Sets `FD_CLOEXEC`, so that programs this process `exec`s do not inherit `fd`.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) {
    let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC);
}

/// Device and inode of an open descriptor, if it is open.
pub(crate) fn fd_identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: F_GETFD only queries; a closed number yields EBADF, never UB.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(borrowed).ok()?;
    let st = rustix::fs::fstat(borrowed).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Device and inode of the running executable.
pub(crate) fn exe_identity() -> Option<(u64, u64)> {
    let st = rustix::fs::stat("/proc/self/exe").ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Whether the process runs with elevated privileges (setuid, file capabilities): then it
/// must not trust its environment to tell it what code to run.
pub(crate) fn secure_mode() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Whether two code addresses lie in the same loaded object (executable or library), so
/// that the distance between them is the same in every process running this executable.
/// `true` when the dynamic loader cannot tell (a static executable is one object).
pub(crate) fn same_object(a: usize, b: usize) -> bool {
    let base = |address: usize| {
        // SAFETY: dladdr only reads the loader's tables; `info` is plain data it fills in.
        unsafe {
            let mut info: libc::Dl_info = std::mem::zeroed();
            (libc::dladdr(address as *const libc::c_void, &mut info) != 0)
                .then_some(info.dli_fbase as usize)
        }
    };
    match (base(a), base(b)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Arranges for SIGKILL when the parent dies; fails if the parent is already gone.
/// Async-signal-safe: used between fork and exec.
pub(crate) fn die_with_parent(expected_parent: u32) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    if rustix::process::getppid()
        .map(Pid::as_raw_nonzero)
        .map(|p| p.get().unsigned_abs())
        != Some(expected_parent)
    {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// The calling process's id.
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

/// The parent process's id (0 if none).
pub(crate) fn getppid() -> u32 {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get().unsigned_abs())
}

fn pid(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))
}

/// A descriptor that becomes readable when the process exits (`pidfd_open`).
pub(crate) fn pidfd(child: u32) -> io::Result<OwnedFd> {
    rustix::process::pidfd_open(pid(child)?, rustix::process::PidfdFlags::empty())
        .map_err(Into::into)
}

/// Reaps the child if it has exited; `None` while it runs. `Exit::Lost` when its status
/// was taken by someone else (SIGCHLD ignored, or another `waitpid(-1)` in the program).
pub(crate) fn try_wait(child: u32) -> io::Result<Option<Exit>> {
    match rustix::process::waitpid(Some(pid(child)?), WaitOptions::NOHANG) {
        Ok(Some((_, status))) => Ok(decode(status)),
        Ok(None) => Ok(None),
        Err(rustix::io::Errno::CHILD) => Ok(Some(Exit::Lost)),
        Err(e) => Err(e.into()),
    }
}

fn decode(status: rustix::process::WaitStatus) -> Option<Exit> {
    if let Some(code) = status.exit_status() {
        Some(Exit::Code(code))
    } else {
        status.terminating_signal().map(Exit::Signal)
    }
}

/// Sleeps until `pidfd` reports the process's exit, or until `deadline`.
pub(crate) fn wait_exit(pidfd: Option<&OwnedFd>, deadline: Option<Instant>) {
    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    match pidfd {
        Some(fd) => {
            let ts = left.map(|d| rustix::time::Timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            });
            let mut fds = [PollFd::new(fd, PollFlags::IN)];
            // EINTR or a time-out: the caller re-checks and loops.
            let _ = rustix::event::poll(&mut fds, ts.as_ref());
        }
        // No pidfd (kernels before 5.3): poll the exit every millisecond.
        None => std::thread::sleep(left.unwrap_or(Duration::MAX).min(Duration::from_millis(1))),
    }
}

/// Sends `signal` to `child`.
pub(crate) fn kill(child: u32, signal: i32) -> io::Result<()> {
    let signal =
        Signal::from_named_raw(signal).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    rustix::process::kill_process(pid(child)?, signal).map_err(Into::into)
}

/// Threads of the calling process.
pub(crate) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// CPUs online.
pub(crate) fn cpu_count() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// `fork()`.
///
/// # Safety
///
/// In the child, only async-signal-safe operations are sound until `exec` or `_exit`
/// unless the parent had a single thread (then the child is a full copy of it).
pub(crate) unsafe fn fork() -> io::Result<u32> {
    // SAFETY: forwarded to the caller.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        pid => Ok(pid as u32),
    }
}

/// `_exit(code)`: ends the process without running destructors or atexit handlers.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and never returns.
    unsafe { libc::_exit(code) }
}

/// The raw number of a descriptor.
pub(crate) fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_fd().as_raw_fd()
}
