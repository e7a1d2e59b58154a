//! Helpers shared by the integration tests of this crate.

#![allow(dead_code)]

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long a test waits for a child's marker or exit before failing.
pub const WAIT: Duration = Duration::from_secs(60);

/// The limit of every test's watchdog.
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// Environment variable through which a child receives a serialised queue handle.
pub const QUEUE_ENV: &str = "SHM_QUEUE_TEST_QUEUE";

/// A second handle variable, for tests with two queues.
pub const QUEUE2_ENV: &str = "SHM_QUEUE_TEST_QUEUE2";

/// A handle as a string for the environment of a child (anonymous queues travel as the
/// parent's pid and descriptor number; the parent keeps its handle open).
pub fn share<Q: Serialize>(queue: &Q) -> String {
    serde_json::to_string(queue).expect("serialise the queue handle")
}

/// In a child: the handle the parent passed in `var`.
pub fn from_env<Q: DeserializeOwned>(var: &str) -> Q {
    let token = std::env::var(var).expect("the parent passes the queue handle");
    serde_json::from_str(&token).expect("open the queue handle")
}

/// Waits, yielding, until `ready` holds (a handshake through the queue's own state).
pub fn spin_until(mut ready: impl FnMut() -> bool) {
    while !ready() {
        std::thread::yield_now();
    }
}
