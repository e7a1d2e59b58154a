//! The segment behind every handle: creation with in-place initialisation, opening with
//! validation, and serde through the segment token.

use std::marker::PhantomData;
use std::sync::Arc;

use shm_segment::transfer::SegmentToken;
use shm_segment::{CreateError, ObjectKind, OpenError, Segment, SegmentOptions};

use crate::layout::fingerprint_of;

/// A segment holding one `R` (followed by `len - size_of::<R>()` more bytes for arrays).
pub(crate) struct Shared<R> {
    /// Shared by clones of one handle: they map the segment once.
    seg: Arc<Segment>,
    _raw: PhantomData<fn() -> R>,
}

impl<R> Clone for Shared<R> {
    fn clone(&self) -> Self {
        Shared {
            seg: Arc::clone(&self.seg),
            _raw: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Shared<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seg.name() {
            Some(name) => write!(f, "{} '{}'", self.seg.kind(), name),
            None => write!(f, "anonymous {}", self.seg.kind()),
        }
    }
}

fn options<R>(kind: ObjectKind, len: usize) -> SegmentOptions {
    SegmentOptions::new(kind)
        .fingerprint(fingerprint_of::<R>())
        .len(len)
}

impl<R> Shared<R> {
    /// Creates an anonymous segment of `len` data bytes and runs `init` on its data before
    /// anyone else can see it.
    pub(crate) fn create_anonymous(
        kind: ObjectKind,
        len: usize,
        init: impl FnOnce(*mut R),
    ) -> Result<Self, CreateError> {
        let seg = options::<R>(kind, len)
            .create_anonymous_with(|seg| init(seg.data().as_ptr().cast()))?;
        Ok(Shared {
            seg: Arc::new(seg),
            _raw: PhantomData,
        })
    }

    /// Creates the named segment `name`; openers wait until `init` has run.
    pub(crate) fn create(
        kind: ObjectKind,
        len: usize,
        name: &str,
        init: impl FnOnce(*mut R),
    ) -> Result<Self, CreateError> {
        let seg =
            options::<R>(kind, len).create_with(name, |seg| init(seg.data().as_ptr().cast()))?;
        Ok(Shared {
            seg: Arc::new(seg),
            _raw: PhantomData,
        })
    }

    /// Opens the named segment `name`, checking kind, type and that it holds `min_len`
    /// data bytes.
    pub(crate) fn open(kind: ObjectKind, min_len: usize, name: &str) -> Result<Self, OpenError> {
        Self::checked(options::<R>(kind, 0).open(name)?, min_len)
    }

    /// Opens the segment a deserialised token names, with the same checks as `open`.
    pub(crate) fn from_token(
        kind: ObjectKind,
        min_len: usize,
        token: &SegmentToken,
    ) -> Result<Self, OpenError> {
        Self::checked(token.open(&options::<R>(kind, 0))?, min_len)
    }

    fn checked(seg: Segment, min_len: usize) -> Result<Self, OpenError> {
        if seg.data_len() < min_len {
            return Err(OpenError::Corrupt {
                segment: match seg.name() {
                    Some(name) => format!("segment '{name}'"),
                    None => "anonymous segment".to_owned(),
                },
                reason: format!("{} data bytes, the object needs {min_len}", seg.data_len()),
            });
        }
        Ok(Shared {
            seg: Arc::new(seg),
            _raw: PhantomData,
        })
    }

    /// The shared object.
    pub(crate) fn raw(&self) -> &R {
        // SAFETY: the segment was created (by us or the process that created it) with at
        // least `size_of::<R>()` data bytes initialised as an `R` before it was marked
        // ready, and openers check the kind, the fingerprint of `R` and the length. The
        // data area is 128-aligned. `R` holds only atomics and `UnsafeCell`s, so a shared
        // reference to memory other processes write is sound. The mapping lives as long as
        // `self.seg`, which outlives the returned borrow.
        unsafe { &*self.seg.data().as_ptr().cast::<R>() }
    }

    /// Start of the data area.
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.seg.data().as_ptr()
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    pub(crate) fn token(&self) -> SegmentToken {
        self.seg.token()
    }
}

/// Implements `Serialize` (as the segment token), `Deserialize` (token, then open with the
/// right kind and type), `Deref` to the raw type, and the common accessors of a handle.
macro_rules! handle_common {
    ($handle:ident $(<$t:ident $(: $bound:path)?>)?, $raw:ty, $kind:expr, $min_len:expr, $new:literal) => {
        impl$(<$t $(: $bound)?>)? serde::Serialize for $handle$(<$t>)? {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.shared.token().serialize(serializer)
            }
        }

        impl<'de $(, $t $(: $bound)?)?> serde::Deserialize<'de> for $handle$(<$t>)? {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let token = shm_segment::transfer::SegmentToken::deserialize(deserializer)?;
                let shared = $crate::shared::Shared::<$raw>::from_token($kind, $min_len, &token)
                    .map_err(serde::de::Error::custom)?;
                Self::from_shared(shared).map_err(serde::de::Error::custom)
            }
        }

        impl$(<$t $(: $bound)?>)? $handle$(<$t>)? {
            /// The segment this handle maps: its name, creator, attached processes, and
            /// [`persist`](shm_segment::Segment::persist) for a named one.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let handle = shm_lock::", $new, "?;")]
            /// assert!(handle.segment().is_creator());
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn segment(&self) -> &shm_segment::Segment {
                self.shared.segment()
            }

            /// The name of a named object, `None` for an anonymous one.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let handle = shm_lock::", $new, "?;")]
            /// assert_eq!(handle.name(), None);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn name(&self) -> Option<&str> {
                self.shared.segment().name().map(|name| name.as_str())
            }
        }

        impl$(<$t $(: $bound)?>)? std::fmt::Debug for $handle$(<$t>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($handle), self.shared)
            }
        }
    };
}

pub(crate) use handle_common;
