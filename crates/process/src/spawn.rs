//! The spawn start method: the child is this executable run again, told by its
//! environment which function to run, where its arguments are, and where to put its result.
//!
//! The function travels as its address relative to an anchor function of this crate: the
//! child is the same executable (`/proc/self/exe`), so the same offset finds the same code
//! in it whatever address the loader chose. A monomorphised trampoline, found the same way,
//! knows the argument and result types. Arguments and the result travel through two memfds
//! the child inherits (no pipe that could fill up, no thread to drain it); descriptors of
//! handles in the arguments (anonymous segments) are inherited through
//! [`shm_segment::transfer`].

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::mpsc;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shm_segment::{ProcessId, transfer};

use crate::current::{self, DAEMON_ENV, IDENTITY_ENV, NAME_ENV, PARENT_ENV};
use crate::{probe, sys};

pub(crate) const SPAWN_ENV: &str = "MULTIPROC_SPAWN";

/// What the child writes into its result memfd.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The function returned; `error` is set when it returned `Err` (exit code 1).
    Returned {
        value: Vec<u8>,
        error: Option<String>,
    },
    /// The function panicked.
    Panicked { message: String },
    /// The arguments or the result could not be (de)serialised.
    Codec { message: String },
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        match self {
            Report::Returned { error: None, .. } => 0,
            _ => 1,
        }
    }
}

/// A trampoline: runs the function at address `func` on the arguments in `args`.
pub(crate) type Entry = fn(usize, &[u8]) -> Report;

#[inline(never)]
fn anchor() {}

pub(crate) fn offset_of_fn(address: usize) -> isize {
    (address as isize).wrapping_sub(anchor as fn() as usize as isize)
}

pub(crate) fn address_of_offset(offset: isize) -> usize {
    (anchor as fn() as usize as isize).wrapping_add(offset) as usize
}

fn trampoline<A: DeserializeOwned, R: Serialize>(func: usize, args: &[u8]) -> Report {
    // SAFETY: `func` is the address of a `fn(A) -> R` of this very executable: the parent
    // took it from such a pointer and sent its offset from `anchor`, and this trampoline,
    // found the same way, was monomorphised by the parent for the same `A` and `R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let args: A = match postcard::from_bytes(args) {
        Ok(args) => args,
        Err(e) => {
            return Report::Codec {
                message: format!("cannot deserialise the arguments: {e}"),
            };
        }
    };
    let value = f(args);
    let error = probe::error_message(&value);
    match postcard::to_allocvec(&value) {
        Ok(value) => Report::Returned { value, error },
        Err(e) => Report::Codec {
            message: format!("cannot serialise the result: {e}"),
        },
    }
}

/// Everything needed to start `f(args)` in a child.
pub(crate) struct Payload {
    entry: isize,
    func: isize,
    args: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Payload {
    pub fn new<A: Serialize + DeserializeOwned, R: Serialize + DeserializeOwned>(
        f: fn(A) -> R,
        args: &A,
    ) -> Result<Self, String> {
        let entry: Entry = trampoline::<A, R>;
        check_same_object(f as usize)?;
        let (args, fds) = transfer::collect_fds(|| postcard::to_allocvec(args));
        Ok(Payload {
            entry: offset_of_fn(entry as usize),
            func: offset_of_fn(f as usize),
            args: args.map_err(|e| e.to_string())?,
            fds,
        })
    }
}

/// Refuses a function that lives in another loaded object (a dynamic library) than this
/// crate's anchor: its offset from the anchor would differ in the child.
pub(crate) fn check_same_object(func: usize) -> Result<(), String> {
    if sys::same_object(anchor as fn() as usize, func) {
        Ok(())
    } else {
        Err(
            "the function lives in a dynamic library, not in the executable: spawn can only \
             run functions linked into the program itself"
                .to_owned(),
        )
    }
}

/// Starts the child; returns its pid and the memfd it will write its report into.
pub(crate) fn launch(
    payload: Payload,
    name: &str,
    path: &str,
    daemon: bool,
) -> std::io::Result<(u32, OwnedFd)> {
    let args_fd = sys::memfd("multiproc.args")?;
    sys::write_all_at_start(args_fd.as_fd(), &payload.args)?;
    let result_fd = sys::memfd("multiproc.result")?;
    let me = ProcessId::current();
    // The child checks that the args descriptor and the executable are really the ones
    // named here before trusting the offsets: a grandchild that inherited the variable, or
    // another program exec'd with it, finds neither and ignores it.
    let missing = || std::io::Error::other("cannot identify the arguments file or the executable");
    let (args_dev, args_ino) = sys::fd_identity(sys::raw(&args_fd)).ok_or_else(missing)?;
    let (exe_dev, exe_ino) = sys::exe_identity().ok_or_else(missing)?;
    let spec = format!(
        "{}:{}:{}:{}:{}:{args_dev}:{args_ino}:{exe_dev}:{exe_ino}",
        me.pid,
        payload.entry,
        payload.func,
        sys::raw(&args_fd),
        sys::raw(&result_fd)
    );
    let mut command = Command::new("/proc/self/exe");
    if let Some(argv0) = std::env::args_os().next() {
        command.arg0(argv0);
    }
    command
        .env(SPAWN_ENV, spec)
        .env(NAME_ENV, name)
        .env(IDENTITY_ENV, path)
        .env(DAEMON_ENV, if daemon { "1" } else { "0" })
        .env(
            PARENT_ENV,
            format!("{}:{}:{}", me.pid, me.start_time, current::identity().name),
        );
    transfer::inherit(&mut command, payload.fds);
    let (args_raw, result_raw) = (sys::raw(&args_fd), sys::raw(&result_fd));
    let parent = me.pid;
    // SAFETY: runs between fork and exec: fcntl, prctl and getppid are async-signal-safe
    // and nothing here allocates or takes a lock.
    unsafe {
        command.pre_exec(move || {
            sys::clear_cloexec(args_raw)?;
            sys::clear_cloexec(result_raw)?;
            if daemon {
                sys::die_with_parent(parent)?;
            }
            Ok(())
        });
    }
    let child = if daemon {
        spawn_from_long_lived_thread(command)?
    } else {
        command.spawn()?
    };
    // The child is ours to reap (ChildState does it); std's handle has nothing else to do.
    let pid = child.id();
    drop(child);
    drop(args_fd);
    Ok((pid, result_fd))
}

/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so daemons are
/// forked by one thread that lives as long as the process: they die with the process, not
/// with whichever thread happened to start them.
fn spawn_from_long_lived_thread(command: Command) -> std::io::Result<std::process::Child> {
    type Job = (
        Command,
        mpsc::SyncSender<std::io::Result<std::process::Child>>,
    );
    static SPAWNER: Mutex<Option<(u32, mpsc::Sender<Job>)>> = Mutex::new(None);
    let mut spawner = SPAWNER.lock();
    let me = sys::getpid();
    if spawner.as_ref().is_none_or(|(owner, _)| *owner != me) {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("multiproc-spawner".into())
            .spawn(move || {
                for (mut command, reply) in queue {
                    let _ = reply.send(command.spawn());
                }
            })?;
        *spawner = Some((me, jobs));
    }
    let (reply, answer) = mpsc::sync_channel(1);
    let jobs = &spawner.as_ref().expect("spawner set above").1;
    jobs.send((command, reply))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    drop(spawner);
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// The child side: if this process was spawned by multiproc, runs the function and exits.
pub(crate) fn run_if_child() {
    let Ok(spec) = std::env::var(SPAWN_ENV) else {
        return;
    };
    let Some(
        [
            parent_pid,
            entry,
            func,
            args_fd,
            result_fd,
            args_dev,
            args_ino,
            exe_dev,
            exe_ino,
        ],
    ) = parse_spec(&spec)
    else {
        return;
    };
    // The variable may have been inherited by a process it was not meant for (a grandchild
    // started by plain `Command`, another program exec'd with it): the descriptors and the
    // executable it names identify the real child. A setuid program trusts no environment.
    let (args_fd, result_fd) = (args_fd as i32, result_fd as i32);
    if sys::fd_identity(args_fd) != Some((args_dev as u64, args_ino as u64))
        || sys::fd_identity(result_fd).is_none()
        || sys::exe_identity() != Some((exe_dev as u64, exe_ino as u64))
        || sys::secure_mode()
    {
        return;
    }
    // SAFETY: the parent passed these descriptors to this process (identity checked above)
    // and nothing else in it uses these numbers.
    let (args_fd, result_fd) = unsafe { (sys::borrow_raw(args_fd), sys::borrow_raw(result_fd)) };
    // Programs this child execs must not inherit them (and so never mistake the variable
    // for their own).
    sys::set_cloexec(args_fd);
    sys::set_cloexec(result_fd);
    if std::env::var(DAEMON_ENV).is_ok_and(|v| v == "1") {
        // Re-arm: an exec of a privileged image clears the parent-death signal.
        let parent = parent_pid as u32;
        if sys::die_with_parent(parent).is_err() {
            sys::exit_now(1);
        }
    }
    let report = match sys::read_all(args_fd) {
        Ok(args) => {
            let fds = transfer::take_inherited();
            // SAFETY: `entry` is the offset of a `trampoline::<A, R>` of this executable
            // (checked above to be the parent's), computed by the parent from the same
            // anchor; `Payload::new` refused functions outside the executable.
            let entry =
                unsafe { std::mem::transmute::<usize, Entry>(address_of_offset(entry as isize)) };
            let func = address_of_offset(func as isize);
            run_catching(|| transfer::with_received_fds(&fds, || entry(func, &args)))
        }
        Err(e) => Report::Codec {
            message: format!("cannot read the arguments: {e}"),
        },
    };
    finish(result_fd, &report)
}

/// Runs `body`, turning a panic into a report.
pub(crate) fn run_catching(body: impl FnOnce() -> Report) -> Report {
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| Report::Panicked {
        message: panic_message(payload.as_ref()),
    })
}

/// The message a panic carried (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<a panic without a message>".to_owned())
}

/// Writes the report, flushes standard output and ends the process with its exit code.
pub(crate) fn finish(result_fd: std::os::fd::BorrowedFd<'_>, report: &Report) -> ! {
    let bytes = postcard::to_allocvec(report).unwrap_or_default();
    let _ = sys::write_all_at_start(result_fd, &bytes);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    sys::exit_now(report.exit_code())
}

fn parse_spec(spec: &str) -> Option<[i128; 9]> {
    let fields: Vec<i128> = spec
        .split(':')
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    fields.try_into().ok()
}
