//! Plain data for the SPSC halves: values whose bytes are the message (`zerocopy`'s
//! `IntoBytes` / `FromBytes` types), with no serialisation at all, as
//! [`Queue::put_plain`](crate::Queue::put_plain).
//!
//! A plain record has its own kind (`layout::RECORD_PLAIN`), so the two paths never
//! misread each other: [`Consumer::get_plain`] takes plain and postcard records alike, while
//! [`Consumer::get`] (and `get_many`) report a plain record as a `Decode` error (it is
//! removed). Use the plain path on both sides of a queue of plain-data `T`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::{Consumer, GetFailure, Producer, PutFailure, Until};
use crate::codec::{copy_into, read_plain};
use crate::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use crate::layout::RECORD_PLAIN;
use crate::sys;

impl<T: Serialize + DeserializeOwned + IntoBytes + Immutable> Producer<T> {
    fn put_plain_until(&mut self, value: &T, until: Until) -> Result<(), PutFailure> {
        let bytes = value.as_bytes();
        self.put_record_kind(bytes.len(), until, RECORD_PLAIN, copy_into(bytes))
    }

    /// Puts `value` as its own bytes (one copy into the ring, no serialisation), waiting
    /// as long as the queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`]; [`PutError::TooLarge`] when `size_of::<T>()` exceeds the
    /// maximum message size. The value comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<[u64; 4]>::new()?.split()?;
    /// tx.put_plain([1, 2, 3, 4])?;
    /// assert_eq!(rx.get_plain()?, [1, 2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_plain(&mut self, value: T) -> Result<(), PutError<T>> {
        self.put_plain_until(&value, Until::Deadline(None))
            .map_err(|failure| failure.into_put_error(value))
    }

    /// Puts `value` as its own bytes if there is room now.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`], otherwise as [`put_plain`](Self::put_plain).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::{SpscQueue, TryPutError};
    /// let mut tx = SpscQueue::<u64>::builder().capacity(1).create_anonymous()?.producer()?;
    /// tx.try_put_plain(1)?;
    /// assert!(matches!(tx.try_put_plain(2), Err(TryPutError::Full(2))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_plain(&mut self, value: T) -> Result<(), TryPutError<T>> {
        self.put_plain_until(&value, Until::Now)
            .map_err(|failure| failure.into_try_put_error(value))
    }

    /// Puts `value` as its own bytes, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] (never before `timeout`), otherwise as
    /// [`put_plain`](Self::put_plain).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shm_queue::{PutTimeoutError, SpscQueue};
    /// let mut tx = SpscQueue::<u64>::builder().capacity(1).create_anonymous()?.producer()?;
    /// tx.put_plain_timeout(1, Duration::from_millis(1))?;
    /// assert!(matches!(
    ///     tx.put_plain_timeout(2, Duration::from_millis(1)),
    ///     Err(PutTimeoutError::Timeout(2))
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_plain_timeout(
        &mut self,
        value: T,
        timeout: Duration,
    ) -> Result<(), PutTimeoutError<T>> {
        let until = Until::Deadline(sys::deadline_after(timeout));
        self.put_plain_until(&value, until)
            .map_err(|failure| failure.into_put_timeout_error(value))
    }
}

impl<T: Serialize + DeserializeOwned + FromBytes> Consumer<T> {
    /// Takes the next message, waiting as long as the queue is empty, and reads it as a
    /// `T`: a plain record's bytes are copied out (no deserialisation), a postcard record
    /// is decoded.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once closed and drained; [`GetError::Decode`] for a message of
    /// the wrong size (it is removed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u32>::new()?.split()?;
    /// tx.put_plain(7)?;
    /// tx.put(8)?; // postcard records are read too
    /// assert_eq!((rx.get_plain()?, rx.get_plain()?), (7, 8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_plain(&mut self) -> Result<T, GetError> {
        self.get_plain_until(Until::Deadline(None))
            .map_err(GetFailure::into_get_error)
    }

    /// Takes and reads the next message if one is ready now (see
    /// [`get_plain`](Self::get_plain)).
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] when none is ready, otherwise as
    /// [`get_plain`](Self::get_plain).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u32>::new()?.split()?;
    /// assert_eq!(rx.try_get_plain(), Err(shm_queue::TryGetError::Empty));
    /// tx.put_plain(3)?;
    /// assert_eq!(rx.try_get_plain(), Ok(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_plain(&mut self) -> Result<T, TryGetError> {
        self.get_plain_until(Until::Now)
            .map_err(GetFailure::into_try_get_error)
    }

    /// Takes and reads the next message, waiting at most `timeout` (see
    /// [`get_plain`](Self::get_plain)).
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] (never before `timeout`), otherwise as
    /// [`get_plain`](Self::get_plain).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u32>::new()?.split()?;
    /// let wait = Duration::from_millis(1);
    /// assert_eq!(rx.get_plain_timeout(wait), Err(shm_queue::GetTimeoutError::Timeout));
    /// tx.put_plain(5)?;
    /// assert_eq!(rx.get_plain_timeout(wait), Ok(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_plain_timeout(&mut self, timeout: Duration) -> Result<T, GetTimeoutError> {
        let until = Until::Deadline(sys::deadline_after(timeout));
        self.get_plain_until(until)
            .map_err(GetFailure::into_get_timeout_error)
    }

    fn get_plain_until(&mut self, until: Until) -> Result<T, GetFailure> {
        self.get_record_codec(until, read_plain::<T>)?
            .map_err(GetFailure::Decode)
    }
}
