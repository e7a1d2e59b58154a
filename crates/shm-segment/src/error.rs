//! Errors, one enum per operation, each message saying what to do about it.

use std::io;
use std::time::Duration;

use crate::{ObjectKind, ProcessId, TypeFingerprint};

/// A segment name that cannot be used.
///
/// # Examples
///
/// ```
/// let err = shm_segment::SegmentName::new("a/b").unwrap_err();
/// assert!(err.to_string().contains("'/'"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid segment name {name:?}: {reason}")]
pub struct InvalidName {
    /// The rejected name.
    pub name: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Why a segment could not be created.
///
/// # Examples
///
/// ```
/// use shm_segment::{CreateError, ObjectKind, SegmentOptions};
/// # let name = format!("doc-create-error-{}", std::process::id());
/// let opts = SegmentOptions::new(ObjectKind::RAW);
/// let _first = opts.create(&name)?;
/// assert!(matches!(opts.create(&name), Err(CreateError::AlreadyExists { .. })));
/// # Ok::<(), CreateError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The name is not valid.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// A segment with this name exists already.
    #[error(
        "segment '{name}' already exists (/dev/shm/multiproc.{name}); open it instead, \
         or remove it with `multiproc rm {name}` if it is stale"
    )]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// The process may not create files in `/dev/shm`.
    #[error("permission denied creating segment '{name}' in /dev/shm")]
    PermissionDenied {
        /// The name.
        name: String,
    },
    /// The shared-memory filesystem has not enough free space for the segment.
    #[error(
        "no space for {requested} bytes of shared memory{}: /dev/shm (or the memory limit) \
         is full; free space, ask for less, or enlarge /dev/shm (Docker: --shm-size)",
        name.as_ref().map(|n| format!(" for segment '{n}'")).unwrap_or_default()
    )]
    NoSpace {
        /// The name, for a named segment.
        name: Option<String>,
        /// Bytes asked for, header included.
        requested: u64,
    },
    /// The requested length or maximum length is unusable.
    #[error("invalid segment size: {reason}")]
    InvalidSize {
        /// What is wrong with it.
        reason: String,
    },
    /// Another operating-system error.
    #[error("creating a shared-memory segment failed in {op}: {source}")]
    Io {
        /// The failing step.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why a segment could not be opened.
///
/// # Examples
///
/// ```
/// use shm_segment::{ObjectKind, OpenError, SegmentOptions};
/// let missing = SegmentOptions::new(ObjectKind::RAW).open("doc-surely-missing");
/// assert!(matches!(missing, Err(OpenError::NotFound { .. })));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is not valid.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No segment has this name.
    #[error(
        "no segment named '{name}' (/dev/shm/multiproc.{name}); check the name, or create it \
         first (`multiproc ls` lists the existing ones)"
    )]
    NotFound {
        /// The name.
        name: String,
    },
    /// The process may not open the segment (its owner and mode exclude this user).
    #[error(
        "permission denied opening segment '{name}': its owner or mode (0600 by default) does \
         not let this user open it"
    )]
    PermissionDenied {
        /// The name.
        name: String,
    },
    /// The file does not start with a multiproc header.
    #[error(
        "{segment} is not a multiproc segment (bad magic number); it was made by something else"
    )]
    NotASegment {
        /// Which segment.
        segment: String,
    },
    /// The segment was made by an incompatible version of multiproc.
    #[error(
        "{segment} has layout version {found}, this program understands version {expected}; \
         use the same multiproc version in every process"
    )]
    VersionMismatch {
        /// Which segment.
        segment: String,
        /// The version this code speaks.
        expected: u32,
        /// The version in the header.
        found: u32,
    },
    /// The segment holds another kind of object.
    #[error("{segment} holds a {found}, not a {expected}")]
    KindMismatch {
        /// Which segment.
        segment: String,
        /// The kind asked for.
        expected: ObjectKind,
        /// The kind in the header.
        found: ObjectKind,
    },
    /// The segment was created for another element type.
    #[error(
        "{segment} was created for another element type ({found}) than the one asked for \
         ({expected}); open it with the type it was created with"
    )]
    TypeMismatch {
        /// Which segment.
        segment: String,
        /// The fingerprint asked for.
        expected: TypeFingerprint,
        /// The fingerprint in the header.
        found: TypeFingerprint,
    },
    /// The file is shorter than a header.
    #[error(
        "{segment} is truncated: {len} bytes, a segment has at least {needed}; if its creator \
         is still starting, retry; otherwise remove it with `multiproc rm`"
    )]
    Truncated {
        /// Which segment.
        segment: String,
        /// The file's length.
        len: u64,
        /// The least a valid segment has.
        needed: u64,
    },
    /// The header's length does not match the file.
    #[error(
        "{segment} is damaged: its header says {header} bytes but the file has {file}; remove \
         it with `multiproc rm`"
    )]
    SizeMismatch {
        /// Which segment.
        segment: String,
        /// The length in the header.
        header: u64,
        /// The file's length.
        file: u64,
    },
    /// The segment is smaller than the data length asked for in the options.
    #[error(
        "{segment} has {len} data bytes, fewer than the {wanted} asked for; it was created \
         with other options"
    )]
    TooSmall {
        /// Which segment.
        segment: String,
        /// Its data length.
        len: u64,
        /// The length asked for.
        wanted: u64,
    },
    /// A header field holds an impossible value.
    #[error("{segment} has a corrupt header: {reason}")]
    Corrupt {
        /// Which segment.
        segment: String,
        /// What is wrong.
        reason: String,
    },
    /// The creator did not finish initialising the object in time.
    #[error(
        "{segment} was not initialised within {waited:?}{}",
        match creator {
            Some(c) if !creator_alive => format!(
                ": its creator ({c}) died before finishing; remove it with `multiproc gc`"),
            Some(c) => format!(": its creator ({c}) is still running; wait longer"),
            None => String::from(": its creator never wrote the header; remove it with `multiproc gc`"),
        }
    )]
    InitTimeout {
        /// Which segment.
        segment: String,
        /// How long the opener waited.
        waited: Duration,
        /// The creator, when the header names it.
        creator: Option<ProcessId>,
        /// Whether the creator was still alive when the opener gave up.
        creator_alive: bool,
    },
    /// The creator's initialisation failed and the segment is being removed.
    #[error("{segment} could not be initialised by its creator; create it again")]
    InitFailed {
        /// Which segment.
        segment: String,
    },
    /// An anonymous segment's handle arrived, but the process that sent it has exited, so
    /// its descriptor can no longer be reopened.
    #[error(
        "the anonymous segment sent by {holder} can no longer be opened: that process exited \
         or closed it; keep the sender alive until the receiver has opened the handle"
    )]
    HolderGone {
        /// The process that held the descriptor.
        holder: ProcessId,
    },
    /// Another operating-system error.
    #[error("opening {segment} failed in {op}: {source}")]
    Io {
        /// Which segment.
        segment: String,
        /// The failing step.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why `create_or_open` failed.
///
/// # Examples
///
/// ```
/// use shm_segment::{CreateError, CreateOrOpenError, ObjectKind, SegmentOptions};
/// let bad = SegmentOptions::new(ObjectKind::RAW).create_or_open("no spaces please");
/// assert!(matches!(bad, Err(CreateOrOpenError::Create(CreateError::InvalidName(_)))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateOrOpenError {
    /// Creating failed (for a reason other than the segment existing).
    #[error(transparent)]
    Create(#[from] CreateError),
    /// Opening the existing segment failed.
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// Why a segment could not grow.
///
/// # Examples
///
/// ```
/// use shm_segment::{GrowError, ObjectKind, SegmentOptions};
/// let seg = SegmentOptions::new(ObjectKind::RAW).len(16).create_anonymous()?;
/// assert!(matches!(seg.grow(1 << 20), Err(GrowError::TooLarge { .. })));
/// # Ok::<(), shm_segment::CreateError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrowError {
    /// The new length exceeds the maximum fixed at creation.
    #[error(
        "cannot grow the segment's data to {requested} bytes: its maximum, fixed at creation, \
         is {max}; create it with a larger `max_len`"
    )]
    TooLarge {
        /// Data bytes asked for.
        requested: u64,
        /// The largest data length possible.
        max: u64,
    },
    /// The shared-memory filesystem has not enough free space.
    #[error(
        "no space to grow the segment to {requested} bytes: /dev/shm (or the memory limit) is \
         full; free space or enlarge /dev/shm (Docker: --shm-size)"
    )]
    NoSpace {
        /// Total bytes asked for.
        requested: u64,
    },
    /// The header is damaged (its length exceeds the file or the maximum).
    #[error("cannot map the segment's new length: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
    /// Another operating-system error.
    #[error("growing the segment failed in {op}: {source}")]
    Io {
        /// The failing step.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why a named segment could not be removed.
///
/// # Examples
///
/// ```
/// use shm_segment::{Segment, UnlinkError};
/// assert!(matches!(Segment::unlink("doc-not-there"), Err(UnlinkError::NotFound { .. })));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnlinkError {
    /// The name is not valid.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No segment has this name.
    #[error("no segment named '{name}' to remove")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The process may not remove it.
    #[error("permission denied removing segment '{name}'")]
    PermissionDenied {
        /// The name.
        name: String,
    },
    /// Another operating-system error.
    #[error("removing segment '{name}' failed: {source}")]
    Io {
        /// The name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
