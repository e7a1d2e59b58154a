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

/// Why [`task_done`](crate::JoinableQueue::task_done) failed.
///
/// # Examples
///
/// ```
/// use shm_queue::{JoinableQueue, TaskDoneError};
/// let q = JoinableQueue::<u8>::new()?;
/// assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaskDoneError {
    /// No task was unfinished: `task_done` was called more times than values were put.
    #[error("task_done() called too many times")]
    TooManyCalls,
}

/// Why [`join_timeout`](crate::JoinableQueue::join_timeout) failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shm_queue::{JoinableQueue, JoinTimeoutError};
/// let q = JoinableQueue::<u8>::new()?;
/// q.put(1)?;
/// assert_eq!(q.join_timeout(Duration::ZERO), Err(JoinTimeoutError::Timeout { unfinished: 1 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinTimeoutError {
    /// Tasks were still unfinished when the time-out passed.
    #[error("timed out with {unfinished} unfinished tasks")]
    Timeout {
        /// Unfinished tasks at the time-out.
        unfinished: u64,
    },
    /// As [`JoinError::Abandoned`].
    #[error("{tasks} tasks were abandoned by consumer processes that died")]
    Abandoned {
        /// Tasks written off during the call.
        tasks: u64,
    },
}

/// Why [`join`](crate::JoinableQueue::join) returned without every task marked done.
///
/// # Examples
///
/// ```
/// use shm_queue::{JoinError, JoinableQueue};
/// let q = JoinableQueue::<u8>::new()?;
/// assert_eq!(q.join(), Ok(())); // nothing to wait for
/// let err = JoinError::Abandoned { tasks: 2 };
/// assert!(err.to_string().contains("2 tasks"));
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The count of unfinished tasks reached 0, but `tasks` of them were written off
    /// during the call because the consumer processes that got them died before their
    /// `task_done`: their work may not have been done.
    #[error("{tasks} tasks were abandoned by consumer processes that died")]
    Abandoned {
        /// Tasks written off during the call.
        tasks: u64,
    },
}

/// Why [`Connection::send`](crate::Connection::send) or
/// [`send_bytes`](crate::Connection::send_bytes) failed. The value was only borrowed, so
/// the caller still has it; nothing was sent.
///
/// # Examples
///
/// ```
/// use shm_queue::{Pipe, SendError};
/// let (mut rx, mut tx) = Pipe::new()?;
/// rx.close();
/// assert_eq!(tx.send(&1_u32), Err(SendError::Closed));
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// This end or the peer's was closed.
    #[error("the connection is closed")]
    Closed,
    /// The process holding the other end died.
    #[error("the peer process died")]
    PeerDied,
    /// This is the receiving end of a one-way pipe.
    #[error("the connection is read-only")]
    ReadOnly,
    /// This end was sent to another process, which holds it now.
    #[error("the connection was moved to another process")]
    Moved,
    /// The encoded message is larger than the pipe's maximum message size.
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The pipe's maximum.
        max: usize,
    },
    /// The value failed to serialise.
    #[error("cannot encode the message: {0}")]
    Encode(CodecError),
}

/// Why [`Connection::recv`](crate::Connection::recv) or
/// [`recv_bytes`](crate::Connection::recv_bytes) failed.
///
/// # Examples
///
/// ```
/// use shm_queue::{Pipe, RecvError};
/// let (mut rx, mut tx) = Pipe::new()?;
/// tx.send(&5_u8).unwrap();
/// tx.close();
/// assert_eq!(rx.recv::<u8>(), Ok(5)); // what was sent before the close
/// assert_eq!(rx.recv::<u8>(), Err(RecvError::Closed));
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// This end or the peer's was closed, and everything sent before was received.
    #[error("the connection is closed")]
    Closed,
    /// The process holding the other end died, and everything it sent was received.
    #[error("the peer process died")]
    PeerDied,
    /// This is the sending end of a one-way pipe.
    #[error("the connection is write-only")]
    WriteOnly,
    /// This end was sent to another process, which holds it now.
    #[error("the connection was moved to another process")]
    Moved,
    /// The message could not be decoded (it was removed; the connection stays usable).
    #[error("cannot decode the message: {0}")]
    Decode(CodecError),
}

/// Why [`Connection::recv_timeout`](crate::Connection::recv_timeout) failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shm_queue::{Pipe, RecvTimeoutError};
/// let (mut rx, _tx) = Pipe::new()?;
/// assert_eq!(rx.recv_timeout::<u8>(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the time-out.
    #[error("timed out waiting for a message")]
    Timeout,
    /// As [`RecvError::Closed`].
    #[error("the connection is closed")]
    Closed,
    /// As [`RecvError::PeerDied`].
    #[error("the peer process died")]
    PeerDied,
    /// As [`RecvError::WriteOnly`].
    #[error("the connection is write-only")]
    WriteOnly,
    /// As [`RecvError::Moved`].
    #[error("the connection was moved to another process")]
    Moved,
    /// As [`RecvError::Decode`].
    #[error("cannot decode the message: {0}")]
    Decode(CodecError),
}

macro_rules! put_many_error {
    (
        $(#[$doc:meta])*
        $name:ident { $($(#[$vdoc:meta])* $variant:ident => $msg:literal,)* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, thiserror::Error)]
        pub enum $name<T> {
            $(
                $(#[$vdoc])*
                #[error($msg)]
                $variant {
                    /// How many values of the batch were enqueued (its first `put`).
                    put: usize,
                    /// The values that were not enqueued, in order.
                    rest: Vec<T>,
                },
            )*
            /// The encoded value `rest[index]` is larger than the maximum message size.
            /// Checked before anything is written: `put` is 0 and `rest` is the whole batch.
            #[error("message {index} of the batch has {size} bytes, above the maximum of {max}")]
            TooLarge {
                /// Always 0.
                put: usize,
                /// The whole batch.
                rest: Vec<T>,
                /// Which value.
                index: usize,
                /// Its encoded size.
                size: usize,
                /// The queue's maximum.
                max: usize,
            },
            /// The value `rest[index]` failed to serialise. Sizes are computed before
            /// anything is written, so this is normally the whole batch (`put` 0); a
            /// value whose second serialisation fails ends the batch there (`index` 0).
            #[error("cannot encode message {index} of the rest of the batch: {error}")]
            Encode {
                /// How many values were enqueued.
                put: usize,
                /// The values not enqueued.
                rest: Vec<T>,
                /// Which value failed.
                index: usize,
                /// The cause.
                error: CodecError,
            },
        }

        impl<T> $name<T> {
            /// The values that were not enqueued, in order.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let err = shm_queue::", stringify!($name), "::Closed { put: 1, rest: vec![2, 3] };")]
            /// assert_eq!(err.into_rest(), [2, 3]);
            /// ```
            pub fn into_rest(self) -> Vec<T> {
                match self {
                    $($name::$variant { rest, .. })|* => rest,
                    $name::TooLarge { rest, .. } | $name::Encode { rest, .. } => rest,
                }
            }

            /// How many values of the batch were enqueued.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let err = shm_queue::", stringify!($name), "::Closed { put: 1, rest: vec![2, 3] };")]
            /// assert_eq!(err.put(), 1);
            /// ```
            pub fn put(&self) -> usize {
                match self {
                    $($name::$variant { put, .. })|* => *put,
                    $name::TooLarge { put, .. } | $name::Encode { put, .. } => *put,
                }
            }
        }
    };
}

put_many_error! {
    /// Why [`put_many`](crate::Queue::put_many) failed: the batch's first `put` values
    /// were enqueued, and the rest come back.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{PutManyError, Queue};
    /// let q = Queue::<u32>::new()?;
    /// q.close();
    /// let err = q.put_many(vec![1, 2]).unwrap_err();
    /// assert!(matches!(err, PutManyError::Closed { put: 0, .. }));
    /// assert_eq!(err.into_rest(), [1, 2]);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    PutManyError {
        /// The queue was closed.
        Closed => "the queue is closed after {put} values of the batch",
    }
}

put_many_error! {
    /// Why [`try_put_many`](crate::Queue::try_put_many) failed: the batch's first `put`
    /// values were enqueued, and the rest come back.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{Queue, TryPutManyError};
    /// let q = Queue::<u32>::builder().capacity(2).create_anonymous()?;
    /// let err = q.try_put_many(vec![1, 2, 3]).unwrap_err();
    /// assert!(matches!(err, TryPutManyError::Full { put: 2, .. }));
    /// assert_eq!(err.into_rest(), [3]);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    TryPutManyError {
        /// The queue was full after `put` values.
        Full => "the queue is full after {put} values of the batch",
        /// The queue was closed.
        Closed => "the queue is closed after {put} values of the batch",
    }
}

put_many_error! {
    /// Why [`put_many_timeout`](crate::Queue::put_many_timeout) failed: the batch's first
    /// `put` values were enqueued, and the rest come back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shm_queue::{PutManyTimeoutError, Queue};
    /// let q = Queue::<u32>::builder().capacity(1).create_anonymous()?;
    /// let err = q.put_many_timeout(vec![1, 2], Duration::from_millis(1)).unwrap_err();
    /// assert!(matches!(err, PutManyTimeoutError::Timeout { put: 1, .. }));
    /// assert_eq!(err.into_rest(), [2]);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    PutManyTimeoutError {
        /// The queue stayed full until the time-out.
        Timeout => "timed out after {put} values of the batch",
        /// The queue was closed.
        Closed => "the queue is closed after {put} values of the batch",
    }
}

/// Why a batch put stopped (internal; becomes one of the `*PutManyError`s).
pub(crate) enum BatchStop {
    Full,
    Closed,
    TooLarge {
        index: usize,
        size: usize,
        max: usize,
    },
    Encode {
        index: usize,
        error: CodecError,
    },
}

/// A batch put that stopped after `put` values; `rest` were not enqueued.
pub(crate) struct Partial<T> {
    pub(crate) put: usize,
    pub(crate) rest: Vec<T>,
    pub(crate) stop: BatchStop,
}
