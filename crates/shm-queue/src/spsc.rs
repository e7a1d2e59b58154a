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

use crate::codec::{encode_into_slice, encoded_size, read_postcard};
use crate::error::{
    AttachError, CodecError, CreateError, GetError, GetTimeoutError, OpenError, PutError,
    PutTimeoutError, Side, TryGetError, TryPutError,
};
use crate::layout::{
    CODEC_PLAIN, CODEC_POSTCARD, LAYOUT_VERSION, RECORD_ALIGN, RECORD_HEADER_LEN, RECORD_MESSAGE,
    RECORD_PLAIN, RECORD_WRAP, SPSC_MAGIC, SpscHeader,
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
pub(crate) struct SpscConfig {
    pub(crate) capacity: u64,
    pub(crate) max_message: usize,
    pub(crate) ring: usize,
}

impl SpscConfig {
    fn initialise(&self, seg: &Segment) {
        // SAFETY: the data area is 128-byte aligned and holds HEADER_LEN + ring bytes,
        // zeroed (valid for every atomic of the header); no one else sees it before "ready".
        let header = unsafe { &*seg.data().as_ptr().cast::<SpscHeader>() };
        self.initialise_header(header);
    }

    /// Bytes of a header and its ring.
    pub(crate) fn total_len(&self) -> usize {
        HEADER_LEN + self.ring
    }

    /// Writes a new queue's header (zeroed memory, before anyone else sees it).
    pub(crate) fn initialise_header(&self, header: &SpscHeader) {
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
        Self::validate_header(header, seg.data_len())
    }

    /// Reads and checks the header of a queue that has `available` bytes from the header's
    /// start to the end of the mapping.
    pub(crate) fn validate_header(
        header: &SpscHeader,
        available: usize,
    ) -> Result<SpscConfig, OpenError> {
        let corrupt = |reason: String| OpenError::Corrupt { reason };
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
            || HEADER_LEN as u64 + ring > available as u64
        {
            return Err(corrupt(format!(
                "capacity {capacity}, max message {max_message}, ring {ring}, offset {offset} do not fit \
                 {available} bytes"
            )));
        }
        Ok(SpscConfig {
            capacity,
            max_message: max_message as usize,
            ring: ring as usize,
        })
    }
}

pub(crate) struct SpscInner {
    segment: Arc<Segment>,
    header: NonNull<SpscHeader>,
    config: SpscConfig,
    /// Under loom, one cell per `RECORD_ALIGN` ring bytes, so that loom's race detector
    /// checks every access to ring bytes (see [`track`](Self::track)).
    #[cfg(loom)]
    cells: Box<[loom::cell::UnsafeCell<()>]>,
}

// SAFETY: `header` points into the mapping that `segment` keeps alive and never moves; the
// shared state is accessed through atomics, and the ring only by the half that owns the
// region (the producer between tail and head + ring, the consumer between head and tail).
unsafe impl Send for SpscInner {}
// SAFETY: as above.
unsafe impl Sync for SpscInner {}

impl SpscInner {
    /// A queue whose header lies at `header` inside `segment` (validated or initialised by
    /// the caller for `config`).
    pub(crate) fn new(
        segment: Arc<Segment>,
        header: NonNull<SpscHeader>,
        config: SpscConfig,
    ) -> Self {
        SpscInner {
            segment,
            header,
            config,
            #[cfg(loom)]
            cells: loom_cells(config.ring),
        }
    }

    /// Attaches the producer half; `take_over`: whoever holds it now, alive or not (a
    /// `Connection` received by another process).
    pub(crate) fn producer<T>(
        self: &Arc<Self>,
        spin: u32,
        take_over: bool,
        peer_check: bool,
    ) -> Result<Producer<T>, AttachError> {
        let owner = self.attach(Side::Producer, take_over)?;
        let h = self.header();
        Ok(Producer {
            // The previous owner's last stores, made visible by the [attach] Acquire.
            tail: h.tail.load(Ordering::Relaxed),
            sent: h.sent.load(Ordering::Relaxed),
            // [space] Acquire: pairs with the consumer's Release store of `head`.
            cached_head: h.head.load(Ordering::Acquire),
            cached_received: h.received.load(Ordering::Relaxed),
            owner,
            spin,
            peer_check,
            inner: Arc::clone(self),
            _type: PhantomData,
        })
    }

    /// Attaches the consumer half (see [`producer`](Self::producer)).
    pub(crate) fn consumer<T>(
        self: &Arc<Self>,
        spin: u32,
        take_over: bool,
        peer_check: bool,
    ) -> Result<Consumer<T>, AttachError> {
        let owner = self.attach(Side::Consumer, take_over)?;
        let h = self.header();
        Ok(Consumer {
            head: h.head.load(Ordering::Relaxed),
            received: h.received.load(Ordering::Relaxed),
            // [data] Acquire: pairs with the producer's Release store of `tail`.
            cached_tail: h.tail.load(Ordering::Acquire),
            owner,
            spin,
            peer_check,
            inner: Arc::clone(self),
            _type: PhantomData,
        })
    }

    /// The queue's shape.
    pub(crate) fn config(&self) -> SpscConfig {
        self.config
    }

    /// Whether the process attached as `side` is known to be dead (false when none is
    /// attached: nobody to judge).
    fn side_dead(&self, side: Side) -> bool {
        let h = self.header();
        let word = match side {
            Side::Producer => &h.producer_owner,
            Side::Consumer => &h.consumer_owner,
        };
        // [attach] Acquire: pairs with the AcqRel exchange in `attach`.
        let owner = word.load(Ordering::Acquire);
        owner != 0 && !sys::owner_alive(owner)
    }

    /// Whether `side` is attached by the holder of `mine` (a packed owner word).
    pub(crate) fn is_owner(&self, side: Side, mine: u64) -> bool {
        let h = self.header();
        let word = match side {
            Side::Producer => &h.producer_owner,
            Side::Consumer => &h.consumer_owner,
        };
        word.load(Ordering::Relaxed) == mine
    }

    pub(crate) fn header(&self) -> &SpscHeader {
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

    /// Records an access to ring bytes `offset..offset + len` for loom's race detector,
    /// which then fails a model where a read and a write of the same bytes are not ordered
    /// by the index protocol. Nothing outside loom.
    #[inline]
    fn track(&self, offset: usize, len: usize, write: bool) {
        #[cfg(loom)]
        for cell in &self.cells[offset / RECORD_ALIGN..(offset + len).div_ceil(RECORD_ALIGN)] {
            if write {
                cell.with_mut(|_| ());
            } else {
                cell.with(|_| ());
            }
        }
        #[cfg(not(loom))]
        let _ = (offset, len, write);
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

    pub(crate) fn close(&self) {
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
    fn attach(&self, side: Side, take_over: bool) -> Result<u64, AttachError> {
        let h = self.header();
        let (word, waiters): (&AtomicU64, _) = match side {
            Side::Producer => (&h.producer_owner, &h.space_waiters),
            Side::Consumer => (&h.consumer_owner, &h.data_waiters),
        };
        let mine = sys::pack_owner(sys::current_process());
        loop {
            // [attach] Acquire: pairs with the Release in `detach`.
            let current = word.load(Ordering::Acquire);
            if current != 0 && !take_over && sys::owner_alive(current) {
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
                segment: Arc::new(segment),
                header,
                config,
                #[cfg(loom)]
                cells: loom_cells(config.ring),
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
        self.inner.producer(self.spin, false, false)
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
        self.inner.consumer(self.spin, false, false)
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
    /// Everything the producer put before `close` (in its own thread, or before whatever
    /// told the closer to close) is taken before `Closed`. A put racing a close made from
    /// another handle may return `Ok` and still arrive after the consumer saw `Closed`
    /// (a next get returns it); unlike [`Queue`](crate::Queue), the single-producer ring
    /// keeps its put free of the extra `SeqCst` handshake that would rule this out.
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

/// When a blocking operation gives up.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// Try once.
    Now,
    /// Wait until the deadline (`None`: forever).
    Deadline(Option<Instant>),
}

/// How a put failed, without the value.
pub(crate) enum PutFailure {
    Full,
    Closed,
    /// The consumer's process died (only with `peer_check`).
    PeerDied,
    TooLarge {
        size: usize,
        max: usize,
    },
    Encode(CodecError),
}

/// How a get failed.
pub(crate) enum GetFailure {
    Empty,
    Closed,
    /// The producer's process died and everything it published was taken (only with
    /// `peer_check`).
    PeerDied,
    Decode(CodecError),
}

impl PutFailure {
    /// As a blocking put reports it, handing `value` back.
    fn into_put_error<T>(self, value: T) -> PutError<T> {
        match self {
            PutFailure::Closed | PutFailure::Full | PutFailure::PeerDied => PutError::Closed(value),
            PutFailure::TooLarge { size, max } => PutError::TooLarge { value, size, max },
            PutFailure::Encode(error) => PutError::Encode { value, error },
        }
    }

    /// As a put with a time-out reports it.
    fn into_put_timeout_error<T>(self, value: T) -> PutTimeoutError<T> {
        match self {
            PutFailure::Full => PutTimeoutError::Timeout(value),
            PutFailure::Closed | PutFailure::PeerDied => PutTimeoutError::Closed(value),
            PutFailure::TooLarge { size, max } => PutTimeoutError::TooLarge { value, size, max },
            PutFailure::Encode(error) => PutTimeoutError::Encode { value, error },
        }
    }

    /// As a non-blocking put reports it.
    fn into_try_put_error<T>(self, value: T) -> TryPutError<T> {
        match self {
            PutFailure::Full => TryPutError::Full(value),
            PutFailure::Closed | PutFailure::PeerDied => TryPutError::Closed(value),
            PutFailure::TooLarge { size, max } => TryPutError::TooLarge { value, size, max },
            PutFailure::Encode(error) => TryPutError::Encode { value, error },
        }
    }
}

impl GetFailure {
    /// As a blocking get reports it.
    fn into_get_error(self) -> GetError {
        match self {
            GetFailure::Empty | GetFailure::Closed | GetFailure::PeerDied => GetError::Closed,
            GetFailure::Decode(e) => GetError::Decode(e),
        }
    }

    /// As a get with a time-out reports it.
    fn into_get_timeout_error(self) -> GetTimeoutError {
        match self {
            GetFailure::Empty => GetTimeoutError::Timeout,
            GetFailure::Closed | GetFailure::PeerDied => GetTimeoutError::Closed,
            GetFailure::Decode(e) => GetTimeoutError::Decode(e),
        }
    }

    /// As a non-blocking get reports it.
    fn into_try_get_error(self) -> TryGetError {
        match self {
            GetFailure::Empty => TryGetError::Empty,
            GetFailure::Closed | GetFailure::PeerDied => TryGetError::Closed,
            GetFailure::Decode(e) => TryGetError::Decode(e),
        }
    }
}

/// Why a blocked half stops waiting.
enum Stop {
    Closed,
    PeerDied,
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
    /// Whether a blocked put checks that the consumer's process lives (pipes).
    peer_check: bool,
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
            .map_err(|(value, failure)| failure.into_put_error(value))
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
            .map_err(|(value, failure)| failure.into_put_timeout_error(value))
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
            .map_err(|(value, failure)| failure.into_try_put_error(value))
    }

    fn put_until(&mut self, value: T, until: Until) -> Result<(), (T, PutFailure)> {
        let size = match encoded_size(&value) {
            Ok(size) => size,
            Err(e) => return Err((value, PutFailure::Encode(e))),
        };
        let written = self.put_record(size, until, |dst| match encode_into_slice(&value, dst) {
            Ok(len) if len == size => Ok(()),
            Ok(_) => Err(CodecError::corrupt(
                "the value encoded to a different size twice",
            )),
            Err(e) => Err(e),
        });
        written.map_err(|failure| (value, failure))
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

impl<T> Producer<T> {
    /// Room for a record of `record` bytes at the tail: `Ok(wrap)` where `wrap` is the
    /// number of bytes to skip to the ring's start first (0 when it fits before the end).
    /// `check`: also check whether the consumer died (with `peer_check`; costly, so only
    /// before sleeping).
    fn try_room(&mut self, record: usize, check: bool) -> Attempt<Result<usize, Stop>> {
        let h = self.inner.header();
        // [closed] Acquire: pairs with the Release store in `close`.
        if h.closed.load(Ordering::Acquire) != 0 {
            return Attempt::Done(Err(Stop::Closed));
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
        } else if self.peer_check && check && self.inner.side_dead(Side::Consumer) {
            Attempt::Done(Err(Stop::PeerDied))
        } else {
            Attempt::Blocked {
                poll: self.peer_check,
            }
        }
    }

    /// Waits (per `until`) for room for a record of `record` bytes: the wrap to skip first.
    fn claim_room(&mut self, record: usize, until: Until) -> Result<usize, PutFailure> {
        let room = match until {
            Until::Now => match self.try_room(record, true) {
                Attempt::Done(r) => Some(r),
                Attempt::Blocked { .. } => None,
            },
            // The common case first: room now, without cloning the `Arc` (two atomic
            // read-modify-writes) that blocking needs.
            Until::Deadline(deadline) => match self.try_room(record, false) {
                Attempt::Done(r) => Some(r),
                Attempt::Blocked { .. } => {
                    let inner = Arc::clone(&self.inner);
                    inner
                        .space()
                        .block_on(self.spin, deadline, |check| self.try_room(record, check))
                }
            },
        };
        match room {
            None => Err(PutFailure::Full),
            Some(Err(Stop::Closed)) => Err(PutFailure::Closed),
            Some(Err(Stop::PeerDied)) => Err(PutFailure::PeerDied),
            Some(Ok(wrap)) => Ok(wrap),
        }
    }

    /// Writes a record of `size` payload bytes (after a wrap marker of `wrap` bytes, as
    /// `try_room` found room for) and moves the local tail past it, without publishing.
    fn write_unpublished(
        &mut self,
        size: usize,
        wrap: usize,
        kind: u32,
        write: impl FnOnce(&mut [u8]) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        let ring = self.inner.config.ring;
        let mut tail = self.tail;
        if wrap != 0 {
            let offset = (tail % ring as u64) as usize;
            self.inner.track(offset, RECORD_HEADER_LEN, true);
            let at = self.inner.ring_at(offset);
            // SAFETY: the `wrap` bytes from the tail are free (checked in `try_room`) and
            // only this producer writes there; record headers are 8-aligned (every record
            // length is a multiple of 8, the ring a power of two >= 8).
            unsafe { write_record_header(at, 0, RECORD_WRAP) };
            tail += wrap as u64;
        }
        let offset = (tail % ring as u64) as usize;
        self.inner.track(offset, RECORD_HEADER_LEN + size, true);
        let at = self.inner.ring_at(offset);
        // SAFETY: `record` free bytes start at `at` before the ring's end (checked in
        // `try_room`); only this producer reads or writes them until it publishes the tail,
        // so a unique slice over the payload aliases nothing.
        let payload = unsafe {
            write_record_header(at, size as u32, kind);
            std::slice::from_raw_parts_mut(at.add(RECORD_HEADER_LEN), size)
        };
        // Nothing is published on failure: the bytes past the tail are ignored.
        write(payload)?;
        self.tail = tail + record_len(size) as u64;
        self.sent += 1;
        Ok(())
    }

    /// Publishes every record written so far and wakes the consumer if it sleeps.
    fn publish(&mut self) {
        let h = self.inner.header();
        h.sent.store(self.sent, Ordering::Relaxed);
        // [data] Release: pairs with the consumer's Acquire load of `tail`.
        h.tail.store(self.tail, Ordering::Release);
        self.inner.data().notify();
    }

    /// Publishes one record of `size` payload bytes that `write` fills (it gets exactly
    /// `size` bytes of the ring, which only this producer touches until the record is
    /// published). Nothing is published when `write` fails.
    pub(crate) fn put_record(
        &mut self,
        size: usize,
        until: Until,
        write: impl FnOnce(&mut [u8]) -> Result<(), CodecError>,
    ) -> Result<(), PutFailure> {
        self.put_record_kind(size, until, RECORD_MESSAGE, write)
    }

    /// [`put_record`](Self::put_record) of a record of `kind` ([`RECORD_MESSAGE`] or
    /// [`RECORD_PLAIN`]).
    fn put_record_kind(
        &mut self,
        size: usize,
        until: Until,
        kind: u32,
        write: impl FnOnce(&mut [u8]) -> Result<(), CodecError>,
    ) -> Result<(), PutFailure> {
        let max = self.inner.config.max_message;
        if size > max {
            return Err(PutFailure::TooLarge { size, max });
        }
        let wrap = self.claim_room(record_len(size), until)?;
        self.write_unpublished(size, wrap, kind, write)
            .map_err(PutFailure::Encode)?;
        fault::point("shm_queue.spsc.put.written");
        self.publish();
        Ok(())
    }

    /// Writes records for `sizes` one by one with `write(index, payload)`, publishing the
    /// tail once at the end and once before each wait for room.
    fn put_records(
        &mut self,
        sizes: &[usize],
        until: Until,
        mut write: impl FnMut(usize, &mut [u8]) -> Result<(), CodecError>,
    ) -> Result<(), (usize, PutFailure)> {
        let mut unpublished = false;
        let mut result = Ok(());
        for (index, &size) in sizes.iter().enumerate() {
            let record = record_len(size);
            let wrap = match self.try_room(record, false) {
                Attempt::Done(Ok(wrap)) => Ok(wrap),
                _ => {
                    // Publish what we wrote before waiting: the consumer makes the room.
                    if std::mem::take(&mut unpublished) {
                        self.publish();
                    }
                    self.claim_room(record, until)
                }
            };
            let written = wrap.and_then(|wrap| {
                self.write_unpublished(size, wrap, RECORD_MESSAGE, |dst| write(index, dst))
                    .map_err(PutFailure::Encode)
            });
            if let Err(failure) = written {
                result = Err((index, failure));
                break;
            }
            unpublished = true;
        }
        if unpublished {
            self.publish();
        }
        result
    }

    /// Whether this half is still the attached producer (not taken over by another
    /// process).
    pub(crate) fn is_attached(&self) -> bool {
        self.inner.is_owner(Side::Producer, self.owner)
    }

    /// Closes the queue.
    pub(crate) fn close_queue(&self) {
        self.inner.close();
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
    /// Whether a blocked get checks that the producer's process lives (pipes).
    peer_check: bool,
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
            .map_err(GetFailure::into_get_error)
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
            .map_err(GetFailure::into_get_timeout_error)
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
        self.get_until(Until::Now)
            .map_err(GetFailure::into_try_get_error)
    }

    fn get_until(&mut self, until: Until) -> Result<T, GetFailure> {
        self.get_record_codec(until, read_postcard)
            .and_then(|decoded| decoded.map_err(GetFailure::Decode))
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

impl<T> Consumer<T> {
    /// Whether a record is published past our head: `Ok(())`, or why none will come (the
    /// queue is closed and drained, or, with `peer_check` and `check`, the producer died
    /// and everything it published was taken).
    fn try_ready(&mut self, check: bool) -> Attempt<Result<(), Stop>> {
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
                Err(Stop::Closed)
            });
        }
        if self.peer_check && check && self.inner.side_dead(Side::Producer) {
            // What it published before dying is visible now. [data] Acquire, as above.
            self.cached_tail = h.tail.load(Ordering::Acquire);
            return Attempt::Done(if self.head != self.cached_tail {
                Ok(())
            } else {
                Err(Stop::PeerDied)
            });
        }
        Attempt::Blocked {
            poll: self.peer_check,
        }
    }

    /// Waits until a record is ready or none will come; `Ok(false)` when `until` passed
    /// first. Takes nothing.
    pub(crate) fn poll_until(&mut self, until: Until) -> Result<bool, GetFailure> {
        let ready = match until {
            Until::Now => match self.try_ready(true) {
                Attempt::Done(r) => Some(r),
                Attempt::Blocked { .. } => None,
            },
            // The common case first: a record is ready, no `Arc` clone needed.
            Until::Deadline(deadline) => match self.try_ready(false) {
                Attempt::Done(r) => Some(r),
                Attempt::Blocked { .. } => {
                    let inner = Arc::clone(&self.inner);
                    inner
                        .data()
                        .block_on(self.spin, deadline, |check| self.try_ready(check))
                        .or_else(|| {
                            // A deadline that passed before the first sleep skipped the
                            // costly checks: make them once before reporting a time-out.
                            match self.try_ready(true) {
                                Attempt::Done(r) => Some(r),
                                Attempt::Blocked { .. } => None,
                            }
                        })
                }
            },
        };
        match ready {
            None => Ok(false),
            Some(Ok(())) => Ok(true),
            Some(Err(Stop::Closed)) => Err(GetFailure::Closed),
            Some(Err(Stop::PeerDied)) => Err(GetFailure::PeerDied),
        }
    }

    /// Whether this half is still the attached consumer (not taken over by another
    /// process).
    pub(crate) fn is_attached(&self) -> bool {
        self.inner.is_owner(Side::Consumer, self.owner)
    }

    /// Closes the queue.
    pub(crate) fn close_queue(&self) {
        self.inner.close();
    }

    /// Takes the next record and hands its payload to `read`; the record's bytes are
    /// released to the producer when `read` returns (or panics).
    pub(crate) fn get_record<R>(
        &mut self,
        until: Until,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, GetFailure> {
        self.get_record_codec(until, |bytes, _| read(bytes))
    }

    /// [`get_record`](Self::get_record), also handing `read` how the payload is encoded:
    /// [`CODEC_POSTCARD`] or [`CODEC_PLAIN`] (a [`RECORD_PLAIN`] record).
    fn get_record_codec<R>(
        &mut self,
        until: Until,
        read: impl FnOnce(&[u8], u32) -> R,
    ) -> Result<R, GetFailure> {
        if !self.poll_until(until)? {
            return Err(GetFailure::Empty);
        }
        let (offset, len, new_head, codec) = match self.locate() {
            Ok(found) => found,
            Err(e) => {
                self.skip_garbage();
                return Err(GetFailure::Decode(e));
            }
        };
        let _advance = Advance {
            inner: &self.inner,
            head: &mut self.head,
            received: &mut self.received,
            new_head,
        };
        self.inner.track(offset, len, false);
        // SAFETY: the record's `len` payload bytes lie inside the ring at `offset`
        // (checked by `locate`), were published by the producer (Acquire of tail) and are
        // not written again before `_advance` publishes the new head, after `read` returns.
        let payload = unsafe { std::slice::from_raw_parts(self.inner.ring_at(offset), len) };
        Ok(read(payload, codec))
    }

    /// The record at our head, which must be ready (`head != cached_tail`): the ring
    /// offset and length of its payload, the head past it and its codec; an error for
    /// garbage.
    fn locate(&self) -> Result<(usize, usize, u64, u32), CodecError> {
        let ring = self.inner.config.ring;
        let max = self.inner.config.max_message;
        let mut head = self.head;
        let mut offset = (head % ring as u64) as usize;
        self.inner.track(offset, RECORD_HEADER_LEN, false);
        // SAFETY: head < tail (published with the Acquire of `try_ready`), so a record
        // header lies at `offset`, 8-aligned with 8 bytes to the ring's end.
        let (mut len, mut kind) = unsafe { read_record_header(self.inner.ring_at(offset)) };
        if kind == RECORD_WRAP {
            head += (ring - offset) as u64;
            offset = 0;
            self.inner.track(0, RECORD_HEADER_LEN, false);
            // SAFETY: the producer publishes a wrap marker together with the record after
            // it, at offset 0, so the same holds there.
            (len, kind) = unsafe { read_record_header(self.inner.ring_at(0)) };
        }
        let len = len as usize;
        let codec = match kind {
            RECORD_MESSAGE => CODEC_POSTCARD,
            RECORD_PLAIN => CODEC_PLAIN,
            _ => u32::MAX,
        };
        if codec == u32::MAX
            || len > max
            || offset + record_len(len) > ring
            || head >= self.cached_tail
        {
            return Err(CodecError::corrupt(&format!(
                "record kind {kind}, length {len}"
            )));
        }
        Ok((
            offset + RECORD_HEADER_LEN,
            len,
            head + record_len(len) as u64,
            codec,
        ))
    }

    /// Garbage in the ring (a faulty writer): drops everything published so far.
    fn skip_garbage(&mut self) {
        let tail = self.cached_tail;
        drop(Advance {
            inner: &self.inner,
            head: &mut self.head,
            received: &mut self.received,
            new_head: tail,
        });
    }

    /// Takes up to `max` records, waiting (per `until`) for the first one only, and hands
    /// each payload to `read`; the head is published once, when the batch ends (even if
    /// `read` panics). Stops after a record that `read` fails on.
    fn get_records(
        &mut self,
        max: usize,
        until: Until,
        mut read: impl FnMut(&[u8], u32) -> Result<(), CodecError>,
    ) -> Result<usize, GetFailure> {
        if max == 0 {
            return Ok(0);
        }
        if !self.poll_until(until)? {
            return Err(GetFailure::Empty);
        }
        let mut batch = BatchAdvance {
            consumer: self,
            taken: false,
        };
        let mut got = 0;
        loop {
            let c = &mut *batch.consumer;
            if got > 0 && !matches!(c.try_ready(false), Attempt::Done(Ok(()))) {
                return Ok(got);
            }
            let (offset, len, new_head, codec) = match c.locate() {
                Ok(found) => found,
                Err(e) => {
                    drop(batch);
                    self.skip_garbage();
                    return Err(GetFailure::Decode(e));
                }
            };
            c.inner.track(offset, len, false);
            // SAFETY: as in `get_record`: the payload is published and is not written
            // again before `batch` publishes the new head, after `read` returns.
            let payload = unsafe { std::slice::from_raw_parts(c.inner.ring_at(offset), len) };
            // Local only: the producer sees the new head when `batch` publishes it.
            c.head = new_head;
            c.received += 1;
            batch.taken = true;
            got += 1;
            read(payload, codec).map_err(GetFailure::Decode)?;
            if got == max {
                return Ok(got);
            }
        }
    }
}

/// Publishes a batch's consumer indices once, when dropped (even if decoding panics).
struct BatchAdvance<'a, T> {
    consumer: &'a mut Consumer<T>,
    taken: bool,
}

impl<T> Drop for BatchAdvance<'_, T> {
    fn drop(&mut self) {
        if !self.taken {
            return;
        }
        let c = &*self.consumer;
        let h = c.inner.header();
        h.received.store(c.received, Ordering::Relaxed);
        // [space] Release: pairs with the producer's Acquire load of `head`.
        h.head.store(c.head, Ordering::Release);
        c.inner.space().notify();
    }
}

mod batch;
mod plain;
mod raw;

/// Under loom, the race-detector cells of a ring of `ring` bytes.
#[cfg(loom)]
fn loom_cells(ring: usize) -> Box<[loom::cell::UnsafeCell<()>]> {
    (0..ring / RECORD_ALIGN)
        .map(|_| loom::cell::UnsafeCell::new(()))
        .collect()
}

/// An [`SpscQueue`] ring with loom's atomics, so that `tests/loom_spsc.rs` can model-check
/// the record protocol (room checks with cached indices, wrap markers, publication of the
/// tail and head, close) through the real `put_record` / `get_record` code. The ring lives
/// in an anonymous segment, like a real queue's; every ring access is reported to loom's
/// race detector (see `SpscInner::track`).
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model {
    use std::sync::Arc;

    use shm_segment::{ObjectKind, SegmentOptions};

    use super::{Consumer, GetFailure, Producer, PutFailure, SpscConfig, SpscInner, Until};
    use crate::layout::SpscHeader;
    use crate::sync::{AtomicU32, AtomicU64};

    /// Why a `try_` call did nothing.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Stopped {
        /// The ring is full (put) or empty (get).
        Blocked,
        /// The queue is closed (and, for a get, drained).
        Closed,
    }

    /// A ring to split into a [`ModelProducer`] and a [`ModelConsumer`].
    pub struct ModelSpsc {
        inner: Arc<SpscInner>,
    }

    impl ModelSpsc {
        /// A ring of `ring` bytes (a power of two, at least two records of `max_message`)
        /// holding at most `capacity` records. Call inside `loom::model`.
        ///
        /// # Panics
        ///
        /// If the segment cannot be made.
        pub fn new(ring: usize, capacity: u64, max_message: usize) -> Self {
            let config = SpscConfig {
                capacity,
                max_message,
                ring,
            };
            assert!(ring.is_power_of_two() && ring >= 2 * super::record_len(max_message));
            let segment = SegmentOptions::new(ObjectKind::SPSC_QUEUE)
                .len(config.total_len())
                .create_anonymous_with(|_| ())
                .expect("anonymous segment");
            let header = segment.data().cast::<SpscHeader>();
            // SAFETY: the data area is 128-byte aligned and holds the header and the ring;
            // nobody else sees it yet. loom's atomics must be constructed, not zeroed.
            unsafe {
                header.as_ptr().write(SpscHeader {
                    magic: AtomicU64::new(0),
                    version: AtomicU32::new(0),
                    closed: AtomicU32::new(0),
                    capacity: AtomicU64::new(0),
                    max_message: AtomicU64::new(0),
                    ring_len: AtomicU64::new(0),
                    ring_offset: AtomicU64::new(0),
                    producer_owner: AtomicU64::new(0),
                    consumer_owner: AtomicU64::new(0),
                    _pad0: [0; 8],
                    tail: AtomicU64::new(0),
                    sent: AtomicU64::new(0),
                    _pad1: [0; 14],
                    head: AtomicU64::new(0),
                    received: AtomicU64::new(0),
                    _pad2: [0; 14],
                    data_seq: AtomicU32::new(0),
                    data_waiters: AtomicU32::new(0),
                    _pad3: [0; 15],
                    space_seq: AtomicU32::new(0),
                    space_waiters: AtomicU32::new(0),
                    _pad4: [0; 15],
                });
            }
            let inner = SpscInner::new(Arc::new(segment), header, config);
            config.initialise_header(inner.header());
            ModelSpsc {
                inner: Arc::new(inner),
            }
        }

        /// The two halves, attached as the real ones are.
        ///
        /// # Panics
        ///
        /// If a half is attached already.
        pub fn split(&self) -> (ModelProducer, ModelConsumer) {
            let producer = self.inner.producer(0, false, false).expect("producer");
            let consumer = self.inner.consumer(0, false, false).expect("consumer");
            (ModelProducer(producer), ModelConsumer(consumer))
        }
    }

    /// The producer half, sending byte records.
    pub struct ModelProducer(Producer<()>);

    impl ModelProducer {
        /// One non-blocking `put_record` of `payload`.
        ///
        /// # Panics
        ///
        /// On a failure other than full or closed.
        pub fn try_put(&mut self, payload: &[u8]) -> Result<(), Stopped> {
            self.0
                .put_record(payload.len(), Until::Now, |dst| {
                    dst.copy_from_slice(payload);
                    Ok(())
                })
                .map_err(|failure| match failure {
                    PutFailure::Full => Stopped::Blocked,
                    PutFailure::Closed => Stopped::Closed,
                    _ => panic!("unexpected put failure"),
                })
        }

        /// The producer's tail: bytes written into the ring so far, wrap padding included.
        pub fn tail(&self) -> u64 {
            self.0.tail
        }

        /// Closes the queue.
        pub fn close(&self) {
            self.0.close_queue();
        }
    }

    /// The consumer half, taking byte records.
    pub struct ModelConsumer(Consumer<()>);

    impl ModelConsumer {
        /// One non-blocking `get_record`: the payload of the next record.
        ///
        /// # Panics
        ///
        /// On a corrupt record.
        pub fn try_get(&mut self) -> Result<Vec<u8>, Stopped> {
            self.0
                .get_record(Until::Now, <[u8]>::to_vec)
                .map_err(|failure| match failure {
                    GetFailure::Empty => Stopped::Blocked,
                    GetFailure::Closed => Stopped::Closed,
                    GetFailure::PeerDied => panic!("no peer check in the model"),
                    GetFailure::Decode(e) => panic!("corrupt record: {e}"),
                })
        }
    }
}
