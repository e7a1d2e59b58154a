//! loom model of the manager's commit protocol (`src/journal.rs`, the code the segment
//! runs, on heap-backed loom atomics):
//!
//! * a reader without the lock that validates its view saw the old or the new state of a
//!   commit, never a mix — also when the next lock holder, on another thread, rewrites a
//!   block that commit freed;
//! * a writer that dies at any step (between any two of its stores) leaves a state that
//!   the next lock holder's recovery completes — exactly old before the commit point,
//!   exactly new after it — while a reader reads; a recoverer that dies mid-replay is
//!   completed by the next one;
//! * afterwards the sequence number is even and no journal is pending.
//!
//! A death is modelled as the robust lock reports it: the kernel sets the owner-died bit
//! with an atomic read-modify-write of the lock word after the owner's last instruction,
//! and the next holder's acquiring compare-and-swap reads it, so the recoverer sees
//! everything the dead writer wrote (a Release store / Acquire load of a flag here). The
//! Release and Acquire on `Root::journal` are therefore redundant with the lock and not
//! what this model checks; it checks the orderings readers without the lock depend on (the
//! fence of `begin_mutation`, the odd-`seq` fence, the even-`seq` Release, and the reader's
//! Acquire load and fence), each of whose removal makes a test here fail.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-manager
//! --release --test loom_journal`.

#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
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

/// Waits, as the next lock holder does, until the robust lock reports the owner dead.
fn wait_dead(dead: &AtomicBool) {
    while !dead.load(Ordering::Acquire) {
        thread::yield_now();
    }
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
fn a_block_freed_by_one_writer_and_rewritten_by_the_next_is_never_read_as_live() {
    // X points at a payload block: P1 (holding 7) before the commit, P2 (holding 9) after.
    // The commit frees P1; the next lock holder, another thread, writes 13 into it.
    const P1: u64 = 80;
    const P2: u64 = 96;
    loom::model(|| {
        let w = HeapWords::new(WORDS);
        w.set(X, P1);
        w.set(P1, 7);
        let w = Arc::new(w);
        let lock = Arc::new(Mutex::new(false));
        let first = {
            let (w, lock) = (Arc::clone(&w), Arc::clone(&lock));
            thread::spawn(move || {
                let mut committed = lock.lock().unwrap();
                w.begin_mutation();
                w.set(P2, 9);
                assert!(w.commit(AT, &[(X, P2)], usize::MAX));
                *committed = true;
            })
        };
        let next = {
            let (w, lock) = (Arc::clone(&w), Arc::clone(&lock));
            thread::spawn(move || {
                let committed = lock.lock().unwrap();
                if *committed {
                    w.begin_mutation();
                    w.set(P1, 13);
                }
            })
        };
        if let Some(v) = w.read(&[X, P1, P2]) {
            match v[0] {
                P1 => assert_eq!(v[1], 7, "a validated read followed X to a reused block"),
                P2 => assert_eq!(v[2], 9),
                x => panic!("X = {x}"),
            }
        }
        first.join().unwrap();
        next.join().unwrap();
    });
}

#[test]
fn a_writer_killed_at_any_step_is_completed_by_recovery() {
    for stop_after in 0..=STEPS {
        loom::model(move || {
            let w = memory();
            let dead = Arc::new(AtomicBool::new(false));
            let writer = {
                let (w, dead) = (Arc::clone(&w), Arc::clone(&dead));
                thread::spawn(move || {
                    let completed = w.commit(AT, &[(X, 2), (Y, 2)], stop_after);
                    assert_eq!(completed, stop_after >= STEPS);
                    // The kernel's owner-died update of the lock word.
                    dead.store(true, Ordering::Release);
                })
            };
            let reader = {
                let w = Arc::clone(&w);
                thread::spawn(move || read_once(&w))
            };
            wait_dead(&dead);
            assert!(w.recover(usize::MAX));
            let recovered = settled(&w);
            reader.join().unwrap();
            writer.join().unwrap();
            let expected = if stop_after == 0 { 1 } else { 2 };
            assert_eq!(recovered, expected, "stopped after {stop_after} steps");
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
            let dead = Arc::new(AtomicBool::new(false));
            let reader = {
                let w = Arc::clone(&w);
                thread::spawn(move || read_once(&w))
            };
            let first = {
                let (w, dead) = (Arc::clone(&w), Arc::clone(&dead));
                thread::spawn(move || {
                    let done = w.recover(stop_after);
                    assert!(!done || stop_after == 3);
                    dead.store(true, Ordering::Release);
                })
            };
            wait_dead(&dead);
            assert!(w.recover(usize::MAX));
            assert_eq!(settled(&w), 2);
            reader.join().unwrap();
            first.join().unwrap();
        });
    }
}
