//! SIGKILL a `Queue` producer, and separately a consumer, at arbitrary points of a busy
//! loop, round after round: the survivors never hang, lose at most the one message the
//! dead process had in flight, and see no duplicate and no reordering.

mod common;

use std::time::Duration;

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share};
use shm_queue::Queue;
use test_support::{ChildHandle, Watchdog, child_builder, iterations, test_name, wait_parent_line};

/// Producer id of the messages the parent itself puts.
const PARENT: u32 = u32::MAX;

/// A deterministic spread of kill moments: 1..=40 messages into a round.
fn progress_before_kill(round: usize) -> u64 {
    (round as u64 * 7919 + 13) % 40 + 1
}

/// A new victim process for one round. Every round's victim plays the same role: in the
/// child, the test body reaches this call first and runs `body` there.
fn spawn_victim(name: &str, token: &str, body: fn()) -> ChildHandle {
    child_builder(name, "victim")
        .env(QUEUE_ENV, token)
        .spawn(body)
}

#[test]
fn producers_killed_at_random_points() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<(u32, u64)>::builder()
        .capacity(8)
        .max_message_size(32)
        .create_anonymous()
        .unwrap();
    let (name, token) = (test_name!(), share(&q));
    for round in 0..iterations(500) {
        let mut victim = spawn_victim(&name, &token, || {
            let q: Queue<(u32, u64)> = from_env(QUEUE_ENV);
            let id: u32 = wait_parent_line().parse().unwrap();
            for seq in 0.. {
                q.put((id, seq)).unwrap();
            }
        });
        let id = round as u32;
        victim.send_line(&id.to_string()).unwrap();
        let kill_after = progress_before_kill(round);
        for seq in 0..kill_after {
            assert_eq!(q.get_timeout(WAIT), Ok((id, seq)));
        }
        victim.kill();
        victim.wait_timeout(WAIT).unwrap();
        // Whatever the victim published is still there, contiguous and in order; a slot
        // it claimed but never published is skipped (`try_get` checks the owner; with the
        // victim reaped, `Empty` means empty).
        let mut next = kill_after;
        while let Ok((producer, seq)) = q.try_get() {
            assert_eq!(
                (producer, seq),
                (id, next),
                "a gap, duplicate or stray message"
            );
            next += 1;
        }
        // No wedge: a message put now comes straight out.
        q.put_timeout((PARENT, round as u64), WAIT).unwrap();
        assert_eq!(q.get_timeout(WAIT), Ok((PARENT, round as u64)));
        assert!(q.is_empty());
    }
}

#[test]
fn consumers_killed_at_random_points() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<u64>::builder()
        .capacity(8)
        .max_message_size(16)
        .create_anonymous()
        .unwrap();
    let (name, token) = (test_name!(), share(&q));
    let mut next = 0_u64;
    for round in 0..iterations(500) {
        let mut victim = spawn_victim(&name, &token, || {
            let q: Queue<u64> = from_env(QUEUE_ENV);
            assert_eq!(wait_parent_line(), "go");
            loop {
                let _ = q.get().unwrap();
            }
        });
        victim.send_line("go").unwrap();
        // The victim consumes while we produce; kill it at an arbitrary moment.
        for _ in 0..progress_before_kill(round) + 8 {
            q.put_timeout(next, WAIT).unwrap();
            next += 1;
        }
        victim.kill();
        victim.wait_timeout(WAIT).unwrap();
        // What is left is a contiguous, ordered run ending with the last message put (the
        // victim took a prefix, losing at most the one it was reading).
        let mut left = Vec::new();
        while let Ok(v) = q.get_timeout(Duration::ZERO) {
            left.push(v);
        }
        if let (Some(&first), Some(&last)) = (left.first(), left.last()) {
            assert_eq!(left, (first..=last).collect::<Vec<_>>());
            assert_eq!(last, next - 1);
        }
        // Producers are not blocked by a slot the victim died reading: fill the queue.
        for _ in 0..q.capacity() {
            q.put_timeout(next, WAIT).unwrap();
            next += 1;
        }
        for expected in next - q.capacity() as u64..next {
            assert_eq!(q.get_timeout(WAIT), Ok(expected));
        }
    }
}
