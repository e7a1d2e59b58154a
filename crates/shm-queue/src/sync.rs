//! The one place atomics come from: std's, or loom's under `cfg(loom)` so that the ring
//! protocols can be model-checked on heap-backed copies of the layouts.

#[cfg(loom)]
pub(crate) use loom::hint::spin_loop;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use std::hint::spin_loop;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// A `SeqCst` fence under loom only, placed between two `SeqCst` accesses whose single
/// total order a protocol relies on (the `[close]` handshake of `Queue`).
///
/// loom models `SeqCst` loads, stores and read-modify-writes as acquire/release (a
/// documented limitation: it would report executions that real `SeqCst` accesses rule out),
/// but models `SeqCst` fences fully. With this fence after the first access of each side
/// (the claim, and the load of `closed`), the model forbids the same outcome that the
/// `SeqCst` accesses forbid in the real build, where the fence would only cost time.
#[inline(always)]
pub(crate) fn seq_cst_for_loom() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}
