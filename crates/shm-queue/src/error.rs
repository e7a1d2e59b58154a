//! Errors, one type per operation; every put error hands the undelivered value back.

use std::fmt;

use shm_segment::ProcessId;

/// A message could not be encoded or decoded (postcard).
///
/// # Examples
///
/// ```
/// let err = shm_queue::CodecError::corrupt("bad length");
/// assert!(err.to_string().contains("bad length"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CodecError {
    message: String,
}

impl CodecError {
    pub(crate) fn postcard(error: &postcard::Error) -> Self {
        CodecError {
            message: error.to_string(),
        }
    }

    /// An error for bytes in the queue that are not a valid record.
    pub fn corrupt(reason: &str) -> Self {
        CodecError {
            message: format!("corrupt record: {reason}"),
        }
    }
}

macro_rules! value_error_common {
    ($name:ident { $($plain:ident),* }) => {
        impl<T> $name<T> {
            /// The value that was not delivered.
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$plain(value))|* => value,
                    $name::TooLarge { value, .. } | $name::Encode { value, .. } => value,
                }
            }
        }
    };
}

/// Why [`put`](crate::Queue::put) failed. The value comes back in every case.
///
/// # Examples
///
/// ```
/// use shm_queue::{PutError, Queue};
/// let q = Queue::<u32>::new()?;
/// q.close();
/// let err = q.put(7).unwrap_err();
/// assert!(matches!(err, PutError::Closed(7)));
/// assert_eq!(err.into_inner(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum PutError<T> {
    /// The queue was closed.
    #[error("the queue is closed")]
    Closed(T),
    /// The encoded message is larger than the queue's maximum message size.
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The value.
        value: T,
        /// Its encoded size.
        size: usize,
        /// The queue's maximum.
        max: usize,
    },
    /// The value failed to serialise; nothing was enqueued.
    #[error("cannot encode the message: {error}")]
    Encode {
        /// The value.
        value: T,
        /// The cause.
        error: CodecError,
    },
}
value_error_common!(PutError { Closed });

/// Why [`try_put`](crate::Queue::try_put) failed. The value comes back in every case.
///
/// # Examples
///
/// ```
/// use shm_queue::{Queue, TryPutError};
/// let q = Queue::<u32>::builder().capacity(1).create_anonymous()?;
/// q.try_put(1)?;
/// assert!(matches!(q.try_put(2), Err(TryPutError::Full(2))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum TryPutError<T> {
    /// The queue is full.
    #[error("the queue is full")]
    Full(T),
    /// The queue was closed.
    #[error("the queue is closed")]
    Closed(T),
    /// The encoded message is larger than the queue's maximum message size.
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The value.
        value: T,
        /// Its encoded size.
        size: usize,
        /// The queue's maximum.
        max: usize,
    },
    /// The value failed to serialise; nothing was enqueued.
    #[error("cannot encode the message: {error}")]
    Encode {
        /// The value.
        value: T,
        /// The cause.
        error: CodecError,
    },
}
value_error_common!(TryPutError { Full, Closed });

/// Why [`put_timeout`](crate::Queue::put_timeout) failed. The value comes back in every
/// case.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shm_queue::{PutTimeoutError, Queue};
/// let q = Queue::<u32>::builder().capacity(1).create_anonymous()?;
/// q.put(1)?;
/// let err = q.put_timeout(2, Duration::from_millis(1)).unwrap_err();
/// assert!(matches!(err, PutTimeoutError::Timeout(2)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full until the time-out.
    #[error("timed out waiting for room in the queue")]
    Timeout(T),
    /// The queue was closed.
    #[error("the queue is closed")]
    Closed(T),
    /// The encoded message is larger than the queue's maximum message size.
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The value.
        value: T,
        /// Its encoded size.
        size: usize,
        /// The queue's maximum.
        max: usize,
    },
    /// The value failed to serialise; nothing was enqueued.
    #[error("cannot encode the message: {error}")]
    Encode {
        /// The value.
        value: T,
        /// The cause.
        error: CodecError,
    },
}
value_error_common!(PutTimeoutError { Timeout, Closed });

/// Why [`get`](crate::Queue::get) failed.
///
/// # Examples
///
/// ```
/// use shm_queue::{GetError, Queue};
/// let q = Queue::<u32>::new()?;
/// q.put(1)?;
/// q.close();
/// assert_eq!(q.get()?, 1); // drains what is left
/// assert_eq!(q.get(), Err(GetError::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// The queue is closed and empty.
    #[error("the queue is closed")]
    Closed,
    /// The message could not be decoded; it was removed and the queue stays usable.
    #[error("cannot decode the message: {0}")]
    Decode(CodecError),
}

/// Why [`try_get`](crate::Queue::try_get) failed.
///
/// # Examples
///
/// ```
/// use shm_queue::{Queue, TryGetError};
/// let q = Queue::<u32>::new()?;
/// assert_eq!(q.try_get(), Err(TryGetError::Empty));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TryGetError {
    /// No message is ready.
    #[error("the queue is empty")]
    Empty,
    /// The queue is closed and empty.
    #[error("the queue is closed")]
    Closed,
    /// The message could not be decoded; it was removed and the queue stays usable.
    #[error("cannot decode the message: {0}")]
    Decode(CodecError),
}

/// Why [`get_timeout`](crate::Queue::get_timeout) failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shm_queue::{GetTimeoutError, Queue};
/// let q = Queue::<u32>::new()?;
/// assert_eq!(q.get_timeout(Duration::from_millis(1)), Err(GetTimeoutError::Timeout));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetTimeoutError {
    /// No message arrived before the time-out.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The queue is closed and empty.
    #[error("the queue is closed")]
    Closed,
    /// The message could not be decoded; it was removed and the queue stays usable.
    #[error("cannot decode the message: {0}")]
    Decode(CodecError),
}

/// Why a queue could not be created.
///
/// # Examples
///
/// ```
/// use shm_queue::{CreateError, Queue};
/// let err = Queue::<u8>::builder().capacity(0).create_anonymous().unwrap_err();
/// assert!(matches!(err, CreateError::InvalidConfig { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The options make no sense (a capacity of 0, sizes that overflow).
    #[error("invalid queue configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The segment could not be created.
    #[error(transparent)]
    Segment(#[from] shm_segment::CreateError),
}

/// Why a queue could not be opened.
///
/// # Examples
///
/// ```
/// use shm_queue::{OpenError, Queue};
/// let err = Queue::<u8>::open("no-such-queue-for-docs").unwrap_err();
/// assert!(matches!(err, OpenError::Segment(shm_segment::OpenError::NotFound { .. })));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The segment could not be opened or is not a queue of this type (the segment layer's
    /// `NotFound`, `KindMismatch`, `TypeMismatch`, `VersionMismatch`, ...).
    #[error(transparent)]
    Segment(#[from] shm_segment::OpenError),
    /// The queue's own header is inconsistent.
    #[error("corrupt queue header: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
}

/// Why an [`SpscQueue`](crate::SpscQueue) half could not be attached.
///
/// # Examples
///
/// ```
/// use shm_queue::{AttachError, SpscQueue};
/// let q = SpscQueue::<u32>::new()?;
/// let _producer = q.producer()?;
/// assert!(matches!(q.producer(), Err(AttachError::AlreadyAttached { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// A live process holds that half.
    #[error("the {side} half is attached by {owner}")]
    AlreadyAttached {
        /// `"producer"` or `"consumer"`.
        side: Side,
        /// The process holding it.
        owner: ProcessId,
    },
}

/// One half of an [`SpscQueue`](crate::SpscQueue).
///
/// # Examples
///
/// ```
/// assert_eq!(shm_queue::Side::Producer.to_string(), "producer");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The [`Producer`](crate::Producer).
    Producer,
    /// The [`Consumer`](crate::Consumer).
    Consumer,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Producer => "producer",
            Side::Consumer => "consumer",
        })
    }
}
