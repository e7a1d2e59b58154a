//! [`Namespace`]: string-keyed attributes of any serde type.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::handle::{Handle, decode, encode, type_id};
use crate::layout::KIND_NAMESPACE;
use crate::raw_dict;
use crate::store::{Buf, POINT_READ_TRIES, SNAPSHOT_READ_TRIES, Txn, hash_bytes};

/// Python's `Manager().Namespace()`: attributes named by strings, each of its own serde
/// type, in a [`Manager`](crate::Manager)'s shared memory. Each attribute remembers its
/// type: reading it as another type is [`Error::TypeMismatch`]. Every operation is atomic,
/// also under SIGKILL.
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// let ns = m.namespace("job")?;
/// ns.set("name", &"resize".to_string())?;
/// ns.set("done", &false)?;
/// assert_eq!(ns.get::<bool>("done")?, Some(false));
/// assert!(ns.get::<u64>("name").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Namespace {
    handle: Handle,
}

/// The stored form of an attribute: its type's identity, then its encoding.
fn tagged<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut bytes = type_id::<T>().to_le_bytes().to_vec();
    bytes.extend_from_slice(&encode(value)?);
    Ok(bytes)
}

fn untag<T: DeserializeOwned>(attribute: &str, bytes: &[u8]) -> Result<T, Error> {
    if bytes.len() < 8 || bytes[..8] != type_id::<T>().to_le_bytes() {
        return Err(Error::TypeMismatch {
            attribute: attribute.to_owned(),
            expected: std::any::type_name::<T>(),
        });
    }
    decode(&bytes[8..])
}

impl Namespace {
    pub(crate) fn from_handle(handle: Handle) -> Self {
        Namespace { handle }
    }

    /// Sets attribute `name` (of any type; the new type replaces the old).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::CapacityExceeded`], [`Error::NoSpace`],
    /// [`Error::WouldDeadlock`] inside an `update_with` closure of the same manager.
    ///
    /// # Examples
    ///
    /// ```
    /// let ns = shm_manager::Manager::new()?.namespace("ns")?;
    /// ns.set("x", &1u8)?;
    /// ns.set("x", &"now a string".to_string())?;
    /// assert_eq!(ns.get::<String>("x")?.as_deref(), Some("now a string"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        let value = tagged(value)?;
        let st = &*self.handle.store;
        let _guard = self.handle.lock()?;
        let mut txn = Txn::new(st);
        raw_dict::insert(&mut txn, self.handle.desc, name.as_bytes(), &value)?;
        txn.commit()
    }

    /// Attribute `name` as a `T`, or `None` if it is not set.
    ///
    /// # Errors
    ///
    /// [`Error::TypeMismatch`] if it holds another type; [`Error::Decode`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ns = shm_manager::Manager::new()?.namespace("ns")?;
    /// assert_eq!(ns.get::<u8>("missing")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        let (desc, key) = (self.handle.desc, name.as_bytes());
        let hash = hash_bytes(key);
        let mut bytes = Buf::new();
        let found = self.handle.read(POINT_READ_TRIES, |m| {
            raw_dict::get_into(m, desc, key, hash, &mut bytes)
        })?;
        found.then(|| untag(name, bytes.as_slice())).transpose()
    }

    /// Atomic read-modify-write of attribute `name` as a `T` (`None`: unset; setting
    /// `None` removes it), under the manager's lock.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get) and [`set`](Self::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let ns = shm_manager::Manager::new()?.namespace("ns")?;
    /// ns.update_with::<u32, _>("n", |n| *n.get_or_insert(0) += 5)?;
    /// assert_eq!(ns.get::<u32>("n")?, Some(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update_with<T: Serialize + DeserializeOwned, R>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Option<T>) -> R,
    ) -> Result<R, Error> {
        let st = &*self.handle.store;
        let desc = self.handle.desc;
        let _guard = self.handle.lock()?;
        let mut old = Vec::new();
        let had = raw_dict::get(st, desc, name.as_bytes(), &mut old);
        let mut value = if had { Some(untag(name, &old)?) } else { None };
        let result = f(&mut value);
        let mut txn = Txn::new(st);
        match value {
            Some(v) => {
                raw_dict::insert(&mut txn, desc, name.as_bytes(), &tagged(&v)?)?;
            }
            None if had => {
                raw_dict::remove(&mut txn, desc, name.as_bytes());
            }
            None => {}
        }
        txn.commit()?;
        Ok(result)
    }

    /// Removes attribute `name`; whether it was set.
    ///
    /// # Errors
    ///
    /// The lock errors of [`set`](Self::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let ns = shm_manager::Manager::new()?.namespace("ns")?;
    /// ns.set("x", &1u8)?;
    /// assert!(ns.remove("x")?);
    /// assert!(!ns.contains("x")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, name: &str) -> Result<bool, Error> {
        let st = &*self.handle.store;
        let _guard = self.handle.lock()?;
        let mut txn = Txn::new(st);
        let had = raw_dict::remove(&mut txn, self.handle.desc, name.as_bytes()).is_some();
        txn.commit()?;
        Ok(had)
    }

    /// Whether attribute `name` is set.
    ///
    /// # Errors
    ///
    /// The lock errors of [`set`](Self::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let ns = shm_manager::Manager::new()?.namespace("ns")?;
    /// assert!(!ns.contains("x")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, name: &str) -> Result<bool, Error> {
        let (desc, key) = (self.handle.desc, name.as_bytes());
        let hash = hash_bytes(key);
        self.handle.read(POINT_READ_TRIES, |m| {
            matches!(
                raw_dict::probe(m, desc, key, hash),
                raw_dict::Probe::Found(..)
            )
        })
    }

    /// The names of the set attributes, sorted.
    ///
    /// # Errors
    ///
    /// The lock errors of [`set`](Self::set); [`Error::Corrupt`] for a non-UTF-8 name.
    ///
    /// # Examples
    ///
    /// ```
    /// let ns = shm_manager::Manager::new()?.namespace("ns")?;
    /// ns.set("b", &1u8)?;
    /// ns.set("a", &2u8)?;
    /// assert_eq!(ns.attributes()?, vec!["a".to_string(), "b".to_string()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attributes(&self) -> Result<Vec<String>, Error> {
        let raw: Vec<Vec<u8>> = self.handle.read(SNAPSHOT_READ_TRIES, |m| {
            raw_dict::entries(m, self.handle.desc)
                .into_iter()
                .map(|e| {
                    let mut k = Vec::new();
                    raw_dict::read_key(m, e, &mut k);
                    k
                })
                .collect()
        })?;
        let mut names = raw
            .into_iter()
            .map(|k| {
                String::from_utf8(k).map_err(|_| Error::Corrupt {
                    reason: "namespace attribute name is not UTF-8".into(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        names.sort();
        Ok(names)
    }
}

impl serde::Serialize for Namespace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.handle.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Namespace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let handle = Handle::deserialize(d, KIND_NAMESPACE, (0, 0), String::new)?;
        Ok(Namespace { handle })
    }
}
