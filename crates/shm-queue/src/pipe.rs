//! [`Pipe`] and [`Connection`]: Python's `multiprocessing.Pipe` on two SPSC rings in one
//! shared-memory segment, with peer liveness instead of end-of-file.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as LocalOrdering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shm_segment::transfer::SegmentToken;
use shm_segment::{ObjectKind, Segment, SegmentOptions, TypeFingerprint};

use crate::codec::{decode_from_slice, encode_into_slice, encoded_size};
use crate::error::{CodecError, CreateError, OpenError, RecvError, RecvTimeoutError, SendError};
use crate::layout::{
    LAYOUT_VERSION, LINE, PIPE_MAGIC, PipeHeader, RECORD_ALIGN, RECORD_HEADER_LEN, SpscHeader,
};
use crate::spsc::{Consumer, GetFailure, Producer, PutFailure, SpscConfig, SpscInner, Until};
use crate::sync::Ordering;
use crate::sys;
use crate::wait::DEFAULT_SPIN_LIMIT;

/// Default [`max_message_size`](PipeBuilder::max_message_size) of a [`Pipe`]: 64 KiB.
///
/// # Examples
///
/// ```
/// assert_eq!(shm_queue::DEFAULT_PIPE_MAX_MESSAGE, 65536);
/// ```
pub const DEFAULT_PIPE_MAX_MESSAGE: usize = 64 * 1024;
/// Default [`buffer_size`](PipeBuilder::buffer_size) of each direction of a [`Pipe`]:
/// 256 KiB.
///
/// # Examples
///
/// ```
/// let (rx, _tx) = shm_queue::Pipe::new()?;
/// assert_eq!(rx.buffer_size(), shm_queue::DEFAULT_PIPE_BUFFER);
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
pub const DEFAULT_PIPE_BUFFER: usize = 256 * 1024;

const PIPE_HEADER_LEN: usize = std::mem::size_of::<PipeHeader>();
const SPSC_HEADER_LEN: usize = std::mem::size_of::<SpscHeader>();

/// Options for a new pipe; made by [`Pipe::builder`].
///
/// # Examples
///
/// ```
/// let (mut a, mut b) = shm_queue::Pipe::builder().duplex(true).max_message_size(64).create_anonymous()?;
/// a.send(&"hi")?;
/// assert_eq!(b.recv::<String>()?, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PipeBuilder {
    duplex: bool,
    max_message: usize,
    buffer: usize,
}

impl PipeBuilder {
    /// Two directions (`true`, [`Pipe::duplex`]) or one (`false`, the default,
    /// [`Pipe::new`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shm_queue::Pipe::builder().duplex(true).create_anonymous()?;
    /// assert!(a.writable() && b.readable());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn duplex(mut self, duplex: bool) -> Self {
        self.duplex = duplex;
        self
    }

    /// The largest message in bytes (default [`DEFAULT_PIPE_MAX_MESSAGE`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_rx, mut tx) = shm_queue::Pipe::builder().max_message_size(4).create_anonymous()?;
    /// assert!(tx.send_bytes(&[0; 5]).is_err());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Bytes of each direction's ring, rounded up to a power of two and to at least two
    /// records of the largest message (default [`DEFAULT_PIPE_BUFFER`]). A send waits
    /// while its direction is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, _tx) = shm_queue::Pipe::builder().max_message_size(8).buffer_size(1000).create_anonymous()?;
    /// assert_eq!(rx.buffer_size(), 1024);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        self.buffer = bytes;
        self
    }

    /// Creates an anonymous pipe: its ends travel to other processes through serde and
    /// the kernel frees it when the last holder exits.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidConfig`] for a message size of 0 or above 2^30 - 1 bytes, or a
    /// buffer above 512 GiB; [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, tx) = shm_queue::Pipe::builder().create_anonymous()?;
    /// assert!(rx.readable() && !rx.writable() && tx.writable());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create_anonymous(&self) -> Result<(Connection, Connection), CreateError> {
        let (options, config) = self.segment_options()?;
        let segment = options.create_anonymous_with(|seg| initialise(seg, self.duplex, config))?;
        Connection::pair(segment)
    }

    /// Creates the named pipe `name`; another process takes an end with
    /// [`Connection::open`]. The name is removed when the pipe's segment handle in this
    /// process is dropped (both ends dropped).
    ///
    /// # Errors
    ///
    /// As [`create_anonymous`](Self::create_anonymous), plus the segment layer's
    /// `AlreadyExists`, `InvalidName`, `PermissionDenied`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-pipe-create-{}", std::process::id());
    /// let (rx, tx) = shm_queue::Pipe::builder().create(&name)?;
    /// assert_eq!(rx.name(), Some(name.as_str()));
    /// # drop(tx);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<(Connection, Connection), CreateError> {
        let (options, config) = self.segment_options()?;
        let segment = options.create_with(name, |seg| initialise(seg, self.duplex, config))?;
        Connection::pair(segment)
    }

    fn segment_options(&self) -> Result<(SegmentOptions, SpscConfig), CreateError> {
        let invalid = |reason: String| CreateError::InvalidConfig { reason };
        if self.max_message == 0 || self.max_message > u32::MAX as usize / 4 {
            return Err(invalid(
                "max_message_size must be between 1 and 2^30 - 1 bytes".into(),
            ));
        }
        let record = RECORD_HEADER_LEN + self.max_message.next_multiple_of(RECORD_ALIGN);
        let ring = self
            .buffer
            .max(2 * record)
            .max(LINE)
            .checked_next_power_of_two()
            .filter(|&n| n <= 1 << 39)
            .ok_or_else(|| invalid("buffer_size exceeds 512 GiB".into()))?;
        let config = SpscConfig {
            // Bytes bound a pipe, not a message count: every record takes 8 bytes or more.
            capacity: (ring / RECORD_ALIGN) as u64,
            max_message: self.max_message,
            ring,
        };
        let directions = if self.duplex { 2 } else { 1 };
        let len = PIPE_HEADER_LEN + directions * config.total_len();
        let options = SegmentOptions::new(ObjectKind::PIPE)
            .fingerprint(TypeFingerprint::NONE)
            .len(len);
        Ok((options, config))
    }
}

/// Writes the pipe header and each direction's ring header (before "ready").
fn initialise(seg: &Segment, duplex: bool, config: SpscConfig) {
    let base = seg.data().as_ptr();
    // SAFETY: the data area is 128-byte aligned, zeroed (valid for every atomic) and holds
    // the pipe header and one or two rings (we asked for that length); nobody else sees it
    // before "ready".
    let header = unsafe { &*base.cast::<PipeHeader>() };
    header.magic.store(PIPE_MAGIC, Ordering::Relaxed);
    header.version.store(LAYOUT_VERSION, Ordering::Relaxed);
    header.duplex.store(u32::from(duplex), Ordering::Relaxed);
    let directions = if duplex { 2 } else { 1 };
    for d in 0..directions {
        let offset = PIPE_HEADER_LEN + d * config.total_len();
        header.directions[d].store(offset as u64, Ordering::Relaxed);
        // SAFETY: as above; `offset` is 128-aligned (the ring is a power of two >= 128)
        // and the direction's header and ring lie within the data area.
        let spsc = unsafe { &*base.add(offset).cast::<SpscHeader>() };
        config.initialise_header(spsc);
    }
    // The segment layer publishes all of this with its Release store of "ready".
}

/// Checks an opened pipe segment; returns each direction's ring (one or two).
fn validate(segment: &Arc<Segment>) -> Result<Vec<Arc<SpscInner>>, OpenError> {
    let corrupt = |reason: String| OpenError::Corrupt { reason };
    let len = segment.data_len();
    if len < PIPE_HEADER_LEN {
        return Err(corrupt(format!(
            "data area of {len} bytes is smaller than the header"
        )));
    }
    let base = segment.data();
    // SAFETY: PIPE_HEADER_LEN bytes are mapped at the 128-aligned data area; atomics only.
    let header = unsafe { &*base.as_ptr().cast::<PipeHeader>() };
    if header.magic.load(Ordering::Relaxed) != PIPE_MAGIC {
        return Err(corrupt("bad pipe magic".into()));
    }
    let version = header.version.load(Ordering::Relaxed);
    if version != LAYOUT_VERSION {
        return Err(corrupt(format!(
            "pipe layout version {version}, expected {LAYOUT_VERSION}"
        )));
    }
    let directions = match header.duplex.load(Ordering::Relaxed) {
        0 => 1,
        1 => 2,
        other => return Err(corrupt(format!("duplex flag {other}"))),
    };
    let mut rings = Vec::with_capacity(directions);
    let mut expected = PIPE_HEADER_LEN;
    for d in 0..directions {
        let offset = header.directions[d].load(Ordering::Relaxed) as usize;
        if offset != expected || offset + SPSC_HEADER_LEN > len {
            return Err(corrupt(format!(
                "direction {d} at offset {offset} in {len} bytes"
            )));
        }
        // SAFETY: offset is 128-aligned (expected is: the pipe header and every ring are
        // multiples of 128) and SPSC_HEADER_LEN bytes are mapped there; atomics only.
        let ptr = unsafe { base.add(offset) }.cast::<SpscHeader>();
        // SAFETY: as above.
        let config = SpscConfig::validate_header(unsafe { ptr.as_ref() }, len - offset)?;
        if !config.ring.is_multiple_of(LINE) {
            return Err(corrupt(format!("ring of {} bytes", config.ring)));
        }
        expected = offset + config.total_len();
        rings.push(Arc::new(SpscInner::new(Arc::clone(segment), ptr, config)));
    }
    Ok(rings)
}

/// Python's `multiprocessing.Pipe`: a pair of [`Connection`]s over shared memory.
///
/// [`Pipe::new`] is Python's `Pipe(duplex=False)`: `(receiving end, sending end)`.
/// [`Pipe::duplex`] is `Pipe()`: two ends that both send and receive. Each direction is an
/// SPSC ring of variable-size records in one shared segment (see `layout`), so a send is a
/// copy into shared memory and a release store, with no system call unless the receiver
/// sleeps.
///
/// # Ends and processes
///
/// Each end belongs to one process at a time, recorded in the segment (pid and start
/// time). The creator holds both ends; an end **sent to another process through serde is
/// moved there**: the receiving process takes it over when it deserialises it, and the
/// sender's copy is then inert (its operations fail with `Moved`, its drop does nothing).
/// An end that is neither sent nor [`close`](Connection::close)d is closed when dropped,
/// as Python closes a garbage-collected connection.
///
/// # Faults
///
/// - The peer **closed** its end (or dropped it): `recv` returns what was sent before,
///   then [`RecvError::Closed`]; `send` fails with [`SendError::Closed`].
/// - The peer's process **died** (SIGKILL included): `recv` returns what was sent before,
///   then [`RecvError::PeerDied`]; a `send` waiting for room fails with
///   [`SendError::PeerDied`]. A receiver asleep in `recv` re-checks the peer every 10 ms,
///   so it returns within about 10 ms of the death plus a `/proc` read, never hangs.
///   Death is judged by pid and start time, so a recycled pid is not taken for the peer.
/// - A sender killed in the middle of a `send` loses that message only: nothing is
///   published before the whole record is written.
/// - Liveness is known from the moment the peer's process holds its end: until the
///   process that an end was sent to has deserialised it, the end belongs to the sender
///   (alive), and if that process dies before, `recv` waits. Use
///   [`poll`](Connection::poll) or [`recv_timeout`](Connection::recv_timeout) where that
///   matters.
///
/// # Examples
///
/// ```
/// use shm_queue::Pipe;
/// let (mut parent, mut child) = Pipe::duplex()?;
/// let t = std::thread::spawn(move || {
///     let n: u32 = child.recv().unwrap();
///     child.send(&(n + 1)).unwrap();
/// });
/// parent.send(&41_u32)?;
/// assert_eq!(parent.recv::<u32>()?, 42);
/// t.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Pipe;

impl Pipe {
    /// A one-way anonymous pipe: `(receiving end, sending end)`, as Python's
    /// `Pipe(duplex=False)`.
    ///
    /// # Errors
    ///
    /// [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut rx, mut tx) = shm_queue::Pipe::new()?;
    /// tx.send(&vec![1, 2, 3])?;
    /// assert_eq!(rx.recv::<Vec<i32>>()?, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Result<(Connection, Connection), CreateError> {
        Self::builder().create_anonymous()
    }

    /// A duplex anonymous pipe: two ends that both send and receive, as Python's `Pipe()`.
    ///
    /// # Errors
    ///
    /// [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = shm_queue::Pipe::duplex()?;
    /// a.send(&1_u8)?;
    /// b.send(&2_u8)?;
    /// assert_eq!((b.recv::<u8>()?, a.recv::<u8>()?), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn duplex() -> Result<(Connection, Connection), CreateError> {
        Self::builder().duplex(true).create_anonymous()
    }

    /// Options for a new pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, _tx) = shm_queue::Pipe::builder().max_message_size(100).create_anonymous()?;
    /// assert_eq!(rx.max_message_size(), 100);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn builder() -> PipeBuilder {
        PipeBuilder {
            duplex: false,
            max_message: DEFAULT_PIPE_MAX_MESSAGE,
            buffer: DEFAULT_PIPE_BUFFER,
        }
    }
}

/// One end of a [`Pipe`]: `send` / `recv` of serde values, `send_bytes` / `recv_bytes` of
/// raw bytes, `poll`, `close`.
///
/// Values and byte strings travel as the same records: `recv_bytes` returns the postcard
/// encoding of a value sent with `send`, and `recv` decodes bytes sent with `send_bytes`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let (mut rx, mut tx) = shm_queue::Pipe::new()?;
/// assert!(!rx.poll(Duration::ZERO));
/// tx.send_bytes(b"raw")?;
/// assert!(rx.poll(Duration::ZERO));
/// assert_eq!(rx.recv_bytes()?, b"raw");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Connection {
    segment: Arc<Segment>,
    /// 0 or 1: this end reads direction `end` and writes direction `1 - end`.
    end: u8,
    rx: Option<Consumer<()>>,
    tx: Option<Producer<()>>,
    max_message: usize,
    ring: usize,
    /// Set when the handle was serialised: the end now belongs to the receiving process.
    moved: AtomicBool,
    /// Set by `close` on this handle.
    closed: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.segment.name().map(|n| n.as_str()))
            .field("end", &self.end)
            .field("readable", &self.rx.is_some())
            .field("writable", &self.tx.is_some())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// What makes an end unusable before any transfer.
enum Unusable {
    Closed,
    Moved,
}

impl Connection {
    /// Both ends of a new pipe, held by this process.
    fn pair(segment: Segment) -> Result<(Connection, Connection), CreateError> {
        let segment = Arc::new(segment);
        let rings = validate(&segment).map_err(|e| CreateError::InvalidConfig {
            reason: format!("the new pipe does not validate: {e}"),
        })?;
        let first = Self::end_of(&segment, &rings, 0, false);
        let second = Self::end_of(&segment, &rings, 1, false);
        match (first, second) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            (Err(e), _) | (_, Err(e)) => Err(CreateError::InvalidConfig {
                reason: format!("cannot attach a new pipe's ends: {e}"),
            }),
        }
    }

    /// End `end` of a validated pipe; `take_over`: from whoever holds it now.
    fn end_of(
        segment: &Arc<Segment>,
        rings: &[Arc<SpscInner>],
        end: u8,
        take_over: bool,
    ) -> Result<Connection, crate::AttachError> {
        let duplex = rings.len() == 2;
        let spin = DEFAULT_SPIN_LIMIT;
        let read = usize::from(end);
        let rx = if duplex || end == 0 {
            Some(rings[read].consumer(spin, take_over, true)?)
        } else {
            None
        };
        let tx = if duplex || end == 1 {
            Some(rings[1 - read].producer(spin, take_over, true)?)
        } else {
            None
        };
        Ok(Connection {
            segment: Arc::clone(segment),
            end,
            rx,
            tx,
            max_message: rings[0].config().max_message,
            ring: rings[0].config().ring,
            moved: AtomicBool::new(false),
            closed: false,
        })
    }

    /// Takes end `end` (0 or 1) of the named pipe `name` for this process; another
    /// process that held it can no longer use it (`Moved`). Ownership is per process:
    /// within one process, two handles of the same end are not told apart.
    ///
    /// # Errors
    ///
    /// [`OpenError::Segment`] (not found, not a pipe, ...), [`OpenError::Corrupt`] for an
    /// inconsistent header or an `end` other than 0 or 1.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-pipe-open-{}", std::process::id());
    /// use shm_queue::{Connection, Pipe};
    /// let (mut rx, tx) = Pipe::builder().create(&name)?;
    /// // Usually in another process, which then owns end 1 (the creator's `tx` fails
    /// // with `SendError::Moved` there).
    /// let mut opened = Connection::open(&name, 1)?;
    /// opened.send(&7_u8)?;
    /// assert_eq!(rx.recv::<u8>()?, 7);
    /// assert!(Connection::open(&name, 2).is_err());
    /// # drop(tx);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str, end: u8) -> Result<Connection, OpenError> {
        let segment = Self::segment_options().open(name)?;
        Self::take(segment, end)
    }

    fn segment_options() -> SegmentOptions {
        SegmentOptions::new(ObjectKind::PIPE).fingerprint(TypeFingerprint::NONE)
    }

    fn take(segment: Segment, end: u8) -> Result<Connection, OpenError> {
        if end > 1 {
            return Err(OpenError::Corrupt {
                reason: format!("pipe end {end}, expected 0 or 1"),
            });
        }
        let segment = Arc::new(segment);
        let rings = validate(&segment)?;
        Self::end_of(&segment, &rings, end, true).map_err(|e| OpenError::Corrupt {
            reason: e.to_string(),
        })
    }

    fn usable(&self) -> Result<(), Unusable> {
        if self.closed {
            return Err(Unusable::Closed);
        }
        if self.moved.load(LocalOrdering::Relaxed) {
            return Err(Unusable::Moved);
        }
        Ok(())
    }

    fn sender(&mut self) -> Result<&mut Producer<()>, SendError> {
        self.usable().map_err(|u| match u {
            Unusable::Closed => SendError::Closed,
            Unusable::Moved => SendError::Moved,
        })?;
        let tx = self.tx.as_mut().ok_or(SendError::ReadOnly)?;
        if !tx.is_attached() {
            return Err(SendError::Moved);
        }
        Ok(tx)
    }

    fn receiver(&mut self) -> Result<&mut Consumer<()>, RecvError> {
        self.usable().map_err(|u| match u {
            Unusable::Closed => RecvError::Closed,
            Unusable::Moved => RecvError::Moved,
        })?;
        let rx = self.rx.as_mut().ok_or(RecvError::WriteOnly)?;
        if !rx.is_attached() {
            return Err(RecvError::Moved);
        }
        Ok(rx)
    }

    fn send_record(
        &mut self,
        size: usize,
        write: impl FnOnce(&mut [u8]) -> Result<(), CodecError>,
    ) -> Result<(), SendError> {
        self.sender()?
            .put_record(size, Until::Deadline(None), write)
            .map_err(|failure| match failure {
                PutFailure::Full | PutFailure::Closed => SendError::Closed,
                PutFailure::PeerDied => SendError::PeerDied,
                PutFailure::TooLarge { size, max } => SendError::TooLarge { size, max },
                PutFailure::Encode(e) => SendError::Encode(e),
            })
    }

    /// Sends `value` (postcard-encoded straight into the ring), waiting while the
    /// direction is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] (either end closed), [`SendError::PeerDied`] (noticed while
    /// waiting for room), [`SendError::ReadOnly`], [`SendError::Moved`],
    /// [`SendError::TooLarge`], [`SendError::Encode`]; nothing is sent then.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut rx, mut tx) = shm_queue::Pipe::new()?;
    /// tx.send(&("job", 3_u32))?;
    /// assert_eq!(rx.recv::<(String, u32)>()?, ("job".to_string(), 3));
    /// assert_eq!(rx.send(&1_u8), Err(shm_queue::SendError::ReadOnly));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send<T: Serialize>(&mut self, value: &T) -> Result<(), SendError> {
        let size = encoded_size(value).map_err(SendError::Encode)?;
        self.send_record(size, |dst| match encode_into_slice(value, dst) {
            Ok(len) if len == size => Ok(()),
            Ok(_) => Err(CodecError::corrupt(
                "the value encoded to a different size twice",
            )),
            Err(e) => Err(e),
        })
    }

    /// Sends `bytes` as one message, waiting while the direction is full.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send) (no `Encode`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut rx, mut tx) = shm_queue::Pipe::new()?;
    /// tx.send_bytes(&[1, 2, 3])?;
    /// assert_eq!(rx.recv_bytes()?, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.send_record(bytes.len(), |dst| {
            dst.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn recv_record<R>(
        &mut self,
        until: Until,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, RecvTimeoutError> {
        let rx = self.receiver().map_err(|e| match e {
            RecvError::Closed => RecvTimeoutError::Closed,
            RecvError::PeerDied => RecvTimeoutError::PeerDied,
            RecvError::WriteOnly => RecvTimeoutError::WriteOnly,
            RecvError::Moved => RecvTimeoutError::Moved,
            RecvError::Decode(e) => RecvTimeoutError::Decode(e),
        })?;
        rx.get_record(until, read).map_err(|failure| match failure {
            GetFailure::Empty => RecvTimeoutError::Timeout,
            GetFailure::Closed => RecvTimeoutError::Closed,
            GetFailure::PeerDied => RecvTimeoutError::PeerDied,
            GetFailure::Decode(e) => RecvTimeoutError::Decode(e),
        })
    }

    /// Receives the next value, waiting as long as none is there.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once either end is closed and everything sent was received;
    /// [`RecvError::PeerDied`] once the peer's process died and everything it sent was
    /// received; [`RecvError::WriteOnly`], [`RecvError::Moved`]; [`RecvError::Decode`] for
    /// a message that is not a `T` (it is removed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut rx, mut tx) = shm_queue::Pipe::new()?;
    /// tx.send(&2.5_f64)?;
    /// assert_eq!(rx.recv::<f64>()?, 2.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        self.recv_timeout_until(Until::Deadline(None))
            .map_err(blocking_error)
    }

    fn recv_timeout_until<T: DeserializeOwned>(
        &mut self,
        until: Until,
    ) -> Result<T, RecvTimeoutError> {
        self.recv_record(until, decode_from_slice)?
            .map_err(RecvTimeoutError::Decode)
    }

    /// Receives the next value, waiting at most `timeout` (never less).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when nothing came in time, otherwise as
    /// [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (mut rx, mut tx) = shm_queue::Pipe::new()?;
    /// tx.send(&1_u8)?;
    /// assert_eq!(rx.recv_timeout::<u8>(Duration::from_secs(1)), Ok(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout<T: DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<T, RecvTimeoutError> {
        self.recv_timeout_until(Until::Deadline(sys::deadline_after(timeout)))
    }

    /// Receives the next message as bytes, waiting as long as none is there.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv) (no `Decode`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut rx, mut tx) = shm_queue::Pipe::new()?;
    /// tx.send_bytes(b"hello")?;
    /// assert_eq!(rx.recv_bytes()?, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_record(Until::Deadline(None), <[u8]>::to_vec)
            .map_err(blocking_error)
    }

    /// Waits at most `timeout` until [`recv`](Self::recv) would return at once: `true`
    /// when a message is there, or when `recv` would fail at once (closed, peer dead,
    /// write-only, moved), as Python's `poll`; `false` when `timeout` passed first (never
    /// earlier). Takes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (mut rx, mut tx) = shm_queue::Pipe::new()?;
    /// assert!(!rx.poll(Duration::from_millis(1)));
    /// tx.send(&1_u8)?;
    /// assert!(rx.poll(Duration::from_secs(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&mut self, timeout: Duration) -> bool {
        let until = Until::Deadline(sys::deadline_after(timeout));
        match self.receiver() {
            Ok(rx) => !matches!(rx.poll_until(until), Ok(false)),
            Err(_) => true,
        }
    }

    /// Closes this end for both processes: the peer's `recv` returns what was sent before,
    /// then `Closed`; its `send` fails with `Closed`; this handle's operations fail with
    /// `Closed`. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = shm_queue::Pipe::duplex()?;
    /// a.close();
    /// assert!(a.is_closed());
    /// assert_eq!(b.send(&1_u8), Err(shm_queue::SendError::Closed));
    /// assert_eq!(b.recv::<u8>(), Err(shm_queue::RecvError::Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&mut self) {
        if self.moved.load(LocalOrdering::Relaxed) {
            return;
        }
        self.closed = true;
        if let Some(rx) = &self.rx {
            rx.close_queue();
        }
        if let Some(tx) = &self.tx {
            tx.close_queue();
        }
    }

    /// Whether this end or the peer's was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut rx, tx) = shm_queue::Pipe::new()?;
    /// assert!(!tx.is_closed());
    /// rx.close();
    /// assert!(tx.is_closed());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.closed
            || self.rx.as_ref().is_some_and(Consumer::is_closed)
            || self.tx.as_ref().is_some_and(Producer::is_closed)
    }

    /// Whether this end can receive (Python's `readable`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, tx) = shm_queue::Pipe::new()?;
    /// assert!(rx.readable() && !tx.readable());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn readable(&self) -> bool {
        self.rx.is_some()
    }

    /// Whether this end can send (Python's `writable`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, tx) = shm_queue::Pipe::new()?;
    /// assert!(tx.writable() && !rx.writable());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn writable(&self) -> bool {
        self.tx.is_some()
    }

    /// The largest message in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, _tx) = shm_queue::Pipe::new()?;
    /// assert_eq!(rx.max_message_size(), shm_queue::DEFAULT_PIPE_MAX_MESSAGE);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// Bytes of each direction's ring.
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, _tx) = shm_queue::Pipe::new()?;
    /// assert_eq!(rx.buffer_size(), shm_queue::DEFAULT_PIPE_BUFFER);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn buffer_size(&self) -> usize {
        self.ring
    }

    /// The pipe's name, `None` for an anonymous pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// let (rx, _tx) = shm_queue::Pipe::new()?;
    /// assert_eq!(rx.name(), None);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.segment.name().map(|n| n.as_str())
    }
}

/// The blocking forms never time out.
fn blocking_error(e: RecvTimeoutError) -> RecvError {
    match e {
        RecvTimeoutError::Timeout | RecvTimeoutError::Closed => RecvError::Closed,
        RecvTimeoutError::PeerDied => RecvError::PeerDied,
        RecvTimeoutError::WriteOnly => RecvError::WriteOnly,
        RecvTimeoutError::Moved => RecvError::Moved,
        RecvTimeoutError::Decode(e) => RecvError::Decode(e),
    }
}

/// Closes an end that was neither sent nor closed, as Python does when a connection is
/// garbage-collected. (A killed process runs no drop: its peer sees `PeerDied` instead.)
impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

/// A connection serialises as its segment's token and its end. **Serialising moves the
/// end**: the process that deserialises it takes it over, and this handle becomes inert
/// (its operations fail with `Moved`, its drop closes nothing).
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.moved.store(true, LocalOrdering::Relaxed);
        (self.segment.token(), self.end).serialize(serializer)
    }
}

/// Opens the pipe a serialised connection names and takes its end over for this process.
impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (token, end) = <(SegmentToken, u8)>::deserialize(deserializer)?;
        let segment = token
            .open(&Connection::segment_options())
            .map_err(serde::de::Error::custom)?;
        Connection::take(segment, end).map_err(serde::de::Error::custom)
    }
}
