//! [`HeapReport`] and the full consistency check behind [`Manager::verify`](crate::Manager::verify).

use std::collections::{HashMap, HashSet};

use crate::error::Error;
use crate::layout::{
    BLOCK_HEADER, DESC_A, DESC_B, DESC_C, DESC_D, DESC_KIND, HEAP_START, KIND_DICT, KIND_LIST,
    KIND_MASK, KIND_NAMESPACE, KIND_REMOVED, KIND_VALUE, NCLASSES, NEXT_MASK, OFF_FREE_DESCRIPTORS,
    OFF_HEAP_TOP, OFF_LAST_ID, class_size, free_head,
};
use crate::store::{Mem, Store, hash_bytes};
use crate::{raw_dict, raw_list};

/// What [`Manager::verify`](crate::Manager::verify) found: a consistent heap's census.
///
/// # Examples
///
/// ```
/// let m = shm_manager::Manager::new()?;
/// m.list::<u8>("l")?.extend([1, 2, 3])?;
/// let report = m.verify()?;
/// assert_eq!(report.containers, 1);
/// assert_eq!(report.live_blocks + report.free_blocks, report.blocks);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeapReport {
    /// Containers in the directory.
    pub containers: usize,
    /// Blocks between the heap start and the heap top.
    pub blocks: usize,
    /// Blocks reachable from the directory.
    pub live_blocks: usize,
    /// Blocks on the free lists.
    pub free_blocks: usize,
    /// Bytes from the heap start to the heap top.
    pub heap_bytes: u64,
}

fn corrupt(reason: String) -> Error {
    Error::Corrupt { reason }
}

struct Census<'a> {
    st: &'a Store,
    blocks: HashMap<u64, usize>,
    live: HashSet<u64>,
}

impl Census<'_> {
    fn mark(&mut self, block: u64, min_payload: u64, what: &str) -> Result<(), Error> {
        let class = *self
            .blocks
            .get(&block)
            .ok_or_else(|| corrupt(format!("{what} at {block} is not a heap block")))?;
        if class_size(class) < BLOCK_HEADER + min_payload {
            return Err(corrupt(format!("{what} at {block} overflows its block")));
        }
        if !self.live.insert(block) {
            return Err(corrupt(format!("{what} at {block} is reachable twice")));
        }
        Ok(())
    }

    fn entry(&mut self, entry: u64, what: &str) -> Result<(), Error> {
        self.mark(entry, 8, what)?;
        let w = self.st.rd(entry + BLOCK_HEADER);
        let (k, v) = (w & 0xffff_ffff, w >> 32);
        self.mark_len(entry, 8 + k + v, what)
    }

    fn elem(&mut self, elem: u64, what: &str) -> Result<(), Error> {
        self.mark(elem, 8, what)?;
        let n = self.st.rd(elem + BLOCK_HEADER);
        self.mark_len(elem, 8 + n, what)
    }

    fn mark_len(&self, block: u64, payload: u64, what: &str) -> Result<(), Error> {
        if class_size(self.blocks[&block]) < BLOCK_HEADER + payload {
            return Err(corrupt(format!("{what} at {block} overflows its block")));
        }
        Ok(())
    }

    fn dict(&mut self, desc: u64, name: &str) -> Result<(), Error> {
        let st = self.st;
        let (cap, len, used) = (
            st.rd(desc + DESC_B),
            st.rd(desc + DESC_C),
            st.rd(desc + DESC_D),
        );
        if cap == 0 {
            if len != 0 || used != 0 {
                return Err(corrupt(format!("dict '{name}' has entries but no table")));
            }
            return Ok(());
        }
        if !cap.is_power_of_two() || used < len || used >= cap {
            return Err(corrupt(format!(
                "dict '{name}': capacity {cap}, length {len}, used {used}"
            )));
        }
        self.mark(st.rd(desc + DESC_A), 8 * cap, "dict table")?;
        let entries = raw_dict::entries(st, desc);
        if entries.len() as u64 != len {
            return Err(corrupt(format!(
                "dict '{name}' says {len} entries, its table holds {}",
                entries.len()
            )));
        }
        let mut key = Vec::new();
        for entry in entries {
            self.entry(entry, "dict entry")?;
            key.clear();
            raw_dict::read_key(st, entry, &mut key);
            match raw_dict::probe(st, desc, &key, hash_bytes(&key)) {
                raw_dict::Probe::Found(_, e) if e == entry => {}
                _ => return Err(corrupt(format!("dict '{name}': an entry is not findable"))),
            }
        }
        Ok(())
    }

    fn list(&mut self, desc: u64, name: &str) -> Result<(), Error> {
        let st = self.st;
        let (cap, len) = (st.rd(desc + DESC_B), st.rd(desc + DESC_C));
        if len > cap {
            return Err(corrupt(format!(
                "list '{name}': length {len} > capacity {cap}"
            )));
        }
        if cap != 0 {
            self.mark(st.rd(desc + DESC_A), 8 * cap, "list array")?;
        }
        for elem in raw_list::elems(st, desc) {
            self.elem(elem, "list element")?;
        }
        Ok(())
    }
}

/// The full check (lock held).
pub(crate) fn verify(st: &Store) -> Result<HeapReport, Error> {
    let top = st.rd(OFF_HEAP_TOP);
    if top < HEAP_START || top > st.seg.data_len() as u64 {
        return Err(corrupt(format!("heap top {top} outside the segment")));
    }
    let mut blocks = HashMap::new();
    let mut at = HEAP_START;
    while at < top {
        let class = (st.rd(at) >> 56) as usize;
        if class >= NCLASSES {
            return Err(corrupt(format!("block at {at} has class {class}")));
        }
        blocks.insert(at, class);
        at += class_size(class);
    }
    if at != top {
        return Err(corrupt(format!(
            "blocks end at {at}, the heap top is {top}"
        )));
    }
    let mut free = HashSet::new();
    for class in 0..NCLASSES {
        let mut b = st.rd(free_head(class));
        while b != 0 {
            if blocks.get(&b) != Some(&class) {
                return Err(corrupt(format!(
                    "free list {class} holds {b}, not a block of it"
                )));
            }
            if !free.insert(b) {
                return Err(corrupt(format!("free list {class} has a cycle at {b}")));
            }
            b = st.rd(b) & NEXT_MASK;
        }
    }
    let mut census = Census {
        st,
        blocks,
        live: HashSet::new(),
    };
    let dir = st.directory();
    census.mark(dir, 56, "directory")?;
    census.dict(dir, "<directory>")?;
    let containers = raw_dict::entries(st, dir);
    let mut ids = HashSet::new();
    for &entry in &containers {
        let mut name = Vec::new();
        raw_dict::read_key(st, entry, &mut name);
        let name = String::from_utf8_lossy(&name).into_owned();
        let mut value = Vec::new();
        raw_dict::read_value(st, entry, &mut value);
        let desc = u64::from_le_bytes(
            value
                .try_into()
                .map_err(|_| corrupt(format!("directory entry of '{name}'")))?,
        );
        census.mark(desc, 56, "descriptor")?;
        let word = st.rd(desc + DESC_KIND);
        let id = word >> 8;
        if id == 0 || id > st.rd(OFF_LAST_ID) || !ids.insert(id) {
            return Err(corrupt(format!("container '{name}' has id {id}")));
        }
        match word & KIND_MASK {
            KIND_DICT | KIND_NAMESPACE => census.dict(desc, &name)?,
            KIND_LIST => census.list(desc, &name)?,
            KIND_VALUE => {
                let elem = st.rd(desc + DESC_A);
                if elem != 0 {
                    census.elem(elem, "value")?;
                }
            }
            kind => return Err(corrupt(format!("container '{name}' has kind {kind}"))),
        }
    }
    // Removed containers' descriptors: live (kept as descriptors), marked removed.
    let mut removed = st.rd(OFF_FREE_DESCRIPTORS);
    while removed != 0 {
        census.mark(removed, 56, "removed descriptor")?;
        if st.rd(removed + DESC_KIND) != KIND_REMOVED {
            return Err(corrupt(format!(
                "free descriptor {removed} is not marked removed"
            )));
        }
        removed = st.rd(removed + DESC_A);
    }
    if let Some(b) = census.live.intersection(&free).next() {
        return Err(corrupt(format!("block {b} is both live and free")));
    }
    let (nblocks, nlive, nfree) = (census.blocks.len(), census.live.len(), free.len());
    if nlive + nfree != nblocks {
        return Err(corrupt(format!(
            "{} of {nblocks} blocks are neither live nor free (leaked)",
            nblocks - nlive - nfree
        )));
    }
    Ok(HeapReport {
        containers: containers.len(),
        blocks: nblocks,
        live_blocks: nlive,
        free_blocks: nfree,
        heap_bytes: top - HEAP_START,
    })
}
