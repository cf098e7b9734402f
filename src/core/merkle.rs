//! The merkle tree of a core as hypercore builds it: a flat-tree of nodes (leaves are
//! blocks, parents hash their two children) whose full roots, hashed together, are the
//! tree hash that the head signs. Only the roots live in memory; other nodes are read from
//! storage through the `NodeSource` the caller passes in.

use crate::core::flat_tree;
use crate::crypto;
use crate::error::{Error, Result};
use crate::storage::TreeNode;

/// Reads a stored tree node by flat-tree index.
pub trait NodeSource {
    fn node(&self, index: u64) -> Result<Option<TreeNode>>;
}

/// A node the tree needs. hypercore says INVALID_OPERATION when one is not stored (a
/// named session whose data it depends on is gone, a partial replica asked for a proof).
fn required(source: &dyn NodeSource, index: u64) -> Result<TreeNode> {
    source.node(index)?.ok_or_else(|| {
        Error::invalid_operation(format!(
            "Expected tree node {index} from storage, got (nil): that part of the tree is not stored here"
        ))
    })
}

#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    pub roots: Vec<TreeNode>,
    pub length: u64,
    pub byte_length: u64,
    pub fork: u64,
}

/// The nodes an append creates, to be written in the append's batch: in index order, so
/// RocksDB's memtable takes them as a run of ascending keys.
pub struct Appended {
    pub tree: MerkleTree,
    pub nodes: Vec<TreeNode>,
}

/// A parent node an append creates: where it is in the append's list of nodes, its depth
/// in the tree, and where its two children are.
struct Parent {
    at: usize,
    depth: u64,
    children: (usize, usize),
}

impl MerkleTree {
    /// The tree of `length` blocks, its roots read from storage.
    pub fn load(source: &dyn NodeSource, length: u64, fork: u64) -> Result<MerkleTree> {
        let roots = roots_at(source, length)?;
        let byte_length = roots.iter().map(|r| r.size).sum();
        Ok(MerkleTree {
            roots,
            length,
            byte_length,
            fork,
        })
    }

    pub fn hash(&self) -> [u8; 32] {
        hash_roots(&self.roots)
    }

    pub fn append<'a>(&self, blocks: impl IntoIterator<Item = &'a [u8]>) -> Appended {
        let blocks: Vec<&[u8]> = blocks.into_iter().collect();
        let hashes = crypto::leaf_hashes(&blocks);
        // The tree's shape does not depend on hashes: place every new node first, then hash
        // the parents a level at a time, where all their children are known, many at once.
        // `all` holds the old roots and then the new nodes; `roots` and `parents` point
        // into it.
        let old = self.roots.len();
        let mut all = self.roots.clone();
        all.reserve(2 * blocks.len());
        let mut roots: Vec<usize> = (0..old).collect();
        let mut parents: Vec<Parent> = Vec::with_capacity(blocks.len());
        let mut length = self.length;
        let mut byte_length = self.byte_length;
        for (block, hash) in blocks.iter().zip(hashes) {
            let leaf = TreeNode {
                index: 2 * length,
                size: block.len() as u64,
                hash,
            };
            length += 1;
            byte_length += leaf.size;
            roots.push(all.len());
            all.push(leaf);
            // Two trailing roots that are siblings become their parent.
            while let [.., l, r] = roots[..] {
                let (a, b) = (&all[l], &all[r]);
                if flat_tree::sibling(b.index) != a.index {
                    break;
                }
                let index = flat_tree::parent(a.index);
                let size = a.size + b.size;
                parents.push(Parent {
                    at: all.len(),
                    depth: flat_tree::depth(index),
                    children: (l, r),
                });
                roots.truncate(roots.len() - 2);
                roots.push(all.len());
                all.push(TreeNode {
                    index,
                    size,
                    hash: [0; 32],
                });
            }
        }
        parents.sort_by_key(|p| p.depth);
        for level in parents.chunk_by(|a, b| a.depth == b.depth) {
            let hashes = crypto::parent_hashes(level.iter().map(|p| {
                let (a, b) = (&all[p.children.0], &all[p.children.1]);
                ((a.index, a.size, &a.hash), (b.index, b.size, &b.hash))
            }));
            for (p, hash) in level.iter().zip(hashes) {
                all[p.at].hash = hash;
            }
        }
        let roots = roots.iter().map(|&i| all[i].clone()).collect();
        let mut nodes = all.split_off(old);
        nodes.sort_unstable_by_key(|n| n.index);
        Appended {
            tree: MerkleTree {
                roots,
                length,
                byte_length,
                fork: self.fork,
            },
            nodes,
        }
    }

    /// [block index, offset in that block] of a byte offset; None past the end.
    /// The block holding byte `bytes` and the offset in it. With `padding` (encrypted
    /// cores: bytes in front of every stored block), offsets count only the blocks' own bytes.
    pub fn seek(
        &self,
        source: &dyn NodeSource,
        bytes: u64,
        padding: u64,
    ) -> Result<Option<(u64, u64)>> {
        match self.seek_local(source, bytes, padding)? {
            Seek::Found(index, offset) => Ok(Some((index, offset))),
            Seek::Beyond => Ok(None),
            Seek::Missing(node) => {
                // a core that should hold its whole tree: the missing node is corruption
                let (left, right) = flat_tree::children(node).unwrap_or((node, node));
                let missing = if source.node(left)?.is_none() {
                    left
                } else {
                    right
                };
                required(source, missing).map(|_| None)
            }
        }
    }

    /// Where `bytes` falls, as far as the stored nodes tell: a sparse replica may lack the
    /// nodes below some node (`Missing(node)`), which a peer's seek proof brings.
    pub fn seek_local(&self, source: &dyn NodeSource, bytes: u64, padding: u64) -> Result<Seek> {
        let size = |n: &TreeNode| {
            n.size
                .saturating_sub(padding.saturating_mul(flat_tree::count_leaves(n.index)))
        };
        let byte_length = self
            .byte_length
            .saturating_sub(padding.saturating_mul(self.length));
        if bytes == byte_length {
            return Ok(Seek::Found(self.length, 0));
        }
        if bytes > byte_length {
            return Ok(Seek::Beyond);
        }
        let mut offset = bytes;
        for root in &self.roots {
            if offset >= size(root) {
                offset -= size(root);
                continue;
            }
            let mut node = root.clone();
            while let Some((left, right)) = flat_tree::children(node.index) {
                let Some(l) = source.node(left)? else {
                    return Ok(Seek::Missing(node.index));
                };
                if offset < size(&l) {
                    node = l;
                } else {
                    offset -= size(&l);
                    match source.node(right)? {
                        Some(r) => node = r,
                        None => return Ok(Seek::Missing(node.index)),
                    }
                }
            }
            return Ok(Seek::Found(node.index / 2, offset));
        }
        Ok(Seek::Beyond)
    }
}

/// The outcome of a local seek.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// (block index, offset in the block)
    Found(u64, u64),
    /// Past the tree's bytes: it has to grow first.
    Beyond,
    /// The children of this node are not stored.
    Missing(u64),
}

pub fn hash_roots(roots: &[TreeNode]) -> [u8; 32] {
    let list: Vec<(u64, u64, [u8; 32])> = roots.iter().map(|r| (r.index, r.size, r.hash)).collect();
    crypto::tree_hash(&list)
}

/// The full roots of a tree of `length` blocks, read from storage.
pub fn roots_at(source: &dyn NodeSource, length: u64) -> Result<Vec<TreeNode>> {
    flat_tree::full_roots(2 * length)
        .into_iter()
        .map(|index| required(source, index))
        .collect()
}

/// Tree nodes that a truncation to `length` leaves stale below index 2*length: the
/// ancestors of the first removed leaf that start before it (hypercore deletes them too).
pub fn stale_ancestors(length: u64) -> Vec<u64> {
    let mut out = Vec::new();
    if length == 0 {
        return out;
    }
    let head = 2 * length;
    let mut i = head - 2;
    loop {
        let (left, right) = flat_tree::span(i);
        if left <= head && head <= right && i < head {
            out.push(i);
        }
        if flat_tree::offset(i) == 0 {
            break;
        }
        i = flat_tree::parent(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node at flat-tree `index` over `blocks`, hashed from its leaves up one by one.
    fn reference(blocks: &[Vec<u8>], index: u64) -> TreeNode {
        match flat_tree::children(index) {
            None => {
                let block = &blocks[(index / 2) as usize];
                TreeNode {
                    index,
                    size: block.len() as u64,
                    hash: crypto::leaf_hash(block),
                }
            }
            Some((l, r)) => {
                let (a, b) = (reference(blocks, l), reference(blocks, r));
                TreeNode {
                    index,
                    size: a.size + b.size,
                    hash: crypto::parent_hash(
                        (a.index, a.size, &a.hash),
                        (b.index, b.size, &b.hash),
                    ),
                }
            }
        }
    }

    /// Appends split into batches of every shape give the nodes and roots that hashing
    /// each node from its leaves gives.
    #[test]
    fn batched_appends_build_the_tree_node_by_node() {
        let blocks: Vec<Vec<u8>> = (0..70u32)
            .map(|i| vec![i as u8; 1 + (i as usize * 37) % 300])
            .collect();
        for split in [1usize, 3, 8, 16, 33, 70] {
            let mut tree = MerkleTree::default();
            let mut written = Vec::new();
            for batch in blocks.chunks(split) {
                let appended = tree.append(batch.iter().map(|b| b.as_slice()));
                assert!(appended.nodes.windows(2).all(|w| w[0].index < w[1].index));
                written.extend(appended.nodes);
                tree = appended.tree;
            }
            assert_eq!(tree.length, 70);
            // every node whose leaves are all there, once
            let expected: Vec<TreeNode> = (0..140)
                .filter(|&i| flat_tree::right_span(i) < 140)
                .map(|i| reference(&blocks, i))
                .collect();
            written.sort_unstable_by_key(|n| n.index);
            assert_eq!(written, expected, "split {split}");
            let roots: Vec<TreeNode> = flat_tree::full_roots_for_length(70)
                .into_iter()
                .map(|i| reference(&blocks, i))
                .collect();
            assert_eq!(tree.roots, roots, "split {split}");
            assert_eq!(
                tree.byte_length,
                blocks.iter().map(|b| b.len() as u64).sum::<u64>()
            );
        }
    }
}
