//! hypercore's `core.audit()`: checks what is stored against the tree. Every parent node
//! must hash its two children (else the subtree's nodes go), every stored block must hash
//! to its leaf and be marked in the bitfield (else it goes), and every bit set must have
//! its block (else the bit is cleared). With `dry_run` it only counts. The repairs are one
//! write batch. A missing root makes the core `corrupt`; hypercore then deletes the whole
//! core, which we leave to the caller (the core is reported, nothing is deleted).

use super::Hypercore;
use crate::core::flat_tree;
use crate::crypto;
use crate::error::Result;
use crate::storage::{Batch, Storage, TreeNode};

/// Blocks read per storage scan.
const BLOCK_SPAN: u64 = 1024;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditStats {
    pub tree_nodes: u64,
    pub blocks: u64,
    pub bits: u64,
    pub dropped_tree_nodes: u64,
    pub dropped_blocks: u64,
    pub dropped_bits: u64,
    pub corrupt: bool,
}

impl Hypercore {
    pub fn audit(&mut self, storage: &Storage, dry_run: bool) -> Result<AuditStats> {
        self.flush_pending(storage)?;
        let dp = self.data_pointer;
        let length = self.tree.length;
        let mut stats = AuditStats::default();
        let mut batch = Batch::new();

        // the tree, from the roots down
        let mut stack: Vec<TreeNode> = Vec::new();
        for index in flat_tree::full_roots(2 * length) {
            match storage.tree_node(dp, index)? {
                Some(root) => stack.push(root),
                None => {
                    stats.corrupt = true;
                    return Ok(stats);
                }
            }
            stats.tree_nodes += 1;
        }
        while let Some(node) = stack.pop() {
            let Some((l, r)) = flat_tree::children(node.index) else {
                continue;
            };
            let (left, right) = (storage.tree_node(dp, l)?, storage.tree_node(dp, r)?);
            match (left, right) {
                (None, None) => {}
                (Some(left), Some(right)) if good_parent(&node, &left, &right) => {
                    stats.tree_nodes += 2;
                    stack.push(left);
                    stack.push(right);
                }
                _ => {
                    let (start, end) = flat_tree::span(node.index);
                    batch.delete_tree_nodes(dp, start, Some(end + 1));
                    stats.dropped_tree_nodes += 1;
                }
            }
        }

        // as hypercore, each phase's repairs are written before the next looks
        self.write_repairs(storage, &mut batch, dry_run)?;

        // the blocks, against the bitfield and their leaves
        // read in spans so a large core is never all in memory; past `length`, the rest
        let mut spans: Vec<(u64, Option<u64>)> = (0..length.div_ceil(BLOCK_SPAN))
            .map(|i| (i * BLOCK_SPAN, Some((i + 1) * BLOCK_SPAN)))
            .collect();
        spans.push((length.div_ceil(BLOCK_SPAN) * BLOCK_SPAN, None));
        for (start, end) in spans {
            for (index, block) in storage.blocks(dp, start, end)? {
                let marked = self.bitfield.get(index);
                if !marked {
                    batch.delete_block(dp, index);
                    stats.dropped_blocks += 1;
                }
                let good = storage.tree_node(dp, 2 * index)?.is_some_and(|leaf| {
                    leaf.size == block.len() as u64 && leaf.hash == crypto::leaf_hash(&block)
                });
                if !good {
                    if marked {
                        batch.delete_block(dp, index);
                    }
                    stats.dropped_blocks += 1;
                    continue;
                }
                stats.blocks += 1;
            }
        }

        self.write_repairs(storage, &mut batch, dry_run)?;

        // the bits, against the blocks
        let mut bitfield = self.bitfield.clone_pages_for(0, length);
        let mut pages = std::collections::BTreeSet::new();
        for i in (0..length).filter(|&i| self.bitfield.get(i)) {
            if storage.block(dp, i)?.is_some() {
                stats.bits += 1;
            } else {
                stats.dropped_bits += 1;
                pages.extend(bitfield.set_range(i, i + 1, false));
            }
        }

        if dry_run || pages.is_empty() {
            return Ok(stats);
        }
        let pages: Vec<u64> = pages.into_iter().collect();
        self.put_bitfield_pages(&mut batch, &bitfield, &pages);
        let contiguous = bitfield.first_unset(0, length).min(self.contiguous_length);
        if contiguous != self.contiguous_length {
            self.put_hints(&mut batch, contiguous);
        }
        storage.write(batch)?;
        self.bitfield.merge_pages(bitfield);
        self.contiguous_length = contiguous;
        Ok(stats)
    }
}

impl Hypercore {
    fn write_repairs(&self, storage: &Storage, batch: &mut Batch, dry_run: bool) -> Result<()> {
        if dry_run || batch.is_empty() {
            *batch = Batch::new();
            return Ok(());
        }
        self.node_cache.borrow_mut().clear();
        storage.write(std::mem::take(batch))?;
        Ok(())
    }
}

fn good_parent(parent: &TreeNode, left: &TreeNode, right: &TreeNode) -> bool {
    let hash = crypto::parent_hash(
        (left.index, left.size, &left.hash),
        (right.index, right.size, &right.hash),
    );
    hash == parent.hash && parent.size == left.size.wrapping_add(right.size)
}

#[cfg(test)]
mod tests {
    use crate::storage::{Batch, TreeNode};
    use crate::store::{OpenRequest, Store};

    #[test]
    fn audit_drops_what_does_not_verify() {
        let dir = std::env::temp_dir().join(format!("cs-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open(&dir, None, false).expect("open store");
        let handle = store
            .open_core(OpenRequest {
                name: Some("audited".into()),
                create_if_missing: true,
                ..Default::default()
            })
            .expect("open core");
        let (core, storage) = store.core_mut(handle).expect("core");
        let blocks: Vec<Vec<u8>> = (0..8).map(|i| format!("block {i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(|b| b.as_slice()).collect();
        core.append(storage, &refs).expect("append");
        let clean = core.audit(storage, false).expect("audit");
        assert_eq!((clean.blocks, clean.bits, clean.tree_nodes), (8, 8, 15));
        assert_eq!(
            clean.dropped_blocks + clean.dropped_bits + clean.dropped_tree_nodes,
            0
        );

        // a block whose bytes changed, and a leaf node (of block 6) that no longer hashes up
        let dp = core.data_pointer;
        let mut batch = Batch::new();
        batch.put_block(dp, 2, b"tampered");
        batch.put_tree_node(
            dp,
            &TreeNode {
                index: 12,
                size: 7,
                hash: [9; 32],
            },
        );
        storage.write(batch).expect("corrupt");

        let dry = core.audit(storage, true).expect("dry run");
        // (the dry run leaves the bad leaf in place, so block 6 does not match it either)
        assert_eq!(
            (dry.dropped_blocks, dry.dropped_tree_nodes, dry.dropped_bits),
            (2, 1, 0)
        );
        let fixed = core.audit(storage, false).expect("audit");
        // the tree repair took the leaves of 12..15 (blocks 6, 7): those blocks go too, and
        // then the bits of the three dropped blocks
        assert_eq!(
            (
                fixed.dropped_tree_nodes,
                fixed.dropped_blocks,
                fixed.dropped_bits
            ),
            (1, 3, 3)
        );
        assert!(!core.has_block(2) && !core.has_block(6) && core.has_block(3));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
