//! Errors, one enum per operation.

use std::io;

/// Why [`Process::start`](crate::Process::start) failed.
///
/// # Examples
///
/// ```
/// use shm_process::{Process, StartError};
/// # shm_process::init();
/// fn id(x: u8) -> u8 { x }
/// let mut p = Process::new(id, 1);
/// p.start()?;
/// assert!(matches!(p.start(), Err(StartError::AlreadyStarted)));
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `start` was called twice (a process runs once; make a new `Process`).
    #[error("the process was already started; create a new Process to run the function again")]
    AlreadyStarted,
    /// The arguments could not be serialised.
    #[error("cannot serialise the process's arguments: {message}")]
    Args {
        /// The serialiser's message.
        message: String,
    },
    /// The operating system refused.
    #[error("starting the process failed in {op}: {source}")]
    Io {
        /// The failing step.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why a process did not deliver its function's result.
///
/// # Examples
///
/// ```
/// use shm_process::{Process, ProcessError};
/// # shm_process::init();
/// fn boom(_: ()) -> u8 { panic!("no way") }
/// let mut p = Process::spawn(boom, ())?;
/// match p.join() {
///     Err(ProcessError::Panicked { message, .. }) => assert_eq!(message, "no way"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(p.exitcode(), Some(1));
/// # Ok::<(), shm_process::StartError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The function panicked (exit code 1).
    #[error("process {name} panicked: {message}")]
    Panicked {
        /// The process's name.
        name: String,
        /// The panic message.
        message: String,
    },
    /// A signal ended the process (exit code `-signal`).
    #[error("process {name} was killed by signal {signal}{}", signal_name(*signal))]
    Killed {
        /// The process's name.
        name: String,
        /// The signal number.
        signal: i32,
    },
    /// The process exited without returning from the function (it called
    /// `std::process::exit`, or never reached it).
    #[error("process {name} exited with code {code} before its function returned")]
    Exited {
        /// The process's name.
        name: String,
        /// Its exit code.
        code: i32,
    },
    /// The process ended, but its exit status was collected by someone else (SIGCHLD set
    /// to `SIG_IGN`, or another `waitpid(-1)` in the program) before it reported a result.
    #[error(
        "process {name} ended but its exit status was collected elsewhere (is SIGCHLD \
         ignored?) before it reported a result"
    )]
    StatusLost {
        /// The process's name.
        name: String,
    },
    /// The result could not be read back.
    #[error("the result of process {name} could not be read: {reason}")]
    ResultUnreadable {
        /// The process's name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// `join` before `start`.
    #[error("the process was never started")]
    NotStarted,
    /// The result was already returned by an earlier `join`.
    #[error("the process was already joined and its result taken")]
    AlreadyJoined,
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGBUS => " (SIGBUS)",
        _ => "",
    }
}

/// Why [`Process::join_timeout`](crate::Process::join_timeout) returned without a result.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shm_process::{JoinTimeoutError, Process};
/// # shm_process::init();
/// fn nap(ms: u64) { std::thread::sleep(Duration::from_millis(ms)) }
/// let mut p = Process::spawn(nap, 5_000)?;
/// assert!(matches!(p.join_timeout(Duration::from_millis(10)), Err(JoinTimeoutError::Timeout)));
/// p.kill()?;
/// assert!(p.join().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinTimeoutError {
    /// The process is still running; join again later.
    #[error("the process is still running")]
    Timeout,
    /// The process ended without a result.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// Why [`Process::fork`](crate::Process::fork) refused or failed.
///
/// # Examples
///
/// ```
/// use shm_process::{ForkError, Process};
/// // A second thread that lives until we let it go.
/// let (release, wait) = std::sync::mpsc::channel::<()>();
/// let busy = std::thread::spawn(move || wait.recv());
/// assert!(matches!(Process::fork(|| 1u8), Err(ForkError::MultiThreaded { .. })));
/// release.send(()).unwrap();
/// busy.join().unwrap().unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The calling process runs several threads: a forked child would inherit locks held by
    /// threads that do not exist in it. Use [`Process::spawn`](crate::Process::spawn).
    #[error(
        "refusing to fork a process that runs {threads} threads (the child could deadlock on \
         locks held by the other threads); use Process::spawn, which is safe with threads"
    )]
    MultiThreaded {
        /// How many threads the process runs.
        threads: usize,
    },
    /// The operating system refused.
    #[error("fork failed in {op}: {source}")]
    Io {
        /// The failing step.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
