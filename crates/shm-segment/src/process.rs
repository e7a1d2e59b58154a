//! Process identity that survives pid reuse: a pid together with its start time.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::sys;

/// A process, identified by its pid and its start time (clock ticks since boot, from
/// `/proc/PID/stat`), so that a recycled pid is never mistaken for the original process.
///
/// # Examples
///
/// ```
/// use shm_segment::ProcessId;
/// let me = ProcessId::current();
/// assert_eq!(me.pid, std::process::id());
/// assert!(me.is_alive());
/// let impostor = ProcessId { pid: me.pid, start_time: me.start_time + 1 };
/// assert!(!impostor.is_alive());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessId {
    /// The process id.
    pub pid: u32,
    /// Start time in clock ticks since boot; 0 when unknown.
    pub start_time: u64,
}

/// What `/proc/PID/stat` says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// One-letter state (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

/// What `/proc/PID/stat` says: `Ok(None)` for no such process, `Err` when it cannot be
/// told.
pub(crate) fn proc_stat(pid: u32) -> std::io::Result<Option<ProcStat>> {
    if pid == 0 {
        return Ok(None);
    }
    Ok(sys::read_proc_stat(pid)?.and_then(|text| parse_stat(&text)))
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command name (field 2) is in parentheses and may itself contain ") ", so parse
    // from the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    // Field 22 (starttime) is the 20th after the state (field 3).
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

// The current process's identity, cached. A forked child must not keep its parent's: an
// `atfork` handler clears the cache in the child, so the hot path (queues record who
// claims a slot on every operation) makes no system call.
static CURRENT: AtomicU64 = AtomicU64::new(0);
static CURRENT_PID: AtomicU64 = AtomicU64::new(0);

extern "C" fn forget_current_in_child() {
    CURRENT_PID.store(0, Ordering::Release);
}

impl ProcessId {
    /// The calling process.
    ///
    /// Cached after the first call and invalidated in a child made by `fork(3)` (a
    /// `pthread_atfork` handler); a child made by a raw `clone` system call that skips the
    /// C library must not rely on it.
    pub fn current() -> Self {
        let cached = CURRENT_PID.load(Ordering::Acquire);
        if cached != 0 {
            return ProcessId {
                pid: cached as u32,
                start_time: CURRENT.load(Ordering::Relaxed),
            };
        }
        static REGISTER: std::sync::Once = std::sync::Once::new();
        REGISTER.call_once(sys::on_fork_in_child(forget_current_in_child));
        let pid = sys::getpid();
        let start_time = proc_stat(pid).ok().flatten().map_or(0, |s| s.start_time);
        // Cache only a real answer; 0 ("unknown") is asked again next time.
        if start_time != 0 {
            CURRENT.store(start_time, Ordering::Relaxed);
            CURRENT_PID.store(u64::from(pid), Ordering::Release);
        }
        ProcessId { pid, start_time }
    }

    /// The process that has `pid` now, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::ProcessId;
    /// assert_eq!(ProcessId::of(std::process::id()), Some(ProcessId::current()));
    /// ```
    pub fn of(pid: u32) -> Option<Self> {
        proc_stat(pid).ok().flatten().map(|s| ProcessId {
            pid,
            start_time: s.start_time,
        })
    }

    /// Whether this very process is still running.
    ///
    /// A zombie (exited, not yet reaped) counts as dead: it holds no memory and no locks. A
    /// `start_time` of 0 means "unknown" and matches any live process with this pid. When
    /// `/proc` cannot answer (descriptors exhausted, `hidepid`), the process counts as
    /// alive: callers use the answer to decide whether it is safe to reclaim something.
    ///
    /// Pids are meaningful within one pid namespace: processes that share segments across
    /// pid namespaces (containers sharing `/dev/shm`) cannot judge each other's liveness.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::ProcessId;
    /// assert!(ProcessId::current().is_alive());
    /// assert!(!ProcessId { pid: u32::MAX - 1, start_time: 1 }.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        match proc_stat(self.pid) {
            Err(_) => true,
            Ok(None) => false,
            Ok(Some(stat)) if matches!(stat.state, b'Z' | b'X' | b'x') => false,
            Ok(Some(stat)) => self.start_time == 0 || stat.start_time == self.start_time,
        }
    }

    /// The identity packed in one word, as the attach table stores it: the pid in the high
    /// half, the low 32 bits of the start time in the low half (never 0 for a real entry).
    pub(crate) fn packed(&self) -> u64 {
        (u64::from(self.pid) << 32) | u64::from((self.start_time as u32).max(1))
    }

    /// Whether the process packed by [`packed`](Self::packed) is alive.
    pub(crate) fn packed_is_alive(packed: u64) -> bool {
        let pid = (packed >> 32) as u32;
        let start_low = packed as u32;
        match proc_stat(pid) {
            Err(_) => true,
            Ok(None) => false,
            Ok(Some(stat)) if matches!(stat.state, b'Z' | b'X' | b'x') => false,
            Ok(Some(stat)) => (stat.start_time as u32).max(1) == start_low,
        }
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}", self.pid)
    }
}
