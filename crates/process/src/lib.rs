//! Processes with Python's `multiprocessing` semantics, built for Rust.
//!
//! * [`Process`]: run a `fn(A) -> R` in a child process and get its result back by
//!   [`join`](Process::join); `start`, `join_timeout`, `is_alive`, `terminate`, `kill`,
//!   `pid`, `name`, `exitcode`, `daemon` as in Python. The *spawn* start method re-executes
//!   this binary ([`init`] at the top of `main` runs the child's function), so it copies no
//!   parent state and is safe from threaded parents; [`Process::fork`] offers the *fork*
//!   method for single-threaded ones.
//! * [`Pool`]: Python's process pool — `map`, `imap`, `imap_unordered`, `starmap`,
//!   `apply`, `apply_async`, `map_async`, `close`, `terminate`, `join` — over shm-queue; a
//!   worker that dies fails only the task it was running and is replaced.
//! * [`current_process`], [`parent_process`], [`active_children`], [`cpu_count`].
//!
//! # Examples
//!
//! ```
//! use shm_process::Process;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     shm_process::init(); // in a child, runs its function and exits here
//!     let mut p = Process::spawn(square, 9)?;
//!     assert_eq!(p.join()?, 81);
//!     Ok(())
//! }
//! ```

#![allow(
    clippy::needless_doctest_main,
    reason = "the examples show that init() goes first in main"
)]

mod child;
mod current;
mod error;
mod pool;
mod probe;
mod process;
mod spawn;
mod sys;

pub use current::{ProcessInfo, active_children, cpu_count, current_process, parent_process};
pub use error::{ForkError, JoinTimeoutError, ProcessError, StartError};
pub use pool::{AsyncResult, Imap, ImapUnordered, Pool, PoolBuilder, PoolError};
pub use process::Process;

/// Makes this program able to act as a spawned child: call it first in `main`.
///
/// In a process started by [`Process::spawn`], it runs the requested function, reports
/// its result to the parent and exits, so the rest of `main` never runs there. In any other
/// process it returns at once (it reads one environment variable).
///
/// # Examples
///
/// ```
/// fn main() {
///     shm_process::init();
///     // ... the program proper
/// }
/// ```
pub fn init() {
    spawn::run_if_child();
}

/// Runs [`init`] before `main`, for binaries whose `main` you do not write — test harnesses
/// above all. Put it once at the top level of each test file (integration-test crate) that
/// spawns processes.
///
/// It places a function in the ELF `.init_array`, which the loader runs before `main`.
///
/// # Examples
///
/// ```
/// // tests/my_test.rs
/// shm_process::init_before_main!();
///
/// fn double(x: u32) -> u32 { x * 2 }
///
/// // #[test]
/// fn doubles_in_a_child() {
///     let mut p = shm_process::Process::spawn(double, 21).unwrap();
///     assert_eq!(p.join().unwrap(), 42);
/// }
/// # doubles_in_a_child();
/// ```
#[macro_export]
macro_rules! init_before_main {
    () => {
        #[used]
        #[unsafe(link_section = ".init_array")]
        static __SHM_PROCESS_INIT_BEFORE_MAIN: extern "C" fn() = {
            extern "C" fn init_before_main() {
                $crate::init();
            }
            init_before_main
        };
    };
}
