//! A read-only view of a queue segment's state, for tools such as `multiproc inspect`.
//!
//! [`describe`] reads a [`Queue`](crate::Queue), [`SimpleQueue`](crate::SimpleQueue),
//! [`JoinableQueue`](crate::JoinableQueue) or [`SpscQueue`](crate::SpscQueue) segment and
//! [`describe_pipe`] a [`Pipe`](crate::Pipe) segment, without knowing the message type: it
//! checks the layout (size, magic, version, bounds) first, then loads the shared counters
//! with relaxed atomic loads. It takes no lock and never blocks; the figures are a snapshot
//! that other processes may change at any moment.

use serde::Serialize;
use shm_segment::{ObjectKind, Segment};

use crate::layout::{
    JoinHeader, LAYOUT_VERSION, LINE, PIPE_MAGIC, PipeHeader, QUEUE_MAGIC, QueueHeader, SPSC_MAGIC,
    SpscHeader,
};
use crate::sync::Ordering;
use crate::sys;

const QUEUE_HEADER_LEN: usize = size_of::<QueueHeader>();
const SPSC_HEADER_LEN: usize = size_of::<SpscHeader>();
const PIPE_HEADER_LEN: usize = size_of::<PipeHeader>();
const JOIN_LEN: usize = size_of::<JoinHeader>();

/// Why a segment could not be described.
///
/// # Examples
///
/// ```
/// use shm_segment::{ObjectKind, SegmentOptions};
/// let seg = SegmentOptions::new(ObjectKind::RAW).len(64).create_anonymous()?;
/// let err = shm_queue::inspect::describe(&seg).unwrap_err();
/// assert!(matches!(err, shm_queue::inspect::InspectError::WrongKind { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The segment holds another kind of object.
    #[error("a {kind} segment is not a queue of this kind")]
    WrongKind {
        /// The kind in the segment's header.
        kind: ObjectKind,
    },
    /// The segment's layout is damaged or of another version.
    #[error("damaged queue segment: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
}

/// A process recorded as the holder of something, and whether it still runs.
///
/// # Examples
///
/// ```
/// let me = shm_queue::inspect::Holder { pid: std::process::id(), alive: true };
/// assert!(me.alive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Whether that process (same pid and start time) is still running.
    pub alive: bool,
}

/// A snapshot of one queue's state.
///
/// # Examples
///
/// ```
/// # let name = format!("doc-inspect-queue-{}", std::process::id());
/// let q = shm_queue::Queue::<u32>::builder().capacity(4).create(&name)?;
/// q.put(7)?;
/// let seg = shm_segment::SegmentOptions::any().open(&name)?;
/// let state = shm_queue::inspect::describe(&seg)?;
/// assert_eq!((state.len, state.capacity, state.closed), (1, 4, false));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueState {
    /// Messages in the queue (its depth).
    pub len: u64,
    /// The most messages it holds.
    pub capacity: u64,
    /// Largest message payload in bytes.
    pub max_message: u64,
    /// Consumers asleep waiting for a message.
    pub getters_waiting: u32,
    /// Producers asleep waiting for room.
    pub putters_waiting: u32,
    /// Whether `close` was called.
    pub closed: bool,
    /// Values put and not yet marked done (a `JoinableQueue` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfinished_tasks: Option<u64>,
    /// The attached producer (an `SpscQueue` or a pipe direction only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer: Option<Holder>,
    /// The attached consumer (an `SpscQueue` or a pipe direction only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<Holder>,
}

/// A snapshot of a pipe: who holds each end and each direction's ring.
///
/// # Examples
///
/// ```
/// # let name = format!("doc-inspect-pipe-{}", std::process::id());
/// let (_rx, mut tx) = shm_queue::Pipe::builder().create(&name)?;
/// tx.send(&1)?;
/// let seg = shm_segment::SegmentOptions::any().open(&name)?;
/// let state = shm_queue::inspect::describe_pipe(&seg)?;
/// assert!(!state.duplex);
/// assert_eq!(state.directions[0].len, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PipeState {
    /// Whether both ends send and receive.
    pub duplex: bool,
    /// The process holding end 0 and end 1 (`None`: nobody attached).
    pub ends: [Option<Holder>; 2],
    /// Direction `d` is read by end `d` (one-way pipes have direction 0 only).
    pub directions: Vec<QueueState>,
}

/// Describes a `Queue`, `SimpleQueue`, `JoinableQueue` or `SpscQueue` segment.
///
/// # Errors
///
/// [`InspectError::WrongKind`] for any other kind, [`InspectError::Corrupt`] when the
/// layout does not check out.
///
/// # Examples
///
/// ```
/// # let name = format!("doc-inspect-joinable-{}", std::process::id());
/// let q = shm_queue::JoinableQueue::<u8>::create(&name)?;
/// q.put(1)?;
/// q.close();
/// let seg = shm_segment::SegmentOptions::any().open(&name)?;
/// let state = shm_queue::inspect::describe(&seg)?;
/// assert_eq!(state.unfinished_tasks, Some(1));
/// assert!(state.closed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn describe(seg: &Segment) -> Result<QueueState, InspectError> {
    match seg.kind() {
        ObjectKind::QUEUE | ObjectKind::SIMPLE_QUEUE => mpmc(seg, false),
        ObjectKind::JOINABLE_QUEUE => mpmc(seg, true),
        ObjectKind::SPSC_QUEUE => spsc(seg, 0),
        kind => Err(InspectError::WrongKind { kind }),
    }
}

/// Describes a `Pipe` segment.
///
/// # Errors
///
/// [`InspectError::WrongKind`] for any other kind, [`InspectError::Corrupt`] when the
/// layout does not check out.
///
/// # Examples
///
/// ```
/// # let name = format!("doc-inspect-duplex-{}", std::process::id());
/// let (_a, _b) = shm_queue::Pipe::builder().duplex(true).create(&name)?;
/// let seg = shm_segment::SegmentOptions::any().open(&name)?;
/// let state = shm_queue::inspect::describe_pipe(&seg)?;
/// assert!(state.duplex);
/// assert_eq!(state.directions.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn describe_pipe(seg: &Segment) -> Result<PipeState, InspectError> {
    if seg.kind() != ObjectKind::PIPE {
        return Err(InspectError::WrongKind { kind: seg.kind() });
    }
    let len = seg.data_len();
    if len < PIPE_HEADER_LEN {
        return Err(corrupt(format!("{len} data bytes, less than the header")));
    }
    // SAFETY: PIPE_HEADER_LEN bytes are mapped at the 128-aligned data area (checked
    // above) for as long as `seg` lives; the header holds only atomics, valid for any bits.
    let header = unsafe { &*seg.data().as_ptr().cast::<PipeHeader>() };
    if header.magic.load(Ordering::Relaxed) != PIPE_MAGIC {
        return Err(corrupt("bad pipe magic".into()));
    }
    check_version(header.version.load(Ordering::Relaxed))?;
    let duplex = match header.duplex.load(Ordering::Relaxed) {
        0 => false,
        1 => true,
        other => return Err(corrupt(format!("duplex flag {other}"))),
    };
    let mut directions = Vec::new();
    for d in 0..if duplex { 2 } else { 1 } {
        let offset = header.directions[d].load(Ordering::Relaxed) as usize;
        directions.push(spsc(seg, offset)?);
    }
    // End 0 reads direction 0; end 1 writes it.
    let ends = [directions[0].consumer, directions[0].producer];
    Ok(PipeState {
        duplex,
        ends,
        directions,
    })
}

fn corrupt(reason: String) -> InspectError {
    InspectError::Corrupt { reason }
}

fn check_version(version: u32) -> Result<(), InspectError> {
    if version == LAYOUT_VERSION {
        Ok(())
    } else {
        Err(corrupt(format!(
            "layout version {version}, expected {LAYOUT_VERSION}"
        )))
    }
}

fn mpmc(seg: &Segment, joinable: bool) -> Result<QueueState, InspectError> {
    let data_len = seg.data_len();
    if data_len < QUEUE_HEADER_LEN {
        return Err(corrupt(format!(
            "{data_len} data bytes, less than the header"
        )));
    }
    // SAFETY: QUEUE_HEADER_LEN bytes are mapped at the 128-aligned data area (checked
    // above) for as long as `seg` lives; the header holds only atomics, valid for any bits.
    let h = unsafe { &*seg.data().as_ptr().cast::<QueueHeader>() };
    if h.magic.load(Ordering::Relaxed) != QUEUE_MAGIC {
        return Err(corrupt("bad queue magic".into()));
    }
    check_version(h.version.load(Ordering::Relaxed))?;
    let capacity = h.capacity.load(Ordering::Relaxed);
    let stride = h.slot_stride.load(Ordering::Relaxed);
    let slots_end = stride
        .checked_mul(capacity)
        .and_then(|n| n.checked_add(QUEUE_HEADER_LEN as u64))
        .filter(|&n| n <= data_len as u64)
        .ok_or_else(|| corrupt(format!("{capacity} slots of {stride} bytes overflow")))?;
    // A snapshot of two hints, as `Queue::len` reads them.
    let head = h.head.load(Ordering::Relaxed);
    let tail = h.tail.load(Ordering::Relaxed);
    let unfinished_tasks = if joinable {
        let start = (slots_end as usize).next_multiple_of(LINE);
        if start + JOIN_LEN > data_len {
            return Err(corrupt("no room for the task count".into()));
        }
        // SAFETY: JOIN_LEN bytes at a 128-aligned offset lie inside the mapping (checked
        // above); the join header holds only atomics, valid for any bits.
        let join = unsafe { &*seg.data().as_ptr().add(start).cast::<JoinHeader>() };
        Some(join.unfinished.load(Ordering::Relaxed))
    } else {
        None
    };
    Ok(QueueState {
        len: tail.saturating_sub(head).min(capacity),
        capacity,
        max_message: h.max_message.load(Ordering::Relaxed),
        getters_waiting: h.not_empty_waiters.load(Ordering::Relaxed),
        putters_waiting: h.not_full_waiters.load(Ordering::Relaxed),
        closed: h.closed.load(Ordering::Relaxed) != 0,
        unfinished_tasks,
        producer: None,
        consumer: None,
    })
}

/// The SPSC ring whose header is at data offset `offset`.
fn spsc(seg: &Segment, offset: usize) -> Result<QueueState, InspectError> {
    let data_len = seg.data_len();
    if !offset.is_multiple_of(LINE) || offset.saturating_add(SPSC_HEADER_LEN) > data_len {
        return Err(corrupt(format!(
            "ring header at {offset} in {data_len} data bytes"
        )));
    }
    // SAFETY: SPSC_HEADER_LEN bytes at a 128-aligned offset lie inside the mapping (checked
    // above) for as long as `seg` lives; the header holds only atomics, valid for any bits.
    let h = unsafe { &*seg.data().as_ptr().add(offset).cast::<SpscHeader>() };
    if h.magic.load(Ordering::Relaxed) != SPSC_MAGIC {
        return Err(corrupt("bad SPSC magic".into()));
    }
    check_version(h.version.load(Ordering::Relaxed))?;
    let capacity = h.capacity.load(Ordering::Relaxed);
    let holder = |word: u64| {
        (word != 0).then(|| Holder {
            pid: sys::unpack_owner(word).0,
            alive: sys::owner_alive(word),
        })
    };
    let received = h.received.load(Ordering::Relaxed);
    let sent = h.sent.load(Ordering::Relaxed);
    Ok(QueueState {
        len: sent.saturating_sub(received).min(capacity),
        capacity,
        max_message: h.max_message.load(Ordering::Relaxed),
        getters_waiting: h.data_waiters.load(Ordering::Relaxed),
        putters_waiting: h.space_waiters.load(Ordering::Relaxed),
        closed: h.closed.load(Ordering::Relaxed) != 0,
        unfinished_tasks: None,
        producer: holder(h.producer_owner.load(Ordering::Relaxed)),
        consumer: holder(h.consumer_owner.load(Ordering::Relaxed)),
    })
}

#[cfg(test)]
mod tests {
    use shm_segment::SegmentOptions;

    use super::*;

    #[test]
    fn spsc_state_names_the_attached_halves() {
        let name = format!("t-inspect-spsc-{}", std::process::id());
        let q = crate::SpscQueue::<u32>::builder()
            .capacity(4)
            .create(&name)
            .unwrap();
        let seg = SegmentOptions::any().open(&name).unwrap();
        let state = describe(&seg).unwrap();
        assert_eq!((state.producer, state.consumer), (None, None));
        let mut producer = q.producer().unwrap();
        producer.put(1).unwrap();
        producer.put(2).unwrap();
        let state = describe(&seg).unwrap();
        assert_eq!((state.len, state.capacity, state.closed), (2, 4, false));
        let me = Holder {
            pid: std::process::id(),
            alive: true,
        };
        assert_eq!((state.producer, state.consumer), (Some(me), None));
        assert_eq!(
            describe_pipe(&seg),
            Err(InspectError::WrongKind {
                kind: ObjectKind::SPSC_QUEUE
            })
        );
    }
}
