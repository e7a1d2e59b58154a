//! Fault points: places where a test can park a process so that it can kill it exactly
//! there (see `RELIABILITY.md`).
//!
//! With the `fault-injection` feature, [`point`] checks the environment variable
//! [`PARK_ENV`]: when it names this point, the process prints `@@multiproc:parked:<name>` on
//! standard output and sleeps until it is killed. Without the feature, [`point`] is an empty
//! inline function and costs nothing. Other multiproc crates call it too, so enabling the
//! feature on this crate (as the test builds do) arms every point of the stack.

/// The environment variable naming the point to park at.
///
/// # Examples
///
/// ```
/// assert_eq!(shm_segment::fault::PARK_ENV, "MULTIPROC_FAULT_PARK");
/// ```
pub const PARK_ENV: &str = "MULTIPROC_FAULT_PARK";

/// Marks a fault point named `name` (`"crate.operation.moment"`).
///
/// # Examples
///
/// ```
/// // Does nothing unless the `fault-injection` feature is on and MULTIPROC_FAULT_PARK
/// // names this point.
/// shm_segment::fault::point("docs.example");
/// ```
#[inline(always)]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    armed::point(name);
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

#[cfg(feature = "fault-injection")]
mod armed {
    use std::io::Write;
    use std::sync::OnceLock;

    pub(super) fn point(name: &str) {
        static TARGET: OnceLock<Option<String>> = OnceLock::new();
        let target = TARGET.get_or_init(|| std::env::var(super::PARK_ENV).ok());
        if target.as_deref() == Some(name) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "@@multiproc:parked:{name}");
            let _ = out.flush();
            drop(out);
            loop {
                std::thread::park();
            }
        }
    }
}
