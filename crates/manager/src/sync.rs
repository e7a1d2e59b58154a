//! The one place atomics come from: std's, or loom's under `cfg(loom)` so that the commit
//! and read protocol of [`journal`](crate::journal) can be model-checked on a heap-backed
//! copy of the root's words.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{Ordering, fence};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{Ordering, fence};
