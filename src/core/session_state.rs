//! A core's states other than its default one, as hypercore 11 keeps them:
//!
//! * a **named session** (`core.session({ name })`, hypercore's batches) has data of its own
//!   (a dataPointer listed in CORE/SESSIONS) and a chain of dependencies: block `i` with
//!   `i < dep.length` is read from the dependency's data, and so is a tree node whose right
//!   span ends inside it. Its appends are unsigned; `commit` copies what it added into the
//!   default state, signed;
//! * an **atomic state** (`{ atom }`) shares its parent's data and writes into the atom's
//!   overlay; when the atom flushes, one RocksDB batch lands and the parent takes the
//!   state's tree.
//!
//! Every change is planned as one batch (`Planned`) that the store writes (or hands to the
//! atom) before the state adopts it, so memory never runs ahead of what was written.

use crate::core::bitfield::{Bitfield, PAGE_BITS};
use crate::core::flat_tree;
use crate::core::manifest::Manifest;
use crate::core::merkle::{self, MerkleTree, NodeSource};
use crate::core::signature;
use crate::crypto::KeyPair;
use crate::error::{Error, Result};
use crate::storage::{keys, Batch, CoreHead, Dependency, Hints, Reader, TreeNode};

/// Which atom an atomic state writes into, and the state it flushes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomLink {
    pub atom: u32,
    /// The parent state's handle; `None` for the core's default state.
    pub parent: Option<u32>,
}

/// What an atomic state changed since the atom last flushed (hypercore's pending
/// bitfield): blocks from `start` were dropped (`truncated`) and `appends` were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRange {
    pub truncated: bool,
    pub start: u64,
    pub appends: u64,
}

#[derive(Debug, Clone)]
pub struct SessionState {
    /// The session's name; an atomic state has its parent's (`None` on the default state).
    pub name: Option<String>,
    pub data_pointer: u64,
    pub deps: Vec<Dependency>,
    pub tree: MerkleTree,
    pub signature: Option<Vec<u8>>,
    pub atom: Option<AtomLink>,
    pub pending: Option<PendingRange>,
}

/// A change to write, and the state it leaves.
pub struct Planned {
    pub batch: Batch,
    pub tree: MerkleTree,
    pub signature: Option<Vec<u8>>,
    pub deps: Option<Vec<Dependency>>,
    /// (start, length, dropped) of the blocks changed, for the pending range of atoms.
    pub range: Option<(u64, u64, bool)>,
}

/// Tree nodes of a state: its own, or its dependencies'.
pub struct StateNodes<'a> {
    pub reader: &'a dyn Reader,
    pub data_pointer: u64,
    pub deps: &'a [Dependency],
}

impl NodeSource for StateNodes<'_> {
    fn node(&self, index: u64) -> Result<Option<TreeNode>> {
        let dp = tree_pointer(self.deps, index, self.data_pointer);
        match self.reader.get(&keys::tree_node(dp, index))? {
            Some(v) => Ok(Some(TreeNode::decode(&v)?)),
            None => Ok(None),
        }
    }
}

fn block_pointer(deps: &[Dependency], index: u64, own: u64) -> u64 {
    deps.iter()
        .find(|d| index < d.length)
        .map_or(own, |d| d.data_pointer)
}

fn tree_pointer(deps: &[Dependency], index: u64, own: u64) -> u64 {
    let right = flat_tree::right_span(index);
    deps.iter()
        .find(|d| d.length > 0 && right <= (d.length - 1) * 2)
        .map_or(own, |d| d.data_pointer)
}

/// hypercore-storage's `_addDependency`: the parent's chain cut at `dep.length`, then `dep`.
pub fn add_dependency(parent: &[Dependency], dep: Option<&Dependency>) -> Vec<Dependency> {
    let mut out = Vec::new();
    for d in parent {
        if let Some(dep) = dep {
            if d.length > dep.length {
                if d.data_pointer != dep.data_pointer {
                    out.push(Dependency {
                        data_pointer: d.data_pointer,
                        length: dep.length,
                    });
                }
                return out;
            }
        }
        out.push(d.clone());
    }
    if let Some(dep) = dep {
        if out
            .last()
            .is_none_or(|l| l.data_pointer != dep.data_pointer)
        {
            out.push(dep.clone());
        }
    }
    out
}

/// hypercore-storage's `setDependencyHead`: the chain up to `dep`'s data, ending in `dep`.
pub fn set_dependency_head(deps: &[Dependency], dep: &Dependency) -> Vec<Dependency> {
    match deps
        .iter()
        .rposition(|d| d.data_pointer == dep.data_pointer)
    {
        Some(i) => {
            let mut out = deps[..=i].to_vec();
            out[i].length = dep.length;
            out
        }
        None => vec![dep.clone()],
    }
}

/// hypercore-storage's `findDependencyIndex`: where a change to `length` lands.
fn find_dependency(deps: &[Dependency], length: u64, truncated: bool) -> Option<Dependency> {
    let found = if truncated {
        deps.iter().find(|d| d.length >= length)
    } else {
        deps.iter().rev().find(|d| d.length <= length)
    };
    found.map(|d| Dependency {
        data_pointer: d.data_pointer,
        length,
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn head_record(tree: &MerkleTree, signature: Option<&[u8]>) -> CoreHead {
    CoreHead {
        fork: tree.fork,
        length: tree.length,
        root_hash: tree.hash(),
        signature: signature.map(|s| s.to_vec()),
        timestamp: Some(now_ms()),
    }
}

/// Sets bits [start, end) of the bitfield pages of `data_pointer` as `reader` sees them,
/// into `batch` (hypercore writes whole pages, zeros included).
fn store_bitfield_range(
    reader: &dyn Reader,
    batch: &mut Batch,
    data_pointer: u64,
    start: u64,
    end: u64,
    value: bool,
) -> Result<()> {
    if start >= end {
        return Ok(());
    }
    let mut pages = Vec::new();
    for page in start / PAGE_BITS..=(end - 1) / PAGE_BITS {
        let bytes = reader.get(&keys::bitfield(data_pointer, page, 0))?;
        pages.push((page, bytes.unwrap_or_default()));
    }
    let mut bitfield = Bitfield::from_pages(pages);
    bitfield.set_range(start, end, value);
    for page in start / PAGE_BITS..=(end - 1) / PAGE_BITS {
        let bytes = bitfield.page(page).map_or_else(
            || vec![0u8; crate::core::bitfield::PAGE_BYTES],
            |b| b.to_vec(),
        );
        batch.put_bitfield_page(data_pointer, page, &bytes);
    }
    Ok(())
}

/// The parts of the default state that a state standing in for it (an atomic state of the
/// default state) updates too: the bitfield and the contiguous-length hint.
pub struct DefaultView {
    pub contiguous_length: u64,
    pub remote_contiguous_length: u64,
}

impl SessionState {
    pub fn nodes<'a>(&'a self, reader: &'a dyn Reader) -> StateNodes<'a> {
        StateNodes {
            reader,
            data_pointer: self.data_pointer,
            deps: &self.deps,
        }
    }

    /// An atomic state of the default state: it writes the default state's bitfield.
    pub fn is_atomic_default(&self) -> bool {
        self.atom.is_some_and(|a| a.parent.is_none())
    }

    /// The length below which the state's data is shared (hypercore's `flushedLength`).
    pub fn flushed_length(&self) -> u64 {
        if self.is_atomic_default() {
            return self.tree.length;
        }
        self.deps.last().map_or(0, |d| d.length)
    }

    pub fn get(&self, reader: &dyn Reader, index: u64) -> Result<Option<Vec<u8>>> {
        let dp = block_pointer(&self.deps, index, self.data_pointer);
        Ok(reader.get(&keys::block(dp, index))?)
    }

    pub fn has(&self, reader: &dyn Reader, start: u64, end: u64) -> Result<bool> {
        for i in start..end {
            if self.get(reader, i)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn tree_hash(&self, reader: &dyn Reader, length: u64) -> Result<[u8; 32]> {
        if length == self.tree.length {
            return Ok(self.tree.hash());
        }
        if length > self.tree.length {
            return Err(Error::bad_argument(format!(
                "Cannot get the tree hash at length {length}: the session has {} blocks",
                self.tree.length
            )));
        }
        Ok(merkle::hash_roots(&merkle::roots_at(
            &self.nodes(reader),
            length,
        )?))
    }

    pub fn user_data(&self, reader: &dyn Reader, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(reader.get(&keys::user_data(self.data_pointer, key))?)
    }

    pub fn plan_user_data(&self, key: &str, value: Option<&[u8]>) -> Batch {
        let mut batch = Batch::new();
        match value {
            Some(v) => batch.put_user_data(self.data_pointer, key, v),
            None => batch.delete_user_data(self.data_pointer, key),
        }
        batch
    }

    /// Appends blocks; signed when `signer` is given (atomic states of the default state).
    pub fn plan_append(
        &self,
        reader: &dyn Reader,
        blocks: &[&[u8]],
        signer: Option<(&Manifest, &KeyPair)>,
        default: Option<&DefaultView>,
    ) -> Result<Planned> {
        let start = self.tree.length;
        let appended = self.tree.append(blocks.iter().copied());
        let tree = appended.tree;
        let sig =
            signer.map(|(m, kp)| signature::sign_tree(m, kp, &tree.hash(), tree.length, tree.fork));
        let mut batch = Batch::new();
        for node in &appended.nodes {
            batch.put_tree_node(self.data_pointer, node);
        }
        batch.put_core_head(self.data_pointer, &head_record(&tree, sig.as_deref()));
        if let Some(d) = default {
            store_bitfield_range(
                reader,
                &mut batch,
                self.data_pointer,
                start,
                tree.length,
                true,
            )?;
            if d.contiguous_length == start {
                batch.put_hints(
                    self.data_pointer,
                    &Hints {
                        contiguous_length: Some(tree.length),
                        remote_contiguous_length: Some(d.remote_contiguous_length),
                        recovering: None,
                    },
                );
            }
        }
        for (i, block) in blocks.iter().enumerate() {
            batch.put_block(self.data_pointer, start + i as u64, block);
        }
        Ok(Planned {
            batch,
            range: Some((start, blocks.len() as u64, false)),
            tree,
            signature: sig,
            deps: None,
        })
    }

    pub fn plan_truncate(
        &self,
        reader: &dyn Reader,
        length: u64,
        fork: u64,
        signer: Option<(&Manifest, &KeyPair)>,
        default: Option<&DefaultView>,
    ) -> Result<Planned> {
        let old = self.tree.length;
        if length > old {
            return Err(Error::invalid_operation(format!(
                "Not a truncation, {length} must be less or equal to {old}"
            )));
        }
        let tree = MerkleTree::load(&self.nodes(reader), length, fork)?;
        let sig =
            signer.map(|(m, kp)| signature::sign_tree(m, kp, &tree.hash(), tree.length, tree.fork));
        let dp = self.data_pointer;
        let mut batch = Batch::new();
        batch.delete_blocks(dp, length, Some(old.max(length + 1)));
        batch.delete_tree_nodes(dp, 2 * length, Some((2 * old).max(2 * length + 1)));
        for index in merkle::stale_ancestors(length) {
            batch.delete_tree_nodes(dp, index, Some(index + 1));
        }
        batch.put_core_head(dp, &head_record(&tree, sig.as_deref()));
        let mut deps = None;
        if length < self.flushed_length() {
            if let Some(dep) = find_dependency(&self.deps, length, true) {
                batch.put_dependency(dp, &dep);
                deps = Some(set_dependency_head(&self.deps, &dep));
            }
        }
        if let Some(d) = default {
            store_bitfield_range(reader, &mut batch, dp, length, old, false)?;
            if length < d.contiguous_length {
                batch.put_hints(
                    dp,
                    &Hints {
                        contiguous_length: Some(length),
                        remote_contiguous_length: Some(d.remote_contiguous_length.min(length)),
                        recovering: None,
                    },
                );
            }
        }
        Ok(Planned {
            batch,
            range: Some((length, old - length, true)),
            tree,
            signature: sig,
            deps,
        })
    }

    /// hypercore's `catchup(length)`: the session drops what it has of its own and takes
    /// the default state's tree at `length` (read through `core_nodes`), sharing it
    /// from there. Returns the plan and the length it shared before.
    pub fn plan_catchup(
        &self,
        core_nodes: &dyn NodeSource,
        core_data_pointer: u64,
        length: u64,
    ) -> Result<(Planned, u64)> {
        let shared = self
            .deps
            .iter()
            .rev()
            .find(|d| d.data_pointer == core_data_pointer)
            .map_or(0, |d| d.length);
        let roots = merkle::roots_at(core_nodes, length).map_err(|_| {
            Error::invalid_operation("Invalid catchup length, tree nodes not available")
        })?;
        let truncating = shared < self.tree.length;
        let tree = MerkleTree {
            byte_length: roots.iter().map(|r| r.size).sum(),
            roots,
            length,
            fork: if truncating {
                self.tree.fork + 1
            } else {
                self.tree.fork
            },
        };
        let dp = self.data_pointer;
        let mut batch = Batch::new();
        batch.delete_blocks(dp, 0, None);
        batch.delete_tree_nodes(dp, 0, None);
        batch.delete_bitfield_pages(dp, 0, None);
        batch.put_core_head(dp, &head_record(&tree, None));
        let mut dep = find_dependency(&self.deps, shared, true).unwrap_or(Dependency {
            data_pointer: core_data_pointer,
            length,
        });
        dep.length = length;
        batch.put_dependency(dp, &dep);
        let deps = set_dependency_head(&self.deps, &dep);
        Ok((
            Planned {
                batch,
                // what an atomic state's parent replays on flush: a truncation from the
                // shared length (hypercore's ontruncate; the append carries no range)
                range: truncating.then_some((shared, self.tree.length - shared, true)),
                tree,
                signature: None,
                deps: Some(deps),
            },
            shared,
        ))
    }

    /// Drops the local copies of blocks [start, end) of this state's own data.
    pub fn plan_clear(&self, start: u64, end: u64) -> Planned {
        let mut batch = Batch::new();
        batch.delete_blocks(self.data_pointer, start, Some(end));
        let mut deps = None;
        if start < self.flushed_length() {
            if let Some(dep) = find_dependency(&self.deps, start, true) {
                batch.put_dependency(self.data_pointer, &dep);
                deps = Some(set_dependency_head(&self.deps, &dep));
            }
        }
        Planned {
            batch,
            range: None,
            tree: self.tree.clone(),
            signature: self.signature.clone(),
            deps,
        }
    }

    pub fn adopt(&mut self, planned: Planned) {
        self.tree = planned.tree;
        self.signature = planned.signature;
        if let Some(deps) = planned.deps {
            self.deps = deps;
        }
        if self.atom.is_some() {
            if let Some((start, length, dropped)) = planned.range {
                self.note_pending(start, length, dropped);
            }
        }
    }

    /// hypercore's `_updateBitfield` for atomic states: what the parent must replay.
    fn note_pending(&mut self, start: u64, length: u64, dropped: bool) {
        let p = self.pending;
        if dropped {
            match p {
                Some(mut p) if start >= p.start => {
                    p.appends = start - p.start;
                    self.pending = (p.appends > 0 || p.truncated).then_some(p);
                }
                _ => {
                    self.pending = Some(PendingRange {
                        truncated: true,
                        start,
                        appends: 0,
                    })
                }
            }
            return;
        }
        match p {
            None => {
                self.pending = Some(PendingRange {
                    truncated: false,
                    start,
                    appends: length,
                })
            }
            Some(mut p) => {
                p.appends = (start + length).saturating_sub(p.start);
                self.pending = Some(p);
            }
        }
    }
}

/// What committing a named session into the default state writes and leaves.
pub struct PlannedCommit {
    pub batch: Batch,
    pub tree: MerkleTree,
    pub signature: Option<Vec<u8>>,
    pub source_deps: Option<Vec<Dependency>>,
    pub tree_length: u64,
}

/// The state a commit lands in: the core's default state, or an atomic state of it.
pub struct CommitTarget<'a> {
    pub tree: &'a MerkleTree,
    pub signature: Option<&'a [u8]>,
    pub data_pointer: u64,
    pub signer: Option<(&'a Manifest, &'a KeyPair)>,
    pub manifest: Option<&'a Manifest>,
    /// Reads the target's data (through its atom when it has one).
    pub reader: &'a dyn Reader,
}

/// hypercore's `commit`: copies blocks [tree_length, length) and their tree from `src` into
/// the target, signed, and drops `src`'s own copies of them (its dependency on the default
/// data then reaches `length`). None when the target moved in a way the session does not
/// contain (hypercore resolves to null then).
pub fn plan_commit(
    target: &CommitTarget,
    src: &SessionState,
    reader: &dyn Reader,
    length: u64,
    tree_length: Option<u64>,
    given_signature: Option<Vec<u8>>,
) -> Result<Option<PlannedCommit>> {
    let tree_length = tree_length.unwrap_or_else(|| src.flushed_length());
    let current = target.tree;
    if tree_length > current.length {
        // the core was truncated below where the session branched off: what the session
        // shares is gone from the core's data
        return Err(Error::invalid_operation(format!(
            "Cannot commit: the core was truncated to {} below the session's shared length {tree_length}",
            current.length
        )));
    }
    if current.length > src.tree.length || current.length > length || length > src.tree.length {
        return Ok(None);
    }
    let src_nodes = src.nodes(reader);
    if current.length > tree_length {
        for root in &current.roots {
            match src_nodes.node(root.index)? {
                Some(n) if n.size == root.size && n.hash == root.hash => {}
                _ => return Ok(None),
            }
        }
    }
    let Some(manifest) = target.manifest else {
        return Ok(None);
    };
    let roots = merkle::roots_at(&src_nodes, length)?;
    let tree = MerkleTree {
        byte_length: roots.iter().map(|r| r.size).sum(),
        roots,
        length,
        fork: current.fork,
    };
    let signature = if let Some(sig) = given_signature {
        // a signature made elsewhere (e.g. an Autobase's indexers): it must sign this tree
        let hash = tree.hash();
        let signed = signature::Tree::new(&hash, tree.length, tree.fork).with_roots(&tree.roots);
        if !signature::verify_tree(manifest, &sig, signed) {
            return Err(Error::new(
                "INVALID_SIGNATURE",
                "Signature is not valid over committed tree",
            ));
        }
        Some(sig)
    } else if current.length < length {
        let (m, kp) = target.signer.ok_or_else(|| {
            Error::new(
                "SESSION_NOT_WRITABLE",
                "Cannot commit: this store has no key pair that signs the core",
            )
        })?;
        Some(signature::sign_tree(
            m,
            kp,
            &tree.hash(),
            tree.length,
            tree.fork,
        ))
    } else {
        target.signature.map(|s| s.to_vec())
    };

    let dp = target.data_pointer;
    let mut batch = Batch::new();
    if tree_length < current.length {
        batch.delete_blocks(dp, tree_length, Some(current.length));
    }
    for root in &tree.roots {
        batch.put_tree_node(dp, root);
    }
    let from = tree_length.min(length);
    for index in flat_tree::patch(2 * from, 2 * length) {
        if let Some(n) = src_nodes.node(index)? {
            batch.put_tree_node(dp, &n);
        }
    }
    for i in from..length {
        for index in [2 * i, 2 * i + 1] {
            if let Some(n) = src_nodes.node(index)? {
                batch.put_tree_node(dp, &n);
            }
        }
        let block = src.get(reader, i)?.ok_or_else(|| {
            Error::corruption(format!(
                "block {i} of the session is missing; cannot commit"
            ))
        })?;
        batch.put_block(dp, i, &block);
    }
    store_bitfield_range(target.reader, &mut batch, dp, from, length, true)?;
    store_bitfield_range(target.reader, &mut batch, dp, length, current.length, false)?;
    let upgraded = tree_length < current.length || current.length < length;
    if upgraded {
        batch.put_core_head(dp, &head_record(&tree, signature.as_deref()));
    }

    let mut source_deps = None;
    if from < length {
        batch.delete_blocks(src.data_pointer, from, Some(length));
        if let Some(dep) = find_dependency(&src.deps, length, false) {
            batch.put_dependency(src.data_pointer, &dep);
            source_deps = Some(set_dependency_head(&src.deps, &dep));
        }
    }
    Ok(Some(PlannedCommit {
        batch,
        tree,
        signature,
        source_deps,
        tree_length: from,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(data_pointer: u64, length: u64) -> Dependency {
        Dependency {
            data_pointer,
            length,
        }
    }

    #[test]
    fn dependency_chains_follow_hypercore_storage() {
        // a session of the default data (0) at length 3
        assert_eq!(add_dependency(&[], Some(&dep(0, 3))), vec![dep(0, 3)]);
        // a session of that session (data 1) at length 5
        assert_eq!(
            add_dependency(&[dep(0, 3)], Some(&dep(1, 5))),
            vec![dep(0, 3), dep(1, 5)]
        );
        // ... at length 2: the chain is cut there, and (as hypercore-storage) ends there
        assert_eq!(
            add_dependency(&[dep(0, 3)], Some(&dep(1, 2))),
            vec![dep(0, 2)]
        );
        assert_eq!(
            set_dependency_head(&[dep(0, 3), dep(1, 5)], &dep(0, 1)),
            vec![dep(0, 1)]
        );
        assert_eq!(find_dependency(&[dep(0, 3)], 2, true), Some(dep(0, 2)));
        assert_eq!(find_dependency(&[dep(0, 3)], 5, false), Some(dep(0, 5)));
    }

    #[test]
    fn reads_route_to_the_dependency_that_holds_them() {
        let deps = [dep(0, 3)];
        assert_eq!(block_pointer(&deps, 2, 7), 0);
        assert_eq!(block_pointer(&deps, 3, 7), 7);
        assert_eq!(tree_pointer(&deps, 4, 7), 0); // leaf 2
        assert_eq!(tree_pointer(&deps, 1, 7), 0); // parent of leaves 0, 1
        assert_eq!(tree_pointer(&deps, 5, 7), 7); // parent of leaves 2, 3
        assert_eq!(tree_pointer(&[dep(0, 0)], 0, 7), 7);
    }
}
