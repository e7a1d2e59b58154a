//! Raw records for [`Queue`]: the encoded bytes of a message, written from a slice and
//! read in place, without a copy, by a closure that borrows the slot.
//!
//! A message's bytes are the postcard encoding of a `T`: [`Queue::get_with`] sees that
//! encoding for any message, and a message put with [`Queue::put_bytes`] is decoded by
//! [`Queue::get`] like any other (a `Decode` error, and the message removed, when the
//! bytes are not a `T`). Any bytes may travel this way as long as only `get_with` reads
//! them.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{GetFailure, PutFailure, Queue, Until};
use crate::codec::copy_into;
use crate::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use crate::layout::CODEC_POSTCARD;
use crate::sys;

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Puts `bytes` as one message, copied straight into a slot, waiting as long as the
    /// queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`], [`PutError::TooLarge`]; the slice comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u32>::new()?;
    /// q.put_bytes(&[7])?; // the postcard encoding of 7_u32
    /// assert_eq!(q.get()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes<'a>(&self, bytes: &'a [u8]) -> Result<(), PutError<&'a [u8]>> {
        self.put_record(
            bytes.len(),
            Until::Deadline(None),
            CODEC_POSTCARD,
            copy_into(bytes),
        )
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
            PutFailure::Full | PutFailure::Closed => PutError::Closed(bytes),
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
    /// use shm_queue::{Queue, TryPutError};
    /// let q = Queue::<u32>::builder().capacity(1).create_anonymous()?;
    /// q.try_put_bytes(&[1])?;
    /// assert!(matches!(q.try_put_bytes(&[2]), Err(TryPutError::Full(&[2]))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_bytes<'a>(&self, bytes: &'a [u8]) -> Result<(), TryPutError<&'a [u8]>> {
        self.put_record(bytes.len(), Until::Now, CODEC_POSTCARD, copy_into(bytes))
            .map_err(|failure| match failure {
                PutFailure::Full => TryPutError::Full(bytes),
                PutFailure::Closed => TryPutError::Closed(bytes),
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
    /// let q = shm_queue::Queue::<u32>::builder().capacity(1).create_anonymous()?;
    /// q.put_bytes_timeout(&[1], Duration::from_millis(1))?;
    /// assert!(q.put_bytes_timeout(&[2], Duration::from_millis(1)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_bytes_timeout<'a>(
        &self,
        bytes: &'a [u8],
        timeout: Duration,
    ) -> Result<(), PutTimeoutError<&'a [u8]>> {
        let until = Until::Deadline(sys::deadline_after(timeout));
        self.put_record(bytes.len(), until, CODEC_POSTCARD, copy_into(bytes))
            .map_err(|failure| match failure {
                PutFailure::Full => PutTimeoutError::Timeout(bytes),
                PutFailure::Closed => PutTimeoutError::Closed(bytes),
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

    /// Takes the message at the front and lends its bytes, in place in shared memory, to
    /// `read`, waiting as long as the queue is empty. No copy and no decoding: the slot
    /// stays claimed while `read` runs and is freed when it returns (or panics). Keep
    /// `read` short: the slot is unavailable to producers meanwhile.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once closed and drained; [`GetError::Decode`] for a corrupt
    /// slot length (the message is removed).
    ///
    /// # Faults
    ///
    /// A consumer killed while `read` runs loses that message, as one killed inside
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<String>::new()?;
    /// q.put("hello".to_string())?;
    /// // postcard: the length, then the UTF-8 bytes.
    /// let len = q.get_with(|bytes| { assert_eq!(&bytes[1..], b"hello"); bytes.len() })?;
    /// assert_eq!(len, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_with<R>(&self, read: impl FnOnce(&[u8]) -> R) -> Result<R, GetError> {
        self.get_record(Until::Deadline(None), |bytes, _| read(bytes))
            .map_err(|failure| match failure {
                GetFailure::Empty | GetFailure::Closed => GetError::Closed,
                GetFailure::Decode(e) => GetError::Decode(e),
            })
    }

    /// Lends the bytes of the message at the front to `read` if one is ready now (see
    /// [`get_with`](Self::get_with)).
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] when none is ready, otherwise as
    /// [`get_with`](Self::get_with).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// assert_eq!(q.try_get_with(<[u8]>::to_vec), Err(shm_queue::TryGetError::Empty));
    /// q.put(3)?;
    /// assert_eq!(q.try_get_with(<[u8]>::to_vec), Ok(vec![3]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_with<R>(&self, read: impl FnOnce(&[u8]) -> R) -> Result<R, TryGetError> {
        self.get_record(Until::Now, |bytes, _| read(bytes))
            .map_err(|failure| match failure {
                GetFailure::Empty => TryGetError::Empty,
                GetFailure::Closed => TryGetError::Closed,
                GetFailure::Decode(e) => TryGetError::Decode(e),
            })
    }

    /// Lends the bytes of the message at the front to `read`, waiting at most `timeout`
    /// for one (see [`get_with`](Self::get_with)).
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
    /// let q = shm_queue::Queue::<u8>::new()?;
    /// let got = q.get_with_timeout(Duration::from_millis(1), |b| b.len());
    /// assert_eq!(got, Err(shm_queue::GetTimeoutError::Timeout));
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    pub fn get_with_timeout<R>(
        &self,
        timeout: Duration,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, GetTimeoutError> {
        let until = Until::Deadline(sys::deadline_after(timeout));
        self.get_record(until, |bytes, _| read(bytes))
            .map_err(|failure| match failure {
                GetFailure::Empty => GetTimeoutError::Timeout,
                GetFailure::Closed => GetTimeoutError::Closed,
                GetFailure::Decode(e) => GetTimeoutError::Decode(e),
            })
    }
}
