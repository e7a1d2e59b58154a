//! [`Queue`]: a bounded, lock-free, many-producer many-consumer queue of serde values in a
//! shared-memory segment.

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
    CodecError, CreateError, GetError, GetTimeoutError, OpenError, PutError, PutTimeoutError,
    TryGetError, TryPutError,
};
use crate::layout::{
    CODEC_POSTCARD, LAYOUT_VERSION, LINE, QUEUE_MAGIC, QueueHeader, SLOT_HEADER_LEN, STATE_CLAIMED,
    STATE_FREE, STATE_PUBLISHED, STATE_READING, SlotHeader, TOMBSTONE_LEN, pack_seq, tag_distance,
    unpack_seq,
};
use crate::sync::{self, Ordering};
use crate::sys;
use crate::wait::{Attempt, DEFAULT_SPIN_LIMIT, Event};

/// Default [`capacity`](QueueBuilder::capacity): messages the queue holds.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Default [`max_message_size`](QueueBuilder::max_message_size) in bytes.
pub const DEFAULT_MAX_MESSAGE: usize = 1024;

const HEADER_LEN: usize = std::mem::size_of::<QueueHeader>();
const ROLE_PRODUCER: u64 = 0;
const ROLE_CONSUMER: u64 = 1;

/// Options for a new [`Queue`]; made by [`Queue::builder`].
///
/// # Examples
///
/// ```
/// use shm_queue::Queue;
/// let q = Queue::<String>::builder().capacity(8).max_message_size(64).create_anonymous()?;
/// assert_eq!((q.capacity(), q.max_message_size()), (8, 64));
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct QueueBuilder<T> {
    capacity: usize,
    max_message: usize,
    spin: u32,
    /// The segment kind (`QUEUE`, or a wrapper's kind).
    kind: ObjectKind,
    /// Bytes reserved after the slots for a wrapper's own structure (128-byte aligned).
    trailer: usize,
    _type: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> QueueBuilder<T> {
    /// How many messages the queue holds (default [`DEFAULT_CAPACITY`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::builder().capacity(3).create_anonymous()?;
    /// assert_eq!(q.capacity(), 3);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The largest encoded message in bytes (default [`DEFAULT_MAX_MESSAGE`]); every slot
    /// reserves this much.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<Vec<u8>>::builder().max_message_size(8).create_anonymous()?;
    /// assert!(q.put(vec![0; 100]).is_err());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// How many times a blocked call retries before it sleeps (default
    /// [`DEFAULT_SPIN_LIMIT`]); a property of the handle, not of the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::builder().spin_limit(0).create_anonymous()?;
    /// assert_eq!(q.spin_limit(), 0);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn spin_limit(mut self, spins: u32) -> Self {
        self.spin = spins;
        self
    }

    /// Creates an anonymous queue: shared by passing the handle (serde) to other processes,
    /// freed by the kernel when the last holder exits.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidConfig`] for a capacity or message size of 0 or sizes that
    /// overflow; [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::builder().create_anonymous()?;
    /// assert!(q.name().is_none());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create_anonymous(&self) -> Result<Queue<T>, CreateError> {
        let (options, config) = self.segment_options()?;
        let segment = options.create_anonymous_with(|seg| config.initialise(seg))?;
        Ok(Queue::from_segment_unchecked(segment, config, self.spin))
    }

    /// Creates the named queue `name` (`/dev/shm/multiproc.<name>`); other processes
    /// [`open`](Queue::open) it. The name is removed when this handle (the creator's) is
    /// dropped.
    ///
    /// # Errors
    ///
    /// As [`create_anonymous`](Self::create_anonymous), plus the segment layer's
    /// `AlreadyExists`, `InvalidName`, `PermissionDenied`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-queue-create-{}", std::process::id());
    /// let q = shm_queue::Queue::<u8>::builder().create(&name)?;
    /// assert_eq!(q.name(), Some(name.as_str()));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<Queue<T>, CreateError> {
        let (options, config) = self.segment_options()?;
        let segment = options.create_with(name, |seg| config.initialise(seg))?;
        Ok(Queue::from_segment_unchecked(segment, config, self.spin))
    }

    fn segment_options(&self) -> Result<(SegmentOptions, Config), CreateError> {
        let invalid = |reason: &str| CreateError::InvalidConfig {
            reason: reason.to_owned(),
        };
        if self.capacity == 0 {
            return Err(invalid("capacity must be at least 1"));
        }
        if self.max_message == 0 || self.max_message > u32::MAX as usize / 2 {
            return Err(invalid(
                "max_message_size must be between 1 and 2^31 - 1 bytes",
            ));
        }
        let stride = (SLOT_HEADER_LEN + self.max_message).next_multiple_of(64);
        let len = stride
            .checked_mul(self.capacity)
            .and_then(|n| n.checked_add(HEADER_LEN))
            .map(|n| n.next_multiple_of(LINE))
            .and_then(|n| n.checked_add(self.trailer))
            .filter(|&n| n <= 1 << 40)
            .ok_or_else(|| invalid("capacity * slot size exceeds 1 TiB"))?;
        let config = Config {
            capacity: self.capacity as u64,
            max_message: self.max_message,
            stride,
        };
        let options = SegmentOptions::new(self.kind)
            .fingerprint(TypeFingerprint::of::<T>())
            .len(len);
        Ok((options, config))
    }

    /// The same options for a wrapper type stored under segment `kind`, with `trailer`
    /// bytes after the slots (see [`Queue::trailer`]).
    pub(crate) fn wrapper(mut self, kind: ObjectKind, trailer: usize) -> Self {
        self.kind = kind;
        self.trailer = trailer;
        self
    }
}

/// The queue's shape, from the builder or validated from the header.
#[derive(Debug, Clone, Copy)]
struct Config {
    capacity: u64,
    max_message: usize,
    stride: usize,
}

impl Config {
    /// Writes the header and the slots of a new segment (before it is marked ready).
    fn initialise(&self, seg: &Segment) {
        let base = seg.data();
        // SAFETY: the segment has HEADER_LEN + capacity * stride data bytes (we asked for
        // them), its data area is 128-byte aligned, the memory is zeroed (a valid state for
        // every atomic of the layout), and no other process sees it before "ready".
        let header = unsafe { &*base.as_ptr().cast::<QueueHeader>() };
        header.magic.store(QUEUE_MAGIC, Ordering::Relaxed);
        header.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        header.capacity.store(self.capacity, Ordering::Relaxed);
        header
            .max_message
            .store(self.max_message as u64, Ordering::Relaxed);
        header
            .slot_stride
            .store(self.stride as u64, Ordering::Relaxed);
        header
            .slots_offset
            .store(HEADER_LEN as u64, Ordering::Relaxed);
        for i in 0..self.capacity {
            // SAFETY: slot `i` lies within the segment (see above) and is 8-aligned
            // (HEADER_LEN and the stride are multiples of 64).
            let slot = unsafe {
                &*base
                    .as_ptr()
                    .add(HEADER_LEN + i as usize * self.stride)
                    .cast::<SlotHeader>()
            };
            slot.seq
                .store(pack_seq(i, STATE_FREE, 0), Ordering::Relaxed);
        }
        // The segment layer publishes all of this with its Release store of "ready".
    }

    /// Reads and checks the configuration of an opened segment.
    fn validate(seg: &Segment) -> Result<Config, OpenError> {
        let corrupt = |reason: String| OpenError::Corrupt { reason };
        if seg.data_len() < HEADER_LEN {
            return Err(corrupt(format!(
                "data area of {} bytes is smaller than the header",
                seg.data_len()
            )));
        }
        // SAFETY: at least HEADER_LEN bytes are mapped at the 128-byte aligned data area;
        // the header holds only atomics, valid for any bit pattern.
        let header = unsafe { &*seg.data().as_ptr().cast::<QueueHeader>() };
        if header.magic.load(Ordering::Relaxed) != QUEUE_MAGIC {
            return Err(corrupt("bad queue magic".into()));
        }
        let version = header.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(corrupt(format!(
                "queue layout version {version}, expected {LAYOUT_VERSION}"
            )));
        }
        let capacity = header.capacity.load(Ordering::Relaxed);
        let max_message = header.max_message.load(Ordering::Relaxed);
        let stride = header.slot_stride.load(Ordering::Relaxed);
        let offset = header.slots_offset.load(Ordering::Relaxed);
        let fits = stride
            .checked_mul(capacity)
            .and_then(|n| n.checked_add(HEADER_LEN as u64))
            .is_some_and(|n| n <= seg.data_len() as u64);
        if capacity == 0
            || max_message == 0
            || max_message > u64::from(u32::MAX / 2)
            || !stride.is_multiple_of(64)
            || stride < SLOT_HEADER_LEN as u64 + max_message
            || offset != HEADER_LEN as u64
            || !fits
        {
            return Err(corrupt(format!(
                "capacity {capacity}, max message {max_message}, stride {stride}, offset {offset} do not fit a \
                 data area of {} bytes",
                seg.data_len()
            )));
        }
        Ok(Config {
            capacity,
            max_message: max_message as usize,
            stride: stride as usize,
        })
    }
}

/// The ring protocol over a mapped [`QueueHeader`] and its slots (in a segment, or on the
/// heap for the loom model).
pub(crate) struct Ring {
    header: NonNull<QueueHeader>,
    config: Config,
    /// Set once a get of this process found the queue closed and drained, which stays
    /// true (see `close_state`): later gets answer at once instead of scanning again.
    drained: std::sync::atomic::AtomicBool,
}

// SAFETY: `header` points to memory that outlives the `Ring` (the segment mapping kept by
// `Inner`, or the model's heap block) and never moves; all shared state behind it is
// accessed through atomics, or through raw pointers into slots the protocol gives one
// owner at a time.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

/// The process-local state shared by clones of a handle.
struct Inner {
    ring: Ring,
    segment: Segment,
}

impl std::ops::Deref for Inner {
    type Target = Ring;

    fn deref(&self) -> &Ring {
        &self.ring
    }
}

impl Ring {
    fn new(header: NonNull<QueueHeader>, config: Config) -> Self {
        Ring {
            header,
            config,
            drained: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn header(&self) -> &QueueHeader {
        // SAFETY: validated at open/create: the header lies in the mapping, aligned, and
        // holds only atomics.
        unsafe { self.header.as_ref() }
    }

    /// The slot serving `position`, and its payload.
    fn slot(&self, position: u64) -> (&SlotHeader, *mut u8) {
        let index = (position % self.config.capacity) as usize;
        // SAFETY: index < capacity, and HEADER_LEN + capacity * stride bytes are mapped
        // (validated); slots are 64-byte aligned; the slot header holds only atomics.
        unsafe {
            let slot = self
                .header
                .as_ptr()
                .cast::<u8>()
                .add(HEADER_LEN + index * self.config.stride);
            (&*slot.cast::<SlotHeader>(), slot.add(SLOT_HEADER_LEN))
        }
    }

    fn not_empty(&self) -> Event<'_> {
        let h = self.header();
        Event {
            seq: &h.not_empty_seq,
            waiters: &h.not_empty_waiters,
        }
    }

    fn not_full(&self) -> Event<'_> {
        let h = self.header();
        Event {
            seq: &h.not_full_seq,
            waiters: &h.not_full_waiters,
        }
    }

    /// Records the caller as the owner of `slot` for `position` in `role`, with its start
    /// time, so that others can tell whether it is the very process that claimed it.
    fn stamp(slot: &SlotHeader, position: u64, role: u64, start_time: u64) {
        slot.owner_start.store(start_time, Ordering::Relaxed);
        // [stamp] Release: pairs with the Acquire load in `owner_alive`.
        slot.owner_stamp
            .store(position << 1 | role, Ordering::Release);
    }

    /// Whether `pid`, which owns `slot` for `position` in `role`, is still alive. Uses the
    /// start time when the owner stamped it; otherwise (killed between claiming and
    /// stamping) any live process with that pid counts as the owner.
    fn owner_alive(slot: &SlotHeader, position: u64, role: u64, pid: u32) -> bool {
        // [stamp] Acquire: pairs with the Release store in `stamp`.
        let stamped = slot.owner_stamp.load(Ordering::Acquire) == (position << 1 | role);
        let start = stamped.then(|| slot.owner_start.load(Ordering::Relaxed));
        sys::process_alive(pid, start)
    }

    /// One try at claiming a slot to write: `Ok(position)` with the slot CLAIMED by `pid`.
    fn try_claim_put(&self, pid: u32, check_owners: bool) -> Attempt<Result<u64, Closed>> {
        let h = self.header();
        let capacity = self.config.capacity;
        loop {
            // [closed] Acquire: pairs with the Release store in `close`.
            if h.closed.load(Ordering::Acquire) != 0 {
                return Attempt::Done(Err(Closed));
            }
            let t = h.tail.load(Ordering::Relaxed);
            let (slot, _) = self.slot(t);
            // [free] Acquire: pairs with the Release stores that free a slot.
            let seq = slot.seq.load(Ordering::Acquire);
            let (tag, state, owner) = unpack_seq(seq);
            let distance = tag_distance(tag, t);
            if distance == 0 && state == STATE_FREE {
                let claimed = pack_seq(t, STATE_CLAIMED, pid);
                // [free] Acquire on success, as above: the last reader is done with it.
                // [close] SeqCst: see `withdraw_if_closed`.
                if slot
                    .seq
                    .compare_exchange(seq, claimed, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    let _ = h
                        .tail
                        .compare_exchange(t, t + 1, Ordering::Relaxed, Ordering::Relaxed);
                    return self.withdraw_if_closed(t, pid);
                }
            } else if distance >= 0 {
                // Position `t` is taken (or long done): move the hint on.
                let _ = h
                    .tail
                    .compare_exchange(t, t + 1, Ordering::Relaxed, Ordering::Relaxed);
            } else if state == STATE_READING {
                // The message of position `t - capacity` is being read.
                let reader = t - capacity;
                if !check_owners || Self::owner_alive(slot, reader, ROLE_CONSUMER, owner) {
                    return Attempt::Blocked { poll: true };
                }
                // Its reader died: the message is lost; free the slot for position `t`.
                // [free] Release: pairs with the Acquire loads of producers.
                let _ = slot.seq.compare_exchange(
                    seq,
                    pack_seq(t, STATE_FREE, 0),
                    Ordering::Release,
                    Ordering::Relaxed,
                );
            } else {
                // Full: the slot still holds (or is getting) the message of `t - capacity`.
                return Attempt::Blocked {
                    poll: state != STATE_PUBLISHED,
                };
            }
        }
    }

    /// After a put claimed position `position`: `Ok(position)`, or, when the queue was
    /// closed meanwhile, `Err(Closed)` with a tombstone published in the slot.
    ///
    /// A put checks `closed` before it claims, but `close` may come between that check and
    /// the claim, and a get may then find the queue closed and empty and report `Closed`
    /// while this put still goes on to publish and return `Ok`. So the put looks again
    /// after claiming. The claim, this load, `close`'s store and the loads of
    /// `close_state` are all `SeqCst` and so fall in one total order: either this load
    /// comes after the close and the put withdraws, or the claim comes before the
    /// `close_state` scan (which follows the close), which then sees it and waits for it.
    fn withdraw_if_closed(&self, position: u64, pid: u32) -> Attempt<Result<u64, Closed>> {
        sync::seq_cst_for_loom();
        // [close] SeqCst: see above.
        if self.header().closed.load(Ordering::SeqCst) == 0 {
            return Attempt::Done(Ok(position));
        }
        drop(Publish {
            inner: self,
            position,
            pid,
            len: TOMBSTONE_LEN,
            codec: CODEC_POSTCARD,
            notify: true,
        });
        Attempt::Done(Err(Closed))
    }

    /// What a get that found position `hd` empty (nothing claimed there) does next: sleep
    /// (`Open`), wait for a message still being written (`Draining`), or report `Closed`
    /// (`Drained`).
    ///
    /// A closed queue is drained when no position from `hd` on (in any lap) holds a
    /// message or a claim by a live producer. A put that returned `Ok` claimed its slot
    /// before the close in the `SeqCst` order (see `withdraw_if_closed`), so the scan,
    /// which loads `closed` first, sees that claim or what followed it. Once a scan found
    /// nothing, nothing more can come (later claims all withdraw), so the verdict is
    /// cached for this process.
    fn close_state(&self, hd: u64, check_owners: bool) -> CloseState {
        if self.drained.load(std::sync::atomic::Ordering::Relaxed) {
            return CloseState::Drained;
        }
        // [close] SeqCst: see above.
        if self.header().closed.load(Ordering::SeqCst) == 0 {
            return CloseState::Open;
        }
        sync::seq_cst_for_loom();
        // Every slot once, each as the position from `hd` on that it serves. `hd` may be
        // stale by now (other gets moved on, putters lapped the ring), so a slot may hold
        // a later lap's claim or message: that counts too. An earlier lap's cannot be
        // waiting: the head passed it, which it does only past taken positions.
        for position in hd..hd + self.config.capacity {
            let (slot, _) = self.slot(position);
            // [close] SeqCst, as above; [publish] Acquire included.
            let (tag, state, owner) = unpack_seq(slot.seq.load(Ordering::SeqCst));
            let distance = tag_distance(tag, position);
            if distance < 0 {
                continue;
            }
            let position = position + distance as u64;
            let coming = match state {
                STATE_PUBLISHED => true,
                STATE_CLAIMED => {
                    !check_owners || Self::owner_alive(slot, position, ROLE_PRODUCER, owner)
                }
                _ => false,
            };
            if coming {
                return CloseState::Draining;
            }
        }
        self.drained
            .store(true, std::sync::atomic::Ordering::Relaxed);
        CloseState::Drained
    }

    /// One try at claiming a slot to read: `Ok(position)` with the slot READING by `pid`.
    fn try_claim_get(&self, pid: u32, check_owners: bool) -> Attempt<Result<u64, Closed>> {
        let h = self.header();
        let capacity = self.config.capacity;
        loop {
            let hd = h.head.load(Ordering::Relaxed);
            let (slot, _) = self.slot(hd);
            // [publish] Acquire: pairs with the Release store that publishes a message.
            let seq = slot.seq.load(Ordering::Acquire);
            let (tag, state, owner) = unpack_seq(seq);
            let distance = tag_distance(tag, hd);
            if distance > 0 || (distance == 0 && state == STATE_READING) {
                // Position `hd` is taken or done: move the hint on.
                let _ = h
                    .head
                    .compare_exchange(hd, hd + 1, Ordering::Relaxed, Ordering::Relaxed);
            } else if distance == 0 && state == STATE_PUBLISHED {
                let reading = pack_seq(hd, STATE_READING, pid);
                // [publish] Acquire on success, as above.
                if slot
                    .seq
                    .compare_exchange(seq, reading, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    let _ =
                        h.head
                            .compare_exchange(hd, hd + 1, Ordering::Relaxed, Ordering::Relaxed);
                    return Attempt::Done(Ok(hd));
                }
            } else if distance == 0 && state == STATE_CLAIMED {
                if !check_owners || Self::owner_alive(slot, hd, ROLE_PRODUCER, owner) {
                    return Attempt::Blocked { poll: true };
                }
                // Its producer died before publishing: skip the position.
                // [free] Release: pairs with the Acquire loads of producers.
                let freed = pack_seq(hd + capacity, STATE_FREE, 0);
                if slot
                    .seq
                    .compare_exchange(seq, freed, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    let _ =
                        h.head
                            .compare_exchange(hd, hd + 1, Ordering::Relaxed, Ordering::Relaxed);
                    self.not_full().notify();
                }
            } else {
                // Nothing claimed at `hd` yet (FREE for it, or the previous lap still being
                // read): empty, unless the queue is closed with messages still coming.
                return match self.close_state(hd, check_owners) {
                    CloseState::Open => Attempt::Blocked { poll: false },
                    CloseState::Draining => Attempt::Blocked { poll: true },
                    CloseState::Drained => Attempt::Done(Err(Closed)),
                };
            }
        }
    }
}

/// How far puts and gets have gone round a [`Queue`]'s ring: see [`Queue::positions`].
///
/// # Examples
///
/// ```
/// let q = shm_queue::Queue::<u8>::new()?;
/// q.put(7)?;
/// assert_eq!(q.positions(), shm_queue::Positions { put: 1, get: 0 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positions {
    /// Every put that has finished claiming its slot claimed a position below this one.
    pub put: u64,
    /// Every position below this one was taken by a get (or skipped: a dead producer's).
    pub get: u64,
}

/// The queue was closed.
struct Closed;

/// Whether a get that found the queue empty should sleep or report `Closed`.
enum CloseState {
    /// Not closed: sleep until woken.
    Open,
    /// Closed, but a message is still being written (or is published behind a position
    /// nobody claimed yet): wait for it.
    Draining,
    /// Closed and nothing more will come.
    Drained,
}

mod batch;
mod plain;
mod raw;

/// When a blocking operation gives up.
#[derive(Clone, Copy)]
enum Until {
    /// Try once.
    Now,
    /// Wait until the deadline (`None`: forever).
    Deadline(Option<Instant>),
}

/// How a put failed, without the value.
enum PutFailure {
    Full,
    Closed,
    TooLarge { size: usize, max: usize },
    Encode(CodecError),
}

/// How a get failed.
enum GetFailure {
    Empty,
    Closed,
    Decode(CodecError),
}

/// A bounded queue of `T` values shared by any number of producer and consumer processes
/// and threads; messages are `T` encoded with postcard into fixed-size slots of a
/// shared-memory segment.
///
/// The hot path takes no lock and makes no system call unless a side sleeps: a put claims
/// a slot with one compare-and-swap on the slot's sequence word, encodes the value
/// straight into it and publishes it with a release store; a get does the mirror image
/// (after Vyukov's bounded MPMC queue, with the claim on the slot instead of the tail so
/// the claimer's identity is recorded in the same atomic step). Blocking calls spin
/// briefly, then sleep on a futex; wakers skip the wake when nobody sleeps.
///
/// # Faults
///
/// See the [crate documentation](crate#fault-contract) for exactly what a killed producer
/// or consumer can lose.
///
/// # Examples
///
/// ```
/// use shm_queue::Queue;
///
/// let q = Queue::<(u32, String)>::new()?;
/// q.put((1, "one".into()))?;
/// assert_eq!(q.len(), 1);
/// assert_eq!(q.get()?, (1, "one".to_string()));
/// assert!(q.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    inner: Arc<Inner>,
    spin: u32,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: Arc::clone(&self.inner),
            spin: self.spin,
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.segment.name().map(|n| n.as_str()))
            .field("capacity", &self.inner.config.capacity)
            .field("max_message", &self.inner.config.max_message)
            .finish_non_exhaustive()
    }
}

/// How many processes and threads sleep in blocking calls of a queue right now.
///
/// # Examples
///
/// ```
/// let q = shm_queue::Queue::<u8>::new()?;
/// assert_eq!(q.waiting(), shm_queue::Waiting { getters: 0, putters: 0 });
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Sleeping in `get` / `get_timeout`.
    pub getters: u32,
    /// Sleeping in `put` / `put_timeout`.
    pub putters: u32,
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A new anonymous queue with the default capacity and message size.
    ///
    /// # Errors
    ///
    /// [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u64>::new()?;
    /// assert_eq!(q.capacity(), shm_queue::DEFAULT_CAPACITY);
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
    /// let q = shm_queue::Queue::<u64>::builder().capacity(2).create_anonymous()?;
    /// assert_eq!(q.capacity(), 2);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder {
            capacity: DEFAULT_CAPACITY,
            max_message: DEFAULT_MAX_MESSAGE,
            spin: DEFAULT_SPIN_LIMIT,
            kind: ObjectKind::QUEUE,
            trailer: 0,
            _type: PhantomData,
        }
    }

    /// Opens the named queue `name`, made by [`QueueBuilder::create`] in this or another
    /// process for the same `T`.
    ///
    /// # Errors
    ///
    /// [`OpenError::Segment`] with the segment layer's `NotFound`, `KindMismatch`,
    /// `TypeMismatch` (another `T`), `VersionMismatch`, ...; [`OpenError::Corrupt`] when the
    /// queue header is inconsistent.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-queue-open-{}", std::process::id());
    /// use shm_queue::Queue;
    /// let created = Queue::<u32>::builder().capacity(4).create(&name)?;
    /// let opened = Queue::<u32>::open(&name)?;
    /// created.put(5)?;
    /// assert_eq!(opened.get()?, 5);
    /// assert!(Queue::<u64>::open(&name).is_err()); // another element type
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::open_kind(name, ObjectKind::QUEUE)
    }

    /// Opens the named queue of a wrapper stored under segment `kind`.
    pub(crate) fn open_kind(name: &str, kind: ObjectKind) -> Result<Self, OpenError> {
        Self::from_segment(Self::segment_options(kind).open(name)?)
    }

    /// Opens the queue of a wrapper stored under segment `kind` from a serialised token.
    pub(crate) fn from_token(token: &SegmentToken, kind: ObjectKind) -> Result<Self, String> {
        let segment = token
            .open(&Self::segment_options(kind))
            .map_err(|e| e.to_string())?;
        Self::from_segment(segment).map_err(|e| e.to_string())
    }

    fn segment_options(kind: ObjectKind) -> SegmentOptions {
        SegmentOptions::new(kind).fingerprint(TypeFingerprint::of::<T>())
    }

    fn from_segment(segment: Segment) -> Result<Self, OpenError> {
        let config = Config::validate(&segment)?;
        Ok(Self::from_segment_unchecked(
            segment,
            config,
            DEFAULT_SPIN_LIMIT,
        ))
    }

    fn from_segment_unchecked(segment: Segment, config: Config, spin: u32) -> Self {
        let header = segment.data().cast::<QueueHeader>();
        Queue {
            inner: Arc::new(Inner {
                ring: Ring::new(header, config),
                segment,
            }),
            spin,
            _type: PhantomData,
        }
    }

    /// Puts `value` at the back, waiting as long as the queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`] when the queue is closed (before or while waiting);
    /// [`PutError::TooLarge`] when the encoded value exceeds the maximum message size;
    /// [`PutError::Encode`] when it fails to serialise. Nothing is enqueued then, and the
    /// value comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<String>::new()?;
    /// q.put("hello".to_string())?;
    /// assert_eq!(q.get()?, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
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
    /// [`PutTimeoutError::Timeout`] when the queue stayed full for `timeout` (never
    /// earlier), otherwise as [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// q.put_timeout(1, Duration::from_millis(10))?;
    /// assert_eq!(q.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
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
    /// [`TryPutError::Full`] when there is no room, otherwise as [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{Queue, TryPutError};
    /// let q = Queue::<u8>::builder().capacity(1).create_anonymous()?;
    /// q.try_put(1)?;
    /// assert_eq!(q.try_put(2).unwrap_err().into_inner(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
        self.put_until(value, Until::Now)
            .map_err(|(value, failure)| match failure {
                PutFailure::Full => TryPutError::Full(value),
                PutFailure::Closed => TryPutError::Closed(value),
                PutFailure::TooLarge { size, max } => TryPutError::TooLarge { value, size, max },
                PutFailure::Encode(error) => TryPutError::Encode { value, error },
            })
    }

    /// Takes the message at the front, waiting as long as the queue is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once the queue is closed and drained; [`GetError::Decode`] when
    /// the message cannot be decoded (it is removed; the queue stays usable).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// q.put(9)?;
    /// assert_eq!(q.get()?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(Until::Deadline(None))
            .map_err(|failure| match failure {
                GetFailure::Empty | GetFailure::Closed => GetError::Closed,
                GetFailure::Decode(e) => GetError::Decode(e),
            })
    }

    /// Takes the message at the front, waiting at most `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] when none arrived within `timeout` (never earlier),
    /// otherwise as [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// q.put(3)?;
    /// assert_eq!(q.get_timeout(Duration::from_secs(1))?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        let deadline = sys::deadline_after(timeout);
        self.get_until(Until::Deadline(deadline))
            .map_err(|failure| match failure {
                GetFailure::Empty => GetTimeoutError::Timeout,
                GetFailure::Closed => GetTimeoutError::Closed,
                GetFailure::Decode(e) => GetTimeoutError::Decode(e),
            })
    }

    /// Takes the message at the front if one is ready now.
    ///
    /// A message whose producer is still writing it is not ready, even when later ones are:
    /// `try_get` may report `Empty` while [`len`](Self::len) is not 0.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] when none is ready, otherwise as [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{Queue, TryGetError};
    /// let q = Queue::<u8>::new()?;
    /// assert_eq!(q.try_get(), Err(TryGetError::Empty));
    /// q.put(1)?;
    /// assert_eq!(q.try_get(), Ok(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.get_until(Until::Now).map_err(|failure| match failure {
            GetFailure::Empty => TryGetError::Empty,
            GetFailure::Closed => TryGetError::Closed,
            GetFailure::Decode(e) => TryGetError::Decode(e),
        })
    }

    fn put_until(&self, value: T, until: Until) -> Result<(), (T, PutFailure)> {
        let size = match encoded_size(&value) {
            Ok(size) => size,
            Err(e) => return Err((value, PutFailure::Encode(e))),
        };
        self.put_record(
            size,
            until,
            CODEC_POSTCARD,
            |payload| match encode_into_slice(&value, payload) {
                Ok(len) if len == size => Ok(()),
                Ok(_) => Err(CodecError::corrupt(
                    "the value encoded to a different size twice",
                )),
                Err(e) => Err(e),
            },
        )
        .map_err(|failure| (value, failure))
    }

    /// Claims a slot, lets `write` fill exactly `size` payload bytes, and publishes them
    /// (a tombstone when `write` fails or panics).
    fn put_record(
        &self,
        size: usize,
        until: Until,
        codec: u32,
        write: impl FnOnce(&mut [u8]) -> Result<(), CodecError>,
    ) -> Result<(), PutFailure> {
        let max = self.inner.config.max_message;
        if size > max {
            return Err(PutFailure::TooLarge { size, max });
        }
        let me = sys::current_process();
        let inner = &*self.inner;
        let claimed = match until {
            Until::Now => match inner.try_claim_put(me.pid, true) {
                Attempt::Done(r) => Some(r),
                Attempt::Blocked { .. } => None,
            },
            Until::Deadline(deadline) => inner.not_full().block_on(self.spin, deadline, |check| {
                inner.try_claim_put(me.pid, check)
            }),
        };
        let position = match claimed {
            None => return Err(PutFailure::Full),
            Some(Err(Closed)) => return Err(PutFailure::Closed),
            Some(Ok(position)) => position,
        };
        let (slot, payload) = inner.slot(position);
        Ring::stamp(slot, position, ROLE_PRODUCER, me.start_time);
        fault::point("shm_queue.put.claimed");
        // Publishes a tombstone unless disarmed, so that neither a failed encoding nor a
        // panicking `Serialize` leaves a slot claimed by a live process.
        let mut publish = Publish {
            inner,
            position,
            pid: me.pid,
            len: TOMBSTONE_LEN,
            codec,
            notify: true,
        };
        // SAFETY: the slot is CLAIMED by this process for `position`: no one else reads or
        // writes its payload, which holds `max` >= `size` bytes (stride >= header + max),
        // so a unique slice over `size` of them aliases nothing.
        let payload = unsafe { std::slice::from_raw_parts_mut(payload, size) };
        write(payload).map_err(PutFailure::Encode)?;
        publish.len = size as u32;
        drop(publish);
        Ok(())
    }

    fn get_until(&self, until: Until) -> Result<T, GetFailure> {
        self.get_record(until, read_postcard::<T>)?
            .map_err(GetFailure::Decode)
    }

    /// Claims the next message and hands its payload and codec to `read`; the slot is
    /// freed when `read` returns or panics.
    fn get_record<R>(
        &self,
        until: Until,
        read: impl FnOnce(&[u8], u32) -> R,
    ) -> Result<R, GetFailure> {
        let me = sys::current_process();
        let inner = &*self.inner;
        loop {
            let claimed = match until {
                Until::Now => match inner.try_claim_get(me.pid, true) {
                    Attempt::Done(r) => Some(r),
                    Attempt::Blocked { .. } => None,
                },
                Until::Deadline(deadline) => {
                    inner.not_empty().block_on(self.spin, deadline, |check| {
                        inner.try_claim_get(me.pid, check)
                    })
                }
            };
            let position = match claimed {
                None => return Err(GetFailure::Empty),
                Some(Err(Closed)) => return Err(GetFailure::Closed),
                Some(Ok(position)) => position,
            };
            let (slot, payload) = inner.slot(position);
            Ring::stamp(slot, position, ROLE_CONSUMER, me.start_time);
            fault::point("shm_queue.get.claimed");
            // Frees the slot when dropped, even if `read` panics.
            let _release = Release {
                inner,
                position,
                notify: true,
            };
            let len = slot.len.load(Ordering::Relaxed);
            if len == TOMBSTONE_LEN {
                continue;
            }
            if len as usize > inner.config.max_message {
                return Err(GetFailure::Decode(CodecError::corrupt(&format!(
                    "length {len} exceeds the maximum"
                ))));
            }
            // SAFETY: the slot is READING by this process for `position`: its producer
            // published `len` payload bytes (Acquire on claiming) and no one writes them
            // until `_release` frees the slot, after `read` returns.
            let payload = unsafe { std::slice::from_raw_parts(payload, len as usize) };
            return Ok(read(payload, slot.codec.load(Ordering::Relaxed)));
        }
    }

    /// How far puts and gets have gone round the ring since the queue was created; a
    /// snapshot that other processes may change at once.
    ///
    /// Every put that has finished claiming its slot claimed a position below `put`, and
    /// every position below `get` was taken (by a get, or skipped as the slot of a dead
    /// producer). So once `get` reaches a `put` read earlier, everything put before that
    /// read was taken: a way to wait for one producer's messages to be drained without
    /// waiting for the queue to be empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// let mark = q.positions().put;
    /// assert_eq!(mark, 2);
    /// q.get()?;
    /// assert!(q.positions().get < mark);
    /// q.get()?;
    /// assert!(q.positions().get >= mark);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn positions(&self) -> Positions {
        let h = self.inner.header();
        // Relaxed: hints, read in this order so that `get <= put` in a quiet queue.
        let get = h.head.load(Ordering::Relaxed);
        let put = h.tail.load(Ordering::Relaxed);
        Positions { put, get }
    }

    /// Messages in the queue, counting those being written or read right now; a snapshot
    /// that other processes may change at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert_eq!(q.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        let h = self.inner.header();
        let head = h.head.load(Ordering::Relaxed);
        let tail = h.tail.load(Ordering::Relaxed);
        tail.saturating_sub(head).min(self.inner.config.capacity) as usize
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_queue::Queue::<u8>::new()?.is_empty());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`len`](Self::len) has reached the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::builder().capacity(1).create_anonymous()?;
    /// q.put(1)?;
    /// assert!(q.is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// How many messages the queue holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::Queue::<u8>::builder().capacity(5).create_anonymous()?.capacity(), 5);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.config.capacity as usize
    }

    /// The largest encoded message in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::builder().max_message_size(16).create_anonymous()?;
    /// assert_eq!(q.max_message_size(), 16);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(&self) -> usize {
        self.inner.config.max_message
    }

    /// Closes the queue for every process: blocked calls wake; later puts fail with
    /// `Closed`; gets drain what is left, then fail with `Closed`. Closing is sticky.
    ///
    /// A put racing with `close` either fails with `Closed` or is delivered to a get that
    /// drains the queue: a get reports `Closed` only once every put that returned `Ok` was
    /// taken. (A put that claimed its slot just before seeing the close withdraws, leaving
    /// a tombstone that gets skip.) The first get of a process to find the queue closed and
    /// empty looks at every slot once, to be sure; later ones answer at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{Queue, TryGetError};
    /// let q = Queue::<u8>::new()?;
    /// q.close();
    /// assert!(q.is_closed());
    /// assert_eq!(q.try_get(), Err(TryGetError::Closed));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn close(&self) {
        // [closed] Release: pairs with the Acquire loads of `closed`. [close] SeqCst: see
        // `Ring::withdraw_if_closed`.
        self.inner.header().closed.store(1, Ordering::SeqCst);
        self.inner.not_empty().notify_always();
        self.inner.not_full().notify_always();
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_queue::Queue::<u8>::new()?.is_closed());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        // [closed] Acquire: pairs with the Release store in `close`.
        self.inner.header().closed.load(Ordering::Acquire) != 0
    }

    /// How many processes and threads sleep in blocking calls right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// assert_eq!(q.waiting().getters, 0);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn waiting(&self) -> Waiting {
        Waiting {
            getters: self.inner.not_empty().waiters(),
            putters: self.inner.not_full().waiters(),
        }
    }

    /// The queue's name, `None` for an anonymous queue.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::Queue::<u8>::new()?.name(), None);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner.segment.name().map(|n| n.as_str())
    }

    /// The wrapper area after the slots: its address (128-byte aligned) and length in
    /// bytes (0 for a plain queue).
    pub(crate) fn trailer(&self) -> (NonNull<u8>, usize) {
        let start = (HEADER_LEN + self.inner.config.capacity as usize * self.inner.config.stride)
            .next_multiple_of(LINE);
        let len = self.inner.segment.data_len().saturating_sub(start);
        // SAFETY: `start` <= data_len or `len` is 0; a pointer one past the slots of a
        // mapping of at least `start` bytes (or `len` 0, never dereferenced).
        let ptr = unsafe {
            self.inner
                .segment
                .data()
                .add(start.min(self.inner.segment.data_len()))
        };
        (ptr, len)
    }

    /// How many times a blocked call of this handle retries before it sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// assert_eq!(q.spin_limit(), shm_queue::DEFAULT_SPIN_LIMIT);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn spin_limit(&self) -> u32 {
        self.spin
    }

    /// Sets how many times a blocked call of this handle retries before it sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut q = shm_queue::Queue::<u8>::new()?;
    /// q.set_spin_limit(10);
    /// assert_eq!(q.spin_limit(), 10);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn set_spin_limit(&mut self, spins: u32) {
        self.spin = spins;
    }
}

/// Publishes a claimed slot when dropped: the message, or a tombstone.
struct Publish<'a> {
    inner: &'a Ring,
    position: u64,
    pid: u32,
    len: u32,
    /// The payload's encoding (`CODEC_*`).
    codec: u32,
    /// Whether to wake sleeping consumers (a batch wakes them once, at its end).
    notify: bool,
}

impl Drop for Publish<'_> {
    fn drop(&mut self) {
        let (slot, _) = self.inner.slot(self.position);
        slot.len.store(self.len, Ordering::Relaxed);
        slot.codec.store(self.codec, Ordering::Relaxed);
        // [publish] Release: pairs with the Acquire loads and claims of consumers.
        slot.seq.store(
            pack_seq(self.position, STATE_PUBLISHED, self.pid),
            Ordering::Release,
        );
        if self.notify {
            self.inner.not_empty().notify();
        }
    }
}

/// Frees a slot being read when dropped, for the producer of the next lap.
struct Release<'a> {
    inner: &'a Ring,
    position: u64,
    /// Whether to wake sleeping producers (a batch wakes them once, at its end).
    notify: bool,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let (slot, _) = self.inner.slot(self.position);
        let next = self.position + self.inner.config.capacity;
        // [free] Release: pairs with the Acquire loads and claims of producers.
        slot.seq
            .store(pack_seq(next, STATE_FREE, 0), Ordering::Release);
        if self.notify {
            self.inner.not_full().notify();
        }
    }
}

/// A queue handle serialises as its segment's token (a name, or a descriptor to reopen);
/// see `shm_segment::transfer`.
impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.segment.token().serialize(serializer)
    }
}

/// Opens the queue a serialised handle names, checking the kind and element type.
impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let token = SegmentToken::deserialize(deserializer)?;
        Self::from_token(&token, ObjectKind::QUEUE).map_err(serde::de::Error::custom)
    }
}

/// A [`Queue`] ring on the heap with loom's atomics, so that `tests/loom_*.rs` can
/// model-check the slot protocol (claims, publication, freeing, hint advancing) that the
/// shared-memory queue runs. Values are `u32`s written straight into the payload.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model {
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::ptr::NonNull;

    use super::{
        Attempt, Config, HEADER_LEN, Publish, ROLE_CONSUMER, ROLE_PRODUCER, Release, Ring,
        SLOT_HEADER_LEN,
    };
    use crate::layout::{
        LAYOUT_VERSION, QUEUE_MAGIC, QueueHeader, STATE_FREE, SlotHeader, TOMBSTONE_LEN, pack_seq,
    };
    use crate::sync::{AtomicU32, AtomicU64, Ordering};

    const MAX: usize = 8;

    /// A get found the ring closed and drained.
    #[derive(Debug, PartialEq, Eq)]
    pub struct RingClosed;

    /// A heap-backed ring of `u32`s.
    pub struct HeapRing {
        ring: Ring,
        layout: Layout,
    }

    impl HeapRing {
        /// A ring of `capacity` slots. Call inside `loom::model`.
        ///
        /// # Panics
        ///
        /// If the allocation fails.
        pub fn new(capacity: u64) -> Self {
            let stride = (SLOT_HEADER_LEN + MAX).next_multiple_of(64);
            let layout =
                Layout::from_size_align(HEADER_LEN + capacity as usize * stride, 128).unwrap();
            // SAFETY: the layout has a non-zero size.
            let base = unsafe { alloc_zeroed(layout) };
            let header = NonNull::new(base.cast::<QueueHeader>()).expect("allocation failed");
            // SAFETY: the block is 128-aligned and holds the header and `capacity` slots at
            // `stride` (a multiple of 64) apart; we initialise each in place before use.
            unsafe {
                header.as_ptr().write(QueueHeader {
                    magic: AtomicU64::new(QUEUE_MAGIC),
                    version: AtomicU32::new(LAYOUT_VERSION),
                    closed: AtomicU32::new(0),
                    capacity: AtomicU64::new(capacity),
                    max_message: AtomicU64::new(MAX as u64),
                    slot_stride: AtomicU64::new(stride as u64),
                    slots_offset: AtomicU64::new(HEADER_LEN as u64),
                    _pad0: [0; 10],
                    tail: AtomicU64::new(0),
                    _pad1: [0; 15],
                    head: AtomicU64::new(0),
                    _pad2: [0; 15],
                    not_empty_seq: AtomicU32::new(0),
                    not_empty_waiters: AtomicU32::new(0),
                    _pad3: [0; 15],
                    not_full_seq: AtomicU32::new(0),
                    not_full_waiters: AtomicU32::new(0),
                    _pad4: [0; 15],
                });
                for i in 0..capacity {
                    base.add(HEADER_LEN + i as usize * stride)
                        .cast::<SlotHeader>()
                        .write(SlotHeader {
                            seq: AtomicU64::new(pack_seq(i, STATE_FREE, 0)),
                            owner_stamp: AtomicU64::new(0),
                            owner_start: AtomicU64::new(0),
                            len: AtomicU32::new(0),
                            codec: AtomicU32::new(0),
                        });
                }
            }
            let config = Config {
                capacity,
                max_message: MAX,
                stride,
            };
            HeapRing {
                ring: Ring::new(header, config),
                layout,
            }
        }

        /// One `try_put` of `value` as process `pid`: whether it was enqueued.
        pub fn try_put(&self, pid: u32, value: u32) -> bool {
            let Attempt::Done(Ok(position)) = self.ring.try_claim_put(pid, false) else {
                return false;
            };
            let (slot, payload) = self.ring.slot(position);
            Ring::stamp(slot, position, ROLE_PRODUCER, 1);
            // SAFETY: the slot is CLAIMED by us for `position`; its payload has MAX bytes.
            unsafe { payload.cast::<u32>().write_unaligned(value) };
            drop(Publish {
                inner: &self.ring,
                position,
                pid,
                len: 4,
                codec: 0,
                notify: true,
            });
            true
        }

        /// One `try_get` as process `pid`.
        pub fn try_get(&self, pid: u32) -> Option<u32> {
            self.try_get_or_closed(pid).ok().flatten()
        }

        /// One `try_get` as process `pid` that tells closed from empty: `Ok(Some(value))`,
        /// `Ok(None)` when the ring is empty (or blocked), `Err(RingClosed)` when it is
        /// closed and drained.
        pub fn try_get_or_closed(&self, pid: u32) -> Result<Option<u32>, RingClosed> {
            loop {
                let position = match self.ring.try_claim_get(pid, false) {
                    Attempt::Done(Ok(position)) => position,
                    Attempt::Done(Err(_)) => return Err(RingClosed),
                    Attempt::Blocked { .. } => return Ok(None),
                };
                let (slot, payload) = self.ring.slot(position);
                Ring::stamp(slot, position, ROLE_CONSUMER, 1);
                let _release = Release {
                    inner: &self.ring,
                    position,
                    notify: true,
                };
                match slot.len.load(Ordering::Relaxed) {
                    TOMBSTONE_LEN => continue,
                    len => assert_eq!(len, 4, "a published slot holds the producer's length"),
                }
                // SAFETY: the slot is READING by us; the producer wrote 4 bytes.
                return Ok(Some(unsafe { payload.cast::<u32>().read_unaligned() }));
            }
        }

        /// Closes the ring.
        pub fn close(&self) {
            // [closed] Release: pairs with the Acquire loads in the claims. [close] SeqCst:
            // see `Ring::withdraw_if_closed`.
            self.ring.header().closed.store(1, Ordering::SeqCst);
        }
    }

    impl Drop for HeapRing {
        fn drop(&mut self) {
            let base = self.ring.header.as_ptr().cast::<u8>();
            // SAFETY: every structure was initialised in `new`; nothing else uses them now.
            unsafe {
                for i in 0..self.ring.config.capacity {
                    std::ptr::drop_in_place(
                        base.add(HEADER_LEN + i as usize * self.ring.config.stride)
                            .cast::<SlotHeader>(),
                    );
                }
                std::ptr::drop_in_place(self.ring.header.as_ptr());
                dealloc(base, self.layout);
            }
        }
    }
}
