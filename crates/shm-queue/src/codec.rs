//! Encoding values straight into shared slots with postcard, and decoding them out.

use serde::Serialize;
use serde::de::DeserializeOwned;
use zerocopy::FromBytes;

use crate::error::CodecError;
use crate::layout::{CODEC_PLAIN, CODEC_POSTCARD};

/// The postcard-encoded size of `value`, found without writing it anywhere.
pub(crate) fn encoded_size<T: Serialize>(value: &T) -> Result<usize, CodecError> {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .map_err(|e| CodecError::postcard(&e))
}

/// Encodes `value` into the `capacity` bytes at `dst`; returns the encoded length.
///
/// # Safety
///
/// `dst` must be valid for writes of `capacity` bytes, and no other thread or process may
/// read or write them during the call (the caller owns the slot or ring region).
pub(crate) unsafe fn encode_into<T: Serialize>(
    value: &T,
    dst: *mut u8,
    capacity: usize,
) -> Result<usize, CodecError> {
    // SAFETY: the caller guarantees `dst..dst+capacity` is writable and exclusively ours
    // for the duration of this call, so a unique slice over it aliases nothing.
    let buf = unsafe { std::slice::from_raw_parts_mut(dst, capacity) };
    postcard::to_slice(value, buf)
        .map(|used| used.len())
        .map_err(|e| CodecError::postcard(&e))
}

/// Decodes a `T` from the `len` bytes at `src`.
///
/// # Safety
///
/// `src` must be valid for reads of `len` bytes that no one writes during the call (the
/// caller owns the slot or ring region, published to it with an acquire load).
pub(crate) unsafe fn decode_from<T: DeserializeOwned>(
    src: *const u8,
    len: usize,
) -> Result<T, CodecError> {
    // SAFETY: the caller guarantees the bytes are readable and not written concurrently.
    let bytes = unsafe { std::slice::from_raw_parts(src, len) };
    postcard::from_bytes(bytes).map_err(|e| CodecError::postcard(&e))
}

/// Encodes `value` into `dst`; returns the encoded length.
pub(crate) fn encode_into_slice<T: Serialize>(
    value: &T,
    dst: &mut [u8],
) -> Result<usize, CodecError> {
    postcard::to_slice(value, dst)
        .map(|used| used.len())
        .map_err(|e| CodecError::postcard(&e))
}

/// Decodes a `T` from exactly `src`.
pub(crate) fn decode_from_slice<T: DeserializeOwned>(src: &[u8]) -> Result<T, CodecError> {
    postcard::from_bytes(src).map_err(|e| CodecError::postcard(&e))
}

/// A writer that copies `bytes` into a message's payload (raw bytes and plain data).
pub(crate) fn copy_into(bytes: &[u8]) -> impl FnOnce(&mut [u8]) -> Result<(), CodecError> + '_ {
    move |dst| {
        dst.copy_from_slice(bytes);
        Ok(())
    }
}

/// Decodes a postcard message; a plain-data message (`codec` [`CODEC_PLAIN`]) is refused,
/// not misread. The typed `get` paths.
pub(crate) fn read_postcard<T: DeserializeOwned>(
    bytes: &[u8],
    codec: u32,
) -> Result<T, CodecError> {
    match codec {
        CODEC_POSTCARD => decode_from_slice(bytes),
        _ => Err(CodecError::corrupt(
            "a plain-data message: take it with get_plain",
        )),
    }
}

/// Reads a `T` from a message of either encoding: a plain message's own bytes are copied
/// out, a postcard message is decoded. The `get_plain` paths.
pub(crate) fn read_plain<T: FromBytes + DeserializeOwned>(
    bytes: &[u8],
    codec: u32,
) -> Result<T, CodecError> {
    match codec {
        CODEC_PLAIN => T::read_from_bytes(bytes).map_err(|_| {
            CodecError::corrupt(&format!(
                "a plain message of {} bytes for a type of {}",
                bytes.len(),
                std::mem::size_of::<T>()
            ))
        }),
        CODEC_POSTCARD => decode_from_slice(bytes),
        other => Err(CodecError::corrupt(&format!("codec {other}"))),
    }
}
