//! Tree nodes of one core that were read or written recently, and indexes known not to be
//! stored. Replication touches the same few thousand nodes over and over: a writer's proofs
//! for neighbouring blocks share most of their path, and a reader probes the same missing
//! ancestors for every request it schedules. Answering those from memory instead of RocksDB
//! is most of what a replicated block costs.
//!
//! Only the core that owns the nodes writes them (the store holds one `Hypercore` per core
//! and the directory lock keeps other processes out), so the cache is kept exact: the core
//! records what it writes and forgets everything when it deletes nodes.

use crate::core::index_map::IndexMap;
use crate::storage::TreeNode;

/// Entries per generation. Two full generations take about 530 KB (4096 buckets of 65
/// bytes each), which stays in a core's L2 cache beside the rest of a transfer's work:
/// with 8192 (2.1 MB) a lookup that missed both tables cost a replicating reader several
/// times more (docs/DECISIONS.md §45).
const GENERATION: usize = 2048;

/// An approximate LRU in two generations: lookups promote from the older one, and when the
/// recent one is full it becomes the older one (dropping the previous older one whole).
#[derive(Default)]
pub struct NodeCache {
    recent: IndexMap<Option<TreeNode>>,
    older: IndexMap<Option<TreeNode>>,
}

impl NodeCache {
    /// `Some(Some(node))`: stored; `Some(None)`: known not stored; `None`: not known.
    pub fn get(&mut self, index: u64) -> Option<Option<TreeNode>> {
        if let Some(entry) = self.recent.get(&index) {
            return Some(entry.clone());
        }
        let entry = self.older.remove(&index)?;
        self.insert(index, entry.clone());
        Some(entry)
    }

    /// Whether `node` is known stored, as it is: a check that neither copies the entry
    /// nor moves it to the recent generation (a batch being written asks this of each of
    /// its nodes, and records them all as stored right after).
    pub fn holds(&self, node: &TreeNode) -> bool {
        match self
            .recent
            .get(&node.index)
            .or_else(|| self.older.get(&node.index))
        {
            Some(Some(stored)) => stored == node,
            _ => false,
        }
    }

    pub fn insert(&mut self, index: u64, entry: Option<TreeNode>) {
        if self.recent.len() >= GENERATION && !self.recent.contains_key(&index) {
            // the dropped generation's table becomes the new recent one: a fresh map would
            // grow (rehashing) all the way to GENERATION entries again
            std::mem::swap(&mut self.older, &mut self.recent);
            self.recent.clear();
        }
        self.recent.insert(index, entry);
    }

    /// Records a scan of `[start, end)`, which found `nodes` (ascending) and nothing else;
    /// returns what it found at `index`.
    pub fn fill(
        &mut self,
        start: u64,
        end: u64,
        nodes: Vec<TreeNode>,
        index: u64,
    ) -> Option<TreeNode> {
        let mut found = None;
        let mut next = start;
        for node in nodes {
            for absent in next..node.index {
                self.insert(absent, None);
            }
            next = node.index + 1;
            if node.index == index {
                found = Some(node.clone());
            }
            self.insert(node.index, Some(node));
        }
        for absent in next..end {
            self.insert(absent, None);
        }
        found
    }

    pub fn clear(&mut self) {
        self.recent = IndexMap::default();
        self.older = IndexMap::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(index: u64) -> TreeNode {
        TreeNode {
            index,
            size: index,
            hash: [index as u8; 32],
        }
    }

    #[test]
    fn remembers_present_and_absent_nodes() {
        let mut cache = NodeCache::default();
        assert_eq!(cache.get(4), None);
        cache.insert(4, Some(node(4)));
        cache.insert(5, None);
        assert_eq!(cache.get(4), Some(Some(node(4))));
        assert_eq!(cache.get(5), Some(None));
        cache.insert(5, Some(node(5)));
        assert_eq!(cache.get(5), Some(Some(node(5))));
        // held: known stored, with this content
        assert!(cache.holds(&node(4)));
        assert!(!cache.holds(&TreeNode { size: 9, ..node(4) }));
        assert!(!cache.holds(&node(6)));
        cache.insert(6, None);
        assert!(!cache.holds(&node(6)));
        cache.clear();
        assert_eq!(cache.get(4), None);
    }

    #[test]
    fn a_scan_records_the_gaps_as_absent() {
        let mut cache = NodeCache::default();
        let found = cache.fill(32, 64, vec![node(33), node(40)], 40);
        assert_eq!(found, Some(node(40)));
        assert_eq!(cache.get(32), Some(None));
        assert_eq!(cache.get(33), Some(Some(node(33))));
        assert_eq!(cache.get(39), Some(None));
        assert_eq!(cache.get(63), Some(None));
        assert_eq!(cache.get(64), None);
        assert_eq!(cache.fill(0, 32, vec![], 5), None);
        assert_eq!(cache.get(5), Some(None));
    }

    #[test]
    fn bounded_and_keeps_what_is_used() {
        let mut cache = NodeCache::default();
        cache.insert(u64::MAX, Some(node(7)));
        for i in 0..(3 * GENERATION as u64) {
            cache.insert(i, None);
            // a node looked up all along survives every generation change
            assert_eq!(cache.get(u64::MAX), Some(Some(node(7))));
        }
        assert!(cache.recent.len() + cache.older.len() <= 2 * GENERATION);
        assert_eq!(cache.get(0), None);
        // what the older generation holds counts as held
        let last = 3 * GENERATION as u64 - 1;
        cache.insert(last, Some(node(last)));
        for i in 0..GENERATION as u64 {
            cache.insert(u64::MAX - 1 - i, None);
        }
        assert!(cache.older.contains_key(&last) && !cache.recent.contains_key(&last));
        assert!(cache.holds(&node(last)));
    }
}
