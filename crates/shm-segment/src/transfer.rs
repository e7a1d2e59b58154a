//! Moving segment handles between processes.
//!
//! A [`Segment`] is `Serialize + Deserialize` through its [`SegmentToken`]:
//!
//! * a **named** segment travels as its name and the receiver opens it by name;
//! * an **anonymous** segment travels as a descriptor. While serialising inside
//!   [`collect_fds`], each anonymous segment's descriptor is duplicated into the collected
//!   list and the token records its index. The sender hands the list to the receiver — by
//!   inheritance into a child ([`inherit`] and [`take_inherited`]), or over a unix socket
//!   with `SCM_RIGHTS` — and the receiver deserialises inside [`with_received_fds`], which
//!   supplies the descriptors by index.
//! * Without such a scope (a handle sent through a queue, say), the token also names the
//!   sending process and its descriptor number, and the receiver reopens the memfd through
//!   `/proc/<pid>/fd/<n>` (Linux), checking the process's start time and the file's inode
//!   so a recycled pid or descriptor number is never mistaken for the original. The sender
//!   must keep its handle open until the receiver has opened it; otherwise the receiver gets
//!   [`OpenError::HolderGone`].
//!
//! # Examples
//!
//! ```
//! use shm_segment::{transfer, ObjectKind, Segment, SegmentOptions};
//!
//! let seg = SegmentOptions::new(ObjectKind::RAW).len(64).create_anonymous()?;
//! let (bytes, fds) = transfer::collect_fds(|| serde_json::to_vec(&seg));
//! let bytes = bytes?;
//! assert_eq!(fds.len(), 1);
//! // ... in the receiving process, with the descriptors it received:
//! let copy: Segment = transfer::with_received_fds(&fds, || serde_json::from_slice(&bytes))?;
//! assert_eq!(copy.inode(), seg.inode());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{OpenError, ProcessId, Segment, SegmentOptions, sys};

/// The environment variable through which a child learns the descriptors it inherited:
/// `SENDER_PID;FD:DEV:INO,FD:DEV:INO,...` in the order of the collected list. The child
/// takes a descriptor only if that number is open and is that very file (device and
/// inode), and then marks it close-on-exec, so a grandchild that inherits the variable, or
/// a stale value, never takes a descriptor it does not own.
///
/// # Examples
///
/// ```
/// assert_eq!(shm_segment::transfer::INHERIT_ENV, "MULTIPROC_INHERITED_FDS");
/// ```
pub const INHERIT_ENV: &str = "MULTIPROC_INHERITED_FDS";

thread_local! {
    static COLLECTING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static SUPPLIED: RefCell<Option<Vec<RawFd>>> = const { RefCell::new(None) };
}

/// Runs `serialize`, collecting a duplicate of the descriptor of every anonymous segment it
/// serialises. Returns its result and the descriptors, in the order the tokens index them.
///
/// Scopes nest: an inner scope collects into its own list. The outer scope is restored
/// even if `serialize` panics.
///
/// # Examples
///
/// ```
/// let (n, fds) = shm_segment::transfer::collect_fds(|| 1 + 1);
/// assert_eq!((n, fds.len()), (2, 0));
/// ```
pub fn collect_fds<R>(serialize: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    /// Restores the outer scope, also on unwind.
    struct Scope(Option<Vec<OwnedFd>>);
    impl Drop for Scope {
        fn drop(&mut self) {
            let outer = self.0.take();
            COLLECTING.with(|c| *c.borrow_mut() = outer);
        }
    }
    let scope = Scope(COLLECTING.with(|c| c.borrow_mut().replace(Vec::new())));
    let result = serialize();
    let fds = COLLECTING
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    drop(scope);
    (result, fds)
}

/// Runs `deserialize` with `fds` supplied to the anonymous-segment tokens it meets (token
/// index `i` gets `fds[i]`, duplicated; `fds` stay owned by the caller).
///
/// # Examples
///
/// ```
/// let n = shm_segment::transfer::with_received_fds(&[], || 40 + 2);
/// assert_eq!(n, 42);
/// ```
pub fn with_received_fds<R>(fds: &[OwnedFd], deserialize: impl FnOnce() -> R) -> R {
    /// Restores the outer scope, also on unwind.
    struct Scope(Option<Vec<RawFd>>);
    impl Drop for Scope {
        fn drop(&mut self) {
            let outer = self.0.take();
            SUPPLIED.with(|s| *s.borrow_mut() = outer);
        }
    }
    let raw = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let _scope = Scope(SUPPLIED.with(|s| s.borrow_mut().replace(raw)));
    deserialize()
}

/// Arranges for a child started by `command` to inherit `fds`: their close-on-exec flag is
/// cleared in the child only, between fork and exec, and the child learns them through
/// [`INHERIT_ENV`]. The descriptors move into `command` and stay open as long as it lives.
/// Calling it again on the same command adds to the list.
///
/// # Examples
///
/// ```no_run
/// use shm_segment::{transfer, ObjectKind, SegmentOptions};
/// let seg = SegmentOptions::new(ObjectKind::RAW).len(64).create_anonymous()?;
/// let (token, fds) = transfer::collect_fds(|| serde_json::to_string(&seg));
/// let mut cmd = std::process::Command::new("child-program");
/// cmd.arg(token?);
/// transfer::inherit(&mut cmd, fds);
/// let status = cmd.status()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inherit(command: &mut Command, fds: Vec<OwnedFd>) {
    let mut entries: Vec<String> = command
        .get_envs()
        .find(|(key, _)| *key == INHERIT_ENV)
        .and_then(|(_, value)| value?.to_str())
        .and_then(|value| value.split_once(';'))
        .map(|(_, list)| list.to_owned())
        .filter(|list| !list.is_empty())
        .into_iter()
        .collect();
    for fd in &fds {
        let (dev, ino) = sys::stat(fd.as_fd()).map_or((0, 0), |st| (st.dev, st.ino));
        entries.push(format!("{}:{dev}:{ino}", fd.as_raw_fd()));
    }
    command.env(
        INHERIT_ENV,
        format!("{};{}", std::process::id(), entries.join(",")),
    );
    // SAFETY: the closure runs in the child between fork and exec and only calls fcntl,
    // which is async-signal-safe; it allocates nothing. The descriptors it names are owned
    // by the closure itself, so they are open whenever `command` spawns.
    unsafe {
        command.pre_exec(move || {
            for fd in &fds {
                sys::clear_cloexec(fd.as_raw_fd())?;
            }
            Ok(())
        });
    }
}

/// In a child started with [`inherit`]: takes ownership of the inherited descriptors, in
/// the parent's order, and marks them close-on-exec. Returns them once; later calls return
/// an empty list. Entries that do not check out (the descriptor is closed or is not the
/// file the parent passed, as in a grandchild that inherited the variable) are skipped.
///
/// # Examples
///
/// ```
/// // In a process not started with `inherit`, there is nothing to take.
/// assert!(shm_segment::transfer::take_inherited().is_empty());
/// ```
pub fn take_inherited() -> Vec<OwnedFd> {
    static TAKEN: Mutex<bool> = Mutex::new(false);
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if *taken {
        return Vec::new();
    }
    *taken = true;
    let Ok(value) = std::env::var(INHERIT_ENV) else {
        return Vec::new();
    };
    // The pid before ';' names the sender; ownership is proven by each descriptor's
    // identity instead, so a child whose parent already exited still gets its descriptors.
    let Some((_sender, list)) = value.split_once(';') else {
        return Vec::new();
    };
    list.split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(':').map(|p| p.parse::<u64>().ok());
            let (fd, dev, ino) = (parts.next()??, parts.next()??, parts.next()??);
            let fd = RawFd::try_from(fd)
                .ok()
                .filter(|&fd| fd > 2 && sys::fd_is_open(fd))?;
            // SAFETY: `fd` is open (checked above) and only borrowed for this fstat.
            let st = sys::stat(unsafe { BorrowedFd::borrow_raw(fd) }).ok()?;
            ((st.dev, st.ino) == (dev, ino)).then_some(fd)
        })
        .map(|fd| {
            // SAFETY: our parent passed this descriptor to us (it is open and is the very
            // file the variable names), and the `TAKEN` flag ensures it is wrapped in an
            // `OwnedFd` only once.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // Programs we start must not inherit it (nor take it on the same variable).
            let _ = sys::set_cloexec(fd.as_fd());
            fd
        })
        .collect()
}

/// The serialised form of a [`Segment`] handle.
///
/// # Examples
///
/// ```
/// use shm_segment::{transfer::SegmentToken, ObjectKind, SegmentOptions};
/// # let name = format!("doc-token-{}", std::process::id());
/// let seg = SegmentOptions::new(ObjectKind::RAW).create(&name)?;
/// assert_eq!(seg.token(), SegmentToken::Named { name: name.clone() });
/// let again = seg.token().open(&SegmentOptions::new(ObjectKind::RAW))?;
/// assert_eq!(again.inode(), seg.inode());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SegmentToken {
    /// A named segment, opened by name.
    Named {
        /// The segment's name.
        name: String,
    },
    /// An anonymous segment.
    Anonymous {
        /// Index into the descriptors of the surrounding [`collect_fds`] scope, if any.
        index: Option<u32>,
        /// The sending process, whose descriptor can be reopened through `/proc`.
        holder: ProcessId,
        /// The descriptor number in the sending process.
        holder_fd: i32,
        /// The file's device, to check that the descriptor found is the right one.
        device: u64,
        /// The file's inode, likewise.
        inode: u64,
    },
}

impl SegmentToken {
    /// Opens the segment this token names, validating it against `options`.
    ///
    /// # Errors
    ///
    /// Everything [`SegmentOptions::open`] returns, and [`OpenError::HolderGone`] when an
    /// anonymous segment's sender has exited or closed it and no descriptor was supplied.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// // Without a descriptor scope, the token reopens this live process's memfd via /proc.
    /// let again = seg.token().open(&SegmentOptions::new(ObjectKind::RAW))?;
    /// assert_eq!(again.inode(), seg.inode());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self, options: &SegmentOptions) -> Result<Segment, OpenError> {
        match self {
            SegmentToken::Named { name } => options.open(name),
            SegmentToken::Anonymous {
                index,
                holder,
                holder_fd,
                device,
                inode,
            } => {
                let supplied = index.and_then(|i| {
                    SUPPLIED.with(|s| {
                        s.borrow()
                            .as_ref()
                            .and_then(|fds| fds.get(i as usize).copied())
                    })
                });
                let fd = match supplied {
                    Some(raw) => {
                        // SAFETY: `with_received_fds` borrows the descriptors for the whole
                        // scope, so `raw` is open while we duplicate it.
                        let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
                        sys::dup_cloexec(borrowed).map_err(|source| OpenError::Io {
                            segment: "anonymous segment".into(),
                            op: "dup",
                            source,
                        })?
                    }
                    None => reopen_from_holder(*holder, *holder_fd)?,
                };
                let found = sys::stat(fd.as_fd()).map(|st| (st.dev, st.ino)).ok();
                if found != Some((*device, *inode)) {
                    return Err(OpenError::HolderGone { holder: *holder });
                }
                options.open_fd(fd)
            }
        }
    }
}

fn reopen_from_holder(holder: ProcessId, holder_fd: i32) -> Result<OwnedFd, OpenError> {
    if !holder.is_alive() {
        return Err(OpenError::HolderGone { holder });
    }
    let fd = sys::open_path_rw(&format!("/proc/{}/fd/{holder_fd}", holder.pid)).map_err(|e| {
        match e.kind() {
            // The process or its descriptor is gone.
            std::io::ErrorKind::NotFound => OpenError::HolderGone { holder },
            _ => OpenError::Io {
                segment: "anonymous segment".into(),
                op: "open /proc/PID/fd",
                source: e,
            },
        }
    })?;
    // The pid could have been recycled between the check and the open.
    if !holder.is_alive() {
        return Err(OpenError::HolderGone { holder });
    }
    Ok(fd)
}

impl Segment {
    /// The token this handle serialises as. Inside [`collect_fds`], an anonymous segment's
    /// descriptor is duplicated into the collected list.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{transfer, transfer::SegmentToken, ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// let (token, fds) = transfer::collect_fds(|| seg.token());
    /// assert!(matches!(token, SegmentToken::Anonymous { index: Some(0), .. }));
    /// assert_eq!(fds.len(), 1);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn token(&self) -> SegmentToken {
        match self.name() {
            Some(name) => SegmentToken::Named {
                name: name.to_string(),
            },
            None => {
                let index = COLLECTING.with(|c| {
                    let mut c = c.borrow_mut();
                    let fds = c.as_mut()?;
                    let dup = sys::dup_cloexec(self.fd()).ok()?;
                    fds.push(dup);
                    u32::try_from(fds.len() - 1).ok()
                });
                SegmentToken::Anonymous {
                    index,
                    holder: ProcessId::current(),
                    holder_fd: self.raw_fd(),
                    device: self.device(),
                    inode: self.inode(),
                }
            }
        }
    }
}

impl Serialize for Segment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.token().serialize(serializer)
    }
}

/// Deserialises any kind of segment ([`SegmentOptions::any`]); typed objects deserialise a
/// [`SegmentToken`] and open it with their own options instead.
impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let token = SegmentToken::deserialize(deserializer)?;
        token
            .open(&SegmentOptions::any())
            .map_err(serde::de::Error::custom)
    }
}
