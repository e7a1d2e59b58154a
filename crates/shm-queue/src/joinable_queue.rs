//! [`JoinableQueue`]: a [`Queue`] that counts unfinished tasks, with Python's `task_done`
//! and `join`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64 as LocalU64, Ordering as LocalOrdering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shm_segment::ObjectKind;
use shm_segment::transfer::SegmentToken;

use crate::error::{
    CreateError, GetError, GetTimeoutError, JoinError, JoinTimeoutError, OpenError, PutError,
    PutTimeoutError, TaskDoneError, TryGetError, TryPutError,
};
use crate::layout::{JoinHeader, LEDGER_REAPING, LedgerEntry};
use crate::queue::{Queue, QueueBuilder};
use crate::sync::Ordering;
use crate::sys;
use crate::wait::{Attempt, Event};

const JOIN_LEN: usize = std::mem::size_of::<JoinHeader>();

/// Options for a new [`JoinableQueue`]; made by [`JoinableQueue::builder`].
///
/// # Examples
///
/// ```
/// let q = shm_queue::JoinableQueue::<u32>::builder().capacity(8).create_anonymous()?;
/// assert_eq!(q.capacity(), 8);
/// # Ok::<(), shm_queue::CreateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct JoinableQueueBuilder<T> {
    inner: QueueBuilder<T>,
}

impl<T: Serialize + DeserializeOwned> JoinableQueueBuilder<T> {
    /// How many messages the queue holds (default
    /// [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY)).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::builder().capacity(2).create_anonymous()?;
    /// assert_eq!(q.capacity(), 2);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.inner = self.inner.capacity(capacity);
        self
    }

    /// The largest encoded message in bytes (default
    /// [`DEFAULT_MAX_MESSAGE`](crate::DEFAULT_MAX_MESSAGE)).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::builder().max_message_size(8).create_anonymous()?;
    /// assert_eq!(q.max_message_size(), 8);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.inner = self.inner.max_message_size(bytes);
        self
    }

    /// Creates an anonymous queue.
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create_anonymous`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::builder().create_anonymous()?;
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create_anonymous(&self) -> Result<JoinableQueue<T>, CreateError> {
        Ok(JoinableQueue::wrap(self.inner.create_anonymous()?))
    }

    /// Creates the named queue `name`; the name is removed when this handle is dropped.
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-joinable-builder-{}", std::process::id());
    /// let q = shm_queue::JoinableQueue::<u8>::builder().capacity(2).create(&name)?;
    /// assert_eq!(q.name(), Some(name.as_str()));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<JoinableQueue<T>, CreateError> {
        Ok(JoinableQueue::wrap(self.inner.create(name)?))
    }
}

/// Python's `JoinableQueue`: a [`Queue`] plus a count of unfinished tasks in shared memory.
///
/// Every successful put adds one task; [`task_done`](Self::task_done) marks one finished;
/// [`join`](Self::join) waits until none is left. The count is raised *before* the value
/// becomes visible and lowered again if the put fails, so a consumer's `task_done` never
/// sees a count that misses its own task, and `join` never returns while a delivered value
/// is still uncounted. `join` sleeps on a futex that the `task_done` reaching 0 wakes (with
/// a waiter count, so `task_done` makes no system call when nobody joins).
///
/// # Faults
///
/// The queue itself keeps [its contract](crate#fault-contract). In Python, a consumer that
/// dies between `get` and `task_done` makes `join` wait forever. Here every consumer
/// process has an entry in a ledger in shared memory (up to 64 processes; pid and start
/// time, and how many tasks it got and has not marked done): `get` adds one to the
/// caller's entry, `task_done` takes one off. A process waiting in `join` or
/// `join_timeout` looks at the ledger every 10 ms, writes off the tasks of entries whose
/// process is dead (they leave the unfinished count, [`abandoned_tasks`](Self::abandoned_tasks)
/// counts them) and frees those entries; when the count reaches 0 that way, `join`
/// returns [`JoinError::Abandoned`] with the number written off, so the caller knows that
/// work may be missing. The cost is one atomic add per `get` and `task_done` on the
/// caller's own cache line, and a ledger scan (64 loads and a `/proc` read per occupied
/// entry) per joiner every 10 ms.
///
/// What it cannot see, where `join` still waits (use [`join_timeout`](Self::join_timeout);
/// [`unfinished_tasks`](Self::unfinished_tasks) tells how many are missing and anyone may
/// call [`task_done`](Self::task_done) on a dead process's behalf):
///
/// - a consumer killed inside `get`, after it took the message and before it recorded it
///   in its ledger entry (its message is lost, its task stays counted);
/// - a producer killed inside `put` after raising the count and before publishing its
///   value (a task that no consumer will ever get);
/// - consumers of a 65th and later process (the ledger is full);
/// - a joiner killed while writing an entry off: that entry's tasks may stay counted.
///
/// The write-off is exact when each task's `task_done` is called by the process that got
/// it (the usual pattern). A process that calls `task_done` for tasks it did not get
/// lowers only the count, so if the process that got them then dies, they are written off
/// a second time and `join` may return before other tasks are done.
///
/// # Examples
///
/// ```
/// use shm_queue::JoinableQueue;
/// let q = JoinableQueue::<u32>::new()?;
/// q.put(1)?;
/// let worker = {
///     let q = q.clone(); // or serialise `q` and send it to another process
///     std::thread::spawn(move || {
///         let job = q.get().unwrap();
///         q.task_done().unwrap();
///         job
///     })
/// };
/// q.join()?;
/// assert_eq!(worker.join().unwrap(), 1);
/// assert_eq!(q.unfinished_tasks(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
    /// This process's ledger entry, cached: `pid << 32 | index + 1`, 0 when unknown.
    entry: Arc<LocalU64>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
            entry: Arc::clone(&self.entry),
        }
    }
}

/// How a wait in `join` ended without every task done.
enum JoinFailure {
    Timeout { unfinished: u64 },
    Abandoned { tasks: u64 },
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A new anonymous queue with the default sizes.
    ///
    /// # Errors
    ///
    /// [`CreateError::Segment`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// assert_eq!(q.capacity(), shm_queue::DEFAULT_CAPACITY);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn new() -> Result<Self, CreateError> {
        Self::builder().create_anonymous()
    }

    /// Options for a new queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::builder().capacity(1).create_anonymous()?;
    /// assert_eq!(q.capacity(), 1);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn builder() -> JoinableQueueBuilder<T> {
        JoinableQueueBuilder {
            inner: Queue::builder().wrapper(ObjectKind::JOINABLE_QUEUE, JOIN_LEN),
        }
    }

    /// Creates the named queue `name` with the default sizes.
    ///
    /// # Errors
    ///
    /// As [`QueueBuilder::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-joinable-create-{}", std::process::id());
    /// let q = shm_queue::JoinableQueue::<u8>::create(&name)?;
    /// assert_eq!(q.name(), Some(name.as_str()));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn create(name: &str) -> Result<Self, CreateError> {
        Self::builder().create(name)
    }

    /// Opens the named queue `name`.
    ///
    /// # Errors
    ///
    /// As [`Queue::open`]; another kind of queue of that name is a `KindMismatch`, a
    /// segment too small for the task count is [`OpenError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-joinable-open-{}", std::process::id());
    /// use shm_queue::JoinableQueue;
    /// let created = JoinableQueue::<u8>::builder().capacity(2).create(&name)?;
    /// created.put(1)?;
    /// let opened = JoinableQueue::<u8>::open(&name)?;
    /// assert_eq!(opened.unfinished_tasks(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::checked(Queue::open_kind(name, ObjectKind::JOINABLE_QUEUE)?)
    }

    fn checked(queue: Queue<T>) -> Result<Self, OpenError> {
        let (ptr, len) = queue.trailer();
        if len < JOIN_LEN || !(ptr.as_ptr() as usize).is_multiple_of(128) {
            return Err(OpenError::Corrupt {
                reason: format!("{len} bytes after the slots, the task count needs {JOIN_LEN}"),
            });
        }
        Ok(Self::wrap(queue))
    }

    fn wrap(queue: Queue<T>) -> Self {
        JoinableQueue {
            queue,
            entry: Arc::new(LocalU64::new(0)),
        }
    }

    /// This process's ledger entry; `claim`: take a free one if it has none.
    fn ledger_entry(&self, claim: bool) -> Option<&LedgerEntry> {
        let me = sys::current_process();
        let mine = sys::pack_owner(me);
        let ledger = &self.join_header().ledger;
        let cached = self.entry.load(LocalOrdering::Relaxed);
        if cached >> 32 == u64::from(me.pid) && cached as u32 != 0 {
            let entry = &ledger[(cached as u32 - 1) as usize];
            if entry.owner.load(Ordering::Relaxed) == mine {
                return Some(entry);
            }
        }
        // [ledger] Acquire / AcqRel: pairs with the Release store that frees an entry, so
        // a new owner sees its `taken` reset to 0.
        let found = ledger
            .iter()
            .position(|e| e.owner.load(Ordering::Acquire) == mine)
            .or_else(|| {
                claim.then(|| {
                    ledger.iter().position(|e| {
                        e.owner.load(Ordering::Relaxed) == 0
                            && e.owner
                                .compare_exchange(0, mine, Ordering::AcqRel, Ordering::Relaxed)
                                .is_ok()
                    })
                })?
            })?;
        self.entry.store(
            u64::from(me.pid) << 32 | (found as u64 + 1),
            LocalOrdering::Relaxed,
        );
        Some(&ledger[found])
    }

    /// Records in this process's ledger entry that it got a task.
    fn took_task(&self) {
        if let Some(entry) = self.ledger_entry(true) {
            entry.taken.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes off the tasks of consumer processes that died holding them; returns how
    /// many.
    fn write_off_dead(&self) -> u64 {
        let h = self.join_header();
        let mut total = 0;
        for entry in &h.ledger {
            // [ledger] Acquire: pairs with the AcqRel claim of the entry.
            let owner = entry.owner.load(Ordering::Acquire);
            if owner == 0 || owner == LEDGER_REAPING || sys::owner_alive(owner) {
                continue;
            }
            // Only the joiner that wins this exchange reads `taken`, so no task is written
            // off twice. (One that dies before freeing the entry leaves it unusable.)
            if entry
                .owner
                .compare_exchange(owner, LEDGER_REAPING, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let tasks = entry.taken.swap(0, Ordering::AcqRel);
            if tasks > 0 {
                // Counted before the tasks leave `unfinished`, so a joiner that sees the
                // count reach 0 also sees why ([done] orders it).
                h.abandoned.fetch_add(tasks, Ordering::Relaxed);
                self.remove_tasks(tasks);
                total += tasks;
            }
            // [ledger] Release: pairs with the Acquire claim of a new owner.
            entry.owner.store(0, Ordering::Release);
        }
        total
    }

    fn join_header(&self) -> &JoinHeader {
        let (ptr, len) = self.queue.trailer();
        debug_assert!(len >= JOIN_LEN);
        // SAFETY: checked at creation / open: JOIN_LEN bytes, 128-aligned, lie after the
        // slots inside the mapping that `self.queue` keeps alive; atomics only, valid for
        // any bit pattern (all zero initially).
        unsafe { &*ptr.as_ptr().cast::<JoinHeader>() }
    }

    fn joined(&self) -> Event<'_> {
        let h = self.join_header();
        Event {
            seq: &h.join_seq,
            waiters: &h.join_waiters,
        }
    }

    /// Adds one unfinished task (before the value becomes visible).
    fn add_task(&self) {
        // Relaxed is enough: the put's [publish] Release orders it before the value, so a
        // consumer that gets the value sees the raised count.
        self.join_header()
            .unfinished
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Removes one unfinished task: `false` when there was none.
    fn remove_task(&self) -> bool {
        self.remove_tasks(1)
    }

    /// Removes `n` unfinished tasks (fewer if fewer are left): `false` when there was none.
    fn remove_tasks(&self, n: u64) -> bool {
        let unfinished = &self.join_header().unfinished;
        let mut current = unfinished.load(Ordering::Relaxed);
        loop {
            if current == 0 {
                return false;
            }
            // [done] AcqRel: the Release half pairs with the Acquire load in `join`, so a
            // joiner sees everything the finished tasks did.
            match unfinished.compare_exchange_weak(
                current,
                current.saturating_sub(n),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        if current <= n {
            self.joined().notify();
        }
        true
    }

    /// Puts `value` and counts it as an unfinished task, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`]; the value comes back and the task is not counted.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// q.put(1)?;
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        self.add_task();
        self.queue.put(value).inspect_err(|_| {
            self.remove_task();
        })
    }

    /// Puts `value` and counts it, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`Queue::put_timeout`]; the value comes back and the task is not counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shm_queue::JoinableQueue::<u8>::builder().capacity(1).create_anonymous()?;
    /// q.put(1)?;
    /// assert!(q.put_timeout(2, Duration::from_millis(1)).is_err());
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.add_task();
        self.queue.put_timeout(value, timeout).inspect_err(|_| {
            self.remove_task();
        })
    }

    /// Puts `value` and counts it if there is room now.
    ///
    /// # Errors
    ///
    /// As [`Queue::try_put`]; the value comes back and the task is not counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{JoinableQueue, TryPutError};
    /// let q = JoinableQueue::<u8>::builder().capacity(1).create_anonymous()?;
    /// q.try_put(1)?;
    /// assert!(matches!(q.try_put(2), Err(TryPutError::Full(2))));
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
        self.add_task();
        self.queue.try_put(value).inspect_err(|_| {
            self.remove_task();
        })
    }

    /// Takes the message at the front, waiting while the queue is empty. Call
    /// [`task_done`](Self::task_done) when its work is finished.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`]. A message that fails to decode was still delivered: call
    /// `task_done` for it too.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// q.put(5)?;
    /// assert_eq!(q.get()?, 5);
    /// assert_eq!(q.unfinished_tasks(), 1); // until task_done
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        let got = self.queue.get();
        if !matches!(got, Err(GetError::Closed)) {
            self.took_task();
        }
        got
    }

    /// Takes the message at the front, waiting at most `timeout` (never less).
    ///
    /// # Errors
    ///
    /// As [`Queue::get_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// assert_eq!(q.get_timeout(Duration::from_millis(1)), Err(shm_queue::GetTimeoutError::Timeout));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        let got = self.queue.get_timeout(timeout);
        if matches!(got, Ok(_) | Err(GetTimeoutError::Decode(_))) {
            self.took_task();
        }
        got
    }

    /// Takes the message at the front if one is ready now.
    ///
    /// # Errors
    ///
    /// As [`Queue::try_get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// assert_eq!(q.try_get(), Err(shm_queue::TryGetError::Empty));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        let got = self.queue.try_get();
        if matches!(got, Ok(_) | Err(TryGetError::Decode(_))) {
            self.took_task();
        }
        got
    }

    /// Marks one task finished; the last one wakes every [`join`](Self::join).
    ///
    /// # Errors
    ///
    /// [`TaskDoneError::TooManyCalls`] when no task is unfinished (Python's `ValueError:
    /// task_done() called too many times`); the count stays 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{JoinableQueue, TaskDoneError};
    /// let q = JoinableQueue::<u8>::new()?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        // Our ledger first: a process killed between the two leaves one task counted
        // (`join_timeout` then reports it) rather than written off after it was done.
        if let Some(entry) = self.ledger_entry(false) {
            let _ = entry
                .taken
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        if self.remove_task() {
            Ok(())
        } else {
            Err(TaskDoneError::TooManyCalls)
        }
    }

    /// Tasks put and not yet marked done (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert_eq!(q.unfinished_tasks(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unfinished_tasks(&self) -> u64 {
        // [done] Acquire: pairs with the AcqRel decrement in `task_done`.
        self.join_header().unfinished.load(Ordering::Acquire)
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<(), JoinFailure> {
        let abandoned = &self.join_header().abandoned;
        let before = abandoned.load(Ordering::Relaxed);
        let done = self
            .joined()
            .block_on(self.queue.spin_limit(), deadline, |check| {
                if check {
                    self.write_off_dead();
                }
                if self.unfinished_tasks() == 0 {
                    Attempt::Done(())
                } else {
                    // Wake every 10 ms to look for consumers that died holding tasks.
                    Attempt::Blocked { poll: true }
                }
            });
        if done.is_none() {
            // A deadline that passed before the first sleep skipped the ledger: look once.
            self.write_off_dead();
            let unfinished = self.unfinished_tasks();
            if unfinished != 0 {
                return Err(JoinFailure::Timeout { unfinished });
            }
        }
        // Ordered by the [done] Acquire of the last `unfinished_tasks` (see
        // `write_off_dead`).
        match abandoned.load(Ordering::Relaxed) - before {
            0 => Ok(()),
            tasks => Err(JoinFailure::Abandoned { tasks }),
        }
    }

    /// Tasks written off so far because the consumer process that got them died before
    /// its `task_done` (see [Faults](Self#faults)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::JoinableQueue::<u8>::new()?.abandoned_tasks(), 0);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn abandoned_tasks(&self) -> u64 {
        self.join_header().abandoned.load(Ordering::Relaxed)
    }

    /// Waits until every task put so far is marked done, or written off because the
    /// consumer process that got it died (see [Faults](Self#faults)).
    ///
    /// # Errors
    ///
    /// [`JoinError::Abandoned`] when the count reached 0 only because tasks of dead
    /// consumer processes were written off during the call.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// q.join()?; // nothing was put
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert_eq!(q.join(), Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> Result<(), JoinError> {
        self.join_until(None).map_err(|failure| match failure {
            JoinFailure::Abandoned { tasks } => JoinError::Abandoned { tasks },
            JoinFailure::Timeout { .. } => unreachable!("join has no deadline"),
        })
    }

    /// Waits at most `timeout` until every task is marked done.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] with the number of unfinished tasks when some remain
    /// after `timeout` (never earlier); [`JoinTimeoutError::Abandoned`] as
    /// [`JoinError::Abandoned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shm_queue::{JoinableQueue, JoinTimeoutError};
    /// let q = JoinableQueue::<u8>::new()?;
    /// q.put(1)?;
    /// let err = q.join_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err, JoinTimeoutError::Timeout { unfinished: 1 });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.join_until(sys::deadline_after(timeout))
            .map_err(|failure| match failure {
                JoinFailure::Abandoned { tasks } => JoinTimeoutError::Abandoned { tasks },
                JoinFailure::Timeout { unfinished } => JoinTimeoutError::Timeout { unfinished },
            })
    }

    /// Messages in the queue (see [`Queue::len`]); not the unfinished tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// q.put(1)?;
    /// q.get()?;
    /// assert_eq!((q.len(), q.unfinished_tasks()), (0, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_queue::JoinableQueue::<u8>::new()?.is_empty());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether [`len`](Self::len) reached the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::builder().capacity(1).create_anonymous()?;
    /// q.put(1)?;
    /// assert!(q.is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    /// How many messages the queue holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::JoinableQueue::<u8>::builder().capacity(3).create_anonymous()?.capacity(), 3);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// The largest encoded message in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::JoinableQueue::<u8>::new()?.max_message_size(), shm_queue::DEFAULT_MAX_MESSAGE);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn max_message_size(&self) -> usize {
        self.queue.max_message_size()
    }

    /// Closes the queue (see [`Queue::close`]). Unfinished tasks stay counted: `join`
    /// still waits for their `task_done`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::JoinableQueue::<u8>::new()?;
    /// q.close();
    /// assert!(q.is_closed());
    /// assert!(q.put(1).is_err());
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.queue.close();
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_queue::JoinableQueue::<u8>::new()?.is_closed());
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// How many processes and threads sleep in `join` right now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::JoinableQueue::<u8>::new()?.joiners(), 0);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn joiners(&self) -> u32 {
        self.joined().waiters()
    }

    /// The queue's name, `None` for an anonymous queue.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_queue::JoinableQueue::<u8>::new()?.name(), None);
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.queue.name()
    }
}

/// Serialises as the segment's token, like [`Queue`].
impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.queue.serialize(serializer)
    }
}

/// Opens the queue a serialised handle names, checking the kind and element type.
impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let token = SegmentToken::deserialize(deserializer)?;
        let queue = Queue::from_token(&token, ObjectKind::JOINABLE_QUEUE)
            .map_err(serde::de::Error::custom)?;
        Self::checked(queue).map_err(serde::de::Error::custom)
    }
}
