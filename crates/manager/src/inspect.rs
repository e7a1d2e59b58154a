//! A summary of a manager, for tools such as `multiproc inspect`: every container's kind,
//! length and shared-memory bytes, and the segment's totals.
//!
//! [`describe`] never waits: it tries the manager's robust lock once and reports
//! [`InspectError::Busy`] (with the holder, read from the lock's memory) when another
//! thread holds it. A lock left by a dead holder is recovered first (its committed
//! mutation replayed), as any user of the manager would. Holding the lock, it reads the
//! directory and the descriptors in place, without decoding any key or value, so it needs
//! no type parameters.

use serde::Serialize;

use crate::Manager;
use crate::error::Error;
use crate::layout::{
    DESC_A, DESC_B, DESC_C, DESC_KIND, HEAP_START, KIND_DICT, KIND_LIST, KIND_MASK, KIND_NAMESPACE,
    KIND_VALUE, NCLASSES, OFF_HEAP_TOP, class_size, kind_name,
};
use crate::raw_dict;
use crate::store::{Mem, Store};

/// Why a manager could not be described.
///
/// # Examples
///
/// ```
/// let err = shm_manager::inspect::InspectError::Busy { holder: None };
/// assert!(err.to_string().contains("busy"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// Another thread holds the manager's lock; try again.
    #[error("the manager is busy: its lock is held{}", match holder {
        Some(h) => format!(" by thread {}{}", h.tid, if h.alive { "" } else { " (dead)" }),
        None => String::new(),
    })]
    Busy {
        /// The lock's holder, as its memory tells.
        holder: Option<shm_lock::inspect::Holder>,
    },
    /// Taking the lock or reading the segment failed.
    #[error(transparent)]
    Manager(#[from] Error),
}

/// One container of a manager.
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// m.list::<u8>("l")?.extend([1, 2, 3])?;
/// let state = shm_manager::inspect::describe(&m)?;
/// let l = &state.containers[0];
/// assert_eq!((l.name.as_str(), l.kind, l.len), ("l", "list", 3));
/// assert!(l.bytes > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ContainerState {
    /// Its name in the manager.
    pub name: String,
    /// `"dict"`, `"list"`, `"value"` or `"namespace"`.
    pub kind: &'static str,
    /// Entries (dict, namespace), elements (list), or 1 / 0 for a set / unset value.
    pub len: u64,
    /// Heap bytes its blocks take: descriptor, table or array, entries (headers and
    /// size-class rounding included).
    pub bytes: u64,
}

/// A snapshot of a manager.
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// m.dict::<u32, u32>("d")?.insert(&1, &2)?;
/// let state = shm_manager::inspect::describe(&m)?;
/// assert_eq!(state.containers.len(), 1);
/// assert!(state.heap_bytes <= state.used_bytes && state.used_bytes <= state.max_bytes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ManagerState {
    /// The containers, sorted by name.
    pub containers: Vec<ContainerState>,
    /// Bytes of the heap in use or on free lists (from its start to its top).
    pub heap_bytes: u64,
    /// Data bytes the segment holds now.
    pub used_bytes: u64,
    /// The cap on the segment's data bytes.
    pub max_bytes: u64,
}

/// Describes `manager` without waiting for its lock.
///
/// # Errors
///
/// [`InspectError::Busy`] while another thread holds the lock; [`InspectError::Manager`]
/// when the lock is not recoverable or the segment cannot be read.
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// m.dict::<String, u32>("ages")?.insert(&"ann".into(), &31)?;
/// m.list::<u32>("squares")?.extend([0, 1, 4])?;
/// let state = shm_manager::inspect::describe(&m)?;
/// let summary: Vec<_> = state.containers.iter().map(|c| (c.kind, c.len)).collect();
/// assert_eq!(summary, [("dict", 1), ("list", 3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn describe(manager: &Manager) -> Result<ManagerState, InspectError> {
    let st = &*manager.store;
    let Some(_guard) = st.try_lock()? else {
        return Err(InspectError::Busy {
            holder: shm_lock::inspect::holder(st.raw_lock()),
        });
    };
    let mut containers = Vec::new();
    for entry in raw_dict::entries(st, st.directory()) {
        let mut key = Vec::new();
        raw_dict::read_key(st, entry, &mut key);
        let mut value = Vec::new();
        raw_dict::read_value(st, entry, &mut value);
        let desc = u64::from_le_bytes(value.try_into().map_err(|_| Error::Corrupt {
            reason: "directory entry".into(),
        })?);
        containers.push(container(
            st,
            String::from_utf8_lossy(&key).into_owned(),
            desc,
        ));
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ManagerState {
        containers,
        heap_bytes: st.rd(OFF_HEAP_TOP).saturating_sub(HEAP_START),
        used_bytes: st.seg.data_len() as u64,
        max_bytes: st.seg.max_data_len() as u64,
    })
}

/// Total bytes of the block at `block` (0 for none).
fn block_bytes(st: &Store, block: u64) -> u64 {
    if block == 0 {
        return 0;
    }
    let class = (st.rd(block) >> 56) as usize;
    if class < NCLASSES {
        class_size(class)
    } else {
        0
    }
}

/// The summary of the container with descriptor block `desc` (lock held).
fn container(st: &Store, name: String, desc: u64) -> ContainerState {
    let kind = st.rd(desc + DESC_KIND) & KIND_MASK;
    let mut bytes = block_bytes(st, desc);
    let len = match kind {
        KIND_DICT | KIND_NAMESPACE | KIND_LIST => {
            if st.rd(desc + DESC_B) != 0 {
                bytes += block_bytes(st, st.rd(desc + DESC_A));
            }
            let items = if kind == KIND_LIST {
                crate::raw_list::elems(st, desc)
            } else {
                raw_dict::entries(st, desc)
            };
            bytes += items.iter().map(|&b| block_bytes(st, b)).sum::<u64>();
            st.rd(desc + DESC_C)
        }
        KIND_VALUE => {
            let entry = st.rd(desc + DESC_A);
            bytes += block_bytes(st, entry);
            u64::from(entry != 0)
        }
        _ => 0,
    };
    ContainerState {
        name,
        kind: kind_name(kind),
        len,
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_reports_busy_instead_of_waiting_for_a_held_lock() {
        let m = Manager::new().unwrap();
        m.namespace("ns").unwrap();
        m.value::<u64>("v").unwrap().set(&7).unwrap();
        let guard = m.store.lock().unwrap();
        let busy = std::thread::scope(|s| s.spawn(|| describe(&m)).join().unwrap());
        match busy {
            Err(InspectError::Busy { holder: Some(h) }) => {
                assert_eq!(h.pid, Some(std::process::id()));
                assert!(h.alive);
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(guard);
        let state = describe(&m).unwrap();
        let kinds: Vec<_> = state
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.kind, c.len))
            .collect();
        assert_eq!(kinds, [("ns", "namespace", 0), ("v", "value", 1)]);
    }
}
