//! Shared-memory queues for multiproc: Python's `multiprocessing.Queue`, rebuilt on shared
//! memory, lock-free, and safe against `kill -9` of any participant.
//!
//! # Contents
//!
//! - [`Queue`]: bounded, any number of producer and consumer processes and threads,
//!   variable-size serde messages up to a configured maximum ([`QueueBuilder`]).
//! - [`SpscQueue`]: one [`Producer`] and one [`Consumer`] at a time, the fastest path; a
//!   ring of variable-size records ([`SpscBuilder`]).
//! - [`SimpleQueue`]: Python's `SimpleQueue` (`put`, `get`, `is_empty`, `close`), a
//!   `Queue` with a generous, documented bound ([`SimpleQueueBuilder`]).
//! - [`JoinableQueue`]: a `Queue` with a shared count of unfinished tasks: `task_done`,
//!   `join`, `join_timeout` ([`JoinableQueueBuilder`]).
//! - [`Pipe`]: Python's `Pipe`, one-way or duplex, as two [`Connection`]s (`send`, `recv`,
//!   `send_bytes`, `recv_bytes`, `poll`, `close`) that notice a dead peer
//!   ([`PipeBuilder`]).
//! - Batches: `put_many` / `try_put_many` / `put_many_timeout` and `get_many` /
//!   `try_get_many` / `get_many_timeout` on [`Queue`], [`Producer`] and [`Consumer`]: one
//!   index (hint) publication and one wake per batch.
//! - Raw records: `put_bytes` copies bytes straight into a slot, `get_with` lends a
//!   message's bytes in place (no copy) and frees the slot when the closure returns, on
//!   [`Queue`], [`Producer`] and [`Consumer`].
//! - Plain data: `put_plain` / `get_plain` (with `try_` / `_timeout` forms) on a [`Queue`]
//!   or a [`Producer`] / [`Consumer`] of a `zerocopy` `IntoBytes` / `FromBytes` type move
//!   the value's own bytes, with no serialisation; each slot (or SPSC record kind) records
//!   its encoding, so the typed paths report a plain message as a `Decode` error instead
//!   of misreading it.
//! - Errors, one per operation, that hand back the undelivered value: [`PutError`],
//!   [`TryPutError`], [`PutTimeoutError`], [`GetError`], [`TryGetError`],
//!   [`GetTimeoutError`], [`PutManyError`], [`TryPutManyError`], [`PutManyTimeoutError`]
//!   (the number put and the rest of the batch), [`TaskDoneError`], [`JoinError`], [`JoinTimeoutError`],
//!   [`SendError`], [`RecvError`], [`RecvTimeoutError`], [`CreateError`], [`OpenError`],
//!   [`AttachError`].
//! - [`inspect`]: a read-only snapshot of a queue or pipe segment (depth, capacity,
//!   waiters, closed flag, owners) that never blocks, for tools such as `multiproc inspect`.
//! - `layout`: the shared-memory structures (`#[repr(C)]`, versioned, checked at compile
//!   time).
//! - Under `--cfg loom`, every atomic comes from loom and a hidden `loom_model` runs the
//!   `Queue` slot protocol on a heap-backed ring, model-checked by `tests/loom_ring.rs`.
//!   A hidden `spsc_loom_model` likewise runs the `SpscQueue` record protocol, with every
//!   ring access checked by loom's race detector, for `tests/loom_spsc.rs`.
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
//! **Batches.** `put_many` and `get_many` claim, fill and free slots one at a time like
//! `put` and `get`; only the shared hint and the wake are batched. So a [`Queue`] producer
//! killed inside `put_many` has enqueued the values before the one it was writing, loses
//! that one exactly as `put` would, and never enqueued the rest; a `Queue` consumer killed
//! inside `get_many` loses the one message it was reading. An SPSC [`Consumer`] publishes
//! its head once per batch, so one killed inside `get_many` loses nothing (the next
//! consumer gets the whole batch again); an SPSC [`Producer`] killed inside `put_many`
//! loses the values it had written and not yet published (published values are kept).
//!
//! **Raw records.** A `Queue` consumer killed while its `get_with` closure runs loses that
//! message, as one killed inside `get`; an SPSC consumer loses nothing (the record is
//! released only after the closure returns). `put_bytes` is a `put` whose value is already
//! encoded.
//!
//! **[`SimpleQueue`]** is a `Queue` and has its contract.
//!
//! **[`JoinableQueue`]** has the `Queue` contract for its messages. Where Python's `join`
//! waits forever for a consumer that died between `get` and `task_done`, each consumer
//! process here has a ledger entry in shared memory (pid, start time, tasks got and not
//! done); a joiner looks at it every 10 ms, writes off the tasks of dead processes and
//! returns `JoinError::Abandoned { tasks }` when that is how the count reached 0. Not
//! seen (`join` waits; use `join_timeout`, which returns `Timeout { unfinished }`): a
//! consumer killed inside `get` between taking the message and recording it, a producer
//! killed inside `put` after counting its task, a 65th consumer process, and tasks whose
//! `task_done` another process called before their getter died (written off twice).
//!
//! **[`Pipe`].** Each end records the process that holds it (pid and start time). After
//! the peer closed its end, `recv` returns what was sent before, then `RecvError::Closed`,
//! and `send` fails with `SendError::Closed`. After the peer's process died (SIGKILL
//! included), `recv` returns what was sent before, then `RecvError::PeerDied`, within
//! about 10 ms plus a `/proc` read when it was asleep; a `send` waiting for room fails
//! with `SendError::PeerDied`. A sender killed inside `send` loses that message only. An
//! end sent to another process belongs to the sender until the receiver deserialises it;
//! if the receiver dies before that, the peer is not seen to die (use `poll` or
//! `recv_timeout`).
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

/// Turns a [`Partial`](error::Partial) into the public batch error `$name`, whose
/// "no room" variant is `$full`.
macro_rules! batch_error {
    ($partial:expr, $name:ident, full: $full:ident) => {{
        let $crate::error::Partial { put, rest, stop } = $partial;
        match stop {
            $crate::error::BatchStop::Full => $name::$full { put, rest },
            $crate::error::BatchStop::Closed => $name::Closed { put, rest },
            $crate::error::BatchStop::TooLarge { index, size, max } => $name::TooLarge {
                put,
                rest,
                index,
                size,
                max,
            },
            $crate::error::BatchStop::Encode { index, error } => $name::Encode {
                put,
                rest,
                index,
                error,
            },
        }
    }};
}

mod codec;
mod error;
mod joinable_queue;
mod pipe;
mod queue;
mod simple_queue;
mod spsc;
mod sync;
mod sys;
mod wait;

#[cfg(not(loom))]
pub mod inspect;
pub mod layout;

pub use error::{
    AttachError, CodecError, CreateError, GetError, GetTimeoutError, JoinError, JoinTimeoutError,
    OpenError, PutError, PutManyError, PutManyTimeoutError, PutTimeoutError, RecvError,
    RecvTimeoutError, SendError, Side, TaskDoneError, TryGetError, TryPutError, TryPutManyError,
};
pub use joinable_queue::{JoinableQueue, JoinableQueueBuilder};
pub use pipe::{Connection, DEFAULT_PIPE_BUFFER, DEFAULT_PIPE_MAX_MESSAGE, Pipe, PipeBuilder};
pub use queue::{DEFAULT_CAPACITY, DEFAULT_MAX_MESSAGE, Positions, Queue, QueueBuilder, Waiting};
pub use simple_queue::{DEFAULT_SIMPLE_CAPACITY, SimpleQueue, SimpleQueueBuilder};
pub use spsc::{Consumer, DEFAULT_SPSC_CAPACITY, Producer, SpscBuilder, SpscQueue};
pub use wait::DEFAULT_SPIN_LIMIT;

#[cfg(loom)]
#[doc(hidden)]
pub use queue::loom_model;
#[cfg(loom)]
#[doc(hidden)]
pub use spsc::loom_model as spsc_loom_model;
