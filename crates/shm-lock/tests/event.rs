//! `Event` across processes: set wakes waiters in other processes, time-outs are never
//! early, and a set followed at once by a clear still wakes a waiter.

mod common;

use std::time::{Duration, Instant};

use common::{TEST_LIMIT, WAIT, recv, send};
use shm_lock::{Event, Timeout};
use test_support::{Watchdog, iterations, run_child, test_name};

#[test]
fn events_ping_pong_between_processes() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let rounds = iterations(200);
    let mut child = run_child(&test_name!(), "ponger", move || {
        let (ping, pong): (Event, Event) = recv();
        for _ in 0..rounds {
            ping.wait_timeout(WAIT).expect("ping within the limit");
            ping.clear();
            pong.set();
        }
    });
    let ping = Event::new().unwrap();
    let pong = Event::new().unwrap();
    send(&mut child, &(&ping, &pong));
    for _ in 0..rounds {
        ping.set();
        pong.wait();
        pong.clear();
    }
    child.wait_success(WAIT);
    assert!(!pong.is_set());
}

#[test]
fn wait_timeout_is_never_early() {
    let event = Event::new().unwrap();
    for timeout in [0, 1, 5, 30].map(Duration::from_millis) {
        let start = Instant::now();
        assert_eq!(event.wait_timeout(timeout), Err(Timeout));
        assert!(start.elapsed() >= timeout);
    }
    event.set();
    assert_eq!(event.wait_timeout(Duration::ZERO), Ok(()));
}

#[test]
fn set_then_clear_still_wakes_a_sleeping_waiter() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let event = Event::new().unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| event.wait_timeout(WAIT));
        // Through the primitive: the waiter is counted once it has looked at the flag.
        while event.waiters() == 0 {
            std::thread::yield_now();
        }
        // Give the waiter no chance to see the flag itself: set and clear at once.
        event.set();
        event.clear();
        assert_eq!(waiter.join().unwrap(), Ok(()));
    });
    assert!(!event.is_set());
}
