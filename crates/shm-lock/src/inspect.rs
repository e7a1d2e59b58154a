//! A read-only view of a lock segment's state, for tools such as `multiproc inspect`.
//!
//! [`describe`] reads any segment of this crate (`Lock`, `RLock`, `Semaphore`,
//! `BoundedSemaphore`, `Event`, `Condition`, `Barrier`, `Value`, `Array`) without knowing its
//! element type. It checks the segment's size first, then reads the shared words with
//! relaxed atomic loads: it never takes the lock it describes, so it cannot block behind a
//! holder, alive or dead. The answer is a snapshot that other processes may change at once.
//!
//! A lock's holder comes from glibc's robust mutex: the futex word holds the owning thread's
//! kernel id (TID) with flag bits, and `FUTEX_OWNER_DIED` once the kernel released it for a
//! dead owner; `__data.__owner` keeps the last owner's TID. The TID is mapped to its process
//! through `/proc/TID/status` (`Tgid:`).

use std::mem::size_of;

use serde::Serialize;
use shm_segment::{ObjectKind, Segment};

use crate::layout::{
    ARRAY_DATA_OFFSET, MutexCell, RawArrayHeader, RawBarrier, RawCondition, RawEvent, RawLock,
    RawRLock, RawSemaphore,
};
use crate::sync::{AtomicU32, Ordering};

/// Why a segment could not be described.
///
/// # Examples
///
/// ```
/// use shm_segment::{ObjectKind, SegmentOptions};
/// let seg = SegmentOptions::new(ObjectKind::QUEUE).len(64).create_anonymous()?;
/// let err = shm_lock::inspect::describe(&seg).unwrap_err();
/// assert!(matches!(err, shm_lock::inspect::InspectError::WrongKind { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The segment holds a kind of object that is not from this crate.
    #[error("a {kind} segment is not a shm-lock object")]
    WrongKind {
        /// The kind in the segment's header.
        kind: ObjectKind,
    },
    /// The segment is too small for its kind.
    #[error("damaged segment: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
}

/// The process holding a lock, as far as the lock's memory tells.
///
/// # Examples
///
/// ```
/// let lock = shm_lock::Lock::new()?;
/// let Ok(_guard) = lock.acquire() else { panic!("free lock") };
/// let holder = shm_lock::inspect::holder(&lock).expect("held");
/// assert_eq!(holder.pid, Some(std::process::id()));
/// assert!(holder.alive);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The holding process (the thread's `Tgid`); `None` once the thread is gone, when its
    /// process can no longer be told from its TID.
    pub pid: Option<u32>,
    /// The holding thread's kernel id.
    pub tid: u32,
    /// Whether the holding thread still runs. `false` after the owner died, until the next
    /// locker recovers the lock.
    pub alive: bool,
}

/// A snapshot of a shm-lock object, by kind.
///
/// # Examples
///
/// ```
/// use shm_lock::inspect::{LockState, describe};
/// let sem = shm_lock::BoundedSemaphore::new(3)?;
/// let _permit = sem.acquire();
/// assert_eq!(describe(sem.segment())?, LockState::Semaphore { value: 2, limit: Some(3), waiters: 0 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LockState {
    /// A `Lock`, or the lock of a `Condition`.
    Lock {
        /// Who holds it; `None` when free.
        holder: Option<Holder>,
    },
    /// An `RLock`.
    RLock {
        /// Who holds it; `None` when free.
        holder: Option<Holder>,
        /// The holder's re-entry depth (0 when free).
        count: u32,
    },
    /// A `Semaphore` or `BoundedSemaphore`.
    Semaphore {
        /// Free permits.
        value: u32,
        /// The most permits (a `BoundedSemaphore`); `None` when unbounded.
        limit: Option<u32>,
        /// Threads asleep or about to sleep in `acquire` (may overcount after a kill).
        waiters: u32,
    },
    /// An `Event`.
    Event {
        /// Whether the flag is set.
        set: bool,
        /// Threads asleep or about to sleep in `wait` (may overcount after a kill).
        waiters: u32,
    },
    /// A `Condition`.
    Condition {
        /// Who holds its lock; `None` when free.
        holder: Option<Holder>,
    },
    /// A `Barrier`.
    Barrier {
        /// Parties needed to trip it.
        parties: u32,
        /// Parties waiting now.
        waiting: u32,
        /// Whether it is broken.
        broken: bool,
    },
    /// A `Value<T>`.
    Value {
        /// `size_of::<T>()` (from the segment's type fingerprint).
        type_size: u32,
        /// Who holds its lock; `None` when free.
        holder: Option<Holder>,
    },
    /// An `Array<T>`.
    Array {
        /// Number of elements.
        len: u64,
        /// Bytes of the elements' area of the segment.
        data_bytes: u64,
        /// Who holds its lock; `None` when free.
        holder: Option<Holder>,
    },
}

/// Describes a segment of this crate.
///
/// # Errors
///
/// [`InspectError::WrongKind`] for a segment of another crate, [`InspectError::Corrupt`]
/// for one too small for its kind.
///
/// # Examples
///
/// ```
/// use shm_lock::inspect::{LockState, describe};
/// let barrier = shm_lock::Barrier::new(4)?;
/// assert_eq!(describe(barrier.segment())?, LockState::Barrier { parties: 4, waiting: 0, broken: false });
/// let event = shm_lock::Event::new()?;
/// event.set();
/// assert!(matches!(describe(event.segment())?, LockState::Event { set: true, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn describe(seg: &Segment) -> Result<LockState, InspectError> {
    let kind = seg.kind();
    Ok(match kind {
        ObjectKind::LOCK => LockState::Lock {
            holder: mutex_holder(&raw::<RawLock>(seg)?.mutex),
        },
        ObjectKind::RLOCK => {
            let r = raw::<RawRLock>(seg)?;
            let holder = mutex_holder(&r.mutex);
            LockState::RLock {
                holder,
                count: holder.map_or(0, |_| r.count.load(Ordering::Relaxed)),
            }
        }
        ObjectKind::SEMAPHORE | ObjectKind::BOUNDED_SEMAPHORE => {
            let s = raw::<RawSemaphore>(seg)?;
            let limit = s.limit.load(Ordering::Relaxed);
            LockState::Semaphore {
                value: s.value.load(Ordering::Relaxed),
                limit: (limit != u32::MAX).then_some(limit),
                waiters: s.sleepers.load(Ordering::Relaxed),
            }
        }
        ObjectKind::EVENT => {
            let e = raw::<RawEvent>(seg)?;
            LockState::Event {
                set: e.state.load(Ordering::Relaxed) & 1 != 0,
                waiters: e.waiters.load(Ordering::Relaxed),
            }
        }
        ObjectKind::CONDITION => LockState::Condition {
            holder: mutex_holder(&raw::<RawCondition>(seg)?.lock.mutex),
        },
        ObjectKind::BARRIER => {
            let b = raw::<RawBarrier>(seg)?;
            LockState::Barrier {
                parties: b.parties.load(Ordering::Relaxed),
                waiting: b.count.load(Ordering::Relaxed),
                broken: b.phase.load(Ordering::Relaxed) & 1 != 0,
            }
        }
        ObjectKind::VALUE => LockState::Value {
            // The fingerprint is that of `RawValue<T>`: the lock, then `T`.
            type_size: seg
                .fingerprint()
                .size
                .saturating_sub(size_of::<RawLock>() as u32),
            holder: mutex_holder(&raw::<RawLock>(seg)?.mutex),
        },
        ObjectKind::ARRAY => {
            let a = raw::<RawArrayHeader<u8>>(seg)?;
            LockState::Array {
                len: a.len.load(Ordering::Relaxed),
                data_bytes: seg.data_len().saturating_sub(ARRAY_DATA_OFFSET) as u64,
                holder: mutex_holder(&a.lock.mutex),
            }
        }
        kind => return Err(InspectError::WrongKind { kind }),
    })
}

/// Who holds `lock`, read from its memory without taking it; `None` when it is free.
///
/// # Examples
///
/// ```
/// let lock = shm_lock::Lock::new()?;
/// assert_eq!(shm_lock::inspect::holder(&lock), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn holder(lock: &RawLock) -> Option<Holder> {
    mutex_holder(&lock.mutex)
}

/// The `R` at the start of `seg`'s data area, after checking that it fits.
fn raw<R>(seg: &Segment) -> Result<&R, InspectError> {
    if seg.data_len() < size_of::<R>() {
        return Err(InspectError::Corrupt {
            reason: format!(
                "{} data bytes, a {} needs {}",
                seg.data_len(),
                seg.kind(),
                size_of::<R>()
            ),
        });
    }
    // SAFETY: at least size_of::<R>() bytes are mapped at the data area, which is 128-byte
    // aligned (more than any `R` here needs), for as long as `seg` lives. The `R`s here
    // hold only atomics and a pthread mutex that this module reads only through atomic
    // loads (below), so any bit pattern is fine to read.
    Ok(unsafe { &*seg.data().as_ptr().cast::<R>() })
}

/// glibc's futex word: the owner's TID in the low 30 bits.
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Set by the kernel when it released the mutex of a thread that died.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// Byte offset of `__data.__owner` in glibc's x86-64 / aarch64 `pthread_mutex_t`.
const OWNER_OFFSET: usize = 8;

fn mutex_holder(cell: &MutexCell) -> Option<Holder> {
    let base = cell.get().cast::<u32>();
    // SAFETY: the cell is 48 bytes, 8-aligned, and lives as long as `cell`; words 0
    // (`__lock`) and 2 (`__owner`) are 4-aligned u32s inside it. Other processes change
    // them with atomic operations (the futex word) or plain stores by the owner
    // (`__owner`); reading them atomically is a snapshot and never undefined behaviour
    // for us, since we never write.
    let (word, owner) = unsafe {
        (
            AtomicU32::from_ptr(base).load(Ordering::Relaxed),
            AtomicU32::from_ptr(base.add(OWNER_OFFSET / 4)).load(Ordering::Relaxed),
        )
    };
    let tid = word & FUTEX_TID_MASK;
    if tid != 0 {
        let (pid, alive) = thread_process(tid).unzip();
        return Some(Holder {
            pid,
            tid,
            alive: alive.unwrap_or(false),
        });
    }
    if word & FUTEX_OWNER_DIED != 0 {
        // Released by the kernel for a dead owner and not recovered yet: `__owner` still
        // names the dead thread.
        let tid = owner & FUTEX_TID_MASK;
        let pid = thread_process(tid).map(|(pid, _)| pid);
        return Some(Holder {
            pid,
            tid,
            alive: false,
        });
    }
    None
}

/// The process (`Tgid`) of thread `tid` and whether the thread runs (not a zombie);
/// `None` when it is gone.
fn thread_process(tid: u32) -> Option<(u32, bool)> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let pid = field("Tgid:").and_then(|v| v.parse().ok()).unwrap_or(tid);
    let alive = !field("State:").is_some_and(|s| s.starts_with('Z') || s.starts_with('X'));
    Some((pid, alive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlock_value_and_array_states() {
        let rlock = crate::RLock::new().unwrap();
        let outer = rlock.acquire().unwrap();
        let inner = rlock.acquire().unwrap();
        match describe(rlock.segment()).unwrap() {
            LockState::RLock {
                holder: Some(h),
                count,
            } => {
                assert_eq!((h.pid, h.alive, count), (Some(std::process::id()), true, 2));
            }
            other => panic!("{other:?}"),
        }
        drop((inner, outer));
        assert_eq!(
            describe(rlock.segment()).unwrap(),
            LockState::RLock {
                holder: None,
                count: 0
            }
        );

        let value = crate::Value::new(5u64).unwrap();
        assert_eq!(
            describe(value.segment()).unwrap(),
            LockState::Value {
                type_size: 8,
                holder: None
            }
        );
        let array = crate::Array::<u32>::new(10).unwrap();
        match describe(array.segment()).unwrap() {
            LockState::Array {
                len, data_bytes, ..
            } => assert!(len == 10 && data_bytes >= 40),
            other => panic!("{other:?}"),
        }
    }
}
