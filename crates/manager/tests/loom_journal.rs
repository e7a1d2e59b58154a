//! loom model of the manager's commit protocol (`src/journal.rs`, the code the segment
//! runs, on heap-backed loom atomics):
//!
//! * a reader without the lock that validates its view saw the old or the new state of a
//!   commit, never a mix;
//! * a writer that dies at any step (between any two of its stores) leaves a state that
//!   the next lock holder's recovery completes — exactly old before the commit point,
//!   exactly new after it — while a reader reads; a recoverer that dies mid-replay is
//!   completed by the next one;
//! * afterwards the sequence number is even and no journal is pending.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-manager
//! --release --test loom_journal`.

#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shm_manager::journal::loom_model::{HeapWords, JOURNAL, SEQ};

/// Two words that every committed state keeps equal.
const X: u64 = 64;
const Y: u64 = 72;
/// Where the writer puts its journal (free space).
const AT: u64 = 128;
/// Words of the model: root, the two words, the journal (8 + 2 * 16 bytes).
const WORDS: usize = 24;
/// Checkpoints of a complete two-word commit: before publishing, published, one per word
/// stored, applied.
const STEPS: usize = 5;

fn memory() -> Arc<HeapWords> {
    let w = HeapWords::new(WORDS);
    w.set(X, 1);
    w.set(Y, 1);
    Arc::new(w)
}

/// A reader's one optimistic attempt: if it validates, it saw X == Y.
fn read_once(w: &HeapWords) {
    if let Some(v) = w.read(&[X, Y]) {
        assert_eq!(v[0], v[1], "a validated read saw a torn state");
        assert!(v[0] == 1 || v[0] == 2);
    }
}

fn settled(w: &HeapWords) -> u64 {
    assert_eq!(w.get(JOURNAL), 0, "no journal pending");
    assert_eq!(w.get(SEQ) % 2, 0, "seq even");
    assert_eq!(w.get(X), w.get(Y));
    w.get(X)
}

#[test]
fn a_validated_read_sees_the_old_or_the_new_state() {
    loom::model(|| {
        let w = memory();
        let writer = {
            let w = Arc::clone(&w);
            thread::spawn(move || assert!(w.commit(AT, &[(X, 2), (Y, 2)], usize::MAX)))
        };
        read_once(&w);
        writer.join().unwrap();
        assert_eq!(settled(&w), 2);
        assert_eq!(w.get(SEQ), 2, "one commit: seq went 0 -> 1 -> 2");
    });
}

#[test]
fn a_writer_killed_at_any_step_is_completed_by_recovery() {
    for stop_after in 0..=STEPS {
        loom::model(move || {
            let w = memory();
            let writer = {
                let w = Arc::clone(&w);
                thread::spawn(move || w.commit(AT, &[(X, 2), (Y, 2)], stop_after))
            };
            let reader = {
                let w = Arc::clone(&w);
                thread::spawn(move || read_once(&w))
            };
            // The writer "dies" (stops); the robust lock hands the next holder OwnerDied.
            let completed = writer.join().unwrap();
            assert_eq!(completed, stop_after >= STEPS);
            assert!(w.recover(usize::MAX));
            reader.join().unwrap();
            let expected = if stop_after == 0 { 1 } else { 2 };
            assert_eq!(settled(&w), expected, "stopped after {stop_after} steps");
        });
    }
}

#[test]
fn a_recoverer_killed_mid_replay_is_completed_by_the_next() {
    for stop_after in 0..=3 {
        loom::model(move || {
            let w = memory();
            // The writer died right after publishing.
            assert!(!w.commit(AT, &[(X, 2), (Y, 2)], 1));
            let reader = {
                let w = Arc::clone(&w);
                thread::spawn(move || read_once(&w))
            };
            let first = {
                let w = Arc::clone(&w);
                thread::spawn(move || w.recover(stop_after))
            };
            assert!(!first.join().unwrap() || stop_after == 3);
            assert!(w.recover(usize::MAX));
            reader.join().unwrap();
            assert_eq!(settled(&w), 2);
        });
    }
}
