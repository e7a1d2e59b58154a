//! The commit protocol of a manager's segment: how a mutation is published (a redo
//! journal and one Release store), how the next lock holder completes a mutation whose
//! writer died, and how readers without the lock tell a consistent view from a torn one (a
//! sequence number, odd while words are being applied in place).
//!
//! It runs on any [`Words`]: the mapped segment ([`Store`](crate::store::Store)), or the
//! heap-backed words of [`loom_model`] that `tests/loom_journal.rs` model-checks, so the
//! checked code is the code that runs.
//!
//! # Writer (lock held)
//!
//! 0. [`begin_mutation`]: a Release fence right after taking the lock. Free space may hold
//!    a block that an earlier commit freed, perhaps in another process; a reader that
//!    started before that commit and sees what this writer now writes there must also see
//!    that commit's `seq` (the lock orders the earlier commit before this writer, but not
//!    before the reader).
//! 1. Write new entries, tables and arrays into blocks free in the committed state, then
//!    the journal — `count`, then `count` pairs `(offset, value)` — into free space. (The
//!    header words of blocks being freed are written too; readers never read header
//!    words.)
//! 2. `journal = at` (Release): the commit point. Killed before it, nothing happened.
//! 3. `seq += 1` (odd), then a Release fence: any reader that sees a word written below
//!    also sees the odd `seq` when it re-checks.
//! 4. Apply the pairs in place.
//! 5. `seq += 1` (even, Release), then `journal = 0` (Release).
//!
//! A writer killed between 2 and 5 leaves `journal` set: the next lock holder replays it
//! ([`recover`]; the writes are absolute, so replaying a partly applied journal is
//! harmless) with the same odd/even bracket, and a recoverer killed mid-replay is itself
//! completed by the next one.
//!
//! # Reader (no lock)
//!
//! [`read_begin`] loads `seq` (Acquire) and refuses an odd one; the reader then loads what
//! it needs with Relaxed atomics, and [`read_valid`] (an Acquire fence, then `seq` again)
//! says whether no word was applied in between — if so, everything read belongs to the
//! state committed before `read_begin`. Between commits, writers write only to blocks that
//! are free in that state (and to header words), which a valid read never reaches; a
//! reader that reaches them through a stale offset fails validation (steps 0 and 3). A
//! reader that keeps failing
//! (a writer applying, or dead with `seq` odd) falls back to the lock, whose recovery makes
//! `seq` even again.

use crate::layout::{JOURNAL_PAIR, OFF_JOURNAL, OFF_SEQ};
use crate::sync::{Ordering, fence};

/// Word-addressed shared memory: offsets are bytes from the start of the data area and
/// multiples of 8.
pub(crate) trait Words {
    /// Loads the word at `off`.
    fn load_word(&self, off: u64, order: Ordering) -> u64;
    /// Stores `value` at `off`.
    fn store_word(&self, off: u64, value: u64, order: Ordering);
    /// Bytes of the data area that may be addressed.
    fn limit(&self) -> u64;
}

/// The moments of a commit and of a replay at which `stop` is asked whether to stop there,
/// as a process killed at that moment would (the loom model's way of dying). The real code
/// parks there when a test asks ([`Point::fault_point`]) and never stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// The journal is written, not yet published.
    BeforePublish,
    /// Published, nothing applied yet.
    Published,
    /// Half of the words applied.
    HalfApplied,
    /// Every word applied, `seq` still odd.
    Applied,
    /// Half of a dead writer's journal replayed.
    HalfReplayed,
    /// Between two other word stores of an apply or a replay.
    Word,
}

impl Point {
    /// The name of the fault point ([`shm_segment::fault::point`]) at this moment, if any.
    pub(crate) fn fault_point(self) -> Option<&'static str> {
        match self {
            Point::BeforePublish => Some("manager.commit.before_publish"),
            Point::Published => Some("manager.commit.published"),
            Point::HalfApplied => Some("manager.commit.half_applied"),
            Point::Applied => Some("manager.commit.applied"),
            Point::HalfReplayed => Some("manager.recover.half_replayed"),
            Point::Word => None,
        }
    }
}

/// A journal that does not fit the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadJournal {
    /// Its offset.
    pub at: u64,
    /// The count it claims.
    pub count: u64,
}

/// Starts a mutation: call right after taking the lock, before writing anything (step 0
/// above).
#[inline(always)]
pub(crate) fn begin_mutation() {
    // [reuse] Release fence: pairs with the Acquire fence in `read_valid`; a reader that
    // loads a word this writer stores into free space sees every `seq` store that happened
    // before the lock was handed to this writer.
    fence(Ordering::Release);
}

/// Publishes `writes` through a journal written at `at` (free space with room for
/// `8 + 16 * writes.len()` bytes), then applies them. Returns `false` if `stop` stopped it.
/// The caller holds the lock and `Root::journal` is 0.
pub(crate) fn commit(
    w: &impl Words,
    at: u64,
    writes: &[(u64, u64)],
    stop: &mut impl FnMut(Point) -> bool,
) -> bool {
    for (i, &(off, value)) in writes.iter().enumerate() {
        let pair = at + 8 + i as u64 * JOURNAL_PAIR;
        w.store_word(pair, off, Ordering::Relaxed);
        w.store_word(pair + 8, value, Ordering::Relaxed);
    }
    w.store_word(at, writes.len() as u64, Ordering::Relaxed);
    if stop(Point::BeforePublish) {
        return false;
    }
    // [journal] Release: pairs with the Acquire load in `recover`; a recoverer that sees
    // the offset sees the journal's words above. (Redundant with the robust lock, which
    // orders a dead holder's writes before its next holder, as long as only lock holders
    // read `Root::journal`; kept so that the journal alone says what it needs.)
    w.store_word(OFF_JOURNAL, at, Ordering::Release);
    if stop(Point::Published) {
        return false;
    }
    apply(
        w,
        writes.len() as u64,
        |i| writes[i as usize],
        Point::HalfApplied,
        stop,
    )
}

/// Completes a committed mutation whose writer died (caller holds the lock, told
/// `OwnerDied`, or found `journal` set). Returns `Ok(false)` if `stop` stopped it.
///
/// # Errors
///
/// [`BadJournal`] if the journal claims more words than the segment holds.
pub(crate) fn recover(
    w: &impl Words,
    stop: &mut impl FnMut(Point) -> bool,
) -> Result<bool, BadJournal> {
    // [journal] Acquire: pairs with the Release publication in `commit`.
    let at = w.load_word(OFF_JOURNAL, Ordering::Acquire);
    if at == 0 {
        // No journal but an odd `seq`: nothing is half-applied (the journal is cleared
        // only after `seq` is even again), so only `seq` needs mending.
        let seq = w.load_word(OFF_SEQ, Ordering::Relaxed);
        if seq % 2 == 1 {
            // [seq-even] Release: as in `apply`.
            w.store_word(OFF_SEQ, seq + 1, Ordering::Release);
        }
        return Ok(true);
    }
    let count = w.load_word(at, Ordering::Relaxed);
    let end = count
        .checked_mul(JOURNAL_PAIR)
        .and_then(|n| n.checked_add(at))
        .and_then(|n| n.checked_add(8));
    if end.is_none_or(|end| end > w.limit()) {
        return Err(BadJournal { at, count });
    }
    let pair = |i: u64| {
        let p = at + 8 + i * JOURNAL_PAIR;
        (
            w.load_word(p, Ordering::Relaxed),
            w.load_word(p + 8, Ordering::Relaxed),
        )
    };
    Ok(apply(w, count, pair, Point::HalfReplayed, stop))
}

/// Steps 3 to 5 of the writer: `seq` odd, the `count` pairs `pair(i)` stored in place,
/// `seq` even, the journal cleared.
fn apply(
    w: &impl Words,
    count: u64,
    pair: impl Fn(u64) -> (u64, u64),
    half: Point,
    stop: &mut impl FnMut(Point) -> bool,
) -> bool {
    // Only lock holders write `seq`; a dead applier may have left it odd already.
    let odd = w.load_word(OFF_SEQ, Ordering::Relaxed) | 1;
    w.store_word(OFF_SEQ, odd, Ordering::Relaxed);
    // [seq-odd] Release fence: pairs with the Acquire fence in `read_valid`; a reader that
    // loads any word stored below sees the odd `seq` (or a later one) when it re-checks.
    fence(Ordering::Release);
    for i in 0..count {
        if stop(if i == count / 2 { half } else { Point::Word }) {
            return false;
        }
        let (off, value) = pair(i);
        w.store_word(off, value, Ordering::Relaxed);
    }
    if stop(Point::Applied) {
        return false;
    }
    // [seq-even] Release: pairs with the Acquire load in `read_begin`; a reader that sees
    // the even `seq` sees every word applied above.
    w.store_word(OFF_SEQ, odd + 1, Ordering::Release);
    // [journal-done] Release: pairs with the Acquire loads of `Root::journal` in `recover`
    // and `Store::lock`; whoever sees no journal sees the applied words.
    w.store_word(OFF_JOURNAL, 0, Ordering::Release);
    true
}

/// Starts a read without the lock: the current sequence number, or `None` while words are
/// being applied (or a writer died applying them).
#[inline(always)]
pub(crate) fn read_begin(w: &impl Words) -> Option<u64> {
    // [seq-even] Acquire: pairs with the Release store of an even `seq` in `apply`.
    let seq = w.load_word(OFF_SEQ, Ordering::Acquire);
    seq.is_multiple_of(2).then_some(seq)
}

/// Whether every word loaded since [`read_begin`] returned `seq` belongs to the state
/// committed before it.
#[inline(always)]
pub(crate) fn read_valid(w: &impl Words, seq: u64) -> bool {
    // [seq-odd] Acquire fence: pairs with the Release fence in `apply`; if any load above
    // saw an applied word, the load below sees the odd `seq` stored before it.
    fence(Ordering::Acquire);
    w.load_word(OFF_SEQ, Ordering::Relaxed) == seq
}

/// The protocol on heap-backed loom atomics, for `tests/loom_journal.rs`.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model {
    use loom::sync::atomic::AtomicU64;

    use super::{BadJournal, Point, Words};
    use crate::sync::Ordering;

    /// Offset of `Root::journal`.
    pub const JOURNAL: u64 = crate::layout::OFF_JOURNAL;
    /// Offset of `Root::seq`.
    pub const SEQ: u64 = crate::layout::OFF_SEQ;

    /// `n` words of memory, all zero.
    pub struct HeapWords(Vec<AtomicU64>);

    impl HeapWords {
        /// `n` zeroed words (offsets `0..8 * n`).
        pub fn new(n: usize) -> Self {
            HeapWords((0..n).map(|_| AtomicU64::new(0)).collect())
        }

        /// A Relaxed load (for checks after the threads joined).
        pub fn get(&self, off: u64) -> u64 {
            self.load_word(off, Ordering::Relaxed)
        }

        /// A Relaxed store (for setting up before the threads start).
        pub fn set(&self, off: u64, value: u64) {
            self.store_word(off, value, Ordering::Relaxed);
        }

        /// [`super::begin_mutation`]: the fence a writer issues right after taking the lock.
        pub fn begin_mutation(&self) {
            super::begin_mutation();
        }

        /// [`super::commit`]; `stop_after` checkpoints pass before it stops (`usize::MAX`:
        /// never).
        pub fn commit(&self, at: u64, writes: &[(u64, u64)], stop_after: usize) -> bool {
            super::commit(self, at, writes, &mut countdown(stop_after))
        }

        /// [`super::recover`], stopping as in [`commit`](Self::commit).
        pub fn recover(&self, stop_after: usize) -> bool {
            match super::recover(self, &mut countdown(stop_after)) {
                Ok(done) => done,
                Err(BadJournal { at, count }) => panic!("bad journal at {at}: {count}"),
            }
        }

        /// Loads `offs` as a reader without the lock: `None` unless the view is valid.
        pub fn read(&self, offs: &[u64]) -> Option<Vec<u64>> {
            let seq = super::read_begin(self)?;
            let values = offs
                .iter()
                .map(|&o| self.load_word(o, Ordering::Relaxed))
                .collect();
            super::read_valid(self, seq).then_some(values)
        }
    }

    fn countdown(mut left: usize) -> impl FnMut(Point) -> bool {
        move |_| {
            if left == 0 {
                return true;
            }
            left -= 1;
            false
        }
    }

    impl Words for HeapWords {
        fn load_word(&self, off: u64, order: Ordering) -> u64 {
            self.0[(off / 8) as usize].load(order)
        }
        fn store_word(&self, off: u64, value: u64, order: Ordering) {
            self.0[(off / 8) as usize].store(value, order);
        }
        fn limit(&self) -> u64 {
            8 * self.0.len() as u64
        }
    }
}
