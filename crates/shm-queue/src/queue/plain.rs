//! Plain data for [`Queue`]: values whose bytes are the message (`zerocopy`'s `IntoBytes`
//! / `FromBytes` types: integers, floats, arrays and `#[repr(C)]` structs of them), with
//! no serialisation at all.
//!
//! A slot records how its payload is encoded (`layout::CODEC_PLAIN`), so the two paths
//! never misread each other: [`Queue::get_plain`] takes plain and postcard messages alike,
//! while [`Queue::get`] (and `get_many`) report a plain message as a `Decode` error (it is
//! removed). Use the plain path on both sides of a queue of plain-data `T`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::{GetFailure, PutFailure, Queue, Until};
use crate::codec::{copy_into, read_plain};
use crate::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use crate::layout::CODEC_PLAIN;
use crate::sys;

impl<T: Serialize + DeserializeOwned + IntoBytes + Immutable> Queue<T> {
    fn put_plain_until(&self, value: &T, until: Until) -> Result<(), PutFailure> {
        let bytes = value.as_bytes();
        self.put_record(bytes.len(), until, CODEC_PLAIN, copy_into(bytes))
    }

    /// Puts `value` as its own bytes (one copy into the slot, no serialisation), waiting as
    /// long as the queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`]; [`PutError::TooLarge`] when `size_of::<T>()` exceeds the
    /// maximum message size. The value comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<[u64; 4]>::new()?;
    /// q.put_plain([1, 2, 3, 4])?;
    /// assert_eq!(q.get_plain()?, [1, 2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_plain(&self, value: T) -> Result<(), PutError<T>> {
        self.put_plain_until(&value, Until::Deadline(None))
            .map_err(|failure| match failure {
                PutFailure::TooLarge { size, max } => PutError::TooLarge { value, size, max },
                PutFailure::Encode(error) => PutError::Encode { value, error },
                PutFailure::Full | PutFailure::Closed => PutError::Closed(value),
            })
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
    /// use shm_queue::{Queue, TryPutError};
    /// let q = Queue::<u64>::builder().capacity(1).create_anonymous()?;
    /// q.try_put_plain(1)?;
    /// assert!(matches!(q.try_put_plain(2), Err(TryPutError::Full(2))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_plain(&self, value: T) -> Result<(), TryPutError<T>> {
        self.put_plain_until(&value, Until::Now)
            .map_err(|failure| match failure {
                PutFailure::Full => TryPutError::Full(value),
                PutFailure::Closed => TryPutError::Closed(value),
                PutFailure::TooLarge { size, max } => TryPutError::TooLarge { value, size, max },
                PutFailure::Encode(error) => TryPutError::Encode { value, error },
            })
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
    /// let q = shm_queue::Queue::<u64>::builder().capacity(1).create_anonymous()?;
    /// q.put_plain_timeout(1, Duration::from_millis(1))?;
    /// assert!(q.put_plain_timeout(2, Duration::from_millis(1)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_plain_timeout(&self, value: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        let until = Until::Deadline(sys::deadline_after(timeout));
        self.put_plain_until(&value, until)
            .map_err(|failure| match failure {
                PutFailure::Full => PutTimeoutError::Timeout(value),
                PutFailure::Closed => PutTimeoutError::Closed(value),
                PutFailure::TooLarge { size, max } => {
                    PutTimeoutError::TooLarge { value, size, max }
                }
                PutFailure::Encode(error) => PutTimeoutError::Encode { value, error },
            })
    }
}

impl<T: Serialize + DeserializeOwned + FromBytes> Queue<T> {
    /// Takes the message at the front, waiting as long as the queue is empty, and reads
    /// it as a `T`: a plain message's bytes are copied out (no deserialisation), a
    /// postcard message is decoded.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once closed and drained; [`GetError::Decode`] for a message of
    /// the wrong size (it is removed).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u32>::new()?;
    /// q.put_plain(7)?;
    /// q.put(8)?; // postcard messages are read too
    /// assert_eq!((q.get_plain()?, q.get_plain()?), (7, 8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_plain(&self) -> Result<T, GetError> {
        self.get_plain_until(Until::Deadline(None))
            .map_err(|failure| match failure {
                GetFailure::Empty | GetFailure::Closed => GetError::Closed,
                GetFailure::Decode(e) => GetError::Decode(e),
            })
    }

    /// Takes and reads the message at the front if one is ready now (see
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
    /// let q = shm_queue::Queue::<u32>::new()?;
    /// assert_eq!(q.try_get_plain(), Err(shm_queue::TryGetError::Empty));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn try_get_plain(&self) -> Result<T, TryGetError> {
        self.get_plain_until(Until::Now)
            .map_err(|failure| match failure {
                GetFailure::Empty => TryGetError::Empty,
                GetFailure::Closed => TryGetError::Closed,
                GetFailure::Decode(e) => TryGetError::Decode(e),
            })
    }

    /// Takes and reads the message at the front, waiting at most `timeout` (see
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
    /// let q = shm_queue::Queue::<u32>::new()?;
    /// assert_eq!(q.get_plain_timeout(Duration::from_millis(1)), Err(shm_queue::GetTimeoutError::Timeout));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn get_plain_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        let until = Until::Deadline(sys::deadline_after(timeout));
        self.get_plain_until(until)
            .map_err(|failure| match failure {
                GetFailure::Empty => GetTimeoutError::Timeout,
                GetFailure::Closed => GetTimeoutError::Closed,
                GetFailure::Decode(e) => GetTimeoutError::Decode(e),
            })
    }

    fn get_plain_until(&self, until: Until) -> Result<T, GetFailure> {
        self.get_record(until, read_plain::<T>)?
            .map_err(GetFailure::Decode)
    }
}
