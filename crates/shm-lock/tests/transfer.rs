//! Handles travel to child processes through serde: named handles by name, anonymous ones
//! through `/proc/<pid>/fd` or an inherited descriptor; the child uses them and the parent
//! sees the effects. A token of one kind does not open as another.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use common::{TEST_LIMIT, WAIT, recv, send};
use serde::{Deserialize, Serialize};
use shm_lock::{Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Value};
use shm_segment::transfer;
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, run_child, signal_parent, test_name, unique_name,
};

#[derive(Serialize, Deserialize)]
struct Bundle {
    lock: Lock,
    rlock: RLock,
    semaphore: Semaphore,
    bounded: BoundedSemaphore,
    event: Event,
    condition: Condition,
    barrier: Barrier,
    value: Value<u64>,
    array: Array<u32>,
}

impl Bundle {
    fn anonymous() -> Self {
        Bundle {
            lock: Lock::new().unwrap(),
            rlock: RLock::new().unwrap(),
            semaphore: Semaphore::new(0).unwrap(),
            bounded: BoundedSemaphore::new(1).unwrap(),
            event: Event::new().unwrap(),
            condition: Condition::new().unwrap(),
            barrier: Barrier::new(2).unwrap(),
            value: Value::new(0).unwrap(),
            array: Array::new(3).unwrap(),
        }
    }

    fn named(prefix: &str) -> Self {
        Bundle {
            lock: Lock::create(&format!("{prefix}-lock")).unwrap(),
            rlock: RLock::create(&format!("{prefix}-rlock")).unwrap(),
            semaphore: Semaphore::create(&format!("{prefix}-sem"), 0).unwrap(),
            bounded: BoundedSemaphore::create(&format!("{prefix}-bsem"), 1).unwrap(),
            event: Event::create(&format!("{prefix}-event")).unwrap(),
            condition: Condition::create(&format!("{prefix}-cond")).unwrap(),
            barrier: Barrier::create(&format!("{prefix}-barrier"), 2).unwrap(),
            value: Value::create(&format!("{prefix}-value"), 0).unwrap(),
            array: Array::create(&format!("{prefix}-array"), 3).unwrap(),
        }
    }

    /// The child's side: touch every primitive so the parent can see it.
    fn use_in_child(&self) {
        drop(self.lock.try_acquire().expect("the lock is free"));
        drop(self.rlock.try_acquire().expect("the rlock is free"));
        drop(
            self.condition
                .try_acquire()
                .expect("the condition's lock is free"),
        );
        self.bounded.acquire().forget();
        self.semaphore.release().unwrap();
        self.value.fetch_add(41);
        self.array.set(2, 7).unwrap();
        self.event.set();
        self.barrier
            .wait_timeout(WAIT)
            .expect("the parent meets the child at the barrier");
    }

    /// The parent's side: check what the child did.
    fn check_in_parent(&self) {
        self.barrier
            .wait_timeout(WAIT)
            .expect("the child meets the parent at the barrier");
        self.event.wait_timeout(WAIT).unwrap();
        assert_eq!(self.value.load(), 41);
        assert_eq!(self.array.to_vec().unwrap(), [0, 0, 7]);
        assert_eq!(self.semaphore.value(), 1);
        assert_eq!(self.bounded.value(), 0);
    }
}

#[test]
fn anonymous_handles_reach_a_child_through_proc() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let mut child = run_child(&test_name!(), "user", || {
        let bundle: Bundle = recv();
        bundle.use_in_child();
        signal_parent("done");
    });
    let bundle = Bundle::anonymous();
    send(&mut child, &bundle);
    bundle.check_in_parent();
    child.wait_line("done", WAIT).unwrap();
    child.wait_success(WAIT);
}

#[test]
fn named_handles_reach_a_child_by_name() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let prefix = unique_name("transfer");
    let leaks = ShmLeakCheck::new(&prefix);
    let mut child = run_child(&test_name!(), "user", || {
        let bundle: Bundle = recv();
        assert!(bundle.lock.name().is_some());
        bundle.use_in_child();
    });
    let bundle = Bundle::named(&prefix);
    send(&mut child, &bundle);
    bundle.check_in_parent();
    child.wait_success(WAIT);
    drop(bundle);
    leaks.finish();
}

#[test]
fn anonymous_handles_reach_a_child_through_inherited_fds() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    // Created before the spawn, since the descriptors are inherited at spawn (the child
    // makes its own copy here too, unused).
    let bundle = Bundle::anonymous();
    let (json, fds) = transfer::collect_fds(|| serde_json::to_string(&bundle));
    let json = json.unwrap();
    assert_eq!(fds.len(), 9);
    let numbers: Vec<String> = fds.iter().map(|fd| fd.as_raw_fd().to_string()).collect();
    let mut builder =
        child_builder(&test_name!(), "heir").env("SHM_LOCK_TEST_FDS", numbers.join(","));
    for fd in &fds {
        builder = builder.pass_fd(fd.as_raw_fd());
    }
    let mut child = builder.spawn(|| {
        let fds: Vec<OwnedFd> = std::env::var("SHM_LOCK_TEST_FDS")
            .unwrap()
            .split(',')
            .map(|n| {
                // SAFETY: the parent passed these open descriptors to this process, which
                // owns them from now on; each number is wrapped once.
                unsafe { OwnedFd::from_raw_fd(n.parse().unwrap()) }
            })
            .collect();
        let line = test_support::wait_parent_line();
        let bundle: Bundle =
            transfer::with_received_fds(&fds, || serde_json::from_str(&line)).unwrap();
        bundle.use_in_child();
    });
    drop(fds);
    child.send_line(&json).unwrap();
    bundle.check_in_parent();
    child.wait_success(WAIT);
}

#[test]
fn a_token_does_not_open_as_another_kind() {
    let lock = Lock::new().unwrap();
    let json = serde_json::to_string(&lock).unwrap();
    let as_event = serde_json::from_str::<Event>(&json)
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(as_event.contains("lock"), "{as_event}");
    let as_value = serde_json::from_str::<Value<u32>>(&json)
        .map(drop)
        .unwrap_err();
    assert!(!as_value.to_string().is_empty());
    let again: Lock = serde_json::from_str(&json).unwrap();
    let guard = again.acquire().unwrap();
    assert!(lock.try_acquire().is_err());
    drop(guard);
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Lock>();
    send_sync::<RLock>();
    send_sync::<Semaphore>();
    send_sync::<BoundedSemaphore>();
    send_sync::<Event>();
    send_sync::<Condition>();
    send_sync::<Barrier>();
    send_sync::<Value<u64>>();
    send_sync::<Array<u8>>();
    send_sync::<shm_lock::RawLock>();
    send_sync::<shm_lock::RawValue<u32>>();
    fn send<T: Send>() {}
    send::<shm_lock::SemaphorePermit<'static>>();
}
