//! Shared-memory segments for multiproc: the ground every other multiproc crate stands on.
//!
//! A [`Segment`] is a file in shared memory, mapped by every process that uses it:
//!
//! * **anonymous** ([`SegmentOptions::create_anonymous`], on `memfd_create`): no name, shared
//!   by passing the handle to other processes ([`transfer`]); the kernel frees it when the
//!   last holder exits, even after SIGKILL, so nothing can leak;
//! * **named** ([`SegmentOptions::create`], on `shm_open`): `/dev/shm/multiproc.<name>`,
//!   for unrelated processes that meet by name; the creating handle removes the name when
//!   dropped unless told to [`persist`](Segment::persist), and [`catalog::gc`] removes the
//!   segments of processes that died.
//!
//! Every segment starts with a versioned [`layout::Header`]: magic, layout version, object
//! kind, element-type fingerprint, lengths, creator (pid and start time), a growth
//! generation, the init state, and a table of attached processes. The creator publishes
//! "ready" only after initialising the object; openers wait a bounded time for it and
//! validate every field, so a segment of the wrong kind, type, version or size, or a
//! damaged one, is a typed [`OpenError`], never undefined behaviour or a SIGBUS.
//!
//! Space is reserved with `fallocate` at creation and at [`Segment::grow`], so a full
//! `/dev/shm` is an error at that moment. [`futex`] has the wait/wake helpers that the
//! locks and queues built on segments sleep with.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use shm_segment::{ObjectKind, SegmentOptions};
//!
//! # let name = format!("doc-crate-{}", std::process::id());
//! let opts = SegmentOptions::new(ObjectKind::RAW).len(8);
//! let mine = opts.create(&name)?;
//! let theirs = opts.open(&name)?; // in another process, typically
//! // SAFETY: 8 aligned bytes of data, used only atomically, in both handles.
//! let (a, b) = unsafe {
//!     (AtomicU64::from_ptr(mine.data().as_ptr().cast()), AtomicU64::from_ptr(theirs.data().as_ptr().cast()))
//! };
//! a.store(42, Ordering::Release);
//! assert_eq!(b.load(Ordering::Acquire), 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod kind;
mod name;
mod process;
mod segment;
mod sys;

pub mod catalog;
pub mod fault;
pub mod futex;
pub mod layout;
pub mod transfer;

pub use error::{CreateError, CreateOrOpenError, GrowError, InvalidName, OpenError, UnlinkError};
pub use kind::{ObjectKind, TypeFingerprint};
pub use name::{MAX_NAME_LEN, NAME_PREFIX, SegmentName};
pub use process::ProcessId;
pub use segment::{DEFAULT_INIT_TIMEOUT, Segment, SegmentOptions};

/// The page size segment lengths are rounded to.
///
/// # Examples
///
/// ```
/// assert!(shm_segment::page_size().is_power_of_two());
/// ```
pub fn page_size() -> usize {
    sys::page_size()
}
