//! [`Barrier`] and [`RawBarrier`]: a cyclic barrier for `n` parties that breaks instead of
//! hanging.
//!
//! # Processes that die
//!
//! * A party that dies **while waiting** at the barrier (after arriving, before the barrier
//!   trips) breaks it: every party records its pid and start time on arrival, and waiting
//!   parties check those at least every [`LIVENESS_CHECK`], so the others get
//!   [`BrokenBarrier`] / [`BarrierError::Broken`] instead of waiting forever. The barrier
//!   stays broken until [`reset`](RawBarrier::reset).
//! * A party that dies **inside the barrier's own bookkeeping** (holding its internal robust
//!   lock) breaks it too: the next party to take the lock is told the owner died.
//! * A party that dies **before arriving** cannot be told from a slow one: the others wait
//!   until their time-out, which breaks the barrier as in Python. Use
//!   [`wait_timeout`](RawBarrier::wait_timeout) when a party may die.
//! * A party killed after the barrier tripped but before it returned from `wait` changes
//!   nothing for the others.

use std::ops::Deref;
use std::time::{Duration, Instant};

use shm_segment::futex::deadline_after;
use shm_segment::{CreateError, ObjectKind, OpenError, ProcessId, fault};

use crate::error::{BarrierError, BrokenBarrier};
use crate::layout::{MAX_BARRIER_PARTIES, RawBarrier, RawLock};
use crate::lock::{LockGuard, Wait};
use crate::shared::{Shared, handle_common};
use crate::sync::Ordering;
use crate::sys::futex::{self, WaitOutcome};

/// The longest a party waits at a barrier without checking that the parties waiting with
/// it are still alive.
///
/// # Examples
///
/// ```
/// assert!(shm_lock::LIVENESS_CHECK <= std::time::Duration::from_secs(1));
/// ```
pub const LIVENESS_CHECK: Duration = Duration::from_millis(50);

const BROKEN: u32 = 1;

/// How a wait ended, before conversion to the public error types.
enum Ended {
    Passed(usize),
    Broken,
    Timeout,
}

impl RawBarrier {
    /// Initialises a barrier for `parties` parties in place.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for writes of a `RawBarrier`, 8-aligned, and unused until this
    /// returns.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 or above [`MAX_BARRIER_PARTIES`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::MaybeUninit;
    /// use shm_lock::RawBarrier;
    /// let mut memory = Box::new(MaybeUninit::<RawBarrier>::uninit());
    /// // SAFETY: the memory is ours, writable and aligned.
    /// let barrier = unsafe {
    ///     RawBarrier::init(memory.as_mut_ptr(), 1);
    ///     RawBarrier::from_ptr(memory.as_ptr())
    /// };
    /// assert_eq!(barrier.wait(), Ok(0));
    /// ```
    pub unsafe fn init(ptr: *mut RawBarrier, parties: usize) {
        assert!(
            (1..=MAX_BARRIER_PARTIES).contains(&parties),
            "a barrier needs 1 to {MAX_BARRIER_PARTIES} parties, not {parties}"
        );
        // SAFETY: valid for writes (caller). Everything after the lock is integers (atomics
        // have their integer's layout), for which all-zero is the initial state.
        unsafe {
            let after_lock = ptr.cast::<u8>().add(size_of::<RawLock>());
            after_lock.write_bytes(0, size_of::<RawBarrier>() - size_of::<RawLock>());
            RawLock::init(std::ptr::addr_of_mut!((*ptr).lock));
            std::ptr::addr_of_mut!((*ptr).parties)
                .cast::<u32>()
                .write(parties as u32);
        }
    }

    /// A reference to a barrier initialised with [`init`](Self::init).
    ///
    /// # Safety
    ///
    /// `ptr` must point to an initialised `RawBarrier`, mapped for `'a`.
    ///
    /// # Examples
    ///
    /// See [`init`](Self::init).
    pub unsafe fn from_ptr<'a>(ptr: *const RawBarrier) -> &'a RawBarrier {
        // SAFETY: the caller promises an initialised, mapped barrier; interior-mutable.
        unsafe { &*ptr }
    }

    /// Takes the internal lock. A party that died holding it leaves the bookkeeping
    /// unknown: the barrier is then broken.
    fn lock_state(&self) -> LockGuard<'_> {
        loop {
            match self.lock.lock_with(Wait::Until(None)) {
                Ok(taken) => match self.lock.guard(taken) {
                    Ok(guard) => return guard,
                    Err(guard) => {
                        self.break_locked();
                        guard.mark_consistent();
                        return guard;
                    }
                },
                // We always mark it consistent, so this means memory corruption; there is
                // nothing better to do than to keep the others from hanging.
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// Breaks the current generation (the internal lock is held).
    fn break_locked(&self) {
        let phase = self.phase.load(Ordering::Relaxed);
        if phase & BROKEN == 0 {
            self.outcomes
                .fetch_or(1 << ((phase >> 1) % 64), Ordering::Relaxed);
            // [barrier-phase] Release: pairs with the Acquire loads in `wait_inner`; the
            // outcome bit written above is visible to a waiter that sees the new phase.
            self.phase.store(phase | BROKEN, Ordering::Release);
            futex::wake_all(&self.phase);
        }
    }

    /// Ends the current generation (the internal lock is held): `broken` tells how.
    fn advance_locked(&self, broken: bool) {
        let phase = self.phase.load(Ordering::Relaxed);
        let generation = phase >> 1;
        let bit = 1u64 << (generation % 64);
        if broken || phase & BROKEN != 0 {
            self.outcomes.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.outcomes.fetch_and(!bit, Ordering::Relaxed);
        }
        let parties = self.count.swap(0, Ordering::Relaxed) as usize;
        for slot in &self.slots[..parties.min(MAX_BARRIER_PARTIES)] {
            slot.pid.store(0, Ordering::Relaxed);
            slot.start_time.store(0, Ordering::Relaxed);
        }
        // [barrier-phase] Release: pairs with the Acquire loads in `wait_inner`.
        self.phase
            .store(generation.wrapping_add(1) << 1, Ordering::Release);
        futex::wake_all(&self.phase);
    }

    /// Whether a party recorded in the current generation has died (lock held).
    fn dead_party_locked(&self) -> bool {
        let count = (self.count.load(Ordering::Relaxed) as usize).min(MAX_BARRIER_PARTIES);
        self.slots[..count].iter().any(|slot| {
            let pid = slot.pid.load(Ordering::Relaxed);
            let start_time = slot.start_time.load(Ordering::Relaxed);
            pid != 0 && !ProcessId { pid, start_time }.is_alive()
        })
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> Ended {
        let guard = self.lock_state();
        let phase = self.phase.load(Ordering::Relaxed);
        if phase & BROKEN != 0 {
            return Ended::Broken;
        }
        if self.dead_party_locked() {
            self.break_locked();
            return Ended::Broken;
        }
        let index = self.count.load(Ordering::Relaxed) as usize;
        let parties = self.parties() as usize;
        if index + 1 >= parties {
            self.advance_locked(false);
            return Ended::Passed(index);
        }
        let me = ProcessId::current();
        let slot = &self.slots[index];
        slot.pid.store(me.pid, Ordering::Relaxed);
        slot.start_time.store(me.start_time, Ordering::Relaxed);
        self.count.store(index as u32 + 1, Ordering::Relaxed);
        drop(guard);
        fault::point("shm_lock.barrier.wait.arrived");

        let generation = phase >> 1;
        loop {
            // [barrier-phase] Acquire: pairs with the Release stores in `break_locked` and
            // `advance_locked`.
            let now_phase = self.phase.load(Ordering::Acquire);
            if now_phase >> 1 != generation {
                let broken = self.outcomes.load(Ordering::Relaxed) & (1 << (generation % 64)) != 0;
                return if broken {
                    Ended::Broken
                } else {
                    Ended::Passed(index)
                };
            }
            if now_phase & BROKEN != 0 {
                return Ended::Broken;
            }
            let check_at = Instant::now() + LIVENESS_CHECK;
            let until = deadline.map_or(check_at, |d| d.min(check_at));
            if futex::wait(&self.phase, now_phase, Some(until)) != WaitOutcome::TimedOut {
                continue;
            }
            let _guard = self.lock_state();
            if self.phase.load(Ordering::Relaxed) != now_phase {
                continue; // it moved on meanwhile: read the outcome above
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.break_locked();
                return Ended::Timeout;
            }
            if self.dead_party_locked() {
                self.break_locked();
            }
        }
    }

    /// Waits until all parties have called `wait` (Python's `Barrier.wait`), and returns
    /// this party's arrival index, `0..parties` (the last to arrive gets `parties - 1`).
    ///
    /// # Errors
    ///
    /// [`BrokenBarrier`] when the barrier is or becomes broken: a party timed out, died
    /// while waiting, or aborted, or it was reset while this party waited.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = shm_lock::Barrier::new(2)?;
    /// let indexes = std::thread::scope(|s| {
    ///     let other = s.spawn(|| barrier.wait());
    ///     let mine = barrier.wait();
    ///     [mine, other.join().unwrap()]
    /// });
    /// let mut got: Vec<usize> = indexes.into_iter().map(Result::unwrap).collect();
    /// got.sort();
    /// assert_eq!(got, [0, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        match self.wait_inner(None) {
            Ended::Passed(index) => Ok(index),
            Ended::Broken | Ended::Timeout => Err(BrokenBarrier),
        }
    }

    /// Like [`wait`](Self::wait), for at most `timeout`; a time-out breaks the barrier for
    /// every party (as in Python).
    ///
    /// # Errors
    ///
    /// [`BarrierError::Timeout`] for the party that timed out, [`BarrierError::Broken`]
    /// otherwise as in [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let barrier = shm_lock::Barrier::new(1)?;
    /// assert_eq!(barrier.wait_timeout(Duration::from_millis(1)), Ok(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_until(deadline_after(timeout))
    }

    /// Like [`wait_timeout`](Self::wait_timeout) with an absolute deadline.
    ///
    /// # Errors
    ///
    /// As [`wait_timeout`](Self::wait_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = shm_lock::Barrier::new(2)?;
    /// let result = barrier.wait_until(Some(std::time::Instant::now()));
    /// assert_eq!(result, Err(shm_lock::BarrierError::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierError> {
        match self.wait_inner(deadline) {
            Ended::Passed(index) => Ok(index),
            Ended::Broken => Err(BarrierError::Broken),
            Ended::Timeout => Err(BarrierError::Timeout),
        }
    }

    /// Breaks the barrier (Python's `abort`): waiting and future parties get
    /// [`BrokenBarrier`] until [`reset`](Self::reset).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = shm_lock::Barrier::new(3)?;
    /// barrier.abort();
    /// assert!(barrier.is_broken());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn abort(&self) {
        let _guard = self.lock_state();
        self.break_locked();
    }

    /// Returns the barrier to its empty, unbroken state (Python's `reset`); parties waiting
    /// now get [`BrokenBarrier`].
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = shm_lock::Barrier::new(1)?;
    /// barrier.abort();
    /// barrier.reset();
    /// assert!(!barrier.is_broken());
    /// assert_eq!(barrier.wait(), Ok(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset(&self) {
        let _guard = self.lock_state();
        let phase = self.phase.load(Ordering::Relaxed);
        if phase & BROKEN != 0 || self.count.load(Ordering::Relaxed) > 0 {
            self.advance_locked(true);
        }
    }

    /// The number of parties needed to trip the barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Barrier::new(3)?.parties(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parties(&self) -> u32 {
        self.parties.load(Ordering::Relaxed)
    }

    /// The number of parties waiting now (Python's `n_waiting`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Barrier::new(3)?.n_waiting(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn n_waiting(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_lock::Barrier::new(3)?.is_broken());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_broken(&self) -> bool {
        self.phase.load(Ordering::Acquire) & BROKEN != 0
    }
}

impl std::fmt::Debug for RawBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBarrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// A cyclic barrier shared between processes (Python's `multiprocessing.Barrier`), in its
/// own segment. Operations come from [`RawBarrier`] through `Deref`; what a dying party
/// means for the others is in the [module docs](crate::barrier).
///
/// # Examples
///
/// ```
/// let barrier = shm_lock::Barrier::new(1)?;
/// assert_eq!(barrier.wait(), Ok(0));
/// assert_eq!(barrier.wait(), Ok(0)); // cyclic
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    shared: Shared<RawBarrier>,
}

impl Barrier {
    /// A new barrier for `parties` parties in an anonymous segment.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the segment cannot be made.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 or above [`MAX_BARRIER_PARTIES`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_lock::Barrier::new(4)?.parties(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(parties: usize) -> Result<Self, CreateError> {
        let shared =
            Shared::create_anonymous(ObjectKind::BARRIER, size_of::<RawBarrier>(), |raw| {
                // SAFETY: fresh segment memory, writable and aligned, seen by no one.
                unsafe { RawBarrier::init(raw, parties) }
            })?;
        Ok(Barrier { shared })
    }

    /// A new barrier for `parties` parties in the named segment `name`.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] and the other [`CreateError`]s.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 or above [`MAX_BARRIER_PARTIES`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-barrier-{}", std::process::id());
    /// let barrier = shm_lock::Barrier::create(&name, 2)?;
    /// assert_eq!(shm_lock::Barrier::open(&name)?.parties(), 2);
    /// # drop(barrier);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, parties: usize) -> Result<Self, CreateError> {
        let shared = Shared::create(ObjectKind::BARRIER, size_of::<RawBarrier>(), name, |raw| {
            // SAFETY: fresh segment memory; openers wait until it is ready.
            unsafe { RawBarrier::init(raw, parties) }
        })?;
        Ok(Barrier { shared })
    }

    /// Opens the barrier created under `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::KindMismatch`], [`OpenError::Corrupt`] for an
    /// impossible party count, and the other [`OpenError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_lock::Barrier::open("no-such-barrier").is_err());
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_shared(Shared::open(
            ObjectKind::BARRIER,
            size_of::<RawBarrier>(),
            name,
        )?)
    }

    fn from_shared(shared: Shared<RawBarrier>) -> Result<Self, OpenError> {
        let parties = shared.raw().parties() as usize;
        if !(1..=MAX_BARRIER_PARTIES).contains(&parties) {
            return Err(OpenError::Corrupt {
                segment: shared
                    .segment()
                    .name()
                    .map_or("anonymous segment".to_owned(), |n| format!("segment '{n}'")),
                reason: format!("barrier with {parties} parties"),
            });
        }
        Ok(Barrier { shared })
    }
}

impl Deref for Barrier {
    type Target = RawBarrier;

    fn deref(&self) -> &RawBarrier {
        self.shared.raw()
    }
}

handle_common!(
    Barrier,
    RawBarrier,
    ObjectKind::BARRIER,
    size_of::<RawBarrier>(),
    "Barrier::new(2)"
);
