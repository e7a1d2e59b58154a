//! [`Store`]: one mapped manager segment, its robust lock, crash recovery, and [`Txn`], the
//! only way anything in it changes.
//!
//! # Crash consistency
//!
//! A mutation runs inside a [`Txn`] while the caller holds the segment's robust lock:
//!
//! 1. New payloads (entries, tables, arrays) go into blocks that are free in the committed
//!    state: popped from a free list or carved past `heap_top`. Their payload is written
//!    directly; a free block's header word (its class and free-list link) is never touched.
//! 2. Every change to a word that committed state can reach (free-list heads, `heap_top`,
//!    descriptors, table slots, array slots) is only recorded in the transaction.
//! 3. Blocks to free are linked to each other through their header words, which nothing
//!    reads while a block is allocated, and the list heads are recorded like any change. (A
//!    block allocated by the same transaction — free in the committed state — gets its new
//!    link through the journal instead.)
//! 4. Commit writes the recorded words as a journal into free space past the new heap top,
//!    then publishes the journal's offset in `Root::journal` with one Release store — the
//!    commit point — applies the words in place, and clears `Root::journal`.
//!
//! A process killed before the commit point leaves the committed state untouched: what it
//! wrote is in free blocks or unused header words. Killed after it, the next lock holder
//! (told `OwnerDied`) replays the journal — the writes are absolute, so replaying a
//! partly applied journal is harmless — and so completes the mutation. Either way the next
//! user sees exactly the old or the new state, allocator included.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;

use shm_lock::{AcquireError, LockGuard, RawLock, TryAcquireError};
use shm_segment::{Segment, fault};

use crate::error::Error;
use crate::journal::{self, BadJournal, Words};
use crate::layout::{
    BLOCK_HEADER, HEAP_START, JOURNAL_PAIR, MAGIC, NEXT_MASK, OFF_DIRECTORY, OFF_FREE_DESCRIPTORS,
    OFF_HEAP_TOP, OFF_JOURNAL, OFF_LAST_ID, OFF_LOCK, OFF_MAGIC, OFF_NONCE, OFF_SEQ, OFF_VERSION,
    VERSION, class_for, class_size, free_head,
};
use crate::sync::Ordering;

/// Calls `f(word address, first byte of the range in it, end of the range in it)` for
/// each 8-aligned word covering `p .. p + len`, in order, while `f` returns `true`; returns
/// whether it always did. (A plain loop: `step_by`'s `try_fold` is not inlined.) The word
/// addresses are derived from `p`, keeping its provenance.
#[inline(always)]
fn covering_words(
    p: *const u8,
    len: usize,
    mut f: impl FnMut(*const u8, usize, usize) -> bool,
) -> bool {
    let head = p.addr() & 7;
    let first = p.wrapping_sub(head);
    let end = head + len;
    let mut k = 0;
    while k < end {
        if !f(first.wrapping_add(k), head.max(k) - k, end.min(k + 8) - k) {
            return false;
        }
        k += 8;
    }
    true
}

// Bytes live in shared words little-endian first (byte `i` of a word's memory is bits
// `8i..8i+8` of its value), which lets the copies below work in registers.
#[cfg(not(target_endian = "little"))]
compile_error!("shm-manager packs bytes into shared words little-endian first");

/// The low `n` bytes of a word (`n <= 8`).
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    if n >= 8 { u64::MAX } else { (1 << (8 * n)) - 1 }
}

/// The little-endian value of `src` (at most 8 bytes), with fixed-size loads only: a
/// variable-length copy would call `memcpy`, and going through a stack buffer would stall
/// on store forwarding.
#[inline(always)]
fn gather(src: &[u8]) -> u64 {
    let n = src.len();
    debug_assert!(n <= 8);
    let u32_at = |at: usize| u64::from(u32::from_le_bytes(src[at..at + 4].try_into().expect("4")));
    let u16_at = |at: usize| u64::from(u16::from_le_bytes(src[at..at + 2].try_into().expect("2")));
    match n {
        8.. => u64::from_le_bytes(src[..8].try_into().expect("8 bytes")),
        // Two overlapping loads; the bytes both hold land on the same bits.
        4..=7 => u32_at(0) | u32_at(n - 4) << (8 * (n - 4)),
        2..=3 => u16_at(0) | u16_at(n - 2) << (8 * (n - 2)),
        1 => u64::from(src[0]),
        _ => 0,
    }
}

/// Writes the low `dst.len()` (at most 8) bytes of `value` to `dst`, little-endian, with
/// fixed-size stores only.
#[inline(always)]
fn scatter(dst: &mut [u8], value: u64) {
    let n = dst.len();
    debug_assert!(n <= 8);
    match n {
        8.. => dst[..8].copy_from_slice(&value.to_le_bytes()),
        4..=7 => {
            dst[..4].copy_from_slice(&(value as u32).to_le_bytes());
            dst[n - 4..n].copy_from_slice(&((value >> (8 * (n - 4))) as u32).to_le_bytes());
        }
        2..=3 => {
            dst[..2].copy_from_slice(&(value as u16).to_le_bytes());
            dst[n - 2..n].copy_from_slice(&((value >> (8 * (n - 2))) as u16).to_le_bytes());
        }
        1 => dst[0] = value as u8,
        _ => {}
    }
}

/// The shared word at 8-aligned address `w`.
///
/// # Safety
///
/// `w` is 8-aligned and mapped for `'a`.
#[inline(always)]
unsafe fn shared_word<'a>(w: *const u8) -> &'a AtomicU64 {
    // SAFETY: the caller's contract; shared words are only ever accessed atomically.
    unsafe { AtomicU64::from_ptr(w.cast_mut().cast()) }
}

/// Copies the bytes at `p .. p + dst.len()` into `dst`, with Relaxed loads of the aligned
/// words that cover them (every shared byte is accessed as part of an atomic word, so a
/// reader racing a writer is a race of atomics, never a data race).
///
/// # Safety
///
/// The 8-aligned words covering the range are mapped for as long as the call runs.
#[inline(always)]
unsafe fn load_words(p: *const u8, dst: &mut [u8]) {
    let mut at = 0;
    covering_words(p, dst.len(), |w, lo, hi| {
        // SAFETY: `w` is 8-aligned and mapped (caller).
        let word = unsafe { shared_word(w) }.load(Ordering::Relaxed);
        scatter(&mut dst[at..at + hi - lo], word >> (8 * lo));
        at += hi - lo;
        true
    });
}

/// Whether the bytes at `p .. p + bytes.len()` equal `bytes` (loaded as in [`load_words`]).
///
/// # Safety
///
/// As [`load_words`].
#[inline(always)]
unsafe fn eq_words(p: *const u8, bytes: &[u8]) -> bool {
    let mut at = 0;
    covering_words(p, bytes.len(), |w, lo, hi| {
        // SAFETY: as in `load_words`.
        let word = unsafe { shared_word(w) }.load(Ordering::Relaxed);
        let same = (word >> (8 * lo)) & low_bytes(hi - lo) == gather(&bytes[at..at + hi - lo]);
        at += hi - lo;
        same
    })
}

/// Writes the concatenation of `parts` at 8-aligned `p` as whole words, with Relaxed
/// stores; the last word is padded with zeros.
///
/// # Safety
///
/// `p` is 8-aligned; the padded range is mapped and lies in one block that is free in the
/// committed state, which only the caller (the lock holder) writes.
#[inline(always)]
unsafe fn store_padded(p: *mut u8, parts: [&[u8]; 2]) {
    let mut w = p;
    let mut put = |word: u64| {
        // SAFETY: `w` is 8-aligned and inside the padded range (caller).
        unsafe { shared_word(w) }.store(word, Ordering::Relaxed);
        // SAFETY: at most one past the padded range, never dereferenced then.
        w = unsafe { w.add(8) };
    };
    let (mut word, mut fill) = (0u64, 0usize);
    for part in parts {
        let mut rest = part;
        while !rest.is_empty() {
            let n = (8 - fill).min(rest.len());
            word |= gather(&rest[..n]) << (8 * fill);
            (fill, rest) = (fill + n, &rest[n..]);
            if fill == 8 {
                put(word);
                (word, fill) = (0, 0);
            }
        }
    }
    if fill > 0 {
        put(word);
    }
}

#[cold]
#[inline(never)]
fn out_of_bounds(off: u64, len: u64, mapped: u64) -> ! {
    panic!(
        "shm-manager: offset {off}+{len} outside the mapped {mapped} bytes or misaligned: the segment is corrupt"
    )
}

/// Reads the segment: under the lock ([`Store`]), through a transaction's pending writes
/// ([`Txn`]), or without the lock ([`Snap`]).
pub(crate) trait Mem {
    /// The word at `off`.
    fn rd(&self, off: u64) -> u64;
    /// The store underneath.
    fn store(&self) -> &Store;
    /// Copies the `dst.len()` bytes at `off` into `dst`.
    fn load(&self, off: u64, dst: &mut [u8]) {
        self.store().load(off, dst);
    }
    /// Whether the `bytes.len()` bytes at `off` equal `bytes`.
    fn bytes_eq(&self, off: u64, bytes: &[u8]) -> bool {
        self.store().bytes_eq(off, bytes)
    }
    /// Whether what this view reads can no longer be trusted (a reader without the lock
    /// whose state was overwritten): long walks stop early when it is.
    fn stale(&self) -> bool {
        false
    }
    /// Appends the `len` bytes at `off` to `out`.
    fn read_bytes(&self, off: u64, len: u64, out: &mut Vec<u8>) {
        let Some(n) = self.room_for(len) else {
            return;
        };
        let at = out.len();
        out.resize(at + n, 0);
        self.load(off, &mut out[at..]);
    }
    /// `len` as a buffer size if a buffer of it may be allocated: always under the lock;
    /// without it, only if `len` fits the mapping and, when large, the view is still valid
    /// (so a torn length never allocates gigabytes).
    fn room_for(&self, len: u64) -> Option<usize> {
        Some(len as usize)
    }
}

/// Bytes copied out of the segment: on the stack when small.
pub(crate) struct Buf {
    inline: [u8; INLINE],
    len: usize,
    heap: Vec<u8>,
}

impl Buf {
    pub(crate) fn new() -> Self {
        Buf {
            inline: [0; INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    /// Replaces the contents by the `len` bytes at `off` of `m`.
    pub(crate) fn fill(&mut self, m: &impl Mem, off: u64, len: u64) {
        self.heap.clear();
        if len as usize <= INLINE {
            self.len = len as usize;
            m.load(off, &mut self.inline[..self.len]);
        } else {
            self.len = usize::MAX;
            m.read_bytes(off, len, &mut self.heap);
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.len == usize::MAX {
            &self.heap
        } else {
            &self.inline[..self.len]
        }
    }
}

/// A mapped manager segment.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) seg: Segment,
    /// `seg.data_len()`, cached: updated whenever this process maps more (lock, grow).
    mapped: AtomicU64,
}

impl Mem for Store {
    #[inline(always)]
    fn rd(&self, off: u64) -> u64 {
        self.word(off).load(Ordering::Relaxed)
    }
    fn store(&self) -> &Store {
        self
    }
}

impl Words for Store {
    #[inline(always)]
    fn load_word(&self, off: u64, order: Ordering) -> u64 {
        self.word(off).load(order)
    }
    #[inline(always)]
    fn store_word(&self, off: u64, value: u64, order: Ordering) {
        self.word(off).store(value, order);
    }
    fn limit(&self) -> u64 {
        self.mapped()
    }
}

/// Fault points of the real protocol: park there when a test asks, never stop.
#[inline(always)]
fn fault_points(point: journal::Point) -> bool {
    if let Some(name) = point.fault_point() {
        fault::point(name);
    }
    false
}

/// Optimistic attempts of a point read before it takes the lock.
pub(crate) const POINT_READ_TRIES: u32 = 64;
/// Optimistic attempts of a snapshot (a walk of a whole container) before it takes the
/// lock: a failed walk costs as much as the walk.
pub(crate) const SNAPSHOT_READ_TRIES: u32 = 2;

/// 64-bit hash of a key's encoded bytes: the same in every process and every build.
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = (bytes.len() as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
        h = (h.rotate_left(23) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    }
    // Spread the bits over the whole word: the table uses the low bits for the index and
    // the top 16 for the tag.
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

impl Store {
    /// Initialises a fresh data area (in the creator, before the segment is ready).
    pub(crate) fn init(seg: &Segment) {
        let st = StoreRef(seg);
        st.put(OFF_MAGIC, MAGIC);
        st.put(OFF_VERSION, VERSION);
        st.put(OFF_JOURNAL, 0);
        st.put(OFF_SEQ, 0);
        st.put(OFF_LAST_ID, 0);
        st.put(OFF_FREE_DESCRIPTORS, 0);
        st.put(OFF_NONCE, random_nonce());
        // The directory descriptor is the first block, all zero but its kind.
        let dir = HEAP_START;
        let class = class_for(64).expect("64 bytes fit a class");
        st.put(dir, (class as u64) << 56);
        for i in 1..8 {
            st.put(dir + 8 * i, 0);
        }
        st.put(dir + crate::layout::DESC_KIND, crate::layout::KIND_DICT);
        st.put(OFF_DIRECTORY, dir);
        st.put(OFF_HEAP_TOP, dir + class_size(class));
        // SAFETY: the lock's bytes lie in the data area (Root fits HEAP_START, which the
        // creator's length covers), are 8-aligned (data is 128-aligned, OFF_LOCK = 64) and
        // nobody else sees the segment before it is marked ready.
        unsafe { RawLock::init(seg.data().as_ptr().add(OFF_LOCK as usize).cast()) };
    }

    /// Wraps an opened segment after checking the root's magic and version.
    pub(crate) fn attach(seg: Segment) -> Result<Store, Error> {
        if (seg.data_len() as u64) < HEAP_START {
            return Err(Error::Corrupt {
                reason: "the segment is too short for a manager".into(),
            });
        }
        let mapped = AtomicU64::new(seg.data_len() as u64);
        let st = Store { seg, mapped };
        if st.rd(OFF_MAGIC) != MAGIC || st.rd(OFF_VERSION) != VERSION {
            return Err(Error::Corrupt {
                reason: format!(
                    "bad magic or layout version {} (this program understands {VERSION})",
                    st.rd(OFF_VERSION)
                ),
            });
        }
        Ok(st)
    }

    /// Maps whatever other processes added to the segment.
    pub(crate) fn refresh(&self) -> Result<(), Error> {
        // The cache is re-read even when this call mapped nothing: another thread of this
        // process may have mapped more through the shared handle.
        let grew = self.seg.refresh();
        self.note_mapped();
        grew.map(drop).map_err(Error::from)
    }

    /// Re-reads the mapped length after this handle may have mapped more.
    fn note_mapped(&self) {
        // `fetch_max`: a thread that read an older length must not shrink the cache under
        // another thread that has mapped more (mappings only grow).
        let len = self.seg.data_len() as u64;
        if len > self.mapped() {
            // [mapped] Release: pairs with the Acquire load in `mapped`; a thread that
            // sees the new length sees the mapping made before it.
            self.mapped.fetch_max(len, Ordering::Release);
        }
    }

    /// Data bytes mapped in this process.
    #[inline(always)]
    fn mapped(&self) -> u64 {
        // [mapped] Acquire: pairs with the Release `fetch_max` in `note_mapped`.
        self.mapped.load(Ordering::Acquire)
    }

    /// The address of `off .. off + len`, or `None` outside the mapping.
    #[inline(always)]
    fn at(&self, off: u64, len: u64) -> Option<*mut u8> {
        match off.checked_add(len) {
            Some(end) if end <= self.mapped() => {
                // SAFETY: in bounds of the mapped data area (checked).
                Some(unsafe { self.seg.data().as_ptr().add(off as usize) })
            }
            _ => None,
        }
    }

    #[inline(always)]
    fn check(&self, off: u64, len: u64) -> *mut u8 {
        self.at(off, len)
            .unwrap_or_else(|| out_of_bounds(off, len, self.mapped()))
    }

    /// The word at `off`, as an atomic.
    ///
    /// # Panics
    ///
    /// If `off` is outside the mapping or misaligned (a corrupt segment).
    #[inline(always)]
    pub(crate) fn word(&self, off: u64) -> &AtomicU64 {
        if !off.is_multiple_of(8) {
            out_of_bounds(off, 8, u64::MAX);
        }
        let p = self.check(off, 8);
        // SAFETY: in bounds and 8-aligned (checked; the data area is 128-aligned); the
        // mapping lives as long as `self`; shared words are only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(p.cast()) }
    }

    pub(crate) fn put(&self, off: u64, value: u64) {
        self.word(off).store(value, Ordering::Relaxed);
    }

    /// Copies the `dst.len()` bytes at `off` into `dst`.
    #[inline]
    pub(crate) fn load(&self, off: u64, dst: &mut [u8]) {
        let p = self.check(off, dst.len() as u64);
        // SAFETY: the range is mapped (checked), so are the aligned words covering it (the
        // mapping is whole pages and the data area 128-aligned); it lives as long as `self`.
        unsafe { load_words(p, dst) };
    }

    /// Whether the `bytes.len()` bytes at `off` equal `bytes`.
    #[inline]
    pub(crate) fn bytes_eq(&self, off: u64, bytes: &[u8]) -> bool {
        let p = self.check(off, bytes.len() as u64);
        // SAFETY: as in `load`.
        unsafe { eq_words(p, bytes) }
    }

    /// Writes the concatenation of `parts` at 8-aligned `off`, the payload of a block that is
    /// free in the committed state, zero-padding the last word (the padding is inside the
    /// block: block sizes are multiples of 16 and cover their payload).
    #[inline]
    pub(crate) fn write_payload(&self, off: u64, parts: [&[u8]; 2]) {
        let len = (parts[0].len() + parts[1].len()) as u64;
        if !off.is_multiple_of(8) {
            out_of_bounds(off, len, u64::MAX);
        }
        let p = self.check(off, len.next_multiple_of(8));
        // SAFETY: 8-aligned and mapped (checked); the words belong to one block free in
        // the committed state (the caller's block), which only this lock holder writes.
        unsafe { store_padded(p, parts) };
    }

    pub(crate) fn raw_lock(&self) -> &RawLock {
        // SAFETY: the lock was initialised by `Store::init` before the segment was marked
        // ready, lies inside the data area (attach checked HEAP_START bytes) and lives as
        // long as the mapping, i.e. `self`.
        unsafe { RawLock::from_ptr(self.seg.data().as_ptr().add(OFF_LOCK as usize).cast()) }
    }

    /// Takes the lock, maps any growth, and completes a mutation that a dead holder
    /// committed but did not finish applying.
    pub(crate) fn lock(&self) -> Result<LockGuard<'_>, Error> {
        let guard = match self.raw_lock().acquire() {
            Ok(guard) => guard,
            Err(AcquireError::OwnerDied(guard)) => {
                self.refresh()?;
                self.recover()?;
                guard.mark_consistent();
                guard
            }
            Err(AcquireError::NotRecoverable) => return Err(Error::NotRecoverable),
            Err(AcquireError::WouldDeadlock) => return Err(Error::WouldDeadlock),
        };
        self.after_lock()?;
        Ok(guard)
    }

    /// As [`lock`](Self::lock), but `Ok(None)` at once instead of waiting while another
    /// thread holds the lock (for `inspect`, which must never block).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn try_lock(&self) -> Result<Option<LockGuard<'_>>, Error> {
        let guard = match self.raw_lock().try_acquire() {
            Ok(guard) => guard,
            Err(TryAcquireError::WouldBlock) => return Ok(None),
            Err(TryAcquireError::OwnerDied(guard)) => {
                self.refresh()?;
                self.recover()?;
                guard.mark_consistent();
                guard
            }
            Err(TryAcquireError::NotRecoverable) => return Err(Error::NotRecoverable),
            Err(TryAcquireError::WouldDeadlock) => return Err(Error::WouldDeadlock),
        };
        self.after_lock()?;
        Ok(Some(guard))
    }

    /// Maps growth; completes anything a dead recoverer left (lock held).
    fn after_lock(&self) -> Result<(), Error> {
        self.refresh()?;
        // A recoverer that died after marking the lock consistent (it does so only after
        // replaying) cannot leave a journal or an odd `seq` behind, but a check is two
        // loads.
        // [journal] Acquire: pairs with the Release publication in `journal::commit`.
        if self.load_word(OFF_JOURNAL, Ordering::Acquire) != 0 || self.rd(OFF_SEQ) % 2 == 1 {
            self.recover()?;
        }
        Ok(())
    }

    /// Replays the committed journal, if any (lock held).
    fn recover(&self) -> Result<(), Error> {
        match journal::recover(self, &mut fault_points) {
            Ok(_) => Ok(()),
            Err(BadJournal { at, count }) => Err(Error::Corrupt {
                reason: format!("journal at {at} claims {count} writes"),
            }),
        }
    }

    /// Makes at least `end` data bytes available (lock held).
    pub(crate) fn ensure(&self, end: u64) -> Result<(), Error> {
        let len = self.seg.data_len() as u64;
        if end <= len {
            return Ok(());
        }
        let max = self.seg.max_data_len() as u64;
        if end > max {
            return Err(Error::CapacityExceeded {
                requested: end,
                limit: max,
            });
        }
        let target = end.max(len.saturating_mul(2)).min(max);
        let grown = self.seg.grow(target as usize);
        self.note_mapped();
        grown.map_err(Error::from)
    }

    /// The root directory's descriptor.
    pub(crate) fn directory(&self) -> u64 {
        self.rd(OFF_DIRECTORY)
    }

    /// Runs the read `f` on a view of the committed state without taking the lock, as long
    /// as writers let it finish (see [`journal`]): up to `tries` attempts, then under the
    /// lock. `f` may run several times and must only read; it must not trust what it reads
    /// beyond bounds (a failed attempt's view may be torn), which the [`Snap`] it gets
    /// enforces: out-of-range reads yield zeros and fail the attempt.
    ///
    /// Inside an `update_with` closure (this thread holds the lock), the view is the state
    /// before that update.
    pub(crate) fn read<R>(
        &self,
        tries: u32,
        mut f: impl FnMut(&Snap<'_>) -> R,
    ) -> Result<R, Error> {
        for attempt in 0..tries {
            if attempt > 0 {
                // A writer is applying, or committed since: spin a little, then yield (it
                // may have been descheduled mid-apply) before taking the lock.
                if attempt < tries / 2 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            let Some(seq) = journal::read_begin(self) else {
                continue;
            };
            let snap = Snap {
                st: self,
                seq,
                mapped: self.mapped(),
                torn: Cell::new(false),
                unchecked: Cell::new(0),
            };
            let result = f(&snap);
            if !snap.torn.get() && journal::read_valid(self, seq) {
                return Ok(result);
            }
            if snap.torn.get() {
                // Perhaps only an offset past what this process has mapped yet.
                self.refresh()?;
            }
        }
        let _guard = self.lock()?;
        let snap = Snap {
            st: self,
            seq: self.rd(OFF_SEQ),
            mapped: self.mapped(),
            torn: Cell::new(false),
            unchecked: Cell::new(0),
        };
        let result = f(&snap);
        if snap.torn.get() {
            return Err(Error::Corrupt {
                reason: "an offset points outside the segment".into(),
            });
        }
        Ok(result)
    }
}

/// A fresh random word (std's per-process random hash keys, over the time and a counter):
/// not for secrets, only to tell managers apart.
fn random_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    // Never 0, so that a zeroed root cannot pass for a manager's.
    h.finish().max(1)
}

/// Values up to this many bytes are copied out without allocating.
const INLINE: usize = 128;

/// Large reads check that their view is still valid before allocating.
const LARGE_READ: u64 = 1 << 16;

/// A view of the committed state for [`Store::read`]: reads that never panic and never
/// trust a torn value further than bounds allow.
pub(crate) struct Snap<'a> {
    st: &'a Store,
    seq: u64,
    mapped: u64,
    torn: Cell<bool>,
    /// Bytes allowed by `room_for` since the view was last checked.
    unchecked: Cell<u64>,
}

impl Snap<'_> {
    /// The address of `off .. off + len`, or `None` (and the view torn) outside the
    /// mapping or misaligned to `align`.
    #[inline(always)]
    fn at(&self, off: u64, len: u64, align: u64) -> Option<*mut u8> {
        if self.torn.get() {
            return None;
        }
        // Below the heap is the root, which views never read (its lock is a pthread mutex
        // that glibc writes with other access sizes): only a torn offset points there.
        match off.checked_add(len) {
            Some(end) if off >= HEAP_START && end <= self.mapped && off.is_multiple_of(align) => {
                // SAFETY: in bounds of the mapped data area (checked).
                Some(unsafe { self.st.seg.data().as_ptr().add(off as usize) })
            }
            _ => {
                self.torn.set(true);
                None
            }
        }
    }
}

impl Mem for Snap<'_> {
    #[inline(always)]
    fn rd(&self, off: u64) -> u64 {
        match self.at(off, 8, 8) {
            // SAFETY: in bounds and 8-aligned (checked; the data area is 128-aligned); the
            // mapping lives as long as the store; shared words are only accessed atomically.
            Some(p) => unsafe { AtomicU64::from_ptr(p.cast()) }.load(Ordering::Relaxed),
            None => 0,
        }
    }
    fn store(&self) -> &Store {
        self.st
    }
    fn load(&self, off: u64, dst: &mut [u8]) {
        if let Some(p) = self.at(off, dst.len() as u64, 1) {
            // SAFETY: as in `Store::load`.
            unsafe { load_words(p, dst) };
        }
    }
    fn bytes_eq(&self, off: u64, bytes: &[u8]) -> bool {
        match self.at(off, bytes.len() as u64, 1) {
            // SAFETY: as in `Store::load`.
            Some(p) => unsafe { eq_words(p, bytes) },
            None => false,
        }
    }
    fn stale(&self) -> bool {
        self.torn.get() || !journal::read_valid(self.st, self.seq)
    }
    fn room_for(&self, len: u64) -> Option<usize> {
        if self.torn.get() {
            return None;
        }
        // Every `LARGE_READ` bytes allocated on trust, check that the view is still valid:
        // a stale walk never allocates much more than that.
        let unchecked = self.unchecked.get().saturating_add(len);
        if len > self.mapped || (unchecked > LARGE_READ && self.stale()) {
            self.torn.set(true);
            return None;
        }
        self.unchecked
            .set(if unchecked > LARGE_READ { 0 } else { unchecked });
        Some(len as usize)
    }
}

/// Borrowed view used while initialising, before a `Store` exists.
struct StoreRef<'a>(&'a Segment);

impl StoreRef<'_> {
    fn put(&self, off: u64, value: u64) {
        assert!(off + 8 <= self.0.data_len() as u64 && off.is_multiple_of(8));
        // SAFETY: in bounds and aligned (asserted); the creator alone sees the segment.
        unsafe { AtomicU64::from_ptr(self.0.data().as_ptr().add(off as usize).cast()) }
            .store(value, Ordering::Relaxed);
    }
}

/// One mutation: pending word writes, the working heap top, blocks to free.
pub(crate) struct Txn<'a> {
    st: &'a Store,
    writes: Vec<(u64, u64)>,
    index: Option<HashMap<u64, usize>>,
    top: u64,
    frees: Vec<u64>,
    /// Blocks this transaction allocated: free in the committed state.
    allocated: Vec<u64>,
}

/// Buffers of a finished transaction, kept per thread for the next one.
type Spare = (Vec<(u64, u64)>, Vec<u64>, Vec<u64>);

thread_local! {
    static SPARE: std::cell::RefCell<Spare> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new()))
    };
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        let (mut writes, mut frees, mut allocated) = (
            std::mem::take(&mut self.writes),
            std::mem::take(&mut self.frees),
            std::mem::take(&mut self.allocated),
        );
        // Keep small buffers only: a huge batch should not pin its memory.
        if writes.capacity() <= 4096 {
            writes.clear();
            frees.clear();
            allocated.clear();
            let _ = SPARE.try_with(|spare| {
                if let Ok(mut spare) = spare.try_borrow_mut() {
                    *spare = (writes, frees, allocated);
                }
            });
        }
    }
}

/// Bytes past the heap top that allocations leave free for journals.
const JOURNAL_HEADROOM: u64 = 4096;

/// Past this many pending writes, lookups go through a hash index.
const INDEX_AFTER: usize = 16;

impl Mem for Txn<'_> {
    fn rd(&self, off: u64) -> u64 {
        if let Some(index) = &self.index {
            if let Some(&i) = index.get(&off) {
                return self.writes[i].1;
            }
        } else if let Some(&(_, v)) = self.writes.iter().find(|(o, _)| *o == off) {
            return v;
        }
        self.st.rd(off)
    }
    fn store(&self) -> &Store {
        self.st
    }
}

impl<'a> Txn<'a> {
    /// Starts a mutation; the caller holds the lock.
    pub(crate) fn new(st: &'a Store) -> Self {
        journal::begin_mutation();
        let (writes, frees, allocated) =
            SPARE.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
        Txn {
            st,
            writes,
            index: None,
            top: st.rd(OFF_HEAP_TOP),
            frees,
            allocated,
        }
    }

    /// Records that the word at `off` becomes `value` at commit.
    pub(crate) fn wr(&mut self, off: u64, value: u64) {
        if let Some(index) = &mut self.index {
            match index.get(&off) {
                Some(&i) => self.writes[i].1 = value,
                None => {
                    index.insert(off, self.writes.len());
                    self.writes.push((off, value));
                }
            }
            return;
        }
        if let Some(w) = self.writes.iter_mut().find(|(o, _)| *o == off) {
            w.1 = value;
            return;
        }
        self.writes.push((off, value));
        if self.writes.len() > INDEX_AFTER {
            self.index = Some(
                self.writes
                    .iter()
                    .enumerate()
                    .map(|(i, (o, _))| (*o, i))
                    .collect(),
            );
        }
    }

    /// Allocates a block with at least `payload` bytes of payload, free in the committed
    /// state; returns the block's offset (payload at `+ BLOCK_HEADER`).
    pub(crate) fn alloc(&mut self, payload: u64) -> Result<u64, Error> {
        let total = payload.saturating_add(BLOCK_HEADER);
        let class = class_for(total).ok_or(Error::CapacityExceeded {
            requested: total,
            limit: self.st.seg.max_data_len() as u64,
        })?;
        let head = self.rd(free_head(class));
        if head != 0 {
            // The popped block's header still links to the rest of the committed list.
            let next = self.st.rd(head) & NEXT_MASK;
            self.wr(free_head(class), next);
            self.allocated.push(head);
            return Ok(head);
        }
        let block = self.top;
        let end = block + class_size(class);
        // Keep room for the journal of a small mutation past the heap top, so that a full
        // manager can still remove entries.
        let limit = (self.st.seg.max_data_len() as u64).saturating_sub(JOURNAL_HEADROOM);
        if end > limit {
            return Err(Error::CapacityExceeded {
                requested: end + JOURNAL_HEADROOM,
                limit: self.st.seg.max_data_len() as u64,
            });
        }
        self.st.ensure(end)?;
        self.top = end;
        // Past the committed heap top: nobody reads it until we commit.
        self.st.put(block, (class as u64) << 56);
        self.allocated.push(block);
        Ok(block)
    }

    /// Frees `block` at commit.
    pub(crate) fn free(&mut self, block: u64) {
        self.frees.push(block);
    }

    /// Publishes the mutation (see the module docs).
    pub(crate) fn commit(mut self) -> Result<(), Error> {
        let frees = std::mem::take(&mut self.frees);
        let fresh: Option<HashSet<u64>> = (!frees.is_empty() && self.allocated.len() > 16)
            .then(|| self.allocated.iter().copied().collect());
        let is_fresh = |allocated: &[u64], block: &u64| match &fresh {
            Some(set) => set.contains(block),
            None => allocated.contains(block),
        };
        for &block in &frees {
            let header = self.st.rd(block);
            let class = (header >> 56) as usize;
            let head = self.rd(free_head(class));
            let linked = (header & !NEXT_MASK) | head;
            if is_fresh(&self.allocated, &block) {
                // Allocated by this transaction (an entry replaced twice in one batch): in
                // the committed state it may sit on a free list whose link is this very
                // word, so the new link goes through the journal.
                self.wr(block, linked);
            } else {
                // The header word of a block live in the committed state is unused:
                // writing it now is invisible to the committed state.
                self.st.put(block, linked);
            }
            self.wr(free_head(class), block);
        }
        self.frees = frees;
        if self.top != self.st.rd(OFF_HEAP_TOP) {
            self.wr(OFF_HEAP_TOP, self.top);
        }
        if self.writes.is_empty() {
            return Ok(());
        }
        let journal = self.top;
        let n = self.writes.len() as u64;
        self.st.ensure(journal + 8 + n * JOURNAL_PAIR)?;
        journal::commit(self.st, journal, &self.writes, &mut fault_points);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length and alignment of the word-wise byte copies, against plain slices.
    #[test]
    fn word_wise_copies_match_byte_copies_at_every_offset_and_length() {
        let pattern: Vec<u8> = (0..64u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(1))
            .collect();
        for off in 0..16usize {
            for len in 0..=40usize {
                let mut words = vec![0u64; 8];
                let base = words.as_mut_ptr().cast::<u8>();
                // SAFETY: 64 bytes, 8-aligned; `off + len <= 56`, and the covering words of
                // that range lie inside the buffer; only this thread uses it.
                unsafe {
                    store_padded(base.add(off & !7), [&pattern[..len], &[]]);
                    let mut back = vec![0u8; len];
                    load_words(base.add(off & !7), &mut back);
                    assert_eq!(back, pattern[..len], "padded store, off {off} len {len}");
                    // Unaligned loads and compares of the same bytes.
                    let shift = off % 8;
                    if len >= shift {
                        let mut tail = vec![0u8; len - shift];
                        load_words(base.add((off & !7) + shift), &mut tail);
                        assert_eq!(tail, pattern[shift..len]);
                        assert!(eq_words(base.add((off & !7) + shift), &pattern[shift..len]));
                        if len > shift {
                            let mut other = pattern[shift..len].to_vec();
                            *other.last_mut().unwrap() ^= 0x80;
                            assert!(!eq_words(base.add((off & !7) + shift), &other));
                        }
                    }
                }
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                let start = off & !7;
                assert!(
                    bytes[start + len..(start + len).next_multiple_of(8)]
                        .iter()
                        .all(|&b| b == 0),
                    "the last word is zero-padded"
                );
            }
        }
    }

    /// Compares see only the range's bytes, whatever the bytes around them hold.
    #[test]
    fn compares_ignore_the_bytes_around_the_range() {
        let words = [u64::MAX; 4];
        let base = words.as_ptr().cast::<u8>();
        for off in 0..8usize {
            for len in 0..=(24 - off) {
                let ones = vec![0xffu8; len];
                // SAFETY: `off + len <= 24`, inside the 32-byte, 8-aligned buffer.
                unsafe {
                    assert!(eq_words(base.add(off), &ones));
                    if len > 0 {
                        let mut other = ones.clone();
                        other[len / 2] = 0xfe;
                        assert!(!eq_words(base.add(off), &other), "off {off} len {len}");
                    }
                }
            }
        }
        let zeros = [0u64; 4];
        let base = zeros.as_ptr().cast::<u8>();
        // SAFETY: as above.
        unsafe { assert!(!eq_words(base.add(3), &[0, 0, 1])) };
    }

    #[test]
    fn a_payload_in_two_parts_is_their_concatenation() {
        let (a, b): (Vec<u8>, Vec<u8>) = ((1..=11).collect(), (100..117).collect());
        for split in 0..=a.len() {
            let mut words = vec![0u64; 6];
            let base = words.as_mut_ptr().cast::<u8>();
            let mut back = vec![0u8; split + b.len()];
            // SAFETY: 48 bytes, 8-aligned; the padded payload (at most 32 bytes) fits.
            unsafe {
                store_padded(base, [&a[..split], &b]);
                load_words(base, &mut back);
            }
            assert_eq!(back, [&a[..split], &b[..]].concat());
        }
    }
}
