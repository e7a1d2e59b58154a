//! Errors: [`Error`] for operations on containers, [`ContainerError`] for opening one.

use shm_segment::GrowError;

/// Why an operation on a shared container failed. The container is unchanged.
///
/// # Examples
///
/// ```
/// use shm_manager::{Error, Manager};
/// let manager = Manager::builder().max_bytes(64 * 1024).create_anonymous()?;
/// let list = manager.list::<Vec<u8>>("blobs")?;
/// let err = list.push(&vec![0u8; 1 << 20]).unwrap_err();
/// assert!(matches!(err, Error::CapacityExceeded { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The manager would need more than its cap ([`ManagerBuilder::max_bytes`](crate::ManagerBuilder::max_bytes)).
    #[error(
        "the manager's shared memory would exceed its cap: {requested} bytes needed, at most \
         {limit} allowed; remove entries or create the manager with a larger max_bytes"
    )]
    CapacityExceeded {
        /// Data bytes the segment would need.
        requested: u64,
        /// The cap.
        limit: u64,
    },
    /// The system has no memory left for the segment to grow (`/dev/shm` or the memory
    /// limit is full).
    #[error("no shared memory left to grow the manager to {requested} bytes")]
    NoSpace {
        /// Bytes asked for.
        requested: u64,
    },
    /// Growing or remapping the segment failed.
    #[error("growing or remapping the manager's segment failed: {0}")]
    Segment(#[source] GrowError),
    /// A key or value could not be serialised.
    #[error("cannot serialise the key or value with postcard: {0}")]
    Encode(#[source] postcard::Error),
    /// Stored bytes could not be deserialised as the requested type.
    #[error("cannot deserialise stored bytes as the requested type: {0}")]
    Decode(#[source] postcard::Error),
    /// A namespace attribute holds a value of another type.
    #[error("namespace attribute '{attribute}' holds a value of another type than {expected}")]
    TypeMismatch {
        /// The attribute.
        attribute: String,
        /// The type asked for.
        expected: &'static str,
    },
    /// A list index is out of range.
    #[error("list index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// The index.
        index: usize,
        /// The list's length.
        len: usize,
    },
    /// The calling thread holds the manager's lock already: from inside an `update_with`
    /// closure it wrote to the manager, or called something that takes the lock (opening a
    /// container by name, `containers`, `remove`, `verify`). Container reads there are
    /// fine: they take no lock.
    #[error(
        "the calling thread already holds this manager's lock (a container write or a \
         container's creation inside an update_with closure?)"
    )]
    WouldDeadlock,
    /// The proxy's container was removed by [`Manager::remove`](crate::Manager::remove).
    #[error(
        "the container was removed from its manager (Manager::remove); open it by name again \
         for a new one"
    )]
    Removed,
    /// The manager's lock is not recoverable (someone marked it inconsistent for good).
    #[error("the manager's lock is not recoverable; create a new manager")]
    NotRecoverable,
    /// The shared structures are damaged (overwritten by something else).
    #[error("the manager's shared memory is corrupt: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
}

impl From<GrowError> for Error {
    fn from(e: GrowError) -> Self {
        match e {
            GrowError::TooLarge { requested, max } => Error::CapacityExceeded {
                requested,
                limit: max,
            },
            GrowError::NoSpace { requested } => Error::NoSpace { requested },
            other => Error::Segment(other),
        }
    }
}

/// Why a container could not be opened or created.
///
/// # Examples
///
/// ```
/// use shm_manager::{ContainerError, Manager};
/// let manager = Manager::new()?;
/// manager.dict::<String, u64>("scores")?;
/// assert!(matches!(manager.dict::<String, i32>("scores"), Err(ContainerError::TypeMismatch { .. })));
/// assert!(matches!(manager.list::<u64>("scores"), Err(ContainerError::KindMismatch { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// A container of another kind has this name.
    #[error("container '{name}' is a {found}, not a {expected}")]
    KindMismatch {
        /// The container's name.
        name: String,
        /// The kind asked for.
        expected: &'static str,
        /// The kind it has.
        found: &'static str,
    },
    /// The container was created with other key or value types.
    #[error(
        "container '{name}' was created with other types than {expected}; open it with the \
         types it was created with"
    )]
    TypeMismatch {
        /// The container's name.
        name: String,
        /// The types asked for.
        expected: String,
    },
    /// The operation itself failed.
    #[error(transparent)]
    Op(#[from] Error),
}
