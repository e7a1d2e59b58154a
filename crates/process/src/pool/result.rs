//! What pool calls hand back: [`AsyncResult`] and the lazy [`Imap`] / [`ImapUnordered`]
//! iterators.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{JobState, Pool, PoolError, Shared, Slot, State};

type Decode<R> = fn(Vec<Vec<u8>>) -> Result<R, PoolError>;

fn decode_chunk<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, PoolError> {
    postcard::from_bytes(bytes).map_err(|e| PoolError::Codec {
        message: format!("cannot deserialise a task's results: {e}"),
    })
}

fn decode_single<R: DeserializeOwned>(chunks: Vec<Vec<u8>>) -> Result<R, PoolError> {
    let bytes = chunks.into_iter().next().unwrap_or_default();
    decode_chunk::<R>(&bytes)?
        .into_iter()
        .next()
        .ok_or_else(|| PoolError::Codec {
            message: "a task returned no result".to_owned(),
        })
}

fn decode_all<T: DeserializeOwned>(chunks: Vec<Vec<u8>>) -> Result<Vec<T>, PoolError> {
    let mut all = Vec::new();
    for chunk in chunks {
        all.extend(decode_chunk::<T>(&chunk)?);
    }
    Ok(all)
}

/// The pending result of [`Pool::apply_async`] or [`Pool::map_async`] (Python's
/// `AsyncResult`). Dropping it discards the result when it comes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// # shm_process::init();
/// fn twice(x: u32) -> u32 { 2 * x }
/// let pool = shm_process::Pool::new(1)?;
/// let pending = pool.apply_async(twice, 21)?;
/// assert!(pending.wait_timeout(Duration::from_secs(30)));
/// assert_eq!(pending.get()?, 42);
/// # Ok::<(), shm_process::PoolError>(())
/// ```
#[derive(Debug)]
pub struct AsyncResult<R> {
    shared: Arc<Shared>,
    job: u64,
    decode: Decode<R>,
    _result: PhantomData<fn() -> R>,
}

impl<R> AsyncResult<R> {
    pub(crate) fn single(shared: Arc<Shared>, job: u64) -> Self
    where
        R: DeserializeOwned,
    {
        AsyncResult {
            shared,
            job,
            decode: decode_single::<R>,
            _result: PhantomData,
        }
    }

    fn done(state: &State, job: u64) -> bool {
        state.jobs.get(&job).is_none_or(|j| j.outstanding == 0)
    }

    /// Whether the result has arrived (Python's `ready`).
    pub fn ready(&self) -> bool {
        Self::done(&self.shared.lock(), self.job)
    }

    /// Waits for the result (Python's `wait`).
    pub fn wait(&self) {
        let state = self.shared.lock();
        let _ = self
            .shared
            .wait_until(state, None, |s| Self::done(s, self.job));
    }

    /// Waits at most `timeout`; returns whether the result is ready.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let state = self.shared.lock();
        self.shared
            .wait_until(state, Some(timeout), |s| Self::done(s, self.job))
            .1
    }

    /// `None` while not ready, then whether every task succeeded (Python's `successful`,
    /// which raises instead of returning `None`).
    pub fn successful(&self) -> Option<bool> {
        let state = self.shared.lock();
        let job = state.jobs.get(&self.job)?;
        (job.outstanding == 0).then(|| job.slots.iter().all(|s| matches!(s, Slot::Done(Ok(_)))))
    }

    /// Waits for and returns the result (Python's `get`); callable again.
    ///
    /// # Errors
    ///
    /// The first failed task's [`PoolError`].
    pub fn get(&self) -> Result<R, PoolError> {
        self.get_until(None)
    }

    /// Like [`get`](Self::get), giving up after `timeout` with [`PoolError::Timeout`].
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`], or the first failed task's error.
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, PoolError> {
        self.get_until(Some(timeout))
    }

    fn get_until(&self, timeout: Option<Duration>) -> Result<R, PoolError> {
        let state = self.shared.lock();
        let (state, ready) = self
            .shared
            .wait_until(state, timeout, |s| Self::done(s, self.job));
        if !ready {
            return Err(PoolError::Timeout);
        }
        let job = state.jobs.get(&self.job).ok_or(PoolError::Terminated)?;
        let mut chunks = Vec::with_capacity(job.slots.len());
        for slot in &job.slots {
            match slot {
                Slot::Done(Ok(bytes)) => chunks.push(bytes.clone()),
                Slot::Done(Err(e)) => return Err(e.clone()),
                Slot::Pending | Slot::Taken => return Err(PoolError::Terminated),
            }
        }
        drop(state);
        (self.decode)(chunks)
    }
}

impl<T: DeserializeOwned> AsyncResult<Vec<T>> {
    pub(crate) fn all(shared: Arc<Shared>, job: u64, _items: usize) -> Self {
        AsyncResult {
            shared,
            job,
            decode: decode_all::<T>,
            _result: PhantomData,
        }
    }
}

impl<R> Drop for AsyncResult<R> {
    fn drop(&mut self) {
        self.shared.lock().jobs.remove(&self.job);
    }
}

/// Feeds a lazy job from its input and hands back finished chunks.
struct Feeder<'p, A, I> {
    pool: &'p Pool,
    job: u64,
    entry: isize,
    func: isize,
    input: I,
    chunksize: usize,
    submitted: usize,
    taken: usize,
    exhausted: bool,
    _item: PhantomData<fn(A)>,
}

impl<A: Serialize, I: Iterator<Item = A>> Feeder<'_, A, I> {
    /// Keeps about two chunks per worker in flight, reading the input only that far.
    fn top_up(&mut self) -> Result<(), PoolError> {
        let window = 2 * self.pool.processes();
        while !self.exhausted && self.submitted - self.taken < window {
            let chunk: Vec<A> = self.input.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                self.exhausted = true;
                break;
            }
            let payload = self.pool.encode(&chunk)?;
            self.pool
                .enqueue(self.job, self.entry, self.func, payload)?;
            self.submitted += 1;
        }
        Ok(())
    }

    /// Waits until `ready` says a chunk can be taken, then takes the one `pick` names.
    fn take(
        &mut self,
        ready: impl Fn(&JobState) -> bool,
        pick: impl FnOnce(&mut JobState) -> Option<usize>,
    ) -> Option<Result<Vec<u8>, PoolError>> {
        if let Err(e) = self.top_up() {
            self.exhausted = true;
            return Some(Err(e));
        }
        if self.taken == self.submitted {
            return None;
        }
        let shared = self.pool.shared();
        let job = self.job;
        let (mut state, _) = shared.wait_until(shared.lock(), None, |s| {
            s.terminated || s.jobs.get(&job).is_none_or(&ready)
        });
        self.taken += 1;
        // A chunk that is not finished here means the pool was terminated under us.
        let taken = state
            .jobs
            .get_mut(&job)
            .and_then(|j| pick(j).and_then(|index| j.take(index)));
        Some(taken.unwrap_or(Err(PoolError::Terminated)))
    }
}

impl<A, I> Drop for Feeder<'_, A, I> {
    fn drop(&mut self) {
        self.pool.shared().lock().jobs.remove(&self.job);
    }
}

/// The iterator of [`Pool::imap`]: results in input order, computed ahead by a bounded
/// window of tasks.
pub struct Imap<'p, A, R, I> {
    feeder: Feeder<'p, A, I>,
    buffer: VecDeque<R>,
}

impl<'p, A, R, I> Imap<'p, A, R, I> {
    pub(crate) fn new(
        pool: &'p Pool,
        job: u64,
        entry: isize,
        func: isize,
        input: I,
        chunksize: usize,
    ) -> Self {
        Imap {
            feeder: Feeder {
                pool,
                job,
                entry,
                func,
                input,
                chunksize,
                submitted: 0,
                taken: 0,
                exhausted: false,
                _item: PhantomData,
            },
            buffer: VecDeque::new(),
        }
    }
}

impl<A: Serialize, R: DeserializeOwned, I: Iterator<Item = A>> Iterator for Imap<'_, A, R, I> {
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(Ok(item));
            }
            let next = self.feeder.taken;
            let chunk = self.feeder.take(|job| job.is_done(next), |_| Some(next))?;
            match chunk.and_then(|bytes| decode_chunk::<R>(&bytes)) {
                Ok(items) => self.buffer.extend(items),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<A, R, I> std::fmt::Debug for Imap<'_, A, R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("job", &self.feeder.job)
            .finish_non_exhaustive()
    }
}

/// The iterator of [`Pool::imap_unordered`]: results as they finish.
pub struct ImapUnordered<'p, A, R, I> {
    feeder: Feeder<'p, A, I>,
    buffer: VecDeque<R>,
}

impl<'p, A, R, I> ImapUnordered<'p, A, R, I> {
    pub(crate) fn new(
        pool: &'p Pool,
        job: u64,
        entry: isize,
        func: isize,
        input: I,
        chunksize: usize,
    ) -> Self {
        let Imap { feeder, buffer } = Imap::new(pool, job, entry, func, input, chunksize);
        ImapUnordered { feeder, buffer }
    }
}

impl<A: Serialize, R: DeserializeOwned, I: Iterator<Item = A>> Iterator
    for ImapUnordered<'_, A, R, I>
{
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(Ok(item));
            }
            let chunk = self.feeder.take(
                |job| job.finished.as_ref().is_some_and(|f| !f.is_empty()),
                |job| job.finished.as_mut().and_then(VecDeque::pop_front),
            )?;
            match chunk.and_then(|bytes| decode_chunk::<R>(&bytes)) {
                Ok(items) => self.buffer.extend(items),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<A, R, I> std::fmt::Debug for ImapUnordered<'_, A, R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("job", &self.feeder.job)
            .finish_non_exhaustive()
    }
}
