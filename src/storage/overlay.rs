//! The pending writes of an atom (hypercore-storage's "view"): batches that sessions of the
//! atom wrote but that are not in RocksDB yet. Reads through an atom see them first
//! (read-your-writes); `take` hands them over as one batch, in the order they were made,
//! so flushing an atom is one RocksDB write however many cores it touched.

use std::collections::BTreeMap;

use crate::storage::{Batch, BatchOp, Result, Storage};

/// Raw reads from the `corestore` column family, directly or through an atom's writes.
pub trait Reader {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
}

impl Reader for Storage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_raw(key)
    }
}

#[derive(Default)]
pub struct Overlay {
    ops: Vec<BatchOp>,
    /// The last write of each key: `None` for a delete.
    values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Range deletes; a key written after one is in `values`.
    cleared: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn apply(&mut self, batch: Batch) {
        for op in batch.into_ops() {
            match &op {
                BatchOp::Put(k, v) => {
                    self.values.insert(k.clone(), Some(v.clone()));
                }
                BatchOp::Delete(k) => {
                    self.values.insert(k.clone(), None);
                }
                BatchOp::DeleteRange(s, e) => {
                    for (_, v) in self.values.range_mut(s.clone()..e.clone()) {
                        *v = None;
                    }
                    self.cleared.push((s.clone(), e.clone()));
                }
            }
            self.ops.push(op);
        }
    }

    pub fn read(&self, storage: &Storage, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.values.get(key) {
            return Ok(v.clone());
        }
        let cleared = self
            .cleared
            .iter()
            .any(|(s, e)| s.as_slice() <= key && key < e.as_slice());
        if cleared {
            return Ok(None);
        }
        storage.get_raw(key)
    }

    /// The entries of `[start, end)` as a read through the overlay sees them, in key order.
    pub fn scan(
        &self,
        storage: &Storage,
        start: &[u8],
        end: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged = BTreeMap::new();
        storage.scan_raw(start, end, |k, v| {
            let cleared = self
                .cleared
                .iter()
                .any(|(s, e)| s.as_slice() <= k && k < e.as_slice());
            if !cleared {
                merged.insert(k.to_vec(), v.to_vec());
            }
            Ok(true)
        })?;
        for (k, v) in self.values.range(start.to_vec()..end.to_vec()) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// Everything written, as one batch; the overlay is empty afterwards.
    pub fn take(&mut self) -> Batch {
        self.values.clear();
        self.cleared.clear();
        Batch::from_ops(std::mem::take(&mut self.ops))
    }
}

/// Reads through an atom's writes.
pub struct Overlaid<'a> {
    pub overlay: &'a Overlay,
    pub storage: &'a Storage,
}

impl Reader for Overlaid<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.overlay.read(self.storage, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_writes_win_over_earlier_range_deletes_and_back() {
        let mut o = Overlay::default();
        let mut b = Batch::new();
        b.put_raw(b"a1".to_vec(), b"x".to_vec());
        b.put_raw(b"a2".to_vec(), b"y".to_vec());
        b.delete_range_raw(b"a".to_vec(), b"b".to_vec());
        b.put_raw(b"a2".to_vec(), b"z".to_vec());
        o.apply(b);
        assert_eq!(o.values.get(b"a1".as_slice()), Some(&None));
        assert_eq!(o.values.get(b"a2".as_slice()), Some(&Some(b"z".to_vec())));
        let batch = o.take();
        assert_eq!(batch.len(), 4);
        assert!(o.is_empty());
    }
}
