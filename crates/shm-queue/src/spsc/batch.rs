//! Batches for the SPSC halves: `put_many` / `get_many` and their `try_` and `_timeout`
//! forms. A batch writes (or reads) its records one after the other and publishes the
//! tail (or head) once: when it ends, and for `put_many` also before each wait for room.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Consumer, GetFailure, Producer, PutFailure, Until};
use crate::codec::{encode_into_slice, encoded_size, read_postcard};
use crate::error::{
    BatchStop, CodecError, GetError, GetTimeoutError, Partial, PutManyError, PutManyTimeoutError,
    TryGetError, TryPutManyError,
};
use crate::sys;

impl<T: Serialize + DeserializeOwned> Producer<T> {
    /// Puts every value of `values`, in order, waiting for room as often as needed; the
    /// tail is published (and a sleeping consumer woken) once at the end and once before
    /// each wait, instead of once per value.
    ///
    /// # Errors
    ///
    /// [`PutManyError::Closed`] with the number put and the rest;
    /// [`PutManyError::TooLarge`] / [`PutManyError::Encode`] (checked before anything is
    /// written) with the whole batch.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u32>::new()?.split()?;
    /// tx.put_many(vec![1, 2, 3])?;
    /// let mut got = Vec::new();
    /// assert_eq!(rx.get_many(&mut got, 8)?, 3);
    /// assert_eq!(got, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many(&mut self, values: Vec<T>) -> Result<(), PutManyError<T>> {
        self.put_many_until(values, Until::Deadline(None))
            .map_err(|partial| batch_error!(partial, PutManyError, full: Closed))
    }

    /// Puts as many values of `values` as there is room for now, in order, and hands the
    /// rest back.
    ///
    /// # Errors
    ///
    /// [`TryPutManyError::Full`] with the number put and the rest; otherwise as
    /// [`put_many`](Self::put_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{SpscQueue, TryPutManyError};
    /// let mut tx = SpscQueue::<u32>::builder().capacity(2).create_anonymous()?.producer()?;
    /// let err = tx.try_put_many(vec![1, 2, 3]).unwrap_err();
    /// assert!(matches!(err, TryPutManyError::Full { put: 2, .. }));
    /// assert_eq!(err.into_rest(), [3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_many(&mut self, values: Vec<T>) -> Result<(), TryPutManyError<T>> {
        self.put_many_until(values, Until::Now)
            .map_err(|partial| batch_error!(partial, TryPutManyError, full: Full))
    }

    /// Puts every value of `values`, in order, waiting at most `timeout` in all for room.
    ///
    /// # Errors
    ///
    /// [`PutManyTimeoutError::Timeout`] with the number put and the rest (never before
    /// `timeout`); otherwise as [`put_many`](Self::put_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut tx = shm_queue::SpscQueue::<u32>::builder().capacity(1).create_anonymous()?.producer()?;
    /// let err = tx.put_many_timeout(vec![1, 2], Duration::from_millis(1)).unwrap_err();
    /// assert_eq!((err.put(), err.into_rest()), (1, vec![2]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many_timeout(
        &mut self,
        values: Vec<T>,
        timeout: Duration,
    ) -> Result<(), PutManyTimeoutError<T>> {
        let deadline = sys::deadline_after(timeout);
        self.put_many_until(values, Until::Deadline(deadline))
            .map_err(|partial| batch_error!(partial, PutManyTimeoutError, full: Timeout))
    }

    fn put_many_until(&mut self, values: Vec<T>, until: Until) -> Result<(), Partial<T>> {
        let max = self.inner.config.max_message;
        let mut sizes = Vec::with_capacity(values.len());
        for (index, value) in values.iter().enumerate() {
            let stop = match encoded_size(value) {
                Ok(size) if size <= max => {
                    sizes.push(size);
                    continue;
                }
                Ok(size) => BatchStop::TooLarge { index, size, max },
                Err(error) => BatchStop::Encode { index, error },
            };
            return Err(Partial {
                put: 0,
                rest: values,
                stop,
            });
        }
        let written = self.put_records(&sizes, until, |index, dst| {
            match encode_into_slice(&values[index], dst) {
                Ok(len) if len == sizes[index] => Ok(()),
                Ok(_) => Err(CodecError::corrupt(
                    "the value encoded to a different size twice",
                )),
                Err(e) => Err(e),
            }
        });
        let Err((index, failure)) = written else {
            return Ok(());
        };
        let stop = match failure {
            PutFailure::Full => BatchStop::Full,
            PutFailure::Closed | PutFailure::PeerDied => BatchStop::Closed,
            PutFailure::TooLarge { size, max } => BatchStop::TooLarge {
                index: 0,
                size,
                max,
            },
            PutFailure::Encode(error) => BatchStop::Encode { index: 0, error },
        };
        let mut values = values;
        let rest = values.split_off(index);
        Err(Partial {
            put: index,
            rest,
            stop,
        })
    }
}

impl<T: Serialize + DeserializeOwned> Consumer<T> {
    /// Waits until a message is there, then appends to `buf` up to `max` messages that
    /// are there, in order; returns how many. The head is published (and a sleeping
    /// producer woken) once per batch.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] when the queue is closed and drained before any message came;
    /// [`GetError::Decode`] for a message that cannot be decoded (it is removed; the
    /// messages before it are in `buf`).
    ///
    /// # Faults
    ///
    /// A consumer killed inside `get_many` loses nothing: the head moves only when the
    /// batch ends, so the next consumer gets the whole batch again.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u8>::new()?.split()?;
    /// tx.put_many(vec![1, 2, 3])?;
    /// let mut got = Vec::new();
    /// assert_eq!(rx.get_many(&mut got, 2)?, 2);
    /// assert_eq!(got, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many(&mut self, buf: &mut Vec<T>, max: usize) -> Result<usize, GetError> {
        self.get_many_until(buf, max, Until::Deadline(None))
            .map_err(|failure| match failure {
                GetFailure::Empty | GetFailure::Closed | GetFailure::PeerDied => GetError::Closed,
                GetFailure::Decode(e) => GetError::Decode(e),
            })
    }

    /// Appends to `buf` up to `max` messages that are there now.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] when there is none; otherwise as
    /// [`get_many`](Self::get_many).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// assert_eq!(rx.try_get_many(&mut Vec::new(), 4), Err(shm_queue::TryGetError::Empty));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_many(&mut self, buf: &mut Vec<T>, max: usize) -> Result<usize, TryGetError> {
        self.get_many_until(buf, max, Until::Now)
            .map_err(|failure| match failure {
                GetFailure::Empty => TryGetError::Empty,
                GetFailure::Closed | GetFailure::PeerDied => TryGetError::Closed,
                GetFailure::Decode(e) => TryGetError::Decode(e),
            })
    }

    /// Waits at most `timeout` for a message, then appends to `buf` up to `max` that are
    /// there.
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
    /// let mut rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// let got = rx.get_many_timeout(&mut Vec::new(), 4, Duration::from_millis(1));
    /// assert_eq!(got, Err(shm_queue::GetTimeoutError::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many_timeout(
        &mut self,
        buf: &mut Vec<T>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, GetTimeoutError> {
        let deadline = sys::deadline_after(timeout);
        self.get_many_until(buf, max, Until::Deadline(deadline))
            .map_err(|failure| match failure {
                GetFailure::Empty => GetTimeoutError::Timeout,
                GetFailure::Closed | GetFailure::PeerDied => GetTimeoutError::Closed,
                GetFailure::Decode(e) => GetTimeoutError::Decode(e),
            })
    }

    fn get_many_until(
        &mut self,
        buf: &mut Vec<T>,
        max: usize,
        until: Until,
    ) -> Result<usize, GetFailure> {
        self.get_records(max, until, |bytes, codec| {
            buf.push(read_postcard(bytes, codec)?);
            Ok(())
        })
    }
}
