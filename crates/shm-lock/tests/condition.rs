//! `Condition` across processes: `notify(1)` wakes one waiter per ticket, `notify_all`
//! wakes every waiter, and a waiter killed while blocked does not disturb the others.

mod common;

use std::time::{Duration, Instant};

use common::{TEST_LIMIT, WAIT, recv, send};
use shm_lock::{Condition, Value};
use test_support::{Watchdog, run_child, signal_parent, test_name};

/// Waits on `cond` while `tickets` is 0, then takes one ticket, notifies everyone (the
/// parent waits for the ticket to go), and reports "got".
fn take_ticket(cond: &Condition, tickets: &Value<u32>) {
    let guard = cond.acquire().unwrap();
    signal_parent("waiting");
    let guard = cond
        .wait_while(guard, || tickets.load() == 0)
        .expect("no owner died");
    tickets.fetch_sub(1);
    cond.notify_all();
    drop(guard);
    signal_parent("got");
}

#[test]
fn notify_one_then_all_across_processes() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let body = || {
        let (cond, tickets, gate_cond, gate): (Condition, Value<u32>, Condition, Value<u32>) =
            recv();
        take_ticket(&cond, &tickets);
        // Then all wait for the gate to open, on another condition: a notify(1) on `cond`
        // must only ever reach ticket waiters, or it could be spent on a gate waiter.
        let guard = gate_cond.acquire().unwrap();
        let (guard, result) = gate_cond
            .wait_timeout_while(guard, WAIT, || gate.load() == 0)
            .unwrap();
        assert!(!result.timed_out());
        drop(guard);
    };
    let mut children = [
        run_child(&name, "a", body),
        run_child(&name, "b", body),
        run_child(&name, "c", body),
    ];
    let cond = Condition::new().unwrap();
    let tickets = Value::new(0u32).unwrap();
    let gate_cond = Condition::new().unwrap();
    let gate = Value::new(0u32).unwrap();
    for child in &mut children {
        send(child, &(&cond, &tickets, &gate_cond, &gate));
    }
    for child in &mut children {
        child.wait_line("waiting", WAIT).unwrap();
    }
    // One ticket at a time with notify(1): exactly one more waiter gets through each time.
    for given in 1..=3u32 {
        {
            let _guard = cond.acquire().unwrap();
            tickets.fetch_add(1);
            cond.notify(1);
        }
        // The taker notifies back: wait for it through the condition itself.
        let guard = cond.acquire().unwrap();
        let (guard, result) = cond
            .wait_timeout_while(guard, WAIT, || tickets.load() != 0)
            .unwrap();
        assert!(!result.timed_out(), "ticket {given} was never taken");
        drop(guard);
    }
    let mut got = 0;
    for child in &mut children {
        child.wait_line("got", WAIT).unwrap();
        got += 1;
    }
    assert_eq!(got, 3);
    {
        let _guard = gate_cond.acquire().unwrap();
        gate.store(1);
        gate_cond.notify_all();
    }
    for child in &mut children {
        child.wait_success(WAIT);
    }
}

#[test]
fn a_killed_waiter_does_not_disturb_notify_all() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let body = || {
        let (cond, gate): (Condition, Value<u32>) = recv();
        let guard = cond.acquire().unwrap();
        signal_parent("waiting");
        let guard = cond.wait_while(guard, || gate.load() == 0).unwrap();
        drop(guard);
    };
    let mut victim = run_child(&name, "victim", body);
    let mut survivor = run_child(&name, "survivor", body);
    let cond = Condition::new().unwrap();
    let gate = Value::new(0u32).unwrap();
    send(&mut victim, &(&cond, &gate));
    send(&mut survivor, &(&cond, &gate));
    victim.wait_line("waiting", WAIT).unwrap();
    survivor.wait_line("waiting", WAIT).unwrap();
    // Both have released the lock to sleep once we can take it... or are about to; either
    // way, the victim dies without holding it or while holding it.
    victim.kill();
    victim.wait_timeout(WAIT).unwrap();
    let guard = match cond.acquire() {
        Ok(guard) => guard,
        Err(shm_lock::AcquireError::OwnerDied(guard)) => {
            guard.mark_consistent();
            guard
        }
        Err(e) => panic!("{e}"),
    };
    gate.store(1);
    cond.notify_all();
    drop(guard);
    survivor.wait_success(WAIT);
}

#[test]
fn wait_timeout_is_never_early() {
    let cond = Condition::new().unwrap();
    let mut guard = cond.acquire().unwrap();
    for timeout in [0, 1, 5, 20].map(Duration::from_millis) {
        let start = Instant::now();
        let (g, result) = cond.wait_timeout_while(guard, timeout, || true).unwrap();
        guard = g;
        assert!(result.timed_out());
        assert!(start.elapsed() >= timeout);
    }
    drop(guard);
}
