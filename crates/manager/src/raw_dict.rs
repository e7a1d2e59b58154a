//! The hash table behind [`SharedDict`](crate::SharedDict), the directory and
//! [`Namespace`](crate::Namespace), on encoded keys and values.
//!
//! Open addressing with linear probing over a power-of-two array of slot words
//! ([`SLOT_EMPTY`], [`SLOT_TOMBSTONE`], or entry offset | 16-bit hash tag). The table is
//! rebuilt (into a new block, then switched in the descriptor) when used slots would pass
//! 3/4 of the capacity. Entries are copy-on-write: replacing a value writes a new entry
//! and switches the slot.

use crate::error::Error;
use crate::layout::{
    BLOCK_HEADER, DESC_A, DESC_B, DESC_C, DESC_D, ENTRY_DATA, SLOT_EMPTY, SLOT_OFFSET_MASK,
    SLOT_TOMBSTONE, addr,
};
use crate::store::{Buf, Mem, Store, Txn, hash_bytes};

fn tag(hash: u64) -> u64 {
    hash >> 48
}

/// Offset of slot `i` of table block `table`.
fn slot(table: u64, i: u64) -> u64 {
    addr(table, BLOCK_HEADER).wrapping_add(i.wrapping_mul(8))
}

/// `(key_len, value_len)` of entry block `entry`.
fn lens(m: &impl Mem, entry: u64) -> (u64, u64) {
    let w = m.rd(addr(entry, BLOCK_HEADER));
    (w & 0xffff_ffff, w >> 32)
}

/// The key bytes of `entry`, appended to `out`.
pub(crate) fn read_key(m: &impl Mem, entry: u64, out: &mut Vec<u8>) {
    let (k, _) = lens(m, entry);
    m.read_bytes(addr(entry, ENTRY_DATA), k, out);
}

/// The value bytes of `entry`, appended to `out`.
pub(crate) fn read_value(m: &impl Mem, entry: u64, out: &mut Vec<u8>) {
    let (k, v) = lens(m, entry);
    m.read_bytes(addr(entry, ENTRY_DATA + k), v, out);
}

/// Where `key` is, or where it would go.
pub(crate) enum Probe {
    /// Slot offset and entry block.
    Found(u64, u64),
    /// Slot offset to insert at (the first tombstone or empty slot met) and whether that
    /// slot is empty (not a tombstone).
    Vacant(u64, bool),
    /// The table has no slots.
    NoTable,
}

/// Looks `key` (hash `hash`) up in dict `desc`.
pub(crate) fn probe(m: &impl Mem, desc: u64, key: &[u8], hash: u64) -> Probe {
    let cap = m.rd(desc + DESC_B);
    if cap == 0 {
        return Probe::NoTable;
    }
    let table = m.rd(desc + DESC_A);
    let mask = cap - 1;
    let mut i = hash & mask;
    let mut vacant = None;
    for n in 0..cap {
        // A reader without the lock whose view went stale may be walking garbage.
        if n % 1024 == 1023 && m.stale() {
            return Probe::NoTable;
        }
        let at = slot(table, i);
        let s = m.rd(at);
        if s == SLOT_EMPTY {
            return match vacant {
                Some(t) => Probe::Vacant(t, false),
                None => Probe::Vacant(at, true),
            };
        }
        if s == SLOT_TOMBSTONE {
            vacant.get_or_insert(at);
        } else if s >> 48 == tag(hash) {
            let entry = s & SLOT_OFFSET_MASK;
            let (k, _) = lens(m, entry);
            if k == key.len() as u64 && m.bytes_eq(addr(entry, ENTRY_DATA), key) {
                return Probe::Found(at, entry);
            }
        }
        i = (i + 1) & mask;
    }
    match vacant {
        Some(t) => Probe::Vacant(t, false),
        None => Probe::NoTable,
    }
}

/// Number of entries.
pub(crate) fn len(m: &impl Mem, desc: u64) -> u64 {
    m.rd(desc + DESC_C)
}

/// The value bytes for `key`, appended to `out`; whether it was there.
pub(crate) fn get(m: &impl Mem, desc: u64, key: &[u8], out: &mut Vec<u8>) -> bool {
    match probe(m, desc, key, hash_bytes(key)) {
        Probe::Found(_, entry) => {
            read_value(m, entry, out);
            true
        }
        _ => false,
    }
}

/// The value bytes for `key` (hash `hash`) into `out`; whether it was there.
#[inline]
pub(crate) fn get_into(m: &impl Mem, desc: u64, key: &[u8], hash: u64, out: &mut Buf) -> bool {
    match probe(m, desc, key, hash) {
        Probe::Found(_, entry) => {
            let (k, v) = lens(m, entry);
            out.fill(m, addr(entry, ENTRY_DATA + k), v);
            true
        }
        _ => false,
    }
}

/// Every live entry block, in table order.
pub(crate) fn entries(m: &impl Mem, desc: u64) -> Vec<u64> {
    let cap = m.rd(desc + DESC_B);
    let table = m.rd(desc + DESC_A);
    if m.room_for(cap.saturating_mul(8)).is_none() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(m.rd(desc + DESC_C).min(cap) as usize);
    for i in 0..cap {
        if i % 1024 == 1023 && m.stale() {
            break;
        }
        let s = m.rd(slot(table, i));
        if s != SLOT_EMPTY && s != SLOT_TOMBSTONE {
            out.push(s & SLOT_OFFSET_MASK);
        }
    }
    out
}

fn write_entry(txn: &mut Txn<'_>, key: &[u8], value: &[u8]) -> Result<u64, Error> {
    let (k, v) = (key.len() as u64, value.len() as u64);
    if k > u32::MAX as u64 || v > u32::MAX as u64 {
        return Err(Error::CapacityExceeded {
            requested: k + v,
            limit: u32::MAX as u64,
        });
    }
    let entry = txn.alloc(8 + k + v)?;
    let st = txn.store();
    st.put(entry + BLOCK_HEADER, k | v << 32);
    st.write_payload(entry + ENTRY_DATA, [key, value]);
    Ok(entry)
}

/// Rebuilds the table of `desc` with room for `want` entries (capacity a power of two,
/// live entries at most half of it).
fn rebuild(txn: &mut Txn<'_>, desc: u64, want: u64) -> Result<(), Error> {
    let cap = (want.max(4) * 2).next_power_of_two();
    let live = entries(txn, desc);
    let table = txn.alloc(8 * cap)?;
    let st = txn.store();
    st.ensure(table + BLOCK_HEADER + 8 * cap)?;
    for i in 0..cap {
        st.put(slot(table, i), SLOT_EMPTY);
    }
    let mut key = Vec::new();
    for &entry in &live {
        key.clear();
        read_key(st, entry, &mut key);
        let hash = hash_bytes(&key);
        let mut i = hash & (cap - 1);
        while st.rd(slot(table, i)) != SLOT_EMPTY {
            i = (i + 1) & (cap - 1);
        }
        st.put(slot(table, i), entry | tag(hash) << 48);
    }
    let old = txn.rd(desc + DESC_A);
    if txn.rd(desc + DESC_B) != 0 {
        txn.free(old);
    }
    txn.wr(desc + DESC_A, table);
    txn.wr(desc + DESC_B, cap);
    txn.wr(desc + DESC_D, live.len() as u64);
    Ok(())
}

/// Makes room for `extra` more used slots.
pub(crate) fn reserve(txn: &mut Txn<'_>, desc: u64, extra: u64) -> Result<(), Error> {
    let cap = txn.rd(desc + DESC_B);
    let used = txn.rd(desc + DESC_D);
    if (used + extra) * 4 > cap * 3 {
        let len = txn.rd(desc + DESC_C);
        rebuild(txn, desc, len + extra)?;
    }
    Ok(())
}

/// Inserts or replaces; returns the replaced entry block, whose bytes stay readable (see
/// [`with_entry_value`]) until the lock is released.
pub(crate) fn insert(
    txn: &mut Txn<'_>,
    desc: u64,
    key: &[u8],
    value: &[u8],
) -> Result<Option<u64>, Error> {
    reserve(txn, desc, 1)?;
    let hash = hash_bytes(key);
    match probe(txn, desc, key, hash) {
        Probe::Found(at, entry) => {
            let new = write_entry(txn, key, value)?;
            txn.wr(at, new | tag(hash) << 48);
            txn.free(entry);
            Ok(Some(entry))
        }
        Probe::Vacant(at, empty) => {
            let new = write_entry(txn, key, value)?;
            txn.wr(at, new | tag(hash) << 48);
            let n = txn.rd(desc + DESC_C);
            txn.wr(desc + DESC_C, n + 1);
            if empty {
                let used = txn.rd(desc + DESC_D);
                txn.wr(desc + DESC_D, used + 1);
            }
            Ok(None)
        }
        Probe::NoTable => Err(Error::Corrupt {
            reason: "a dict table has no free slot".into(),
        }),
    }
}

/// Runs `f` on (a copy of) the value bytes of entry block `entry`. A block freed by the
/// last commit stays intact until the next allocation, so this works on the entries that
/// [`insert`] and [`remove`] return, while the lock is held.
pub(crate) fn with_entry_value<R>(st: &Store, entry: u64, f: impl FnOnce(&[u8]) -> R) -> R {
    let (k, v) = lens(st, entry);
    let mut buf = Buf::new();
    buf.fill(st, entry + ENTRY_DATA + k, v);
    f(buf.as_slice())
}

/// Removes `key`; returns its entry block (readable as in [`insert`]).
pub(crate) fn remove(txn: &mut Txn<'_>, desc: u64, key: &[u8]) -> Option<u64> {
    match probe(txn, desc, key, hash_bytes(key)) {
        Probe::Found(at, entry) => {
            // A slot followed by an empty one ends every probe sequence through it: it can
            // become empty itself instead of a tombstone.
            let (cap, table) = (txn.rd(desc + DESC_B), txn.rd(desc + DESC_A));
            let next = slot(table, ((at - slot(table, 0)) / 8 + 1) & (cap - 1));
            if txn.rd(next) == SLOT_EMPTY {
                txn.wr(at, SLOT_EMPTY);
                let used = txn.rd(desc + DESC_D);
                txn.wr(desc + DESC_D, used - 1);
            } else {
                txn.wr(at, SLOT_TOMBSTONE);
            }
            let n = txn.rd(desc + DESC_C);
            txn.wr(desc + DESC_C, n - 1);
            txn.free(entry);
            Some(entry)
        }
        _ => None,
    }
}

/// Removes every entry and the table.
pub(crate) fn clear(txn: &mut Txn<'_>, desc: u64) {
    for entry in entries(txn, desc) {
        txn.free(entry);
    }
    if txn.rd(desc + DESC_B) != 0 {
        let table = txn.rd(desc + DESC_A);
        txn.free(table);
    }
    for field in [DESC_A, DESC_B, DESC_C, DESC_D] {
        txn.wr(desc + field, 0);
    }
}
