//! multiproc: Python's `multiprocessing` rebuilt in Rust on shared memory.
//!
//! This facade re-exports the workspace's crates under one roof, with Python's names where
//! Python has one. Each crate is also usable on its own:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`segment`] | `shm-segment` | shared-memory segments, header, futex, handle transfer |
//!
//! # Examples
//!
//! ```
//! use multiproc::segment::{ObjectKind, SegmentOptions};
//! let seg = SegmentOptions::new(ObjectKind::RAW).len(4096).create_anonymous()?;
//! assert!(seg.data_len() >= 4096);
//! # Ok::<(), multiproc::segment::CreateError>(())
//! ```

pub use shm_segment as segment;
pub use shm_segment::{ObjectKind, ProcessId, Segment, SegmentOptions};
