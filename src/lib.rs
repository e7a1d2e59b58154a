//! multiproc: Python's `multiprocessing` rebuilt in Rust on shared memory.
//!
//! This facade re-exports the workspace's crates under one roof, with Python's names where
//! Python has one, so the tutorial's programs translate line by line. Each crate is also
//! usable on its own:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`segment`] | `shm-segment` | shared-memory segments, header, futex, handle transfer |
//! | [`lock`] | `shm-lock` | `Lock`, `RLock`, `Semaphore`, `Event`, `Condition`, `Barrier`, `Value`, `Array` |
//! | [`queue`] | `shm-queue` | `Queue`, `SpscQueue`, `SimpleQueue`, `JoinableQueue`, `Pipe` |
//! | [`manager`] | `shm-manager` | `Manager` with `SharedDict`, `SharedList`, `SharedValue`, `Namespace` |
//! | [`process`] | `shm-process` | `Process`, `Pool`, `current_process`, `cpu_count` |
//!
//! A program that starts processes calls [`init`] first in `main`: a spawned child is the
//! same program run again, and `init` is where it runs its function and exits.
//!
//! # Examples
//!
//! ```
//! use multiproc::{Pool, Process, Queue};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn send_hello(queue: Queue<String>) {
//!     queue.put(format!("hello from {}", multiproc::current_process().name)).unwrap();
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     multiproc::init();
//!     let pool = Pool::new(2)?;
//!     assert_eq!(pool.map(square, [1, 2, 3])?, [1, 4, 9]);
//!
//!     let queue = Queue::<String>::new()?;
//!     let mut child = Process::spawn(send_hello, queue.clone())?;
//!     assert!(queue.get()?.starts_with("hello from Process-"));
//!     child.join()?;
//!     Ok(())
//! }
//! ```

#![allow(
    clippy::needless_doctest_main,
    reason = "the example shows that init() goes first in main"
)]

pub use shm_lock as lock;
pub use shm_manager as manager;
pub use shm_process as process;
pub use shm_queue as queue;
pub use shm_segment as segment;

pub use shm_lock::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Value,
};
pub use shm_manager::{Manager, Namespace, SharedDict, SharedList, SharedValue};
pub use shm_process::{
    AsyncResult, Pool, PoolError, Process, ProcessError, ProcessInfo, active_children, cpu_count,
    current_process, init, init_before_main, parent_process,
};
pub use shm_queue::{Connection, JoinableQueue, Pipe, Queue, SimpleQueue, SpscQueue};
pub use shm_segment::{ObjectKind, ProcessId, Segment, SegmentOptions};
