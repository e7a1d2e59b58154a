//! [`Manager`] and [`ManagerBuilder`]: the segment that holds a family of named containers.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shm_segment::transfer::SegmentToken;
use shm_segment::{CreateError, OpenError};

use crate::error::{ContainerError, Error};
use crate::handle::{Handle, open_manager, segment_options, type_id};
use crate::layout::{
    DESC_A, DESC_B, DESC_C, DESC_D, DESC_KEY_TYPE, DESC_KIND, DESC_VALUE_TYPE, HEAP_START,
    KIND_DICT, KIND_LIST, KIND_MASK, KIND_NAMESPACE, KIND_REMOVED, KIND_VALUE,
    OFF_FREE_DESCRIPTORS, OFF_LAST_ID, OFF_NONCE, kind_name, kind_word,
};
use crate::registry;
use crate::store::{Mem, Store, Txn};
use crate::{Namespace, SharedDict, SharedList, SharedValue, raw_dict, raw_list};

/// Data bytes a manager's segment starts with.
const INITIAL_BYTES: usize = 64 * 1024;

/// Address space a manager reserves to grow into unless capped: 256 GiB (address space,
/// not memory; memory is used only as containers fill).
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// assert!(m.max_bytes() >= shm_manager::DEFAULT_MAX_BYTES);
/// assert!(m.used_bytes() < 1 << 20, "only what is used is memory");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DEFAULT_MAX_BYTES: usize = 256 << 30;

/// A family of named shared containers in one shared-memory segment, with no server
/// process: every proxy reads and writes the segment in place, writes under the manager's
/// robust lock, reads without it.
///
/// [`Manager::new`] makes an anonymous manager (freed by the kernel when the last process
/// holding it exits); pass it, or its proxies, to child processes (they are serde).
/// [`ManagerBuilder::create`] / [`Manager::open`] make and open a named one for unrelated
/// processes. Every manager and proxy of one segment in a process, however it got there,
/// shares one mapping of it, unmapped when the last of them is dropped.
///
/// # Examples
///
/// ```
/// use shm_manager::Manager;
/// let manager = Manager::new()?;
/// let scores = manager.dict::<String, u32>("scores")?;
/// scores.insert(&"ada".to_string(), &3)?;
/// let again = manager.dict::<String, u32>("scores")?; // the same container
/// assert_eq!(again.get(&"ada".to_string())?, Some(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Manager {
    pub(crate) store: Arc<Store>,
}

/// Options for creating a [`Manager`].
///
/// # Examples
///
/// ```
/// let manager = shm_manager::Manager::builder().max_bytes(1 << 20).create_anonymous()?;
/// assert!(manager.max_bytes() >= 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ManagerBuilder {
    max_bytes: usize,
}

impl ManagerBuilder {
    /// Caps the manager's shared memory at `max_bytes` (rounded up to whole pages):
    /// operations that would need more fail with [`Error::CapacityExceeded`]. Default
    /// [`DEFAULT_MAX_BYTES`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = shm_manager::Manager::builder().max_bytes(64 * 1024).create_anonymous()?;
    /// let list = manager.list::<u64>("l")?;
    /// assert!(list.extend(0..1_000_000u64).is_err());
    /// assert_eq!(list.len()?, 0, "nothing of a failed extend is visible");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(INITIAL_BYTES);
        self
    }

    fn options(&self) -> shm_segment::SegmentOptions {
        segment_options().len(INITIAL_BYTES).max_len(self.max_bytes)
    }

    /// Creates an anonymous manager.
    ///
    /// # Errors
    ///
    /// As [`shm_segment::SegmentOptions::create_anonymous`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = shm_manager::Manager::builder().create_anonymous()?;
    /// assert!(manager.name().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_anonymous(&self) -> Result<Manager, CreateError> {
        let seg = self.options().create_anonymous_with(Store::init)?;
        Manager::from_segment(seg)
    }

    /// Creates the named manager `/dev/shm/multiproc.<name>`; it is removed when this
    /// handle is dropped — with its clones and proxies, and the handles of it that this
    /// process opens or receives, which all share its mapping.
    ///
    /// # Errors
    ///
    /// As [`shm_segment::SegmentOptions::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_manager::Manager;
    /// use shm_segment::OpenError;
    /// # let name = format!("doc-manager-{}", std::process::id());
    /// let manager = Manager::builder().create(&name)?;
    /// let other = Manager::open(&name)?; // typically in another process
    /// manager.list::<u8>("l")?.push(&7)?;
    /// assert_eq!(other.list::<u8>("l")?.to_vec()?, vec![7]);
    /// drop(manager);
    /// assert!(Manager::open(&name).is_ok(), "`other` shares the creator's mapping");
    /// drop(other);
    /// assert!(matches!(Manager::open(&name), Err(OpenError::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<Manager, CreateError> {
        let seg = self.options().create_with(name, Store::init)?;
        Manager::from_segment(seg)
    }
}

impl Manager {
    fn from_segment(seg: shm_segment::Segment) -> Result<Manager, CreateError> {
        let store = Store::attach(seg).map_err(|e| CreateError::InvalidSize {
            reason: e.to_string(),
        })?;
        debug_assert!(store.seg.data_len() as u64 > HEAP_START);
        Ok(Manager {
            store: registry::share(store),
        })
    }

    /// An anonymous manager with the default options.
    ///
    /// # Errors
    ///
    /// As [`ManagerBuilder::create_anonymous`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = shm_manager::Manager::new()?;
    /// assert!(manager.containers()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Manager, CreateError> {
        Manager::builder().create_anonymous()
    }

    /// Options for creating a manager.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = shm_manager::Manager::builder().max_bytes(1 << 24).create_anonymous()?;
    /// # let _ = manager;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder {
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Opens the named manager `name`. A process maps a manager once: if this one has it
    /// mapped already (created, opened or received), the handle shares that mapping.
    ///
    /// # Errors
    ///
    /// As [`shm_segment::SegmentOptions::open`]; [`OpenError::KindMismatch`] for a segment
    /// that is not a manager, [`OpenError::Corrupt`] for one of another layout.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::OpenError;
    /// let missing = shm_manager::Manager::open("doc-no-such-manager");
    /// assert!(matches!(missing, Err(OpenError::NotFound { .. })));
    /// ```
    pub fn open(name: &str) -> Result<Manager, OpenError> {
        // Already mapped here (the name still names that file): share it.
        if let Some(store) = shm_segment::Segment::identity_of(name).and_then(registry::lookup) {
            return Ok(Manager { store });
        }
        let seg = segment_options().open(name)?;
        let store = registry::attach(seg).map_err(|e| OpenError::Corrupt {
            segment: name.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Manager { store })
    }

    /// The name of a named manager.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_manager::Manager::new()?.name(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.store.seg.name().map(|n| n.as_str())
    }

    /// The cap on the segment's data bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shm_manager::Manager::new()?;
    /// assert!(m.max_bytes() >= shm_manager::DEFAULT_MAX_BYTES);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_bytes(&self) -> usize {
        self.store.seg.max_data_len()
    }

    /// Shared-memory bytes the segment holds now (it grows as containers fill; it never
    /// shrinks, freed blocks are reused).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shm_manager::Manager::new()?;
    /// let before = m.used_bytes();
    /// m.list::<u64>("l")?.extend(0..100_000u64)?;
    /// assert!(m.used_bytes() > before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn used_bytes(&self) -> usize {
        let _ = self.store.refresh();
        self.store.seg.data_len()
    }

    /// Names and kinds (`"dict"`, `"list"`, `"value"`, `"namespace"`) of the containers,
    /// sorted by name.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if a name is damaged; the lock errors of every operation.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shm_manager::Manager::new()?;
    /// m.list::<u8>("b")?;
    /// m.dict::<u8, u8>("a")?;
    /// assert_eq!(m.containers()?, vec![("a".to_string(), "dict"), ("b".to_string(), "list")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn containers(&self) -> Result<Vec<(String, &'static str)>, Error> {
        let st = &*self.store;
        let mut out = {
            let _guard = st.lock()?;
            let dir = st.directory();
            let mut out = Vec::new();
            for entry in raw_dict::entries(st, dir) {
                let mut key = Vec::new();
                raw_dict::read_key(st, entry, &mut key);
                let mut value = Vec::new();
                raw_dict::read_value(st, entry, &mut value);
                let desc = u64::from_le_bytes(value.try_into().map_err(|_| Error::Corrupt {
                    reason: "directory entry".into(),
                })?);
                let name = String::from_utf8(key).map_err(|_| Error::Corrupt {
                    reason: "container name is not UTF-8".into(),
                })?;
                out.push((name, kind_name(st.rd(desc + DESC_KIND))));
            }
            out
        };
        out.sort();
        Ok(out)
    }

    /// Checks the whole segment under the lock (completing a dead process's committed
    /// mutation first): every block between the heap start and top is either reachable
    /// from exactly one place or on exactly one free list, every container's counts match
    /// its contents and every dict entry is findable. For tests and tools; O(size).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] saying what is wrong; the lock errors of every operation.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shm_manager::Manager::new()?;
    /// let d = m.dict::<u32, u32>("d")?;
    /// d.extend((0..100).map(|i| (i, i)))?;
    /// d.clear()?;
    /// let report = m.verify()?;
    /// assert!(report.free_blocks > 100, "freed entries are on the free lists");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(&self) -> Result<crate::HeapReport, Error> {
        let _guard = self.store.lock()?;
        crate::verify::verify(&self.store)
    }

    /// Finds or creates container `name` of `kind` with `types`.
    fn container(
        &self,
        name: &str,
        kind: u64,
        types: (u64, u64),
        expected: impl FnOnce() -> String,
    ) -> Result<Handle, ContainerError> {
        let st = &*self.store;
        let _guard = st.lock()?;
        let (desc, word) = match find(st, name)? {
            Some(desc) => {
                Handle::check(st, desc, name, kind, types, expected)?;
                (desc, st.rd(desc + DESC_KIND))
            }
            None => {
                let mut txn = Txn::new(st);
                // A removed container's descriptor if there is one (descriptors stay
                // descriptors, see `Root::free_descriptors`), else a fresh block.
                let desc = match txn.rd(OFF_FREE_DESCRIPTORS) {
                    0 => txn.alloc(56)?,
                    reused => {
                        let next = txn.rd(reused + DESC_A);
                        txn.wr(OFF_FREE_DESCRIPTORS, next);
                        reused
                    }
                };
                let id = txn.rd(OFF_LAST_ID) + 1;
                txn.wr(OFF_LAST_ID, id);
                let word = kind_word(kind, id);
                for (field, v) in [
                    (DESC_KIND, word),
                    (DESC_KEY_TYPE, types.0),
                    (DESC_VALUE_TYPE, types.1),
                    (DESC_A, 0),
                    (DESC_B, 0),
                    (DESC_C, 0),
                    (DESC_D, 0),
                ] {
                    txn.wr(desc + field, v);
                }
                raw_dict::insert(
                    &mut txn,
                    st.directory(),
                    name.as_bytes(),
                    &desc.to_le_bytes(),
                )?;
                txn.commit()?;
                (desc, word)
            }
        };
        Ok(Handle {
            store: Arc::clone(&self.store),
            desc,
            kind: word,
        })
    }

    /// Removes container `name` and everything in it, atomically, and returns whether it
    /// existed. Its memory goes back to the manager's free lists for other containers
    /// (the segment itself does not shrink). Every proxy of it, in any process, then fails
    /// with [`Error::Removed`]; opening `name` again makes a new, empty container.
    ///
    /// # Errors
    ///
    /// The lock errors of every operation; [`Error::Corrupt`] for a damaged directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_manager::{Error, Manager};
    /// let m = Manager::new()?;
    /// let scratch = m.dict::<u32, String>("scratch")?;
    /// scratch.insert(&1, &"temporary".into())?;
    /// assert!(m.remove("scratch")?);
    /// assert!(matches!(scratch.get(&1), Err(Error::Removed)));
    /// assert!(m.containers()?.is_empty());
    /// assert!(!m.remove("scratch")?, "already gone");
    /// assert_eq!(m.dict::<u32, String>("scratch")?.len()?, 0, "a new container");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, name: &str) -> Result<bool, Error> {
        let st = &*self.store;
        let _guard = st.lock()?;
        let Some(desc) = find(st, name)? else {
            return Ok(false);
        };
        let mut txn = Txn::new(st);
        match st.rd(desc + DESC_KIND) & KIND_MASK {
            KIND_DICT | KIND_NAMESPACE => raw_dict::clear(&mut txn, desc),
            KIND_LIST => raw_list::clear(&mut txn, desc),
            KIND_VALUE => {
                let elem = st.rd(desc + DESC_A);
                if elem != 0 {
                    txn.free(elem);
                }
            }
            other => {
                return Err(Error::Corrupt {
                    reason: format!("container '{name}' has descriptor kind {other}"),
                });
            }
        }
        raw_dict::remove(&mut txn, st.directory(), name.as_bytes());
        let head = txn.rd(OFF_FREE_DESCRIPTORS);
        for (field, v) in [
            (DESC_KIND, KIND_REMOVED),
            (DESC_KEY_TYPE, 0),
            (DESC_VALUE_TYPE, 0),
            (DESC_A, head),
            (DESC_B, 0),
            (DESC_C, 0),
            (DESC_D, 0),
        ] {
            txn.wr(desc + field, v);
        }
        txn.wr(OFF_FREE_DESCRIPTORS, desc);
        txn.commit()?;
        Ok(true)
    }

    /// The dict `name`, created empty if it does not exist.
    ///
    /// # Errors
    ///
    /// [`ContainerError::KindMismatch`] if `name` is another kind of container,
    /// [`ContainerError::TypeMismatch`] if it was created with other `K` or `V`,
    /// [`ContainerError::Op`] if creating it fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shm_manager::Manager::new()?;
    /// let d = m.dict::<u32, String>("names")?;
    /// d.insert(&1, &"one".into())?;
    /// assert_eq!(d.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dict<K, V>(&self, name: &str) -> Result<SharedDict<K, V>, ContainerError> {
        let handle = self.container(
            name,
            KIND_DICT,
            (type_id::<K>(), type_id::<V>()),
            crate::dict::expected::<K, V>,
        )?;
        Ok(SharedDict::from_handle(handle))
    }

    /// The list `name`, created empty if it does not exist.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shm_manager::Manager::new()?;
    /// let l = m.list::<i64>("xs")?;
    /// l.push(&-1)?;
    /// assert_eq!(l.to_vec()?, vec![-1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn list<T>(&self, name: &str) -> Result<SharedList<T>, ContainerError> {
        let handle = self.container(
            name,
            KIND_LIST,
            (type_id::<T>(), 0),
            crate::list::expected::<T>,
        )?;
        Ok(SharedList::from_handle(handle))
    }

    /// The single value `name`, created unset if it does not exist.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shm_manager::Manager::new()?;
    /// let v = m.value::<f64>("temperature")?;
    /// assert_eq!(v.get()?, None);
    /// v.set(&21.5)?;
    /// assert_eq!(v.get()?, Some(21.5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn value<T>(&self, name: &str) -> Result<SharedValue<T>, ContainerError> {
        let handle = self.container(
            name,
            KIND_VALUE,
            (type_id::<T>(), 0),
            crate::value::expected::<T>,
        )?;
        Ok(SharedValue::from_handle(handle))
    }

    /// The namespace `name` (string-keyed attributes of any serde type), created empty if
    /// it does not exist.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict) (a namespace has no types to mismatch).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shm_manager::Manager::new()?;
    /// let ns = m.namespace("config")?;
    /// ns.set("workers", &4u32)?;
    /// assert_eq!(ns.get::<u32>("workers")?, Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn namespace(&self, name: &str) -> Result<Namespace, ContainerError> {
        let handle = self.container(name, KIND_NAMESPACE, (0, 0), String::new)?;
        Ok(Namespace::from_handle(handle))
    }
}

/// The serialised form of a [`Manager`]: its segment and its nonce, so that it never
/// binds to another manager that now has its name.
#[derive(Serialize, Deserialize)]
struct ManagerWire {
    segment: SegmentToken,
    manager: u64,
}

impl Serialize for Manager {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ManagerWire {
            segment: self.store.seg.token(),
            manager: self.store.rd(OFF_NONCE),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Manager {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ManagerWire::deserialize(deserializer)?;
        Ok(Manager {
            store: open_manager(&wire.segment, wire.manager)?,
        })
    }
}

/// The descriptor of container `name`, if it exists (lock held).
fn find(st: &Store, name: &str) -> Result<Option<u64>, Error> {
    let mut value = Vec::new();
    if !raw_dict::get(st, st.directory(), name.as_bytes(), &mut value) {
        return Ok(None);
    }
    let desc = u64::from_le_bytes(value.try_into().map_err(|_| Error::Corrupt {
        reason: "directory entry".into(),
    })?);
    Ok(Some(desc))
}
