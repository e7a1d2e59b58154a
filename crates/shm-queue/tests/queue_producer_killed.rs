//! A producer SIGKILLed after claiming a slot and before publishing it: consumers skip the
//! slot once they see its owner is dead; only that message is lost; nothing is duplicated
//! or reordered.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share, spin_until};
use shm_queue::{Queue, TryGetError};
use test_support::{Watchdog, child_builder, iterations, test_name, wait_parent_line};

const POINT: &str = "shm_queue.put.claimed";
const CAPACITY: usize = 4;

#[test]
fn dead_producer_slot_is_skipped() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<(u32, u64)>::builder()
        .capacity(CAPACITY)
        .max_message_size(32)
        .create_anonymous()
        .unwrap();
    let token = share(&q);
    let rounds = iterations(6);
    // Spawn every child before using any handle (test-support's rule); each waits for
    // "go", then parks in its first put, after claiming the slot.
    let mut victims: Vec<_> = (0..rounds)
        .map(|round| {
            child_builder(&test_name!(), &format!("victim-{round}"))
                .park_at(POINT)
                .env(QUEUE_ENV, &token)
                .spawn(|| {
                    let q: Queue<(u32, u64)> = from_env(QUEUE_ENV);
                    assert_eq!(wait_parent_line(), "go");
                    q.put((99, 0)).unwrap();
                    unreachable!("the fault point parks the process");
                })
        })
        .collect();
    let mut next = 0_u64;
    for (round, victim) in victims.iter_mut().enumerate() {
        // Tell the victim to go: it parks holding the slot of the current tail, which moves
        // round by round, wrapping around the ring.
        victim.send_line("go").unwrap();
        victim.wait_parked(POINT, WAIT).unwrap();
        let behind = (round % (CAPACITY - 1)) as u64 + 1;
        for _ in 0..behind {
            q.put((0, next)).unwrap();
            next += 1;
        }
        // The claimed slot is at the front and its owner lives: nothing can be taken yet.
        assert_eq!(q.try_get(), Err(TryGetError::Empty));
        assert_eq!(q.len(), behind as usize + 1);
        let first = next - behind;
        if round % 2 == 0 {
            // A consumer already asleep in `get` is not stuck behind the dead slot.
            let sleeper = {
                let q = q.clone();
                std::thread::spawn(move || {
                    (0..behind).map(|_| q.get().unwrap()).collect::<Vec<_>>()
                })
            };
            spin_until(|| q.waiting().getters == 1);
            victim.kill();
            let got = sleeper.join().unwrap();
            assert_eq!(got, (first..next).map(|seq| (0, seq)).collect::<Vec<_>>());
        } else {
            victim.kill();
            let status = victim.wait_timeout(WAIT).unwrap();
            assert_eq!(status.signal(), Some(9));
            // `try_get` checks the owner too.
            for seq in first..next {
                assert_eq!(q.try_get(), Ok((0, seq)));
            }
        }
        assert_eq!(q.try_get(), Err(TryGetError::Empty));
        assert!(q.is_empty());
    }
    // The queue is as good as new: fill it and drain it.
    for seq in 0..CAPACITY as u64 {
        q.try_put((1, seq)).unwrap();
    }
    for seq in 0..CAPACITY as u64 {
        assert_eq!(q.try_get(), Ok((1, seq)));
    }
}

/// `positions`: a mark taken after a put is passed by `get` only once everything below it
/// was taken; a live producer's claimed slot in front holds it back, a dead one's does not.
#[test]
fn positions_pass_a_mark_only_when_everything_below_it_was_taken() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<(u32, u64)>::builder()
        .capacity(CAPACITY)
        .max_message_size(32)
        .create_anonymous()
        .unwrap();
    let mut victim = child_builder(&test_name!(), "victim")
        .park_at(POINT)
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: Queue<(u32, u64)> = from_env(QUEUE_ENV);
            q.put((99, 0)).unwrap();
            unreachable!("the fault point parks the process");
        });
    victim.wait_parked(POINT, WAIT).unwrap();
    q.put((0, 1)).unwrap();
    let mark = q.positions().put;
    assert_eq!(mark, 2, "the victim's claim and our put");
    // Our message sits behind a slot a live producer is still writing.
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    assert!(q.positions().get < mark);
    victim.kill();
    victim.wait_timeout(WAIT).unwrap();
    assert_eq!(q.try_get(), Ok((0, 1)));
    assert_eq!(q.positions(), shm_queue::Positions { put: 2, get: 2 });
}
