//! Everything this crate asks of the operating system, through `shm-segment`: futex waits and
//! wakes on shared words, and process identity and liveness (pid plus start time).

use std::time::{Duration, Instant};

use shm_segment::ProcessId;
use shm_segment::futex;

use crate::sync::AtomicU32;

/// Sleeps while `word == expected`, until woken or `deadline`. Spurious returns are fine:
/// callers re-check their condition.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
    #[cfg(not(loom))]
    {
        let _ = futex::wait(word, expected, deadline);
    }
    #[cfg(loom)]
    {
        let _ = (word, expected, deadline);
        loom::thread::yield_now();
    }
}

/// Wakes every process and thread sleeping on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    #[cfg(not(loom))]
    futex::wake_all(word);
    #[cfg(loom)]
    let _ = word;
}

/// `now + timeout`, `None` for "never" (overflow).
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    futex::deadline_after(timeout)
}

/// The calling process's pid and start time.
pub(crate) fn current_process() -> ProcessId {
    ProcessId::current()
}

/// Whether process `pid` is alive; when `start_time` is `Some`, only if it is the very
/// process that started then (a recycled pid is dead). With `None` any live process with
/// that pid counts, which errs on the side of "alive".
pub(crate) fn process_alive(pid: u32, start_time: Option<u64>) -> bool {
    ProcessId {
        pid,
        start_time: start_time.unwrap_or(0),
    }
    .is_alive()
}

/// Bits of a start time kept in an owner word.
const OWNER_START_BITS: u32 = 42;
const OWNER_PID_MASK: u64 = (1 << 22) - 1;

/// Packs a process identity into one word for a single-word compare-and-swap: pid in the
/// low 22 bits, the low 42 bits of the start time above. Never 0 for a real process.
pub(crate) fn pack_owner(process: ProcessId) -> u64 {
    let start = process.start_time & ((1 << OWNER_START_BITS) - 1);
    (start << 22) | (u64::from(process.pid) & OWNER_PID_MASK)
}

/// The pid and the (truncated) start time of a packed owner word.
pub(crate) fn unpack_owner(word: u64) -> (u32, u64) {
    ((word & OWNER_PID_MASK) as u32, word >> 22)
}

/// Whether the process recorded in a packed owner word is still running.
pub(crate) fn owner_alive(word: u64) -> bool {
    let (pid, start) = unpack_owner(word);
    match ProcessId::of(pid) {
        // Compare the truncated start times, then let `is_alive` reject zombies.
        Some(now) if now.start_time & ((1 << OWNER_START_BITS) - 1) == start => now.is_alive(),
        _ => false,
    }
}

/// The full identity of a packed owner word, as far as it is known (for error messages).
pub(crate) fn owner_process(word: u64) -> ProcessId {
    let (pid, start) = unpack_owner(word);
    ProcessId::of(pid)
        .filter(|p| p.start_time & ((1 << OWNER_START_BITS) - 1) == start)
        .unwrap_or(ProcessId {
            pid,
            start_time: start,
        })
}
