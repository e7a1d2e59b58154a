//! Futex helpers on shared words: cross-process wake-ups, deadlines that are never cut
//! short, and EINTR absorbed with the original deadline kept (RELIABILITY row 21).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{STEP, shared_env};
use shm_segment::futex::{self, TimedOut, WaitOutcome};
use shm_segment::{ObjectKind, Segment, SegmentOptions};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, signal_parent, test_name, unique_name, wait_parent_line,
};

fn futex_word(seg: &Segment) -> &AtomicU32 {
    // SAFETY: the data area is 128-aligned, at least 4 bytes long, and used only atomically.
    unsafe { AtomicU32::from_ptr(seg.data().as_ptr().cast()) }
}

#[test]
fn a_waiter_in_another_process_is_woken() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = shared_env("SEG_NAME", || unique_name("futex"));
    let mut child = child_builder(&test_name!(), "waiter")
        .env("SEG_NAME", &name)
        .spawn(|| {
            assert_eq!(wait_parent_line(), "created");
            let seg = SegmentOptions::new(ObjectKind::RAW)
                .len(64)
                .open(&name)
                .unwrap();
            signal_parent("waiting");
            let value =
                futex::wait_until(futex_word(&seg), |v| v == 1, futex::deadline_after(STEP))
                    .unwrap();
            assert_eq!(value, 1);
            signal_parent("woken");
        });
    let leaks = ShmLeakCheck::new(&name);
    let seg = SegmentOptions::new(ObjectKind::RAW)
        .len(64)
        .create(&name)
        .unwrap();
    child.send_line("created").unwrap();
    child.wait_line("waiting", STEP).unwrap();
    futex_word(&seg).store(1, Ordering::Release);
    futex::wake_all(futex_word(&seg));
    child.wait_line("woken", STEP).unwrap();
    child.wait_success(STEP);
    drop(seg);
    leaks.finish();
}

#[test]
fn time_outs_never_return_early() {
    let word = AtomicU32::new(0);
    for ms in [0u64, 1, 3, 10, 25] {
        let deadline = Instant::now() + Duration::from_millis(ms);
        assert_eq!(futex::wait(&word, 0, Some(deadline)), WaitOutcome::TimedOut);
        assert!(
            Instant::now() >= deadline,
            "returned before the {ms} ms deadline"
        );
        let deadline = Instant::now() + Duration::from_millis(ms);
        assert_eq!(
            futex::wait_until(&word, |v| v == 1, Some(deadline)),
            Err(TimedOut)
        );
        assert!(Instant::now() >= deadline);
    }
}

#[test]
fn spurious_wake_ups_do_not_end_wait_until() {
    let word = Arc::new(AtomicU32::new(0));
    let waker = {
        let word = Arc::clone(&word);
        std::thread::spawn(move || {
            // Wake repeatedly without changing the awaited condition, then satisfy it.
            for i in 1..50 {
                word.store(i % 2 + 10, Ordering::Release);
                futex::wake_all(&word);
                std::thread::yield_now();
            }
            word.store(1, Ordering::Release);
            futex::wake_all(&word);
        })
    };
    assert_eq!(
        futex::wait_until(&word, |v| v == 1, futex::deadline_after(STEP)),
        Ok(1)
    );
    waker.join().unwrap();
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// SIGUSR1 every millisecond at a blocked waiter: a single `wait` neither ends early (it
/// would return `Woken` on an unhandled EINTR) nor outlives its deadline by more than
/// scheduling noise (the watchdog catches a wait that restarts its full time-out).
#[test]
fn eintr_keeps_the_original_deadline() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    // SAFETY: installs a handler that does nothing, without SA_RESTART so that the futex
    // wait really returns EINTR; sigaction is given a fully initialised struct.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    let word = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let word = Arc::clone(&word);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_millis(200);
            let outcome = futex::wait(&word, 0, Some(deadline));
            let returned = Instant::now();
            done.store(true, Ordering::Release);
            (outcome, returned >= deadline)
        })
    };
    let thread = std::os::unix::thread::JoinHandleExt::as_pthread_t(&waiter);
    let mut signals = 0;
    while !done.load(Ordering::Acquire) {
        // SAFETY: the thread is joinable until joined below, so its pthread_t stays valid
        // even if it has just returned.
        unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
        signals += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let (outcome, not_early) = waiter.join().unwrap();
    assert_eq!(
        outcome,
        WaitOutcome::TimedOut,
        "EINTR is retried, not reported"
    );
    assert!(not_early, "the wait returned before its deadline");
    assert!(
        signals > 10,
        "the waiter was interrupted many times ({signals})"
    );
}
