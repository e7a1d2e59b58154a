//! Helpers shared by the integration tests of shm-lock.

#![allow(dead_code)]

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use test_support::ChildHandle;

/// Generous limit for one handshake with a child (the watchdog bounds the whole test).
pub const WAIT: Duration = Duration::from_secs(60);

/// Limit for a whole cross-process test.
pub const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Sends `value` to the child as one JSON line.
pub fn send<T: Serialize>(child: &mut ChildHandle, value: &T) {
    let line = serde_json::to_string(value).expect("serialise for the child");
    child.send_line(&line).expect("send a line to the child");
}

/// In a child: receives one JSON line from the parent.
pub fn recv<T: DeserializeOwned>() -> T {
    let line = test_support::wait_parent_line();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("cannot decode {line:?}: {e}"))
}

/// A small xorshift generator, seeded from the clock and printed, for kill points.
pub struct Rng(u64);

impl Rng {
    pub fn from_clock() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        println!("rng seed {seed:#x}");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Parks the calling (child) process forever; the parent kills it.
pub fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}
