//! What a segment holds: the object kind and the fingerprint of its element type.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of object a segment holds, recorded in its header so that opening a queue as a
/// lock fails with [`OpenError::KindMismatch`](crate::OpenError::KindMismatch).
///
/// The constants name every kind of the multiproc crates; codes from
/// [`ObjectKind::FIRST_USER_CODE`] up are free for other users.
///
/// # Examples
///
/// ```
/// use shm_segment::ObjectKind;
/// assert_eq!(ObjectKind::QUEUE.name(), "queue");
/// assert_eq!(ObjectKind::new(0x1_0001).to_string(), "kind#65537");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectKind(u32);

macro_rules! kinds {
    ($($(#[$doc:meta])* $konst:ident = $code:expr, $name:expr;)*) => {
        impl ObjectKind {
            $($(#[$doc])* pub const $konst: ObjectKind = ObjectKind($code);)*

            /// A short lowercase name (`"queue"`), or `None` for a user-defined code.
            ///
            /// # Examples
            ///
            /// ```
            /// use shm_segment::ObjectKind;
            /// assert_eq!(ObjectKind::LOCK.known_name(), Some("lock"));
            /// assert_eq!(ObjectKind::new(0x1_0000).known_name(), None);
            /// ```
            pub fn known_name(self) -> Option<&'static str> {
                match self.0 {
                    $($code => Some($name),)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// Plain bytes with no further structure.
    RAW = 1, "raw";
    /// `shm_lock::Lock`.
    LOCK = 2, "lock";
    /// `shm_lock::RLock`.
    RLOCK = 3, "rlock";
    /// `shm_lock::Semaphore`.
    SEMAPHORE = 4, "semaphore";
    /// `shm_lock::BoundedSemaphore`.
    BOUNDED_SEMAPHORE = 5, "bounded-semaphore";
    /// `shm_lock::Event`.
    EVENT = 6, "event";
    /// `shm_lock::Condition`.
    CONDITION = 7, "condition";
    /// `shm_lock::Barrier`.
    BARRIER = 8, "barrier";
    /// `shm_lock::Value`.
    VALUE = 9, "value";
    /// `shm_lock::Array`.
    ARRAY = 10, "array";
    /// `shm_queue::Queue`.
    QUEUE = 16, "queue";
    /// `shm_queue::SpscQueue`.
    SPSC_QUEUE = 17, "spsc-queue";
    /// `shm_queue::SimpleQueue`.
    SIMPLE_QUEUE = 18, "simple-queue";
    /// `shm_queue::JoinableQueue`.
    JOINABLE_QUEUE = 19, "joinable-queue";
    /// `shm_queue::Pipe`.
    PIPE = 20, "pipe";
    /// `shm_manager::Manager`.
    MANAGER = 32, "manager";
    /// `shm_manager::SharedDict`.
    DICT = 33, "dict";
    /// `shm_manager::SharedList`.
    LIST = 34, "list";
    /// `shm_manager::Namespace`.
    NAMESPACE = 35, "namespace";
}

impl ObjectKind {
    /// The first code free for kinds defined outside the multiproc crates.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::ObjectKind;
    /// const MY_KIND: ObjectKind = ObjectKind::new(ObjectKind::FIRST_USER_CODE + 7);
    /// assert_eq!(MY_KIND.known_name(), None);
    /// ```
    pub const FIRST_USER_CODE: u32 = 0x1_0000;

    /// A kind from its numeric code.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_segment::ObjectKind::new(16), shm_segment::ObjectKind::QUEUE);
    /// ```
    pub const fn new(code: u32) -> Self {
        ObjectKind(code)
    }

    /// The numeric code stored in the header.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_segment::ObjectKind::QUEUE.code(), 16);
    /// ```
    pub const fn code(self) -> u32 {
        self.0
    }

    /// The name, or `kind#CODE` for a code without one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_segment::ObjectKind::DICT.name(), "dict");
    /// ```
    pub fn name(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "kind#{}", self.0),
        }
    }
}

impl fmt::Debug for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKind({self})")
    }
}

/// The element type a segment was created for: size, alignment and a hash of the type's
/// name, so that opening a `Queue<u64>` as a `Queue<u32>` fails with
/// [`OpenError::TypeMismatch`](crate::OpenError::TypeMismatch).
///
/// The name hash depends on [`std::any::type_name`], which is stable for one build of a
/// program but not promised across compiler versions: processes that share typed segments
/// should be built by the same toolchain (as the binaries of one project are).
///
/// # Examples
///
/// ```
/// use shm_segment::TypeFingerprint;
/// let a = TypeFingerprint::of::<u64>();
/// assert_eq!(a, TypeFingerprint::of::<u64>());
/// assert_ne!(a, TypeFingerprint::of::<i64>());
/// assert_eq!((a.size, a.align), (8, 8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeFingerprint {
    /// `size_of::<T>()`.
    pub size: u32,
    /// `align_of::<T>()`.
    pub align: u32,
    /// FNV-1a 64 of `type_name::<T>()`.
    pub name_hash: u64,
}

impl TypeFingerprint {
    /// The fingerprint of an untyped segment.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::{ObjectKind, SegmentOptions, TypeFingerprint};
    /// let seg = SegmentOptions::new(ObjectKind::RAW).create_anonymous()?;
    /// assert_eq!(seg.fingerprint(), TypeFingerprint::NONE);
    /// # Ok::<(), shm_segment::CreateError>(())
    /// ```
    pub const NONE: TypeFingerprint = TypeFingerprint {
        size: 0,
        align: 0,
        name_hash: 0,
    };

    /// The fingerprint of `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::TypeFingerprint;
    /// assert_eq!(TypeFingerprint::of::<[u8; 3]>().size, 3);
    /// ```
    pub fn of<T>() -> Self {
        let size = std::mem::size_of::<T>();
        let align = std::mem::align_of::<T>();
        TypeFingerprint {
            size: u32::try_from(size).unwrap_or(u32::MAX),
            align: u32::try_from(align).unwrap_or(u32::MAX),
            name_hash: fnv1a(std::any::type_name::<T>().as_bytes()),
        }
    }
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl fmt::Display for TypeFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "size {} align {} name-hash {:016x}",
            self.size, self.align, self.name_hash
        )
    }
}
