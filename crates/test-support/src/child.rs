//! Run part of a test in a child process: the current test binary, re-executed.
//!
//! # How it works
//!
//! [`run_child`] (or [`ChildBuilder::spawn`]) starts [`std::env::current_exe`] with the
//! arguments `<test name> --exact --nocapture --test-threads=1 -q` and the environment
//! variable [`CHILD_ENV`]` = <role>`. The child's libtest runs the same test function from the
//! top; when that function reaches the `run_child` call of the child's role, the call runs
//! the body instead of spawning, then exits the process: code 0 when the body returned, 101
//! when it panicked. The parent receives a [`ChildHandle`].
//!
//! # Rules for tests
//!
//! - Everything before the child's own `run_child` call also runs in the child. Keep that
//!   setup cheap and side-effect free, or guard it with `if child_role().is_none()`.
//! - Roles must be distinct within a test. In a child of another role, `run_child` neither
//!   runs the body nor spawns: it returns an *inert* handle whose methods panic. So **spawn
//!   every child of a test before using any handle**; pass data that only exists later over
//!   stdin ([`ChildHandle::send_line`] / [`wait_parent_line`]).
//! - Children cannot spawn children of their own (the nested call sees a different role).
//! - Pass the name from [`test_name!`](crate::test_name!): a name that matches no test makes
//!   the child exit without running anything, reported as [`ChildError::NoSuchTest`].
//!
//! # Talking to the child
//!
//! The child writes marker lines `@@multiproc:<marker> [value]` to stdout with
//! [`signal_parent`] / [`signal_parent_with`]; the parent waits for them with
//! [`ChildHandle::wait_line`]. Marker lines arriving while the parent waits for another
//! marker are kept for later calls. Other stdout and stderr lines are echoed to the parent's
//! output prefixed with `[child <role>] ` (libtest captures them like the test's own output);
//! the last stderr lines also go into failure messages.
//!
//! # Fault points
//!
//! Library crates built with their `fault-injection` feature have `fault_point!("name")`
//! calls: when [`FAULT_PARK_ENV`] equals the name, the process prints
//! `@@multiproc:parked:<name>` and sleeps forever. [`ChildBuilder::park_at`] sets the variable
//! and [`ChildHandle::wait_parked`] waits for the line; the test then typically
//! [`kill`](ChildHandle::kill)s the child there.
//!
//! # No orphans, no zombies
//!
//! Children get `PR_SET_PDEATHSIG(SIGKILL)`: they die when the parent *thread* that spawned
//! them exits (so spawn from the test thread, not from a short-lived helper thread), or when
//! the test binary dies. Changing credentials (as `setpriv` does) clears that setting, so a
//! wrapped child only dies with its handle. Dropping a [`ChildHandle`] kills and reaps a
//! child still running.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, BufRead as _, BufReader, Read, Write as _};
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::io::{Errno, FdFlags, fcntl_getfd, fcntl_setfd};
use rustix::process::{
    Pid, Signal, getpid, getppid, kill_process, set_parent_process_death_signal,
};

/// Environment variable holding the role of a test child process.
pub const CHILD_ENV: &str = "MULTIPROC_TEST_CHILD";

/// Environment variable naming the fault point where a process built with fault injection
/// parks.
pub const FAULT_PARK_ENV: &str = "MULTIPROC_FAULT_PARK";

/// Start of every marker line a child writes to its stdout for the parent.
pub const MARKER_PREFIX: &str = "@@multiproc:";

/// Internal marker a child prints before running its body.
const STARTED_MARKER: &str = "__started__";

/// Stderr lines kept for failure messages.
const STDERR_TAIL_LINES: usize = 40;

/// How long to wait for a dead child's output pipes to close.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// The libtest name of the test that expands it, as a `String`: `module::path::test_fn`
/// without the crate name, ready for `--exact` matching.
///
/// For `fn child_sees_parent_writes` at the top of `tests/segment_named.rs` it is
/// `child_sees_parent_writes`; for `fn foo` in a unit-test module `tests` it is `tests::foo`.
/// Closure levels are ignored, so it also works inside closures of the test function.
///
/// ```
/// let name = test_support::test_name!();
/// // In a doctest the "test function" is the generated `main`.
/// assert!(name.ends_with("main"));
/// ```
#[macro_export]
macro_rules! test_name {
    () => {{
        fn f() {}
        $crate::child::test_name_from_type_name(::std::any::type_name_of_val(&f))
    }};
}

/// The implementation of [`test_name!`](crate::test_name!): turns the type name of a function
/// item declared in the test (`crate::path::test_fn::f`) into the libtest name
/// (`path::test_fn`).
#[doc(hidden)]
pub fn test_name_from_type_name(type_name: &str) -> String {
    let path = type_name.strip_suffix("::f").unwrap_or(type_name);
    let mut segments = path.split("::").filter(|segment| *segment != "{{closure}}");
    segments.next(); // the crate name
    segments.collect::<Vec<_>>().join("::")
}

/// The role of this process when it is a test child, `None` in the parent.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV)
        .ok()
        .filter(|role| !role.is_empty())
}

/// Runs `body` in a child process playing `role` for test `test_name`.
///
/// In the parent, spawns the child and returns its handle. In the child of this role, runs
/// `body` and exits the process (0, or 101 if `body` panicked). In a child of another role,
/// returns an inert handle. See the [module docs](self) for the rules.
///
/// # Panics
///
/// If the child cannot be spawned.
///
/// ```no_run
/// use std::time::Duration;
/// let mut child = test_support::run_child(&test_support::test_name!(), "writer", || {
///     test_support::signal_parent_with("pid", std::process::id());
/// });
/// let pid = child.wait_line("pid", Duration::from_secs(10)).unwrap();
/// assert_eq!(pid, child.pid().to_string());
/// child.wait_success(Duration::from_secs(10));
/// ```
pub fn run_child(test_name: &str, role: &str, body: impl FnOnce()) -> ChildHandle {
    child_builder(test_name, role).spawn(body)
}

/// A builder for a child with extra environment, a wrapper program or inherited fds.
///
/// ```no_run
/// use std::time::Duration;
/// let mut child = test_support::child_builder(&test_support::test_name!(), "victim")
///     .park_at("segment.after_ftruncate")
///     .env("MULTIPROC_SEGMENT_NAME", "t-example")
///     .spawn(|| { /* code that reaches the fault point */ });
/// child.wait_parked("segment.after_ftruncate", Duration::from_secs(10)).unwrap();
/// child.kill();
/// ```
pub fn child_builder(test_name: &str, role: &str) -> ChildBuilder {
    ChildBuilder {
        test_name: test_name.to_owned(),
        role: role.to_owned(),
        env: Vec::new(),
        wrapper: Vec::new(),
        fds: Vec::new(),
    }
}

/// Configures a child before [`spawn`](Self::spawn); made by [`child_builder`].
///
/// The child's stdin, stdout and stderr are always pipes to the parent.
#[derive(Debug, Clone)]
pub struct ChildBuilder {
    test_name: String,
    role: String,
    env: Vec<(OsString, OsString)>,
    wrapper: Vec<OsString>,
    fds: Vec<RawFd>,
}

impl ChildBuilder {
    /// Sets an environment variable in the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Makes the child park at fault point `point` (sets [`FAULT_PARK_ENV`]).
    pub fn park_at(self, point: &str) -> Self {
        self.env(FAULT_PARK_ENV, point)
    }

    /// Runs the child through a wrapper program, e.g.
    /// `&["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]`.
    ///
    /// The wrapper must `exec` the command it is given, so that [`ChildHandle::pid`] and
    /// signals reach the test binary.
    pub fn wrapper<S: AsRef<OsStr>>(mut self, argv: &[S]) -> Self {
        self.wrapper = argv.iter().map(|arg| arg.as_ref().to_owned()).collect();
        self
    }

    /// Lets the child inherit file descriptor `fd` under the same number (clears its
    /// `FD_CLOEXEC` in the child only). `fd` must stay open until [`spawn`](Self::spawn)
    /// returns; tell the child its number, e.g. with [`env`](Self::env).
    pub fn pass_fd(mut self, fd: RawFd) -> Self {
        self.fds.push(fd);
        self
    }

    /// Spawns the child, or runs `body` when this process is the child of this role.
    ///
    /// See [`run_child`].
    ///
    /// # Panics
    ///
    /// If the child cannot be spawned.
    pub fn spawn(self, body: impl FnOnce()) -> ChildHandle {
        match child_role() {
            Some(own) if own == self.role => run_body_and_exit(&own, body),
            Some(own) => ChildHandle {
                role: self.role,
                test_name: self.test_name,
                live: None,
                inert_in: own,
            },
            None => self.spawn_in_parent(),
        }
    }

    fn spawn_in_parent(self) -> ChildHandle {
        let exe = std::env::current_exe().expect("cannot find the current test binary");
        let test_args = [
            self.test_name.as_str(),
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ];
        let mut command = match self.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        command
            .args(test_args)
            .env(CHILD_ENV, &self.role)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let parent = getpid();
        let fds = self.fds.clone();
        let hook = move || -> io::Result<()> {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            // The parent may have died before the prctl: then nothing would kill us.
            if getppid() != Some(parent) {
                return Err(Errno::SRCH.into());
            }
            for &fd in &fds {
                // SAFETY: `pass_fd` requires the fd to be open until `spawn` returns, and the
                // forked child holds the same descriptors; the borrow ends in this iteration.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                fcntl_setfd(fd, fcntl_getfd(fd)? - FdFlags::CLOEXEC)?;
            }
            Ok(())
        };
        // SAFETY: the hook runs in the forked child before exec, where only async-signal-safe
        // operations are allowed: it makes raw syscalls (prctl, getppid, fcntl) through rustix
        // and builds errors from error numbers, without allocating or taking locks (`fds` was
        // allocated before the fork and is only read).
        unsafe {
            command.pre_exec(hook);
        }
        let mut child = command.spawn().unwrap_or_else(|err| {
            panic!(
                "cannot spawn test child `{}` ({:?}): {err}",
                self.role,
                command.get_program()
            )
        });
        let stdout = child.stdout.take().expect("child stdout is piped");
        let stderr = child.stderr.take().expect("child stderr is piped");
        let (sender, events) = mpsc::channel();
        spawn_stdout_reader(&self.role, stdout, sender);
        let stderr_tail = Arc::new(StderrTail::default());
        spawn_stderr_reader(&self.role, stderr, Arc::clone(&stderr_tail));
        let stdin = child.stdin.take();
        ChildHandle {
            role: self.role,
            test_name: self.test_name,
            inert_in: String::new(),
            live: Some(Live {
                child,
                stdin,
                events,
                pending: VecDeque::new(),
                started: false,
                stdout_closed: false,
                stderr_tail,
            }),
        }
    }
}

fn run_body_and_exit(role: &str, body: impl FnOnce()) -> ! {
    signal_parent(STARTED_MARKER);
    let result = panic::catch_unwind(AssertUnwindSafe(body));
    let _ = io::stdout().flush();
    let code = match result {
        Ok(()) => 0,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("<non-string panic payload>");
            let _ = writeln!(io::stderr(), "test child `{role}` panicked: {message}");
            101
        }
    };
    let _ = io::stderr().flush();
    std::process::exit(code)
}

/// Tells the parent that `marker` happened: prints `@@multiproc:<marker>` and flushes.
pub fn signal_parent(marker: &str) {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{MARKER_PREFIX}{marker}")
        .and_then(|()| stdout.flush())
        .expect("cannot write to the parent");
}

/// Tells the parent that `marker` happened with a value: prints `@@multiproc:<marker> <value>`
/// and flushes. [`ChildHandle::wait_line`] returns the value as a string.
pub fn signal_parent_with(marker: &str, value: impl fmt::Display) {
    signal_parent(&format!("{marker} {value}"));
}

/// Reads one line sent by [`ChildHandle::send_line`], without its line ending.
///
/// # Panics
///
/// If stdin is closed or unreadable.
pub fn wait_parent_line() -> String {
    let mut line = String::new();
    let read = io::stdin()
        .lock()
        .read_line(&mut line)
        .expect("cannot read a line from the parent");
    assert!(read > 0, "the parent closed the child's stdin");
    line.truncate(line.trim_end_matches(['\n', '\r']).len());
    line
}

/// What went wrong while waiting for a child.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChildError {
    /// The awaited event did not happen in time; the child is left running.
    Timeout {
        /// What was awaited.
        what: String,
    },
    /// The child exited before the awaited event.
    Exited {
        /// How it exited.
        status: ExitStatus,
    },
    /// The child ran no test: the test name matched none (use
    /// [`test_name!`](crate::test_name!)).
    NoSuchTest {
        /// The name passed to the child.
        test_name: String,
    },
    /// Talking to the child failed.
    Io(io::Error),
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { what } => write!(f, "timed out waiting for {what}"),
            Self::Exited { status } => write!(f, "the child exited first ({status})"),
            Self::NoSuchTest { test_name } => {
                write!(
                    f,
                    "the child ran no test: `{test_name}` matches none (use test_name!())"
                )
            }
            Self::Io(err) => write!(f, "I/O error talking to the child: {err}"),
        }
    }
}

impl std::error::Error for ChildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for ChildError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

/// The parent's side of a test child; dropping it kills and reaps the child if needed.
///
/// Timeouts given to its methods are multiplied by [`time_scale`](crate::time_scale).
pub struct ChildHandle {
    role: String,
    test_name: String,
    /// Role of this process when the handle is inert, else empty.
    inert_in: String,
    live: Option<Live>,
}

struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<StdoutEvent>,
    /// Marker lines (after the prefix) not consumed yet.
    pending: VecDeque<String>,
    started: bool,
    stdout_closed: bool,
    stderr_tail: Arc<StderrTail>,
}

impl fmt::Debug for ChildHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ChildHandle");
        debug
            .field("role", &self.role)
            .field("test_name", &self.test_name);
        match &self.live {
            Some(live) => debug.field("pid", &live.child.id()),
            None => debug.field("inert_in", &self.inert_in),
        };
        debug.finish()
    }
}

impl ChildHandle {
    fn live(&mut self) -> &mut Live {
        match &mut self.live {
            Some(live) => live,
            None => inert(&self.role, &self.inert_in),
        }
    }

    /// The role given at spawn.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        match &self.live {
            Some(live) => live.child.id(),
            None => inert(&self.role, &self.inert_in),
        }
    }

    /// Sends `line` and a newline to the child's stdin (read it with [`wait_parent_line`]).
    pub fn send_line(&mut self, line: &str) -> Result<(), ChildError> {
        let live = self.live();
        let stdin = live
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("the child's stdin was closed"))?;
        stdin.write_all(format!("{line}\n").as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes the child's stdin, so its reads see end of file.
    pub fn close_stdin(&mut self) {
        self.live().stdin = None;
    }

    /// Waits for the marker line `@@multiproc:<marker>[ <value>]` and returns `<value>`
    /// trimmed (empty without a value). `marker` must be followed by whitespace or the end of
    /// the line, so `ready` does not match `ready2`.
    ///
    /// Fails with [`ChildError::Timeout`] (child left running), [`ChildError::Exited`] when
    /// the child exits first, or [`ChildError::NoSuchTest`].
    pub fn wait_line(&mut self, marker: &str, timeout: Duration) -> Result<String, ChildError> {
        let deadline = Instant::now() + crate::scaled(timeout);
        let role = self.role.clone();
        let test_name = self.test_name.clone();
        let live = self.live();
        if let Some(index) = live
            .pending
            .iter()
            .position(|line| marker_value(line, marker).is_some())
        {
            let line = live.pending.remove(index).expect("index is in bounds");
            return Ok(marker_value(&line, marker).unwrap_or_default().to_owned());
        }
        while !live.stdout_closed {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match live.events.recv_timeout(remaining) {
                Ok(StdoutEvent::Marker(line)) => match marker_value(&line, marker) {
                    Some(value) => return Ok(value.to_owned()),
                    None => live.pending.push_back(line),
                },
                Ok(StdoutEvent::Started) => live.started = true,
                Err(RecvTimeoutError::Disconnected) => live.stdout_closed = true,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(ChildError::Timeout {
                        what: format!(
                            "marker `{marker}` from test child `{role}` for {timeout:?} (scaled)"
                        ),
                    });
                }
            }
        }
        // Stdout is closed: the child is exiting (or closed it itself).
        let grace = deadline.max(Instant::now() + PIPE_GRACE);
        match live.wait_until(grace)? {
            Some(_) if !live.started => Err(ChildError::NoSuchTest { test_name }),
            Some(status) => Err(ChildError::Exited { status }),
            None => Err(ChildError::Timeout {
                what: format!(
                    "marker `{marker}` from test child `{role}`, which closed its stdout"
                ),
            }),
        }
    }

    /// Waits until the child parks at fault point `point` (see [`ChildBuilder::park_at`]).
    pub fn wait_parked(&mut self, point: &str, timeout: Duration) -> Result<(), ChildError> {
        self.wait_line(&format!("parked:{point}"), timeout)
            .map(drop)
    }

    /// Sends `SIGKILL` to the child (nothing if it was already reaped).
    pub fn kill(&mut self) {
        self.signal(Signal::KILL);
    }

    /// Sends `SIGTERM` to the child (nothing if it was already reaped).
    pub fn terminate(&mut self) {
        self.signal(Signal::TERM);
    }

    /// Sends `signal` to the child (nothing if it was already reaped).
    ///
    /// # Panics
    ///
    /// If the signal cannot be sent, e.g. for lack of permission.
    pub fn signal(&mut self, signal: Signal) {
        let role = self.role.clone();
        let live = self.live();
        if matches!(live.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = i32::try_from(live.child.id())
            .ok()
            .and_then(Pid::from_raw)
            .expect("child pid is positive");
        // The child is not reaped yet, so the pid cannot have been reused.
        if let Err(err) = kill_process(pid, signal) {
            panic!("cannot send {signal:?} to test child `{role}` (pid {pid:?}): {err}");
        }
    }

    /// Waits up to `timeout` for the child to exit and returns its status; on timeout
    /// returns [`ChildError::Timeout`] and leaves the child running.
    ///
    /// After an exit, [`stderr_tail`](Self::stderr_tail) holds all the child's last lines
    /// (unless a grandchild keeps its stderr open for more than 2 seconds).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus, ChildError> {
        let deadline = Instant::now() + crate::scaled(timeout);
        let role = self.role.clone();
        let live = self.live();
        let status = live
            .wait_until(deadline)?
            .ok_or_else(|| ChildError::Timeout {
                what: format!("test child `{role}` to exit for {timeout:?} (scaled)"),
            })?;
        // Let the reader catch up, so `stderr_tail` is complete.
        live.stderr_tail.wait_closed(Instant::now() + PIPE_GRACE);
        Ok(status)
    }

    /// Waits up to `timeout` for the child to exit successfully.
    ///
    /// # Panics
    ///
    /// If the child does not exit in time (it is then killed when the handle drops), exits
    /// unsuccessfully, or ran no test; the message names the role and status and quotes the
    /// last lines of the child's stderr.
    pub fn wait_success(&mut self, timeout: Duration) {
        let status = match self.wait_timeout(timeout) {
            Ok(status) => status,
            Err(err) => panic!("test child `{}`: {err}{}", self.role, self.stderr_report()),
        };
        let live = self.live();
        live.drain_stdout(Instant::now() + PIPE_GRACE);
        let started = live.started;
        if !status.success() {
            panic!(
                "test child `{}` failed ({status}){}",
                self.role,
                self.stderr_report()
            );
        }
        if !started {
            let err = ChildError::NoSuchTest {
                test_name: self.test_name.clone(),
            };
            panic!("test child `{}`: {err}{}", self.role, self.stderr_report());
        }
    }

    /// The last lines the child wrote to stderr (up to 40), oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        match &self.live {
            Some(live) => live.stderr_tail.lines(),
            None => Vec::new(),
        }
    }

    fn stderr_report(&self) -> String {
        if let Some(live) = &self.live {
            live.stderr_tail.wait_closed(Instant::now() + PIPE_GRACE);
        }
        let tail = self.stderr_tail();
        if tail.is_empty() {
            return "; its stderr is empty".to_owned();
        }
        let mut report = "; last lines of its stderr:".to_owned();
        for line in tail {
            report.push_str("\n    ");
            report.push_str(&line);
        }
        report
    }
}

fn inert(role: &str, inert_in: &str) -> ! {
    panic!(
        "the handle of test child `{role}` is inert in test child `{inert_in}`: spawn every \
         child of a test before using any handle (roles must be distinct)"
    )
}

impl Live {
    /// Polls for the child's exit until `deadline`; `None` if it is still running.
    fn wait_until(&mut self, deadline: Instant) -> io::Result<Option<ExitStatus>> {
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Moves stdout events into `pending` until stdout closes or `deadline`.
    fn drain_stdout(&mut self, deadline: Instant) {
        while !self.stdout_closed {
            match self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(StdoutEvent::Marker(line)) => self.pending.push_back(line),
                Ok(StdoutEvent::Started) => self.started = true,
                Err(RecvTimeoutError::Disconnected) => self.stdout_closed = true,
                Err(RecvTimeoutError::Timeout) => return,
            }
        }
    }
}

impl Drop for ChildHandle {
    fn drop(&mut self) {
        if let Some(live) = &mut self.live {
            live.stdin = None;
            if !matches!(live.child.try_wait(), Ok(Some(_))) {
                let _ = live.child.kill();
                let _ = live.child.wait();
            }
        }
    }
}

/// The value after `marker` in marker line `line` (already stripped of [`MARKER_PREFIX`]).
fn marker_value<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

enum StdoutEvent {
    /// A marker line, without [`MARKER_PREFIX`].
    Marker(String),
    /// The child began running its body.
    Started,
}

/// Calls `each` with every line of `pipe` (lossy UTF-8, line ending removed) until EOF.
fn for_each_line(pipe: impl Read, mut each: impl FnMut(String)) {
    let mut reader = BufReader::new(pipe);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                each(line.trim_end_matches(['\n', '\r']).to_owned());
            }
        }
    }
}

fn spawn_stdout_reader(
    role: &str,
    stdout: impl Read + Send + 'static,
    sender: Sender<StdoutEvent>,
) {
    let role = role.to_owned();
    std::thread::Builder::new()
        .name(format!("child {role} stdout"))
        .spawn(move || {
            for_each_line(stdout, |line| {
                let event = match line.strip_prefix(MARKER_PREFIX) {
                    Some(STARTED_MARKER) => StdoutEvent::Started,
                    Some(marker) => StdoutEvent::Marker(marker.to_owned()),
                    None => {
                        // Skip libtest's banner in the child.
                        if !line.trim().is_empty() && line != "running 1 test" {
                            println!("[child {role}] {line}");
                        }
                        return;
                    }
                };
                // The handle may be gone; keep draining so the child never blocks on a full pipe.
                let _ = sender.send(event);
            });
        })
        .expect("cannot spawn a child stdout reader thread");
}

#[derive(Default)]
struct StderrTail {
    state: Mutex<TailState>,
    closed: Condvar,
}

#[derive(Default)]
struct TailState {
    lines: VecDeque<String>,
    closed: bool,
}

impl StderrTail {
    fn lock(&self) -> MutexGuard<'_, TailState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lines(&self) -> Vec<String> {
        self.lock().lines.iter().cloned().collect()
    }

    /// Waits until the child's stderr is closed or `deadline`.
    fn wait_closed(&self, deadline: Instant) {
        let mut state = self.lock();
        while !state.closed {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            state = self
                .closed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn spawn_stderr_reader(role: &str, stderr: impl Read + Send + 'static, tail: Arc<StderrTail>) {
    let role = role.to_owned();
    std::thread::Builder::new()
        .name(format!("child {role} stderr"))
        .spawn(move || {
            for_each_line(stderr, |line| {
                eprintln!("[child {role}] {line}");
                let mut state = tail.lock();
                if state.lines.len() == STDERR_TAIL_LINES {
                    state.lines.pop_front();
                }
                state.lines.push_back(line);
            });
            tail.lock().closed = true;
            tail.closed.notify_all();
        })
        .expect("cannot spawn a child stderr reader thread");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    const WAIT: Duration = Duration::from_secs(30);

    #[test]
    fn test_name_macro_names_this_test() {
        assert_eq!(
            crate::test_name!(),
            "child::tests::test_name_macro_names_this_test"
        );
        let in_closure = || crate::test_name!();
        assert_eq!(
            in_closure(),
            "child::tests::test_name_macro_names_this_test"
        );
    }

    #[test]
    fn test_name_from_type_names() {
        assert_eq!(
            test_name_from_type_name("segment_named::child_sees_parent_writes::f"),
            "child_sees_parent_writes"
        );
        assert_eq!(
            test_name_from_type_name("my_crate::tests::foo::{{closure}}::f"),
            "tests::foo"
        );
    }

    #[test]
    fn marker_values() {
        assert_eq!(marker_value("ready", "ready"), Some(""));
        assert_eq!(marker_value("ready 123 ", "ready"), Some("123"));
        assert_eq!(marker_value("ready2", "ready"), None);
        assert_eq!(marker_value("parked:a.b", "parked:a.b"), Some(""));
        assert_eq!(marker_value("other", "ready"), None);
    }

    #[test]
    fn child_round_trip() {
        let _watchdog = crate::Watchdog::new(Duration::from_secs(120));
        let mut child = run_child(&crate::test_name!(), "echo", || {
            println!("plain output is echoed");
            signal_parent("first");
            signal_parent_with("ready", std::process::id());
            let line = wait_parent_line();
            signal_parent_with("echo", &line);
            assert_eq!(line, "hello child");
        });
        // Markers are kept until asked for, in any order.
        let pid = child.wait_line("ready", WAIT).unwrap();
        assert_eq!(pid, child.pid().to_string());
        assert_eq!(child.wait_line("first", WAIT).unwrap(), "");
        child.send_line("hello child").unwrap();
        assert_eq!(child.wait_line("echo", WAIT).unwrap(), "hello child");
        child.wait_success(WAIT);
    }

    #[test]
    fn child_panic_is_reported() {
        let mut child = run_child(&crate::test_name!(), "panicker", || {
            panic!("deliberate child panic")
        });
        let err = child.wait_line("never", WAIT).unwrap_err();
        assert!(
            matches!(err, ChildError::Exited { status } if status.code() == Some(101)),
            "{err}"
        );
        let message =
            panic::catch_unwind(AssertUnwindSafe(|| child.wait_success(WAIT))).unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("deliberate child panic"), "{message}");
    }

    #[test]
    fn unknown_test_name_is_reported() {
        let mut child = run_child("no::such::test", "ghost", || unreachable!());
        let err = child.wait_line("ready", WAIT).unwrap_err();
        assert!(matches!(err, ChildError::NoSuchTest { .. }), "{err}");
    }

    #[test]
    fn parked_child_is_killed() {
        let mut child = child_builder(&crate::test_name!(), "parker")
            .park_at("demo.point")
            .spawn(|| {
                // What `fault_point!("demo.point")` does in the library crates.
                let point = std::env::var(FAULT_PARK_ENV).unwrap();
                signal_parent(&format!("parked:{point}"));
                loop {
                    std::thread::park();
                }
            });
        child.wait_parked("demo.point", WAIT).unwrap();
        assert!(matches!(
            child.wait_timeout(Duration::from_millis(50)),
            Err(ChildError::Timeout { .. })
        ));
        child.kill();
        let status = child.wait_timeout(WAIT).unwrap();
        assert_eq!(status.signal(), Some(Signal::KILL.as_raw()));
        child.kill(); // already reaped: no-op
    }

    #[test]
    fn wrapper_runs_the_child() {
        if !crate::have_program("env") {
            crate::skip("no `env` program");
            return;
        }
        let mut child = child_builder(&crate::test_name!(), "wrapped")
            .wrapper(&["env", "TEST_SUPPORT_WRAPPED=yes"])
            .spawn(|| assert_eq!(std::env::var("TEST_SUPPORT_WRAPPED").unwrap(), "yes"));
        child.wait_success(WAIT);
    }

    #[test]
    fn child_dies_with_its_spawning_thread() {
        let name = crate::test_name!();
        let mut child = std::thread::spawn(move || {
            let mut child = run_child(&name, "orphan", || {
                signal_parent("ready");
                loop {
                    std::thread::park();
                }
            });
            child.wait_line("ready", WAIT).unwrap();
            child
        })
        .join()
        .unwrap();
        let status = child.wait_timeout(WAIT).unwrap();
        assert_eq!(status.signal(), Some(Signal::KILL.as_raw()));
    }

    #[test]
    fn watchdog_aborts_a_hung_child() {
        let mut child = run_child(&crate::test_name!(), "hung", || {
            let _watchdog = crate::Watchdog::named("hung-demo", Duration::from_millis(50));
            loop {
                std::thread::park();
            }
        });
        let status = child.wait_timeout(WAIT).unwrap();
        assert_eq!(
            status.signal(),
            Some(rustix::process::Signal::ABORT.as_raw())
        );
        let tail = child.stderr_tail().join("\n");
        assert!(
            tail.contains("watchdog: test hung-demo hung for more than"),
            "{tail}"
        );
    }

    #[test]
    fn two_roles_then_talk() {
        let name = crate::test_name!();
        let mut a = run_child(&name, "a", || signal_parent_with("from", "a"));
        let mut b = run_child(&name, "b", || {
            // In this process, the handle of role `a` is inert.
            signal_parent_with("from", wait_parent_line());
        });
        assert_eq!(a.wait_line("from", WAIT).unwrap(), "a");
        b.send_line("b").unwrap();
        assert_eq!(b.wait_line("from", WAIT).unwrap(), "b");
        a.wait_success(WAIT);
        b.wait_success(WAIT);
    }

    #[test]
    fn other_roles_get_inert_handles() {
        let name = crate::test_name!();
        let mut outer = run_child(&name.clone(), "outer", move || {
            let inner = run_child(&name, "inner", || unreachable!());
            let pid = panic::catch_unwind(AssertUnwindSafe(|| inner.pid()));
            assert!(pid.is_err(), "an inert handle gave a pid");
            signal_parent("inert");
        });
        outer.wait_line("inert", WAIT).unwrap();
        outer.wait_success(WAIT);
    }

    #[test]
    fn passed_fd_is_inherited() {
        let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&writer);
        let mut child = child_builder(&crate::test_name!(), "fd-writer")
            .pass_fd(fd)
            .env("TEST_SUPPORT_FD", fd.to_string())
            .spawn(|| {
                let fd: RawFd = std::env::var("TEST_SUPPORT_FD").unwrap().parse().unwrap();
                // SAFETY: the parent passed this open fd to the child, which owns it from now on.
                let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                (&file).write_all(b"through the fd").unwrap();
            });
        drop(writer);
        child.wait_success(WAIT);
        let mut received = String::new();
        std::fs::File::from(reader)
            .read_to_string(&mut received)
            .unwrap();
        assert_eq!(received, "through the fd");
    }
}
