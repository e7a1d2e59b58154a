//! The offset array behind [`SharedList`](crate::SharedList) and the single entry behind
//! [`SharedValue`](crate::SharedValue), on encoded elements.
//!
//! A list descriptor holds its array block (`a`), capacity (`b`) and length (`c`); slot
//! `i` of the array holds the block of element `i`, whose payload is a length word and the
//! bytes. `push`, `pop` and `set` change a slot and the length; operations that move
//! elements write a new array and switch it in the descriptor.

use crate::error::Error;
use crate::layout::{BLOCK_HEADER, DESC_A, DESC_B, DESC_C, ENTRY_DATA, addr};
use crate::store::{Buf, Mem, Txn};

fn slot(array: u64, i: u64) -> u64 {
    addr(array, BLOCK_HEADER).wrapping_add(i.wrapping_mul(8))
}

/// Length.
pub(crate) fn len(m: &impl Mem, desc: u64) -> u64 {
    m.rd(desc + DESC_C)
}

/// The bytes of element block `elem`, appended to `out`.
pub(crate) fn read_elem(m: &impl Mem, elem: u64, out: &mut Vec<u8>) {
    let n = m.rd(addr(elem, BLOCK_HEADER));
    m.read_bytes(addr(elem, ENTRY_DATA), n, out);
}

/// The bytes of element block `elem`, into `out`.
pub(crate) fn elem_into(m: &impl Mem, elem: u64, out: &mut Buf) {
    let n = m.rd(addr(elem, BLOCK_HEADER));
    out.fill(m, addr(elem, ENTRY_DATA), n);
}

/// Writes `bytes` into a new element block.
pub(crate) fn write_elem(txn: &mut Txn<'_>, bytes: &[u8]) -> Result<u64, Error> {
    let elem = txn.alloc(8 + bytes.len() as u64)?;
    let st = txn.store();
    st.put(elem + BLOCK_HEADER, bytes.len() as u64);
    st.write_payload(elem + ENTRY_DATA, [bytes, &[]]);
    Ok(elem)
}

/// The element block at `i` (`i < len`).
pub(crate) fn elem_at(m: &impl Mem, desc: u64, i: u64) -> u64 {
    m.rd(slot(m.rd(desc + DESC_A), i))
}

/// All element blocks, in order.
pub(crate) fn elems(m: &impl Mem, desc: u64) -> Vec<u64> {
    let array = m.rd(desc + DESC_A);
    let n = len(m, desc);
    if m.room_for(n.saturating_mul(8)).is_none() {
        return Vec::new();
    }
    (0..n).map(|i| m.rd(slot(array, i))).collect()
}

/// Replaces the whole slot array by `slots` (in a new array block).
pub(crate) fn replace_all(txn: &mut Txn<'_>, desc: u64, slots: &[u64]) -> Result<(), Error> {
    let old_cap = txn.rd(desc + DESC_B);
    let old = txn.rd(desc + DESC_A);
    if slots.is_empty() {
        for f in [DESC_A, DESC_B, DESC_C] {
            txn.wr(desc + f, 0);
        }
    } else {
        let cap = (slots.len() as u64).next_power_of_two().max(4);
        let array = txn.alloc(8 * cap)?;
        let st = txn.store();
        for (i, &s) in slots.iter().enumerate() {
            st.put(slot(array, i as u64), s);
        }
        txn.wr(desc + DESC_A, array);
        txn.wr(desc + DESC_B, cap);
        txn.wr(desc + DESC_C, slots.len() as u64);
    }
    if old_cap != 0 {
        txn.free(old);
    }
    Ok(())
}

/// Appends element blocks.
pub(crate) fn push_elems(txn: &mut Txn<'_>, desc: u64, new: &[u64]) -> Result<(), Error> {
    let n = len(txn, desc);
    let cap = txn.rd(desc + DESC_B);
    if n + new.len() as u64 > cap {
        let mut all = elems(txn, desc);
        all.extend_from_slice(new);
        // Double, so that pushes are amortised O(1).
        let want = (n + new.len() as u64).max(cap * 2);
        let mut padded = all.clone();
        padded.resize(want as usize, 0);
        replace_all(txn, desc, &padded)?;
        txn.wr(desc + DESC_C, all.len() as u64);
        return Ok(());
    }
    let array = txn.rd(desc + DESC_A);
    for (i, &e) in new.iter().enumerate() {
        txn.wr(slot(array, n + i as u64), e);
    }
    txn.wr(desc + DESC_C, n + new.len() as u64);
    Ok(())
}

/// Sets slot `i` (`i < len`) to `elem`, freeing the old element.
pub(crate) fn set_elem(txn: &mut Txn<'_>, desc: u64, i: u64, elem: u64) {
    let at = slot(txn.rd(desc + DESC_A), i);
    let old = txn.rd(at);
    txn.wr(at, elem);
    txn.free(old);
}

/// Frees every element and the slot array.
pub(crate) fn clear(txn: &mut Txn<'_>, desc: u64) {
    for elem in elems(txn, desc) {
        txn.free(elem);
    }
    if txn.rd(desc + DESC_B) != 0 {
        let array = txn.rd(desc + DESC_A);
        txn.free(array);
    }
    for field in [DESC_A, DESC_B, DESC_C] {
        txn.wr(desc + field, 0);
    }
}
