//! [`Event`] and [`RawEvent`]: a manual-reset flag that processes wait on.
//!
//! A setter that dies never leaves anything half-done (`set` is one atomic operation); a
//! waiter killed while blocked is simply dropped from the kernel's futex queue. A process
//! that was going to set the event and died leaves it clear: waiters then see their
//! time-out, which is why every wait has a `wait_timeout` form.

use std::ops::Deref;
use std::time::{Duration, Instant};

use shm_segment::futex::deadline_after;
use shm_segment::{CreateError, ObjectKind, OpenError};

use crate::error::Timeout;
use crate::layout::RawEvent;
use crate::shared::{Shared, handle_common};
use crate::sync::Ordering;
use crate::sys::futex;

const FLAG: u32 = 1;

impl RawEvent {
    /// Initialises an event in place, clear.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for writes of a `RawEvent`, 4-aligned, and unused until this
    /// returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::MaybeUninit;
    /// use shm_lock::RawEvent;
    /// let mut memory = Box::new(MaybeUninit::<RawEvent>::uninit());
    /// // SAFETY: the memory is ours, writable and aligned.
    /// let event = unsafe {
    ///     RawEvent::init(memory.as_mut_ptr());
    ///     RawEvent::from_ptr(memory.as_ptr())
    /// };
    /// assert!(!event.is_set());
    /// ```
    pub unsafe fn init(ptr: *mut RawEvent) {
        // SAFETY: valid for writes (caller); two integers.
        unsafe { ptr.cast::<[u32; 2]>().write([0, 0]) }
    }

    /// A reference to an event initialised with [`init`](Self::init).
    ///
    /// # Safety
    ///
    /// `ptr` must point to an initialised `RawEvent`, mapped for `'a`.
    ///
    /// # Examples
    ///
    /// See [`init`](Self::init).
    pub unsafe fn from_ptr<'a>(ptr: *const RawEvent) -> &'a RawEvent {
        // SAFETY: the caller promises an initialised, mapped event; atomics only.
        unsafe { &*ptr }
    }

    /// Sets the flag and wakes every waiter, in every process.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = shm_lock::Event::new()?;
    /// event.set();
    /// assert!(event.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & FLAG != 0 {
                return;
            }
            let new = state.wrapping_add(2) | FLAG;
            // [event-set] Release (SeqCst): pairs with the Acquire loads in `is_set` and
            // `wait_until`, so what the setter wrote before `set` is visible to a waiter
            // that returns; SeqCst also orders it before the `waiters` load below (Dekker
            // with the waiter's increment).
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&self.state);
        }
    }

    /// Clears the flag.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = shm_lock::Event::new()?;
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) {
        self.state.fetch_and(!FLAG, Ordering::Relaxed);
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_lock::Event::new()?.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_set(&self) -> bool {
        // [event-set] Acquire: pairs with the Release in `set`.
        self.state.load(Ordering::Acquire) & FLAG != 0
    }

    /// Blocks until the flag is set. Returns at once if it is set; a `set` that happens
    /// while waiting wakes the waiter even if a `clear` follows at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = shm_lock::Event::new()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| event.set());
    ///     event.wait();
    /// });
    /// assert!(event.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) {
        let done = self.wait_until(None);
        debug_assert!(done.is_ok());
    }

    /// Blocks until the flag is set, at most `timeout` (monotonic clock; never fails
    /// earlier).
    ///
    /// # Errors
    ///
    /// [`Timeout`] when it was not set in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let event = shm_lock::Event::new()?;
    /// assert!(event.wait_timeout(Duration::from_millis(1)).is_err());
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(1)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.wait_until(deadline_after(timeout))
    }

    /// Like [`wait_timeout`](Self::wait_timeout) with an absolute deadline (`None`: none).
    ///
    /// # Errors
    ///
    /// [`Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// let event = shm_lock::Event::new()?;
    /// assert!(event.wait_until(Some(std::time::Instant::now())).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_until(&self, deadline: Option<Instant>) -> Result<(), Timeout> {
        // [event-set] Acquire: pairs with the Release in `set`.
        let seen = self.state.load(Ordering::Acquire);
        if seen & FLAG != 0 {
            return Ok(());
        }
        // Announce the wait (after reading `seen`, so a `set` that a caller of `waiters`
        // sees us waiting for is one we wake up for). With both sides SeqCst, either the
        // setter sees us counted and wakes us, or our futex wait sees its new value.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // The flag was clear; any change of the word is a `set` (a `clear` of a clear
        // flag changes nothing). `wait_until` loads with Acquire ([event-set]).
        let result = futex::wait_until(&self.state, |state| state != seen, deadline);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        result.map(drop).map_err(|_| Timeout)
    }

    /// How many threads (in all processes) are waiting for the flag now. A waiter killed
    /// while waiting stays counted, so this is an upper bound.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = shm_lock::Event::new()?;
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| event.wait());
    ///     while event.waiters() == 0 {
    ///         std::thread::yield_now();
    ///     }
    ///     event.set();
    ///     waiter.join().unwrap();
    /// });
    /// assert_eq!(event.waiters(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for RawEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEvent")
            .field("set", &self.is_set())
            .finish()
    }
}

/// A flag shared between processes that they can wait on (Python's
/// `multiprocessing.Event`), in its own segment. Operations come from [`RawEvent`] through
/// `Deref`.
///
/// # Examples
///
/// ```
/// let event = shm_lock::Event::new()?;
/// assert!(!event.is_set());
/// event.set();
/// event.wait();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Event {
    shared: Shared<RawEvent>,
}

impl Event {
    /// A new, clear event in an anonymous segment.
    ///
    /// # Errors
    ///
    /// [`CreateError`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shm_lock::Event::new()?.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Self, CreateError> {
        let shared = Shared::create_anonymous(ObjectKind::EVENT, size_of::<RawEvent>(), |raw| {
            // SAFETY: fresh segment memory, writable and aligned, seen by no one.
            unsafe { RawEvent::init(raw) }
        })?;
        Ok(Event { shared })
    }

    /// A new, clear event in the named segment `name`.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] and the other [`CreateError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// # let name = format!("doc-event-{}", std::process::id());
    /// let event = shm_lock::Event::create(&name)?;
    /// shm_lock::Event::open(&name)?.set();
    /// assert!(event.is_set());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str) -> Result<Self, CreateError> {
        let shared = Shared::create(ObjectKind::EVENT, size_of::<RawEvent>(), name, |raw| {
            // SAFETY: fresh segment memory; openers wait until it is ready.
            unsafe { RawEvent::init(raw) }
        })?;
        Ok(Event { shared })
    }

    /// Opens the event created under `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::KindMismatch`] and the other [`OpenError`]s.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_lock::Event::open("no-such-event").is_err());
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_shared(Shared::open(
            ObjectKind::EVENT,
            size_of::<RawEvent>(),
            name,
        )?)
    }

    fn from_shared(shared: Shared<RawEvent>) -> Result<Self, OpenError> {
        Ok(Event { shared })
    }
}

impl Deref for Event {
    type Target = RawEvent;

    fn deref(&self) -> &RawEvent {
        self.shared.raw()
    }
}

handle_common!(
    Event,
    RawEvent,
    ObjectKind::EVENT,
    size_of::<RawEvent>(),
    "Event::new()"
);
