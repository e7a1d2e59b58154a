//! Helpers for multiproc's tests: prove behaviour across real processes.
//!
//! This crate is unpublished; every integration test of the workspace uses it.
//!
//! # Contents
//!
//! - [`mod@child`]: run a closure of the current test in a child process (the test binary
//!   re-executed), talk to it over stdin/stdout markers, park it at a fault point, kill it.
//!   Also the [`test_name!`] macro that names the running test.
//! - [`mod@watchdog`]: abort the whole test binary when a test hangs, instead of stalling CI.
//! - [`mod@names`]: unique, valid shared-memory names and a `/dev/shm` leak check.
//! - [`mod@iterations`]: shrink or grow long loops with `MULTIPROC_TEST_ITERATIONS_SCALE`.
//! - [`mod@env`]: `is_root`, `have_program`, `skip`, and the `MULTIPROC_TEST_TIME_SCALE` knob
//!   that stretches every timeout of this crate.
//!
//! # Environment knobs
//!
//! | variable | effect |
//! |---|---|
//! | `MULTIPROC_TEST_CHILD` | set by [`run_child`] in the child: the role it must play |
//! | `MULTIPROC_FAULT_PARK` | name of the fault point where a library process parks |
//! | `MULTIPROC_TEST_TIME_SCALE` | multiplies watchdog limits and child timeouts (default 1.0) |
//! | `MULTIPROC_TEST_ITERATIONS_SCALE` | multiplies counts from [`iterations()`] (default 1.0) |
//!
//! # Example
//!
//! A test that runs a child, waits until it is ready, sends it a line and checks that it
//! exits successfully:
//!
//! ```no_run
//! use std::time::Duration;
//! use test_support::{run_child, signal_parent, test_name, wait_parent_line, Watchdog};
//!
//! # fn main() {
//! // #[test]
//! // fn child_echoes() {
//! let _watchdog = Watchdog::new(Duration::from_secs(60));
//! let mut child = run_child(&test_name!(), "echo", || {
//!     // Runs only in the child process.
//!     signal_parent("ready");
//!     let line = wait_parent_line();
//!     assert_eq!(line, "hello");
//! });
//! // Runs only in the parent process.
//! child.wait_line("ready", Duration::from_secs(10)).unwrap();
//! child.send_line("hello").unwrap();
//! child.wait_success(Duration::from_secs(10));
//! // }
//! # }
//! ```

pub mod child;
pub mod env;
pub mod iterations;
pub mod names;
pub mod watchdog;

pub use child::{
    CHILD_ENV, ChildBuilder, ChildError, ChildHandle, FAULT_PARK_ENV, MARKER_PREFIX, child_builder,
    child_role, run_child, signal_parent, signal_parent_with, wait_parent_line,
};
pub use env::{TIME_SCALE_ENV, have_program, is_root, scaled, skip, time_scale};
pub use iterations::{ITERATIONS_SCALE_ENV, iterations};
pub use names::{SHM_NAME_PREFIX, ShmLeakCheck, shm_entries, unique_name};
pub use watchdog::{Watchdog, watchdog};
