//! [`SimpleQueue`]: Python's `multiprocessing.SimpleQueue` (`put`, `get`, `empty`,
//! `close`) as a thin wrapper over [`Queue`] with a generous capacity.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shm_segment::ObjectKind;
use shm_segment::transfer::SegmentToken;

use crate::error::{CreateError, GetError, GetTimeoutError, OpenError, PutError, TryGetError};
use crate::queue::{DEFAULT_MAX_MESSAGE, Queue, QueueBuilder};

/// Default [`capacity`](SimpleQueueBuilder::capacity) of a [`SimpleQueue`] in messages.
///
/// With the default maximum message size of 1 KiB, a queue reserves about
/// 8 KiB × 1.06 = 8.5 MiB of shared memory (allocated at creation, so a full `/dev/shm` is an
/// error then, never later).
///
/// # Examples
///
/// ```
/// assert_eq!(shm_queue::DEFAULT_SIMPLE_CAPACITY, 8192);
/// ```
pub const DEFAULT_SIMPLE_CAPACITY: usize = 8 * 1024;

/// Options for a new [`SimpleQueue`]; made by [`SimpleQueue::builder`].
///
/// # Examples
///
/// ```
/// let q = shm_queue::SimpleQueue::<u32>::builder().capacity(4).create_anonymous()?;
/// assert_eq!(q.capacity(), 4);
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SimpleQueueBuilder<T> {
    inner: QueueBuilder<T>,
}

impl<T: Serialize + DeserializeOwned> SimpleQueueBuilder<T> {
    /// How many messages the queue holds before `put` waits (default
    /// [`DEFAULT_SIMPLE_CAPACITY`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::builder().capacity(2).create_anonymous()?;
    /// assert_eq!(q.capacity(), 2);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.inner = self.inner.capacity(capacity);
        self
    }

    /// The largest encoded message in bytes (default
    /// [`DEFAULT_MAX_MESSAGE`](crate::DEFAULT_MAX_MESSAGE)).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::builder().max_message_size(16).create_anonymous()?;
    /// assert_eq!(q.max_message_size(), 16);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.inner = self.inner.max_message_size(bytes);
        self
    }

    /// Creates an anonymous queue (see [`QueueBuilder::create_anonymous`]).
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create_anonymous`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::builder().capacity(1).create_anonymous()?;
    /// assert!(q.is_empty());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create_anonymous(&self) -> Result<SimpleQueue<T>, CreateError> {
        Ok(SimpleQueue {
            queue: self.inner.create_anonymous()?,
        })
    }

    /// Creates the named queue `name`; the name is removed when this handle is dropped.
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-simple-builder-{}", std::process::id());
    /// let q = shm_queue::SimpleQueue::<u8>::builder().capacity(1).create(&name)?;
    /// assert_eq!(q.name(), Some(name.as_str()));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<SimpleQueue<T>, CreateError> {
        Ok(SimpleQueue {
            queue: self.inner.create(name)?,
        })
    }
}

/// Python's `SimpleQueue`: `put`, `get`, [`is_empty`](Self::is_empty) (Python's `empty`)
/// and `close`, shared by any number of processes and threads.
///
/// It is a [`Queue`] under another segment kind (so a `Queue` cannot be opened as a
/// `SimpleQueue` or the other way round), with the same lock-free hot path and the same
/// [fault contract](crate#fault-contract).
///
/// # The bound
///
/// Python's `SimpleQueue` is a pipe: its `put` blocks once the pipe's 64 KiB buffer is full.
/// This one is bounded too, honestly sized: it holds [`DEFAULT_SIMPLE_CAPACITY`] messages
/// (or the [`capacity`](SimpleQueueBuilder::capacity) chosen at creation) of up to
/// [`max_message_size`](Self::max_message_size) bytes each, and `put` waits while it is
/// full. Memory is reserved at creation: `capacity × (max message + 32)` bytes, rounded
/// up to 64 per slot.
///
/// # Examples
///
/// ```
/// use shm_queue::SimpleQueue;
/// let q = SimpleQueue::<String>::new()?;
/// q.put("job".to_string())?;
/// assert!(!q.is_empty());
/// assert_eq!(q.get()?, "job");
/// q.close();
/// assert!(q.get().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SimpleQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("queue", &self.queue)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new anonymous queue of [`DEFAULT_SIMPLE_CAPACITY`] messages of up to
    /// [`DEFAULT_MAX_MESSAGE`] bytes.
    ///
    /// # Errors
    ///
    /// [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::new()?;
    /// assert_eq!(q.capacity(), shm_queue::DEFAULT_SIMPLE_CAPACITY);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn new() -> Result<Self, CreateError> {
        Self::builder().create_anonymous()
    }

    /// Options for a new queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::builder().capacity(3).create_anonymous()?;
    /// assert_eq!(q.capacity(), 3);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn builder() -> SimpleQueueBuilder<T> {
        SimpleQueueBuilder {
            inner: Queue::builder()
                .capacity(DEFAULT_SIMPLE_CAPACITY)
                .max_message_size(DEFAULT_MAX_MESSAGE)
                .wrapper(ObjectKind::SIMPLE_QUEUE, 0),
        }
    }

    /// Creates the named queue `name` with the default sizes; other processes
    /// [`open`](Self::open) it. The name is removed when this handle is dropped.
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-simple-create-{}", std::process::id());
    /// let q = shm_queue::SimpleQueue::<u8>::create(&name)?;
    /// assert_eq!(q.name(), Some(name.as_str()));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create(name: &str) -> Result<Self, CreateError> {
        Self::builder().create(name)
    }

    /// Opens the named queue `name`.
    ///
    /// # Errors
    ///
    /// As [`Queue::open`]; a plain `Queue` of that name is a `KindMismatch`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-simple-open-{}", std::process::id());
    /// use shm_queue::SimpleQueue;
    /// let created = SimpleQueue::<u8>::builder().capacity(2).create(&name)?;
    /// created.put(4)?;
    /// assert_eq!(SimpleQueue::<u8>::open(&name)?.get()?, 4);
    /// assert!(shm_queue::Queue::<u8>::open(&name).is_err()); // another kind
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Ok(SimpleQueue {
            queue: Queue::open_kind(name, ObjectKind::SIMPLE_QUEUE)?,
        })
    }

    /// Puts `value` at the back, waiting while the queue is full (see
    /// [the bound](Self#the-bound)).
    ///
    /// # Errors
    ///
    /// As [`Queue::put`]: `Closed`, `TooLarge`, `Encode`, each with the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::new()?;
    /// q.put(1)?;
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        self.queue.put(value)
    }

    /// Takes the message at the front, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`]: `Closed` once closed and drained, `Decode`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<String>::new()?;
    /// q.put("a".into())?;
    /// assert_eq!(q.get()?, "a");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.queue.get()
    }

    /// Takes the message at the front, waiting at most `timeout` (never less).
    ///
    /// # Errors
    ///
    /// As [`Queue::get_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shm_queue::SimpleQueue::<u8>::new()?;
    /// assert_eq!(q.get_timeout(Duration::from_millis(1)), Err(shm_queue::GetTimeoutError::Timeout));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.queue.get_timeout(timeout)
    }

    /// Takes the message at the front if one is ready now.
    ///
    /// # Errors
    ///
    /// As [`Queue::try_get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::new()?;
    /// assert_eq!(q.try_get(), Err(shm_queue::TryGetError::Empty));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.queue.try_get()
    }

    /// Python's `empty()`: whether no message is queued (a snapshot, as in Python).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::new()?;
    /// assert!(q.is_empty());
    /// q.put(1)?;
    /// assert!(!q.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Messages queued (a snapshot; see [`Queue::len`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::new()?;
    /// q.put(1)?;
    /// assert_eq!(q.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// How many messages the queue holds before `put` waits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::SimpleQueue::<u8>::builder().capacity(7).create_anonymous()?.capacity(), 7);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// The largest encoded message in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::SimpleQueue::<u8>::new()?.max_message_size(), shm_queue::DEFAULT_MAX_MESSAGE);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(&self) -> usize {
        self.queue.max_message_size()
    }

    /// Closes the queue for every process (see [`Queue::close`]): blocked calls wake, puts
    /// fail with `Closed`, gets drain what is left, then fail with `Closed`. Sticky.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SimpleQueue::<u8>::new()?;
    /// q.put(1)?;
    /// q.close();
    /// assert!(q.is_closed());
    /// assert!(q.put(2).is_err());
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.queue.close();
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_queue::SimpleQueue::<u8>::new()?.is_closed());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// The queue's name, `None` for an anonymous queue.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::SimpleQueue::<u8>::new()?.name(), None);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.queue.name()
    }
}

/// Serialises as the segment's token, like [`Queue`].
impl<T> Serialize for SimpleQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.queue.serialize(serializer)
    }
}

/// Opens the queue a serialised handle names, checking the kind and element type.
impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let token = SegmentToken::deserialize(deserializer)?;
        Ok(SimpleQueue {
            queue: Queue::from_token(&token, ObjectKind::SIMPLE_QUEUE)
                .map_err(serde::de::Error::custom)?,
        })
    }
}
