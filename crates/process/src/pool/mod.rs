//! [`Pool`]: Python's `multiprocessing.Pool`, whose calls never hang because a worker died.
//!
//! # Design
//!
//! Each worker is an ordinary spawned [`Process`](crate::Process) with **its own task
//! queue**, and all of them report on one result queue (shm-queue, in shared memory). A
//! handler thread in the pool's process dispatches tasks — at most two outstanding per
//! worker, so a slow task delays little else — collects results, and supervises the
//! workers. Because the pool knows which tasks it gave to which worker, and each worker
//! publishes in a status word the task it is running, a worker's death is fully accounted
//! for: the task it was running fails with [`PoolError::WorkerDied`]; tasks it had not
//! started go to other workers; a replacement worker starts. No task is lost and no call
//! waits for a result that cannot come.
//!
//! Items travel in chunks (`chunksize`), serialised with postcard. The functions are
//! `fn` items (see [`Process`](crate::Process)): no closures that capture.

mod handler;
mod result;
mod worker;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shm_queue::Queue;
use shm_segment::{ObjectKind, Segment, SegmentOptions};

pub use result::{AsyncResult, Imap, ImapUnordered};

use crate::error::StartError;
use crate::pool::worker::{Done, Outcome, Task, WorkerArgs};
use crate::{Process, sys};

/// Why a pool call failed.
///
/// # Examples
///
/// ```
/// use shm_process::{Pool, PoolError};
/// # shm_process::init();
/// fn fragile(x: u32) -> u32 { assert!(x != 3, "three is bad"); x }
/// let pool = Pool::new(2)?;
/// match pool.map(fragile, 0..5) {
///     Err(PoolError::Panicked { message }) => assert_eq!(message, "three is bad"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(pool.map(fragile, [1, 2])?, [1, 2]); // the pool goes on
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The function panicked on one of the task's items.
    #[error("a pool task panicked: {message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The worker running the task died (killed, out of memory, `exit`...); the pool
    /// replaced it and goes on.
    #[error("the worker running the task (pid {pid}) died: {how}")]
    WorkerDied {
        /// The dead worker's pid.
        pid: u32,
        /// How it ended ("killed by signal 9", "exited with code 3").
        how: String,
    },
    /// A task's items or results could not be serialised, or were too large for the
    /// pool's queues.
    #[error("{message}")]
    Codec {
        /// What went wrong.
        message: String,
    },
    /// The pool was closed: it takes no new work.
    #[error("the pool is closed and takes no new work")]
    Closed,
    /// The pool was terminated before the task finished.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// `join` was called before `close` or `terminate`.
    #[error("join the pool only after close() or terminate()")]
    StillRunning,
    /// The result was not ready in time (`get_timeout`).
    #[error("the result is not ready yet")]
    Timeout,
    /// Starting the pool's processes failed.
    #[error("cannot start the pool's worker processes: {0}")]
    Start(String),
    /// Workers keep dying before they take any task (a failing initializer, or something
    /// killing them at start), so the pool stopped replacing them and fails its work.
    #[error("the pool is broken: {reason}")]
    Broken {
        /// What the workers did.
        reason: String,
    },
}

/// How many tasks a worker holds at most. One: a task goes to the first worker that is
/// free, as in Python, so a long task never holds a short one up behind it (with chunks,
/// the round trip to fetch the next task is amortised over many items).
const PER_WORKER: usize = 1;

/// Options for a [`Pool`]; made by [`Pool::builder`].
///
/// # Examples
///
/// ```
/// # shm_process::init();
/// static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
/// fn set_up(tag: String) { TAG.set(tag).unwrap() }
/// fn tag(_: ()) -> String { TAG.get().cloned().unwrap_or_default() }
/// let pool = shm_process::Pool::builder()
///     .processes(2)
///     .initializer(set_up, "ready".to_owned())
///     .maxtasksperchild(10)
///     .build()?;
/// assert_eq!(pool.apply(tag, ())?, "ready");
/// # Ok::<(), shm_process::PoolError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    processes: usize,
    init: Option<Result<Task, String>>,
    max_tasks: Option<usize>,
    max_message: usize,
}

impl PoolBuilder {
    /// Worker processes (default: [`cpu_count`](crate::cpu_count)).
    pub fn processes(mut self, processes: usize) -> Self {
        self.processes = processes.max(1);
        self
    }

    /// Runs `f(args)` once in each worker before its first task (Python's `initializer`).
    ///
    /// If the arguments cannot be serialised, [`build`](Self::build) fails with
    /// [`PoolError::Codec`].
    pub fn initializer<A: Serialize + DeserializeOwned>(mut self, f: fn(A), args: A) -> Self {
        let (entry, func) = worker::unary(f);
        self.init = Some(
            postcard::to_allocvec(std::slice::from_ref(&args))
                .map(|payload| Task {
                    id: u64::MAX,
                    entry,
                    func,
                    payload,
                })
                .map_err(|e| format!("cannot serialise the initializer's arguments: {e}")),
        );
        self
    }

    /// Replaces each worker after it has run this many tasks (Python's
    /// `maxtasksperchild`), to bound what a leaky task can accumulate.
    pub fn maxtasksperchild(mut self, tasks: usize) -> Self {
        self.max_tasks = Some(tasks.max(1));
        self
    }

    /// The largest serialised task (a chunk of items) or result (a chunk of results) in
    /// bytes (default 1 MiB). Each worker's queue reserves one such slot, and the result
    /// queue one per worker.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message = bytes.max(64);
        self
    }

    /// Starts the worker processes.
    ///
    /// # Errors
    ///
    /// [`PoolError::Start`] if the queues or processes cannot be created.
    pub fn build(self) -> Result<Pool, PoolError> {
        Pool::start(self)
    }
}

/// A pool of worker processes (Python's `multiprocessing.Pool`).
///
/// `map`, `imap`, `imap_unordered`, `starmap`, `apply`, `apply_async`, `map_async`,
/// `close`, `terminate`, `join` as in Python. A task that panics fails with the panic
/// message and the pool goes on; a worker killed mid-task fails that task with
/// [`PoolError::WorkerDied`] and is replaced. Dropping the pool terminates it: no worker
/// outlives it, and its shared memory is freed with the last of them.
///
/// # Examples
///
/// ```
/// use shm_process::Pool;
/// # shm_process::init();
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(3)?;
/// assert_eq!(pool.map(square, [1, 2, 3])?, [1, 4, 9]);
/// # Ok::<(), shm_process::PoolError>(())
/// ```
#[derive(Debug)]
pub struct Pool {
    shared: Arc<Shared>,
    handler: Mutex<Option<JoinHandle<()>>>,
    processes: usize,
}

/// State shared by the pool's callers and its handler thread.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a job slot is filled or the pool changes state.
    changed: Condvar,
    results: Queue<Done>,
    status: Segment,
    config: PoolBuilder,
}

#[derive(Debug)]
pub(crate) struct State {
    next_id: u64,
    /// Tasks not yet given to a worker, oldest first.
    pending: VecDeque<Task>,
    /// Every unfinished task: its job and slot, and a copy to resend if its worker dies
    /// before starting it.
    tasks: HashMap<u64, TaskEntry>,
    jobs: HashMap<u64, JobState>,
    /// One entry per worker index; `None` while a replacement could not be started.
    workers: Vec<Option<WorkerSlot>>,
    closed: bool,
    terminated: bool,
    /// Set by the handler when it has stopped (all workers gone).
    finished: bool,
    start_error: Option<String>,
    /// When a worker could last not be started: slots left empty are retried after a pause.
    spawn_failed_at: Option<std::time::Instant>,
    /// Workers that died in a row before taking any task.
    early_deaths: u32,
    /// Set when the pool gave up replacing workers; every call then fails with this.
    broken: Option<String>,
}

#[derive(Debug)]
struct TaskEntry {
    job: u64,
    slot: usize,
    task: Task,
}

/// One chunk of a job.
#[derive(Debug)]
pub(crate) enum Slot {
    /// Queued or running.
    Pending,
    /// Finished: the serialised results, or why it failed.
    Done(Result<Vec<u8>, PoolError>),
    /// Handed to a lazy iterator already.
    Taken,
}

#[derive(Debug)]
pub(crate) struct JobState {
    /// Absolute index of `slots[0]`: lazy iterators drop the chunks they have taken from
    /// the front, so an endless `imap` keeps a bounded state.
    base: usize,
    /// The chunks, in submission order.
    slots: VecDeque<Slot>,
    /// Finished chunks in completion order, kept for `imap_unordered` only.
    finished: Option<VecDeque<usize>>,
    /// Chunks submitted and not yet finished.
    outstanding: usize,
}

impl JobState {
    fn new(unordered: bool) -> Self {
        JobState {
            base: 0,
            slots: VecDeque::new(),
            finished: unordered.then(VecDeque::new),
            outstanding: 0,
        }
    }

    fn push(&mut self) -> usize {
        self.slots.push_back(Slot::Pending);
        self.outstanding += 1;
        self.base + self.slots.len() - 1
    }

    fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index.checked_sub(self.base)?)
    }

    pub(crate) fn is_done(&self, index: usize) -> bool {
        matches!(self.slot(index), Some(Slot::Done(_)))
    }

    /// Takes a finished chunk's result and forgets the chunks taken at the front.
    pub(crate) fn take(&mut self, index: usize) -> Option<Result<Vec<u8>, PoolError>> {
        let slot = self.slots.get_mut(index.checked_sub(self.base)?)?;
        let result = match std::mem::replace(slot, Slot::Taken) {
            Slot::Done(result) => result,
            // Not finished (the pool is going away): leave it as it was.
            other => {
                *slot = other;
                return None;
            }
        };
        while matches!(self.slots.front(), Some(Slot::Taken)) {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(result)
    }
}

#[derive(Debug)]
struct WorkerSlot {
    process: Process<()>,
    tasks: Queue<Task>,
    /// Task ids given to this worker and not yet reported, oldest first.
    assigned: VecDeque<u64>,
    /// Whether it ever took a task (reported one, or died running one).
    took_task: bool,
    /// Once it was found ended: the results queue's put position then. Every result it
    /// sent lies below it; its tasks are judged once gets have passed it.
    results_mark: Option<u64>,
}

impl Pool {
    /// A pool of `processes` workers.
    ///
    /// # Errors
    ///
    /// [`PoolError::Start`] if the workers cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// let pool = shm_process::Pool::new(2)?;
    /// assert_eq!(pool.processes(), 2);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// Options: processes, initializer, maxtasksperchild, message size.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// let pool = shm_process::Pool::builder().processes(1).build()?;
    /// assert_eq!(pool.processes(), 1);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            processes: sys::cpu_count(),
            init: None,
            max_tasks: None,
            max_message: 1 << 20,
        }
    }

    /// How many worker processes the pool keeps running.
    pub fn processes(&self) -> usize {
        self.processes
    }

    fn start(config: PoolBuilder) -> Result<Pool, PoolError> {
        if let Some(Err(message)) = &config.init {
            return Err(PoolError::Codec {
                message: message.clone(),
            });
        }
        let start = |e: &dyn std::fmt::Display| PoolError::Start(e.to_string());
        let n = config.processes;
        let results = Queue::<Done>::builder()
            .capacity(PER_WORKER * n)
            .max_message_size(config.max_message + 64)
            .create_anonymous()
            .map_err(|e| start(&e))?;
        let status = SegmentOptions::new(ObjectKind::RAW)
            .len(8 * n)
            .create_anonymous()
            .map_err(|e| start(&e))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_id: 0,
                pending: VecDeque::new(),
                tasks: HashMap::new(),
                jobs: HashMap::new(),
                workers: Vec::with_capacity(n),
                closed: false,
                terminated: false,
                finished: false,
                start_error: None,
                spawn_failed_at: None,
                early_deaths: 0,
                broken: None,
            }),
            changed: Condvar::new(),
            results,
            status,
            config,
        });
        // On any failure below, the workers already started must not outlive the pool.
        let abandon = |shared: &Shared| {
            for worker in shared.lock().workers.iter_mut().flatten() {
                let _ = worker.process.kill();
                let _ = worker.process.join();
            }
        };
        for index in 0..n {
            match shared.spawn_worker(index as u32) {
                Ok(worker) => shared.lock().workers.push(Some(worker)),
                Err(e) => {
                    abandon(&shared);
                    return Err(start(&e));
                }
            }
        }
        let handler = {
            let shared_for_handler = Arc::clone(&shared);
            match std::thread::Builder::new()
                .name("multiproc-pool".into())
                .spawn(move || handler::run(&shared_for_handler))
            {
                Ok(handler) => handler,
                Err(e) => {
                    abandon(&shared);
                    return Err(start(&e));
                }
            }
        };
        Ok(Pool {
            shared,
            handler: Mutex::new(Some(handler)),
            processes: n,
        })
    }

    /// Applies `f` to every item, in parallel, and returns the results in order (Python's
    /// `map`). The items are split into chunks as Python does (about four per worker).
    ///
    /// # Errors
    ///
    /// The first failing chunk's error: [`PoolError::Panicked`],
    /// [`PoolError::WorkerDied`], [`PoolError::Codec`]; [`PoolError::Closed`] after
    /// `close`, [`PoolError::Terminated`] after `terminate`.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn double(x: i32) -> i32 { 2 * x }
    /// let pool = shm_process::Pool::new(2)?;
    /// assert_eq!(pool.map(double, 1..=4)?, [2, 4, 6, 8]);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn map<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.map_async(f, items)?.get()
    }

    /// [`map`](Self::map) with an explicit number of items per task.
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = shm_process::Pool::new(2)?;
    /// assert_eq!(pool.map_chunked(inc, [1, 2, 3], 2)?, [2, 3, 4]);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let (entry, func) = worker::unary(f);
        let items: Vec<A> = items.into_iter().collect();
        self.submit_all(entry, func, items, chunksize.max(1))?.get()
    }

    /// Like [`map`](Self::map), without waiting: returns an [`AsyncResult`] (Python's
    /// `map_async`).
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] or [`PoolError::Terminated`]; [`PoolError::Codec`] if the
    /// items cannot be serialised.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn neg(x: i64) -> i64 { -x }
    /// let pool = shm_process::Pool::new(2)?;
    /// let pending = pool.map_async(neg, [1, 2])?;
    /// pending.wait();
    /// assert!(pending.ready() && pending.successful() == Some(true));
    /// assert_eq!(pending.get()?, [-1, -2]);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let (entry, func) = worker::unary(f);
        let items: Vec<A> = items.into_iter().collect();
        // Python's default: about four chunks per worker.
        let chunksize = items.len().div_ceil(4 * self.processes).max(1);
        self.submit_all(entry, func, items, chunksize)
    }

    /// Applies `f(a, b)` to every `(a, b)` pair (Python's `starmap`).
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn pow(base: u64, exp: u32) -> u64 { base.pow(exp) }
    /// let pool = shm_process::Pool::new(2)?;
    /// assert_eq!(pool.starmap(pow, [(2, 3), (3, 2)])?, [8, 9]);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn starmap<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let (entry, func) = worker::binary(f);
        let items: Vec<(A, B)> = items.into_iter().collect();
        let chunksize = items.len().div_ceil(4 * self.processes).max(1);
        self.submit_all(entry, func, items, chunksize)?.get()
    }

    /// Runs `f(args)` in a worker and waits for the result (Python's `apply`).
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn len(s: String) -> usize { s.len() }
    /// let pool = shm_process::Pool::new(1)?;
    /// assert_eq!(pool.apply(len, "four".to_owned())?, 4);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn apply<A, R>(&self, f: fn(A) -> R, args: A) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.apply_async(f, args)?.get()
    }

    /// Runs `f(args)` in a worker without waiting (Python's `apply_async`).
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`], [`PoolError::Terminated`], [`PoolError::Codec`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # shm_process::init();
    /// fn slow_id(x: u32) -> u32 { std::thread::sleep(Duration::from_millis(50)); x }
    /// let pool = shm_process::Pool::new(1)?;
    /// let pending = pool.apply_async(slow_id, 7)?;
    /// assert_eq!(pending.get_timeout(Duration::from_secs(30))?, 7);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, args: A) -> Result<AsyncResult<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let (entry, func) = worker::unary(f);
        let payload = self.encode(&[args])?;
        let job = self.new_job(false)?;
        // Made before queuing: if queuing fails, its drop forgets the job.
        let result = AsyncResult::single(Arc::clone(&self.shared), job);
        self.enqueue(job, entry, func, payload)?;
        Ok(result)
    }

    /// Applies `f` to the items lazily, yielding results in order as they arrive (Python's
    /// `imap`). At most a few chunks per worker are in flight: the input is read as the
    /// results are consumed, never all at once.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] or [`PoolError::Terminated`] at once; each item's own error
    /// comes from the iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn square(x: u64) -> u64 { x * x }
    /// let pool = shm_process::Pool::new(2)?;
    /// let squares: Result<Vec<u64>, _> = pool.imap(square, 0..100)?.take(5).collect();
    /// assert_eq!(squares?, [0, 1, 4, 9, 16]);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn imap<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<Imap<'_, A, R, I::IntoIter>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.imap_chunked(f, items, 1)
    }

    /// [`imap`](Self::imap) with `chunksize` items per task.
    ///
    /// # Errors
    ///
    /// As [`imap`](Self::imap).
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let pool = shm_process::Pool::new(2)?;
    /// let all: Result<Vec<u32>, _> = pool.imap_chunked(inc, 0..10, 3)?.collect();
    /// assert_eq!(all?, (1..=10).collect::<Vec<_>>());
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn imap_chunked<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<Imap<'_, A, R, I::IntoIter>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (entry, func) = worker::unary(f);
        let job = self.new_job(false)?;
        Ok(Imap::new(
            self,
            job,
            entry,
            func,
            items.into_iter(),
            chunksize.max(1),
        ))
    }

    /// Like [`imap`](Self::imap), yielding results in the order they finish (Python's
    /// `imap_unordered`).
    ///
    /// # Errors
    ///
    /// As [`imap`](Self::imap).
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn square(x: u64) -> u64 { x * x }
    /// let pool = shm_process::Pool::new(2)?;
    /// let mut all: Vec<u64> = pool.imap_unordered(square, 0..6)?.collect::<Result<_, _>>()?;
    /// all.sort_unstable();
    /// assert_eq!(all, [0, 1, 4, 9, 16, 25]);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn imap_unordered<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<ImapUnordered<'_, A, R, I::IntoIter>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (entry, func) = worker::unary(f);
        let job = self.new_job(true)?;
        Ok(ImapUnordered::new(
            self,
            job,
            entry,
            func,
            items.into_iter(),
            1,
        ))
    }

    /// Takes no more work (Python's `close`); running and queued tasks finish, then the
    /// workers exit. Follow with [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// fn id(x: u8) -> u8 { x }
    /// let pool = shm_process::Pool::new(1)?;
    /// let pending = pool.apply_async(id, 5)?;
    /// pool.close();
    /// assert!(matches!(pool.apply(id, 1), Err(shm_process::PoolError::Closed)));
    /// pool.join()?;
    /// assert_eq!(pending.get()?, 5);
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }

    /// Stops the workers at once (SIGKILL, Python's `terminate`); unfinished tasks fail
    /// with [`PoolError::Terminated`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # shm_process::init();
    /// fn forever(_: ()) { std::thread::sleep(Duration::from_secs(3600)) }
    /// let pool = shm_process::Pool::new(1)?;
    /// let pending = pool.apply_async(forever, ())?;
    /// pool.terminate();
    /// assert!(matches!(pending.get(), Err(shm_process::PoolError::Terminated)));
    /// pool.join()?;
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn terminate(&self) {
        {
            let mut state = self.shared.lock();
            state.closed = true;
            state.terminated = true;
            for worker in state.workers.iter().flatten() {
                let _ = worker.process.kill();
            }
        }
        self.shared.changed.notify_all();
    }

    /// Waits for the workers to exit, after [`close`](Self::close) or
    /// [`terminate`](Self::terminate) (Python's `join`).
    ///
    /// # Errors
    ///
    /// [`PoolError::StillRunning`] if neither was called.
    ///
    /// # Examples
    ///
    /// ```
    /// # shm_process::init();
    /// let pool = shm_process::Pool::new(1)?;
    /// assert!(matches!(pool.join(), Err(shm_process::PoolError::StillRunning)));
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), shm_process::PoolError>(())
    /// ```
    pub fn join(&self) -> Result<(), PoolError> {
        if !self.shared.lock().closed {
            return Err(PoolError::StillRunning);
        }
        if let Some(handler) = self
            .handler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = handler.join();
        }
        Ok(())
    }

    fn new_job(&self, unordered: bool) -> Result<u64, PoolError> {
        let mut state = self.shared.lock();
        state.check_open()?;
        let job = state.next_id;
        state.next_id += 1;
        state.jobs.insert(job, JobState::new(unordered));
        Ok(job)
    }

    fn submit_all<T: Serialize, R: DeserializeOwned>(
        &self,
        entry: isize,
        func: isize,
        items: Vec<T>,
        chunksize: usize,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        // Encode every chunk first: a chunk that cannot be sent fails the call before any
        // of its work starts.
        let payloads = items
            .chunks(chunksize)
            .map(|chunk| self.encode(chunk))
            .collect::<Result<Vec<_>, _>>()?;
        let job = self.new_job(false)?;
        let result = AsyncResult::all(Arc::clone(&self.shared), job, items.len());
        for payload in payloads {
            self.enqueue(job, entry, func, payload)?;
        }
        Ok(result)
    }

    /// Serialises one chunk of items, refusing one larger than the queues' slots.
    pub(crate) fn encode<T: Serialize>(&self, chunk: &[T]) -> Result<Vec<u8>, PoolError> {
        let payload = postcard::to_allocvec(chunk).map_err(|e| PoolError::Codec {
            message: format!("cannot serialise the items: {e}"),
        })?;
        let max = self.shared.config.max_message;
        if payload.len() > max {
            return Err(PoolError::Codec {
                message: format!(
                    "a task of {} bytes exceeds the pool's max_message_size of {max}; use a \
                     smaller chunksize or a larger Pool::builder().max_message_size()",
                    payload.len()
                ),
            });
        }
        Ok(payload)
    }

    /// Queues one encoded chunk of `job`.
    pub(crate) fn enqueue(
        &self,
        job: u64,
        entry: isize,
        func: isize,
        payload: Vec<u8>,
    ) -> Result<(), PoolError> {
        let mut state = self.shared.lock();
        state.check_open()?;
        let id = state.next_id;
        state.next_id += 1;
        let job_state = state.jobs.get_mut(&job).ok_or(PoolError::Terminated)?;
        let slot = job_state.push();
        let task = Task {
            id,
            entry,
            func,
            payload,
        };
        state.tasks.insert(
            id,
            TaskEntry {
                job,
                slot,
                task: task.clone(),
            },
        );
        state.pending.push_back(task);
        // Hand it to an idle worker now rather than at the handler's next round.
        state.dispatch();
        drop(state);
        self.shared.changed.notify_all();
        Ok(())
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Pool {
    /// Terminates the pool (as Python's context manager does) and reaps its workers.
    fn drop(&mut self) {
        self.terminate();
        let _ = self.join();
    }
}

impl State {
    /// Gives pending tasks to workers that hold fewer than [`PER_WORKER`].
    fn dispatch(&mut self) {
        for worker in self.workers.iter_mut().flatten() {
            while worker.assigned.len() < PER_WORKER {
                let Some(task) = self.pending.pop_front() else {
                    return;
                };
                let id = task.id;
                match worker.tasks.try_put(task) {
                    Ok(()) => worker.assigned.push_back(id),
                    Err(e) => {
                        // Full or closed: keep the task for another worker or round.
                        self.pending.push_front(e.into_inner());
                        break;
                    }
                }
            }
        }
    }

    fn check_open(&self) -> Result<(), PoolError> {
        if let Some(reason) = &self.broken {
            Err(PoolError::Broken {
                reason: reason.clone(),
            })
        } else if self.terminated {
            Err(PoolError::Terminated)
        } else if self.closed {
            Err(PoolError::Closed)
        } else {
            Ok(())
        }
    }

    /// Records a finished chunk and tells the waiters.
    fn finish(&mut self, id: u64, result: Result<Vec<u8>, PoolError>) {
        let Some(entry) = self.tasks.remove(&id) else {
            return;
        };
        if let Some(job) = self.jobs.get_mut(&entry.job)
            && let Some(index) = entry.slot.checked_sub(job.base)
            && let Some(slot @ Slot::Pending) = job.slots.get_mut(index)
        {
            *slot = Slot::Done(result);
            if let Some(finished) = &mut job.finished {
                finished.push_back(entry.slot);
            }
            job.outstanding -= 1;
        }
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (releasing the lock) until `done` holds, or `timeout` passes.
    pub(crate) fn wait_until<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        timeout: Option<Duration>,
        mut done: impl FnMut(&State) -> bool,
    ) -> (MutexGuard<'a, State>, bool) {
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        while !done(&state) {
            match deadline {
                None => state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return (state, false);
                    }
                    state = self
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        (state, true)
    }

    fn spawn_worker(&self, index: u32) -> Result<WorkerSlot, StartError> {
        let io = |e: &dyn std::fmt::Display| StartError::Io {
            op: "pool queue",
            source: std::io::Error::other(e.to_string()),
        };
        let tasks = Queue::<Task>::builder()
            .capacity(PER_WORKER)
            .max_message_size(self.config.max_message + 64)
            .create_anonymous()
            .map_err(|e| io(&e))?;
        worker::status_word(&self.status, index).store(0, std::sync::atomic::Ordering::Release);
        let args = WorkerArgs {
            index,
            tasks: tasks.clone(),
            results: self.results.clone(),
            status: SegmentOptions::new(ObjectKind::RAW)
                .open_fd(self.status.fd().try_clone_to_owned().map_err(|e| io(&e))?)
                .map_err(|e| io(&e))?,
            init: self.config.init.clone().and_then(Result::ok),
            max_tasks: self.config.max_tasks,
        };
        let process = Process::new(worker::worker_main, args)
            .with_name(format!("PoolWorker-{}", index + 1))
            .daemon(true);
        let mut process = process;
        process.start()?;
        Ok(WorkerSlot {
            process,
            tasks,
            assigned: VecDeque::new(),
            took_task: false,
            results_mark: None,
        })
    }
}

impl From<Outcome> for Result<Vec<u8>, PoolError> {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Ok(bytes) => Ok(bytes),
            Outcome::Panicked(message) => Err(PoolError::Panicked { message }),
            Outcome::Codec(message) => Err(PoolError::Codec { message }),
        }
    }
}
