//! The process's mapped manager segments: one [`Store`] per segment per process, shared by
//! every [`Manager`](crate::Manager) and proxy of it here, however they were made (created,
//! opened by name, deserialised).
//!
//! Each mapping reserves the manager's whole address space (256 GiB by default) and takes
//! a descriptor and an attach slot, so mapping again for every received proxy would run a
//! process out of address space after a few hundred proxies.
//!
//! The map is keyed by the segment's identity, `(device, inode)` of its file, and holds
//! only [`Weak`] references: a segment is unmapped when its last handle in this process
//! goes, and entries of dropped stores are pruned as new ones come in. A live entry's file
//! is open (its store holds it), so no other file can have the same identity meanwhile; a
//! named segment removed and created again under its name is another file, another entry.
//!
//! The map is process-local state under a [`std::sync::Mutex`], held only for a lookup or
//! an insert: never across opening, mapping or unmapping a segment (a store found or
//! dropped is dropped after the lock is released). A forked child inherits the map and the
//! mappings it names (`MAP_SHARED`), and reuses them. (`shm_process`'s `Process::fork`
//! refuses to fork a multi-threaded process, so no other thread can hold this lock across
//! a fork; a program calling `fork` itself from several threads must not be deserialising
//! proxies at that moment, as with any lock.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use shm_segment::Segment;

use crate::error::Error;
use crate::store::Store;

/// A segment's identity: `(device, inode)` of its file.
type Identity = (u64, u64);

/// Below this many entries, inserting does not prune.
const MIN_PRUNE_AT: usize = 16;

/// The mapped stores of this process.
struct Registry {
    stores: BTreeMap<Identity, Weak<Store>>,
    /// Inserting at this length prunes the dead entries first; then it is set to twice the
    /// live length, so pruning costs amortised O(1) per insert.
    prune_at: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    stores: BTreeMap::new(),
    prune_at: MIN_PRUNE_AT,
});

fn registry() -> MutexGuard<'static, Registry> {
    // Nothing panics while holding the lock, and the map is consistent after every
    // statement anyway.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The store of the segment with `identity`, if this process has it mapped.
pub(crate) fn lookup(identity: Identity) -> Option<Arc<Store>> {
    registry().stores.get(&identity).and_then(Weak::upgrade)
}

/// Registers a freshly attached store, or returns the one this process already has for
/// the same segment (mapped meanwhile by another thread); `store` is then dropped.
pub(crate) fn share(store: Store) -> Arc<Store> {
    let identity = store.seg.identity();
    let fresh = Arc::new(store);
    let existing = {
        let mut reg = registry();
        match reg.stores.get(&identity).and_then(Weak::upgrade) {
            Some(existing) => Some(existing),
            None => {
                if reg.stores.len() >= reg.prune_at {
                    reg.stores.retain(|_, store| store.strong_count() > 0);
                    reg.prune_at = (2 * reg.stores.len()).max(MIN_PRUNE_AT);
                }
                reg.stores.insert(identity, Arc::downgrade(&fresh));
                None
            }
        }
    };
    // Outside the lock: dropping the unused store unmaps it.
    existing.unwrap_or(fresh)
}

/// The store of opened segment `seg`: this process's existing one (and `seg` is dropped),
/// else `seg` attached and registered.
///
/// # Errors
///
/// As [`Store::attach`].
pub(crate) fn attach(seg: Segment) -> Result<Arc<Store>, Error> {
    if let Some(store) = lookup(seg.identity()) {
        return Ok(store);
    }
    Ok(share(Store::attach(seg)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manager;

    #[test]
    fn dropped_managers_leave_no_live_entry_and_dead_entries_are_pruned() {
        let kept = Manager::new().unwrap();
        let dropped: Vec<Identity> = (0..4 * MIN_PRUNE_AT)
            .map(|_| {
                let m = Manager::new().unwrap();
                let again = lookup(m.store.seg.identity()).expect("a new manager is registered");
                assert!(Arc::ptr_eq(&again, &m.store));
                m.store.seg.identity()
            })
            .collect();
        assert!(Arc::ptr_eq(
            &lookup(kept.store.seg.identity()).unwrap(),
            &kept.store
        ));
        assert!(dropped.iter().all(|&id| lookup(id).is_none()));
        let reg = registry();
        assert!(
            reg.stores.len() <= reg.prune_at && reg.prune_at < 4 * MIN_PRUNE_AT,
            "dead entries were kept: {} entries, pruning at {}",
            reg.stores.len(),
            reg.prune_at
        );
    }
}
