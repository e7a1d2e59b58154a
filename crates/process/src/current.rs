//! Who this process is: [`current_process`], [`parent_process`], [`active_children`],
//! [`cpu_count`], and the naming of children (`Process-1`, `Process-1:2`, like Python).

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use shm_segment::ProcessId;

use crate::child::ChildState;
use crate::sys;

pub(crate) const NAME_ENV: &str = "MULTIPROC_PROCESS_NAME";
pub(crate) const IDENTITY_ENV: &str = "MULTIPROC_PROCESS_IDENTITY";
pub(crate) const DAEMON_ENV: &str = "MULTIPROC_PROCESS_DAEMON";
pub(crate) const PARENT_ENV: &str = "MULTIPROC_PARENT";

/// A process as Python's `multiprocessing` describes it.
///
/// # Examples
///
/// ```
/// let me = shm_process::current_process();
/// assert_eq!(me.pid, std::process::id());
/// assert_eq!(me.name, "MainProcess");
/// assert!(!me.daemon);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The name: `MainProcess` for the first process, `Process-N` (or the name given) for
    /// children, `Process-N:M` for grandchildren.
    pub name: String,
    /// The process id.
    pub pid: u32,
    /// Whether it dies with its parent.
    pub daemon: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub name: String,
    /// `""` for the main process, `"1"`, `"1:2"`, ... for descendants.
    pub path: String,
    pub daemon: bool,
    pub parent: Option<(ProcessId, String)>,
}

static IDENTITY: Mutex<Option<(u32, Identity)>> = Mutex::new(None);
static NEXT_CHILD: AtomicUsize = AtomicUsize::new(1);
pub(crate) static CHILDREN: Mutex<Vec<std::sync::Arc<ChildState>>> = Mutex::new(Vec::new());

pub(crate) fn identity() -> Identity {
    let pid = sys::getpid();
    let mut slot = IDENTITY.lock();
    match &*slot {
        Some((owner, identity)) if *owner == pid => identity.clone(),
        _ => {
            let identity = identity_from_env().unwrap_or_else(|| Identity {
                name: "MainProcess".into(),
                path: String::new(),
                daemon: false,
                parent: None,
            });
            *slot = Some((pid, identity.clone()));
            identity
        }
    }
}

/// Sets the identity of a freshly forked child (whose inherited one is its parent's).
pub(crate) fn set_identity(identity: Identity) {
    *IDENTITY.lock() = Some((sys::getpid(), identity));
    NEXT_CHILD.store(1, Ordering::Relaxed);
    CHILDREN.lock().clear();
}

/// The identity a spawning parent wrote into our environment, if it is really our parent's
/// (a process that merely inherited the variables from an ancestor ignores them).
fn identity_from_env() -> Option<Identity> {
    let parent = std::env::var(PARENT_ENV).ok()?;
    let mut parts = parent.splitn(3, ':');
    let pid: u32 = parts.next()?.parse().ok()?;
    let start_time: u64 = parts.next()?.parse().ok()?;
    let parent_name = parts.next()?.to_owned();
    if pid != sys::getppid() {
        return None;
    }
    Some(Identity {
        name: std::env::var(NAME_ENV).ok()?,
        path: std::env::var(IDENTITY_ENV).ok()?,
        daemon: std::env::var(DAEMON_ENV).is_ok_and(|v| v == "1"),
        parent: Some((ProcessId { pid, start_time }, parent_name)),
    })
}

/// The name and identity path of the next child: `Process-3` from the main process,
/// `Process-1:3` from `Process-1`.
pub(crate) fn next_child() -> (String, String) {
    let n = NEXT_CHILD.fetch_add(1, Ordering::Relaxed);
    let me = identity();
    let path = if me.path.is_empty() {
        n.to_string()
    } else {
        format!("{}:{n}", me.path)
    };
    (format!("Process-{path}"), path)
}

/// This process.
///
/// # Examples
///
/// ```
/// # shm_process::init();
/// fn who(_: ()) -> String { shm_process::current_process().name }
/// let mut p = shm_process::Process::spawn(who, ())?;
/// let name = p.name().to_owned();
/// assert_eq!(p.join()?, name);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current_process() -> ProcessInfo {
    let me = identity();
    ProcessInfo {
        name: me.name,
        pid: sys::getpid(),
        daemon: me.daemon,
    }
}

/// The process that started this one, if it was started by multiproc and is still alive
/// (checked by pid and start time, so a recycled pid does not count).
///
/// # Examples
///
/// ```
/// # shm_process::init();
/// assert!(shm_process::parent_process().is_none()); // the main process has none
/// fn parent(_: ()) -> Option<u32> { shm_process::parent_process().map(|p| p.pid) }
/// let mut p = shm_process::Process::spawn(parent, ())?;
/// assert_eq!(p.join()?, Some(std::process::id()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    let (parent, name) = identity().parent?;
    parent.is_alive().then_some(ProcessInfo {
        name,
        pid: parent.pid,
        daemon: false,
    })
}

/// The children started by this process that are still running. Like Python, this reaps
/// the children that have finished.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// # shm_process::init();
/// fn nap(ms: u64) { std::thread::sleep(Duration::from_millis(ms)) }
/// let mut p = shm_process::Process::spawn(nap, 10_000)?;
/// assert!(shm_process::active_children().iter().any(|c| Some(c.pid) == p.pid()));
/// p.kill()?;
/// let _ = p.join();
/// assert!(!shm_process::active_children().iter().any(|c| Some(c.pid) == p.pid()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    let mut children = CHILDREN.lock();
    children.retain(|c| c.try_reap().is_none());
    children
        .iter()
        .map(|c| ProcessInfo {
            name: c.name.clone(),
            pid: c.pid,
            daemon: c.daemon,
        })
        .collect()
}

/// The number of CPUs online (Python's `cpu_count`). For the CPUs this process may run on
/// (affinity, cgroup quotas), use [`std::thread::available_parallelism`].
///
/// # Examples
///
/// ```
/// assert!(shm_process::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    sys::cpu_count()
}
