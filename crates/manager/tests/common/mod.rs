//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

use std::time::Duration;

/// Generous bound for a child to reach a marker; a hang fails instead of stalling CI.
pub const STEP: Duration = Duration::from_secs(60);

/// The value of environment variable `key` in a child, or `make()` in the parent, so that a
/// test computes a value once and hands it down (the child re-runs the test function).
pub fn shared_env(key: &str, make: impl FnOnce() -> String) -> String {
    std::env::var(key).unwrap_or_else(|_| make())
}

/// A small deterministic generator (splitmix64), the same in parent and child.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
