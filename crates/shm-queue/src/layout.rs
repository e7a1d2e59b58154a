//! Every structure that lives in a queue's shared memory.
//!
//! All of it is `#[repr(C)]`, holds only atomics (fields written once by the creator are
//! atomics too, read `Relaxed` after the segment's "ready" handshake), addresses things by
//! offset, never by pointer, and its sizes and offsets are checked at compile time. Bump
//! [`LAYOUT_VERSION`] on any change. The segment header of `shm-segment` comes first; the
//! structures here start at the segment's data area, which is 128-byte aligned.
//!
//! # `Queue` (MPMC)
//!
//! ```text
//! QueueHeader (640 bytes: five 128-byte lines)  | slot 0 | slot 1 | ... | slot capacity-1
//! slot = SlotHeader (32 bytes) + payload, padded to `slot_stride` (a multiple of 64)
//! ```
//!
//! A slot's `seq` word packs the position it serves, its state and the pid of the process
//! that owns it in that state ([`pack_seq`]):
//!
//! ```text
//! bits 63..24  position tag (position mod 2^40)
//! bits 23..22  state: FREE, CLAIMED (producer writing), PUBLISHED, READING (consumer reading)
//! bits 21..0   pid of the producer (CLAIMED, PUBLISHED) or consumer (READING); 0 when FREE
//! ```
//!
//! # `JoinableQueue`
//!
//! ```text
//! a Queue's layout | padding to 128 | JoinHeader (128 bytes + 64 ledger entries of 64)
//! ```
//!
//! A ledger entry records, for one consumer process (`owner`, packed pid and start time;
//! `u64::MAX` while a joiner writes a dead owner's tasks off), how many tasks it got and
//! has not marked done (`taken`).
//!
//! # `Pipe`
//!
//! ```text
//! PipeHeader (128 bytes) | SpscHeader + ring of direction 0 | SpscHeader + ring of direction 1
//! ```
//!
//! Direction 0 is read by end 0 (the receiving end of a one-way pipe) and written by end
//! 1; direction 1 (duplex only) the other way round. Each direction is an `SpscQueue` ring
//! whose `producer_owner` / `consumer_owner` words record the process holding each end.
//!
//! # `SpscQueue`
//!
//! ```text
//! SpscHeader (640 bytes) | ring of `ring_len` bytes (a power of two)
//! record = RECORD_HEADER (u32 length, u32 kind) + payload padded to 8 bytes
//! ```

#[cfg(not(loom))]
use std::mem::offset_of;
use std::mem::size_of;

use crate::sync::{AtomicU32, AtomicU64};

/// The version of the layouts in this module.
pub const LAYOUT_VERSION: u32 = 2;

/// `b"MPQUEUE1"` as a little-endian integer: the first word of a [`QueueHeader`].
pub const QUEUE_MAGIC: u64 = u64::from_le_bytes(*b"MPQUEUE1");
/// `b"MPSPSCQ1"` as a little-endian integer: the first word of a [`SpscHeader`].
pub const SPSC_MAGIC: u64 = u64::from_le_bytes(*b"MPSPSCQ1");

/// One cache line as this crate pads them (two 64-byte lines, against the adjacent-line
/// prefetcher).
pub const LINE: usize = 128;

/// Slot state: free for the producer of the tagged position.
pub const STATE_FREE: u64 = 0;
/// Slot state: claimed by a producer that is writing the message.
pub const STATE_CLAIMED: u64 = 1;
/// Slot state: holds a published message for the tagged position.
pub const STATE_PUBLISHED: u64 = 2;
/// Slot state: a consumer is reading the message.
pub const STATE_READING: u64 = 3;

/// Bits of the position tag in a slot's `seq` word.
pub const TAG_BITS: u32 = 40;
/// Mask of the position tag.
pub const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// Bits of the pid in a slot's `seq` word (Linux pids are below `PID_MAX_LIMIT` = 2^22).
pub const PID_BITS: u32 = 22;
/// Mask of the pid.
pub const PID_MASK: u64 = (1 << PID_BITS) - 1;

/// `SlotHeader::len` of a published slot that carries no message (its producer's
/// serialisation failed or panicked after it had claimed the slot); consumers skip it.
pub const TOMBSTONE_LEN: u32 = u32::MAX;

/// `SlotHeader::codec` of a postcard-encoded message (`put`, `put_bytes`, `put_many`).
pub const CODEC_POSTCARD: u32 = 0;
/// `SlotHeader::codec` of a plain-data message: the value's own bytes (`put_plain`).
pub const CODEC_PLAIN: u32 = 1;

/// Packs a slot's `seq` word.
#[inline]
pub const fn pack_seq(position: u64, state: u64, pid: u32) -> u64 {
    ((position & TAG_MASK) << (64 - TAG_BITS)) | (state << PID_BITS) | (pid as u64 & PID_MASK)
}

/// Unpacks a slot's `seq` word into (position tag, state, pid).
#[inline]
pub const fn unpack_seq(seq: u64) -> (u64, u64, u32) {
    (
        seq >> (64 - TAG_BITS),
        (seq >> PID_BITS) & 0b11,
        (seq & PID_MASK) as u32,
    )
}

/// `tag - position` as a signed distance, in the 40-bit tag space.
#[inline]
pub const fn tag_distance(tag: u64, position: u64) -> i64 {
    let diff = tag.wrapping_sub(position & TAG_MASK) & TAG_MASK;
    // Sign-extend the 40-bit difference.
    ((diff << (64 - TAG_BITS)) as i64) >> (64 - TAG_BITS)
}

/// The header of a [`Queue`](crate::Queue) segment's data area.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct QueueHeader {
    // Line 0: written once by the creator.
    /// [`QUEUE_MAGIC`].
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`].
    pub version: AtomicU32,
    /// 1 once `close` was called (sticky).
    pub closed: AtomicU32,
    /// Number of slots (messages the queue holds).
    pub capacity: AtomicU64,
    /// Largest message payload in bytes.
    pub max_message: AtomicU64,
    /// Bytes from one slot to the next.
    pub slot_stride: AtomicU64,
    /// Offset of slot 0 from the start of this header.
    pub slots_offset: AtomicU64,
    /// Padding to the line.
    pub _pad0: [u64; 10],
    // Line 1: the producers' hint.
    /// The first position no producer has claimed yet, or a little behind it (a hint that
    /// anyone may advance past a claimed slot).
    pub tail: AtomicU64,
    /// Padding to the line.
    pub _pad1: [u64; 15],
    // Line 2: the consumers' hint.
    /// The first position no consumer has taken yet, or a little behind it.
    pub head: AtomicU64,
    /// Padding to the line.
    pub _pad2: [u64; 15],
    // Line 3: consumers waiting for messages.
    /// Futex word bumped when a message is published while consumers sleep.
    pub not_empty_seq: AtomicU32,
    /// Consumers registered as sleeping.
    pub not_empty_waiters: AtomicU32,
    /// Padding to the line.
    pub _pad3: [u64; 15],
    // Line 4: producers waiting for room.
    /// Futex word bumped when a slot is freed while producers sleep.
    pub not_full_seq: AtomicU32,
    /// Producers registered as sleeping.
    pub not_full_waiters: AtomicU32,
    /// Padding to the line.
    pub _pad4: [u64; 15],
}

/// The fixed part of every slot of a [`Queue`](crate::Queue); the payload follows.
#[repr(C)]
#[derive(Debug)]
pub struct SlotHeader {
    /// Position tag, state and owner pid ([`pack_seq`]).
    pub seq: AtomicU64,
    /// `position << 1 | role` (role 0 producer, 1 consumer) once the owner recorded its
    /// start time in `owner_start` for that position and role.
    pub owner_stamp: AtomicU64,
    /// Start time of the owner (valid when `owner_stamp` matches).
    pub owner_start: AtomicU64,
    /// Payload length in bytes, or [`TOMBSTONE_LEN`].
    pub len: AtomicU32,
    /// How the payload is encoded: [`CODEC_POSTCARD`] or [`CODEC_PLAIN`].
    pub codec: AtomicU32,
}

/// Bytes of a [`SlotHeader`].
pub const SLOT_HEADER_LEN: usize = size_of::<SlotHeader>();

/// The header of a [`SpscQueue`](crate::SpscQueue) segment's data area.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct SpscHeader {
    // Line 0: configuration (written once) and the owners of the two halves.
    /// [`SPSC_MAGIC`].
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`].
    pub version: AtomicU32,
    /// 1 once `close` was called (sticky).
    pub closed: AtomicU32,
    /// The most messages the queue holds.
    pub capacity: AtomicU64,
    /// Largest message payload in bytes.
    pub max_message: AtomicU64,
    /// Length of the byte ring (a power of two).
    pub ring_len: AtomicU64,
    /// Offset of the ring from the start of this header.
    pub ring_offset: AtomicU64,
    /// The attached producer: pid in the low 22 bits, the low 42 bits of its start time
    /// above; 0 when none.
    pub producer_owner: AtomicU64,
    /// The attached consumer, packed like `producer_owner`; 0 when none.
    pub consumer_owner: AtomicU64,
    /// Padding to the line.
    pub _pad0: [u64; 8],
    // Line 1: written by the producer only.
    /// Bytes ever published (the ring's write index).
    pub tail: AtomicU64,
    /// Messages ever published.
    pub sent: AtomicU64,
    /// Padding to the line.
    pub _pad1: [u64; 14],
    // Line 2: written by the consumer only.
    /// Bytes ever consumed (the ring's read index).
    pub head: AtomicU64,
    /// Messages ever consumed.
    pub received: AtomicU64,
    /// Padding to the line.
    pub _pad2: [u64; 14],
    // Line 3: the consumer waiting for data.
    /// Futex word bumped when data is published while the consumer sleeps.
    pub data_seq: AtomicU32,
    /// Consumers registered as sleeping (0 or 1, more only around re-attaching).
    pub data_waiters: AtomicU32,
    /// Padding to the line.
    pub _pad3: [u64; 15],
    // Line 4: the producer waiting for room.
    /// Futex word bumped when room is made while the producer sleeps.
    pub space_seq: AtomicU32,
    /// Producers registered as sleeping.
    pub space_waiters: AtomicU32,
    /// Padding to the line.
    pub _pad4: [u64; 15],
}

/// The structure a [`JoinableQueue`](crate::JoinableQueue) keeps after its queue's slots
/// (at the next 128-byte boundary): the count of unfinished tasks and the futex `join`
/// sleeps on. All zero is its initial state.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct JoinHeader {
    /// Values put and not yet marked done with `task_done`.
    pub unfinished: AtomicU64,
    /// Futex word bumped when `unfinished` drops to 0 while joiners sleep.
    pub join_seq: AtomicU32,
    /// Joiners registered as sleeping.
    pub join_waiters: AtomicU32,
    /// Tasks ever written off because the consumer process that got them died.
    pub abandoned: AtomicU64,
    /// Padding to the line.
    pub _pad: [u64; 13],
    /// One entry per consumer process (first come, first served).
    pub ledger: [LedgerEntry; JOIN_LEDGER_LEN],
}

/// Entries in a [`JoinHeader`]'s ledger: consumer processes whose tasks can be written off
/// when they die.
pub const JOIN_LEDGER_LEN: usize = 64;

/// `LedgerEntry::owner` while a joiner writes the tasks of a dead owner off.
pub const LEDGER_REAPING: u64 = u64::MAX;

/// One consumer process's unfinished tasks (one 64-byte line each, so that consumers do not
/// share lines).
#[repr(C, align(64))]
#[derive(Debug)]
pub struct LedgerEntry {
    /// The owner (packed pid and start time), 0 when free, [`LEDGER_REAPING`] while
    /// being written off.
    pub owner: AtomicU64,
    /// Tasks the owner got and has not marked done.
    pub taken: AtomicU64,
    /// Padding to the line.
    pub _pad: [u64; 6],
}

/// `b"MPPIPE01"` as a little-endian integer: the first word of a [`PipeHeader`].
pub const PIPE_MAGIC: u64 = u64::from_le_bytes(*b"MPPIPE01");

/// The header of a [`Pipe`](crate::Pipe) segment's data area; one [`SpscHeader`] and its
/// ring per direction follow.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct PipeHeader {
    /// [`PIPE_MAGIC`].
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`].
    pub version: AtomicU32,
    /// 1 for a duplex pipe (two directions), 0 for a one-way pipe (direction 0 only).
    pub duplex: AtomicU32,
    /// Offset of each direction's [`SpscHeader`] from the start of this header (128-byte
    /// aligned; 0 for direction 1 of a one-way pipe). Direction `d` is read by end `d`.
    pub directions: [AtomicU64; 2],
    /// Padding to the line.
    pub _pad: [u64; 12],
}

/// Bytes of an SPSC record header: `u32` payload length, `u32` kind.
pub const RECORD_HEADER_LEN: usize = 8;
/// Record kind: a message.
pub const RECORD_MESSAGE: u32 = 0;
/// Record kind: wrap marker; the next record starts at ring offset 0.
pub const RECORD_WRAP: u32 = 1;
/// Record kind: a plain-data message (a value's own bytes, written by `put_plain`), which
/// the typed `get` refuses instead of misreading, as a [`CODEC_PLAIN`] slot.
pub const RECORD_PLAIN: u32 = 2;
/// Alignment of SPSC records (and so of their headers) in the ring.
pub const RECORD_ALIGN: usize = 8;

#[cfg(not(loom))]
const _: () = {
    assert!(size_of::<QueueHeader>() == 5 * LINE);
    assert!(offset_of!(QueueHeader, magic) == 0);
    assert!(offset_of!(QueueHeader, version) == 8);
    assert!(offset_of!(QueueHeader, closed) == 12);
    assert!(offset_of!(QueueHeader, capacity) == 16);
    assert!(offset_of!(QueueHeader, max_message) == 24);
    assert!(offset_of!(QueueHeader, slot_stride) == 32);
    assert!(offset_of!(QueueHeader, slots_offset) == 40);
    assert!(offset_of!(QueueHeader, tail) == LINE);
    assert!(offset_of!(QueueHeader, head) == 2 * LINE);
    assert!(offset_of!(QueueHeader, not_empty_seq) == 3 * LINE);
    assert!(offset_of!(QueueHeader, not_empty_waiters) == 3 * LINE + 4);
    assert!(offset_of!(QueueHeader, not_full_seq) == 4 * LINE);
    assert!(offset_of!(QueueHeader, not_full_waiters) == 4 * LINE + 4);

    assert!(size_of::<SlotHeader>() == 32);
    assert!(offset_of!(SlotHeader, seq) == 0);
    assert!(offset_of!(SlotHeader, owner_stamp) == 8);
    assert!(offset_of!(SlotHeader, owner_start) == 16);
    assert!(offset_of!(SlotHeader, len) == 24);
    assert!(offset_of!(SlotHeader, codec) == 28);

    assert!(size_of::<JoinHeader>() == LINE + JOIN_LEDGER_LEN * 64);
    assert!(offset_of!(JoinHeader, unfinished) == 0);
    assert!(offset_of!(JoinHeader, join_seq) == 8);
    assert!(offset_of!(JoinHeader, join_waiters) == 12);
    assert!(offset_of!(JoinHeader, abandoned) == 16);
    assert!(offset_of!(JoinHeader, ledger) == LINE);
    assert!(size_of::<LedgerEntry>() == 64);
    assert!(offset_of!(LedgerEntry, owner) == 0);
    assert!(offset_of!(LedgerEntry, taken) == 8);

    assert!(size_of::<PipeHeader>() == LINE);
    assert!(offset_of!(PipeHeader, magic) == 0);
    assert!(offset_of!(PipeHeader, version) == 8);
    assert!(offset_of!(PipeHeader, duplex) == 12);
    assert!(offset_of!(PipeHeader, directions) == 16);

    assert!(size_of::<SpscHeader>() == 5 * LINE);
    assert!(offset_of!(SpscHeader, magic) == 0);
    assert!(offset_of!(SpscHeader, version) == 8);
    assert!(offset_of!(SpscHeader, closed) == 12);
    assert!(offset_of!(SpscHeader, capacity) == 16);
    assert!(offset_of!(SpscHeader, max_message) == 24);
    assert!(offset_of!(SpscHeader, ring_len) == 32);
    assert!(offset_of!(SpscHeader, ring_offset) == 40);
    assert!(offset_of!(SpscHeader, producer_owner) == 48);
    assert!(offset_of!(SpscHeader, consumer_owner) == 56);
    assert!(offset_of!(SpscHeader, tail) == LINE);
    assert!(offset_of!(SpscHeader, sent) == LINE + 8);
    assert!(offset_of!(SpscHeader, head) == 2 * LINE);
    assert!(offset_of!(SpscHeader, received) == 2 * LINE + 8);
    assert!(offset_of!(SpscHeader, data_seq) == 3 * LINE);
    assert!(offset_of!(SpscHeader, space_seq) == 4 * LINE);

    // The tag must hold more positions than any queue has slots, with room for the sign.
    assert!(TAG_BITS + 2 + PID_BITS == 64);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_round_trips() {
        let seq = pack_seq((1 << 45) + 7, STATE_READING, 4_194_303);
        assert_eq!(unpack_seq(seq), (7, STATE_READING, 4_194_303));
        assert_eq!(unpack_seq(pack_seq(0, STATE_FREE, 0)), (0, STATE_FREE, 0));
    }

    #[test]
    fn tag_distance_wraps() {
        assert_eq!(tag_distance(5, 5), 0);
        assert_eq!(tag_distance(5, 3), 2);
        assert_eq!(tag_distance(3, 5), -2);
        assert_eq!(tag_distance(0, TAG_MASK), 1);
        assert_eq!(tag_distance(TAG_MASK, 1 << TAG_BITS), -1);
    }
}
