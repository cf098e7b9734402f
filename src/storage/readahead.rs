//! Blocks read ahead for readers that go through a core in order. A peer downloading a
//! core asks for its blocks one after another, and each point read is a RocksDB lookup of
//! its own (memtable, bloom filters, index); one scan yields the next blocks for much less:
//! 100,000 stored 1 KiB blocks read in 1.0 µs a block one by one, 0.55 µs in scans of 16
//! (docs/DECISIONS.md §44).
//!
//! The window holds what one scan found, as of that scan: [`crate::storage::Storage`]
//! forgets every window when a write stores or deletes a block, so a read here answers as
//! RocksDB would.

use std::collections::VecDeque;

/// What a scan found: blocks by index, ascending.
pub type Found = Vec<(u64, Vec<u8>)>;

/// Blocks one scan reads ahead, at most.
pub const SPAN: u64 = 16;

/// Bytes one scan keeps, at most: the scan stops after the block that reaches it.
pub const MAX_BYTES: usize = 64 * 1024;

/// Data pointers followed at once (cores downloaded by peers at the same time).
const SLOTS: usize = 8;

/// What was read at and after one index of one core.
struct Window {
    data_pointer: u64,
    /// the index the next in-order read asks for
    next: u64,
    /// the index of `blocks[0]`
    start: u64,
    /// blocks `start..`: `None` where the scan found no block
    blocks: VecDeque<Option<Vec<u8>>>,
}

#[derive(Default)]
pub struct ReadAhead {
    windows: Vec<Window>,
}

/// What a read should do, by what the windows hold.
pub enum Plan {
    /// The block (or its absence) as the last scan found it.
    Known(Option<Vec<u8>>),
    /// An in-order read past the window: scan from the index.
    Scan,
    /// A read out of order: one point read.
    Point,
}

impl ReadAhead {
    pub fn plan(&mut self, data_pointer: u64, index: u64) -> Plan {
        let Some(w) = self
            .windows
            .iter_mut()
            .find(|w| w.data_pointer == data_pointer)
        else {
            self.note(data_pointer, index);
            return Plan::Point;
        };
        let in_order = index == w.next;
        w.next = index + 1;
        if let Some(offset) = index.checked_sub(w.start) {
            if let Some(block) = w.blocks.get(offset as usize) {
                let block = block.clone();
                // what lies before the index is behind this reader
                w.blocks.drain(..offset as usize);
                w.start = index;
                return Plan::Known(block);
            }
        }
        if in_order {
            Plan::Scan
        } else {
            Plan::Point
        }
    }

    /// Records a scan from `start` that found `found` (ascending, each at or after `start`)
    /// and covered the indexes up to `end` (exclusive); returns the block at `start`.
    pub fn fill(
        &mut self,
        data_pointer: u64,
        start: u64,
        end: u64,
        found: Found,
    ) -> Option<Vec<u8>> {
        let mut blocks: VecDeque<Option<Vec<u8>>> = (start..end.max(start)).map(|_| None).collect();
        for (index, block) in found {
            if let Some(slot) = index
                .checked_sub(start)
                .and_then(|o| blocks.get_mut(o as usize))
            {
                *slot = Some(block);
            }
        }
        let first = blocks.pop_front().flatten();
        let w = self.window(data_pointer);
        w.start = start + 1;
        w.next = start + 1;
        w.blocks = blocks;
        first
    }

    /// Forgets everything read ahead: blocks were written or deleted.
    pub fn clear(&mut self) {
        self.windows.clear();
    }

    fn note(&mut self, data_pointer: u64, index: u64) {
        let w = self.window(data_pointer);
        w.next = index + 1;
    }

    /// The window of `data_pointer`, made (in place of the oldest one when all slots are
    /// taken) if there is none.
    fn window(&mut self, data_pointer: u64) -> &mut Window {
        let at = match self
            .windows
            .iter()
            .position(|w| w.data_pointer == data_pointer)
        {
            Some(at) => at,
            None => {
                if self.windows.len() >= SLOTS {
                    self.windows.remove(0);
                }
                self.windows.push(Window {
                    data_pointer,
                    next: 0,
                    start: 0,
                    blocks: VecDeque::new(),
                });
                self.windows.len() - 1
            }
        };
        &mut self.windows[at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_reads_scan_once_a_window() {
        let mut ra = ReadAhead::default();
        assert!(matches!(ra.plan(7, 10), Plan::Point));
        assert!(matches!(ra.plan(7, 11), Plan::Scan));
        let found = vec![
            (11, b"b11".to_vec()),
            (12, b"b12".to_vec()),
            (14, b"b14".to_vec()),
        ];
        assert_eq!(ra.fill(7, 11, 15, found), Some(b"b11".to_vec()));
        assert!(matches!(ra.plan(7, 12), Plan::Known(Some(b)) if b == b"b12"));
        // a block the scan did not find is not stored
        assert!(matches!(ra.plan(7, 13), Plan::Known(None)));
        assert!(matches!(ra.plan(7, 14), Plan::Known(Some(b)) if b == b"b14"));
        assert!(matches!(ra.plan(7, 15), Plan::Scan));
        // another core has its own window; a jump is a point read
        assert!(matches!(ra.plan(8, 15), Plan::Point));
        assert!(matches!(ra.plan(7, 40), Plan::Point));
        ra.clear();
        assert!(matches!(ra.plan(7, 41), Plan::Point));
    }

    #[test]
    fn reads_behind_the_window_are_point_reads() {
        let mut ra = ReadAhead::default();
        ra.plan(1, 0);
        ra.plan(1, 1);
        ra.fill(1, 1, 5, vec![(2, b"b2".to_vec()), (3, b"b3".to_vec())]);
        assert!(matches!(ra.plan(1, 3), Plan::Known(Some(b)) if b == b"b3"));
        // 2 was passed over; 1 was the scan's first
        assert!(matches!(ra.plan(1, 2), Plan::Point));
        assert!(matches!(ra.plan(1, 1), Plan::Point));
    }
}
