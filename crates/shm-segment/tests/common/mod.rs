//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shm_segment::Segment;

/// Generous bound for a child to reach a marker; a hang fails instead of stalling CI.
pub const STEP: Duration = Duration::from_secs(20);

/// The `index`-th `u64` word of the segment's data, as an atomic.
pub fn word(seg: &Segment, index: usize) -> &AtomicU64 {
    assert!(
        (index + 1) * 8 <= seg.data_len(),
        "word {index} is outside the mapped data"
    );
    // SAFETY: in bounds (checked above), 8-aligned (the data area is 128-aligned), and the
    // words are only ever accessed atomically, in every process.
    unsafe { AtomicU64::from_ptr(seg.data().as_ptr().cast::<u64>().add(index)) }
}

pub fn load(seg: &Segment, index: usize) -> u64 {
    word(seg, index).load(Ordering::Acquire)
}

pub fn store(seg: &Segment, index: usize, value: u64) {
    word(seg, index).store(value, Ordering::Release);
}

/// The value of environment variable `key` in a child, or `make()` in the parent, so that a
/// test computes a name once and hands it down (the child re-runs the test function).
pub fn shared_env(key: &str, make: impl FnOnce() -> String) -> String {
    std::env::var(key).unwrap_or_else(|_| make())
}

/// Path of a named segment's file.
pub fn shm_path(name: &str) -> String {
    format!("/dev/shm/multiproc.{name}")
}
