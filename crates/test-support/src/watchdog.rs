//! Abort the test binary when a test hangs, so CI fails fast instead of stalling.

use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// A guard that aborts the process unless dropped within its limit.
///
/// A background thread waits on a condition variable; dropping the guard wakes it at once.
/// If the limit (multiplied by [`time_scale`](crate::time_scale)) passes first, it prints
/// `watchdog: test <name> hung for more than <limit>` straight to stderr, sends `SIGKILL` to
/// the children registered with [`guard_child`](Self::guard_child), and calls
/// [`std::process::abort`].
///
/// ```
/// use std::time::Duration;
/// let _watchdog = test_support::Watchdog::new(Duration::from_secs(60));
/// // ... the test body; the guard is dropped when the test returns ...
/// ```
#[derive(Debug)]
pub struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    disarmed: bool,
    children: Vec<u32>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Same as [`Watchdog::new`].
pub fn watchdog(limit: Duration) -> Watchdog {
    Watchdog::new(limit)
}

impl Watchdog {
    /// Arms a watchdog named after the current thread (libtest names it after the test).
    pub fn new(limit: Duration) -> Self {
        let name = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_owned();
        Self::named(name, limit)
    }

    /// Arms a watchdog that reports `name` when it fires.
    pub fn named(name: impl Into<String>, limit: Duration) -> Self {
        let name = name.into();
        let limit = crate::scaled(limit);
        let deadline = Instant::now() + limit;
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("watchdog {name}"))
            .spawn(move || watch(&thread_shared, &name, limit, deadline))
            .expect("cannot spawn the watchdog thread");
        Self {
            shared,
            thread: Some(thread),
        }
    }

    /// Registers a child process to `SIGKILL` before aborting.
    ///
    /// Children spawned by [`run_child`](crate::run_child) die with the test anyway (through
    /// `PR_SET_PDEATHSIG`) unless their credentials changed, as under `setpriv`.
    pub fn guard_child(&self, pid: u32) {
        self.shared.lock().children.push(pid);
    }
}

fn watch(shared: &Shared, name: &str, limit: Duration, deadline: Instant) {
    let mut state = shared.lock();
    loop {
        if state.disarmed {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        state = shared
            .wake
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    // Straight to the stream: captured output is lost when the process aborts.
    let _ = writeln!(
        std::io::stderr().lock(),
        "watchdog: test {name} hung for more than {limit:?}"
    );
    for &pid in &state.children {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
    std::process::abort();
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.lock().disarmed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_disarms_at_once() {
        let start = Instant::now();
        let watchdog = Watchdog::new(Duration::from_secs(3600));
        watchdog.guard_child(u32::MAX);
        drop(watchdog);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
