//! [`Segment`], a mapped shared-memory segment, and [`SegmentOptions`], which create and
//! open them.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::{NonNull, addr_of_mut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{CreateError, CreateOrOpenError, GrowError, OpenError, UnlinkError};
use crate::layout::{
    ATTACH_SLOTS, HEADER_LEN, Header, LAYOUT_VERSION, MAGIC, MAX_TOTAL_LEN, STATE_EMPTY,
    STATE_FAILED, STATE_INITIALISING, STATE_READY,
};
use crate::{ObjectKind, ProcessId, SegmentName, TypeFingerprint, fault, futex, sys};

/// Projects a header field pointer without creating a reference.
macro_rules! unsafe_field {
    ($h:expr, $field:ident) => {
        // SAFETY: `$h` points to the mapped header; `addr_of_mut!` creates no reference.
        unsafe { addr_of_mut!((*$h).$field) }
    };
}

/// How long openers wait for a creator to finish initialising, unless told otherwise.
///
/// # Examples
///
/// ```
/// assert_eq!(shm_segment::DEFAULT_INIT_TIMEOUT.as_secs(), 5);
/// ```
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for creating and opening segments: the object kind and element type (recorded by
/// the creator, checked by openers), the data length and growth limit, the mode, and how
/// long an opener waits for the creator.
///
/// # Examples
///
/// ```
/// use shm_segment::{ObjectKind, SegmentOptions};
///
/// let seg = SegmentOptions::new(ObjectKind::RAW).len(4096).create_anonymous()?;
/// assert!(seg.data_len() >= 4096);
/// assert!(seg.name().is_none());
/// # Ok::<(), shm_segment::CreateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    kind: Option<ObjectKind>,
    fingerprint: Option<TypeFingerprint>,
    len: usize,
    max_len: Option<usize>,
    mode: u32,
    init_timeout: Duration,
}

impl SegmentOptions {
    /// Options for a segment holding a `kind` object with no element type
    /// ([`TypeFingerprint::NONE`]) and no data bytes; set them with the other methods.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::EVENT).create_anonymous()?;
    /// assert_eq!(seg.kind(), ObjectKind::EVENT);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn new(kind: ObjectKind) -> Self {
        SegmentOptions {
            kind: Some(kind),
            fingerprint: Some(TypeFingerprint::NONE),
            len: 0,
            max_len: None,
            mode: 0o600,
            init_timeout: DEFAULT_INIT_TIMEOUT,
        }
    }

    /// Options that open a segment of any kind and element type (for tools such as
    /// `multiproc inspect`). Creating with them makes a [`ObjectKind::RAW`] segment.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let anything = SegmentOptions::any();
    /// # let _ = anything;
    /// ```
    pub fn any() -> Self {
        SegmentOptions {
            kind: None,
            fingerprint: None,
            ..SegmentOptions::new(ObjectKind::RAW)
        }
    }

    /// The element type, recorded at creation and checked when opening.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions, TypeFingerprint};
    /// let seg = SegmentOptions::new(ObjectKind::RAW)
    ///     .fingerprint(TypeFingerprint::of::<u64>())
    ///     .len(64)
    ///     .create_anonymous()?;
    /// assert_eq!(seg.fingerprint(), TypeFingerprint::of::<u64>());
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn fingerprint(mut self, fingerprint: TypeFingerprint) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Data bytes to create the segment with (rounded up so the file is whole pages).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(100).create_anonymous()?;
    /// assert!(seg.data_len() >= 100);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn len(mut self, len: usize) -> Self {
        self.len = len;
        self
    }

    /// The most data bytes the segment may [`grow`](Segment::grow) to. Fixed at creation;
    /// openers reserve this much address space (not memory). Defaults to [`len`](Self::len).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(4096).max_len(1 << 20).create_anonymous()?;
    /// seg.grow(1 << 20)?;
    /// assert!(seg.data_len() >= 1 << 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = Some(max_len);
        self
    }

    /// Permission bits of a named segment (default `0o600`: the owner only).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// # let name = format!("doc-mode-{}", std::process::id());
    /// let _seg = SegmentOptions::new(ObjectKind::RAW).mode(0o640).create(&name)?;
    /// let mode = std::fs::metadata(format!("/dev/shm/multiproc.{name}"))?.permissions().mode();
    /// assert_eq!(mode & 0o777, 0o640);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// How long [`open`](Self::open) waits for the creator to publish "ready" (default
    /// [`DEFAULT_INIT_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shm_segment::{ObjectKind, OpenError, SegmentOptions};
    /// let quick = SegmentOptions::new(ObjectKind::RAW).init_timeout(Duration::from_millis(10));
    /// assert!(matches!(quick.open("doc-absent"), Err(OpenError::NotFound { .. })));
    /// ```
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// Creates an anonymous segment (`memfd_create`): it has no name, is shared by passing
    /// its handle to other processes, and is freed by the kernel when the last process
    /// holding it exits, however it exits.
    ///
    /// # Errors
    ///
    /// [`CreateError::NoSpace`] when memory is short, [`CreateError::InvalidSize`] for a
    /// length over the 1 TiB limit, [`CreateError::Io`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(8).create_anonymous()?;
    /// assert_eq!(seg.kind(), ObjectKind::RAW);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn create_anonymous(&self) -> Result<Segment, CreateError> {
        self.create_anonymous_with(|_| {})
    }

    /// Like [`create_anonymous`](Self::create_anonymous), running `init` on the new segment
    /// before it is marked ready.
    ///
    /// # Errors
    ///
    /// As [`create_anonymous`](Self::create_anonymous).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(8).create_anonymous_with(|seg| {
    ///     // SAFETY: the segment has at least 8 data bytes and no one else sees it yet.
    ///     unsafe { seg.data().as_ptr().write(42) };
    /// })?;
    /// // SAFETY: as above; the byte was initialised.
    /// assert_eq!(unsafe { seg.data().as_ptr().read() }, 42);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn create_anonymous_with(
        &self,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment, CreateError> {
        let kind = self.kind.unwrap_or(ObjectKind::RAW);
        let fd = sys::memfd_create(&format!("multiproc.anon.{kind}")).map_err(|source| {
            CreateError::Io {
                op: "memfd_create",
                source,
            }
        })?;
        let seg = self.initialise(fd, None, init, None)?;
        // Best effort: older kernels without sealing still work, only less defensively.
        let _ = sys::seal_against_shrinking(seg.fd.as_fd());
        Ok(seg)
    }

    /// Creates the named segment `/dev/shm/multiproc.<name>`, mode 0600 unless
    /// [`mode`](Self::mode) says otherwise. The returned handle is the creator: it removes
    /// the name when dropped unless [`Segment::persist`] was called.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidName`], [`CreateError::AlreadyExists`],
    /// [`CreateError::PermissionDenied`], [`CreateError::NoSpace`] (nothing is left behind),
    /// [`CreateError::InvalidSize`], [`CreateError::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// # let name = format!("doc-create-{}", std::process::id());
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(64).create(&name)?;
    /// assert_eq!(seg.name().map(|n| n.as_str()), Some(name.as_str()));
    /// drop(seg); // removes /dev/shm/multiproc.<name>
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<Segment, CreateError> {
        self.create_with(name, |_| {})
    }

    /// Like [`create`](Self::create), running `init` before the segment is marked ready;
    /// openers in other processes wait until then.
    ///
    /// If `init` panics, the segment is marked failed (waiting openers get
    /// [`OpenError::InitFailed`]) and removed, and the panic continues.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// # let name = format!("doc-create-with-{}", std::process::id());
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(8).create_with(&name, |seg| {
    ///     // SAFETY: 8 aligned data bytes, used only atomically.
    ///     let word = unsafe { AtomicU64::from_ptr(seg.data().as_ptr().cast()) };
    ///     word.store(7, Ordering::Relaxed);
    /// })?;
    /// # drop(seg);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn create_with(
        &self,
        name: &str,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment, CreateError> {
        let name = SegmentName::new(name)?;
        let fd =
            sys::shm_create_exclusive(&name.os_name(), self.mode).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => CreateError::AlreadyExists {
                    name: name.to_string(),
                },
                io::ErrorKind::PermissionDenied => CreateError::PermissionDenied {
                    name: name.to_string(),
                },
                _ => CreateError::Io {
                    op: "shm_open",
                    source: e,
                },
            })?;
        // Until a handle exists (its drop then removes the name), remove it here on failure
        // — but only while the name still refers to our file.
        let cleanup = UnlinkOnFailure::new(&name, fd.as_fd());
        self.initialise(fd, Some(name), init, Some(cleanup))
    }

    /// Opens the existing named segment `name`, waits (up to the
    /// [`init_timeout`](Self::init_timeout)) until its creator has marked it ready, and
    /// checks every header field against these options.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::PermissionDenied`], [`OpenError::InvalidName`],
    /// [`OpenError::NotASegment`], [`OpenError::VersionMismatch`],
    /// [`OpenError::KindMismatch`], [`OpenError::TypeMismatch`], [`OpenError::Truncated`],
    /// [`OpenError::SizeMismatch`], [`OpenError::Corrupt`], [`OpenError::InitTimeout`],
    /// [`OpenError::InitFailed`], [`OpenError::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, OpenError, SegmentOptions};
    /// # let name = format!("doc-open-{}", std::process::id());
    /// let created = SegmentOptions::new(ObjectKind::QUEUE).len(64).create(&name)?;
    /// let opened = SegmentOptions::new(ObjectKind::QUEUE).open(&name)?;
    /// assert_eq!(opened.data_len(), created.data_len());
    /// let wrong = SegmentOptions::new(ObjectKind::LOCK).open(&name);
    /// assert!(matches!(wrong, Err(OpenError::KindMismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self, name: &str) -> Result<Segment, OpenError> {
        let name = SegmentName::new(name)?;
        let deadline = futex::deadline_after(self.init_timeout);
        loop {
            let fd =
                sys::shm_open_existing(&name.file_name(), true).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => OpenError::NotFound {
                        name: name.to_string(),
                    },
                    io::ErrorKind::PermissionDenied => OpenError::PermissionDenied {
                        name: name.to_string(),
                    },
                    io::ErrorKind::InvalidData => OpenError::NotASegment {
                        segment: describe(Some(&name)),
                    },
                    _ => OpenError::Io {
                        segment: describe(Some(&name)),
                        op: "open",
                        source: e,
                    },
                })?;
            let io_err = |op| {
                let segment = describe(Some(&name));
                move |source| OpenError::Io {
                    segment,
                    op,
                    source,
                }
            };
            // The shared lock tells `gc` the segment is in use for as long as we hold it.
            sys::lock_shared(fd.as_fd()).map_err(io_err("flock"))?;
            // `gc` may have removed the name between our open and our lock: then this file
            // is on its way out, and a new one may already carry the name. Start over.
            let ours = sys::stat(fd.as_fd()).map_err(io_err("fstat"))?;
            match sys::shm_path_identity(&name.file_name()) {
                Ok(identity) if identity == (ours.dev, ours.ino) => {
                    return self.attach_existing(fd, Some(name));
                }
                _ if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(OpenError::NotFound {
                        name: name.to_string(),
                    });
                }
                _ => std::thread::yield_now(),
            }
        }
    }

    /// Opens a segment from a descriptor received from another process (an inherited or
    /// transferred anonymous segment), validating it like [`open`](Self::open).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), apart from the name-related errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(64).create_anonymous()?;
    /// let fd = seg.fd().try_clone_to_owned()?;
    /// let again = SegmentOptions::new(ObjectKind::RAW).open_fd(fd)?;
    /// assert_eq!(again.data_len(), seg.data_len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_fd(&self, fd: OwnedFd) -> Result<Segment, OpenError> {
        self.attach_existing(fd, None)
    }

    /// Creates the named segment, or opens it if it exists. Exactly one of any number of
    /// racing processes creates it (and runs nothing else); the others open it and wait
    /// for it to be ready. [`Segment::is_creator`] tells which one a handle is.
    ///
    /// # Errors
    ///
    /// [`CreateOrOpenError::Create`] or [`CreateOrOpenError::Open`] with the cause.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// # let name = format!("doc-coo-{}", std::process::id());
    /// let opts = SegmentOptions::new(ObjectKind::RAW).len(64);
    /// let first = opts.create_or_open(&name)?;
    /// let second = opts.create_or_open(&name)?;
    /// assert!(first.is_creator() && !second.is_creator());
    /// # Ok::<(), shm_segment::CreateOrOpenError>(())
    /// ```
    pub fn create_or_open(&self, name: &str) -> Result<Segment, CreateOrOpenError> {
        self.create_or_open_with(name, |_| {})
    }

    /// Like [`create_or_open`](Self::create_or_open); `init` runs only in the creator.
    ///
    /// # Errors
    ///
    /// As [`create_or_open`](Self::create_or_open).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// # let name = format!("doc-coow-{}", std::process::id());
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(8).create_or_open_with(&name, |_| {})?;
    /// assert!(seg.is_creator());
    /// # Ok::<(), shm_segment::CreateOrOpenError>(())
    /// ```
    pub fn create_or_open_with(
        &self,
        name: &str,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment, CreateOrOpenError> {
        let deadline = futex::deadline_after(self.init_timeout);
        let expired = || deadline.is_some_and(|d| Instant::now() >= d);
        let mut init = Some(init);
        loop {
            match self.create_with(name, |seg| (init.take().expect("init runs once"))(seg)) {
                Err(CreateError::AlreadyExists { .. }) => {}
                other => return Ok(other?),
            }
            match self.open(name) {
                // The creator's init failed, or the segment was removed in between: again.
                Err(OpenError::NotFound { .. } | OpenError::InitFailed { .. }) if !expired() => {
                    std::thread::yield_now();
                }
                // The creator died before finishing: remove its remains (only if no process
                // has them open) and create afresh.
                Err(
                    e @ OpenError::InitTimeout {
                        creator_alive: false,
                        ..
                    },
                ) => {
                    if expired() || !crate::catalog::reclaim_if_abandoned(name) {
                        return Err(e.into());
                    }
                }
                other => return Ok(other?),
            }
        }
    }

    /// Sizes, maps and initialises a newly created, empty file; marks it ready.
    fn initialise(
        &self,
        fd: OwnedFd,
        name: Option<SegmentName>,
        init: impl FnOnce(&Segment),
        cleanup: Option<UnlinkOnFailure>,
    ) -> Result<Segment, CreateError> {
        let page = sys::page_size();
        let total = HEADER_LEN
            .checked_add(self.len)
            .and_then(|n| n.checked_next_multiple_of(page))
            .filter(|&n| n as u64 <= MAX_TOTAL_LEN)
            .ok_or_else(|| CreateError::InvalidSize {
                reason: format!(
                    "{} data bytes exceed the limit of {MAX_TOTAL_LEN} bytes",
                    self.len
                ),
            })?;
        let max_data = self.max_len.unwrap_or(self.len).max(self.len);
        let max_total = HEADER_LEN
            .checked_add(max_data)
            .and_then(|n| n.checked_next_multiple_of(page))
            .filter(|&n| n as u64 <= MAX_TOTAL_LEN)
            .ok_or_else(|| CreateError::InvalidSize {
                reason: format!("max_len {max_data} exceeds the limit of {MAX_TOTAL_LEN} bytes"),
            })?;

        sys::allocate(fd.as_fd(), total as u64).map_err(|e| {
            if sys::is_no_space(&e) {
                CreateError::NoSpace {
                    name: name.as_ref().map(ToString::to_string),
                    requested: total as u64,
                }
            } else {
                CreateError::Io {
                    op: "fallocate",
                    source: e,
                }
            }
        })?;
        let mapping = Mapping::new(fd.as_fd(), total, max_total)
            .map_err(|source| CreateError::Io { op: "mmap", source })?;
        let stat = sys::stat(fd.as_fd()).map_err(|source| CreateError::Io {
            op: "fstat",
            source,
        })?;

        let me = ProcessId::current();
        let kind = self.kind.unwrap_or(ObjectKind::RAW);
        let fingerprint = self.fingerprint.unwrap_or(TypeFingerprint::NONE);
        let hdr = mapping.base.as_ptr().cast::<Header>();
        // SAFETY: the mapping is at least HEADER_LEN bytes, page-aligned, and the file was
        // just created zero-filled. No opener reads these fields before it loads `magic`
        // with Acquire, which happens-after the Release store below.
        unsafe {
            addr_of_mut!((*hdr).version).write(LAYOUT_VERSION);
            addr_of_mut!((*hdr).kind).write(kind.code());
            addr_of_mut!((*hdr).type_size).write(fingerprint.size);
            addr_of_mut!((*hdr).type_align).write(fingerprint.align);
            addr_of_mut!((*hdr).type_hash).write(fingerprint.name_hash);
            addr_of_mut!((*hdr).max_len).write(max_total as u64);
            addr_of_mut!((*hdr).data_offset).write(HEADER_LEN as u32);
            addr_of_mut!((*hdr).creator_pid).write(me.pid);
            addr_of_mut!((*hdr).creator_start).write(me.start_time);
        }
        let seg = Segment {
            fd,
            mapping,
            seen_generation: AtomicU64::new(0),
            remap: Mutex::new(()),
            name,
            creator: true,
            unlink_on_drop: AtomicBool::new(true),
            attach_slot: None,
            ino: stat.ino,
            dev: stat.dev,
            owner_pid: me.pid,
        };
        // From here on the handle's drop removes the name (with the same identity check).
        if let Some(cleanup) = cleanup {
            cleanup.disarm();
        }
        let fields = seg.fields();
        fields.total_len.store(total as u64, Ordering::Relaxed);
        fields
            .init_state
            .store(STATE_INITIALISING, Ordering::Relaxed);
        // [header-published] Release: pairs with the opener's Acquire load of `magic`.
        fields.magic.store(MAGIC, Ordering::Release);
        fault::point("segment.create.before_ready");

        let mut seg = seg;
        seg.attach_slot = seg.attach();
        // If `init` panics, tell waiting openers and let `seg`'s drop remove the name.
        let failed = MarkFailedOnUnwind {
            state: seg.fields().init_state,
        };
        init(&seg);
        std::mem::forget(failed);
        // [ready] Release: pairs with the opener's Acquire load of `init_state`.
        seg.fields()
            .init_state
            .store(STATE_READY, Ordering::Release);
        futex::wake_all(seg.fields().init_state);
        Ok(seg)
    }

    /// Validates and maps an existing segment's file, waiting for it to become ready.
    fn attach_existing(
        &self,
        fd: OwnedFd,
        name: Option<SegmentName>,
    ) -> Result<Segment, OpenError> {
        let label = describe(name.as_ref());
        let io_err = |op: &'static str| {
            let label = label.clone();
            move |source: io::Error| OpenError::Io {
                segment: label,
                op,
                source,
            }
        };
        let started = Instant::now();
        let deadline = futex::deadline_after(self.init_timeout);

        // 1. Wait until the header is published. Only `pread` looks at the file until its
        //    magic is set: mapping a file shorter than a page would fault on access.
        let file_len = wait_for_header(fd.as_fd(), &label, started, deadline)?;

        // 2. Read the header from a mapping of its page, ordered after the magic (Acquire),
        //    and check the fields that never change.
        let header = read_published_header(fd.as_fd()).map_err(io_err("mmap"))?;
        let page = sys::page_size() as u64;
        let corrupt = |reason: String| OpenError::Corrupt {
            segment: label.clone(),
            reason,
        };
        if header.version != LAYOUT_VERSION {
            return Err(OpenError::VersionMismatch {
                segment: label,
                expected: LAYOUT_VERSION,
                found: header.version,
            });
        }
        if header.data_offset as usize != HEADER_LEN {
            return Err(corrupt(format!(
                "data offset {} (expected {HEADER_LEN})",
                header.data_offset
            )));
        }
        if header.max_len > MAX_TOTAL_LEN
            || !header.max_len.is_multiple_of(page)
            || header.max_len < HEADER_LEN as u64
        {
            return Err(corrupt(format!(
                "impossible maximum length {}",
                header.max_len
            )));
        }
        if header.total_len < HEADER_LEN as u64
            || !header.total_len.is_multiple_of(page)
            || header.total_len > header.max_len
        {
            return Err(corrupt(format!(
                "impossible length {} (maximum {})",
                header.total_len, header.max_len
            )));
        }
        if header.total_len > file_len {
            return Err(OpenError::SizeMismatch {
                segment: label,
                header: header.total_len,
                file: file_len,
            });
        }
        self.check_identity(&header, &label)?;

        // 3. Map what the header says exists, inside a reservation of the maximum.
        let mapping = Mapping::new(
            fd.as_fd(),
            header.total_len as usize,
            header.max_len as usize,
        )
        .map_err(io_err("mmap"))?;
        let stat = sys::stat(fd.as_fd()).map_err(io_err("fstat"))?;
        let mut seg = Segment {
            fd,
            mapping,
            // Never a real generation: the first `refresh` below always looks.
            seen_generation: AtomicU64::new(u64::MAX),
            remap: Mutex::new(()),
            name,
            creator: false,
            unlink_on_drop: AtomicBool::new(false),
            attach_slot: None,
            ino: stat.ino,
            dev: stat.dev,
            owner_pid: sys::getpid(),
        };

        // 4. Wait for "ready", giving up early if the creator died.
        let creator = ProcessId {
            pid: header.creator_pid,
            start_time: header.creator_start,
        };
        let state = seg.fields().init_state;
        loop {
            // [ready] Acquire: pairs with the creator's Release store of STATE_READY.
            match state.load(Ordering::Acquire) {
                STATE_READY => break,
                STATE_FAILED => return Err(OpenError::InitFailed { segment: label }),
                s @ (STATE_EMPTY | STATE_INITIALISING) => {
                    // Sleep in slices, to notice a creator that died.
                    let slice = Instant::now() + Duration::from_millis(10);
                    let until = deadline.map_or(slice, |d| d.min(slice));
                    futex::wait(state, s, Some(until));
                    let expired = deadline.is_some_and(|d| Instant::now() >= d);
                    // The state is looked at after the verdict on the creator: a creator
                    // that finished and exited in between made it READY (or FAILED), which
                    // the next turn of the loop reports instead of a timeout.
                    let gave_up = expired || !creator.is_alive();
                    // [ready] Acquire, as above.
                    let now = state.load(Ordering::Acquire);
                    if gave_up && matches!(now, STATE_EMPTY | STATE_INITIALISING) {
                        return Err(OpenError::InitTimeout {
                            segment: label,
                            waited: started.elapsed(),
                            creator: Some(creator),
                            creator_alive: creator.is_alive(),
                        });
                    }
                }
                other => return Err(corrupt(format!("unknown init state {other}"))),
            }
        }

        // 5. The segment may have grown since we read the header: map the rest.
        seg.refresh().map_err(|e| match e {
            GrowError::Io { op, source } => OpenError::Io {
                segment: label.clone(),
                op,
                source,
            },
            other => corrupt(other.to_string()),
        })?;
        if seg.data_len() < self.len {
            return Err(OpenError::TooSmall {
                segment: label,
                len: seg.data_len() as u64,
                wanted: self.len as u64,
            });
        }
        seg.attach_slot = seg.attach();
        Ok(seg)
    }

    fn check_identity(&self, header: &Header, label: &str) -> Result<(), OpenError> {
        let found_kind = ObjectKind::new(header.kind);
        if let Some(expected) = self.kind
            && expected != found_kind
        {
            return Err(OpenError::KindMismatch {
                segment: label.to_owned(),
                expected,
                found: found_kind,
            });
        }
        let found = TypeFingerprint {
            size: header.type_size,
            align: header.type_align,
            name_hash: header.type_hash,
        };
        if let Some(expected) = self.fingerprint
            && expected != found
        {
            return Err(OpenError::TypeMismatch {
                segment: label.to_owned(),
                expected,
                found,
            });
        }
        Ok(())
    }
}

/// Polls the file (with `pread`, never a mapping) until its magic is published; returns
/// the file's length then. Classifies foreign and short files on the way.
fn wait_for_header(
    fd: BorrowedFd<'_>,
    label: &str,
    started: Instant,
    deadline: Option<Instant>,
) -> Result<u64, OpenError> {
    let mut pause = Duration::from_micros(50);
    loop {
        let io_err = |op, source| OpenError::Io {
            segment: label.to_owned(),
            op,
            source,
        };
        let file_len = sys::file_len(fd).map_err(|e| io_err("fstat", e))?;
        let mut buf = [0u8; 12];
        let got = sys::read_at(fd, &mut buf, 0).map_err(|e| io_err("pread", e))?;
        let magic = if got >= 8 {
            u64::from_le_bytes(buf[..8].try_into().unwrap_or_default())
        } else {
            0
        };
        if magic != 0 {
            if magic != MAGIC {
                return Err(OpenError::NotASegment {
                    segment: label.to_owned(),
                });
            }
            let version = u32::from_le_bytes(buf[8..12].try_into().unwrap_or_default());
            if got == 12 && version != LAYOUT_VERSION {
                return Err(OpenError::VersionMismatch {
                    segment: label.to_owned(),
                    expected: LAYOUT_VERSION,
                    found: version,
                });
            }
            // The creator reserves whole pages before publishing the magic, so a shorter
            // file was cut by someone.
            if file_len < HEADER_LEN as u64 {
                return Err(OpenError::Truncated {
                    segment: label.to_owned(),
                    len: file_len,
                    needed: HEADER_LEN as u64,
                });
            }
            return Ok(file_len);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(if file_len < HEADER_LEN as u64 {
                OpenError::Truncated {
                    segment: label.to_owned(),
                    len: file_len,
                    needed: HEADER_LEN as u64,
                }
            } else {
                OpenError::InitTimeout {
                    segment: label.to_owned(),
                    waited: started.elapsed(),
                    creator: None,
                    creator_alive: false,
                }
            });
        }
        let left = deadline.map_or(pause, |d| d.saturating_duration_since(Instant::now()));
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Maps the header's page, loads `magic` with Acquire and then every field atomically, and
/// returns a copy. The file is at least `HEADER_LEN` long, so reading the first
/// `HEADER_LEN` bytes of the page cannot fault.
fn read_published_header(fd: BorrowedFd<'_>) -> io::Result<Header> {
    use zerocopy::FromZeros;
    let page = sys::page_size();
    let base = sys::map_shared(fd, page, false)?;
    let h = base.as_ptr().cast::<Header>();
    let mut copy = Header::new_zeroed();
    // SAFETY: `h` points to a mapping of at least HEADER_LEN readable bytes (the file is
    // that long), aligned to a page; every field is naturally aligned (layout asserts) and
    // read atomically, since another process may be writing the header.
    unsafe {
        let u32_at = |p: *mut u32| AtomicU32::from_ptr(p).load(Ordering::Relaxed);
        let u64_at = |p: *mut u64| AtomicU64::from_ptr(p).load(Ordering::Relaxed);
        // [header-published] Acquire: pairs with the creator's Release store of `magic`.
        copy.magic = AtomicU64::from_ptr(addr_of_mut!((*h).magic)).load(Ordering::Acquire);
        copy.version = u32_at(addr_of_mut!((*h).version));
        copy.kind = u32_at(addr_of_mut!((*h).kind));
        copy.type_size = u32_at(addr_of_mut!((*h).type_size));
        copy.type_align = u32_at(addr_of_mut!((*h).type_align));
        copy.type_hash = u64_at(addr_of_mut!((*h).type_hash));
        copy.total_len = AtomicU64::from_ptr(addr_of_mut!((*h).total_len)).load(Ordering::Acquire);
        copy.max_len = u64_at(addr_of_mut!((*h).max_len));
        copy.data_offset = u32_at(addr_of_mut!((*h).data_offset));
        copy.creator_pid = u32_at(addr_of_mut!((*h).creator_pid));
        copy.creator_start = u64_at(addr_of_mut!((*h).creator_start));
        // SAFETY: the probe mapping is ours and no reference into it outlives this block.
        let _ = sys::unmap(base, page);
    }
    Ok(copy)
}

fn describe(name: Option<&SegmentName>) -> String {
    match name {
        Some(name) => format!("segment '{name}'"),
        None => "anonymous segment".to_owned(),
    }
}

/// Removes a half-created named segment on an error path, if the name still refers to the
/// file we created (a racing process may have re-created it after our failure).
struct UnlinkOnFailure {
    file_name: String,
    os_name: String,
    identity: Option<(u64, u64)>,
}

impl UnlinkOnFailure {
    fn new(name: &SegmentName, fd: BorrowedFd<'_>) -> Self {
        UnlinkOnFailure {
            file_name: name.file_name(),
            os_name: name.os_name(),
            identity: sys::stat(fd).ok().map(|st| (st.dev, st.ino)),
        }
    }

    fn disarm(mut self) {
        self.identity = None;
    }
}

impl Drop for UnlinkOnFailure {
    fn drop(&mut self) {
        if let Some(identity) = self.identity
            && sys::shm_path_identity(&self.file_name).ok() == Some(identity)
        {
            let _ = sys::shm_unlink(&self.os_name);
        }
    }
}

/// Marks the segment failed if the creator's `init` unwinds.
struct MarkFailedOnUnwind<'a> {
    state: &'a AtomicU32,
}

impl Drop for MarkFailedOnUnwind<'_> {
    fn drop(&mut self) {
        self.state.store(STATE_FAILED, Ordering::Release);
        futex::wake_all(self.state);
    }
}

/// An address-space reservation of the segment's maximum length, with the file mapped over
/// its start. Growth maps more of the file into the reservation, so the base address never
/// changes and pointers into the segment stay valid for the mapping's lifetime.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    reserved: usize,
    mapped: AtomicUsize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, reserve: usize) -> io::Result<Mapping> {
        let base = sys::reserve(reserve)?;
        let mapping = Mapping {
            base,
            reserved: reserve,
            mapped: AtomicUsize::new(0),
        };
        // SAFETY: `base..base+len` lies in the reservation just made (len <= reserve), which
        // nothing references yet; both are page-aligned.
        unsafe { sys::map_fixed(base, len, fd, 0)? };
        mapping.mapped.store(len, Ordering::Release);
        Ok(mapping)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the reservation is ours, and the `Segment` owning this mapping is being
        // dropped, so nothing borrows from it any more.
        let _ = unsafe { sys::unmap(self.base, self.reserved) };
    }
}

/// The header's mutable fields as atomics.
struct Fields<'a> {
    magic: &'a AtomicU64,
    total_len: &'a AtomicU64,
    init_state: &'a AtomicU32,
    generation: &'a AtomicU64,
    attach_overflow: &'a AtomicU32,
}

/// A mapped shared-memory segment: a validated [`Header`] followed by the object's data.
///
/// A `Segment` is shared by handing it to other processes: a named one by its name
/// ([`SegmentOptions::open`]), any one through serde (see [`crate::transfer`]). All handles
/// see the same bytes. The data area is touched only through raw pointers and atomics:
/// another process may write it at any time, so never make a `&[u8]` or `&mut [u8]` of it.
///
/// The data pointer never moves: the mapping sits in an address-space reservation of the
/// maximum length, and growth maps more of the file behind the existing bytes.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use shm_segment::{ObjectKind, SegmentOptions};
///
/// let seg = SegmentOptions::new(ObjectKind::RAW).len(8).create_anonymous()?;
/// // SAFETY: the data area has 8 bytes, aligned, and is only used as an atomic.
/// let counter = unsafe { AtomicU64::from_ptr(seg.data().as_ptr().cast()) };
/// counter.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(counter.load(Ordering::Relaxed), 1);
/// # Ok::<(), shm_segment::CreateError>(())
/// ```
#[derive(Debug)]
pub struct Segment {
    fd: OwnedFd,
    mapping: Mapping,
    seen_generation: AtomicU64,
    remap: Mutex<()>,
    name: Option<SegmentName>,
    creator: bool,
    unlink_on_drop: AtomicBool,
    attach_slot: Option<usize>,
    ino: u64,
    dev: u64,
    /// The process that made this handle: a forked child's copy must not release the
    /// parent's attach slot or remove the parent's name.
    owner_pid: u32,
}

// SAFETY: the mapping is shared memory valid until drop and every access to it goes through
// raw pointers and atomics; the process-local fields are atomics, a Mutex, or immutable.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` allows only atomic or mutex-guarded mutation.
unsafe impl Sync for Segment {}

impl Segment {
    fn header(&self) -> *mut Header {
        self.mapping.base.as_ptr().cast()
    }

    fn fields(&self) -> Fields<'_> {
        let h = self.header();
        // SAFETY: the header lies in the mapping, which lives as long as `self`; the fields
        // are naturally aligned (checked in `layout`) and only ever accessed atomically.
        unsafe {
            Fields {
                magic: AtomicU64::from_ptr(addr_of_mut!((*h).magic)),
                total_len: AtomicU64::from_ptr(addr_of_mut!((*h).total_len)),
                init_state: AtomicU32::from_ptr(addr_of_mut!((*h).init_state)),
                generation: AtomicU64::from_ptr(addr_of_mut!((*h).generation)),
                attach_overflow: AtomicU32::from_ptr(addr_of_mut!((*h).attach_overflow)),
            }
        }
    }

    fn slot(&self, i: usize) -> (&AtomicU64, &AtomicU64) {
        assert!(i < ATTACH_SLOTS);
        let h = self.header();
        // SAFETY: `i` is in bounds; the slot lies in the mapped header and is only ever
        // accessed atomically; its fields are naturally aligned (layout asserts).
        unsafe {
            let slot = addr_of_mut!((*h).attach[i]);
            (
                AtomicU64::from_ptr(addr_of_mut!((*slot).ident)),
                AtomicU64::from_ptr(addr_of_mut!((*slot).start_time)),
            )
        }
    }

    fn static_u32(&self, field: impl FnOnce(*mut Header) -> *mut u32) -> u32 {
        // SAFETY: the field lies in the mapped header and is aligned; it was written before
        // `magic` was published and never changes, and we read it atomically in case a
        // faulty process writes it anyway.
        unsafe { AtomicU32::from_ptr(field(self.header())).load(Ordering::Relaxed) }
    }

    fn static_u64(&self, field: impl FnOnce(*mut Header) -> *mut u64) -> u64 {
        // SAFETY: as in `static_u32`.
        unsafe { AtomicU64::from_ptr(field(self.header())).load(Ordering::Relaxed) }
    }

    /// Records this process in the attach table; `None` if the table is full.
    fn attach(&self) -> Option<usize> {
        let me = ProcessId::current();
        let ident = me.packed();
        for sweep in [false, true] {
            if sweep {
                self.sweep_dead_attachments();
            }
            for i in 0..ATTACH_SLOTS {
                let (slot, start) = self.slot(i);
                if slot
                    .compare_exchange(0, ident, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    start.store(me.start_time, Ordering::Release);
                    return Some(i);
                }
            }
        }
        self.fields().attach_overflow.store(1, Ordering::Release);
        None
    }

    /// Frees the slots of dead processes. Each slot is one word, so a slot freed and
    /// re-taken meanwhile holds another identity and the exchange fails.
    fn sweep_dead_attachments(&self) {
        for i in 0..ATTACH_SLOTS {
            let (slot, _) = self.slot(i);
            let ident = slot.load(Ordering::Acquire);
            if ident != 0 && !ProcessId::packed_is_alive(ident) {
                let _ = slot.compare_exchange(ident, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }

    /// The processes recorded as having this segment open (dead ones included until
    /// someone sweeps them), and whether the table overflowed.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// let other = SegmentOptions::new(ObjectKind::RAW).open_fd(seg.fd().try_clone_to_owned()?)?;
    /// assert_eq!(seg.attached().len(), 2);
    /// drop(other);
    /// assert_eq!(seg.attached(), vec![shm_segment::ProcessId::current()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attached(&self) -> Vec<ProcessId> {
        (0..ATTACH_SLOTS)
            .filter_map(|i| {
                let (slot, start) = self.slot(i);
                let ident = slot.load(Ordering::Acquire);
                (ident != 0).then(|| ProcessId {
                    pid: (ident >> 32) as u32,
                    start_time: start.load(Ordering::Acquire),
                })
            })
            .collect()
    }

    /// The segment's name, or `None` for an anonymous segment.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// # let name = format!("doc-name-{}", std::process::id());
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create(&name)?;
    /// assert_eq!(seg.name().unwrap().as_str(), name);
    /// assert!(SegmentOptions::new(ObjectKind::RAW).create_anonymous()?.name().is_none());
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn name(&self) -> Option<&SegmentName> {
        self.name.as_ref()
    }

    /// Whether this handle created the segment.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// assert!(seg.is_creator());
    /// let opened = SegmentOptions::new(ObjectKind::RAW).open_fd(seg.fd().try_clone_to_owned()?)?;
    /// assert!(!opened.is_creator());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_creator(&self) -> bool {
        self.creator
    }

    /// The object kind from the header.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::BARRIER).create_anonymous()?;
    /// assert_eq!(seg.kind(), ObjectKind::BARRIER);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn kind(&self) -> ObjectKind {
        ObjectKind::new(self.static_u32(|h| unsafe_field!(h, kind)))
    }

    /// The element type fingerprint from the header.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions, TypeFingerprint};
    /// let seg = SegmentOptions::new(ObjectKind::VALUE).fingerprint(TypeFingerprint::of::<f64>()).create_anonymous()?;
    /// assert_eq!(seg.fingerprint(), TypeFingerprint::of::<f64>());
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn fingerprint(&self) -> TypeFingerprint {
        TypeFingerprint {
            size: self.static_u32(|h| unsafe_field!(h, type_size)),
            align: self.static_u32(|h| unsafe_field!(h, type_align)),
            name_hash: self.static_u64(|h| unsafe_field!(h, type_hash)),
        }
    }

    /// The process that created the segment.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// assert_eq!(seg.creator(), shm_segment::ProcessId::current());
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn creator(&self) -> ProcessId {
        ProcessId {
            pid: self.static_u32(|h| unsafe_field!(h, creator_pid)),
            start_time: self.static_u64(|h| unsafe_field!(h, creator_start)),
        }
    }

    /// The growth generation: how many times the segment has grown.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).max_len(1 << 20).create_anonymous()?;
    /// assert_eq!(seg.generation(), 0);
    /// seg.grow(1 << 20)?;
    /// assert_eq!(seg.generation(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.fields().generation.load(Ordering::Acquire)
    }

    /// Start of the object's data area (aligned to 128 bytes), valid for
    /// [`data_len`](Self::data_len) bytes for as long as this handle lives.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(16).create_anonymous()?;
    /// assert_eq!(seg.data().as_ptr() as usize % 128, 0);
    /// // SAFETY: 16 data bytes, used by nobody else.
    /// unsafe { seg.data().as_ptr().add(15).write(1) };
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn data(&self) -> NonNull<u8> {
        // SAFETY: HEADER_LEN < mapped length, so the result is inside the mapping.
        unsafe { self.mapping.base.add(HEADER_LEN) }
    }

    /// Data bytes this handle has mapped. Another process may have grown the segment
    /// since; [`refresh`](Self::refresh) maps the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(1).create_anonymous()?;
    /// assert!(seg.data_len() >= 1); // rounded up to whole pages
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn data_len(&self) -> usize {
        self.mapping.mapped.load(Ordering::Acquire) - HEADER_LEN
    }

    /// The most data bytes the segment can grow to.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(1).max_len(1 << 20).create_anonymous()?;
    /// assert!(seg.max_data_len() >= 1 << 20);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn max_data_len(&self) -> usize {
        self.mapping.reserved - HEADER_LEN
    }

    /// Maps whatever another process added by [`grow`](Self::grow) since this handle last
    /// looked. Returns whether anything changed. Cheap when nothing did (one atomic load):
    /// call it before each access to a growable object.
    ///
    /// # Errors
    ///
    /// [`GrowError::Corrupt`] if the header claims more than the file or the reservation
    /// holds, [`GrowError::Io`] if mapping fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let a = SegmentOptions::new(ObjectKind::RAW).len(4096).max_len(65536).create_anonymous()?;
    /// let b = SegmentOptions::new(ObjectKind::RAW).open_fd(a.fd().try_clone_to_owned()?)?;
    /// a.grow(65536)?;
    /// assert!(b.data_len() < 65536);
    /// assert!(b.refresh()?);
    /// assert!(b.data_len() >= 65536);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refresh(&self) -> Result<bool, GrowError> {
        let fields = self.fields();
        // [grown] Acquire: pairs with the Release increment in `grow`.
        let generation = fields.generation.load(Ordering::Acquire);
        if generation == self.seen_generation.load(Ordering::Acquire) {
            return Ok(false);
        }
        let _guard = self.remap.lock();
        // Read after the generation (Acquire above), so at least as new as it.
        let total = fields.total_len.load(Ordering::Acquire);
        let mapped = self.mapping.mapped.load(Ordering::Acquire);
        let grew = total > mapped as u64;
        if grew {
            if total > self.mapping.reserved as u64
                || !total.is_multiple_of(sys::page_size() as u64)
            {
                return Err(GrowError::Corrupt {
                    reason: format!(
                        "header length {total} exceeds the reserved {}",
                        self.mapping.reserved
                    ),
                });
            }
            let file_len = sys::file_len(self.fd.as_fd()).map_err(|source| GrowError::Io {
                op: "fstat",
                source,
            })?;
            if file_len < total {
                return Err(GrowError::Corrupt {
                    reason: format!("header length {total} exceeds the file's {file_len} bytes"),
                });
            }
            let total = total as usize;
            // SAFETY: `mapped..total` lies inside our reservation (checked above), is not yet
            // mapped, so nothing references it, and both ends are page multiples.
            unsafe {
                sys::map_fixed(
                    self.mapping.base.add(mapped),
                    total - mapped,
                    self.fd.as_fd(),
                    mapped as u64,
                )
                .map_err(|source| GrowError::Io { op: "mmap", source })?;
            }
            self.mapping.mapped.store(total, Ordering::Release);
        }
        self.seen_generation.store(generation, Ordering::Release);
        Ok(grew)
    }

    /// Grows the data area to at least `new_data_len` bytes (rounded up to whole pages),
    /// reserving the memory first so that a full `/dev/shm` is an error now, never a SIGBUS
    /// later; then bumps the generation so other handles map it on their next
    /// [`refresh`](Self::refresh). Never shrinks.
    ///
    /// Growing is safe to race with other growers (lengths only increase), but the object
    /// stored in the segment decides who may grow it: callers hold the object's lock.
    ///
    /// # Errors
    ///
    /// [`GrowError::TooLarge`] beyond [`max_data_len`](Self::max_data_len),
    /// [`GrowError::NoSpace`] when memory is short, [`GrowError::Io`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{GrowError, ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).len(10).max_len(100_000).create_anonymous()?;
    /// seg.grow(50_000)?;
    /// assert!(seg.data_len() >= 50_000);
    /// assert!(matches!(seg.grow(1 << 30), Err(GrowError::TooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn grow(&self, new_data_len: usize) -> Result<(), GrowError> {
        let too_large = GrowError::TooLarge {
            requested: new_data_len as u64,
            max: self.max_data_len() as u64,
        };
        let total = HEADER_LEN
            .checked_add(new_data_len)
            .and_then(|n| n.checked_next_multiple_of(sys::page_size()))
            .ok_or(too_large)?;
        if total > self.mapping.reserved {
            return Err(GrowError::TooLarge {
                requested: new_data_len as u64,
                max: self.max_data_len() as u64,
            });
        }
        let fields = self.fields();
        if total as u64 > fields.total_len.load(Ordering::Acquire) {
            sys::allocate(self.fd.as_fd(), total as u64).map_err(|e| {
                if sys::is_no_space(&e) {
                    GrowError::NoSpace {
                        requested: total as u64,
                    }
                } else {
                    GrowError::Io {
                        op: "fallocate",
                        source: e,
                    }
                }
            })?;
            fields.total_len.fetch_max(total as u64, Ordering::AcqRel);
            // [grown] Release: pairs with the Acquire load in `refresh`.
            fields.generation.fetch_add(1, Ordering::Release);
        }
        self.refresh().map(drop)
    }

    /// Keeps a named segment in `/dev/shm` after this (creating) handle is dropped, for
    /// other processes to open later. Remove it with [`Segment::unlink`] or `multiproc rm`.
    /// Has no effect on anonymous segments.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// # let name = format!("doc-persist-{}", std::process::id());
    /// SegmentOptions::new(ObjectKind::RAW).create(&name)?.persist();
    /// assert!(SegmentOptions::new(ObjectKind::RAW).open(&name).is_ok(), "still there");
    /// shm_segment::Segment::unlink(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn persist(&self) {
        self.unlink_on_drop.store(false, Ordering::Relaxed);
    }

    /// The segment's file descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// use std::os::fd::AsRawFd;
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// assert!(seg.fd().as_raw_fd() > 2);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Inode of the backing file (identifies the segment across descriptors).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let a = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// let b = SegmentOptions::new(ObjectKind::RAW).open_fd(a.fd().try_clone_to_owned()?)?;
    /// assert_eq!(a.inode(), b.inode());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inode(&self) -> u64 {
        self.ino
    }

    /// Identity of the backing file, `(device, inode)`: equal for every handle of one
    /// segment in any process, and different for a segment created under a name after the
    /// old one was removed. Unique among files that are open, so it tells whether two
    /// handles share a segment (the file stays open as long as a handle does).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, Segment, SegmentOptions};
    /// # let name = format!("doc-identity-{}", std::process::id());
    /// let opts = SegmentOptions::new(ObjectKind::RAW);
    /// let a = opts.create(&name)?;
    /// let b = opts.open(&name)?;
    /// assert_eq!(a.identity(), b.identity());
    /// assert_eq!(a.identity().1, a.inode());
    /// Segment::unlink(&name)?;
    /// let c = opts.create(&name)?; // the same name, a new file
    /// assert_ne!(c.identity(), a.identity());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The identity (as [`identity`](Self::identity)) of the file that has the name `name`
    /// right now, found without opening or mapping it; `None` if the name is invalid or
    /// names nothing. Compare it with a handle's to learn whether that handle is the
    /// segment the name names.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, Segment, SegmentOptions};
    /// # let name = format!("doc-identity-of-{}", std::process::id());
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create(&name)?;
    /// assert_eq!(Segment::identity_of(&name), Some(seg.identity()));
    /// drop(seg); // removes the name
    /// assert_eq!(Segment::identity_of(&name), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn identity_of(name: &str) -> Option<(u64, u64)> {
        let name = SegmentName::new(name).ok()?;
        sys::shm_path_identity(&name.file_name()).ok()
    }

    /// Removes the named segment `name` from `/dev/shm`. Processes that have it open keep
    /// using it; new `open`s fail with [`OpenError::NotFound`].
    ///
    /// # Errors
    ///
    /// [`UnlinkError::NotFound`], [`UnlinkError::PermissionDenied`],
    /// [`UnlinkError::InvalidName`], [`UnlinkError::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, Segment, SegmentOptions, UnlinkError};
    /// # let name = format!("doc-unlink-{}", std::process::id());
    /// SegmentOptions::new(ObjectKind::RAW).create(&name)?.persist();
    /// Segment::unlink(&name)?;
    /// assert!(matches!(Segment::unlink(&name), Err(UnlinkError::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unlink(name: &str) -> Result<(), UnlinkError> {
        let name = SegmentName::new(name)?;
        sys::shm_unlink(&name.os_name()).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => UnlinkError::NotFound {
                name: name.to_string(),
            },
            io::ErrorKind::PermissionDenied => UnlinkError::PermissionDenied {
                name: name.to_string(),
            },
            _ => UnlinkError::Io {
                name: name.to_string(),
                source: e,
            },
        })
    }

    /// Whether the attach table overflowed (more than 56 handles at once), in which case
    /// it does not list every process that has the segment open.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// assert!(!seg.attach_overflowed());
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub fn attach_overflowed(&self) -> bool {
        self.fields().attach_overflow.load(Ordering::Acquire) != 0
    }

    pub(crate) fn device(&self) -> u64 {
        self.dev
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if sys::getpid() != self.owner_pid {
            // A forked child's copy of its parent's handle: the slot and the name are the
            // parent's. Only the mapping (this process's own) goes away.
            return;
        }
        if let Some(i) = self.attach_slot {
            let (slot, _) = self.slot(i);
            let mine = ProcessId::current().packed();
            let _ = slot.compare_exchange(mine, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
        if self.creator
            && self.unlink_on_drop.load(Ordering::Relaxed)
            && let Some(name) = &self.name
            // Remove the name only if it still refers to our file, not to a segment
            // someone created under the same name after removing ours.
            && sys::shm_path_identity(&name.file_name()).ok() == Some((self.dev, self.ino))
        {
            let _ = sys::shm_unlink(&name.os_name());
        }
    }
}
