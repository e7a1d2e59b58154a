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

use std::collections::{HashMap, HashSet};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use shm_lock::{AcquireError, LockGuard, RawLock, TryAcquireError};
use shm_segment::{Segment, fault};

use crate::error::Error;
use crate::layout::{
    BLOCK_HEADER, HEAP_START, JOURNAL_PAIR, MAGIC, NEXT_MASK, OFF_DIRECTORY, OFF_HEAP_TOP,
    OFF_JOURNAL, OFF_LOCK, OFF_MAGIC, OFF_VERSION, VERSION, class_for, class_size, free_head,
};

/// Copies `len` bytes; small copies word by word, cheaper than a call to `memcpy`.
///
/// # Safety
///
/// As [`ptr::copy_nonoverlapping`]: `src` readable and `dst` writable for `len` bytes, not
/// overlapping.
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    if len > 64 {
        // SAFETY: the caller's contract.
        unsafe { ptr::copy_nonoverlapping(src, dst, len) };
        return;
    }
    let words = len / 8;
    for w in 0..words {
        // SAFETY: `8 * w + 8 <= len`: inside both ranges (caller); unaligned access is
        // allowed by `read_unaligned` / `write_unaligned`.
        unsafe {
            let word = src.add(8 * w).cast::<u64>().read_unaligned();
            dst.add(8 * w).cast::<u64>().write_unaligned(word);
        }
    }
    for b in 8 * words..len {
        // SAFETY: `b < len`: inside both ranges (caller).
        unsafe { dst.add(b).write(src.add(b).read()) };
    }
}

#[cold]
#[inline(never)]
fn out_of_bounds(off: u64, len: u64, mapped: u64) -> ! {
    panic!(
        "shm-manager: offset {off}+{len} outside the mapped {mapped} bytes or misaligned: the segment is corrupt"
    )
}

/// Reads words of the segment: directly ([`Store`]) or through a transaction's pending
/// writes ([`Txn`]).
pub(crate) trait Mem {
    /// The word at `off`.
    fn rd(&self, off: u64) -> u64;
    /// The store underneath.
    fn store(&self) -> &Store;
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
        if len > self.mapped.load(Ordering::Relaxed) {
            self.mapped.fetch_max(len, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    fn check(&self, off: u64, len: u64) -> *mut u8 {
        let mapped = self.mapped.load(Ordering::Relaxed);
        match off.checked_add(len) {
            Some(end) if end <= mapped => {}
            _ => out_of_bounds(off, len, mapped),
        }
        // SAFETY: in bounds of the mapped data area (checked above).
        unsafe { self.seg.data().as_ptr().add(off as usize) }
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

    /// Copies `len` bytes at `off` to the end of `out`.
    pub(crate) fn read_bytes(&self, off: u64, len: u64, out: &mut Vec<u8>) {
        let p = self.check(off, len);
        out.reserve(len as usize);
        // SAFETY: `p..p+len` is mapped (checked); we hold the lock, so no process writes
        // these bytes now; `out` has room for `len` more bytes, which we initialise.
        unsafe {
            ptr::copy_nonoverlapping(p, out.as_mut_ptr().add(out.len()), len as usize);
            out.set_len(out.len() + len as usize);
        }
    }

    /// Runs `f` on a copy of the `len` bytes at `off` (on the stack when small).
    #[inline]
    pub(crate) fn with_bytes<R>(&self, off: u64, len: u64, f: impl FnOnce(&[u8]) -> R) -> R {
        if len as usize <= INLINE {
            let p = self.check(off, len);
            let mut buf = MaybeUninit::<[u8; INLINE]>::uninit();
            // SAFETY: `p..p+len` is mapped (checked) and `len <= INLINE`; we hold the lock,
            // so no process writes these bytes now; after the copy the first `len` bytes of
            // `buf` are initialised, and only they are viewed.
            unsafe {
                let dst = buf.as_mut_ptr().cast::<u8>();
                copy_bytes(p, dst, len as usize);
                f(std::slice::from_raw_parts(dst, len as usize))
            }
        } else {
            let mut out = Vec::new();
            self.read_bytes(off, len, &mut out);
            f(&out)
        }
    }

    /// Whether the `bytes.len()` bytes at `off` equal `bytes`.
    pub(crate) fn bytes_eq(&self, off: u64, bytes: &[u8]) -> bool {
        let p = self.check(off, bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        let mut at = 0;
        for chunk in &mut chunks {
            // SAFETY: `p + at .. p + at + 8` is in the checked range; we hold the lock, so
            // no one writes it; unaligned reads are allowed by `read_unaligned`.
            let word = unsafe { p.add(at).cast::<[u8; 8]>().read_unaligned() };
            if word != *chunk {
                return false;
            }
            at += 8;
        }
        chunks.remainder().iter().enumerate().all(|(i, b)| {
            // SAFETY: as above, inside the checked range.
            unsafe { p.add(at + i).read() == *b }
        })
    }

    /// Writes `bytes` at `off` (a block that is free in the committed state).
    pub(crate) fn write_bytes(&self, off: u64, bytes: &[u8]) {
        let p = self.check(off, bytes.len() as u64);
        // SAFETY: in bounds (checked); the bytes belong to a block free in the committed
        // state and we hold the lock, so no one else reads or writes them.
        unsafe { copy_bytes(bytes.as_ptr(), p, bytes.len()) };
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
        self.refresh()?;
        // A recoverer that died after marking the lock consistent (it does so only after
        // replaying) cannot leave a journal behind, but a check is one load.
        // [journal] Acquire: pairs with the Release publication in `Txn::commit`.
        if self.word(OFF_JOURNAL).load(Ordering::Acquire) != 0 {
            self.recover()?;
        }
        Ok(guard)
    }

    /// As [`lock`](Self::lock), but `Ok(None)` at once instead of waiting while another
    /// thread holds the lock (for `inspect`, which must never block).
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
        self.refresh()?;
        // [journal] Acquire: pairs with the Release publication in `Txn::commit`.
        if self.word(OFF_JOURNAL).load(Ordering::Acquire) != 0 {
            self.recover()?;
        }
        Ok(Some(guard))
    }

    /// Replays the committed journal, if any (lock held).
    fn recover(&self) -> Result<(), Error> {
        // [journal] Acquire: pairs with the Release publication in `Txn::commit`.
        let journal = self.word(OFF_JOURNAL).load(Ordering::Acquire);
        if journal == 0 {
            return Ok(());
        }
        let count = self.rd(journal);
        let end = count
            .checked_mul(JOURNAL_PAIR)
            .and_then(|n| n.checked_add(journal + 8));
        if end.is_none_or(|e| e > self.seg.data_len() as u64) {
            return Err(Error::Corrupt {
                reason: format!("journal at {journal} claims {count} writes"),
            });
        }
        for i in 0..count {
            if i == count / 2 {
                fault::point("manager.recover.half_replayed");
            }
            let at = journal + 8 + i * JOURNAL_PAIR;
            let (off, value) = (self.rd(at), self.rd(at + 8));
            self.put(off, value);
        }
        // [journal-done] Release: pairs with the Acquire loads of `Root::journal` in
        // `Store::lock` and `Store::recover`; whoever sees no journal sees the applied words.
        self.word(OFF_JOURNAL).store(0, Ordering::Release);
        Ok(())
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
}

/// Values up to this many bytes are copied out without allocating.
const INLINE: usize = 128;

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
        for (i, &(off, value)) in self.writes.iter().enumerate() {
            let at = journal + 8 + i as u64 * JOURNAL_PAIR;
            self.st.put(at, off);
            self.st.put(at + 8, value);
        }
        self.st.put(journal, n);
        fault::point("manager.commit.before_publish");
        // [journal] Release: pairs with the Acquire loads in `Store::lock` and
        // `Store::recover`; the journal words above are visible to a recoverer.
        self.st.word(OFF_JOURNAL).store(journal, Ordering::Release);
        fault::point("manager.commit.published");
        let half = self.writes.len() / 2;
        for (i, &(off, value)) in self.writes.iter().enumerate() {
            if i == half {
                fault::point("manager.commit.half_applied");
            }
            self.st.put(off, value);
        }
        fault::point("manager.commit.applied");
        // [journal-done] Release: pairs with the Acquire loads of `Root::journal` in
        // `Store::lock` and `Store::recover`, as in `Store::recover`.
        self.st.word(OFF_JOURNAL).store(0, Ordering::Release);
        Ok(())
    }
}
