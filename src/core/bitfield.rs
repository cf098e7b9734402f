//! Which blocks of a core are stored locally: hypercore's bitfield, kept in memory as the
//! 4096-byte pages that hypercore-storage persists (bit i of page p = block p*32768 + i,
//! least significant bit first). Changes return the pages to write, so the caller puts
//! them in the same write batch as the blocks.

use std::collections::BTreeMap;

pub const PAGE_BYTES: usize = 4096;
pub const PAGE_BITS: u64 = (PAGE_BYTES * 8) as u64;

#[derive(Debug, Default, Clone)]
pub struct Bitfield {
    pages: BTreeMap<u64, Vec<u8>>,
}

impl Bitfield {
    /// Builds the bitfield from stored pages; a page of the wrong size (foreign or corrupt
    /// data) is padded or cut rather than trusted blindly.
    pub fn from_pages(pages: Vec<(u64, Vec<u8>)>) -> Self {
        let mut map = BTreeMap::new();
        for (index, mut bytes) in pages {
            bytes.resize(PAGE_BYTES, 0);
            map.insert(index, bytes);
        }
        Self { pages: map }
    }

    /// A bitfield holding copies of only the pages that cover [start, end): a change is
    /// made on it, written, and merged back with `merge_pages` once committed.
    pub fn clone_pages_for(&self, start: u64, end: u64) -> Bitfield {
        let mut pages = BTreeMap::new();
        if end > start {
            for (k, v) in self.pages.range(start / PAGE_BITS..=(end - 1) / PAGE_BITS) {
                pages.insert(*k, v.clone());
            }
        }
        Bitfield { pages }
    }

    pub fn merge_pages(&mut self, other: Bitfield) {
        self.pages.extend(other.pages);
    }

    pub fn get(&self, index: u64) -> bool {
        let page = index / PAGE_BITS;
        let bit = (index % PAGE_BITS) as usize;
        match self.pages.get(&page) {
            Some(bytes) => bytes[bit / 8] & (1 << (bit % 8)) != 0,
            None => false,
        }
    }

    /// Sets or clears the bits of [start, end); returns the page indexes that changed.
    /// Pages held (each PAGE_BYTES of memory).
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    pub fn set_range(&mut self, start: u64, end: u64, value: bool) -> Vec<u64> {
        let mut changed = Vec::new();
        let mut i = start;
        while i < end {
            let page = i / PAGE_BITS;
            let page_end = ((page + 1) * PAGE_BITS).min(end);
            if !value && !self.pages.contains_key(&page) {
                i = page_end;
                continue;
            }
            let bytes = self
                .pages
                .entry(page)
                .or_insert_with(|| vec![0u8; PAGE_BYTES]);
            let mut touched = false;
            while i < page_end {
                let bit = (i % PAGE_BITS) as usize;
                // Whole bytes at a time where the range allows it.
                if bit.is_multiple_of(8) && i + 8 <= page_end {
                    let byte = if value { 0xff } else { 0 };
                    if bytes[bit / 8] != byte {
                        bytes[bit / 8] = byte;
                        touched = true;
                    }
                    i += 8;
                    continue;
                }
                let mask = 1u8 << (bit % 8);
                let before = bytes[bit / 8];
                bytes[bit / 8] = if value { before | mask } else { before & !mask };
                touched |= before != bytes[bit / 8];
                i += 1;
            }
            if touched {
                changed.push(page);
            }
        }
        changed
    }

    /// The page bytes to store, or None when the page is all zeros (then it is deleted).
    pub fn page(&self, page: u64) -> Option<&[u8]> {
        self.pages
            .get(&page)
            .filter(|b| b.iter().any(|&x| x != 0))
            .map(|b| b.as_slice())
    }

    /// True when every block of [start, end) is set.
    pub fn has_all(&self, start: u64, end: u64) -> bool {
        (start..end).all(|i| self.get(i))
    }

    /// The first index >= start whose bit is clear, looking no further than `limit`.
    pub fn first_unset(&self, start: u64, limit: u64) -> u64 {
        let mut i = start;
        while i < limit {
            let page = i / PAGE_BITS;
            let Some(bytes) = self.pages.get(&page) else {
                return i;
            };
            let bit = (i % PAGE_BITS) as usize;
            if bit.is_multiple_of(8) && bytes[bit / 8] == 0xff && i + 8 <= limit {
                i += 8;
                continue;
            }
            if bytes[bit / 8] & (1 << (bit % 8)) == 0 {
                return i;
            }
            i += 1;
        }
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_clear_across_pages() {
        let mut b = Bitfield::default();
        let changed = b.set_range(PAGE_BITS - 3, PAGE_BITS + 10, true);
        assert_eq!(changed, vec![0, 1]);
        assert!(b.get(PAGE_BITS - 3) && b.get(PAGE_BITS + 9));
        assert!(!b.get(PAGE_BITS + 10) && !b.get(PAGE_BITS - 4));
        assert_eq!(b.first_unset(PAGE_BITS - 3, 1 << 20), PAGE_BITS + 10);
        b.set_range(PAGE_BITS, PAGE_BITS + 1, false);
        assert_eq!(b.first_unset(PAGE_BITS - 3, 1 << 20), PAGE_BITS);
        assert!(b.has_all(PAGE_BITS - 3, PAGE_BITS));
        assert!(!b.has_all(PAGE_BITS - 3, PAGE_BITS + 1));
    }

    #[test]
    fn stored_bytes_are_lsb_first() {
        let mut b = Bitfield::default();
        b.set_range(0, 3, true);
        assert_eq!(b.page(0).map(|p| p[0]), Some(0b0000_0111));
        b.set_range(0, 3, false);
        assert!(b.page(0).is_none());
    }
}
