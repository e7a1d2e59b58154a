//! The segment header: the fixed, versioned layout at offset 0 of every segment.
//!
//! Everything here lives in shared memory, so it is `#[repr(C)]`, holds only plain integers
//! (fields that change after creation are accessed through atomics made with `from_ptr`), and
//! its size and offsets are checked at compile time. Bump [`LAYOUT_VERSION`] on any change.

use std::mem::{offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `b"MPSEGHDR"` read as a little-endian integer: the first eight bytes of every segment.
///
/// # Examples
///
/// ```
/// assert_eq!(&shm_segment::layout::MAGIC.to_le_bytes(), b"MPSEGHDR");
/// ```
pub const MAGIC: u64 = u64::from_le_bytes(*b"MPSEGHDR");

/// The version of this layout (of the header and of the handshake around it).
///
/// # Examples
///
/// ```
/// assert_eq!(shm_segment::layout::LAYOUT_VERSION, 1);
/// ```
pub const LAYOUT_VERSION: u32 = 1;

/// Bytes reserved for the header; the object's data starts here.
///
/// # Examples
///
/// ```
/// use shm_segment::layout::{Header, HEADER_LEN};
/// assert_eq!(std::mem::size_of::<Header>(), HEADER_LEN);
/// ```
pub const HEADER_LEN: usize = 1024;

/// How many processes the attach table records at once.
///
/// # Examples
///
/// ```
/// use shm_segment::layout::{Header, ATTACH_SLOTS};
/// use zerocopy::FromZeros;
/// assert_eq!(Header::new_zeroed().attach.len(), ATTACH_SLOTS);
/// ```
pub const ATTACH_SLOTS: usize = 56;

/// The largest total length (header + data + growth room) a segment may declare: 1 TiB.
///
/// # Examples
///
/// ```
/// use shm_segment::{CreateError, ObjectKind, SegmentOptions};
/// let huge = SegmentOptions::new(ObjectKind::RAW).len(shm_segment::layout::MAX_TOTAL_LEN as usize);
/// assert!(matches!(huge.create_anonymous(), Err(CreateError::InvalidSize { .. })));
/// ```
pub const MAX_TOTAL_LEN: u64 = 1 << 40;

/// `init_state`: the file exists but the header is not yet written.
///
/// # Examples
///
/// ```
/// use shm_segment::layout::*;
/// let states = [STATE_EMPTY, STATE_INITIALISING, STATE_READY, STATE_FAILED];
/// assert_eq!(states, [0, 1, 2, 3]);
/// ```
pub const STATE_EMPTY: u32 = 0;
/// `init_state`: the header is written; the creator is initialising the object.
///
/// # Examples
///
/// ```
/// assert!(shm_segment::layout::STATE_INITIALISING < shm_segment::layout::STATE_READY);
/// ```
pub const STATE_INITIALISING: u32 = 1;
/// `init_state`: the object is initialised and may be used.
///
/// # Examples
///
/// ```
/// assert_eq!(shm_segment::layout::STATE_READY, 2);
/// ```
pub const STATE_READY: u32 = 2;
/// `init_state`: the creator's initialisation failed; the segment is being removed.
///
/// # Examples
///
/// ```
/// assert_eq!(shm_segment::layout::STATE_FAILED, 3);
/// ```
pub const STATE_FAILED: u32 = 3;

/// One entry of the attach table: a process that has the segment open.
///
/// `ident` packs the pid (high 32 bits) and the low 32 bits of the process's start time
/// (never 0), so a slot is claimed (compare-exchange from 0), released and reclaimed from a
/// dead process with one atomic operation each: there is no half-written state for a
/// SIGKILL to leave behind, and a slot freed and re-taken meanwhile cannot be mistaken for
/// the one a sweeper examined. `ident == 0` marks a free slot.
///
/// The attach table is what `multiproc ls` shows; deciding whether a segment is still in use
/// (for `gc`) does not rely on it but on the kernel's `flock` that every handle holds.
///
/// # Examples
///
/// ```
/// use shm_segment::layout::AttachSlot;
/// use zerocopy::FromZeros;
/// assert_eq!(AttachSlot::new_zeroed().ident, 0); // a free slot
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct AttachSlot {
    /// `pid << 32 | (start_time as u32).max(1)`, or 0 for a free slot (*atomic*).
    pub ident: u64,
    /// The full start time (clock ticks since boot), for display; written after `ident` is
    /// claimed, so it may briefly read 0 (*atomic*).
    pub start_time: u64,
}

/// The header at offset 0 of every segment.
///
/// Fields marked *atomic* change after creation and are only accessed through atomics;
/// the others are written once by the creator before `magic` is published (Release) and
/// read by openers after they load `magic` (Acquire).
///
/// # Examples
///
/// ```
/// use shm_segment::layout::{Header, HEADER_LEN, MAGIC};
/// use shm_segment::{ObjectKind, SegmentOptions};
/// use zerocopy::FromBytes;
///
/// let seg = SegmentOptions::new(ObjectKind::QUEUE).create_anonymous()?;
/// // Read a copy of the header the way `multiproc ls` does: pread, never a mapping.
/// let mut bytes = [0u8; HEADER_LEN];
/// std::io::Read::read_exact(&mut std::fs::File::from(seg.fd().try_clone_to_owned()?), &mut bytes)?;
/// let header = Header::read_from_bytes(&bytes[..]).unwrap();
/// assert_eq!((header.magic, header.kind), (MAGIC, ObjectKind::QUEUE.code()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Header {
    /// [`MAGIC`]; zero until the creator has written the rest of the header (*atomic*).
    pub magic: u64,
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// The object kind ([`crate::ObjectKind`]).
    pub kind: u32,
    /// Element type fingerprint: `size_of`.
    pub type_size: u32,
    /// Element type fingerprint: `align_of`.
    pub type_align: u32,
    /// Element type fingerprint: FNV-1a hash of the type name.
    pub type_hash: u64,
    /// Current length of the file in bytes, header included (*atomic*; grows).
    pub total_len: u64,
    /// The most `total_len` may grow to; openers reserve this much address space.
    pub max_len: u64,
    /// Offset of the object's data: [`HEADER_LEN`].
    pub data_offset: u32,
    /// One of the `STATE_*` values (*atomic*; a futex word).
    pub init_state: u32,
    /// Bumped by every `grow` (*atomic*).
    pub generation: u64,
    /// The creating process's id.
    pub creator_pid: u32,
    /// Set when a process could not find a free attach slot (*atomic*): the table then
    /// lists only some of the processes (cleanup does not depend on it: see `catalog`).
    pub attach_overflow: u32,
    /// The creating process's start time (clock ticks since boot).
    pub creator_start: u64,
    /// Reserved for later versions; zero.
    pub reserved: [u64; 6],
    /// Processes that have the segment open (*atomic* fields).
    pub attach: [AttachSlot; ATTACH_SLOTS],
}

const _: () = {
    assert!(size_of::<AttachSlot>() == 16);
    assert!(size_of::<Header>() == HEADER_LEN);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, kind) == 12);
    assert!(offset_of!(Header, type_size) == 16);
    assert!(offset_of!(Header, type_align) == 20);
    assert!(offset_of!(Header, type_hash) == 24);
    assert!(offset_of!(Header, total_len) == 32);
    assert!(offset_of!(Header, max_len) == 40);
    assert!(offset_of!(Header, data_offset) == 48);
    assert!(offset_of!(Header, init_state) == 52);
    assert!(offset_of!(Header, generation) == 56);
    assert!(offset_of!(Header, creator_pid) == 64);
    assert!(offset_of!(Header, attach_overflow) == 68);
    assert!(offset_of!(Header, creator_start) == 72);
    assert!(offset_of!(Header, attach) == 128);
    // Atomic fields must be naturally aligned for `Atomic*::from_ptr`.
    assert!(offset_of!(Header, total_len).is_multiple_of(8));
    assert!(offset_of!(Header, generation).is_multiple_of(8));
    assert!(offset_of!(Header, init_state).is_multiple_of(4));
    // The data area is aligned for anything a shared object needs (two cache lines).
    assert!(HEADER_LEN.is_multiple_of(128));
};
