//! A consumer SIGKILLed after claiming a message and before freeing its slot: that one
//! message is lost, producers and other consumers go on.

mod common;

use std::time::Duration;

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share, spin_until};
use shm_queue::{PutTimeoutError, Queue, TryGetError, TryPutError};
use test_support::{Watchdog, child_builder, iterations, test_name, wait_parent_line};

const POINT: &str = "shm_queue.get.claimed";
const CAPACITY: u64 = 4;

#[test]
fn dead_consumer_loses_one_message_and_blocks_nobody() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<u64>::builder()
        .capacity(CAPACITY as usize)
        .max_message_size(16)
        .create_anonymous()
        .unwrap();
    let token = share(&q);
    let rounds = iterations(6);
    let mut victims: Vec<_> = (0..rounds)
        .map(|round| {
            child_builder(&test_name!(), &format!("victim-{round}"))
                .park_at(POINT)
                .env(QUEUE_ENV, &token)
                .spawn(|| {
                    let q: Queue<u64> = from_env(QUEUE_ENV);
                    assert_eq!(wait_parent_line(), "go");
                    let _ = q.get();
                    unreachable!("the fault point parks the process");
                })
        })
        .collect();
    let mut next = 0_u64;
    for (round, victim) in victims.iter_mut().enumerate() {
        // Fill the queue; the victim takes the front message and parks holding its slot.
        let lost = next;
        for _ in 0..CAPACITY {
            q.try_put(next).unwrap();
            next += 1;
        }
        victim.send_line("go").unwrap();
        victim.wait_parked(POINT, WAIT).unwrap();
        // Other consumers go on while the victim holds its message.
        for expected in lost + 1..next {
            assert_eq!(q.try_get(), Ok(expected));
        }
        assert_eq!(q.try_get(), Err(TryGetError::Empty));
        // The slot the next put needs is still being read by a live process.
        assert!(matches!(q.try_put(next), Err(TryPutError::Full(v)) if v == next));
        assert!(matches!(
            q.put_timeout(next, Duration::from_millis(5)),
            Err(PutTimeoutError::Timeout(v)) if v == next
        ));
        if round % 2 == 0 {
            // A producer asleep in `put` is woken by its periodic owner check.
            let sleeper = {
                let q = q.clone();
                let value = next;
                std::thread::spawn(move || q.put(value).unwrap())
            };
            spin_until(|| q.waiting().putters == 1);
            victim.kill();
            sleeper.join().unwrap();
        } else {
            victim.kill();
            victim.wait_timeout(WAIT).unwrap();
            q.try_put(next).unwrap();
        }
        // Exactly the victim's message is gone; the queue works on.
        assert_eq!(q.try_get(), Ok(next));
        next += 1;
        assert!(q.is_empty());
    }
}
