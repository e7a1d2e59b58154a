//! `Barrier` across processes: it trips with n processes and hands out every arrival index
//! once per round; a party SIGKILLed while waiting inside breaks it for the survivors
//! (`Broken`, not a hang), and `reset` makes it usable again.

mod common;

use std::time::Duration;

use common::{TEST_LIMIT, WAIT, recv, send};
use shm_lock::{Barrier, BarrierError, BrokenBarrier};
use test_support::{
    Watchdog, child_builder, iterations, run_child, signal_parent, test_name, wait_parent_line,
};

#[test]
fn three_processes_pass_many_rounds() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let rounds = iterations(100);
    let body = move || {
        let barrier: Barrier = recv();
        let indexes: Vec<String> = (0..rounds)
            .map(|_| {
                barrier
                    .wait_timeout(WAIT)
                    .expect("the round trips")
                    .to_string()
            })
            .collect();
        signal_parent(&format!("indexes {}", indexes.join(",")));
    };
    let mut children = [run_child(&name, "a", body), run_child(&name, "b", body)];
    let barrier = Barrier::new(3).unwrap();
    for child in &mut children {
        send(child, &barrier);
    }
    let mine: Vec<usize> = (0..rounds)
        .map(|_| barrier.wait().expect("the round trips"))
        .collect();
    let theirs: Vec<Vec<usize>> = children
        .iter_mut()
        .map(|child| {
            let line = child.wait_line("indexes", WAIT).unwrap();
            child.wait_success(WAIT);
            line.split(',').map(|i| i.parse().unwrap()).collect()
        })
        .collect();
    for round in 0..rounds {
        let mut got = [mine[round], theirs[0][round], theirs[1][round]];
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2], "round {round}");
    }
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.is_broken());
}

#[test]
fn a_party_killed_inside_breaks_the_barrier_for_the_others() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let mut victim = child_builder(&name, "victim")
        .park_at("shm_lock.barrier.wait.arrived")
        .spawn(|| {
            let barrier: Barrier = recv();
            let _ = barrier.wait();
            unreachable!("the victim parks inside the barrier");
        });
    let mut survivor = run_child(&name, "survivor", || {
        let barrier: Barrier = recv();
        assert_eq!(wait_parent_line(), "go");
        assert_eq!(barrier.wait_timeout(WAIT), Err(BarrierError::Broken));
    });
    let barrier = Barrier::new(3).unwrap();
    send(&mut victim, &barrier);
    send(&mut survivor, &barrier);
    victim
        .wait_parked("shm_lock.barrier.wait.arrived", WAIT)
        .unwrap();
    assert_eq!(barrier.n_waiting(), 1);
    victim.kill();
    victim.wait_timeout(WAIT).unwrap();
    // The parent now waits as the second party, the survivor as the third (or the
    // reverse): either way the dead party is noticed and everyone gets Broken.
    survivor.send_line("go").unwrap();
    assert_eq!(barrier.wait(), Err(BrokenBarrier));
    survivor.wait_success(WAIT);
    assert!(barrier.is_broken());
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(1)),
        Err(BarrierError::Broken)
    );
    barrier.reset();
    assert!(!barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0);
}

#[test]
fn a_timeout_breaks_the_barrier_for_the_other_waiters() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let barrier = Barrier::new(3).unwrap();
    std::thread::scope(|s| {
        let other = s.spawn(|| barrier.wait_timeout(WAIT));
        // Wait (through the primitive) until the other thread has arrived.
        while barrier.n_waiting() == 0 {
            std::thread::yield_now();
        }
        assert_eq!(
            barrier.wait_timeout(Duration::from_millis(20)),
            Err(BarrierError::Timeout)
        );
        assert_eq!(other.join().unwrap(), Err(BarrierError::Broken));
    });
    barrier.reset();
    let single = Barrier::new(1).unwrap();
    assert_eq!(single.wait(), Ok(0));
}

#[test]
fn reset_breaks_current_waiters_only() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let barrier = Barrier::new(2).unwrap();
    std::thread::scope(|s| {
        let other = s.spawn(|| barrier.wait_timeout(WAIT));
        while barrier.n_waiting() == 0 {
            std::thread::yield_now();
        }
        barrier.reset();
        assert_eq!(other.join().unwrap(), Err(BarrierError::Broken));
    });
    assert!(!barrier.is_broken());
    std::thread::scope(|s| {
        let other = s.spawn(|| barrier.wait());
        let mine = barrier.wait().unwrap();
        assert_eq!(mine + other.join().unwrap().unwrap(), 1);
    });
}
