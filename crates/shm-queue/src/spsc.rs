//! [`SpscQueue`]: a single-producer single-consumer ring of variable-size records, split
//! into a [`Producer`] and a [`Consumer`] half that may live in different processes.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shm_segment::transfer::SegmentToken;
use shm_segment::{ObjectKind, Segment, SegmentOptions, TypeFingerprint, fault};

use crate::codec::{decode_from, encode_into, encoded_size};
use crate::error::{
    AttachError, CodecError, CreateError, GetError, GetTimeoutError, OpenError, PutError,
    PutTimeoutError, Side, TryGetError, TryPutError,
};
use crate::layout::{
    LAYOUT_VERSION, RECORD_ALIGN, RECORD_HEADER_LEN, RECORD_MESSAGE, RECORD_WRAP, SPSC_MAGIC,
    SpscHeader,
};
use crate::queue::Waiting;
use crate::sync::{AtomicU64, Ordering};
use crate::sys;
use crate::wait::{Attempt, DEFAULT_SPIN_LIMIT, Event};

const HEADER_LEN: usize = std::mem::size_of::<SpscHeader>();

/// Default [`capacity`](SpscBuilder::capacity) of an [`SpscQueue`] in messages.
pub const DEFAULT_SPSC_CAPACITY: usize = 1024;

/// The bytes a record of `len` payload bytes takes in the ring.
fn record_len(len: usize) -> usize {
    RECORD_HEADER_LEN + len.next_multiple_of(RECORD_ALIGN)
}

/// Options for a new [`SpscQueue`]; made by [`SpscQueue::builder`].
///
/// # Examples
///
/// ```
/// let q = shm_queue::SpscQueue::<u64>::builder().capacity(16).max_message_size(32).create_anonymous()?;
/// assert_eq!(q.capacity(), 16);
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SpscBuilder<T> {
    capacity: usize,
    max_message: usize,
    buffer: Option<usize>,
    spin: u32,
    _type: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> SpscBuilder<T> {
    /// The most messages the queue holds (default [`DEFAULT_SPSC_CAPACITY`]). Large
    /// messages can fill the byte ring first.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::builder().capacity(2).create_anonymous()?;
    /// assert_eq!(q.capacity(), 2);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The largest encoded message in bytes (default
    /// [`DEFAULT_MAX_MESSAGE`](crate::DEFAULT_MAX_MESSAGE)).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::builder().max_message_size(8).create_anonymous()?;
    /// assert_eq!(q.max_message_size(), 8);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Bytes of the ring, rounded up to a power of two (default: 64 per message of
    /// capacity, and at least room for two records of the largest message).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::builder().buffer_size(5000).create_anonymous()?;
    /// assert_eq!(q.buffer_size(), 8192);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        self.buffer = Some(bytes);
        self
    }

    /// How many times a blocked call retries before it sleeps (default
    /// [`DEFAULT_SPIN_LIMIT`]), for the halves attached through this handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::builder().spin_limit(5).create_anonymous()?;
    /// assert_eq!(q.spin_limit(), 5);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn spin_limit(mut self, spins: u32) -> Self {
        self.spin = spins;
        self
    }

    /// Creates an anonymous queue.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidConfig`] for a capacity or message size of 0, a buffer too
    /// small for two of the largest records, or sizes that overflow;
    /// [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::builder().create_anonymous()?;
    /// assert!(q.name().is_none());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create_anonymous(&self) -> Result<SpscQueue<T>, CreateError> {
        let (options, config) = self.segment_options()?;
        let segment = options.create_anonymous_with(|seg| config.initialise(seg))?;
        Ok(SpscQueue::from_segment_unchecked(
            segment, config, self.spin,
        ))
    }

    /// Creates the named queue `name`; the name is removed when this handle is dropped.
    ///
    /// # Errors
    ///
    /// As [`create_anonymous`](Self::create_anonymous), plus the segment layer's
    /// `AlreadyExists`, `InvalidName`, `PermissionDenied`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-spsc-create-{}", std::process::id());
    /// let q = shm_queue::SpscQueue::<u8>::builder().create(&name)?;
    /// assert_eq!(q.name(), Some(name.as_str()));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<SpscQueue<T>, CreateError> {
        let (options, config) = self.segment_options()?;
        let segment = options.create_with(name, |seg| config.initialise(seg))?;
        Ok(SpscQueue::from_segment_unchecked(
            segment, config, self.spin,
        ))
    }

    fn segment_options(&self) -> Result<(SegmentOptions, SpscConfig), CreateError> {
        let invalid = |reason: String| CreateError::InvalidConfig { reason };
        if self.capacity == 0 {
            return Err(invalid("capacity must be at least 1".into()));
        }
        if self.max_message == 0 || self.max_message > u32::MAX as usize / 4 {
            return Err(invalid(
                "max_message_size must be between 1 and 2^30 - 1 bytes".into(),
            ));
        }
        let min_ring = 2 * record_len(self.max_message);
        let wanted = match self.buffer {
            Some(bytes) if bytes < min_ring => {
                return Err(invalid(format!(
                    "buffer_size {bytes} is below {min_ring}, two records of the largest message"
                )));
            }
            Some(bytes) => bytes,
            None => self.capacity.saturating_mul(64).max(min_ring),
        };
        let ring = wanted
            .checked_next_power_of_two()
            .filter(|&n| n <= 1 << 39)
            .ok_or_else(|| invalid("buffer_size exceeds 512 GiB".into()))?;
        let config = SpscConfig {
            capacity: self.capacity as u64,
            max_message: self.max_message,
            ring,
        };
        let options = SegmentOptions::new(ObjectKind::SPSC_QUEUE)
            .fingerprint(TypeFingerprint::of::<T>())
            .len(HEADER_LEN + ring);
        Ok((options, config))
    }
}

#[derive(Debug, Clone, Copy)]
struct SpscConfig {
    capacity: u64,
    max_message: usize,
    ring: usize,
}

impl SpscConfig {
    fn initialise(&self, seg: &Segment) {
        // SAFETY: the data area is 128-byte aligned and holds HEADER_LEN + ring bytes,
        // zeroed (valid for every atomic of the header); no one else sees it before "ready".
        let header = unsafe { &*seg.data().as_ptr().cast::<SpscHeader>() };
        header.magic.store(SPSC_MAGIC, Ordering::Relaxed);
        header.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        header.capacity.store(self.capacity, Ordering::Relaxed);
        header
            .max_message
            .store(self.max_message as u64, Ordering::Relaxed);
        header.ring_len.store(self.ring as u64, Ordering::Relaxed);
        header
            .ring_offset
            .store(HEADER_LEN as u64, Ordering::Relaxed);
        // The segment layer publishes this with its Release store of "ready".
    }

    fn validate(seg: &Segment) -> Result<SpscConfig, OpenError> {
        let corrupt = |reason: String| OpenError::Corrupt { reason };
        if seg.data_len() < HEADER_LEN {
            return Err(corrupt(format!(
                "data area of {} bytes is smaller than the header",
                seg.data_len()
            )));
        }
        // SAFETY: HEADER_LEN bytes are mapped at the aligned data area; atomics only.
        let header = unsafe { &*seg.data().as_ptr().cast::<SpscHeader>() };
        if header.magic.load(Ordering::Relaxed) != SPSC_MAGIC {
            return Err(corrupt("bad SPSC queue magic".into()));
        }
        let version = header.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(corrupt(format!(
                "queue layout version {version}, expected {LAYOUT_VERSION}"
            )));
        }
        let capacity = header.capacity.load(Ordering::Relaxed);
        let max_message = header.max_message.load(Ordering::Relaxed);
        let ring = header.ring_len.load(Ordering::Relaxed);
        let offset = header.ring_offset.load(Ordering::Relaxed);
        if capacity == 0
            || max_message == 0
            || max_message > u64::from(u32::MAX / 4)
            || !ring.is_power_of_two()
            || ring < 2 * record_len(max_message as usize) as u64
            || offset != HEADER_LEN as u64
            || HEADER_LEN as u64 + ring > seg.data_len() as u64
        {
            return Err(corrupt(format!(
                "capacity {capacity}, max message {max_message}, ring {ring}, offset {offset} do not fit a data \
                 area of {} bytes",
                seg.data_len()
            )));
        }
        Ok(SpscConfig {
            capacity,
            max_message: max_message as usize,
            ring: ring as usize,
        })
    }
}

struct SpscInner {
    segment: Segment,
    header: NonNull<SpscHeader>,
    config: SpscConfig,
}

// SAFETY: `header` points into the mapping that `segment` keeps alive and never moves; the
// shared state is accessed through atomics, and the ring only by the half that owns the
// region (the producer between tail and head + ring, the consumer between head and tail).
unsafe impl Send for SpscInner {}
// SAFETY: as above.
unsafe impl Sync for SpscInner {}

impl SpscInner {
    fn header(&self) -> &SpscHeader {
        // SAFETY: validated: the header lies in the mapping, aligned, atomics only.
        unsafe { self.header.as_ref() }
    }

    /// Pointer to ring byte `offset` (< ring length).
    fn ring_at(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset < self.config.ring);
        // SAFETY: the ring of `config.ring` bytes follows the header inside the mapping
        // (validated), and offset < ring.
        unsafe { self.header.as_ptr().cast::<u8>().add(HEADER_LEN + offset) }
    }

    fn data(&self) -> Event<'_> {
        let h = self.header();
        Event {
            seq: &h.data_seq,
            waiters: &h.data_waiters,
        }
    }

    fn space(&self) -> Event<'_> {
        let h = self.header();
        Event {
            seq: &h.space_seq,
            waiters: &h.space_waiters,
        }
    }

    fn len(&self) -> usize {
        let h = self.header();
        // A snapshot of two counters; no ordering is needed beyond reading each one.
        let received = h.received.load(Ordering::Relaxed);
        let sent = h.sent.load(Ordering::Relaxed);
        sent.saturating_sub(received).min(self.config.capacity) as usize
    }

    fn close(&self) {
        // [closed] Release: pairs with the Acquire loads of `closed`.
        self.header().closed.store(1, Ordering::Release);
        self.data().notify_always();
        self.space().notify_always();
    }

    fn is_closed(&self) -> bool {
        // [closed] Acquire: pairs with the Release store in `close`.
        self.header().closed.load(Ordering::Acquire) != 0
    }

    /// Records this process as the owner of one half.
    fn attach(&self, side: Side) -> Result<u64, AttachError> {
        let h = self.header();
        let (word, waiters): (&AtomicU64, _) = match side {
            Side::Producer => (&h.producer_owner, &h.space_waiters),
            Side::Consumer => (&h.consumer_owner, &h.data_waiters),
        };
        let mine = sys::pack_owner(sys::current_process());
        loop {
            // [attach] Acquire: pairs with the Release in `detach`.
            let current = word.load(Ordering::Acquire);
            if current != 0 && sys::owner_alive(current) {
                return Err(AttachError::AlreadyAttached {
                    side,
                    owner: sys::owner_process(current),
                });
            }
            // [attach] AcqRel: the Acquire side pairs with the Release in `detach`, so the
            // previous owner's index stores are visible to us.
            if word
                .compare_exchange(current, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Only the owner of this half sleeps on this event, and there is none but
                // us now: forget registrations of a previous owner that died asleep.
                waiters.store(0, Ordering::Relaxed);
                return Ok(mine);
            }
        }
    }

    fn detach(&self, side: Side, mine: u64) {
        let h = self.header();
        let word = match side {
            Side::Producer => &h.producer_owner,
            Side::Consumer => &h.consumer_owner,
        };
        // [attach] Release: pairs with the Acquire in `attach`.
        let _ = word.compare_exchange(mine, 0, Ordering::Release, Ordering::Relaxed);
    }
}

/// A single-producer single-consumer queue of `T` values in shared memory: the fastest
/// path between two processes.
///
/// The handle is the shared queue; [`producer`](Self::producer) and
/// [`consumer`](Self::consumer) attach the two halves that put and get. At any moment at
/// most one producer and one consumer are attached, each recorded with its process id and
/// start time; the half of a process that died can be attached again by another process,
/// which continues where the dead one stopped.
///
/// Messages are records in a byte ring: a length header and the postcard bytes, encoded
/// straight into the ring, with a wrap marker where a record does not fit before the end.
/// The producer's and the consumer's indices sit on separate 128-byte lines and each side
/// caches the other's, so a put or get touches the other side's line only when its cached
/// view runs out.
///
/// # Examples
///
/// ```
/// use shm_queue::SpscQueue;
/// let (mut tx, mut rx) = SpscQueue::<String>::new()?.split()?;
/// tx.put("ping".to_string())?;
/// assert_eq!(rx.get()?, "ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpscQueue<T> {
    inner: Arc<SpscInner>,
    spin: u32,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for SpscQueue<T> {
    fn clone(&self) -> Self {
        SpscQueue {
            inner: Arc::clone(&self.inner),
            spin: self.spin,
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for SpscQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscQueue")
            .field("name", &self.inner.segment.name().map(|n| n.as_str()))
            .field("capacity", &self.inner.config.capacity)
            .field("ring", &self.inner.config.ring)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned> SpscQueue<T> {
    /// A new anonymous queue with the default sizes.
    ///
    /// # Errors
    ///
    /// [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::new()?;
    /// assert!(q.is_empty());
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
    /// let q = shm_queue::SpscQueue::<u8>::builder().capacity(4).create_anonymous()?;
    /// assert_eq!(q.capacity(), 4);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn builder() -> SpscBuilder<T> {
        SpscBuilder {
            capacity: DEFAULT_SPSC_CAPACITY,
            max_message: crate::DEFAULT_MAX_MESSAGE,
            buffer: None,
            spin: DEFAULT_SPIN_LIMIT,
            _type: PhantomData,
        }
    }

    /// Opens the named queue `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::Segment`] (not found, another kind or element type, ...),
    /// [`OpenError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-spsc-open-{}", std::process::id());
    /// use shm_queue::SpscQueue;
    /// let created = SpscQueue::<u32>::builder().create(&name)?;
    /// let opened = SpscQueue::<u32>::open(&name)?;
    /// created.producer()?.put(1)?;
    /// assert_eq!(opened.consumer()?.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_segment(Self::segment_options().open(name)?)
    }

    fn segment_options() -> SegmentOptions {
        SegmentOptions::new(ObjectKind::SPSC_QUEUE).fingerprint(TypeFingerprint::of::<T>())
    }

    fn from_segment(segment: Segment) -> Result<Self, OpenError> {
        let config = SpscConfig::validate(&segment)?;
        Ok(Self::from_segment_unchecked(
            segment,
            config,
            DEFAULT_SPIN_LIMIT,
        ))
    }

    fn from_segment_unchecked(segment: Segment, config: SpscConfig, spin: u32) -> Self {
        let header = segment.data().cast::<SpscHeader>();
        SpscQueue {
            inner: Arc::new(SpscInner {
                segment,
                header,
                config,
            }),
            spin,
            _type: PhantomData,
        }
    }

    /// Attaches the producer half.
    ///
    /// # Errors
    ///
    /// [`AttachError::AlreadyAttached`] while a live process (this one included) holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::new()?;
    /// let tx = q.producer()?;
    /// assert!(q.producer().is_err());
    /// drop(tx);
    /// assert!(q.producer().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producer(&self) -> Result<Producer<T>, AttachError> {
        let owner = self.inner.attach(Side::Producer)?;
        let h = self.inner.header();
        Ok(Producer {
            // The previous owner's last stores, made visible by the [attach] Acquire.
            tail: h.tail.load(Ordering::Relaxed),
            sent: h.sent.load(Ordering::Relaxed),
            // [space] Acquire: pairs with the consumer's Release store of `head`.
            cached_head: h.head.load(Ordering::Acquire),
            cached_received: h.received.load(Ordering::Relaxed),
            owner,
            spin: self.spin,
            inner: Arc::clone(&self.inner),
            _type: PhantomData,
        })
    }

    /// Attaches the consumer half.
    ///
    /// # Errors
    ///
    /// [`AttachError::AlreadyAttached`] while a live process (this one included) holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::new()?;
    /// let rx = q.consumer()?;
    /// assert!(q.consumer().is_err());
    /// # drop(rx);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consumer(&self) -> Result<Consumer<T>, AttachError> {
        let owner = self.inner.attach(Side::Consumer)?;
        let h = self.inner.header();
        Ok(Consumer {
            head: h.head.load(Ordering::Relaxed),
            received: h.received.load(Ordering::Relaxed),
            // [data] Acquire: pairs with the producer's Release store of `tail`.
            cached_tail: h.tail.load(Ordering::Acquire),
            owner,
            spin: self.spin,
            inner: Arc::clone(&self.inner),
            _type: PhantomData,
        })
    }

    /// Attaches both halves.
    ///
    /// # Errors
    ///
    /// [`AttachError::AlreadyAttached`] when either half is held by a live process.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u8>::new()?.split()?;
    /// tx.put(1)?;
    /// assert_eq!(rx.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn split(&self) -> Result<(Producer<T>, Consumer<T>), AttachError> {
        Ok((self.producer()?, self.consumer()?))
    }

    /// Messages in the queue (exact as seen by either half; a snapshot for others).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::new()?;
    /// q.producer()?.put(1)?;
    /// assert_eq!(q.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_queue::SpscQueue::<u8>::new()?.is_empty());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`len`](Self::len) reached the capacity (a large message may also have to
    /// wait for bytes of the ring before that).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::builder().capacity(1).create_anonymous()?;
    /// q.producer()?.put(1)?;
    /// assert!(q.is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The most messages the queue holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::SpscQueue::<u8>::builder().capacity(3).create_anonymous()?.capacity(), 3);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.config.capacity as usize
    }

    /// Bytes of the ring.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_queue::SpscQueue::<u8>::new()?.buffer_size().is_power_of_two());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn buffer_size(&self) -> usize {
        self.inner.config.ring
    }

    /// The largest encoded message in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::SpscQueue::<u8>::new()?.max_message_size(), shm_queue::DEFAULT_MAX_MESSAGE);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(&self) -> usize {
        self.inner.config.max_message
    }

    /// Closes the queue: blocked calls wake; puts fail with `Closed`; gets drain what is
    /// left, then fail with `Closed`. Sticky.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::new()?;
    /// q.close();
    /// assert!(q.producer()?.put(1).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_queue::SpscQueue::<u8>::new()?.is_closed());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Whether the consumer sleeps waiting for a message and the producer for room (as
    /// counts: 0 or 1).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::SpscQueue::<u8>::new()?;
    /// assert_eq!(q.waiting(), shm_queue::Waiting { getters: 0, putters: 0 });
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn waiting(&self) -> Waiting {
        Waiting {
            getters: self.inner.data().waiters(),
            putters: self.inner.space().waiters(),
        }
    }

    /// The queue's name, `None` for an anonymous queue.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_queue::SpscQueue::<u8>::new()?.name().is_none());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner.segment.name().map(|n| n.as_str())
    }

    /// How many times blocked calls of halves attached through this handle retry before
    /// sleeping.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut q = shm_queue::SpscQueue::<u8>::new()?;
    /// q.set_spin_limit(3);
    /// assert_eq!(q.spin_limit(), 3);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn spin_limit(&self) -> u32 {
        self.spin
    }

    /// Sets the spin limit for halves attached through this handle from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut q = shm_queue::SpscQueue::<u8>::new()?;
    /// q.set_spin_limit(0);
    /// assert_eq!(q.producer()?.spin_limit(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_spin_limit(&mut self, spins: u32) {
        self.spin = spins;
    }
}

/// A serialised handle is the segment's token; see `shm_segment::transfer`. Halves are
/// not serialisable: send the queue and attach the half on the other side.
impl<T> Serialize for SpscQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.segment.token().serialize(serializer)
    }
}

/// Opens the queue a serialised handle names, checking the kind and element type.
impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for SpscQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let token = SegmentToken::deserialize(deserializer)?;
        let segment = token
            .open(&Self::segment_options())
            .map_err(serde::de::Error::custom)?;
        Self::from_segment(segment).map_err(serde::de::Error::custom)
    }
}

enum Until {
    Now,
    Deadline(Option<Instant>),
}

enum PutFailure {
    Full,
    Closed,
    TooLarge { size: usize, max: usize },
    Encode(CodecError),
}

enum GetFailure {
    Empty,
    Closed,
    Decode(CodecError),
}

/// The producing half of an [`SpscQueue`]; detaches when dropped.
///
/// # Examples
///
/// ```
/// let q = shm_queue::SpscQueue::<u32>::new()?;
/// let mut tx = q.producer()?;
/// tx.put(7)?;
/// assert_eq!(tx.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer<T> {
    inner: Arc<SpscInner>,
    /// Our write index (authoritative: we are the only writer of `tail`).
    tail: u64,
    sent: u64,
    /// The consumer's indices as last seen.
    cached_head: u64,
    cached_received: u64,
    owner: u64,
    spin: u32,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("tail", &self.tail)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.inner.detach(Side::Producer, self.owner);
    }
}

impl<T: Serialize + DeserializeOwned> Producer<T> {
    /// Puts `value`, waiting as long as the queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`], [`PutError::TooLarge`], [`PutError::Encode`]; the value comes
    /// back and nothing is enqueued.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u8>::new()?.split()?;
    /// tx.put(1)?;
    /// assert_eq!(rx.try_get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&mut self, value: T) -> Result<(), PutError<T>> {
        self.put_until(value, Until::Deadline(None))
            .map_err(|(value, failure)| match failure {
                PutFailure::Closed | PutFailure::Full => PutError::Closed(value),
                PutFailure::TooLarge { size, max } => PutError::TooLarge { value, size, max },
                PutFailure::Encode(error) => PutError::Encode { value, error },
            })
    }

    /// Puts `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] when no room came within `timeout` (never earlier),
    /// otherwise as [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shm_queue::SpscQueue::<u8>::builder().capacity(1).create_anonymous()?;
    /// let mut tx = q.producer()?;
    /// tx.put(1)?;
    /// assert!(tx.put_timeout(2, Duration::from_millis(1)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&mut self, value: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        let deadline = sys::deadline_after(timeout);
        self.put_until(value, Until::Deadline(deadline))
            .map_err(|(value, failure)| match failure {
                PutFailure::Full => PutTimeoutError::Timeout(value),
                PutFailure::Closed => PutTimeoutError::Closed(value),
                PutFailure::TooLarge { size, max } => {
                    PutTimeoutError::TooLarge { value, size, max }
                }
                PutFailure::Encode(error) => PutTimeoutError::Encode { value, error },
            })
    }

    /// Puts `value` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] when there is none, otherwise as [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{SpscQueue, TryPutError};
    /// let q = SpscQueue::<u8>::builder().capacity(1).create_anonymous()?;
    /// let mut tx = q.producer()?;
    /// tx.try_put(1)?;
    /// assert!(matches!(tx.try_put(2), Err(TryPutError::Full(2))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put(&mut self, value: T) -> Result<(), TryPutError<T>> {
        self.put_until(value, Until::Now)
            .map_err(|(value, failure)| match failure {
                PutFailure::Full => TryPutError::Full(value),
                PutFailure::Closed => TryPutError::Closed(value),
                PutFailure::TooLarge { size, max } => TryPutError::TooLarge { value, size, max },
                PutFailure::Encode(error) => TryPutError::Encode { value, error },
            })
    }

    /// Room for a record of `record` bytes at the tail: `Ok(wrap)` where `wrap` is the
    /// number of bytes to skip to the ring's start first (0 when it fits before the end).
    fn try_room(&mut self, record: usize) -> Attempt<Result<usize, ()>> {
        let h = self.inner.header();
        // [closed] Acquire: pairs with the Release store in `close`.
        if h.closed.load(Ordering::Acquire) != 0 {
            return Attempt::Done(Err(()));
        }
        let ring = self.inner.config.ring;
        let offset = (self.tail % ring as u64) as usize;
        let to_end = ring - offset;
        let wrap = if record <= to_end { 0 } else { to_end };
        let fits = |head: u64, received: u64, tail: u64, sent: u64, capacity: u64| {
            sent - received < capacity && tail + (wrap + record) as u64 - head <= ring as u64
        };
        let capacity = self.inner.config.capacity;
        if fits(
            self.cached_head,
            self.cached_received,
            self.tail,
            self.sent,
            capacity,
        ) {
            return Attempt::Done(Ok(wrap));
        }
        // [space] Acquire: pairs with the consumer's Release store of `head`, so the bytes
        // it read are no longer in use. `received` is stored before `head`, so it is at
        // least as new.
        self.cached_head = h.head.load(Ordering::Acquire);
        self.cached_received = h.received.load(Ordering::Relaxed);
        if fits(
            self.cached_head,
            self.cached_received,
            self.tail,
            self.sent,
            capacity,
        ) {
            Attempt::Done(Ok(wrap))
        } else {
            Attempt::Blocked { poll: false }
        }
    }

    fn put_until(&mut self, value: T, until: Until) -> Result<(), (T, PutFailure)> {
        let max = self.inner.config.max_message;
        let size = match encoded_size(&value) {
            Ok(size) => size,
            Err(e) => return Err((value, PutFailure::Encode(e))),
        };
        if size > max {
            return Err((value, PutFailure::TooLarge { size, max }));
        }
        let record = record_len(size);
        let room = match until {
            Until::Now => match self.try_room(record) {
                Attempt::Done(r) => Some(r),
                Attempt::Blocked { .. } => None,
            },
            Until::Deadline(deadline) => {
                let inner = Arc::clone(&self.inner);
                inner
                    .space()
                    .block_on(self.spin, deadline, |_| self.try_room(record))
            }
        };
        let wrap = match room {
            None => return Err((value, PutFailure::Full)),
            Some(Err(())) => return Err((value, PutFailure::Closed)),
            Some(Ok(wrap)) => wrap,
        };
        let ring = self.inner.config.ring;
        let mut tail = self.tail;
        if wrap != 0 {
            let at = self.inner.ring_at((tail % ring as u64) as usize);
            // SAFETY: the `wrap` bytes from the tail are free (checked in `try_room`) and
            // only this producer writes there; record headers are 8-aligned (every record
            // length is a multiple of 8, the ring a power of two >= 8).
            unsafe { write_record_header(at, 0, RECORD_WRAP) };
            tail += wrap as u64;
        }
        let at = self.inner.ring_at((tail % ring as u64) as usize);
        // SAFETY: `record` free bytes start at `at` before the ring's end (checked in
        // `try_room`); only this producer writes them until it publishes the tail.
        let encoded = unsafe {
            write_record_header(at, size as u32, RECORD_MESSAGE);
            encode_into(&value, at.add(RECORD_HEADER_LEN), size)
        };
        match encoded {
            Ok(len) if len == size => {}
            Ok(_) => {
                let error = CodecError::corrupt("the value encoded to a different size twice");
                return Err((value, PutFailure::Encode(error)));
            }
            // Nothing was published: the bytes past the tail are ignored.
            Err(e) => return Err((value, PutFailure::Encode(e))),
        }
        fault::point("shm_queue.spsc.put.written");
        self.tail = tail + record as u64;
        self.sent += 1;
        let h = self.inner.header();
        h.sent.store(self.sent, Ordering::Relaxed);
        // [data] Release: pairs with the consumer's Acquire load of `tail`.
        h.tail.store(self.tail, Ordering::Release);
        self.inner.data().notify();
        Ok(())
    }

    /// Messages in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut tx = shm_queue::SpscQueue::<u8>::new()?.producer()?;
    /// tx.put(1)?;
    /// assert_eq!(tx.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_queue::SpscQueue::<u8>::new()?.producer()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`len`](Self::len) reached the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut tx = shm_queue::SpscQueue::<u8>::builder().capacity(1).create_anonymous()?.producer()?;
    /// tx.put(1)?;
    /// assert!(tx.is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The most messages the queue holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::SpscQueue::<u8>::builder().capacity(9).create_anonymous()?.producer()?.capacity(), 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.config.capacity as usize
    }

    /// Closes the queue (see [`SpscQueue::close`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut tx = shm_queue::SpscQueue::<u8>::new()?.producer()?;
    /// tx.close();
    /// assert!(tx.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_queue::SpscQueue::<u8>::new()?.producer()?.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Retries of a blocked call before it sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut tx = shm_queue::SpscQueue::<u8>::new()?.producer()?;
    /// tx.set_spin_limit(1);
    /// assert_eq!(tx.spin_limit(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spin_limit(&self) -> u32 {
        self.spin
    }

    /// Sets the retries of a blocked call before it sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut tx = shm_queue::SpscQueue::<u8>::new()?.producer()?;
    /// tx.set_spin_limit(0);
    /// assert_eq!(tx.spin_limit(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_spin_limit(&mut self, spins: u32) {
        self.spin = spins;
    }
}

/// Writes a record header (`len`, `kind`) at `at`.
///
/// # Safety
///
/// `at` must be 8-aligned, inside the ring with 8 bytes to its end, and owned by the
/// producer (not yet published).
unsafe fn write_record_header(at: *mut u8, len: u32, kind: u32) {
    // SAFETY: per the contract, both 4-byte words are in bounds, aligned and ours.
    unsafe {
        at.cast::<u32>().write(len);
        at.cast::<u32>().add(1).write(kind);
    }
}

/// Reads a record header at `at`.
///
/// # Safety
///
/// `at` must be 8-aligned, inside the ring with 8 bytes to its end, and published to the
/// consumer (below the tail it loaded with Acquire).
unsafe fn read_record_header(at: *const u8) -> (u32, u32) {
    // SAFETY: per the contract; the producer does not write published bytes.
    unsafe { (at.cast::<u32>().read(), at.cast::<u32>().add(1).read()) }
}

/// The consuming half of an [`SpscQueue`]; detaches when dropped.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = shm_queue::SpscQueue::<u32>::new()?.split()?;
/// tx.put(3)?;
/// assert_eq!(rx.get()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Consumer<T> {
    inner: Arc<SpscInner>,
    head: u64,
    received: u64,
    cached_tail: u64,
    owner: u64,
    spin: u32,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("head", &self.head)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.inner.detach(Side::Consumer, self.owner);
    }
}

/// Advances the consumer's indices when dropped (even if decoding panics), publishing the
/// freed bytes to the producer.
struct Advance<'a> {
    inner: &'a SpscInner,
    head: &'a mut u64,
    received: &'a mut u64,
    new_head: u64,
}

impl Drop for Advance<'_> {
    fn drop(&mut self) {
        *self.head = self.new_head;
        *self.received += 1;
        let h = self.inner.header();
        h.received.store(*self.received, Ordering::Relaxed);
        // [space] Release: pairs with the producer's Acquire load of `head`.
        h.head.store(*self.head, Ordering::Release);
        self.inner.space().notify();
    }
}

impl<T: Serialize + DeserializeOwned> Consumer<T> {
    /// Takes the next message, waiting as long as the queue is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once the queue is closed and drained; [`GetError::Decode`] for a
    /// message that cannot be decoded (it is removed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u8>::new()?.split()?;
    /// tx.put(1)?;
    /// tx.close();
    /// assert_eq!(rx.get()?, 1);
    /// assert!(rx.get().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&mut self) -> Result<T, GetError> {
        self.get_until(Until::Deadline(None))
            .map_err(|failure| match failure {
                GetFailure::Empty | GetFailure::Closed => GetError::Closed,
                GetFailure::Decode(e) => GetError::Decode(e),
            })
    }

    /// Takes the next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] when none came within `timeout` (never earlier),
    /// otherwise as [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// assert_eq!(rx.get_timeout(Duration::from_millis(1)), Err(shm_queue::GetTimeoutError::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<T, GetTimeoutError> {
        let deadline = sys::deadline_after(timeout);
        self.get_until(Until::Deadline(deadline))
            .map_err(|failure| match failure {
                GetFailure::Empty => GetTimeoutError::Timeout,
                GetFailure::Closed => GetTimeoutError::Closed,
                GetFailure::Decode(e) => GetTimeoutError::Decode(e),
            })
    }

    /// Takes the next message if there is one now.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] when there is none, otherwise as [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// assert_eq!(rx.try_get(), Err(shm_queue::TryGetError::Empty));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get(&mut self) -> Result<T, TryGetError> {
        self.get_until(Until::Now).map_err(|failure| match failure {
            GetFailure::Empty => TryGetError::Empty,
            GetFailure::Closed => TryGetError::Closed,
            GetFailure::Decode(e) => TryGetError::Decode(e),
        })
    }

    /// Whether a record is published past our head: `Ok(())`, or `Err(())` when the queue
    /// is closed and drained.
    fn try_ready(&mut self) -> Attempt<Result<(), ()>> {
        if self.head != self.cached_tail {
            return Attempt::Done(Ok(()));
        }
        let h = self.inner.header();
        // [data] Acquire: pairs with the producer's Release store of `tail`.
        self.cached_tail = h.tail.load(Ordering::Acquire);
        if self.head != self.cached_tail {
            return Attempt::Done(Ok(()));
        }
        // [closed] Acquire: pairs with the Release store in `close`.
        if h.closed.load(Ordering::Acquire) != 0 {
            // A put that finished before `close` is visible now. [data] Acquire, as above.
            self.cached_tail = h.tail.load(Ordering::Acquire);
            return Attempt::Done(if self.head != self.cached_tail {
                Ok(())
            } else {
                Err(())
            });
        }
        Attempt::Blocked { poll: false }
    }

    fn get_until(&mut self, until: Until) -> Result<T, GetFailure> {
        let ready = match until {
            Until::Now => match self.try_ready() {
                Attempt::Done(r) => Some(r),
                Attempt::Blocked { .. } => None,
            },
            Until::Deadline(deadline) => {
                let inner = Arc::clone(&self.inner);
                inner
                    .data()
                    .block_on(self.spin, deadline, |_| self.try_ready())
            }
        };
        match ready {
            None => return Err(GetFailure::Empty),
            Some(Err(())) => return Err(GetFailure::Closed),
            Some(Ok(())) => {}
        }
        let ring = self.inner.config.ring;
        let max = self.inner.config.max_message;
        let mut head = self.head;
        let mut offset = (head % ring as u64) as usize;
        // SAFETY: head < tail (published with the Acquire above), so a record header lies
        // at `offset`, 8-aligned with 8 bytes to the ring's end.
        let (mut len, mut kind) = unsafe { read_record_header(self.inner.ring_at(offset)) };
        if kind == RECORD_WRAP {
            head += (ring - offset) as u64;
            offset = 0;
            // SAFETY: the producer publishes a wrap marker together with the record after
            // it, at offset 0, so the same holds there.
            (len, kind) = unsafe { read_record_header(self.inner.ring_at(0)) };
        }
        let len = len as usize;
        if kind != RECORD_MESSAGE
            || len > max
            || offset + record_len(len) > ring
            || head >= self.cached_tail
        {
            // Garbage in the ring (a faulty writer): drop everything published so far.
            let tail = self.cached_tail;
            let skipped = Advance {
                inner: &self.inner,
                head: &mut self.head,
                received: &mut self.received,
                new_head: tail,
            };
            drop(skipped);
            return Err(GetFailure::Decode(CodecError::corrupt(&format!(
                "record kind {kind}, length {len}"
            ))));
        }
        let at = self.inner.ring_at(offset);
        let new_head = head + record_len(len) as u64;
        let _advance = Advance {
            inner: &self.inner,
            head: &mut self.head,
            received: &mut self.received,
            new_head,
        };
        // SAFETY: the record's `len` payload bytes follow its header inside the ring
        // (checked), were published by the producer (Acquire of tail) and are not written
        // again before `_advance` publishes the new head.
        unsafe { decode_from(at.add(RECORD_HEADER_LEN), len) }.map_err(GetFailure::Decode)
    }

    /// Messages in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, rx) = shm_queue::SpscQueue::<u8>::new()?.split()?;
    /// tx.put(1)?;
    /// assert_eq!(rx.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_queue::SpscQueue::<u8>::new()?.consumer()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`len`](Self::len) reached the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_queue::SpscQueue::<u8>::new()?.consumer()?.is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The most messages the queue holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::SpscQueue::<u8>::builder().capacity(2).create_anonymous()?.consumer()?.capacity(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.config.capacity as usize
    }

    /// Closes the queue (see [`SpscQueue::close`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// rx.close();
    /// assert_eq!(rx.try_get(), Err(shm_queue::TryGetError::Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_queue::SpscQueue::<u8>::new()?.consumer()?.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Retries of a blocked call before it sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// assert_eq!(rx.spin_limit(), shm_queue::DEFAULT_SPIN_LIMIT);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spin_limit(&self) -> u32 {
        self.spin
    }

    /// Sets the retries of a blocked call before it sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// rx.set_spin_limit(7);
    /// assert_eq!(rx.spin_limit(), 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_spin_limit(&mut self, spins: u32) {
        self.spin = spins;
    }
}
