//! `Lock` across processes: mutual exclusion of a plain counter, time-outs that never
//! return early, and timed acquires under contention that never fail bogusly.

mod common;

use std::time::{Duration, Instant};

use common::{TEST_LIMIT, WAIT, recv, send};
use shm_lock::{AcquireError, AcquireTimeoutError, Lock, RawLock, TryAcquireError};
use shm_segment::{ObjectKind, Segment, SegmentOptions};
use test_support::{
    ShmLeakCheck, Watchdog, iterations, run_child, signal_parent, test_name, unique_name,
    wait_parent_line,
};

/// A `RawLock` embedded in a plain segment, followed by a plain (non-atomic) counter.
#[repr(C)]
struct Shared {
    lock: RawLock,
    counter: u64,
}

fn make_shared() -> Segment {
    SegmentOptions::new(ObjectKind::RAW)
        .len(size_of::<Shared>())
        .create_anonymous_with(|seg| {
            let shared = seg.data().as_ptr().cast::<Shared>();
            // SAFETY: fresh, writable, 128-aligned memory no one else sees yet.
            unsafe {
                RawLock::init(std::ptr::addr_of_mut!((*shared).lock));
                std::ptr::addr_of_mut!((*shared).counter).write(0);
            }
        })
        .unwrap()
}

/// Adds 1 to the plain counter `times` times under the embedded lock.
fn increment(seg: &Segment, times: usize) {
    let shared = seg.data().as_ptr().cast::<Shared>();
    // SAFETY: the segment was initialised by `make_shared` and stays mapped.
    let lock = unsafe { RawLock::from_ptr(std::ptr::addr_of!((*shared).lock)) };
    for _ in 0..times {
        let guard = lock.acquire().expect("acquire");
        // SAFETY: the counter is only touched under the lock.
        unsafe {
            let counter = std::ptr::addr_of_mut!((*shared).counter);
            counter.write(counter.read() + 1);
        }
        drop(guard);
    }
}

#[test]
fn processes_increment_a_plain_counter_exactly() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let per_process = iterations(20_000);
    let body = move || {
        let seg: Segment = recv();
        assert_eq!(wait_parent_line(), "go");
        increment(&seg, per_process);
    };
    let mut children = [
        run_child(&name, "a", body),
        run_child(&name, "b", body),
        run_child(&name, "c", body),
    ];
    let seg = make_shared();
    for child in &mut children {
        send(child, &seg);
    }
    for child in &mut children {
        child.send_line("go").unwrap();
    }
    increment(&seg, per_process);
    for child in &mut children {
        child.wait_success(WAIT);
    }
    // SAFETY: every child has exited; the counter is ours alone.
    let total = unsafe {
        seg.data()
            .as_ptr()
            .cast::<Shared>()
            .as_ref()
            .unwrap()
            .counter
    };
    assert_eq!(total, 4 * per_process as u64);
}

#[test]
fn timeouts_never_return_early() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = unique_name("lock-timeout");
    let leaks = ShmLeakCheck::new(&name);
    let mut child = run_child(&test_name!(), "holder", || {
        let lock = Lock::open(&wait_parent_line()).unwrap();
        let guard = lock.acquire().unwrap();
        signal_parent("held");
        assert_eq!(wait_parent_line(), "release");
        drop(guard);
    });
    let lock = Lock::create(&name).unwrap();
    child.send_line(&name).unwrap();
    child.wait_line("held", WAIT).unwrap();
    for timeout in [0, 1, 3, 10, 50, 120].map(Duration::from_millis) {
        let start = Instant::now();
        let result = lock.acquire_timeout(timeout);
        let elapsed = start.elapsed();
        assert!(
            matches!(result, Err(AcquireTimeoutError::Timeout)),
            "{:?}",
            result.map(drop)
        );
        assert!(
            elapsed >= timeout,
            "timed out after {elapsed:?}, before {timeout:?}"
        );
        let deadline = Instant::now() + timeout;
        assert!(matches!(
            lock.acquire_until(Some(deadline)),
            Err(AcquireTimeoutError::Timeout)
        ));
        assert!(Instant::now() >= deadline);
    }
    assert!(matches!(
        lock.try_acquire(),
        Err(TryAcquireError::WouldBlock)
    ));
    child.send_line("release").unwrap();
    let guard = lock
        .acquire_timeout(WAIT)
        .expect("acquired once the child released it");
    drop(guard);
    child.wait_success(WAIT);
    drop(lock);
    leaks.finish();
}

/// 1,000 timed acquires from two processes on one lock with tiny critical sections: those
/// with a long time-out always succeed; those with a very short one may time out, but never
/// before their time-out, and nothing else ever goes wrong.
#[test]
fn contended_timed_acquires_never_fail_bogusly() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let per_process = iterations(500);
    let body = move || {
        let seg: Segment = recv();
        assert_eq!(wait_parent_line(), "go");
        let shared = seg.data().as_ptr().cast::<Shared>();
        // SAFETY: initialised by the parent, mapped while `seg` lives.
        let lock = unsafe { RawLock::from_ptr(std::ptr::addr_of!((*shared).lock)) };
        let mut done = 0u64;
        for i in 0..per_process {
            let timeout = if i % 2 == 0 {
                Duration::from_secs(30)
            } else {
                Duration::from_micros(50)
            };
            let start = Instant::now();
            match lock.acquire_timeout(timeout) {
                Ok(guard) => {
                    // SAFETY: the counter is only touched under the lock.
                    unsafe {
                        let counter = std::ptr::addr_of_mut!((*shared).counter);
                        counter.write(counter.read() + 1);
                    }
                    done += 1;
                    drop(guard);
                }
                Err(AcquireTimeoutError::Timeout) => {
                    assert!(timeout < Duration::from_secs(1), "a 30 s acquire timed out");
                    assert!(start.elapsed() >= timeout, "timed out early");
                }
                Err(e) => panic!("bogus error from a timed acquire: {e}"),
            }
        }
        signal_parent(&format!("done {done}"));
    };
    let mut children = [run_child(&name, "a", body), run_child(&name, "b", body)];
    let seg = make_shared();
    for child in &mut children {
        send(child, &seg);
    }
    for child in &mut children {
        child.send_line("go").unwrap();
    }
    let mut total = 0;
    for child in &mut children {
        total += child
            .wait_line("done", WAIT)
            .unwrap()
            .parse::<u64>()
            .unwrap();
        child.wait_success(WAIT);
    }
    assert!(
        total >= per_process as u64,
        "every long-time-out acquire succeeds"
    );
    // SAFETY: every child has exited.
    let counter = unsafe {
        seg.data()
            .as_ptr()
            .cast::<Shared>()
            .as_ref()
            .unwrap()
            .counter
    };
    assert_eq!(counter, total);
}

#[test]
fn relocking_in_the_same_thread_is_reported_not_hung() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let lock = Lock::new().unwrap();
    let guard = lock.acquire().unwrap();
    assert!(matches!(lock.acquire(), Err(AcquireError::WouldDeadlock)));
    assert!(matches!(
        lock.try_acquire(),
        Err(TryAcquireError::WouldDeadlock)
    ));
    assert!(matches!(
        lock.acquire_timeout(Duration::from_secs(5)),
        Err(AcquireTimeoutError::WouldDeadlock)
    ));
    drop(guard);
    assert!(lock.try_acquire().is_ok());
}

#[test]
fn opening_another_kind_is_a_typed_error() {
    let name = unique_name("lock-kind");
    let leaks = ShmLeakCheck::new(&name);
    let event = shm_lock::Event::create(&name).unwrap();
    assert!(matches!(
        Lock::open(&name),
        Err(shm_segment::OpenError::KindMismatch { .. })
    ));
    drop(event);
    leaks.finish();
}
