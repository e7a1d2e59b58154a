//! [`SharedValue`]: one value in shared memory.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::handle::{Handle, decode, encode, proxy_impls, type_id};
use crate::layout::{DESC_A, KIND_VALUE};
use crate::raw_list;
use crate::store::{Buf, Mem, POINT_READ_TRIES, Store, Txn};

pub(crate) fn expected<T>() -> String {
    format!("SharedValue<{}>", std::any::type_name::<T>())
}

/// One value of any serde type in a [`Manager`](crate::Manager)'s shared memory (Python's
/// `Manager().Value`), unset until first [`set`](Self::set). Replacing it is atomic, also
/// under SIGKILL.
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// let status = m.value::<String>("status")?;
/// status.set(&"running".into())?;
/// assert_eq!(status.get()?.as_deref(), Some("running"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedValue<T> {
    handle: Handle,
    _types: PhantomData<fn() -> T>,
}

proxy_impls!(
    SharedValue<T>,
    KIND_VALUE,
    (type_id::<T>(), 0),
    expected::<T>
);

impl<T> SharedValue<T> {
    pub(crate) fn from_handle(handle: Handle) -> Self {
        SharedValue {
            handle,
            _types: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> SharedValue<T> {
    fn st(&self) -> &Store {
        &self.handle.store
    }

    /// The value, or `None` while unset. Reads without the lock, as
    /// [`SharedDict::get`](crate::SharedDict::get).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`]; [`Error::Removed`] when the container was removed; the lock errors ([`Error::NotRecoverable`], [`Error::Corrupt`]) in the rare case
    /// that it falls back to the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shm_manager::Manager::new()?.value::<u8>("v")?;
    /// assert_eq!(v.get()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<Option<T>, Error> {
        let desc = self.handle.desc;
        let mut bytes = Buf::new();
        let found = self.handle.read(POINT_READ_TRIES, |m| {
            let elem = m.rd(desc + DESC_A);
            if elem != 0 {
                raw_list::elem_into(m, elem, &mut bytes);
            }
            elem != 0
        })?;
        found.then(|| decode(bytes.as_slice())).transpose()
    }

    /// Sets the value, returning the previous one.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`], [`Error::CapacityExceeded`], [`Error::NoSpace`]; otherwise as
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shm_manager::Manager::new()?.value::<u8>("v")?;
    /// assert_eq!(v.set(&1)?, None);
    /// assert_eq!(v.set(&2)?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, value: &T) -> Result<Option<T>, Error> {
        let bytes = encode(value)?;
        let st = self.st();
        let at = self.handle.desc + DESC_A;
        let mut old = Vec::new();
        let had = {
            let _guard = self.handle.lock()?;
            let elem = st.rd(at);
            if elem != 0 {
                raw_list::read_elem(st, elem, &mut old);
            }
            let mut txn = Txn::new(st);
            let fresh = raw_list::write_elem(&mut txn, &bytes)?;
            txn.wr(at, fresh);
            if elem != 0 {
                txn.free(elem);
            }
            txn.commit()?;
            elem != 0
        };
        had.then(|| decode(&old)).transpose()
    }

    /// Atomic read-modify-write: `f` gets the value (`None` while unset) and may change,
    /// set or unset it, under the manager's lock (it must not write to the same manager;
    /// reads there see the state before this update).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shm_manager::Manager::new()?.value::<u64>("counter")?;
    /// for _ in 0..3 {
    ///     v.update_with(|n| *n.get_or_insert(0) += 1)?;
    /// }
    /// assert_eq!(v.get()?, Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update_with<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> Result<R, Error> {
        let st = self.st();
        let at = self.handle.desc + DESC_A;
        let _guard = self.handle.lock()?;
        let elem = st.rd(at);
        let mut old = Vec::new();
        let mut value = if elem == 0 {
            None
        } else {
            raw_list::read_elem(st, elem, &mut old);
            Some(decode(&old)?)
        };
        let result = f(&mut value);
        let new = value.as_ref().map(encode).transpose()?;
        if new.as_deref() != (elem != 0).then_some(&old[..]) {
            let mut txn = Txn::new(st);
            let fresh = match &new {
                Some(bytes) => raw_list::write_elem(&mut txn, bytes)?,
                None => 0,
            };
            txn.wr(at, fresh);
            if elem != 0 {
                txn.free(elem);
            }
            txn.commit()?;
        }
        Ok(result)
    }

    /// Unsets the value, returning it.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shm_manager::Manager::new()?.value::<u8>("v")?;
    /// v.set(&4)?;
    /// assert_eq!(v.take()?, Some(4));
    /// assert_eq!(v.get()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take(&self) -> Result<Option<T>, Error> {
        self.update_with(Option::take)
    }
}
