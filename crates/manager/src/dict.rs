//! [`SharedDict`]: a hash map in shared memory.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::handle::{Handle, decode, encode, proxy_impls, type_id, with_encoded};
use crate::layout::KIND_DICT;
use crate::raw_dict;
use crate::store::{Buf, POINT_READ_TRIES, SNAPSHOT_READ_TRIES, Txn, hash_bytes};

/// Encoded key and value bytes.
type RawPair = (Vec<u8>, Vec<u8>);

pub(crate) fn expected<K, V>() -> String {
    format!(
        "SharedDict<{}, {}>",
        std::any::type_name::<K>(),
        std::any::type_name::<V>()
    )
}

/// A dict in a [`Manager`](crate::Manager)'s shared memory: `K -> V`, keys and values
/// stored postcard-encoded, read and written in place by every process: written under the
/// manager's robust lock, read without it.
///
/// Keys are compared by their encoding (equal keys must encode equally, as they do for
/// integers, strings, tuples and derived structs). Every operation is atomic: a process
/// killed in the middle leaves the dict as it was before or after the operation.
/// Iteration ([`items`](Self::items), [`iter`](Self::iter), [`keys`](Self::keys),
/// [`values`](Self::values)) returns a snapshot of one committed state.
///
/// The proxy is `Clone + Send + Sync` and serde: pass it to child processes.
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// let hits = m.dict::<String, u64>("hits")?;
/// for page in ["/", "/about", "/"] {
///     hits.update_with(&page.to_string(), |n| *n.get_or_insert(0) += 1)?;
/// }
/// assert_eq!(hits.get(&"/".to_string())?, Some(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedDict<K, V> {
    handle: Handle,
    _types: PhantomData<fn() -> (K, V)>,
}

proxy_impls!(
    SharedDict<K, V>,
    KIND_DICT,
    (type_id::<K>(), type_id::<V>()),
    expected::<K, V>
);

impl<K, V> SharedDict<K, V> {
    pub(crate) fn from_handle(handle: Handle) -> Self {
        SharedDict {
            handle,
            _types: PhantomData,
        }
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> SharedDict<K, V> {
    fn desc(&self) -> u64 {
        self.handle.desc
    }

    /// The value for `key`. Reads without the lock (validated against concurrent commits),
    /// taking it only if attempts keep failing; inside an `update_with` closure of the
    /// same manager it sees the state before that update.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] / [`Error::Decode`] when serde fails; [`Error::Removed`] when
    /// the container was removed; the lock errors ([`Error::NotRecoverable`], [`Error::Corrupt`]) in the rare case
    /// that it falls back to the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// assert_eq!(d.get(&1)?, None);
    /// d.insert(&1, &2)?;
    /// assert_eq!(d.get(&1)?, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        let desc = self.desc();
        with_encoded(key, |key| {
            let hash = hash_bytes(key);
            let mut value = Buf::new();
            let found = self.handle.read(POINT_READ_TRIES, |m| {
                raw_dict::get_into(m, desc, key, hash, &mut value)
            })?;
            found.then(|| decode(value.as_slice())).transpose()
        })?
    }

    /// The values of `keys`, in order, read from one committed state (without the lock).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&1, &10)?;
    /// assert_eq!(d.get_many(&[1, 2])?, vec![Some(10), None]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many(&self, keys: &[K]) -> Result<Vec<Option<V>>, Error> {
        let keys = keys.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        // A large batch costs as much as a snapshot to retry.
        let tries = if keys.len() > 16 {
            SNAPSHOT_READ_TRIES
        } else {
            POINT_READ_TRIES
        };
        let raw: Vec<Option<Vec<u8>>> = self.handle.read(tries, |m| {
            keys.iter()
                .map(|k| {
                    let mut bytes = Vec::new();
                    raw_dict::get(m, self.desc(), k, &mut bytes).then_some(bytes)
                })
                .collect()
        })?;
        raw.into_iter()
            .map(|b| b.map(|b| decode(&b)).transpose())
            .collect()
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&1, &2)?;
    /// assert!(d.contains_key(&1)? && !d.contains_key(&2)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool, Error> {
        with_encoded(key, |key| {
            let hash = hash_bytes(key);
            self.handle.read(POINT_READ_TRIES, |m| {
                matches!(
                    raw_dict::probe(m, self.desc(), key, hash),
                    raw_dict::Probe::Found(..)
                )
            })
        })?
    }

    /// Inserts `key -> value`, returning the value it replaces.
    ///
    /// # Errors
    ///
    /// [`Error::CapacityExceeded`] / [`Error::NoSpace`] when memory runs out (the dict is
    /// unchanged); otherwise as [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, String>("d")?;
    /// assert_eq!(d.insert(&1, &"a".into())?, None);
    /// assert_eq!(d.insert(&1, &"b".into())?, Some("a".into()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>, Error> {
        let st = &*self.handle.store;
        with_encoded(key, |key| {
            with_encoded(value, |value| {
                let _guard = self.handle.lock()?;
                let mut txn = Txn::new(st);
                let old = raw_dict::insert(&mut txn, self.desc(), key, value)?;
                txn.commit()?;
                old.map(|e| raw_dict::with_entry_value(st, e, decode::<V>))
                    .transpose()
            })
        })??
    }

    /// Inserts every pair, atomically (all or none).
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert); on error nothing was inserted.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert_many(&[(1, 1), (2, 4)])?;
    /// assert_eq!(d.len()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_many(&self, items: &[(K, V)]) -> Result<(), Error> {
        let encoded = items
            .iter()
            .map(|(k, v)| Ok((encode(k)?, encode(v)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let st = &*self.handle.store;
        let _guard = self.handle.lock()?;
        let mut txn = Txn::new(st);
        raw_dict::reserve(&mut txn, self.desc(), encoded.len() as u64)?;
        for (k, v) in &encoded {
            raw_dict::insert(&mut txn, self.desc(), k, v)?;
        }
        txn.commit()
    }

    /// Inserts every pair of `items`, atomically; [`insert_many`](Self::insert_many) for
    /// owned pairs.
    ///
    /// # Errors
    ///
    /// As [`insert_many`](Self::insert_many).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u32, u32>("squares")?;
    /// d.extend((0..10).map(|i| (i, i * i)))?;
    /// assert_eq!(d.get(&9)?, Some(81));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), Error> {
        self.insert_many(&items.into_iter().collect::<Vec<_>>())
    }

    /// Python's `dict.update`: the same as [`extend`](Self::extend).
    ///
    /// # Errors
    ///
    /// As [`insert_many`](Self::insert_many).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.update([(1, 2), (3, 4)])?;
    /// assert_eq!(d.get(&3)?, Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), Error> {
        self.extend(items)
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&1, &2)?;
    /// assert_eq!(d.remove(&1)?, Some(2));
    /// assert_eq!(d.remove(&1)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>, Error> {
        let st = &*self.handle.store;
        with_encoded(key, |key| {
            let _guard = self.handle.lock()?;
            let mut txn = Txn::new(st);
            let old = raw_dict::remove(&mut txn, self.desc(), key);
            txn.commit()?;
            old.map(|e| raw_dict::with_entry_value(st, e, decode::<V>))
                .transpose()
        })?
    }

    /// Python's `dict.pop(key, default)`: removes `key` and returns its value, or `default`
    /// when absent.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&1, &2)?;
    /// assert_eq!(d.pop(&1, 0)?, 2);
    /// assert_eq!(d.pop(&1, 0)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self, key: &K, default: V) -> Result<V, Error> {
        Ok(self.remove(key)?.unwrap_or(default))
    }

    /// Python's `setdefault`: the value for `key`, inserting `default` first if absent.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// assert_eq!(d.setdefault(&1, 5)?, 5);
    /// assert_eq!(d.setdefault(&1, 6)?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn setdefault(&self, key: &K, default: V) -> Result<V, Error> {
        self.get_or_insert_with(key, || default)
    }

    /// The value for `key`, inserting `make()` first if absent (atomically: `make` runs at
    /// most once, under the lock, only when the key is absent).
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, Vec<u8>>("d")?;
    /// assert_eq!(d.get_or_insert_with(&1, || vec![1, 2])?, vec![1, 2]);
    /// assert_eq!(d.get_or_insert_with(&1, || unreachable!())?, vec![1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_or_insert_with(&self, key: &K, make: impl FnOnce() -> V) -> Result<V, Error> {
        let key = encode(key)?;
        let st = &*self.handle.store;
        let mut bytes = Vec::new();
        let made = {
            let _guard = self.handle.lock()?;
            if raw_dict::get(st, self.desc(), &key, &mut bytes) {
                None
            } else {
                let value = make();
                let encoded = encode(&value)?;
                let mut txn = Txn::new(st);
                raw_dict::insert(&mut txn, self.desc(), &key, &encoded)?;
                txn.commit()?;
                Some(value)
            }
        };
        match made {
            Some(value) => Ok(value),
            None => decode(&bytes),
        }
    }

    /// Atomic read-modify-write of `key`: `f` gets the current value (`None` if absent)
    /// and may change it, set it (`Some`), or remove it (`None`); the result is stored
    /// before any other process can look. This is the cure for Python's nested-mutation
    /// gotcha (`d[k].append(x)` changing a copy). `f` runs under the manager's lock: it must
    /// not write to the same manager ([`Error::WouldDeadlock`]; reads see the state before
    /// this update) and should be quick.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert); on error nothing changed.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<String, Vec<u32>>("d")?;
    /// let k = "xs".to_string();
    /// d.update_with(&k, |v| v.get_or_insert_with(Vec::new).push(1))?;
    /// d.update_with(&k, |v| v.as_mut().unwrap().push(2))?;
    /// assert_eq!(d.get(&k)?, Some(vec![1, 2]));
    /// let len = d.update_with(&k, |v| v.take().map_or(0, |xs| xs.len()))?; // removes it
    /// assert_eq!((len, d.contains_key(&k)?), (2, false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update_with<R>(&self, key: &K, f: impl FnOnce(&mut Option<V>) -> R) -> Result<R, Error> {
        let st = &*self.handle.store;
        let desc = self.desc();
        with_encoded(key, |key| {
            let hash = hash_bytes(key);
            let _guard = self.handle.lock()?;
            let mut old = Buf::new();
            let had = raw_dict::get_into(st, desc, key, hash, &mut old);
            let mut value = if had {
                Some(decode(old.as_slice())?)
            } else {
                None
            };
            let result = f(&mut value);
            let mut txn = Txn::new(st);
            match value {
                Some(v) => with_encoded(&v, |new| {
                    if !had || new != old.as_slice() {
                        raw_dict::insert(&mut txn, desc, key, new)?;
                    }
                    Ok::<_, Error>(())
                })??,
                None if had => {
                    raw_dict::remove(&mut txn, desc, key);
                }
                None => {}
            }
            txn.commit()?;
            Ok(result)
        })?
    }

    /// Number of entries.
    ///
    /// # Errors
    ///
    /// The lock errors of [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&1, &1)?;
    /// assert_eq!(d.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> Result<usize, Error> {
        self.handle
            .read(POINT_READ_TRIES, |m| raw_dict::len(m, self.desc()) as usize)
    }

    /// Whether the dict is empty.
    ///
    /// # Errors
    ///
    /// As [`len`](Self::len).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry.
    ///
    /// # Errors
    ///
    /// As [`len`](Self::len).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&1, &1)?;
    /// d.clear()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        let st = &*self.handle.store;
        let _guard = self.handle.lock()?;
        let mut txn = Txn::new(st);
        raw_dict::clear(&mut txn, self.desc());
        txn.commit()
    }

    /// Raw snapshot: (key bytes, value bytes) of every entry, of one committed state.
    fn snapshot(&self, keys: bool, values: bool) -> Result<Vec<RawPair>, Error> {
        self.handle.read(SNAPSHOT_READ_TRIES, |m| {
            raw_dict::entries(m, self.desc())
                .into_iter()
                .map(|e| {
                    let (mut k, mut v) = (Vec::new(), Vec::new());
                    if keys {
                        raw_dict::read_key(m, e, &mut k);
                    }
                    if values {
                        raw_dict::read_value(m, e, &mut v);
                    }
                    (k, v)
                })
                .collect()
        })
    }

    /// A snapshot of the entries (of one committed state, in no particular order).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&1, &2)?;
    /// assert_eq!(d.items()?, vec![(1, 2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>, Error> {
        self.snapshot(true, true)?
            .into_iter()
            .map(|(k, v)| Ok((decode(&k)?, decode(&v)?)))
            .collect()
    }

    /// An iterator over a snapshot of the entries ([`items`](Self::items)).
    ///
    /// # Errors
    ///
    /// As [`items`](Self::items).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.extend([(1, 10), (2, 20)])?;
    /// assert_eq!(d.iter()?.map(|(_, v)| u32::from(v)).sum::<u32>(), 30);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Result<std::vec::IntoIter<(K, V)>, Error> {
        Ok(self.items()?.into_iter())
    }

    /// A snapshot of the keys.
    ///
    /// # Errors
    ///
    /// As [`items`](Self::items).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&7, &0)?;
    /// assert_eq!(d.keys()?, vec![7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<K>, Error> {
        self.snapshot(true, false)?
            .into_iter()
            .map(|(k, _)| decode(&k))
            .collect()
    }

    /// A snapshot of the values.
    ///
    /// # Errors
    ///
    /// As [`items`](Self::items).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shm_manager::Manager::new()?.dict::<u8, u8>("d")?;
    /// d.insert(&7, &3)?;
    /// assert_eq!(d.values()?, vec![3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn values(&self) -> Result<Vec<V>, Error> {
        self.snapshot(false, true)?
            .into_iter()
            .map(|(_, v)| decode(&v))
            .collect()
    }
}
