//! The pending writes of an atom (hypercore-storage's "view"): batches that sessions of the
//! atom wrote but that are not in RocksDB yet. Reads through an atom see them first
//! (read-your-writes); `take` hands them over as one batch, in the order they were made,
//! so flushing an atom is one RocksDB write however many cores it touched.

use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// What a read sees of the ops. Shared with the snapshots taken of the atom's states
    /// (`frozen`) and copied on the next write while one holds it, as hypercore-storage's
    /// view copies its changes for its readers.
    index: Arc<Pending>,
}

/// The pending writes as reads see them.
#[derive(Default, Clone)]
pub struct Pending {
    /// The last write of each key: `None` for a delete.
    values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Range deletes; a key written after one is in `values`.
    cleared: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Pending {
    /// `Some(value)` when the pending writes decide the key (`Some(None)`: deleted),
    /// `None` when a read must go on to what is stored.
    fn lookup(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        if let Some(v) = self.values.get(key) {
            return Some(v.clone());
        }
        self.cleared
            .iter()
            .any(|(s, e)| s.as_slice() <= key && key < e.as_slice())
            .then_some(None)
    }
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn apply(&mut self, batch: Batch) {
        let index = Arc::make_mut(&mut self.index);
        for op in batch.into_ops() {
            match &op {
                BatchOp::Put(k, v) => {
                    index.values.insert(k.clone(), Some(v.clone()));
                }
                BatchOp::Delete(k) => {
                    index.values.insert(k.clone(), None);
                }
                BatchOp::DeleteRange(s, e) => {
                    for (_, v) in index.values.range_mut(s.clone()..e.clone()) {
                        *v = None;
                    }
                    index.cleared.push((s.clone(), e.clone()));
                }
            }
            self.ops.push(op);
        }
    }

    pub fn read(&self, storage: &Storage, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.index.lookup(key) {
            Some(v) => Ok(v),
            None => storage.get_raw(key),
        }
    }

    /// The pending writes as they are now, for a snapshot: later writes do not change them.
    pub fn frozen(&self) -> Arc<Pending> {
        Arc::clone(&self.index)
    }

    /// The entries of `[start, end)` as a read through the overlay sees them, in key order.
    pub fn scan(
        &self,
        storage: &Storage,
        start: &[u8],
        end: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let index = &self.index;
        let mut merged = BTreeMap::new();
        storage.scan_raw(start, end, |k, v| {
            let cleared = index
                .cleared
                .iter()
                .any(|(s, e)| s.as_slice() <= k && k < e.as_slice());
            if !cleared {
                merged.insert(k.to_vec(), v.to_vec());
            }
            Ok(true)
        })?;
        for (k, v) in index.values.range(start.to_vec()..end.to_vec()) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// Everything written, as one batch; the overlay is empty afterwards.
    pub fn take(&mut self) -> Batch {
        self.index = Arc::default();
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

/// Reads as a storage snapshot (`Storage::snapshot`) saw the database, through the pending
/// writes of an atom as they were when it was taken (a snapshot of an atomic state).
pub struct SnapshotRead<'a> {
    pub storage: &'a Storage,
    pub id: u64,
    pub pending: Option<&'a Pending>,
}

impl Reader for SnapshotRead<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending.and_then(|p| p.lookup(key)) {
            return Ok(v);
        }
        self.storage.snapshot_get_raw(self.id, key)
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
        assert_eq!(o.index.values.get(b"a1".as_slice()), Some(&None));
        assert_eq!(
            o.index.values.get(b"a2".as_slice()),
            Some(&Some(b"z".to_vec()))
        );
        let batch = o.take();
        assert_eq!(batch.len(), 4);
        assert!(o.is_empty());
    }

    #[test]
    fn a_frozen_index_keeps_what_it_saw() {
        let mut o = Overlay::default();
        let mut b = Batch::new();
        b.put_raw(b"k1".to_vec(), b"one".to_vec());
        o.apply(b);
        let frozen = o.frozen();
        let mut b = Batch::new();
        b.put_raw(b"k1".to_vec(), b"two".to_vec());
        b.delete_range_raw(b"k".to_vec(), b"l".to_vec());
        o.apply(b);
        assert_eq!(frozen.lookup(b"k1"), Some(Some(b"one".to_vec())));
        assert_eq!(frozen.lookup(b"k2"), None);
        assert_eq!(o.index.lookup(b"k2"), Some(None));
        o.take();
        assert_eq!(frozen.lookup(b"k1"), Some(Some(b"one".to_vec())));
    }
}
