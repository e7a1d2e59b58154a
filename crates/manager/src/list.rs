//! [`SharedList`]: a vector in shared memory.

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::handle::{Handle, decode, encode, proxy_impls, type_id};
use crate::layout::KIND_LIST;
use crate::raw_list;
use crate::store::{Buf, Mem, POINT_READ_TRIES, SNAPSHOT_READ_TRIES, Store, Txn};

pub(crate) fn expected<T>() -> String {
    format!("SharedList<{}>", std::any::type_name::<T>())
}

/// A list in a [`Manager`](crate::Manager)'s shared memory: elements stored
/// postcard-encoded, each in its own block, indexed by an array of offsets.
///
/// Every operation is atomic, and a process killed in the middle of one leaves the list as
/// it was before or after it. [`iter`](Self::iter), [`to_vec`](Self::to_vec) and
/// [`range`](Self::range) return snapshots of one committed state. `push`, `pop`, `set` and
/// `get` cost O(1); `insert`, `remove` and `truncate` copy the offset array, O(len).
///
/// The proxy is `Clone + Send + Sync` and serde: pass it to child processes.
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// let log = m.list::<String>("log")?;
/// log.push(&"started".into())?;
/// log.extend(["a".to_string(), "b".to_string()])?;
/// assert_eq!(log.range(1..)?, vec!["a".to_string(), "b".to_string()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedList<T> {
    handle: Handle,
    _types: PhantomData<fn() -> T>,
}

proxy_impls!(SharedList<T>, KIND_LIST, (type_id::<T>(), 0), expected::<T>);

impl<T> SharedList<T> {
    pub(crate) fn from_handle(handle: Handle) -> Self {
        SharedList {
            handle,
            _types: PhantomData,
        }
    }
}

/// The length of list `desc` as a `usize`.
fn len_of(m: &impl Mem, desc: u64) -> usize {
    usize::try_from(raw_list::len(m, desc)).unwrap_or(usize::MAX)
}

fn bounds(range: impl RangeBounds<usize>, len: usize) -> Result<(usize, usize), Error> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s
            .checked_add(1)
            .ok_or(Error::IndexOutOfRange { index: s, len })?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e
            .checked_add(1)
            .ok_or(Error::IndexOutOfRange { index: e, len })?,
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    if end > len {
        return Err(Error::IndexOutOfRange { index: end, len });
    }
    if start > end {
        return Err(Error::IndexOutOfRange { index: start, len });
    }
    Ok((start, end))
}

impl<T: Serialize + DeserializeOwned> SharedList<T> {
    fn st(&self) -> &Store {
        &self.handle.store
    }

    fn desc(&self) -> u64 {
        self.handle.desc
    }

    fn in_range(&self, index: usize, len: u64) -> Result<(), Error> {
        if index as u64 >= len {
            return Err(Error::IndexOutOfRange {
                index,
                len: len as usize,
            });
        }
        Ok(())
    }

    /// Appends `value`.
    ///
    /// # Errors
    ///
    /// [`Error::CapacityExceeded`] / [`Error::NoSpace`] when memory runs out (nothing
    /// changed), [`Error::Encode`], [`Error::WouldDeadlock`] inside an `update_with`
    /// closure of the same manager.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.push(&1)?;
    /// assert_eq!(l.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, value: &T) -> Result<(), Error> {
        let bytes = encode(value)?;
        let st = self.st();
        let _guard = self.handle.lock()?;
        let mut txn = Txn::new(st);
        let elem = raw_list::write_elem(&mut txn, &bytes)?;
        raw_list::push_elems(&mut txn, self.desc(), &[elem])?;
        txn.commit()
    }

    /// Appends every element, atomically (all or none).
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.to_vec()?, vec![1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<(), Error> {
        let encoded = values
            .into_iter()
            .map(|v| encode(&v))
            .collect::<Result<Vec<_>, _>>()?;
        let st = self.st();
        let _guard = self.handle.lock()?;
        let mut txn = Txn::new(st);
        let elems = encoded
            .iter()
            .map(|b| raw_list::write_elem(&mut txn, b))
            .collect::<Result<Vec<_>, _>>()?;
        raw_list::push_elems(&mut txn, self.desc(), &elems)?;
        txn.commit()
    }

    /// Removes and returns the last element.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`]; the lock errors of [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.push(&1)?;
    /// assert_eq!(l.pop()?, Some(1));
    /// assert_eq!(l.pop()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self) -> Result<Option<T>, Error> {
        let st = self.st();
        let mut bytes = Vec::new();
        {
            let _guard = self.handle.lock()?;
            let n = raw_list::len(st, self.desc());
            if n == 0 {
                return Ok(None);
            }
            let elem = raw_list::elem_at(st, self.desc(), n - 1);
            raw_list::read_elem(st, elem, &mut bytes);
            let mut txn = Txn::new(st);
            txn.wr(self.desc() + crate::layout::DESC_C, n - 1);
            txn.free(elem);
            txn.commit()?;
        }
        decode(&bytes).map(Some)
    }

    /// Element `index`, or `None` past the end. Reads without the lock, as
    /// [`SharedDict::get`](crate::SharedDict::get).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`]; [`Error::Removed`]; the lock errors ([`Error::NotRecoverable`], [`Error::Corrupt`]) in the rare case
    /// that it falls back to the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.push(&5)?;
    /// assert_eq!((l.get(0)?, l.get(1)?), (Some(5), None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<Option<T>, Error> {
        let desc = self.desc();
        let mut bytes = Buf::new();
        let found = self.handle.read(POINT_READ_TRIES, |m| {
            if index as u64 >= raw_list::len(m, desc) {
                return false;
            }
            raw_list::elem_into(m, raw_list::elem_at(m, desc, index as u64), &mut bytes);
            true
        })?;
        found.then(|| decode(bytes.as_slice())).transpose()
    }

    /// Replaces element `index`, returning the old one.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`]; otherwise as [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.push(&5)?;
    /// assert_eq!(l.set(0, &6)?, 5);
    /// assert!(l.set(1, &7).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, index: usize, value: &T) -> Result<T, Error> {
        let bytes = encode(value)?;
        let st = self.st();
        let mut old = Vec::new();
        {
            let _guard = self.handle.lock()?;
            self.in_range(index, raw_list::len(st, self.desc()))?;
            raw_list::read_elem(
                st,
                raw_list::elem_at(st, self.desc(), index as u64),
                &mut old,
            );
            let mut txn = Txn::new(st);
            let elem = raw_list::write_elem(&mut txn, &bytes)?;
            raw_list::set_elem(&mut txn, self.desc(), index as u64, elem);
            txn.commit()?;
        }
        decode(&old)
    }

    /// Atomic read-modify-write of element `index`: `f` changes it in place under the
    /// manager's lock (it must not write to the same manager — reads there see the state
    /// before this update — and should be quick).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`]; otherwise as [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<Vec<u8>>("l")?;
    /// l.push(&vec![])?;
    /// l.update_with(0, |v| v.push(9))?;
    /// assert_eq!(l.get(0)?, Some(vec![9]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update_with<R>(&self, index: usize, f: impl FnOnce(&mut T) -> R) -> Result<R, Error> {
        let st = self.st();
        let _guard = self.handle.lock()?;
        self.in_range(index, raw_list::len(st, self.desc()))?;
        let mut old = Vec::new();
        raw_list::read_elem(
            st,
            raw_list::elem_at(st, self.desc(), index as u64),
            &mut old,
        );
        let mut value: T = decode(&old)?;
        let result = f(&mut value);
        let bytes = encode(&value)?;
        if bytes != old {
            let mut txn = Txn::new(st);
            let elem = raw_list::write_elem(&mut txn, &bytes)?;
            raw_list::set_elem(&mut txn, self.desc(), index as u64, elem);
            txn.commit()?;
        }
        Ok(result)
    }

    /// Inserts `value` at `index` (`index <= len`), shifting the rest right.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`]; otherwise as [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.extend([1, 3])?;
    /// l.insert(1, &2)?;
    /// assert_eq!(l.to_vec()?, vec![1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert(&self, index: usize, value: &T) -> Result<(), Error> {
        let bytes = encode(value)?;
        let st = self.st();
        let _guard = self.handle.lock()?;
        let n = raw_list::len(st, self.desc());
        if index as u64 > n {
            return Err(Error::IndexOutOfRange {
                index,
                len: n as usize,
            });
        }
        let mut txn = Txn::new(st);
        let elem = raw_list::write_elem(&mut txn, &bytes)?;
        let mut slots = raw_list::elems(st, self.desc());
        slots.insert(index, elem);
        raw_list::replace_all(&mut txn, self.desc(), &slots)?;
        txn.commit()
    }

    /// Removes and returns element `index`, shifting the rest left.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`]; otherwise as [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.remove(0)?, 1);
    /// assert_eq!(l.to_vec()?, vec![2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, index: usize) -> Result<T, Error> {
        let st = self.st();
        let mut old = Vec::new();
        {
            let _guard = self.handle.lock()?;
            self.in_range(index, raw_list::len(st, self.desc()))?;
            let mut slots = raw_list::elems(st, self.desc());
            let elem = slots.remove(index);
            raw_list::read_elem(st, elem, &mut old);
            let mut txn = Txn::new(st);
            raw_list::replace_all(&mut txn, self.desc(), &slots)?;
            txn.free(elem);
            txn.commit()?;
        }
        decode(&old)
    }

    /// Shortens the list to `len` elements (no effect if it is not longer).
    ///
    /// # Errors
    ///
    /// The lock errors of [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.extend([1, 2, 3])?;
    /// l.truncate(1)?;
    /// assert_eq!(l.to_vec()?, vec![1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate(&self, len: usize) -> Result<(), Error> {
        let st = self.st();
        let _guard = self.handle.lock()?;
        let mut slots = raw_list::elems(st, self.desc());
        if len >= slots.len() {
            return Ok(());
        }
        let mut txn = Txn::new(st);
        for elem in slots.drain(len..) {
            txn.free(elem);
        }
        raw_list::replace_all(&mut txn, self.desc(), &slots)?;
        txn.commit()
    }

    /// Removes every element.
    ///
    /// # Errors
    ///
    /// As [`truncate`](Self::truncate).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.extend([1, 2])?;
    /// l.clear()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        self.truncate(0)
    }

    /// Number of elements.
    ///
    /// # Errors
    ///
    /// As [`truncate`](Self::truncate).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// assert_eq!(l.len()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> Result<usize, Error> {
        self.handle
            .read(POINT_READ_TRIES, |m| raw_list::len(m, self.desc()) as usize)
    }

    /// Whether the list is empty.
    ///
    /// # Errors
    ///
    /// As [`truncate`](Self::truncate).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// A snapshot of elements `range` (Python's `l[a:b]`, without negative indices).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`] when the range does not fit the list;
    /// [`Error::Decode`].
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.extend([1, 2, 3, 4])?;
    /// assert_eq!(l.range(1..3)?, vec![2, 3]);
    /// assert_eq!(l.range(..)?, vec![1, 2, 3, 4]);
    /// assert!(l.range(2..9).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn range(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>, Error> {
        let desc = self.desc();
        let raw: Result<Vec<Vec<u8>>, Error> = self.handle.read(SNAPSHOT_READ_TRIES, |m| {
            let (a, b) = bounds((range.start_bound(), range.end_bound()), len_of(m, desc))?;
            if m.room_for(((b - a) as u64).saturating_mul(8)).is_none() {
                return Ok(Vec::new());
            }
            Ok((a..b)
                .map(|i| {
                    let mut bytes = Vec::new();
                    raw_list::read_elem(m, raw_list::elem_at(m, desc, i as u64), &mut bytes);
                    bytes
                })
                .collect())
        })?;
        raw?.iter().map(|b| decode(b)).collect()
    }

    /// A snapshot of the whole list.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`]; the lock errors of [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u8>("l")?;
    /// l.push(&1)?;
    /// assert_eq!(l.to_vec()?, vec![1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.range(..)
    }

    /// An iterator over a snapshot ([`to_vec`](Self::to_vec)).
    ///
    /// # Errors
    ///
    /// As [`to_vec`](Self::to_vec).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_manager::Manager::new()?.list::<u32>("l")?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.iter()?.sum::<u32>(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Result<std::vec::IntoIter<T>, Error> {
        Ok(self.to_vec()?.into_iter())
    }
}
