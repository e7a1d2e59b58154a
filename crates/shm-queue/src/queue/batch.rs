//! Batches for [`Queue`]: `put_many` / `get_many` and their `try_` and `_timeout` forms.
//!
//! A batch claims, fills and publishes its slots one by one, exactly as single puts and
//! gets do (so a process killed inside a batch loses at most the one message it was
//! writing or reading), but it searches from a position of its own instead of the shared
//! hint, writes the hint once (when it ends or before it sleeps), and wakes the other side
//! once (likewise): one hint publication and one wake per batch instead of one per
//! message.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shm_segment::fault;

use super::{
    CloseState, Closed, GetFailure, Publish, Queue, ROLE_CONSUMER, ROLE_PRODUCER, Release, Ring,
    Until,
};
use crate::codec::{decode_from, encode_into, encoded_size};
use crate::error::{
    BatchStop, CodecError, GetError, GetTimeoutError, Partial, PutManyError, PutManyTimeoutError,
    TryGetError, TryPutManyError,
};
use crate::layout::{
    CODEC_POSTCARD, STATE_CLAIMED, STATE_FREE, STATE_PUBLISHED, STATE_READING, TOMBSTONE_LEN,
    pack_seq, tag_distance, unpack_seq,
};
use crate::sync::{AtomicU64, Ordering};
use crate::sys;
use crate::wait::{Attempt, Event};

impl Ring {
    /// As `try_claim_put`, searching from the caller's position `t` (raised to the shared
    /// hint first, never lowered); the shared hint is not written.
    fn try_claim_put_from(
        &self,
        pid: u32,
        check_owners: bool,
        t: &mut u64,
    ) -> Attempt<Result<u64, Closed>> {
        let h = self.header();
        let capacity = self.config.capacity;
        // Every position below the hint is claimed: it is a valid place to start.
        *t = (*t).max(h.tail.load(Ordering::Relaxed));
        loop {
            // [closed] Acquire: pairs with the Release store in `close`.
            if h.closed.load(Ordering::Acquire) != 0 {
                return Attempt::Done(Err(Closed));
            }
            let (slot, _) = self.slot(*t);
            // [free] Acquire: pairs with the Release stores that free a slot.
            let seq = slot.seq.load(Ordering::Acquire);
            let (tag, state, owner) = unpack_seq(seq);
            let distance = tag_distance(tag, *t);
            if distance == 0 && state == STATE_FREE {
                let claimed = pack_seq(*t, STATE_CLAIMED, pid);
                // [free] Acquire on success, as above. [close] SeqCst: see
                // `withdraw_if_closed`.
                if slot
                    .seq
                    .compare_exchange(seq, claimed, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    let position = *t;
                    *t += 1;
                    return self.withdraw_if_closed(position, pid);
                }
            } else if distance >= 0 {
                *t += 1;
            } else if state == STATE_READING {
                let reader = *t - capacity;
                if !check_owners || Self::owner_alive(slot, reader, ROLE_CONSUMER, owner) {
                    return Attempt::Blocked { poll: true };
                }
                // Its reader died: free the slot for position `t` (see `try_claim_put`).
                // [free] Release: pairs with the Acquire loads of producers.
                let _ = slot.seq.compare_exchange(
                    seq,
                    pack_seq(*t, STATE_FREE, 0),
                    Ordering::Release,
                    Ordering::Relaxed,
                );
            } else {
                return Attempt::Blocked {
                    poll: state != STATE_PUBLISHED,
                };
            }
        }
    }

    /// As `try_claim_get`, searching from the caller's position `hd` (raised to the shared
    /// hint first); sets `freed` when it freed the slot of a dead producer.
    fn try_claim_get_from(
        &self,
        pid: u32,
        check_owners: bool,
        hd: &mut u64,
        freed: &mut bool,
    ) -> Attempt<Result<u64, Closed>> {
        let h = self.header();
        let capacity = self.config.capacity;
        *hd = (*hd).max(h.head.load(Ordering::Relaxed));
        loop {
            let (slot, _) = self.slot(*hd);
            // [publish] Acquire: pairs with the Release store that publishes a message.
            let seq = slot.seq.load(Ordering::Acquire);
            let (tag, state, owner) = unpack_seq(seq);
            let distance = tag_distance(tag, *hd);
            if distance > 0 || (distance == 0 && state == STATE_READING) {
                *hd += 1;
            } else if distance == 0 && state == STATE_PUBLISHED {
                let reading = pack_seq(*hd, STATE_READING, pid);
                // [publish] Acquire on success, as above.
                if slot
                    .seq
                    .compare_exchange(seq, reading, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    let position = *hd;
                    *hd += 1;
                    return Attempt::Done(Ok(position));
                }
            } else if distance == 0 && state == STATE_CLAIMED {
                if !check_owners || Self::owner_alive(slot, *hd, ROLE_PRODUCER, owner) {
                    return Attempt::Blocked { poll: true };
                }
                // Its producer died before publishing: skip the position.
                // [free] Release: pairs with the Acquire loads of producers.
                let skipped = pack_seq(*hd + capacity, STATE_FREE, 0);
                if slot
                    .seq
                    .compare_exchange(seq, skipped, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    *hd += 1;
                    *freed = true;
                }
            } else {
                // Empty, unless closed with messages still coming (as in `try_claim_get`).
                return match self.close_state(*hd, check_owners) {
                    CloseState::Open => Attempt::Blocked { poll: false },
                    CloseState::Draining => Attempt::Blocked { poll: true },
                    CloseState::Drained => Attempt::Done(Err(Closed)),
                };
            }
        }
    }

    /// Raises a hint to `to` (hints only move forward; a larger value stays).
    fn raise_hint(hint: &AtomicU64, to: u64) {
        let mut current = hint.load(Ordering::Relaxed);
        while current < to {
            match hint.compare_exchange_weak(current, to, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Puts every value of `values`, in order, waiting for room as often as needed.
    ///
    /// Each value takes its own slot, published as soon as it is written (consumers may
    /// take the first values while later ones are written); the producers' hint is
    /// written and sleeping consumers are woken once per batch, and once more before each
    /// wait for room. Values of other producers may interleave with the batch.
    ///
    /// Every value's size is checked before anything is written, so `TooLarge` and
    /// (normally) `Encode` leave the queue untouched.
    ///
    /// # Errors
    ///
    /// [`PutManyError::Closed`] when the queue is closed before the batch is in: the first
    /// `put` values were enqueued, `rest` comes back; [`PutManyError::TooLarge`] /
    /// [`PutManyError::Encode`] for a value that cannot be sent, with the batch.
    ///
    /// # Faults
    ///
    /// A producer killed inside `put_many` has enqueued the values before the one it was
    /// writing; that one is lost exactly as in [`put`](Self::put); the others never left.
    /// Consumers asleep on the queue are woken once, when the batch ends (also by a
    /// panicking `Serialize`); after a kill they find the enqueued values by themselves
    /// within a second.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u32>::builder().capacity(4).create_anonymous()?;
    /// q.put_many(vec![1, 2, 3])?;
    /// assert_eq!(q.len(), 3);
    /// let mut got = Vec::new();
    /// assert_eq!(q.get_many(&mut got, 10)?, 3);
    /// assert_eq!(got, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many(&self, values: Vec<T>) -> Result<(), PutManyError<T>> {
        self.put_many_until(values, Until::Deadline(None))
            .map_err(|partial| batch_error!(partial, PutManyError, full: Closed))
    }

    /// Puts as many values of `values` as there is room for now, in order, and hands the
    /// rest back.
    ///
    /// # Errors
    ///
    /// [`TryPutManyError::Full`] with the number put and the rest when the queue filled
    /// up; otherwise as [`put_many`](Self::put_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{Queue, TryPutManyError};
    /// let q = Queue::<u32>::builder().capacity(2).create_anonymous()?;
    /// match q.try_put_many(vec![1, 2, 3]) {
    ///     Err(TryPutManyError::Full { put, rest }) => assert_eq!((put, rest), (2, vec![3])),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn try_put_many(&self, values: Vec<T>) -> Result<(), TryPutManyError<T>> {
        self.put_many_until(values, Until::Now)
            .map_err(|partial| batch_error!(partial, TryPutManyError, full: Full))
    }

    /// Puts every value of `values`, in order, waiting at most `timeout` in all for room.
    ///
    /// # Errors
    ///
    /// [`PutManyTimeoutError::Timeout`] with the number put and the rest when room did not
    /// come in time (never earlier); otherwise as [`put_many`](Self::put_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shm_queue::Queue::<u32>::builder().capacity(8).create_anonymous()?;
    /// q.put_many_timeout(vec![1, 2], Duration::from_secs(1))?;
    /// assert_eq!(q.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many_timeout(
        &self,
        values: Vec<T>,
        timeout: Duration,
    ) -> Result<(), PutManyTimeoutError<T>> {
        let deadline = sys::deadline_after(timeout);
        self.put_many_until(values, Until::Deadline(deadline))
            .map_err(|partial| batch_error!(partial, PutManyTimeoutError, full: Timeout))
    }

    fn put_many_until(&self, values: Vec<T>, until: Until) -> Result<(), Partial<T>> {
        let max = self.inner.config.max_message;
        for (index, value) in values.iter().enumerate() {
            let stop = match encoded_size(value) {
                Ok(size) if size <= max => continue,
                Ok(size) => BatchStop::TooLarge { index, size, max },
                Err(error) => BatchStop::Encode { index, error },
            };
            return Err(Partial {
                put: 0,
                rest: values,
                stop,
            });
        }
        let me = sys::current_process();
        let inner = &*self.inner;
        let h = inner.header();
        // Our search position, and whether we published since the last wake of consumers.
        let mut wake = BatchWake {
            event: inner.not_empty(),
            hint: &h.tail,
            position: h.tail.load(Ordering::Relaxed),
            pending: false,
        };
        let mut put = 0;
        let mut values = values.into_iter();
        let stopped = loop {
            let Some(value) = values.next() else {
                break None;
            };
            let claimed = match inner.try_claim_put_from(me.pid, false, &mut wake.position) {
                Attempt::Done(r) => Some(r),
                Attempt::Blocked { .. } => {
                    // Announce what we wrote before waiting: its consumers may be the
                    // ones who make room.
                    wake.announce();
                    let t = &mut wake.position;
                    match until {
                        Until::Now => match inner.try_claim_put_from(me.pid, true, t) {
                            Attempt::Done(r) => Some(r),
                            Attempt::Blocked { .. } => None,
                        },
                        Until::Deadline(deadline) => {
                            inner.not_full().block_on(self.spin, deadline, |check| {
                                inner.try_claim_put_from(me.pid, check, t)
                            })
                        }
                    }
                }
            };
            let position = match claimed {
                None => break Some((value, BatchStop::Full)),
                Some(Err(Closed)) => break Some((value, BatchStop::Closed)),
                Some(Ok(position)) => position,
            };
            let (slot, payload) = inner.slot(position);
            Ring::stamp(slot, position, ROLE_PRODUCER, me.start_time);
            fault::point("shm_queue.put_many.claimed");
            wake.pending = true;
            // Publishes a tombstone unless the encoding succeeds (see `put_until`).
            let mut publish = Publish {
                inner,
                position,
                pid: me.pid,
                len: TOMBSTONE_LEN,
                codec: CODEC_POSTCARD,
                notify: false,
            };
            // SAFETY: the slot is CLAIMED by this process for `position`: no one else
            // reads or writes its payload, which holds `max` bytes.
            match unsafe { encode_into(&value, payload, max) } {
                Ok(len) => {
                    publish.len = len as u32;
                    drop(publish);
                    put += 1;
                }
                Err(error) => {
                    drop(publish);
                    break Some((value, BatchStop::Encode { index: 0, error }));
                }
            }
        };
        drop(wake);
        match stopped {
            None => Ok(()),
            Some((value, stop)) => Err(Partial {
                put,
                rest: std::iter::once(value).chain(values).collect(),
                stop,
            }),
        }
    }

    /// Waits until a message is ready, then appends to `buf` up to `max` messages that
    /// are ready, in queue order; returns how many it appended.
    ///
    /// Each message is claimed, decoded and freed on its own, as by [`get`](Self::get);
    /// the consumers' hint is written and sleeping producers are woken once per batch.
    /// A message whose producer is still writing it ends the batch (the messages behind
    /// it are left for the next call).
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] when the queue is closed and drained before any message came;
    /// [`GetError::Decode`] for a message that cannot be decoded (it is removed): the
    /// messages before it in the batch are in `buf` already.
    ///
    /// # Faults
    ///
    /// A consumer killed inside `get_many` loses the one message it was reading, as in
    /// `get`; the messages it had decoded before were taken by it (like a `get` that
    /// returned), the others stay queued. Producers waiting for room find the slots it
    /// freed within a second.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u32>::new()?;
    /// q.put_many(vec![1, 2, 3])?;
    /// let mut got = Vec::new();
    /// assert_eq!(q.get_many(&mut got, 2)?, 2);
    /// assert_eq!(q.get_many(&mut got, 2)?, 1);
    /// assert_eq!(got, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, GetError> {
        self.get_many_until(buf, max, Until::Deadline(None))
            .map_err(|failure| match failure {
                GetFailure::Empty | GetFailure::Closed => GetError::Closed,
                GetFailure::Decode(e) => GetError::Decode(e),
            })
    }

    /// Appends to `buf` up to `max` messages that are ready now.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] when none is ready; otherwise as
    /// [`get_many`](Self::get_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{Queue, TryGetError};
    /// let q = Queue::<u32>::new()?;
    /// let mut got = Vec::new();
    /// assert_eq!(q.try_get_many(&mut got, 8), Err(TryGetError::Empty));
    /// q.put(5)?;
    /// assert_eq!(q.try_get_many(&mut got, 8), Ok(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_many(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, TryGetError> {
        self.get_many_until(buf, max, Until::Now)
            .map_err(|failure| match failure {
                GetFailure::Empty => TryGetError::Empty,
                GetFailure::Closed => TryGetError::Closed,
                GetFailure::Decode(e) => TryGetError::Decode(e),
            })
    }

    /// Waits at most `timeout` for a message, then appends to `buf` up to `max` that are
    /// ready.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] when none came in time (never earlier); otherwise as
    /// [`get_many`](Self::get_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shm_queue::{GetTimeoutError, Queue};
    /// let q = Queue::<u32>::new()?;
    /// let mut got = Vec::new();
    /// assert_eq!(q.get_many_timeout(&mut got, 8, Duration::from_millis(1)), Err(GetTimeoutError::Timeout));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn get_many_timeout(
        &self,
        buf: &mut Vec<T>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, GetTimeoutError> {
        let deadline = sys::deadline_after(timeout);
        self.get_many_until(buf, max, Until::Deadline(deadline))
            .map_err(|failure| match failure {
                GetFailure::Empty => GetTimeoutError::Timeout,
                GetFailure::Closed => GetTimeoutError::Closed,
                GetFailure::Decode(e) => GetTimeoutError::Decode(e),
            })
    }

    fn get_many_until(
        &self,
        buf: &mut Vec<T>,
        max: usize,
        until: Until,
    ) -> Result<usize, GetFailure> {
        if max == 0 {
            return Ok(0);
        }
        let me = sys::current_process();
        let inner = &*self.inner;
        let h = inner.header();
        // Our search position, and whether we freed a slot since the last wake of
        // producers.
        let mut wake = BatchWake {
            event: inner.not_full(),
            hint: &h.head,
            position: h.head.load(Ordering::Relaxed),
            pending: false,
        };
        let mut got = 0;
        let result = loop {
            if got == max {
                break Ok(got);
            }
            let claimed = if got == 0 {
                match until {
                    Until::Now => {
                        match inner.try_claim_get_from(
                            me.pid,
                            true,
                            &mut wake.position,
                            &mut wake.pending,
                        ) {
                            Attempt::Done(r) => Some(r),
                            Attempt::Blocked { .. } => None,
                        }
                    }
                    Until::Deadline(deadline) => {
                        inner.not_empty().block_on(self.spin, deadline, |check| {
                            inner.try_claim_get_from(
                                me.pid,
                                check,
                                &mut wake.position,
                                &mut wake.pending,
                            )
                        })
                    }
                }
            } else {
                match inner.try_claim_get_from(me.pid, false, &mut wake.position, &mut wake.pending)
                {
                    Attempt::Done(r) => Some(r),
                    Attempt::Blocked { .. } => break Ok(got),
                }
            };
            let position = match claimed {
                None => break Err(GetFailure::Empty),
                Some(Err(Closed)) if got == 0 => break Err(GetFailure::Closed),
                Some(Err(Closed)) => break Ok(got),
                Some(Ok(position)) => position,
            };
            let (slot, payload) = inner.slot(position);
            Ring::stamp(slot, position, ROLE_CONSUMER, me.start_time);
            fault::point("shm_queue.get_many.claimed");
            // Frees the slot when dropped, even if `Deserialize` panics.
            let _release = Release {
                inner,
                position,
                notify: false,
            };
            wake.pending = true;
            let len = slot.len.load(Ordering::Relaxed);
            if len == TOMBSTONE_LEN {
                continue;
            }
            if len as usize > inner.config.max_message {
                break Err(GetFailure::Decode(CodecError::corrupt(&format!(
                    "length {len} exceeds the maximum"
                ))));
            }
            if slot.codec.load(Ordering::Relaxed) != CODEC_POSTCARD {
                break Err(GetFailure::Decode(CodecError::corrupt(
                    "a plain-data message: take it with get_plain",
                )));
            }
            // SAFETY: the slot is READING by this process for `position`: its producer
            // published `len` payload bytes (Acquire on claiming) and no one writes them
            // until `_release` frees the slot.
            match unsafe { decode_from(payload, len as usize) } {
                Ok(value) => {
                    buf.push(value);
                    got += 1;
                }
                Err(e) => break Err(GetFailure::Decode(e)),
            }
        };
        drop(wake);
        result
    }
}

/// A batch's search position and its one wake-up of the other side: when dropped, also
/// when a panicking `Serialize` or `Deserialize` ends the batch early, it raises the shared
/// hint to the position and wakes the sleepers if anything was published (or freed) since
/// the last wake. A SIGKILL skips it; sleepers then look again after
/// [`LOST_WAKE_POLL`](crate::wait::LOST_WAKE_POLL).
struct BatchWake<'a> {
    event: Event<'a>,
    hint: &'a AtomicU64,
    position: u64,
    pending: bool,
}

impl BatchWake<'_> {
    /// Raises the hint and wakes the sleepers if anything is pending.
    fn announce(&mut self) {
        Ring::raise_hint(self.hint, self.position);
        if std::mem::take(&mut self.pending) {
            self.event.notify();
        }
    }
}

impl Drop for BatchWake<'_> {
    fn drop(&mut self) {
        self.announce();
    }
}
