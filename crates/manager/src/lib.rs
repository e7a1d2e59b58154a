//! Python's `multiprocessing.Manager()`, without the server process: shared dicts, lists,
//! values and namespaces that live in one shared-memory segment and are read and written
//! in place by every process: writers under a robust lock that survives `kill -9`, readers
//! without any lock.
//!
//! # Contents
//!
//! | type | Python | notes |
//! |---|---|---|
//! | [`Manager`] | `Manager()` | owns named containers; anonymous or named |
//! | [`SharedDict<K, V>`] | `manager.dict()` | open-addressing hash table, `update_with` RMW |
//! | [`SharedList<T>`] | `manager.list()` | offset array, `range(a..b)` slicing |
//! | [`SharedValue<T>`] | `manager.Value()` | one value of any serde type |
//! | [`Namespace`] | `manager.Namespace()` | string-keyed attributes of any serde type |
//!
//! [`inspect`] summarises a manager (containers, lengths, bytes) without waiting for its
//! lock, for tools such as `multiproc inspect`.
//!
//! Keys and values are any `Serialize + DeserializeOwned` type, stored postcard-encoded.
//! Proxies are `Clone + Send + Sync` and serde, so they pass to child processes and
//! through queues; however many of one manager a process receives, it maps the manager
//! once. Containers grow with the segment ([`shm_segment::Segment::grow`]) until
//! memory, or the optional cap ([`ManagerBuilder::max_bytes`]), runs out
//! ([`Error::CapacityExceeded`]).
//!
//! # Under faults
//!
//! Every operation is atomic. A process SIGKILLed at any instruction of an operation
//! leaves every container, and the allocator inside the segment, in the state before or
//! after that operation: mutations are written to free space and published by one atomic
//! store of a redo journal, which the next lock holder (told `OwnerDied` by the robust
//! lock) replays. See the crate README for exactly what a kill at each moment leaves.
//!
//! # Performance
//!
//! One robust lock serialises a manager's writers; a mutation takes it once (batch
//! operations `insert_many`, `extend` take it once for all items). `update_with` closures
//! run under it, so keep them short. Reads take no lock: they validate what they read
//! against a commit sequence number (a seqlock; see the crate README) and fall back to the
//! lock only after repeated interference, so readers never queue behind each other.
//! [`Manager::remove`] gives a container's memory back for reuse.
//!
//! # Panics
//!
//! Operations under the lock (writes, and reads that fell back to it) panic only if the
//! shared memory was overwritten by something else so that an offset points outside the
//! segment. Reads without the lock never panic on what they read: a torn view is retried.
//!
//! # Examples
//!
//! ```
//! use shm_manager::Manager;
//!
//! let manager = Manager::new()?;
//! let counts = manager.dict::<String, u64>("counts")?;
//! counts.update_with(&"apples".to_string(), |n| *n.get_or_insert(0) += 3)?;
//! let todo = manager.list::<String>("todo")?;
//! todo.push(&"ship it".to_string())?;
//! assert_eq!(counts.get(&"apples".to_string())?, Some(3));
//! assert_eq!(todo.len()?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dict;
mod error;
mod handle;
// shm-lock's inspection is not built under loom, which models only the journal here.
#[cfg(not(loom))]
pub mod inspect;
#[cfg(not(loom))]
mod journal;
#[cfg(loom)]
pub mod journal;
mod layout;
mod list;
mod manager;
mod namespace;
mod raw_dict;
mod raw_list;
mod registry;
mod store;
mod sync;
mod value;
mod verify;

/// The README's program, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use dict::SharedDict;
pub use error::{ContainerError, Error};
pub use list::SharedList;
pub use manager::{DEFAULT_MAX_BYTES, Manager, ManagerBuilder};
pub use namespace::Namespace;
pub use value::SharedValue;
pub use verify::HeapReport;
