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
        let mut roots = self.roots.clone();
        let mut nodes = Vec::new();
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
            nodes.push(leaf.clone());
            roots.push(leaf);
            // Two trailing roots that are siblings become their parent.
            while roots.len() >= 2 {
                let b = &roots[roots.len() - 1];
                let a = &roots[roots.len() - 2];
                if flat_tree::sibling(b.index) != a.index {
                    break;
                }
                let parent = TreeNode {
                    index: flat_tree::parent(a.index),
                    size: a.size + b.size,
                    hash: crypto::parent_hash(
                        (a.index, a.size, &a.hash),
                        (b.index, b.size, &b.hash),
                    ),
                };
                roots.truncate(roots.len() - 2);
                nodes.push(parent.clone());
                roots.push(parent);
            }
        }
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
