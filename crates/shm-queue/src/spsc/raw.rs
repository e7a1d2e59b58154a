//! Raw records for the SPSC halves: `put_bytes` copies bytes straight into the ring,
//! `get_with` lends a record's bytes in place and releases them when the closure returns.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Consumer, GetFailure, Producer, PutFailure, Until};
use crate::codec::copy_into;
use crate::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use crate::sys;

impl<T: Serialize + DeserializeOwned> Producer<T> {
    /// Puts `bytes` as one message (a record copied straight into the ring), waiting as
    /// long as the queue is full. Messages are postcard encodings of `T`: see
    /// [`Queue::put_bytes`](crate::Queue::put_bytes).
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`], [`PutError::TooLarge`]; the slice comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<u32>::new()?.split()?;
    /// tx.put_bytes(&[9])?;
    /// assert_eq!(rx.get()?, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes<'a>(&mut self, bytes: &'a [u8]) -> Result<(), PutError<&'a [u8]>> {
        self.put_record(bytes.len(), Until::Deadline(None), copy_into(bytes))
            .map_err(|failure| match failure {
                PutFailure::TooLarge { size, max } => PutError::TooLarge {
                    value: bytes,
                    size,
                    max,
                },
                PutFailure::Encode(error) => PutError::Encode {
                    value: bytes,
                    error,
                },
                PutFailure::Full | PutFailure::Closed | PutFailure::PeerDied => {
                    PutError::Closed(bytes)
                }
            })
    }

    /// Puts `bytes` as one message, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] (never before `timeout`), otherwise as
    /// [`put_bytes`](Self::put_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut tx = shm_queue::SpscQueue::<u32>::builder().capacity(1).create_anonymous()?.producer()?;
    /// tx.put_bytes_timeout(&[1], Duration::from_millis(1))?;
    /// assert!(tx.put_bytes_timeout(&[2], Duration::from_millis(1)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes_timeout<'a>(
        &mut self,
        bytes: &'a [u8],
        timeout: Duration,
    ) -> Result<(), PutTimeoutError<&'a [u8]>> {
        let until = Until::Deadline(sys::deadline_after(timeout));
        self.put_record(bytes.len(), until, copy_into(bytes))
            .map_err(|failure| match failure {
                PutFailure::Full => PutTimeoutError::Timeout(bytes),
                PutFailure::Closed | PutFailure::PeerDied => PutTimeoutError::Closed(bytes),
                PutFailure::TooLarge { size, max } => PutTimeoutError::TooLarge {
                    value: bytes,
                    size,
                    max,
                },
                PutFailure::Encode(error) => PutTimeoutError::Encode {
                    value: bytes,
                    error,
                },
            })
    }

    /// Puts `bytes` as one message if there is room now.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`], otherwise as [`put_bytes`](Self::put_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut tx = shm_queue::SpscQueue::<u32>::builder().capacity(1).create_anonymous()?.producer()?;
    /// tx.try_put_bytes(&[1])?;
    /// assert!(matches!(tx.try_put_bytes(&[2]), Err(shm_queue::TryPutError::Full(&[2]))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_bytes<'a>(&mut self, bytes: &'a [u8]) -> Result<(), TryPutError<&'a [u8]>> {
        self.put_record(bytes.len(), Until::Now, copy_into(bytes))
            .map_err(|failure| match failure {
                PutFailure::Full => TryPutError::Full(bytes),
                PutFailure::Closed | PutFailure::PeerDied => TryPutError::Closed(bytes),
                PutFailure::TooLarge { size, max } => TryPutError::TooLarge {
                    value: bytes,
                    size,
                    max,
                },
                PutFailure::Encode(error) => TryPutError::Encode {
                    value: bytes,
                    error,
                },
            })
    }
}

impl<T: Serialize + DeserializeOwned> Consumer<T> {
    /// Takes the next message and lends its bytes, in place in the ring, to `read`,
    /// waiting as long as the queue is empty; the bytes are released to the producer when
    /// `read` returns (or panics). No copy, no decoding.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once closed and drained; [`GetError::Decode`] for a corrupt
    /// record.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::SpscQueue::<Vec<u8>>::new()?.split()?;
    /// tx.put(vec![1, 2])?;
    /// assert_eq!(rx.get_with(|bytes| bytes.to_vec())?, [2, 1, 2]); // length, then bytes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R, GetError> {
        self.get_record(Until::Deadline(None), read)
            .map_err(|failure| match failure {
                GetFailure::Empty | GetFailure::Closed | GetFailure::PeerDied => GetError::Closed,
                GetFailure::Decode(e) => GetError::Decode(e),
            })
    }

    /// Lends the bytes of the next message to `read`, waiting at most `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] (never before `timeout`), otherwise as
    /// [`get_with`](Self::get_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// let got = rx.get_with_timeout(Duration::from_millis(1), |b| b.len());
    /// assert_eq!(got, Err(shm_queue::GetTimeoutError::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_with_timeout<R>(
        &mut self,
        timeout: Duration,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, GetTimeoutError> {
        let until = Until::Deadline(sys::deadline_after(timeout));
        self.get_record(until, read)
            .map_err(|failure| match failure {
                GetFailure::Empty => GetTimeoutError::Timeout,
                GetFailure::Closed | GetFailure::PeerDied => GetTimeoutError::Closed,
                GetFailure::Decode(e) => GetTimeoutError::Decode(e),
            })
    }

    /// Lends the bytes of the next message to `read` if there is one now.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] when there is none, otherwise as
    /// [`get_with`](Self::get_with).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rx = shm_queue::SpscQueue::<u8>::new()?.consumer()?;
    /// assert_eq!(rx.try_get_with(|b| b.len()), Err(shm_queue::TryGetError::Empty));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R, TryGetError> {
        self.get_record(Until::Now, read)
            .map_err(|failure| match failure {
                GetFailure::Empty => TryGetError::Empty,
                GetFailure::Closed | GetFailure::PeerDied => TryGetError::Closed,
                GetFailure::Decode(e) => TryGetError::Decode(e),
            })
    }
}
