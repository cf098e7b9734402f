//! Merkle proofs as hypercore 11 exchanges them in `request` / `data` messages: producing
//! the proof that answers a peer's request (`create_proof`, hypercore's `MerkleTree.proof`),
//! checking a proof a peer sent (`verify_proof`, hypercore's `MerkleTree.verify` plus the
//! upgrade signature check of `core.verify`), and following a peer onto a newer fork
//! (`verify_reorg` / `Reorg::update`, hypercore's `ReorgBatch`).
//!
//! A proof has up to four parts, each a list of tree nodes in a fixed order:
//! - `block` / `hash`: the path from a leaf (a block, whose leaf the receiver hashes from
//!   the value) or a node (`hash`) up to a node the receiver already trusts: the sibling
//!   at each level, bottom up. The request's `nodes` says how many levels to climb: it is
//!   the number of nodes on that path the receiver lacks (hypercore's `missingNodes`).
//! - `seek`: the path from the node that holds a byte offset up to where it joins the block
//!   path (or the upgrade).
//! - `upgrade`: what grows the receiver's tree from `start` to `start + length` blocks: the
//!   nodes that, with the receiver's roots, form the new full roots (a block or seek path
//!   that ends in one of them stands in for that node), then `additional_nodes` up to the
//!   writer's full length, and the writer's signature over that final tree.
//!
//! Nothing here panics on any input: every index is checked before flat-tree arithmetic,
//! every loop is bounded, and proofs come from untrusted peers.

use std::collections::{HashMap, HashSet};

use crate::core::flat_tree;
use crate::core::index_map::IndexHash;
use crate::core::manifest::{Manifest, Prologue};
use crate::core::merkle::{self, MerkleTree, NodeSource};
use crate::core::signature;
use crate::crypto;
use crate::error::{Error, Result};
use crate::storage::TreeNode;

/// What a peer asks for (hypercore's `request` message without id/priority).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProofRequest {
    /// Not looked at by `create_proof`: hypercore answers only requests at its own fork
    /// (others get `no-data`), and the answer's `data` message carries this fork.
    pub fork: u64,
    /// (block index, nodes): the block, with its path climbed `nodes` levels.
    pub block: Option<(u64, u64)>,
    /// (flat-tree index, nodes): a node's hash, with its path climbed `nodes` levels.
    pub hash: Option<(u64, u64)>,
    /// (bytes, padding): the nodes locating a byte offset.
    pub seek: Option<(u64, u64)>,
    /// (start, length): grow the requester's tree from `start` blocks to `start + length`.
    pub upgrade: Option<(u64, u64)>,
    /// The requester wants the manifest: `create_proof` leaves `Proof::manifest` None, the
    /// caller attaches the core's manifest (hypercore does unless the core is compat).
    pub manifest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockProof {
    pub index: u64,
    pub value: Vec<u8>,
    pub nodes: Vec<TreeNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashProof {
    /// A flat-tree index.
    pub index: u64,
    pub nodes: Vec<TreeNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekProof {
    pub bytes: u64,
    pub nodes: Vec<TreeNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeProof {
    pub start: u64,
    pub length: u64,
    pub nodes: Vec<TreeNode>,
    pub additional_nodes: Vec<TreeNode>,
    /// The signature over the tree the upgrade ends at (empty = none; on the wire an
    /// optional buffer, which decodes empty as null).
    pub signature: Vec<u8>,
}

/// A `data` message's proof (hypercore's shape; the wire layer adds `request`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proof {
    pub fork: u64,
    pub block: Option<BlockProof>,
    pub hash: Option<HashProof>,
    pub seek: Option<SeekProof>,
    pub upgrade: Option<UpgradeProof>,
    pub manifest: Option<Manifest>,
}

/// What a valid proof establishes.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// The upgraded tree (roots, length, byte length, fork) when the proof grows the
    /// receiver's tree; None when it does not (no upgrade, or one that ends at or below
    /// the receiver's length and matches its tree).
    pub tree: Option<MerkleTree>,
    /// The signature to store in the head with `tree` (None when `tree` is None).
    pub signature: Option<Vec<u8>>,
    /// Every node the proof proves, each index once: write them all.
    pub nodes: Vec<TreeNode>,
    /// (index, value) of the proven block.
    pub block: Option<(u64, Vec<u8>)>,
}

// ---------------------------------------------------------------------------------------
// checked flat-tree steps: None when an index is too deep for a real tree

/// Deeper nodes than this cover more than 2^60 blocks: no real tree has them, and below
/// this bound no arithmetic here can overflow.
const MAX_DEPTH: u64 = 60;
/// The longest tree (in blocks) a request or proof may talk about.
const MAX_LENGTH: u64 = 1 << 60;

/// 2^depth(i): the number of leaves under `i`.
fn leaves(i: u64) -> Option<u64> {
    let d = flat_tree::depth(i);
    (d <= MAX_DEPTH).then(|| 1u64 << d)
}

fn is_left(i: u64) -> bool {
    flat_tree::offset(i) & 1 == 0
}

fn parent(i: u64) -> Option<u64> {
    let h = leaves(i)?;
    if flat_tree::depth(i) >= MAX_DEPTH {
        return None;
    }
    if is_left(i) {
        i.checked_add(h)
    } else {
        i.checked_sub(h)
    }
}

fn sibling(i: u64) -> Option<u64> {
    let w = leaves(i)?.checked_mul(2)?;
    if is_left(i) {
        i.checked_add(w)
    } else {
        i.checked_sub(w)
    }
}

fn left_child(i: u64) -> Option<u64> {
    if i & 1 == 0 {
        return None;
    }
    Some(i - leaves(i)? / 2)
}

fn right_child(i: u64) -> Option<u64> {
    if i & 1 == 0 {
        return None;
    }
    i.checked_add(leaves(i)? / 2)
}

/// (left-most leaf, right-most leaf) under `i`.
fn spans(i: u64) -> Option<(u64, u64)> {
    let h = leaves(i)?;
    Some((i - (h - 1), i.checked_add(h - 1)?))
}

/// Whether `x` is under `i` (or is `i`).
fn contains(i: u64, x: u64) -> bool {
    match spans(i) {
        Some((l, r)) => l <= x && x <= r,
        None => false,
    }
}

/// Whether the whole subtree of `i` lies in a tree whose leaves end before `head`.
fn inside(i: u64, head: u64) -> bool {
    matches!(spans(i), Some((_, r)) if r < head)
}

fn double(length: u64) -> Option<u64> {
    (length <= MAX_LENGTH).then(|| 2 * length)
}

fn invalid_op(message: impl Into<String>) -> Error {
    Error::invalid_operation(message)
}

fn invalid_proof(message: impl Into<String>) -> Error {
    Error::new("INVALID_PROOF", message)
}

fn leaf_node(index: u64, value: &[u8]) -> TreeNode {
    TreeNode {
        index,
        size: value.len() as u64,
        hash: crypto::leaf_hash(value),
    }
}

fn parent_node(index: u64, a: &TreeNode, b: &TreeNode) -> Result<TreeNode> {
    let size = a
        .size
        .checked_add(b.size)
        .ok_or_else(|| invalid_proof(format!("node sizes overflow at node {index}")))?;
    Ok(TreeNode {
        index,
        size,
        hash: crypto::parent_hash((a.index, a.size, &a.hash), (b.index, b.size, &b.hash)),
    })
}

// ---------------------------------------------------------------------------------------
// proof generation

/// A block or hash request, normalised (hypercore's `normalizeIndexed`).
#[derive(Debug, Clone, Copy)]
struct Indexed {
    /// true for a block (the receiver hashes the value), false for a hash request.
    value: bool,
    index: u64,
    nodes: u64,
    /// The last block under `index`.
    last_index: u64,
}

#[derive(Default)]
struct Pending {
    node: Option<Vec<TreeNode>>,
    seek: Option<Vec<TreeNode>>,
    upgrade: Option<Vec<TreeNode>>,
    additional: Option<Vec<TreeNode>>,
}

struct Writer<'a> {
    tree: &'a MerkleTree,
    source: &'a dyn NodeSource,
    head: u64,
}

/// Byte counts with padding subtracted can go negative (as they do in the JS).
type Bytes = i128;

impl Writer<'_> {
    /// A node of the tree; an error when it is not in the tree or not stored.
    fn get(&self, index: u64) -> Result<TreeNode> {
        let missing = || {
            invalid_op(format!(
                "Expected tree node {index} from storage, got (nil)"
            ))
        };
        if !inside(index, self.head) {
            return Err(missing());
        }
        if let Some(root) = self.tree.roots.iter().find(|r| r.index == index) {
            return Ok(root.clone());
        }
        self.source.node(index)?.ok_or_else(missing)
    }

    /// Like `get`, but a missing node is None.
    fn try_get(&self, index: u64) -> Result<Option<TreeNode>> {
        if !inside(index, self.head) {
            return Ok(None);
        }
        if let Some(root) = self.tree.roots.iter().find(|r| r.index == index) {
            return Ok(Some(root.clone()));
        }
        self.source.node(index)
    }

    fn unpadded(node: &TreeNode, padding: u64) -> Bytes {
        let leaves = leaves(node.index).unwrap_or(0);
        node.size as Bytes - padding as Bytes * leaves as Bytes
    }

    /// The byte offset of the first block under `index` (hypercore `getByteOffset`).
    ///
    /// None where hypercore 11.37.1 gets NaN: its `getByteOffsetBatch` adds the sizes of
    /// the roots before the one holding `index` as plain numbers and then reads `.size` of
    /// them, so any offset past the first root is NaN. `seek_untrusted_tree` then stops at
    /// the subtree it was given; we do the same so that our proofs are byte-identical.
    fn byte_offset(&self, index: u64) -> Result<Option<u64>> {
        let fail = || invalid_op("Failed to find offset");
        if Some(index) == double(self.tree.length) {
            return Ok(Some(self.tree.byte_length));
        }
        let target = spans(index).ok_or_else(fail)?.0;
        let mut offset = 0u64;
        let mut past_first_root = false;
        for root in &self.tree.roots {
            let end = spans(root.index)
                .and_then(|(_, r)| r.checked_add(2))
                .ok_or_else(fail)?;
            if target >= end {
                past_first_root = true;
                continue;
            }
            let mut ite = root.index;
            for _ in 0..=MAX_DEPTH {
                if ite == target {
                    return Ok((!past_first_root).then_some(offset));
                }
                let left = left_child(ite).ok_or_else(fail)?;
                if target < ite {
                    ite = left;
                } else {
                    offset = offset.saturating_add(self.get(left)?.size);
                    ite = right_child(ite).ok_or_else(fail)?;
                }
            }
            break;
        }
        Err(fail())
    }

    /// The node under `root` where `bytes` (known to be inside it) ends or falls.
    fn seek_trusted_tree(&self, root: u64, mut bytes: Bytes, padding: u64) -> Result<u64> {
        if bytes == 0 {
            return Ok(root);
        }
        let mut ite = root;
        for _ in 0..=MAX_DEPTH {
            let Some(left) = left_child(ite) else {
                return Ok(ite);
            };
            match self.try_get(left)? {
                Some(l) => {
                    let size = Self::unpadded(&l, padding);
                    if size == bytes {
                        return Ok(left);
                    }
                    if size > bytes {
                        ite = left;
                        continue;
                    }
                    bytes -= size;
                    ite = right_child(ite).ok_or_else(|| invalid_op("Invalid seek"))?;
                }
                None => return Ok(ite),
            }
        }
        Err(invalid_op("Invalid seek"))
    }

    /// `bytes` must fall inside `root`'s subtree (hypercore `seekUntrustedTree`).
    fn seek_untrusted_tree(&self, root: u64, bytes: u64, padding: u64) -> Result<u64> {
        let before = spans(root).map_or(0, |(l, _)| l / 2);
        let Some(offset) = self.byte_offset(root)? else {
            return Ok(root); // hypercore's NaN offset: see byte_offset
        };
        let offset = offset as Bytes - padding as Bytes * before as Bytes;
        let bytes = bytes as Bytes;
        if offset > bytes {
            return Err(invalid_op("Invalid seek"));
        }
        if offset == bytes {
            return Ok(root);
        }
        let bytes = bytes - offset;
        let node = self.get(root)?;
        if Self::unpadded(&node, padding) <= bytes {
            return Err(invalid_op("Invalid seek"));
        }
        self.seek_trusted_tree(root, bytes, padding)
    }

    /// The node of the tree of `head / 2` blocks where `bytes` falls (`seekFromHead`);
    /// `head` itself when past the end.
    fn seek_from_head(&self, head: u64, bytes: u64, padding: u64) -> Result<u64> {
        let mut bytes = bytes as Bytes;
        for root in flat_tree::full_roots(head) {
            let size = Self::unpadded(&self.get(root)?, padding);
            if bytes == size {
                return Ok(root);
            }
            if bytes > size {
                bytes -= size;
                continue;
            }
            return self.seek_trusted_tree(root, bytes, padding);
        }
        Ok(head)
    }

    /// The seek node, then the siblings up to `root`.
    fn seek_proof(&self, seek_root: u64, root: u64, p: &mut Pending) -> Result<()> {
        let mut out = vec![self.get(seek_root)?];
        let mut ite = seek_root;
        let mut steps = 0;
        while ite != root {
            steps += 1;
            let (Some(s), Some(up)) = (sibling(ite), parent(ite)) else {
                return Err(invalid_op("Bad seekProof"));
            };
            if steps > MAX_DEPTH {
                return Err(invalid_op("Bad seekProof"));
            }
            out.push(self.get(s)?);
            ite = up;
        }
        p.seek = Some(out);
        Ok(())
    }

    /// The block (or hash) path up to `root`, a seek path standing in for the sibling
    /// that holds the seek target.
    fn block_and_seek_proof(
        &self,
        node: Option<Indexed>,
        seek: bool,
        seek_root: u64,
        root: u64,
        p: &mut Pending,
    ) -> Result<()> {
        let Some(node) = node else {
            return self.seek_proof(seek_root, root, p);
        };
        let mut out = Vec::new();
        if !node.value {
            out.push(self.get(node.index)?);
        }
        let mut ite = node.index;
        let mut steps = 0;
        while ite != root {
            steps += 1;
            let (Some(s), Some(up)) = (sibling(ite), parent(ite)) else {
                return Err(invalid_op("Bad blockAndSeekProof"));
            };
            if steps > MAX_DEPTH {
                return Err(invalid_op("Bad blockAndSeekProof"));
            }
            if seek && contains(s, seek_root) && s != seek_root {
                self.seek_proof(seek_root, s, p)?;
            } else {
                out.push(self.get(s)?);
            }
            ite = up;
        }
        p.node = Some(out);
        Ok(())
    }

    /// The nodes growing a tree of `from / 2` blocks to `to / 2`; a block/seek path goes
    /// in place of the node it proves. `additional` = false: `upgradeProof`; true:
    /// `additionalUpgradeProof` (no paths).
    #[allow(clippy::too_many_arguments)]
    fn upgrade_proof(
        &self,
        node: Option<Indexed>,
        seek: bool,
        from: u64,
        to: u64,
        sub_tree: u64,
        additional: bool,
        p: &mut Pending,
    ) -> Result<()> {
        let mut out: Option<Vec<TreeNode>> = (from == 0).then(Vec::new);
        for root in flat_tree::full_roots(to) {
            let (_, right) = spans(root).ok_or_else(|| invalid_op("Invalid upgrade"))?;
            // the requester has this root already
            if right + 1 < from {
                continue;
            }
            // connect the requester's tree: the siblings right of its last block
            if out.is_none() && contains(root, from - 2) {
                let mut nodes = Vec::new();
                let target = from - 2;
                let mut ite = target;
                let mut steps = 0;
                while ite != root {
                    steps += 1;
                    let (Some(s), Some(up)) = (sibling(ite), parent(ite)) else {
                        return Err(invalid_op("Bad upgradeProof"));
                    };
                    if steps > MAX_DEPTH {
                        return Err(invalid_op("Bad upgradeProof"));
                    }
                    if s > target {
                        if !additional
                            && p.node.is_none()
                            && p.seek.is_none()
                            && contains(s, sub_tree)
                        {
                            self.block_and_seek_proof(node, seek, sub_tree, s, p)?;
                        } else {
                            nodes.push(self.get(s)?);
                        }
                    }
                    ite = up;
                }
                out = Some(nodes);
                continue;
            }
            let nodes = out.get_or_insert_with(Vec::new);
            if !additional && p.node.is_none() && p.seek.is_none() && contains(root, sub_tree) {
                self.block_and_seek_proof(node, seek, sub_tree, root, p)?;
                continue;
            }
            nodes.push(self.get(root)?);
        }
        if additional {
            p.additional = out;
        } else {
            p.upgrade = out;
        }
        Ok(())
    }
}

/// Climbs `nodes` levels from `index`; none of them may reach `head` (`nodesToRoot`).
fn nodes_to_root(index: u64, nodes: u64, head: u64) -> Result<u64> {
    let mut ite = index;
    for _ in 0..nodes {
        ite = parent(ite).ok_or_else(|| invalid_op("Nodes is out of bounds"))?;
        if contains(ite, head) {
            return Err(invalid_op("Nodes is out of bounds"));
        }
    }
    Ok(ite)
}

/// The proof that answers `req` from a tree of `tree.length` blocks (what hypercore's
/// `MerkleTree.proof(...).settle()` returns, with the block value filled in as the
/// replicator does). `block_value` is the stored block `req.block` asks for; `signature`
/// the head's signature over `tree`. `manifest` is left None: when `req.manifest` is set
/// (and the core is not compat) the replicator puts the core's manifest there.
///
/// Errors (the replicator answers them with `no-data`): `INVALID_OPERATION` for requests
/// the tree cannot answer (hypercore's messages), `BLOCK_NOT_AVAILABLE` when a block is
/// requested and `block_value` is None.
pub fn create_proof(
    tree: &MerkleTree,
    nodes: &dyn NodeSource,
    block_value: Option<Vec<u8>>,
    signature: &[u8],
    req: &ProofRequest,
) -> Result<Proof> {
    create_proof_with_prologue(tree, nodes, block_value, signature, None, req)
}

/// `create_proof` for a core whose manifest has a prologue: an upgrade that starts inside
/// the prologue is widened to [0, prologue length), as hypercore does.
pub fn create_proof_with_prologue(
    tree: &MerkleTree,
    nodes: &dyn NodeSource,
    block_value: Option<Vec<u8>>,
    signature: &[u8],
    prologue: Option<&Prologue>,
    req: &ProofRequest,
) -> Result<Proof> {
    let mut upgrade = req.upgrade;
    if let (Some(p), Some((start, length))) = (prologue, upgrade.as_mut()) {
        if *start < p.length {
            *start = 0;
            *length = p.length;
        }
    }

    let head = double(tree.length).ok_or_else(|| invalid_op("The tree is too long"))?;
    let empty = Proof {
        fork: tree.fork,
        ..Proof::default()
    };
    // nothing to prove from an empty tree
    if head == 0 {
        return Ok(empty);
    }

    let (from, to) = match upgrade {
        Some((start, length)) => {
            let end = start.checked_add(length);
            match (double(start), end.and_then(double)) {
                (Some(from), Some(to)) => (from, to),
                _ => return Err(invalid_op("Invalid upgrade")),
            }
        }
        None => (0, head),
    };

    let node = if let Some((index, nodes)) = req.block {
        if index >= tree.length {
            return Err(invalid_op("Invalid block request"));
        }
        Some(Indexed {
            value: true,
            index: 2 * index,
            nodes,
            last_index: index,
        })
    } else if let Some((index, nodes)) = req.hash {
        let (_, right) = spans(index).ok_or_else(|| {
            invalid_op(format!(
                "Expected tree node {index} from storage, got (nil)"
            ))
        })?;
        Some(Indexed {
            value: false,
            index,
            nodes,
            last_index: right / 2,
        })
    } else {
        None
    };

    if from >= to || to > head {
        return Err(invalid_op("Invalid upgrade"));
    }
    if req.seek.is_some() && upgrade.is_some() && node.is_some_and(|n| n.index >= from) {
        return Err(invalid_op(
            "Cannot both do a seek and block/hash request when upgrading",
        ));
    }

    let w = Writer {
        tree,
        source: nodes,
        head,
    };
    let mut p = Pending::default();
    let mut sub_tree = head;

    match (node, upgrade) {
        (Some(n), up) if up.is_none_or(|(start, _)| n.last_index < start) => {
            sub_tree = nodes_to_root(n.index, n.nodes, to)?;
            let seek_root = match req.seek {
                Some((bytes, padding)) => w.seek_untrusted_tree(sub_tree, bytes, padding)?,
                None => head,
            };
            w.block_and_seek_proof(Some(n), req.seek.is_some(), seek_root, sub_tree, &mut p)?;
        }
        (n, Some(_)) if n.is_some() || req.seek.is_some() => {
            sub_tree = match (req.seek, n) {
                (Some((bytes, padding)), _) => w.seek_from_head(to, bytes, padding)?,
                (None, Some(n)) => n.index,
                (None, None) => head,
            };
        }
        _ => {}
    }

    if upgrade.is_some() {
        let seek = req.seek.is_some();
        w.upgrade_proof(node, seek, from, to, sub_tree, false, &mut p)?;
        if head > to {
            w.upgrade_proof(None, false, to, head, head, true, &mut p)?;
        }
    }

    let mut proof = empty;
    if let Some((index, _)) = req.block {
        let nodes = p
            .node
            .take()
            .ok_or_else(|| invalid_op("Invalid block request"))?;
        let value = block_value.ok_or_else(|| {
            Error::new(
                "BLOCK_NOT_AVAILABLE",
                format!("Block {index} is not available"),
            )
        })?;
        proof.block = Some(BlockProof {
            index,
            value,
            nodes,
        });
    } else if let Some((index, _)) = req.hash {
        let nodes = p
            .node
            .take()
            .ok_or_else(|| invalid_op("Invalid block request"))?;
        proof.hash = Some(HashProof { index, nodes });
    }
    if let (Some((bytes, _)), Some(nodes)) = (req.seek, p.seek.take()) {
        proof.seek = Some(SeekProof { bytes, nodes });
    }
    if let Some((start, length)) = upgrade {
        proof.upgrade = Some(UpgradeProof {
            start,
            length,
            nodes: p.upgrade.take().unwrap_or_default(),
            additional_nodes: p.additional.take().unwrap_or_default(),
            signature: signature.to_vec(),
        });
    }
    Ok(proof)
}

// ---------------------------------------------------------------------------------------
// verification

/// The nodes of one part of a proof, taken in order by expected index; `extra` is a node
/// proven by another part that may stand in for one of them (hypercore's `NodeQueue`).
struct Queue<'a> {
    nodes: &'a [TreeNode],
    i: usize,
    extra: Option<TreeNode>,
}

impl<'a> Queue<'a> {
    fn new(nodes: &'a [TreeNode], extra: Option<TreeNode>) -> Self {
        Queue { nodes, i: 0, extra }
    }

    fn remaining(&self) -> usize {
        self.nodes.len() - self.i + usize::from(self.extra.is_some())
    }

    fn shift(&mut self, index: u64) -> Result<TreeNode> {
        if self.extra.as_ref().is_some_and(|e| e.index == index) {
            if let Some(node) = self.extra.take() {
                return Ok(node);
            }
        }
        let Some(node) = self.nodes.get(self.i) else {
            return Err(invalid_proof(format!("Expected node {index}, got (nil)")));
        };
        if node.index != index {
            return Err(invalid_proof(format!(
                "Expected node {index}, got node {}",
                node.index
            )));
        }
        self.i += 1;
        Ok(node.clone())
    }
}

/// Hashes a path bottom up: `first`, then each next node is the sibling of the current
/// one and they make its parent. Every node used and made goes to `out`.
fn climb(mut q: Queue<'_>, first: TreeNode, out: &mut Vec<TreeNode>) -> Result<TreeNode> {
    let mut root = first;
    out.push(root.clone());
    while q.remaining() > 0 {
        let (Some(s), Some(up)) = (sibling(root.index), parent(root.index)) else {
            return Err(invalid_proof(format!(
                "node {} has no parent in a real tree",
                root.index
            )));
        };
        let node = q.shift(s)?;
        root = parent_node(up, &root, &node)?;
        out.push(node);
        out.push(root.clone());
    }
    Ok(root)
}

/// Hashes the seek and block/hash paths (hypercore `verifyTree`); the node they end in,
/// still to be checked against a trusted node. None when the proof has neither.
fn verify_paths(
    proof: &Proof,
    leaf: Option<[u8; 32]>,
    out: &mut Vec<TreeNode>,
) -> Result<Option<TreeNode>> {
    if proof.block.is_some() && proof.hash.is_some() {
        return Err(invalid_proof("A proof has both a block and a hash"));
    }
    let mut root = None;
    if let Some(seek) = proof.seek.as_ref().filter(|s| !s.nodes.is_empty()) {
        let mut q = Queue::new(&seek.nodes, None);
        let first = q.shift(seek.nodes[0].index)?;
        root = Some(climb(q, first, out)?);
    }
    if let Some(block) = &proof.block {
        let index = double(block.index)
            .filter(|&i| i < 2 * MAX_LENGTH)
            .ok_or_else(|| invalid_proof(format!("block {} is out of range", block.index)))?;
        let q = Queue::new(&block.nodes, root);
        let first = match leaf {
            Some(hash) => TreeNode {
                index,
                size: block.value.len() as u64,
                hash,
            },
            None => leaf_node(index, &block.value),
        };
        return Ok(Some(climb(q, first, out)?));
    }
    if let Some(hash) = &proof.hash {
        if spans(hash.index).is_none() {
            return Err(invalid_proof(format!(
                "node {} is out of range",
                hash.index
            )));
        }
        let mut q = Queue::new(&hash.nodes, root);
        let first = q.shift(hash.index)?;
        return Ok(Some(climb(q, first, out)?));
    }
    Ok(root)
}

/// A tree being grown by an upgrade (the parts of hypercore's `MerkleTreeBatch` that
/// `verifyUpgrade` uses).
struct Growing {
    roots: Vec<TreeNode>,
    length: u64,
    nodes: Vec<TreeNode>,
}

impl Growing {
    fn last(&self) -> Result<u64> {
        self.roots
            .last()
            .map(|r| r.index)
            .ok_or_else(|| invalid_proof("The upgrade has no roots"))
    }

    /// Appends a node as the newest root; trailing sibling roots merge into their parent.
    fn append_root(&mut self, node: TreeNode) -> Result<()> {
        let leaves = leaves(node.index)
            .ok_or_else(|| invalid_proof(format!("node {} is out of range", node.index)))?;
        self.length = self
            .length
            .checked_add(leaves)
            .filter(|&l| l <= MAX_LENGTH)
            .ok_or_else(|| invalid_proof("The upgrade is too long"))?;
        self.roots.push(node.clone());
        self.nodes.push(node);
        while self.roots.len() >= 2 {
            let a = &self.roots[self.roots.len() - 1];
            let b = &self.roots[self.roots.len() - 2];
            if sibling(a.index) != Some(b.index) {
                break;
            }
            let up = parent(a.index)
                .ok_or_else(|| invalid_proof(format!("node {} is out of range", a.index)))?;
            let merged = parent_node(up, b, a)?;
            self.roots.truncate(self.roots.len() - 2);
            self.nodes.push(merged.clone());
            self.roots.push(merged);
        }
        Ok(())
    }

    fn byte_length(&self) -> Result<u64> {
        self.roots
            .iter()
            .try_fold(0u64, |s, r| s.checked_add(r.size))
            .ok_or_else(|| invalid_proof("The upgraded tree's byte length overflows"))
    }
}

/// Grows `batch` by the upgrade (hypercore `verifyUpgrade`). `block_root` is the node the
/// block/hash/seek paths ended in; true when the upgrade used it (so it is proven).
fn verify_upgrade(
    upgrade: &UpgradeProof,
    block_root: Option<TreeNode>,
    batch: &mut Growing,
    prologue: Option<&Prologue>,
) -> Result<bool> {
    if let Some(p) = prologue {
        if upgrade.start < p.length && (upgrade.start != 0 || upgrade.length < p.length) {
            return Err(invalid_proof("Upgrade does not satisfy prologue"));
        }
    }
    let to = upgrade
        .start
        .checked_add(upgrade.length)
        .and_then(double)
        .filter(|&to| to > 0)
        .ok_or_else(|| invalid_proof("The upgrade's length is out of range"))?;

    let mut q = Queue::new(&upgrade.nodes, block_root);
    let mut grow = !batch.roots.is_empty();
    let mut i = 0;
    for root in flat_tree::full_roots(to) {
        if i < batch.roots.len() && batch.roots[i].index == root {
            i += 1;
            continue;
        }
        if grow {
            grow = false;
            if i < batch.roots.len() {
                // climb from the newest root, adding the siblings, until it is `root`
                let mut steps = 0u64;
                while batch.last()? != root {
                    steps += 1;
                    if steps > 4 * MAX_DEPTH {
                        return Err(invalid_proof("The upgrade does not reach its root"));
                    }
                    let s = sibling(batch.last()?)
                        .ok_or_else(|| invalid_proof("The upgrade does not reach its root"))?;
                    batch.append_root(q.shift(s)?)?;
                }
                continue;
            }
        }
        batch.append_root(q.shift(root)?)?;
    }
    // Nodes left over are ignored, as hypercore's verifyUpgrade does: a peer answers an
    // upgrade from the length we asked at, and by now we may have grown past it (Autobase's
    // views are written on both sides), so fewer of its nodes are needed. Only the nodes
    // used are kept (`batch.nodes`).

    if let Some(p) = prologue {
        if batch.length == p.length && merkle::hash_roots(&batch.roots) != p.hash {
            return Err(invalid_proof("Invalid hash"));
        }
    }

    // the additional nodes: first the siblings of the newest root, then roots further right
    let extra = &upgrade.additional_nodes;
    let mut ite = batch.last()?;
    let mut i = 0;
    while i < extra.len() {
        let s = sibling(ite).ok_or_else(|| invalid_proof("Unexpected additional node"))?;
        ite = s;
        if extra[i].index != s {
            break;
        }
        batch.append_root(extra[i].clone())?;
        i += 1;
        ite = batch.last()?;
    }
    while i < extra.len() {
        let node = &extra[i];
        i += 1;
        let mut steps = 0;
        while node.index != ite {
            steps += 1;
            match left_child(ite) {
                Some(l) if steps <= MAX_DEPTH => ite = l,
                _ => return Err(invalid_proof(format!("Unexpected node: {}", node.index))),
            }
        }
        batch.append_root(node.clone())?;
        ite = sibling(batch.last()?)
            .ok_or_else(|| invalid_proof(format!("node {} is out of range", node.index)))?;
    }

    // the roots must be exactly the full roots of the length they add up to
    let indexes: Vec<u64> = batch.roots.iter().map(|r| r.index).collect();
    if flat_tree::full_roots_for_length(batch.length) != indexes {
        return Err(invalid_proof("The upgrade does not end in a valid tree"));
    }
    Ok(q.extra.is_none())
}

/// A node of the receiver's own tree: one of its roots, or a stored node inside it.
fn local_node(tree: &MerkleTree, source: &dyn NodeSource, index: u64) -> Result<Option<TreeNode>> {
    if let Some(r) = tree.roots.iter().find(|r| r.index == index) {
        return Ok(Some(r.clone()));
    }
    if !inside(index, tree.length.saturating_mul(2)) {
        return Ok(None);
    }
    source.node(index)
}

/// The nodes with the first of each index. A proof carries tens: looking back through
/// those kept costs less than hashing them (this ran for every block replicated); a peer
/// that sends many more gets the hash set.
fn dedup(nodes: Vec<TreeNode>) -> Vec<TreeNode> {
    if nodes.len() <= 64 {
        let mut out: Vec<TreeNode> = Vec::with_capacity(nodes.len());
        for n in nodes {
            if !out.iter().any(|m| m.index == n.index) {
                out.push(n);
            }
        }
        return out;
    }
    let mut seen: HashSet<u64, IndexHash> =
        HashSet::with_capacity_and_hasher(nodes.len(), IndexHash::default());
    nodes.into_iter().filter(|n| seen.insert(n.index)).collect()
}

fn check_signature(manifest: &Manifest, tree: &Growing, fork: u64, sig: &[u8]) -> Result<()> {
    let hash = merkle::hash_roots(&tree.roots);
    let signed = signature::Tree::new(&hash, tree.length, fork).with_roots(&tree.roots);
    if signature::verify_tree(manifest, sig, signed) {
        Ok(())
    } else {
        Err(Error::new(
            "INVALID_SIGNATURE",
            "Proof contains an invalid signature",
        ))
    }
}

/// A multisig proof's patch (hypercore's Verifier: `generateUpgrade`, then `verifyUpgrade`
/// on a clone of the tree): a signer signed a tree `patch` blocks longer than the tree of
/// `length` blocks with `roots`; the roots of that longer tree, built from these roots and
/// the right-hand nodes the signature's patch carries (`nodes`, by flat-tree index). Nodes
/// that span blocks of the shorter tree are always hashed from its roots, never taken from
/// the patch, so a good signature over the result proves the shorter tree is its prefix.
/// None when the patch lacks a node or the nodes do not make that tree.
pub fn patched_roots(
    roots: &[TreeNode],
    length: u64,
    patch: u64,
    nodes: &HashMap<u64, TreeNode>,
    prologue: Option<&Prologue>,
) -> Option<Vec<TreeNode>> {
    let from = double(length)?;
    let to = double(length.checked_add(patch)?)?;
    if patch == 0 {
        return None;
    }
    let mut upgrade = Vec::new();
    let mut connected = false;
    for root in flat_tree::full_roots(to) {
        let (_, right) = spans(root)?;
        if right + 2 <= from {
            continue; // wholly inside the shorter tree: one of its roots
        }
        if !connected && from >= 2 && contains(root, from - 2) {
            // the root that joins the shorter tree's last block: the right-hand siblings
            // on the way up from that block
            connected = true;
            let target = from - 2;
            let mut ite = target;
            let mut steps = 0;
            while ite != root {
                steps += 1;
                let s = sibling(ite)?;
                if steps > MAX_DEPTH {
                    return None;
                }
                if s > target {
                    upgrade.push(nodes.get(&s)?.clone());
                }
                ite = parent(ite)?;
            }
            continue;
        }
        connected = true;
        upgrade.push(nodes.get(&root)?.clone());
    }
    let proof = UpgradeProof {
        start: length,
        length: patch,
        nodes: upgrade,
        additional_nodes: Vec::new(),
        signature: Vec::new(),
    };
    let mut batch = Growing {
        roots: roots.to_vec(),
        length,
        nodes: Vec::new(),
    };
    verify_upgrade(&proof, None, &mut batch, prologue).ok()?;
    Some(batch.roots)
}

/// Checks a proof against the receiver's tree `current` (its stored nodes in `nodes`):
/// the block/hash/seek paths must hash up to a node the receiver has or to a root of the
/// upgrade, and an upgrade must be signed (per `manifest`) over the tree it ends at.
///
/// `manifest` is the core's manifest; a receiver that has none yet must check that
/// `proof.manifest` hashes to the core's key and pass that. The proof's fork must be the
/// receiver's (hypercore ignores other forks here; a newer one is a reorg:
/// `verify_reorg`). Errors: `INVALID_SIGNATURE` for a bad signature, `INVALID_PROOF` for
/// anything else that does not hold up (a storage error keeps its own code).
pub fn verify_proof(
    current: &MerkleTree,
    nodes: &dyn NodeSource,
    manifest: &Manifest,
    proof: &Proof,
) -> Result<Verified> {
    let mut verified = verify_paths_and_upgrade(current, nodes, manifest, proof, None)?;
    verified.block = proof.block.as_ref().map(|b| (b.index, b.value.clone()));
    Ok(verified)
}

/// `verify_proof` of a proof not needed after: the block is moved into `Verified`. `leaf`:
/// the block's leaf hash, when the caller computed it from `proof.block`'s value already.
pub fn verify_owned(
    current: &MerkleTree,
    nodes: &dyn NodeSource,
    manifest: &Manifest,
    proof: Proof,
    leaf: Option<[u8; 32]>,
) -> Result<Verified> {
    let mut verified = verify_paths_and_upgrade(current, nodes, manifest, &proof, leaf)?;
    verified.block = proof.block.map(|b| (b.index, b.value));
    Ok(verified)
}

fn verify_paths_and_upgrade(
    current: &MerkleTree,
    nodes: &dyn NodeSource,
    manifest: &Manifest,
    proof: &Proof,
    leaf: Option<[u8; 32]>,
) -> Result<Verified> {
    if proof.fork != current.fork {
        return Err(invalid_proof(format!(
            "The proof is for fork {}, the core is at fork {}",
            proof.fork, current.fork
        )));
    }
    let mut out = Vec::new();
    let mut unverified = verify_paths(proof, leaf, &mut out)?;
    let mut verified = Verified::default();

    if let Some(upgrade) = &proof.upgrade {
        let mut batch = Growing {
            roots: current.roots.clone(),
            length: current.length,
            nodes: Vec::new(),
        };
        if verify_upgrade(
            upgrade,
            unverified.clone(),
            &mut batch,
            manifest.prologue.as_ref(),
        )? {
            unverified = None;
        }
        if batch.length <= current.length {
            // not an upgrade for us: fine when it ends in our own tree (hypercore's downgrade)
            let mut ours = true;
            for root in &batch.roots {
                match local_node(current, nodes, root.index)? {
                    Some(local) if local.hash == root.hash && local.size == root.size => {}
                    _ => ours = false,
                }
            }
            if !ours {
                check_signature(manifest, &batch, proof.fork, &upgrade.signature)?;
                return Err(invalid_proof(
                    "The proof's signed tree conflicts with the local tree",
                ));
            }
        } else {
            check_signature(manifest, &batch, proof.fork, &upgrade.signature)?;
            verified.tree = Some(MerkleTree {
                byte_length: batch.byte_length()?,
                roots: batch.roots.clone(),
                length: batch.length,
                fork: proof.fork,
            });
            verified.signature = Some(upgrade.signature.clone());
        }
        out.append(&mut batch.nodes);
    }

    if let Some(root) = unverified {
        match local_node(current, nodes, root.index)? {
            Some(local) if local.hash == root.hash && local.size == root.size => {}
            Some(_) => {
                return Err(invalid_proof(format!(
                    "Invalid checksum at node {}",
                    root.index
                )))
            }
            None => {
                return Err(invalid_proof(format!(
                    "The proof ends in node {}, which the core does not have",
                    root.index
                )))
            }
        }
    }

    verified.nodes = dedup(out);
    Ok(verified)
}

// ---------------------------------------------------------------------------------------
// reorgs

/// The blocks to ask hash proofs for next: `hash: { index: 2 * i, nodes }` for any block
/// i in [start, end) that the peer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorgWant {
    pub start: u64,
    pub end: u64,
    pub nodes: u64,
}

/// Following a peer onto a newer fork (hypercore's `ReorgBatch`). Made by `verify_reorg`
/// from a signed upgrade-from-0 proof of the new fork; each `update` with a hash proof
/// for `want` narrows down where the new fork leaves the local tree. When `want` is None
/// the reorg is finished: delete local blocks and tree nodes from `ancestors` on (as a
/// truncation to `ancestors` does), write `nodes`, and adopt `tree` with `signature`.
#[derive(Debug, Clone)]
pub struct Reorg {
    pub tree: MerkleTree,
    pub signature: Vec<u8>,
    pub nodes: Vec<TreeNode>,
    /// Blocks [0, ancestors) are shared by the local tree and the new fork.
    pub ancestors: u64,
    pub want: Option<ReorgWant>,
    /// The local tree's length when the reorg began.
    pub local_length: u64,
    diff: Option<TreeNode>,
    /// hypercore's `want.start`, kept after `want` becomes None.
    want_start: u64,
}

impl Reorg {
    pub fn finished(&self) -> bool {
        self.want.is_none()
    }

    /// hypercore `_updateDiffRoot`: `diff` is the highest node known to differ.
    fn update_diff_root(&mut self, diff: TreeNode) -> Result<bool> {
        if self.want.is_none() {
            return Ok(true);
        }
        let (left, right) = spans(diff.index)
            .ok_or_else(|| invalid_proof(format!("node {} is out of range", diff.index)))?;
        let start = left / 2;
        let end = self.local_length.min(right / 2 + 1);
        let leaf = diff.index & 1 == 0;
        self.ancestors = start;
        self.diff = Some(diff);
        if leaf || self.want_start >= self.local_length || end <= start {
            self.want = None;
            return Ok(true);
        }
        self.want_start = start;
        self.want = Some(ReorgWant {
            start,
            end,
            nodes: flat_tree::depth(self.diff.as_ref().map_or(0, |d| d.index)),
        });
        Ok(false)
    }

    /// hypercore `_update`: descends from the differing node through the proven `nodes`,
    /// left child first, to the deepest node known to differ from the local tree.
    fn descend(&mut self, local: &dyn NodeSource, nodes: &[TreeNode]) -> Result<bool> {
        let Some(current) = self.diff.clone() else {
            return Ok(false);
        };
        let n: HashMap<u64, &TreeNode> = nodes.iter().map(|x| (x.index, x)).collect();
        let mut diff: Option<TreeNode> = None;
        let mut ite = current.index;
        let mut steps = 0;
        while ite & 1 == 1 && steps <= MAX_DEPTH {
            steps += 1;
            let Some(l) = left_child(ite) else { break };
            ite = l;
            let Some(left) = n.get(&l) else { break };
            let same = matches!(local.node(l)?, Some(e) if e.hash == left.hash);
            if !same {
                diff = Some((*left).clone());
            } else {
                let r = sibling(l).ok_or_else(|| invalid_proof("node out of range"))?;
                ite = r;
                diff = Some(
                    n.get(&r)
                        .map(|x| (*x).clone())
                        .ok_or_else(|| invalid_proof(format!("The proof lacks node {r}")))?,
                );
            }
        }
        if current.index & 1 == 0 {
            return Ok(true);
        }
        match diff {
            None => Ok(false),
            Some(d) => self.update_diff_root(d),
        }
    }

    /// Takes a hash proof answering `want`; true once the reorg is finished. A proof
    /// that does not end in the differing node is an `INVALID_PROOF` error (hypercore
    /// ignores it) and changes nothing.
    pub fn update(&mut self, local: &dyn NodeSource, proof: &Proof) -> Result<bool> {
        if self.want.is_none() {
            return Ok(true);
        }
        let mut nodes = Vec::new();
        let root = verify_paths(proof, None, &mut nodes)?;
        let diff = self.diff.as_ref().map(|d| d.hash);
        match root {
            Some(r) if Some(r.hash) == diff => {}
            _ => {
                return Err(invalid_proof(
                    "The proof does not end in the differing node",
                ))
            }
        }
        let finished = self.descend(local, &nodes)?;
        self.nodes.extend(nodes);
        self.nodes = dedup(std::mem::take(&mut self.nodes));
        Ok(finished)
    }
}

/// Starts a reorg onto the newer fork `proof` is from (hypercore `verifyReorg`): `proof`
/// must upgrade from nothing (`upgrade: { start: 0, length }`, as `_requestForkProof`
/// asks) and be signed; any block/hash/seek path must end in one of its roots. `local`
/// is the receiver's tree and `nodes` its stored nodes (of the old fork).
pub fn verify_reorg(
    local: &MerkleTree,
    nodes: &dyn NodeSource,
    manifest: &Manifest,
    proof: &Proof,
) -> Result<Reorg> {
    if proof.fork <= local.fork {
        return Err(invalid_proof(format!(
            "A reorg needs a newer fork than {}, the proof is for fork {}",
            local.fork, proof.fork
        )));
    }
    let upgrade = proof
        .upgrade
        .as_ref()
        .ok_or_else(|| invalid_proof("A fork proof needs an upgrade"))?;
    let mut out = Vec::new();
    let unverified = if proof.block.is_some() || proof.hash.is_some() || proof.seek.is_some() {
        verify_paths(proof, None, &mut out)?
    } else {
        None
    };
    let mut batch = Growing {
        roots: Vec::new(),
        length: 0,
        nodes: Vec::new(),
    };
    if !verify_upgrade(upgrade, unverified, &mut batch, manifest.prologue.as_ref())? {
        return Err(invalid_proof("Fork proof not verifiable"));
    }
    check_signature(manifest, &batch, proof.fork, &upgrade.signature)?;
    out.append(&mut batch.nodes);

    let mut reorg = Reorg {
        tree: MerkleTree {
            byte_length: batch.byte_length()?,
            roots: batch.roots.clone(),
            length: batch.length,
            fork: proof.fork,
        },
        signature: upgrade.signature.clone(),
        nodes: dedup(out),
        ancestors: 0,
        want: Some(ReorgWant {
            start: 0,
            end: 0,
            nodes: 0,
        }),
        local_length: local.length,
        diff: None,
        want_start: 0,
    };
    for root in &batch.roots {
        match local_node(local, nodes, root.index)? {
            Some(e) if e.hash == root.hash => continue,
            _ => {
                reorg.update_diff_root(root.clone())?;
                break;
            }
        }
    }
    if reorg.diff.is_some() {
        let proven = reorg.nodes.clone();
        reorg.descend(nodes, &proven)?;
    } else {
        reorg.want = None;
        reorg.ancestors = reorg.tree.length;
    }
    Ok(reorg)
}

// ---------------------------------------------------------------------------------------
// request helpers

/// hypercore `MerkleTree.missingNodes(index, length)`: the `nodes` to put in a request for
/// flat-tree `index` (2 * block for a block) from a tree of `length` blocks: how many
/// nodes on the path up from `index` (itself included) are not stored, stopping at the
/// first stored one or at the tree's edge. 0 for nodes past the tree.
pub fn missing_nodes(nodes: &dyn NodeSource, index: u64, length: u64) -> Result<u64> {
    Ok(missing_nodes_before(nodes, index, length, |_| false)?.0)
}

/// `missing_nodes`, also stopping at a node `coming(node)` says an answer in flight
/// brings (docs/DECISIONS.md §40); true when it stopped there, so the proof that comes back
/// ends in a node that may have to arrive first.
pub fn missing_nodes_before(
    nodes: &dyn NodeSource,
    index: u64,
    length: u64,
    coming: impl Fn(u64) -> bool,
) -> Result<(u64, bool)> {
    let head = length.saturating_mul(2);
    if !inside(index, head) {
        return Ok((0, false));
    }
    let mut ite = index;
    let mut count = 0;
    while !contains(ite, head) {
        // a node that is coming is not looked up (it may be held as well: the answer
        // then verifies at once)
        if coming(ite) {
            return Ok((count, true));
        }
        if nodes.node(ite)?.is_some() {
            break;
        }
        count += 1;
        match parent(ite) {
            Some(p) if count <= MAX_DEPTH => ite = p,
            _ => break,
        }
    }
    Ok((count, false))
}

/// The node a proof of block `index` with `uncles` uncles (and no upgrade or seek) ends in:
/// the one they climb to from the leaf. None past the largest tree.
pub fn block_proof_end(index: u64, uncles: usize) -> Option<u64> {
    let mut end = double(index).filter(|&i| i < 2 * MAX_LENGTH)?;
    for _ in 0..uncles {
        end = parent(end)?;
    }
    Some(end)
}

/// hypercore `MerkleTree.maxMissingNodes(index, length)`: the most `nodes` a request for
/// `index` in a tree of `length` blocks can have (what a pushing writer assumes).
pub fn max_missing_nodes(index: u64, length: u64) -> u64 {
    let head = length.saturating_mul(2);
    if !inside(index, head) || flat_tree::full_roots(head).contains(&index) {
        return 0;
    }
    let mut count = 0;
    let mut ite = index;
    while let Some(p) = parent(ite) {
        if contains(p, head) {
            break;
        }
        count += 1;
        ite = p;
    }
    count
}

/// hypercore `MerkleTree.upgradeLength`: the length an upgrade proof brings the receiver
/// to (past `start + length` when it has additional nodes).
pub fn upgrade_length(upgrade: &UpgradeProof) -> u64 {
    match upgrade.additional_nodes.last() {
        Some(last) => spans(last.index).map_or(0, |(_, r)| r / 2 + 1),
        None => upgrade.start.saturating_add(upgrade.length),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_the_first_node_of_each_index_in_order() {
        let node = |index: u64, size: u64| TreeNode {
            index,
            size,
            hash: [0; 32],
        };
        for n in [10u64, 200] {
            // indexes n-1 down to 0, then each again with another size
            let nodes: Vec<TreeNode> = (0..n)
                .rev()
                .map(|i| node(i, 1))
                .chain((0..n).map(|i| node(i, 2)))
                .collect();
            let out = dedup(nodes);
            assert_eq!(out.len() as u64, n);
            assert!(out.iter().all(|x| x.size == 1), "the first of each is kept");
            let order: Vec<u64> = out.iter().map(|x| x.index).collect();
            assert_eq!(order, (0..n).rev().collect::<Vec<_>>());
        }
    }
    use crate::crypto::test_vectors::{load, Json};
    use std::collections::HashMap;

    /// Stored nodes in memory.
    #[derive(Default, Clone)]
    struct Nodes(HashMap<u64, TreeNode>);

    impl NodeSource for Nodes {
        fn node(&self, index: u64) -> Result<Option<TreeNode>> {
            Ok(self.0.get(&index).cloned())
        }
    }

    fn vectors() -> Json {
        load(&["__test__/fixtures/proof-vectors.json"])
    }

    fn node_json(j: &Json) -> TreeNode {
        TreeNode {
            index: j.get("index").u64(),
            size: j.get("size").u64(),
            hash: j.get("hash").b32(),
        }
    }

    fn nodes_json(j: &Json) -> Vec<TreeNode> {
        j.arr().iter().map(node_json).collect()
    }

    fn pair(j: &Json, a: &str, b: &str) -> Option<(u64, u64)> {
        (!j.is_null()).then(|| (j.get(a).u64(), j.get(b).u64()))
    }

    fn request_json(j: &Json) -> ProofRequest {
        ProofRequest {
            fork: 0,
            block: pair(j.get("block"), "index", "nodes"),
            hash: pair(j.get("hash"), "index", "nodes"),
            seek: pair(j.get("seek"), "bytes", "padding"),
            upgrade: pair(j.get("upgrade"), "start", "length"),
            manifest: false,
        }
    }

    fn proof_json(j: &Json) -> Proof {
        let opt = |k: &str| Some(j.get(k)).filter(|x| !x.is_null());
        Proof {
            fork: j.get("fork").u64(),
            block: opt("block").map(|b| BlockProof {
                index: b.get("index").u64(),
                value: b.get("value").bytes(),
                nodes: nodes_json(b.get("nodes")),
            }),
            hash: opt("hash").map(|b| HashProof {
                index: b.get("index").u64(),
                nodes: nodes_json(b.get("nodes")),
            }),
            seek: opt("seek").map(|b| SeekProof {
                bytes: b.get("bytes").u64(),
                nodes: nodes_json(b.get("nodes")),
            }),
            upgrade: opt("upgrade").map(|u| UpgradeProof {
                start: u.get("start").u64(),
                length: u.get("length").u64(),
                nodes: nodes_json(u.get("nodes")),
                additional_nodes: nodes_json(u.get("additionalNodes")),
                signature: if u.get("signature").is_null() {
                    Vec::new()
                } else {
                    u.get("signature").bytes()
                },
            }),
            manifest: opt("manifest").map(|m| Manifest::decode(&m.bytes()).expect("manifest")),
        }
    }

    /// The tree of these blocks at `fork`, and all its nodes.
    fn build(blocks: &[Vec<u8>], fork: u64) -> (MerkleTree, Nodes) {
        let empty = MerkleTree {
            fork,
            ..MerkleTree::default()
        };
        let appended = empty.append(blocks.iter().map(|b| b.as_slice()));
        let nodes = appended.nodes.into_iter().map(|n| (n.index, n)).collect();
        (appended.tree, Nodes(nodes))
    }

    /// Only the roots: what a reader has after an upgrade from 0.
    fn roots_only(tree: &MerkleTree) -> Nodes {
        Nodes(tree.roots.iter().map(|r| (r.index, r.clone())).collect())
    }

    struct Core {
        json: Json,
        label: String,
        blocks: Vec<Vec<u8>>,
        tree: MerkleTree,
        nodes: Nodes,
        manifest: Manifest,
        signature: Vec<u8>,
    }

    fn cores(v: &Json) -> Vec<Core> {
        v.get("cores")
            .arr()
            .iter()
            .map(|c| {
                let blocks: Vec<Vec<u8>> =
                    c.get("blocks").arr().iter().map(|b| b.bytes()).collect();
                let (tree, nodes) = build(&blocks, c.get("fork").u64());
                Core {
                    json: c.clone(),
                    label: c.get("label").str().to_string(),
                    blocks,
                    tree,
                    nodes,
                    manifest: Manifest::decode(&c.get("manifest").bytes()).expect("manifest"),
                    signature: c.get("signature").bytes(),
                }
            })
            .collect()
    }

    fn value_for(core: &Core, req: &ProofRequest) -> Option<Vec<u8>> {
        req.block
            .and_then(|(i, _)| usize::try_from(i).ok())
            .and_then(|i| core.blocks.get(i).cloned())
    }

    #[test]
    fn trees_match_js() {
        for core in cores(&vectors()) {
            let c = &core.json;
            assert_eq!(core.tree.length, c.get("length").u64(), "{}", core.label);
            assert_eq!(core.tree.byte_length, c.get("byteLength").u64());
            assert_eq!(
                core.tree.roots,
                nodes_json(c.get("roots")),
                "{}",
                core.label
            );
            assert_eq!(core.tree.hash(), c.get("treeHash").b32());
            let mut ours: Vec<TreeNode> = core.nodes.0.values().cloned().collect();
            ours.sort_by_key(|n| n.index);
            assert_eq!(ours, nodes_json(c.get("nodes")), "{}", core.label);
            let hash = core.tree.hash();
            let tree = signature::Tree::new(&hash, core.tree.length, core.tree.fork);
            assert!(signature::verify_tree(
                &core.manifest,
                &core.signature,
                tree.with_roots(&core.tree.roots)
            ));
        }
    }

    /// (1) From the same blocks, create_proof gives exactly the proofs hypercore made, and
    /// refuses the requests hypercore refused.
    #[test]
    fn create_proof_matches_js() {
        let mut matched = 0;
        let mut refused = 0;
        for core in cores(&vectors()) {
            for case in core.json.get("cases").arr() {
                let req = request_json(case.get("request"));
                let got = create_proof(
                    &core.tree,
                    &core.nodes,
                    value_for(&core, &req),
                    &core.signature,
                    &req,
                );
                if !case.get("error").is_null() {
                    let err = got.expect_err(&format!("{} {req:?} should fail", core.label));
                    assert_eq!(err.code, "INVALID_OPERATION", "{} {req:?}", core.label);
                    refused += 1;
                    continue;
                }
                let got = got.unwrap_or_else(|e| panic!("{} {req:?}: {e}", core.label));
                assert_eq!(got, proof_json(case.get("proof")), "{} {req:?}", core.label);
                matched += 1;
            }
        }
        println!("{matched} proofs identical to hypercore's, {refused} requests refused by both");
        assert!(matched > 800 && refused > 40);
    }

    /// The length and nodes a verified proof must give: the writer's own.
    fn check_verified(core: &Core, v: &Verified, proof: &Proof) {
        for n in &v.nodes {
            assert_eq!(
                core.nodes.0.get(&n.index),
                Some(n),
                "{} node {}",
                core.label,
                n.index
            );
        }
        match (&v.tree, &proof.upgrade) {
            (Some(t), Some(u)) => {
                let len = upgrade_length(u);
                let (expected, _) = build(&core.blocks[..len as usize], core.tree.fork);
                assert_eq!(t.roots, expected.roots);
                assert_eq!(
                    (t.length, t.byte_length, t.fork),
                    (len, expected.byte_length, core.tree.fork)
                );
                assert_eq!(v.signature.as_deref(), Some(u.signature.as_slice()));
            }
            (None, _) => assert!(v.signature.is_none()),
            (Some(_), None) => panic!("a tree without an upgrade"),
        }
        assert_eq!(
            v.block,
            proof.block.as_ref().map(|b| (b.index, b.value.clone()))
        );
    }

    /// (2) Every proof hypercore made verifies from the state its receiver would be in: a
    /// tree at the upgrade's start, or the whole tree for proofs without an upgrade.
    #[test]
    fn verify_accepts_js_proofs() {
        let mut n = 0;
        for core in cores(&vectors()) {
            for case in core.json.get("cases").arr() {
                if case.get("proof").is_null() {
                    continue;
                }
                let req = request_json(case.get("request"));
                let proof = proof_json(case.get("proof"));
                let k = req.upgrade.map_or(core.tree.length, |(start, _)| start) as usize;
                let (tree, nodes) = build(&core.blocks[..k], core.tree.fork);
                let v = verify_proof(&tree, &nodes, &core.manifest, &proof)
                    .unwrap_or_else(|e| panic!("{} {req:?}: {e}", core.label));
                assert_eq!(
                    v.tree.is_some(),
                    req.upgrade.is_some(),
                    "{} {req:?}",
                    core.label
                );
                check_verified(&core, &v, &proof);
                n += 1;
            }
        }
        assert!(n > 800);
    }

    /// The requests a reader at `k` blocks (holding only that tree's roots) sends.
    fn reader_requests(core: &Core, k: u64) -> Vec<(String, ProofRequest)> {
        let n = core.tree.length;
        let req = |block: Option<(u64, u64)>,
                   hash: Option<(u64, u64)>,
                   seek: Option<(u64, u64)>,
                   upgrade: Option<(u64, u64)>| ProofRequest {
            fork: core.tree.fork,
            block,
            hash,
            seek,
            upgrade,
            manifest: false,
        };
        let up = Some((k, n - k));
        let mut out = vec![
            ("upgrade".to_string(), req(None, None, None, up)),
            (
                "block k + upgrade".into(),
                req(Some((k, 0)), None, None, up),
            ),
            (
                "last block + upgrade".into(),
                req(Some((n - 1, 0)), None, None, up),
            ),
            (
                "seek + upgrade".into(),
                req(None, None, Some((core.tree.byte_length * 3 / 4, 0)), up),
            ),
        ];
        if n - k > 2 {
            out.push(("short upgrade".into(), req(None, None, None, Some((k, 1)))));
            out.push((
                "block + short upgrade".into(),
                req(Some((k, 0)), None, None, Some((k, (n - k) / 2))),
            ));
        }
        if k > 0 {
            let roots = roots_only(&build(&core.blocks[..k as usize], 0).0);
            for i in [0, k / 2, k - 1] {
                let nodes = max_missing_nodes(2 * i, k);
                assert_eq!(missing_nodes(&roots, 2 * i, k).unwrap(), nodes);
                out.push((
                    format!("block {i}"),
                    req(Some((i, nodes)), None, None, None),
                ));
                out.push((
                    format!("hash {i}"),
                    req(None, Some((2 * i, nodes)), None, None),
                ));
                out.push((
                    format!("block {i} + upgrade"),
                    req(Some((i, nodes)), None, None, up),
                ));
            }
        }
        out
    }

    fn node_js(n: &TreeNode) -> String {
        format!(
            "{{\"index\":{},\"size\":{},\"hash\":\"{}\"}}",
            n.index,
            n.size,
            crypto::hex(&n.hash)
        )
    }

    fn nodes_js(nodes: &[TreeNode]) -> String {
        let v: Vec<String> = nodes.iter().map(node_js).collect();
        format!("[{}]", v.join(","))
    }

    fn proof_js(p: &Proof) -> String {
        let block = p.block.as_ref().map_or("null".to_string(), |b| {
            format!(
                "{{\"index\":{},\"value\":\"{}\",\"nodes\":{}}}",
                b.index,
                crypto::hex(&b.value),
                nodes_js(&b.nodes)
            )
        });
        let hash = p.hash.as_ref().map_or("null".to_string(), |h| {
            format!("{{\"index\":{},\"nodes\":{}}}", h.index, nodes_js(&h.nodes))
        });
        let seek = p.seek.as_ref().map_or("null".to_string(), |s| {
            format!("{{\"bytes\":{},\"nodes\":{}}}", s.bytes, nodes_js(&s.nodes))
        });
        let upgrade = p.upgrade.as_ref().map_or("null".to_string(), |u| {
            format!(
                "{{\"start\":{},\"length\":{},\"nodes\":{},\"additionalNodes\":{},\"signature\":\"{}\"}}",
                u.start,
                u.length,
                nodes_js(&u.nodes),
                nodes_js(&u.additional_nodes),
                crypto::hex(&u.signature)
            )
        });
        let manifest = p.manifest.as_ref().map_or("null".to_string(), |m| {
            format!("\"{}\"", crypto::hex(&m.encode()))
        });
        format!(
            "{{\"fork\":{},\"block\":{block},\"hash\":{hash},\"seek\":{seek},\"upgrade\":{upgrade},\"manifest\":{manifest}}}",
            p.fork
        )
    }

    /// (3) hypercore verifies the proofs create_proof makes: written to a file, checked by
    /// `node __test__/fixtures/proof-vectors.js verify <file>` on fresh reader cores.
    #[test]
    fn js_verifies_rust_proofs() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        if !root.join("node_modules/hypercore/package.json").exists() {
            println!(
                "NOTICE: node_modules/hypercore is missing; skipping the JS check of Rust proofs"
            );
            return;
        }
        let v = vectors();
        let mut cores_js = Vec::new();
        let mut total = 0;
        for core in cores(&v) {
            let n = core.tree.length;
            let mut starts = vec![0, 1, n / 2, n - 1];
            starts.sort_unstable();
            starts.dedup();
            let mut cases = Vec::new();
            for k in starts.into_iter().filter(|&k| k < n) {
                let (tree_k, _) = build(&core.blocks[..k as usize], core.tree.fork);
                let nodes_k = roots_only(&tree_k);
                // a fresh JS reader is at fork 0 until a proof of a newer fork reorgs it
                let reorg = k == 0 && core.tree.fork > 0;
                for (name, req) in reader_requests(&core, k) {
                    let proof = create_proof(
                        &core.tree,
                        &core.nodes,
                        value_for(&core, &req),
                        &core.signature,
                        &req,
                    )
                    .unwrap_or_else(|e| panic!("{} k={k} {name}: {e}", core.label));
                    // our own verifier agrees first
                    let (length, block) = if reorg {
                        let local = MerkleTree::default();
                        let r = verify_reorg(&local, &Nodes::default(), &core.manifest, &proof)
                            .unwrap_or_else(|e| panic!("{} {name}: {e}", core.label));
                        assert!(r.finished());
                        (r.tree.length, None)
                    } else {
                        let v = verify_proof(&tree_k, &nodes_k, &core.manifest, &proof)
                            .unwrap_or_else(|e| panic!("{} k={k} {name}: {e}", core.label));
                        check_verified(&core, &v, &proof);
                        (v.tree.as_ref().map_or(k, |t| t.length), v.block.clone())
                    };
                    let block = block.map_or("null".to_string(), |(i, value)| {
                        format!("{{\"index\":{i},\"value\":\"{}\"}}", crypto::hex(&value))
                    });
                    cases.push(format!(
                        "{{\"name\":\"k={k} {name}\",\"receiver\":{{\"length\":{k},\"fork\":{}}},\"proof\":{},\"expect\":{{\"length\":{length},\"fork\":{},\"block\":{block}}}}}",
                        if reorg { 0 } else { core.tree.fork },
                        proof_js(&proof),
                        core.tree.fork
                    ));
                    total += 1;
                }
            }
            let blocks: Vec<String> = core
                .blocks
                .iter()
                .map(|b| format!("\"{}\"", crypto::hex(b)))
                .collect();
            cores_js.push(format!(
                "{{\"label\":\"{}\",\"blocks\":[{}],\"cases\":[\n{}]}}",
                core.label,
                blocks.join(","),
                cases.join(",\n")
            ));
        }
        let file = std::env::temp_dir().join(format!("proof-rust-{}.json", std::process::id()));
        std::fs::write(
            &file,
            format!("{{\"cores\":[\n{}]}}\n", cores_js.join(",\n")),
        )
        .unwrap();
        let out = std::process::Command::new("node")
            .arg("__test__/fixtures/proof-vectors.js")
            .arg("verify")
            .arg(&file)
            .current_dir(&root)
            .output();
        let _ = std::fs::remove_file(&file);
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                println!("NOTICE: cannot run node ({e}); skipping the JS check of Rust proofs");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let fails: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("ok ")).collect();
        assert!(
            out.status.success(),
            "hypercore refused Rust proofs:\n{}\n{}",
            fails.join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{}", stdout.lines().last().unwrap_or(""));
        assert!(stdout.contains(&format!("{total}/{total} Rust proofs verified")));
    }

    /// (5) A reader on the old fork follows the new one as hypercore's ReorgBatch did.
    #[test]
    fn reorg_matches_js() {
        let v = vectors();
        let r = v.get("reorg");
        let all = cores(&v);
        let core = all
            .iter()
            .find(|c| c.label == r.get("label").str())
            .unwrap();
        let old: Vec<Vec<u8>> = r.get("oldBlocks").arr().iter().map(|b| b.bytes()).collect();
        let (local, local_nodes) = build(&old, 0);
        let steps = r.get("steps").arr();
        let want = |w: &Json| {
            (!w.is_null()).then(|| ReorgWant {
                start: w.get("start").u64(),
                end: w.get("end").u64(),
                nodes: w.get("nodes").u64(),
            })
        };
        let mut reorg = verify_reorg(
            &local,
            &local_nodes,
            &core.manifest,
            &proof_json(steps[0].get("proof")),
        )
        .unwrap();
        assert_eq!(reorg.want, want(steps[0].get("want")));
        assert_eq!(reorg.ancestors, steps[0].get("ancestors").u64());
        for step in &steps[1..] {
            let req = request_json(step.get("request"));
            let (index, nodes) = req.hash.unwrap();
            let w = reorg.want.unwrap();
            assert_eq!((2 * w.start, w.nodes), (index, nodes));
            // our writer answers the same request with the same proof
            let ours = create_proof(&core.tree, &core.nodes, None, &core.signature, &req).unwrap();
            let proof = proof_json(step.get("proof"));
            assert_eq!(ours, proof);
            let finished = reorg.update(&local_nodes, &proof).unwrap();
            assert_eq!(finished, step.get("finished").bool());
            assert_eq!(reorg.want, want(step.get("want")));
            assert_eq!(reorg.ancestors, step.get("ancestors").u64());
        }
        assert!(reorg.finished());
        assert_eq!(reorg.ancestors, 13);
        assert_eq!(reorg.tree.roots, core.tree.roots);
        assert_eq!(reorg.tree.hash(), r.get("after").get("treeHash").b32());
        assert_eq!((reorg.tree.length, reorg.tree.fork), (22, 1));
        for n in &reorg.nodes {
            assert_eq!(core.nodes.0.get(&n.index), Some(n));
        }
        // a hash proof that does not end in the differing node changes nothing
        let mut fresh = verify_reorg(
            &local,
            &local_nodes,
            &core.manifest,
            &proof_json(steps[0].get("proof")),
        )
        .unwrap();
        let before = (fresh.want, fresh.ancestors);
        let wrong = create_proof(
            &core.tree,
            &core.nodes,
            None,
            &core.signature,
            &ProofRequest {
                hash: Some((2 * 20, 0)),
                ..ProofRequest::default()
            },
        )
        .unwrap();
        assert!(fresh.update(&local_nodes, &wrong).is_err());
        assert_eq!((fresh.want, fresh.ancestors), before);
        // same or older forks are no reorg
        let same = proof_json(steps[0].get("proof"));
        let tree1 = MerkleTree {
            fork: 1,
            ..local.clone()
        };
        assert!(verify_reorg(&tree1, &local_nodes, &core.manifest, &same).is_err());
    }

    /// Every way of spoiling a valid proof, applied to `proof`.
    fn spoilers(proof: &Proof) -> Vec<(String, Proof)> {
        let mut out = Vec::new();
        let mut push = |name: String, f: &dyn Fn(&mut Proof)| {
            let mut p = proof.clone();
            f(&mut p);
            if p != *proof {
                out.push((name, p));
            }
        };
        type Lists = fn(&mut Proof) -> Option<&mut Vec<TreeNode>>;
        let lists: [(&str, Lists); 5] = [
            ("block", |p| p.block.as_mut().map(|b| &mut b.nodes)),
            ("hash", |p| p.hash.as_mut().map(|b| &mut b.nodes)),
            ("seek", |p| p.seek.as_mut().map(|b| &mut b.nodes)),
            ("upgrade", |p| p.upgrade.as_mut().map(|b| &mut b.nodes)),
            ("additional", |p| {
                p.upgrade.as_mut().map(|b| &mut b.additional_nodes)
            }),
        ];
        for (name, list) in lists {
            let len = list(&mut proof.clone()).map_or(0, |l| l.len());
            for i in 0..len {
                push(format!("{name}[{i}] hash"), &|p| {
                    if let Some(l) = list(p) {
                        l[i].hash[i % 32] ^= 1;
                    }
                });
                push(format!("{name}[{i}] size"), &|p| {
                    if let Some(l) = list(p) {
                        l[i].size += 1;
                    }
                });
                push(format!("{name}[{i}] index"), &|p| {
                    if let Some(l) = list(p) {
                        l[i].index += 2;
                    }
                });
                push(format!("{name}[{i}] absurd index"), &|p| {
                    if let Some(l) = list(p) {
                        l[i].index = u64::MAX;
                    }
                });
                push(format!("{name}[{i}] absurd size"), &|p| {
                    if let Some(l) = list(p) {
                        l[i].size = u64::MAX;
                    }
                });
            }
            if len > 0 {
                push(format!("{name} truncated"), &|p| {
                    if let Some(l) = list(p) {
                        l.pop();
                    }
                });
                push(format!("{name} emptied"), &|p| {
                    if let Some(l) = list(p) {
                        l.clear();
                    }
                });
            }
            if name != "seek" {
                push(format!("{name} extra node"), &|p| {
                    if let Some(l) = list(p) {
                        l.push(TreeNode {
                            index: u64::MAX - 1,
                            size: 1,
                            hash: [7; 32],
                        });
                    }
                });
            }
        }
        push("fork".into(), &|p| p.fork += 1);
        push("signature".into(), &|p| {
            if let Some(u) = p.upgrade.as_mut() {
                if let Some(b) = u.signature.last_mut() {
                    *b ^= 1;
                }
            }
        });
        push("no signature".into(), &|p| {
            if let Some(u) = p.upgrade.as_mut() {
                u.signature.clear();
            }
        });
        push("value".into(), &|p| {
            if let Some(b) = p.block.as_mut() {
                b.value.push(0);
            }
        });
        push("block index".into(), &|p| {
            if let Some(b) = p.block.as_mut() {
                b.index += 1;
            }
        });
        push("absurd block index".into(), &|p| {
            if let Some(b) = p.block.as_mut() {
                b.index = u64::MAX;
            }
        });
        push("absurd hash index".into(), &|p| {
            if let Some(h) = p.hash.as_mut() {
                h.index = u64::MAX;
            }
        });
        push("absurd upgrade length".into(), &|p| {
            if let Some(u) = p.upgrade.as_mut() {
                u.length = u64::MAX;
            }
        });
        push("absurd upgrade start".into(), &|p| {
            if let Some(u) = p.upgrade.as_mut() {
                u.start = u64::MAX - 3;
            }
        });
        push("upgrade dropped".into(), &|p| p.upgrade = None);
        out
    }

    /// (4) Spoiled proofs are refused, never a panic. The receivers hold only their
    /// roots, so a shortened path cannot end in a node they happen to have.
    #[test]
    fn tampered_proofs_are_refused() {
        let v = vectors();
        let mut checked = 0;
        for core in cores(&v) {
            let n = core.tree.length;
            for k in [0, n / 2, n - 1] {
                let (tree, _) = build(&core.blocks[..k as usize], core.tree.fork);
                let nodes = roots_only(&tree);
                if k == 0 && n > 1 && core.label != "len-100" && core.label != "forked" {
                    continue;
                }
                for (name, req) in reader_requests(&core, k) {
                    let proof = create_proof(
                        &core.tree,
                        &core.nodes,
                        value_for(&core, &req),
                        &core.signature,
                        &req,
                    )
                    .unwrap();
                    assert!(verify_proof(&tree, &nodes, &core.manifest, &proof).is_ok());
                    for (spoil, bad) in spoilers(&proof) {
                        // dropping the upgrade of an upgrade-only proof leaves an empty one
                        // without its upgrade, a path that ends in a root the reader
                        // has is still a valid proof
                        let below = |i: u64| i < 2 * k;
                        if spoil == "upgrade dropped"
                            && (bad.block.as_ref().is_none_or(|b| below(2 * b.index))
                                && bad.hash.as_ref().is_none_or(|h| below(h.index)))
                        {
                            continue;
                        }
                        if spoil == "upgrade extra node" {
                            // as hypercore: nodes past those the upgrade uses are ignored,
                            // and never among the nodes to store
                            let got = verify_proof(&tree, &nodes, &core.manifest, &bad).unwrap();
                            assert!(got.nodes.iter().all(|n| n.index != u64::MAX - 1));
                            continue;
                        }
                        let got = verify_proof(&tree, &nodes, &core.manifest, &bad);
                        assert!(
                            got.is_err(),
                            "{} k={k} {name}: '{spoil}' was accepted",
                            core.label
                        );
                        let code = got.unwrap_err().code;
                        assert!(
                            code == "INVALID_PROOF" || code == "INVALID_SIGNATURE",
                            "{code}"
                        );
                        if spoil == "signature" && proof.upgrade.is_some() {
                            assert_eq!(code, "INVALID_SIGNATURE", "{} {name}", core.label);
                        }
                        let _ = verify_reorg(
                            &MerkleTree::default(),
                            &Nodes::default(),
                            &core.manifest,
                            &bad,
                        );
                        checked += 1;
                    }
                }
            }
        }
        println!("{checked} spoiled proofs refused");
        assert!(checked > 2000);
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick(&mut self, options: &[u64]) -> u64 {
            let i = (self.next() % options.len() as u64) as usize;
            options[i]
        }

        fn num(&mut self) -> u64 {
            let edges = [
                0,
                1,
                2,
                3,
                7,
                31,
                64,
                99,
                100,
                1 << 32,
                1 << 53,
                (1 << 60) + 1,
                u64::MAX / 2,
                u64::MAX - 1,
                u64::MAX,
            ];
            if self.next().is_multiple_of(3) {
                self.pick(&edges)
            } else {
                self.next() % 256
            }
        }
    }

    /// Random requests and random proof mutations: any result but a panic.
    #[test]
    fn fuzz_never_panics() {
        let v = vectors();
        let all = cores(&v);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let proofs: Vec<(usize, Proof)> = all
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.json
                    .get("cases")
                    .arr()
                    .iter()
                    .filter(|x| !x.get("proof").is_null())
                    .map(move |x| (i, proof_json(x.get("proof"))))
            })
            .collect();
        for _ in 0..20_000 {
            let core = &all[(rng.next() % all.len() as u64) as usize];
            let opt = |rng: &mut Rng| rng.next().is_multiple_of(2).then(|| (rng.num(), rng.num()));
            let req = ProofRequest {
                fork: 0,
                block: opt(&mut rng),
                hash: opt(&mut rng),
                seek: opt(&mut rng),
                upgrade: opt(&mut rng),
                manifest: false,
            };
            let _ = create_proof(
                &core.tree,
                &core.nodes,
                Some(vec![1]),
                &core.signature,
                &req,
            );
            let prologue = Prologue {
                hash: [0; 32],
                length: rng.num(),
            };
            let _ = create_proof_with_prologue(
                &core.tree,
                &core.nodes,
                None,
                &[],
                Some(&prologue),
                &req,
            );
            let _ = max_missing_nodes(rng.num(), rng.num());
            let _ = missing_nodes(&core.nodes, rng.num(), rng.num());
        }
        for round in 0..20_000 {
            let (ci, base) = &proofs[(rng.next() % proofs.len() as u64) as usize];
            let core = &all[*ci];
            let mut p = base.clone();
            for _ in 0..1 + rng.next() % 3 {
                let lists: Vec<&mut Vec<TreeNode>> = [
                    p.block.as_mut().map(|b| &mut b.nodes),
                    p.hash.as_mut().map(|b| &mut b.nodes),
                    p.seek.as_mut().map(|b| &mut b.nodes),
                ]
                .into_iter()
                .flatten()
                .chain(
                    p.upgrade
                        .as_mut()
                        .into_iter()
                        .flat_map(|u| [&mut u.nodes, &mut u.additional_nodes]),
                )
                .collect();
                let n = lists.len();
                if n > 0 {
                    let which = (rng.next() % n as u64) as usize;
                    let l = lists.into_iter().nth(which).unwrap();
                    match rng.next() % 5 {
                        0 if !l.is_empty() => {
                            let i = (rng.next() % l.len() as u64) as usize;
                            l[i].index = rng.num();
                        }
                        1 if !l.is_empty() => {
                            let i = (rng.next() % l.len() as u64) as usize;
                            l[i].size = rng.num();
                        }
                        2 => {
                            l.pop();
                        }
                        3 => l.push(TreeNode {
                            index: rng.num(),
                            size: rng.num(),
                            hash: [rng.next() as u8; 32],
                        }),
                        _ => l.reverse(),
                    }
                }
                match rng.next() % 6 {
                    0 => p.fork = rng.num(),
                    1 => {
                        if let Some(b) = p.block.as_mut() {
                            b.index = rng.num();
                        }
                    }
                    2 => {
                        if let Some(u) = p.upgrade.as_mut() {
                            u.start = rng.num();
                            u.length = rng.num();
                        }
                    }
                    3 => {
                        if let Some(h) = p.hash.as_mut() {
                            h.index = rng.num();
                        }
                    }
                    _ => {}
                }
            }
            let k = if round % 2 == 0 {
                core.tree.length / 2
            } else {
                rng.num() % (core.tree.length + 1)
            };
            let (tree, nodes) = build(&core.blocks[..k as usize], p.fork);
            let _ = verify_proof(&tree, &nodes, &core.manifest, &p);
            let _ = verify_proof(&core.tree, &core.nodes, &core.manifest, &p);
            if let Ok(mut r) = verify_reorg(&MerkleTree::default(), &core.nodes, &core.manifest, &p)
            {
                let _ = r.update(&core.nodes, base);
            }
        }
    }

    #[test]
    fn helpers_match_hypercore() {
        // maxMissingNodes as the vectors' requests used it: max + 1 is refused
        let v = vectors();
        for core in cores(&v) {
            let n = core.tree.length;
            let refused = core.json.get("cases").arr().iter().any(|c| {
                let r = request_json(c.get("request"));
                r.block == Some((0, max_missing_nodes(0, n) + 1)) && !c.get("error").is_null()
            });
            assert!(refused, "{}", core.label);
            // a reader holding everything misses nothing; one holding only roots misses
            // the whole path below them
            let roots = roots_only(&core.tree);
            for i in 0..n {
                assert_eq!(missing_nodes(&core.nodes, 2 * i, n).unwrap(), 0);
                assert_eq!(
                    missing_nodes(&roots, 2 * i, n).unwrap(),
                    max_missing_nodes(2 * i, n)
                );
            }
            assert_eq!(missing_nodes(&roots, 2 * n, n).unwrap(), 0);
        }
        let u = UpgradeProof {
            start: 3,
            length: 2,
            nodes: vec![],
            additional_nodes: vec![],
            signature: vec![],
        };
        assert_eq!(upgrade_length(&u), 5);
        let u = UpgradeProof {
            additional_nodes: vec![TreeNode {
                index: 17,
                size: 0,
                hash: [0; 32],
            }],
            ..u
        };
        assert_eq!(upgrade_length(&u), 10);
        // an empty tree proves nothing
        let empty = create_proof(
            &MerkleTree::default(),
            &Nodes::default(),
            None,
            &[],
            &ProofRequest {
                block: Some((0, 0)),
                upgrade: Some((0, 1)),
                ..ProofRequest::default()
            },
        )
        .unwrap();
        assert_eq!(empty, Proof::default());
        // a block the caller could not read
        let all = cores(&v);
        let err = create_proof(
            &all[2].tree,
            &all[2].nodes,
            None,
            &all[2].signature,
            &ProofRequest {
                block: Some((0, 0)),
                ..ProofRequest::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.code, "BLOCK_NOT_AVAILABLE");
    }
}
