//! Spin-then-park blocking with a waiter count (an event count), shared by both queues.
//!
//! A blocked side first retries its operation `spin` times, then registers in `waiters`,
//! reads the futex word, retries once more and sleeps on the word. The other side, after
//! publishing, checks `waiters` and only then bumps the word and issues the wake syscall,
//! so that nobody pays for a futex call while nobody sleeps.
//!
//! The two `SeqCst` fences tagged `[park]` make this race-free: either the waker's fence
//! comes first in the single total order of `SeqCst` fences, and then the sleeper's retry
//! (after its own fence) sees what the waker published; or the sleeper's fence comes first,
//! and then the waker's load of `waiters` sees the registration and it wakes the sleeper,
//! whose futex wait either returns at once (the word changed) or is woken.

use std::time::{Duration, Instant};

use crate::sync::{AtomicU32, Ordering, fence, spin_loop};
use crate::sys;

/// How often a sleeper wakes to check whether the process it waits on died.
pub(crate) const OWNER_POLL: Duration = Duration::from_millis(10);

/// How often a sleeper that waits on nobody in particular still wakes to look again. A
/// waker SIGKILLed between publishing and its wake-up (for a batch: anywhere in the batch)
/// leaves what it published unannounced; this bounds how long a sleeper can miss it.
pub(crate) const LOST_WAKE_POLL: Duration = Duration::from_secs(1);

/// Default number of retries before sleeping. A retry with its pause costs roughly 10–20 ns,
/// so this spins for some 10–20 µs: about what a futex wake-up costs on the virtual machines
/// this was measured on (a raw futex round trip between two processes took 38–60 µs there),
/// so a waiting side whose peer answers within that time never pays for a sleep. Lower it
/// (`spin_limit`) when processes outnumber cores.
pub const DEFAULT_SPIN_LIMIT: u32 = 1000;

/// The outcome of one try of a blocking operation.
pub(crate) enum Attempt<R> {
    /// The operation finished (successfully or not).
    Done(R),
    /// It must wait. `poll`: it waits on a slot owned by another process, whose death only
    /// a periodic check can notice, so sleep at most [`OWNER_POLL`] (otherwise at most
    /// [`LOST_WAKE_POLL`]).
    Blocked { poll: bool },
}

/// A futex word and its waiter count.
#[derive(Clone, Copy)]
pub(crate) struct Event<'a> {
    pub seq: &'a AtomicU32,
    pub waiters: &'a AtomicU32,
}

impl Event<'_> {
    /// Wakes every sleeper, if there is any. Call after publishing (with `Release`) what
    /// the sleepers wait for.
    #[inline]
    pub(crate) fn notify(self) {
        // [park] SeqCst fence: pairs with the fence in `block_on`.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.notify_always();
        }
    }

    /// Bumps the word and wakes every sleeper unconditionally (for `close`).
    pub(crate) fn notify_always(self) {
        // [bump] Release: pairs with the Acquire load of the word in `block_on`.
        self.seq.fetch_add(1, Ordering::Release);
        sys::futex_wake_all(self.seq);
    }

    /// Sleepers registered now.
    pub(crate) fn waiters(self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }

    /// Runs `attempt` until it is done or `deadline` passes (`None`: never). `attempt`
    /// gets `true` when it should also check whether the owners of slots it waits on died
    /// (costly, so only done before sleeping). Returns `None` on time-out, which is never
    /// reported before the deadline.
    pub(crate) fn block_on<R>(
        self,
        spin: u32,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(bool) -> Attempt<R>,
    ) -> Option<R> {
        let mut spun = 0;
        loop {
            if let Attempt::Done(r) = attempt(false) {
                return Some(r);
            }
            if spun < spin {
                spun += 1;
                spin_loop();
                continue;
            }
            spun = 0;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            // [bump] Acquire: pairs with the Release increment in `notify_always`.
            let seen = self.seq.load(Ordering::Acquire);
            // [park] SeqCst fence: pairs with the fence in `notify`.
            fence(Ordering::SeqCst);
            let poll = match attempt(true) {
                Attempt::Done(r) => {
                    self.waiters.fetch_sub(1, Ordering::SeqCst);
                    return Some(r);
                }
                Attempt::Blocked { poll } => poll,
            };
            let next = Instant::now() + if poll { OWNER_POLL } else { LOST_WAKE_POLL };
            let until = Some(deadline.map_or(next, |d| d.min(next)));
            sys::futex_wait(self.seq, seen, until);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
