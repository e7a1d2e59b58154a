//! [`Process`]: a function running in a child process, with Python's lifecycle.

use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shm_segment::ProcessId;

use crate::child::ChildState;
use crate::current::{self, CHILDREN, Identity};
use crate::error::{ForkError, JoinTimeoutError, ProcessError, StartError};
use crate::spawn::{self, Payload, Report};
use crate::sys::{self, Exit};

/// A function running in a child process: Python's `multiprocessing.Process`, with the
/// function's result carried back by [`join`](Self::join).
///
/// [`spawn`](Self::spawn) (and [`new`](Self::new) + [`start`](Self::start)) use the
/// *spawn* start method: the child is this executable started again, so it inherits no
/// threads, locks or heap state and is safe to use from a multi-threaded parent. `main`
/// must call [`crate::init`] first (test binaries use [`crate::init_before_main!`]).
/// Only `fn` items and non-capturing closures can be spawned (`f: fn(A) -> R`): a closure
/// that captures does not compile; pass what it would capture as the argument instead.
/// Arguments and results are serde values; handles to shared objects (segments, queues,
/// locks) travel too.
///
/// [`fork`](Self::fork) uses the *fork* start method, for single-threaded parents only.
///
/// Exit codes follow Python: `Some(0)` success, `Some(1)` when the function panicked or
/// returned `Err`, `Some(-N)` when signal `N` ended it, `None` while it runs.
///
/// # Examples
///
/// ```
/// use shm_process::Process;
/// # shm_process::init();
/// fn square(x: u64) -> u64 { x * x }
///
/// let mut p = Process::spawn(square, 12)?;
/// assert_eq!(p.join()?, 144);
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Process<R> {
    name: String,
    path: String,
    daemon: bool,
    pending: Option<Result<Payload, String>>,
    child: Option<Arc<ChildState>>,
    result_fd: Option<OwnedFd>,
    joined: bool,
    _result: PhantomData<fn() -> R>,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Payload")
    }
}

impl<R: Serialize + DeserializeOwned> Process<R> {
    /// A process that will run `f(args)` once [`start`](Self::start)ed, named `Process-N`.
    /// The arguments are serialised now; an error shows at `start`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_process::Process;
    /// # shm_process::init();
    /// fn greet(who: String) -> String { format!("hello {who}") }
    /// let mut p = Process::new(greet, "bob".to_owned()).with_name("greeter");
    /// assert_eq!(p.name(), "greeter");
    /// assert_eq!(p.pid(), None);
    /// p.start()?;
    /// assert_eq!(p.join()?, "hello bob");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new<A: Serialize + DeserializeOwned>(f: fn(A) -> R, args: A) -> Self {
        let (name, path) = current::next_child();
        Process {
            name,
            path,
            daemon: false,
            pending: Some(Payload::new(f, &args)),
            child: None,
            result_fd: None,
            joined: false,
            _result: PhantomData,
        }
    }

    /// Starts `f(args)` in a new child process (the spawn start method) and returns it
    /// running.
    ///
    /// # Errors
    ///
    /// [`StartError::Args`] if the arguments cannot be serialised, [`StartError::Io`] if
    /// the process cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn add((a, b): (i32, i32)) -> i32 { a + b }
    /// let mut p = shm_process::Process::spawn(add, (2, 3))?;
    /// assert_eq!(p.join()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<A: Serialize + DeserializeOwned>(
        f: fn(A) -> R,
        args: A,
    ) -> Result<Self, StartError> {
        let mut process = Self::new(f, args);
        process.start()?;
        Ok(process)
    }

    /// Starts the process.
    ///
    /// # Errors
    ///
    /// [`StartError::AlreadyStarted`] on a second call, [`StartError::Args`] if the
    /// arguments could not be serialised, [`StartError::Io`] if the OS refused.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn nothing(_: ()) {}
    /// let mut p = shm_process::Process::new(nothing, ());
    /// p.start()?;
    /// p.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(&mut self) -> Result<(), StartError> {
        let payload = self.pending.take().ok_or(StartError::AlreadyStarted)?;
        let payload = payload.map_err(|message| StartError::Args { message })?;
        let (pid, result_fd) = spawn::launch(payload, &self.name, &self.path, self.daemon)
            .map_err(|source| StartError::Io {
                op: "spawn",
                source,
            })?;
        self.adopt(pid, result_fd);
        Ok(())
    }

    fn adopt(&mut self, pid: u32, result_fd: OwnedFd) {
        let state = Arc::new(ChildState::new(pid, self.name.clone(), self.daemon));
        let mut children = CHILDREN.lock();
        // Like Python's `start`, reap the children that have finished meanwhile, so that a
        // program that drops its `Process` handles accumulates no zombies.
        children.retain(|c| c.try_reap().is_none());
        children.push(Arc::clone(&state));
        self.child = Some(state);
        self.result_fd = Some(result_fd);
    }

    /// Runs `f` in a child made by `fork()` (the fork start method): the child starts as a
    /// copy of this process — its memory, open descriptors and mapped segments — so `f` may
    /// capture anything. Its result comes back by [`join`](Self::join).
    ///
    /// Fork copies only the calling thread. With other threads running, the child could
    /// inherit a lock one of them held (in the allocator, stdout, ...) and deadlock, so
    /// `fork` refuses unless this process has a single thread. Spawn is safe everywhere.
    /// Note that a daemon spawn or a [`Pool`](crate::Pool) starts a helper thread that lives
    /// as long as the process, so `fork` is refused after either.
    /// The child exits with `_exit` after `f`: no destructors or `atexit` handlers run in it.
    ///
    /// # Errors
    ///
    /// [`ForkError::MultiThreaded`] when other threads exist, [`ForkError::Io`] if `fork`
    /// or the result file fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // In a single-threaded program:
    /// let base = vec![1, 2, 3];
    /// let mut p = shm_process::Process::fork(move || base.iter().sum::<i32>())?;
    /// assert_eq!(p.join()?, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fork(f: impl FnOnce() -> R) -> Result<Self, ForkError> {
        let threads = sys::thread_count();
        if threads > 1 {
            return Err(ForkError::MultiThreaded { threads });
        }
        let result_fd = sys::memfd("multiproc.result").map_err(|source| ForkError::Io {
            op: "memfd_create",
            source,
        })?;
        let (name, path) = current::next_child();
        let parent = (ProcessId::current(), current::identity().name);
        // Output buffered now would be written twice, by both processes.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: this process has a single thread (checked above), so the child is a
        // complete copy of it and may run ordinary Rust code.
        let pid = unsafe { sys::fork() }.map_err(|source| ForkError::Io { op: "fork", source })?;
        if pid == 0 {
            current::set_identity(Identity {
                name,
                path,
                daemon: false,
                parent: Some(parent),
            });
            let report = spawn::run_catching(|| {
                let value = f();
                let error = crate::probe::error_message(&value);
                match postcard::to_allocvec(&value) {
                    Ok(value) => Report::Returned { value, error },
                    Err(e) => Report::Codec {
                        message: format!("cannot serialise the result: {e}"),
                    },
                }
            });
            spawn::finish(result_fd.as_fd(), &report);
        }
        let mut process = Process {
            name,
            path,
            daemon: false,
            pending: None,
            child: None,
            result_fd: None,
            joined: false,
            _result: PhantomData,
        };
        process.adopt(pid, result_fd);
        Ok(process)
    }
}

impl<R> Process<R> {
    /// Sets the name (before [`start`](Self::start)); the default is `Process-N`.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn one(_: ()) -> u8 { 1 }
    /// let p = shm_process::Process::new(one, ()).with_name("worker-1");
    /// assert_eq!(p.name(), "worker-1");
    /// ```
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.set_name(name);
        self
    }

    /// Sets the name in place (Python's `p.name = ...`).
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn one(_: ()) -> u8 { 1 }
    /// let mut p = shm_process::Process::new(one, ());
    /// p.set_name("renamed");
    /// assert_eq!(p.name(), "renamed");
    /// ```
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// The process's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn one(_: ()) -> u8 { 1 }
    /// assert!(shm_process::Process::new(one, ()).name().starts_with("Process-"));
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes the child a daemon (before [`start`](Self::start)): it is killed when this
    /// process dies, however it dies (even by SIGKILL), through `PR_SET_PDEATHSIG`; a
    /// parent that died before the child could arm it makes the child exit at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn is_daemon(_: ()) -> bool { shm_process::current_process().daemon }
    /// let mut p = shm_process::Process::new(is_daemon, ()).daemon(true);
    /// assert!(p.is_daemon());
    /// p.start()?;
    /// assert!(p.join()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Whether the process is (or will be started as) a daemon.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// The child's pid once started.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn pid(_: ()) -> u32 { std::process::id() }
    /// let mut p = shm_process::Process::spawn(pid, ())?;
    /// let expected = p.pid();
    /// assert_eq!(Some(p.join()?), expected);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid)
    }

    /// Whether the process has started and not yet ended.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let mut p = shm_process::Process::spawn(nap, 10_000)?;
    /// assert!(p.is_alive());
    /// p.kill()?;
    /// let _ = p.join();
    /// assert!(!p.is_alive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        self.child.as_ref().is_some_and(|c| c.try_reap().is_none())
    }

    /// Python's exit code: `None` while running (or before start), `Some(0)` on success,
    /// `Some(1)` after a panic or an `Err` result, `Some(code)` after `exit(code)`,
    /// `Some(-N)` when signal `N` ended it. If something else in the program reaped the
    /// child (SIGCHLD set to `SIG_IGN`, a stray `waitpid(-1)`), the code comes from the
    /// child's own report, or is `None` if it ended before writing one; `is_alive` is then
    /// false.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn fails(_: ()) -> Result<(), String> { Err("bad input".into()) }
    /// let mut p = shm_process::Process::spawn(fails, ())?;
    /// assert_eq!(p.join()?, Err("bad input".to_owned()));
    /// assert_eq!(p.exitcode(), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        match self.child.as_ref()?.try_reap()? {
            Exit::Code(code) => Some(code),
            Exit::Signal(signal) => Some(-signal),
            // Someone else reaped it (SIGCHLD ignored?): the child's own report still says
            // how its function ended, if it got that far.
            Exit::Lost => {
                let report = sys::read_all(self.result_fd.as_ref()?.as_fd()).ok()?;
                postcard::from_bytes::<Report>(&report)
                    .ok()
                    .map(|r| r.exit_code())
            }
        }
    }

    /// Sends SIGTERM (Python's `terminate`). Does nothing if the process has ended.
    ///
    /// # Errors
    ///
    /// The OS error if the signal could not be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let mut p = shm_process::Process::spawn(nap, 10_000)?;
    /// p.terminate()?;
    /// assert!(p.join().is_err());
    /// assert_eq!(p.exitcode(), Some(-15));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate(&self) -> std::io::Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGKILL (Python's `kill`). Does nothing if the process has ended.
    ///
    /// # Errors
    ///
    /// The OS error if the signal could not be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let mut p = shm_process::Process::spawn(nap, 10_000)?;
    /// p.kill()?;
    /// assert!(matches!(p.join(), Err(shm_process::ProcessError::Killed { signal: 9, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill(&self) -> std::io::Result<()> {
        self.signal(libc::SIGKILL)
    }

    fn signal(&self, signal: i32) -> std::io::Result<()> {
        match &self.child {
            Some(child) => child.signal(signal),
            None => Ok(()),
        }
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// Waits for the process to end and returns its function's result.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Panicked`] with the panic message, [`ProcessError::Killed`] with the
    /// signal, [`ProcessError::Exited`] if it exited without returning,
    /// [`ProcessError::NotStarted`], [`ProcessError::AlreadyJoined`] on a second call,
    /// [`ProcessError::ResultUnreadable`].
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn cube(x: i64) -> i64 { x * x * x }
    /// let mut p = shm_process::Process::spawn(cube, 5)?;
    /// assert_eq!(p.join()?, 125);
    /// assert!(matches!(p.join(), Err(shm_process::ProcessError::AlreadyJoined)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&mut self) -> Result<R, ProcessError> {
        match self.join_until(None) {
            Err(JoinTimeoutError::Process(e)) => Err(e),
            Err(JoinTimeoutError::Timeout) => {
                unreachable!("a join without deadline does not time out")
            }
            Ok(value) => Ok(value),
        }
    }

    /// Like [`join`](Self::join), giving up after `timeout`; the process keeps running and
    /// can be joined again.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] if it still runs, else as [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # shm_process::init();
    /// fn quick(_: ()) -> u8 { 7 }
    /// let mut p = shm_process::Process::spawn(quick, ())?;
    /// assert_eq!(p.join_timeout(Duration::from_secs(30))?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, JoinTimeoutError> {
        self.join_until(shm_segment::futex::deadline_after(timeout))
    }

    fn join_until(&mut self, deadline: Option<std::time::Instant>) -> Result<R, JoinTimeoutError> {
        let child = self.child.as_ref().ok_or(ProcessError::NotStarted)?;
        if self.joined {
            return Err(ProcessError::AlreadyJoined.into());
        }
        let exit = child.wait(deadline).ok_or(JoinTimeoutError::Timeout)?;
        self.joined = true;
        CHILDREN.lock().retain(|c| !Arc::ptr_eq(c, child));
        let name = self.name.clone();
        let unreadable = |reason: String| ProcessError::ResultUnreadable {
            name: name.clone(),
            reason,
        };
        let report = match &self.result_fd {
            Some(fd) => sys::read_all(fd.as_fd()).map_err(|e| unreadable(e.to_string()))?,
            None => Vec::new(),
        };
        let report: Option<Report> = if report.is_empty() {
            None
        } else {
            postcard::from_bytes(&report).ok()
        };
        match (exit, report) {
            (Exit::Signal(signal), _) => Err(ProcessError::Killed { name, signal }.into()),
            (_, Some(Report::Returned { value, .. })) => {
                postcard::from_bytes(&value).map_err(|e| unreadable(e.to_string()).into())
            }
            (_, Some(Report::Panicked { message })) => {
                Err(ProcessError::Panicked { name, message }.into())
            }
            (_, Some(Report::Codec { message })) => Err(unreadable(message).into()),
            (Exit::Code(code), None) => Err(ProcessError::Exited { name, code }.into()),
            (Exit::Lost, None) => Err(ProcessError::StatusLost { name }.into()),
        }
    }
}
