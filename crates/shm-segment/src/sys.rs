//! Every operating-system call this crate makes, and nothing else.
//!
//! Linux only for now. Another platform is added by giving this module a sibling
//! implementation with the same functions; the rest of the crate never calls the OS directly.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shm-segment supports Linux only (memfd_create, shm_open on /dev/shm, futex, /proc). \
     Contributions of a `sys` module for another OS are welcome."
);

use std::ffi::c_void;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fs::{FallocateFlags, Mode, OFlags};
use rustix::io::FdFlags;
use rustix::mm::{MapFlags, ProtFlags};

/// Where named POSIX shared memory objects appear as files.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// The system's page size: every mapping and every segment length is a multiple of it.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`.
pub(crate) fn memfd_create(debug_name: &str) -> io::Result<OwnedFd> {
    let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
    rustix::fs::memfd_create(debug_name, flags).map_err(Into::into)
}

/// Forbids shrinking the memfd, so no holder can truncate it under another's mapping (which
/// would make that mapping raise SIGBUS). Growing stays allowed.
pub(crate) fn seal_against_shrinking(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::fs::fcntl_add_seals(fd, rustix::fs::SealFlags::SHRINK).map_err(Into::into)
}

/// `shm_open("/<name>", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode)`, then a shared
/// `flock` taken at once, so that cleanup never mistakes the new file for an abandoned one.
pub(crate) fn shm_create_exclusive(os_name: &str, mode: u32) -> io::Result<OwnedFd> {
    let flags = rustix::shm::OFlags::RDWR | rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL;
    let fd = rustix::shm::open(os_name, flags, Mode::from_raw_mode(mode))?;
    // shm_open applies the umask; set the mode we were asked for exactly.
    let locked = rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
        .map_err(io::Error::from)
        .and_then(|()| lock_shared(std::os::fd::AsFd::as_fd(&fd)));
    if let Err(e) = locked {
        let _ = rustix::shm::unlink(os_name);
        return Err(e);
    }
    Ok(fd)
}

/// Opens `/dev/shm/<file_name>` without following a symlink and without blocking (a FIFO
/// planted under our prefix must not hang us); anything but a regular file is
/// `InvalidData`.
pub(crate) fn shm_open_existing(file_name: &str, writable: bool) -> io::Result<OwnedFd> {
    let access = if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    let flags = access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(format!("{SHM_DIR}/{file_name}"), flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(fd)
}

/// Device and inode of `/dev/shm/<file_name>` (the name, not a descriptor), without
/// following symlinks.
pub(crate) fn shm_path_identity(file_name: &str) -> io::Result<(u64, u64)> {
    let st = rustix::fs::lstat(format!("{SHM_DIR}/{file_name}"))?;
    Ok((st.st_dev, st.st_ino))
}

/// `shm_unlink("/<name>")`.
pub(crate) fn shm_unlink(os_name: &str) -> io::Result<()> {
    rustix::shm::unlink(os_name).map_err(Into::into)
}

/// Takes a shared `flock` on the file (blocking, retrying on EINTR). Every handle holds one
/// for its lifetime; the kernel drops it when the process exits, however it exits.
pub(crate) fn lock_shared(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        match rustix::fs::flock(fd, rustix::fs::FlockOperation::LockShared) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(Into::into),
        }
    }
}

/// Tries to take an exclusive `flock` without blocking: `Ok(true)` means no handle of any
/// process has the file open.
pub(crate) fn try_lock_exclusive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match rustix::fs::flock(fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Opens a file by path for reading and writing (used for `/proc/PID/fd/N`).
pub(crate) fn open_path_rw(path: &str) -> io::Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).map_err(Into::into)
}

/// Reserves `len` bytes of memory for the file, extending it if needed.
///
/// One `fallocate` call for the whole range: tmpfs checks its size limit up front and
/// undoes a failed or interrupted call completely, so a failure leaves the file as it was
/// and never fills `/dev/shm` on the way (reserving in chunks would). An interrupted call
/// (`EINTR`) is retried. Where a filesystem has no `fallocate` (`EOPNOTSUPP`), the file is
/// extended with `ftruncate` instead, which cannot report a full device early.
pub(crate) fn allocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    loop {
        match rustix::fs::fallocate(fd, FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::OPNOTSUPP) => {
                if file_len(fd)? < len {
                    rustix::fs::ftruncate(fd, len)?;
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether an error from [`allocate`] means "out of memory or space".
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error() || code == rustix::io::Errno::NOMEM.raw_os_error() || code == rustix::io::Errno::FBIG.raw_os_error())
}

/// Identity and size of an open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    /// Length in bytes.
    pub len: u64,
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Owner.
    pub uid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Last status change, seconds since the epoch.
    pub ctime: i64,
}

/// `fstat`.
pub(crate) fn stat(fd: BorrowedFd<'_>) -> io::Result<FileStat> {
    let st = rustix::fs::fstat(fd)?;
    Ok(FileStat {
        len: u64::try_from(st.st_size).unwrap_or(0),
        dev: st.st_dev,
        ino: st.st_ino,
        uid: st.st_uid,
        mode: st.st_mode & 0o7777,
        ctime: st.st_ctime,
    })
}

/// The file's current length.
pub(crate) fn file_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(stat(fd)?.len)
}

/// Reads up to `buf.len()` bytes at `offset`, retrying on `EINTR` and short reads.
pub(crate) fn read_at(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// Reserves `len` bytes of address space with no access and no backing memory.
pub(crate) fn reserve(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a null hint lets the kernel choose the address; nothing is overwritten.
    let ptr = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )?
    };
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Maps the first `len` bytes of `fd`, shared, at an address the kernel chooses.
pub(crate) fn map_shared(
    fd: BorrowedFd<'_>,
    len: usize,
    writable: bool,
) -> io::Result<NonNull<u8>> {
    let prot = if writable {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    };
    // SAFETY: a null hint lets the kernel choose the address; nothing is overwritten.
    let ptr =
        unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0)? };
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Maps `len` bytes of `fd` starting at file `offset`, shared and read-write, exactly at
/// `at`, replacing the reservation there.
///
/// # Safety
///
/// `at..at + len` must lie inside a reservation made by [`reserve`] that this process owns
/// and that no Rust reference currently points into; `at` and `offset` must be page-aligned.
pub(crate) unsafe fn map_fixed(
    at: NonNull<u8>,
    len: usize,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> io::Result<()> {
    // SAFETY: the caller guarantees the range is our own reservation, so MAP_FIXED replaces
    // only memory we own and nothing references.
    let ptr = unsafe {
        rustix::mm::mmap(
            at.as_ptr().cast::<c_void>(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED | MapFlags::FIXED,
            fd,
            offset,
        )?
    };
    debug_assert_eq!(ptr.cast::<u8>(), at.as_ptr());
    Ok(())
}

/// Unmaps `len` bytes at `at`.
///
/// # Safety
///
/// The range must be a mapping this process owns and that nothing will touch again.
pub(crate) unsafe fn unmap(at: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: forwarded to the caller.
    unsafe { rustix::mm::munmap(at.as_ptr().cast(), len).map_err(Into::into) }
}

/// Returns a closure that registers `handler` to run in the child after every `fork(3)`.
pub(crate) fn on_fork_in_child(handler: extern "C" fn()) -> impl FnOnce() {
    move || {
        // SAFETY: registers a handler that only stores to an atomic (async-signal-safe, as
        // code running in a freshly forked child must be); registration has no other
        // precondition. A failure (ENOMEM) leaves the cache unprotected across a fork, so
        // treat it as fatal rather than silently wrong.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(handler)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
    }
}

/// The calling process's id.
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

/// Reads `/proc/PID/stat`: `Ok(None)` when no such process exists, an error when it
/// cannot be told (descriptors exhausted, `/proc` mounted with `hidepid`, ...).
pub(crate) fn read_proc_stat(pid: u32) -> io::Result<Option<String>> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => Ok(Some(text)),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Clears `FD_CLOEXEC` on `fd`. Async-signal-safe: callable between `fork` and `exec`.
pub(crate) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: the caller keeps `fd` open for the duration of this call (it is one of the
    // descriptors it hands to the child).
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_setfd(fd, FdFlags::empty()).map_err(Into::into)
}

/// Sets `FD_CLOEXEC` on `fd`.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC).map_err(Into::into)
}

/// Duplicates `fd` with `FD_CLOEXEC` set.
pub(crate) fn dup_cloexec(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 3).map_err(Into::into)
}

/// Whether `fd` is an open descriptor in this process.
pub(crate) fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries; a closed fd number yields EBADF, never UB.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(fd).is_ok()
}

/// Blocks while `*word == expected`, for at most `timeout` (forever when `None`).
///
/// Returns `Ok(())` when woken (or spuriously), `Err(TimedOut)`, `Err(WouldBlock)` when the
/// word no longer held `expected`, or `Err(Interrupted)` on a signal. Uses the shared
/// (non-private) futex so that waiters in other processes are found.
pub(crate) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    timeout: Option<Duration>,
) -> io::Result<()> {
    use rustix::thread::futex;
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()).map_err(Into::into)
}

/// Wakes up to `count` waiters blocked on `word` in any process; returns how many woke.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> usize {
    use rustix::thread::futex;
    if count == 0 {
        return 0;
    }
    // The kernel reads the count as a signed int: larger values would wake just one.
    let count = count.min(i32::MAX as u32);
    // FUTEX_WAKE fails only for an invalid address, which a &AtomicU32 cannot be.
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

/// Names of the entries of [`SHM_DIR`].
pub(crate) fn list_shm_dir() -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        if let Some(name) = entry?.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}
