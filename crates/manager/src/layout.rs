//! Everything that lives in a manager's shared segment: the root block, block headers,
//! container descriptors, hash-table slots, entries and the redo journal.
//!
//! All positions are byte offsets from the start of the segment's data area, never
//! pointers, so every process may map the segment at its own address. Every word, payload
//! bytes included, is read and written as an `AtomicU64` (Relaxed: writers are ordered by
//! the robust lock, readers without it by the commit sequence number, see `journal`).
//!
//! ```text
//! data offset 0      Root (magic, version, journal, heap_top, directory, lock, free heads)
//! HEAP_START         blocks: [u64 header = class << 56 | next-free][payload ...]
//! heap_top           free space; a committing writer puts its journal here
//! ```

use std::mem::{align_of, offset_of, size_of};

use shm_lock::RawLock;

/// `b"MPMANAGR"` as a little-endian word: the first word of every manager's data area.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"MPMANAGR");

/// Version of this layout; a segment with another one is refused.
pub(crate) const VERSION: u64 = 3;

/// Number of block size classes (sizes 32, 48, 64, 96, ... up to beyond 1 TiB).
pub(crate) const NCLASSES: usize = 72;

/// The first block of the heap.
pub(crate) const HEAP_START: u64 = 1024;

/// Bytes of a block header.
pub(crate) const BLOCK_HEADER: u64 = 8;

/// Mask of the next-free offset in a block header (the class is in the top byte).
pub(crate) const NEXT_MASK: u64 = (1 << 56) - 1;

/// The manager's root block at data offset 0.
///
/// Every field after `lock` is changed only through a committed journal (see
/// `store::Txn`), so it is always in the state of the last committed mutation once a
/// recovering lock holder has replayed the journal.
#[repr(C)]
pub(crate) struct Root {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`VERSION`].
    pub version: u64,
    /// Offset of a committed, not yet fully applied journal; 0 when none.
    pub journal: u64,
    /// End of the allocated heap: everything from here on is free.
    pub heap_top: u64,
    /// Offset of the descriptor of the directory dict (container name -> descriptor).
    pub directory: u64,
    /// Commit sequence number: odd while a committed journal is being applied in place,
    /// so that readers without the lock can tell a torn view (see `journal`).
    pub seq: u64,
    /// The last container id handed out (ids start at 1; the directory has 0).
    pub last_id: u64,
    /// Descriptors of removed containers, linked through their `a` field (0 = none):
    /// reused only as descriptors, so a stale proxy always finds a descriptor there.
    pub free_descriptors: u64,
    /// The robust lock that guards the whole segment.
    pub lock: RawLock,
    /// Head of the free list of each size class (block offsets, 0 = empty).
    pub free_heads: [u64; NCLASSES],
    /// A random number drawn when the manager was created: a serialised proxy names its
    /// manager by it, so that it never binds to another manager that now has the name.
    pub nonce: u64,
}

pub(crate) const OFF_MAGIC: u64 = offset_of!(Root, magic) as u64;
pub(crate) const OFF_VERSION: u64 = offset_of!(Root, version) as u64;
pub(crate) const OFF_JOURNAL: u64 = offset_of!(Root, journal) as u64;
pub(crate) const OFF_HEAP_TOP: u64 = offset_of!(Root, heap_top) as u64;
pub(crate) const OFF_DIRECTORY: u64 = offset_of!(Root, directory) as u64;
pub(crate) const OFF_SEQ: u64 = offset_of!(Root, seq) as u64;
pub(crate) const OFF_LAST_ID: u64 = offset_of!(Root, last_id) as u64;
pub(crate) const OFF_FREE_DESCRIPTORS: u64 = offset_of!(Root, free_descriptors) as u64;
pub(crate) const OFF_LOCK: u64 = offset_of!(Root, lock) as u64;
pub(crate) const OFF_FREE_HEADS: u64 = offset_of!(Root, free_heads) as u64;
pub(crate) const OFF_NONCE: u64 = offset_of!(Root, nonce) as u64;

const _: () = {
    assert!(offset_of!(Root, magic) == 0);
    assert!(offset_of!(Root, version) == 8);
    assert!(offset_of!(Root, journal) == 16);
    assert!(offset_of!(Root, heap_top) == 24);
    assert!(offset_of!(Root, directory) == 32);
    assert!(offset_of!(Root, seq) == 40);
    assert!(offset_of!(Root, free_descriptors) == 56);
    assert!(offset_of!(Root, lock) == 64);
    assert!(size_of::<RawLock>() == 64);
    assert!(offset_of!(Root, free_heads) == 128);
    assert!(offset_of!(Root, nonce) == 128 + 8 * NCLASSES);
    assert!(size_of::<Root>() == 136 + 8 * NCLASSES);
    assert!(align_of::<Root>() == 8);
    assert!(size_of::<Root>() as u64 <= HEAP_START);
    assert!(HEAP_START.is_multiple_of(16));
};

/// Offset of the free-list head of class `class`.
pub(crate) const fn free_head(class: usize) -> u64 {
    OFF_FREE_HEADS + 8 * class as u64
}

/// Total bytes (header included) of a block of class `class`.
pub(crate) const fn class_size(class: usize) -> u64 {
    if class.is_multiple_of(2) {
        32 << (class / 2)
    } else {
        48 << (class / 2)
    }
}

/// The smallest class whose blocks hold `total` bytes (header included); `None` past the
/// largest class.
pub(crate) fn class_for(total: u64) -> Option<usize> {
    if total <= 32 {
        return Some(0);
    }
    let k = 64 - (total - 1).leading_zeros() as usize; // total in (2^(k-1), 2^k], k >= 6
    let class = if total <= 3 << (k - 2) {
        2 * (k - 6) + 1
    } else {
        2 * (k - 5)
    };
    (class < NCLASSES).then_some(class)
}

/// Container descriptor: the payload of a 64-byte block, one per container.
///
/// `kind` holds the container's kind in its low byte and its id above ([`kind_word`]):
/// every container ever created in a manager has its own id, so a proxy whose container
/// was removed (and whose descriptor may now serve another container) can tell.
///
/// `a`, `b`, `c`, `d` depend on the kind: a dict has its table, capacity (slots), length
/// and used slots (length + tombstones); a list its slot array, capacity and length; a
/// value its entry (0: unset).
#[repr(C)]
pub(crate) struct Descriptor {
    pub kind: u64,
    pub key_type: u64,
    pub value_type: u64,
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub d: u64,
}

pub(crate) const DESC_KIND: u64 = BLOCK_HEADER + offset_of!(Descriptor, kind) as u64;
pub(crate) const DESC_KEY_TYPE: u64 = BLOCK_HEADER + offset_of!(Descriptor, key_type) as u64;
pub(crate) const DESC_VALUE_TYPE: u64 = BLOCK_HEADER + offset_of!(Descriptor, value_type) as u64;
pub(crate) const DESC_A: u64 = BLOCK_HEADER + offset_of!(Descriptor, a) as u64;
pub(crate) const DESC_B: u64 = BLOCK_HEADER + offset_of!(Descriptor, b) as u64;
pub(crate) const DESC_C: u64 = BLOCK_HEADER + offset_of!(Descriptor, c) as u64;
pub(crate) const DESC_D: u64 = BLOCK_HEADER + offset_of!(Descriptor, d) as u64;

const _: () = {
    assert!(size_of::<Descriptor>() == 56);
    assert!(size_of::<Descriptor>() as u64 + BLOCK_HEADER <= 64);
};

/// The kind in the low byte of [`Descriptor::kind`].
pub(crate) const KIND_MASK: u64 = 0xff;

/// The [`Descriptor::kind`] word of container `id` of `kind`.
pub(crate) const fn kind_word(kind: u64, id: u64) -> u64 {
    kind | id << 8
}

/// The kind of a removed container's descriptor (on the free descriptor list).
pub(crate) const KIND_REMOVED: u64 = 0;

/// Container kinds recorded in [`Descriptor::kind`].
pub(crate) const KIND_DICT: u64 = 1;
pub(crate) const KIND_LIST: u64 = 2;
pub(crate) const KIND_VALUE: u64 = 3;
pub(crate) const KIND_NAMESPACE: u64 = 4;

/// The name of a descriptor kind, for errors.
pub(crate) fn kind_name(kind: u64) -> &'static str {
    match kind & KIND_MASK {
        KIND_REMOVED => "removed container",
        KIND_DICT => "dict",
        KIND_LIST => "list",
        KIND_VALUE => "value",
        KIND_NAMESPACE => "namespace",
        _ => "unknown",
    }
}

/// A hash-table slot: 0 empty, 1 a tombstone, otherwise the entry block's offset in the
/// low 48 bits and the top 16 bits of the key's hash above.
pub(crate) const SLOT_EMPTY: u64 = 0;
pub(crate) const SLOT_TOMBSTONE: u64 = 1;
pub(crate) const SLOT_OFFSET_MASK: u64 = (1 << 48) - 1;

/// A dict entry's payload starts with one word, `key_len | value_len << 32`, followed by the
/// key's bytes and the value's bytes. A list element's or a value's payload starts with the
/// length word, followed by the bytes.
pub(crate) const ENTRY_DATA: u64 = BLOCK_HEADER + 8;

/// `base + off`, wrapping: for offsets computed from words a reader without the lock
/// loaded, which may be garbage in a torn view (whose bounds check then rejects the
/// result); under the lock they never wrap.
#[inline(always)]
pub(crate) const fn addr(base: u64, off: u64) -> u64 {
    base.wrapping_add(off)
}

/// A journal: `count`, then `count` pairs `(offset, value)` of words to store.
pub(crate) const JOURNAL_PAIR: u64 = 16;
