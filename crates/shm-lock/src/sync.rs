//! The atomics the algorithms of this crate use, from one place.
//!
//! The types that live in shared memory hold `std` atomics directly (they have the same
//! layout as the integers, and the futex helpers take `&AtomicU32`). Every algorithm imports
//! them from here, so a model checker can be switched in at one spot: under `cfg(loom)` they
//! are loom's, and the layouts are built on the heap by [`crate::loom_support`] instead of
//! in a segment (loom atomics do not have the integers' layout).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
