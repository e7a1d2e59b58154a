//! Loom models of [`shm_lock::RawBarrier`] (RELIABILITY.md row 22): the real `wait` on a
//! heap-backed barrier, with the futex calls and the barrier's internal lock on loom's
//! model of the kernel (the robust pthread mutex cannot run under loom; the model is an
//! error-checking mutex whose owner never dies, and the liveness checks find every party
//! alive, as they are). A party left behind shows as a loom deadlock.
//!
//! Run: `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p shm-lock --release --test loom_barrier`.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use shm_lock::loom_support;

/// Two parties, two generations: in each, the parties get the arrival indices 0 and 1 and
/// both leave; the second generation reuses the barrier. What a party wrote before the
/// first `wait` is visible to the other after it ([barrier-phase], or the internal lock).
#[test]
fn two_parties_pass_two_generations() {
    loom::model(|| {
        let barrier = loom_support::barrier(2);
        let cells = Arc::new([UnsafeCell::new(0u32), UnsafeCell::new(0u32)]);
        let party = |me: usize| {
            let (barrier, cells) = (Arc::clone(&barrier), Arc::clone(&cells));
            move || {
                // SAFETY: the other party reads this cell only after the first `wait`.
                cells[me].with_mut(|c| unsafe { *c = 1 });
                let first = barrier.wait().expect("the barrier broke");
                // SAFETY: loom checks this read happens after the other party's write.
                assert_eq!(cells[1 - me].with(|c| unsafe { *c }), 1);
                let second = barrier.wait().expect("the barrier broke");
                [first, second]
            }
        };
        let other = thread::spawn(party(1));
        let mine = party(0)();
        let other = other.join().unwrap();
        for generation in 0..2 {
            let mut indices = [mine[generation], other[generation]];
            indices.sort_unstable();
            assert_eq!(indices, [0, 1], "generation {generation}");
        }
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.is_broken());
    });
}

/// Three parties: each gets a distinct arrival index, the last to arrive `parties - 1`,
/// and all three leave.
#[test]
fn three_parties_get_distinct_indices() {
    loom::model(|| {
        let barrier = loom_support::barrier(3);
        let others: Vec<_> = (0..2)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || barrier.wait().expect("the barrier broke"))
            })
            .collect();
        let mut indices = vec![barrier.wait().expect("the barrier broke")];
        for other in others {
            indices.push(other.join().unwrap());
        }
        indices.sort_unstable();
        assert_eq!(indices, [0, 1, 2]);
        assert_eq!(barrier.n_waiting(), 0);
    });
}
