//! Shared-memory queues for multiproc: Python's `multiprocessing.Queue`, rebuilt on shared
//! memory, lock-free, and safe against `kill -9` of any participant.
//!
//! # Contents
//!
//! - [`Queue`]: bounded, any number of producer and consumer processes and threads,
//!   variable-size serde messages up to a configured maximum ([`QueueBuilder`]).
//! - [`SpscQueue`]: one [`Producer`] and one [`Consumer`] at a time, the fastest path; a
//!   ring of variable-size records ([`SpscBuilder`]).
//! - Errors, one per operation, that hand back the undelivered value: [`PutError`],
//!   [`TryPutError`], [`PutTimeoutError`], [`GetError`], [`TryGetError`],
//!   [`GetTimeoutError`], [`CreateError`], [`OpenError`], [`AttachError`].
//! - `layout`: the shared-memory structures (`#[repr(C)]`, versioned, checked at compile
//!   time).
//! - Under `--cfg loom`, every atomic comes from loom and a hidden `loom_model` runs the
//!   `Queue` slot protocol on a heap-backed ring, model-checked by `tests/loom_ring.rs`.
//!
//! Python's operations with Rust's names: `put`, `put_timeout`, `try_put`, `get`,
//! `get_timeout`, `try_get`, `len`, `is_empty`, `is_full`, `capacity`, `close`. Values are
//! encoded with postcard straight into the shared slot (no intermediate buffer). Queues
//! are anonymous (`new`, `builder().create_anonymous()`: freed by the kernel when the last
//! holder exits) or named (`builder().create(name)` / `open(name)`); handles are
//! `Serialize + Deserialize` through the segment's token, so they can be passed to other
//! processes.
//!
//! # Blocking
//!
//! A blocked call retries a few times (`spin_limit`, default [`DEFAULT_SPIN_LIMIT`]), then
//! registers in a waiter count and sleeps on a futex. Whoever publishes checks the count
//! and only makes the wake system call when someone sleeps. Time-outs are deadlines on the
//! monotonic clock and never end early.
//!
//! # Fault contract
//!
//! Any process may be killed at any instruction (SIGKILL: no destructor runs). What the
//! others see:
//!
//! **[`Queue`], producer killed inside `put`.**
//! - Before it claimed a slot (the encoded size is computed first): nothing happened.
//! - After claiming a slot and before publishing it: its message is lost (its `put` never
//!   returned). Consumers that reach the slot see that the claimer is dead (pid plus start
//!   time, read from `/proc`) and skip it; a blocked consumer re-checks at least every 10
//!   ms, so it moves on within about 10 ms plus the check. No other message is lost,
//!   duplicated or reordered.
//! - After publishing: the message is delivered normally.
//!
//! **[`Queue`], consumer killed inside `get`.**
//! - After claiming a message and before freeing its slot: that one message is lost (its
//!   `get` never returned). A producer that needs the slot sees that the reader is dead and
//!   frees it; producers and other consumers continue.
//! - At any other point: nothing is lost.
//!
//! **[`SpscQueue`].** A killed producer loses the message it had not yet published; a
//! killed consumer loses nothing: a message is removed only after it was decoded, so the
//! next consumer gets again the message the dead one was reading, if it had not finished.
//! The dead process's half can be attached again by another process ([`AttachError`]
//! while the owner lives).
//!
//! **Liveness** comes from the kernel (pid and start time from `/proc`), never from
//! destructors, so a recycled pid is not mistaken for the dead owner. One narrow window
//! remains: a `Queue` producer or consumer killed between its claim (one compare-and-swap
//! that records its pid) and the next store (its start time) is recognised by pid alone;
//! if that pid is reused by a new process before anyone checks, the slot waits until that
//! process exits too.
//!
//! A process killed while asleep in a blocking call leaves the waiter count raised: later
//! wakers then make a futex call that wakes nobody (a cost, never a hang).
//!
//! # Examples
//!
//! ```
//! use shm_queue::Queue;
//!
//! let q = Queue::<String>::builder().capacity(16).max_message_size(256).create_anonymous()?;
//! let worker = {
//!     let q = q.clone(); // or serialise `q` and send it to another process
//!     std::thread::spawn(move || q.get())
//! };
//! q.put("hello".to_string())?;
//! assert_eq!(worker.join().unwrap()?, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
mod error;
mod queue;
mod spsc;
mod sync;
mod sys;
mod wait;

pub mod layout;

pub use error::{
    AttachError, CodecError, CreateError, GetError, GetTimeoutError, OpenError, PutError,
    PutTimeoutError, Side, TryGetError, TryPutError,
};
pub use queue::{DEFAULT_CAPACITY, DEFAULT_MAX_MESSAGE, Queue, QueueBuilder, Waiting};
pub use spsc::{Consumer, DEFAULT_SPSC_CAPACITY, Producer, SpscBuilder, SpscQueue};
pub use wait::DEFAULT_SPIN_LIMIT;

#[cfg(loom)]
#[doc(hidden)]
pub use queue::loom_model;
