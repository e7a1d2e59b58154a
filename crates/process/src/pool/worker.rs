//! The worker process: takes tasks from its own queue, runs them, reports on the shared
//! result queue, and tells the pool through a status word which task it is running, so
//! that a worker killed mid-task fails exactly that task.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shm_queue::Queue;
use shm_segment::Segment;

use crate::spawn::{address_of_offset, offset_of_fn, panic_message};

/// A chunk of work: run the function at `func` (through the trampoline at `entry`) over the
/// serialised items in `payload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Task {
    pub id: u64,
    pub entry: isize,
    pub func: isize,
    pub payload: Vec<u8>,
}

/// A finished task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Done {
    pub id: u64,
    pub worker: u32,
    pub outcome: Outcome,
}

/// What running a task gave.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The serialised `Vec<R>` of the chunk's results.
    Ok(Vec<u8>),
    /// The function panicked on one of the chunk's items.
    Panicked(String),
    /// The items or the results could not be (de)serialised.
    Codec(String),
}

/// Runs a chunk: `fn(usize /* function */, &[u8] /* items */) -> Outcome`.
pub(crate) type ChunkEntry = fn(usize, &[u8]) -> Outcome;

/// How a pool function is called on one item.
pub(crate) trait Call<A, R> {
    fn call(func: usize, item: A) -> R;
}

/// `f(a)` for `fn(A) -> R`.
pub(crate) struct Unary;
/// `f(a, b)` for `fn(A, B) -> R` over `(A, B)` items (starmap).
pub(crate) struct Binary;

impl<A, R> Call<A, R> for Unary {
    fn call(func: usize, item: A) -> R {
        // SAFETY: `func` is the address of a `fn(A) -> R` of this executable: the pool took
        // it from such a pointer and sent its offset together with this very trampoline,
        // monomorphised for the same `A` and `R`.
        let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
        f(item)
    }
}

impl<A, B, R> Call<(A, B), R> for Binary {
    fn call(func: usize, (a, b): (A, B)) -> R {
        // SAFETY: as for `Unary`, for a `fn(A, B) -> R`.
        let f = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(func) };
        f(a, b)
    }
}

fn run_chunk<A: DeserializeOwned, R: Serialize, C: Call<A, R>>(
    func: usize,
    payload: &[u8],
) -> Outcome {
    let items: Vec<A> = match postcard::from_bytes(payload) {
        Ok(items) => items,
        Err(e) => return Outcome::Codec(format!("cannot deserialise the task's items: {e}")),
    };
    let results: Vec<R> = match panic::catch_unwind(AssertUnwindSafe(|| {
        items.into_iter().map(|item| C::call(func, item)).collect()
    })) {
        Ok(results) => results,
        Err(payload) => return Outcome::Panicked(panic_message(payload.as_ref())),
    };
    match postcard::to_allocvec(&results) {
        Ok(bytes) => Outcome::Ok(bytes),
        Err(e) => Outcome::Codec(format!("cannot serialise the task's results: {e}")),
    }
}

/// The (entry, function) offsets for running `f` over chunks.
pub(crate) fn unary<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> (isize, isize) {
    let entry: ChunkEntry = run_chunk::<A, R, Unary>;
    (offset_of_fn(entry as usize), offset_of_fn(f as usize))
}

/// The (entry, function) offsets for running `f` over chunks of pairs.
pub(crate) fn binary<A: DeserializeOwned, B: DeserializeOwned, R: Serialize>(
    f: fn(A, B) -> R,
) -> (isize, isize) {
    let entry: ChunkEntry = run_chunk::<(A, B), R, Binary>;
    (offset_of_fn(entry as usize), offset_of_fn(f as usize))
}

/// Everything a worker needs; serialised into its process at start.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerArgs {
    pub index: u32,
    pub tasks: Queue<Task>,
    pub results: Queue<Done>,
    /// One status word per worker: the id + 1 of the task it runs, 0 when idle.
    pub status: Segment,
    /// The initializer as a one-item task, run once before the first task.
    pub init: Option<Task>,
    pub max_tasks: Option<usize>,
}

/// The status word of worker `index`.
pub(crate) fn status_word(status: &Segment, index: u32) -> &AtomicU64 {
    let offset = index as usize * 8;
    assert!(offset + 8 <= status.data_len(), "status segment too small");
    // SAFETY: in bounds (checked), 8-aligned (the data area is 128-aligned), and the word
    // is only ever accessed atomically, by the pool and by this worker.
    unsafe { AtomicU64::from_ptr(status.data().as_ptr().add(offset).cast()) }
}

fn run(task: &Task) -> Outcome {
    // SAFETY: `entry` is the offset of a `run_chunk::<..>` of this executable, computed by
    // the pool process (the same executable) from the same anchor.
    let entry = unsafe { std::mem::transmute::<usize, ChunkEntry>(address_of_offset(task.entry)) };
    entry(address_of_offset(task.func), &task.payload)
}

/// The worker's main loop; the pool spawns it as an ordinary [`crate::Process`].
pub(crate) fn worker_main(args: WorkerArgs) {
    if let Some(init) = &args.init
        && let Outcome::Panicked(message) | Outcome::Codec(message) = run(init)
    {
        // Python's pool logs the error and the worker dies; the pool starts another.
        eprintln!(
            "multiproc pool: the initializer failed in worker {}: {message}",
            args.index
        );
        std::process::exit(1);
    }
    let status = status_word(&args.status, args.index);
    let mut done = 0usize;
    // `get` fails only once the pool closed this worker's queue: time to go.
    while let Ok(task) = args.tasks.get() {
        // [running] Release: pairs with the pool's Acquire when this worker dies.
        status.store(task.id + 1, Ordering::Release);
        let outcome = run(&task);
        let report = Done {
            id: task.id,
            worker: args.index,
            outcome,
        };
        if let Err(e) = args.results.put(report) {
            let (id, worker) = (task.id, args.index);
            let message = format!("cannot send the task's result back: {e}");
            let _ = args.results.put(Done {
                id,
                worker,
                outcome: Outcome::Codec(message),
            });
        }
        status.store(0, Ordering::Release);
        done += 1;
        if args.max_tasks.is_some_and(|max| done >= max) {
            break;
        }
    }
}
