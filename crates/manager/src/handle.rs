//! [`Handle`]: what every proxy holds — the manager's mapped segment and the offset of its
//! container's descriptor — and how proxies travel (serde) and check their types.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shm_segment::transfer::SegmentToken;
use shm_segment::{ObjectKind, Segment, SegmentOptions, TypeFingerprint};

use crate::error::{ContainerError, Error};
use crate::layout::{
    DESC_KEY_TYPE, DESC_KIND, DESC_VALUE_TYPE, HEAP_START, KIND_MASK, OFF_NONCE, kind_name,
};
use crate::registry;
use shm_lock::LockGuard;

use crate::store::{Mem, POINT_READ_TRIES, Snap, Store};

/// Segment options of every manager.
pub(crate) fn segment_options() -> SegmentOptions {
    SegmentOptions::new(ObjectKind::MANAGER)
}

/// A 64-bit type identity: the segment layer's fingerprint folded into one word.
pub(crate) fn type_id<T>() -> u64 {
    let fp = TypeFingerprint::of::<T>();
    fp.name_hash ^ (u64::from(fp.size) << 32 | u64::from(fp.align)).rotate_left(17)
}

/// `postcard` encoding.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(value).map_err(Error::Encode)
}

/// Runs `f` on the `postcard` encoding of `value`, encoded on the stack when small.
pub(crate) fn with_encoded<T: Serialize + ?Sized, R>(
    value: &T,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, Error> {
    let mut buf = [0u8; 48];
    match postcard::to_slice(value, &mut buf) {
        Ok(bytes) => Ok(f(bytes)),
        Err(postcard::Error::SerializeBufferFull) => Ok(f(&encode(value)?)),
        Err(e) => Err(Error::Encode(e)),
    }
}

/// `postcard` decoding.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(Error::Decode)
}

/// The shared part of every proxy.
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    pub(crate) store: Arc<Store>,
    pub(crate) desc: u64,
    /// The descriptor's kind word (kind and container id) while the container lives.
    pub(crate) kind: u64,
}

/// The serialised form of a proxy.
#[derive(Serialize, Deserialize)]
struct Wire {
    segment: SegmentToken,
    /// The manager's nonce (`Root::nonce`).
    manager: u64,
    desc: u64,
    kind: u64,
}

impl Handle {
    /// Checks that descriptor `desc` holds a `kind` container of the given types.
    pub(crate) fn check(
        m: &impl Mem,
        desc: u64,
        name: &str,
        kind: u64,
        types: (u64, u64),
        expected: impl FnOnce() -> String,
    ) -> Result<(), ContainerError> {
        let found = m.rd(desc + DESC_KIND) & KIND_MASK;
        if found != kind {
            return Err(ContainerError::KindMismatch {
                name: name.to_owned(),
                expected: kind_name(kind),
                found: kind_name(found),
            });
        }
        if (m.rd(desc + DESC_KEY_TYPE), m.rd(desc + DESC_VALUE_TYPE)) != types {
            return Err(ContainerError::TypeMismatch {
                name: name.to_owned(),
                expected: expected(),
            });
        }
        Ok(())
    }

    /// Whether the container still lives (was not removed) in the view `m`.
    #[inline(always)]
    fn live(&self, m: &impl Mem) -> bool {
        m.rd(self.desc + DESC_KIND) == self.kind
    }

    /// Takes the manager's lock for a mutation of this container.
    ///
    /// # Errors
    ///
    /// [`Error::Removed`]; the errors of [`Store::lock`].
    #[inline]
    pub(crate) fn lock(&self) -> Result<LockGuard<'_>, Error> {
        let guard = self.store.lock()?;
        if !self.live(&*self.store) {
            return Err(Error::Removed);
        }
        Ok(guard)
    }

    /// Runs the read `f` on a committed state of this container ([`Store::read`]).
    ///
    /// # Errors
    ///
    /// [`Error::Removed`]; the errors of [`Store::read`].
    #[inline]
    pub(crate) fn read<R>(
        &self,
        tries: u32,
        mut f: impl FnMut(&Snap<'_>) -> R,
    ) -> Result<R, Error> {
        self.store
            .read(tries, |m| self.live(m).then(|| f(m)))?
            .ok_or(Error::Removed)
    }

    pub(crate) fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            segment: self.store.seg.token(),
            manager: self.store.rd(OFF_NONCE),
            desc: self.desc,
            kind: self.kind,
        }
        .serialize(serializer)
    }

    /// Deserialises a handle and checks its kind and types.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
        kind: u64,
        types: (u64, u64),
        expected: impl Fn() -> String,
    ) -> Result<Handle, D::Error> {
        use serde::de::Error as _;
        let wire = Wire::deserialize(deserializer)?;
        let store = open_manager(&wire.segment, wire.manager)?;
        let in_range = wire
            .desc
            .checked_add(64)
            .is_some_and(|end| end <= store.seg.max_data_len() as u64);
        if !wire.desc.is_multiple_of(16) || wire.desc < HEAP_START || !in_range {
            return Err(D::Error::custom("container descriptor out of range"));
        }
        let handle = Handle {
            store,
            desc: wire.desc,
            kind: wire.kind,
        };
        handle
            .read(POINT_READ_TRIES, |m| {
                Handle::check(m, wire.desc, "<received>", kind, types, &expected)
            })
            .map_err(D::Error::custom)?
            .map_err(D::Error::custom)?;
        Ok(handle)
    }
}

/// The store of the manager segment `token` names: the one this process has mapped
/// already, if any, else the segment opened and attached. Nothing is opened when the
/// registry has it: an anonymous segment is looked up by the identity in the token, a
/// named one by the identity of the file that has the name now (it may be another
/// segment's than when the token was made).
fn open_token<E: serde::de::Error>(token: &SegmentToken) -> Result<Arc<Store>, E> {
    let identity = match token {
        SegmentToken::Anonymous { device, inode, .. } => Some((*device, *inode)),
        SegmentToken::Named { name } => Segment::identity_of(name),
    };
    if let Some(store) = identity.and_then(registry::lookup) {
        return Ok(store);
    }
    let seg = token.open(&segment_options()).map_err(E::custom)?;
    registry::attach(seg).map_err(E::custom)
}

/// The store of the manager with nonce `nonce` in the segment `token` names ([`open_token`]).
///
/// # Errors
///
/// Opening errors, and an error saying the manager is gone when the segment that has the
/// name now is another manager's (removed and created again under the name).
pub(crate) fn open_manager<E: serde::de::Error>(
    token: &SegmentToken,
    nonce: u64,
) -> Result<Arc<Store>, E> {
    let store = open_token(token)?;
    if store.rd(OFF_NONCE) != nonce {
        return Err(E::custom(
            "the manager is gone: another manager now has its name",
        ));
    }
    Ok(store)
}

/// Implements `Clone`, `Debug`, `Serialize` and `Deserialize` for a proxy type.
macro_rules! proxy_impls {
    ($ty:ident < $($p:ident),* >, $kind:expr, $types:expr, $expected:expr) => {
        impl<$($p),*> Clone for $ty<$($p),*> {
            fn clone(&self) -> Self {
                Self { handle: self.handle.clone(), _types: std::marker::PhantomData }
            }
        }

        impl<$($p),*> std::fmt::Debug for $ty<$($p),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty)).field("descriptor", &self.handle.desc).finish()
            }
        }

        impl<$($p),*> serde::Serialize for $ty<$($p),*> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.handle.serialize(s)
            }
        }

        impl<'de, $($p),*> serde::Deserialize<'de> for $ty<$($p),*> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let handle = crate::handle::Handle::deserialize(d, $kind, $types, $expected)?;
                Ok(Self { handle, _types: std::marker::PhantomData })
            }
        }
    };
}
pub(crate) use proxy_impls;
