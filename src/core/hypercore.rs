//! One hypercore on disk: its identity (key, manifest, key pair), its merkle tree, which
//! blocks are stored (bitfield), and the operations that change it. Every change is built
//! as one write batch and applied atomically; the in-memory state is updated only after
//! the batch is committed, so a failed write leaves both disk and memory as they were.

use crate::core::bitfield::Bitfield;
use crate::core::index_map::IndexMap;
use crate::core::manifest::Manifest;
use crate::core::marks;
use crate::core::merkle::{self, MerkleTree, NodeSource};
use crate::core::node_cache::NodeCache;
use crate::core::signature;
use crate::crypto::{self, KeyPair};
use crate::error::{Error, Result};
use std::cell::RefCell;

mod audit;
pub use audit::AuditStats;

use crate::storage::{
    Auth, Batch, CoreGroup, CoreHead, CoreRecord, CoreRecords, Hints, Storage, TreeNode,
};

/// What JS sees of a core after each operation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CoreState {
    pub length: u64,
    pub contiguous_length: u64,
    pub byte_length: u64,
    pub fork: u64,
    pub signed_length: u64,
    /// hypercore's hints.remoteContiguousLength: the longest prefix a peer on our fork said
    /// it holds in full (persisted with the hints, kept below our length on truncation).
    pub remote_contiguous_length: u64,
}

/// Who signs a local append or truncate: the core's own key pair unless a session gives
/// another (`key_pair`), or a signature made elsewhere (`signature`, checked first).
#[derive(Debug, Default, Clone)]
pub struct SignWith {
    pub key_pair: Option<KeyPair>,
    pub signature: Option<Vec<u8>>,
}

pub struct Hypercore {
    pub key: [u8; 32],
    pub discovery_key: [u8; 32],
    pub manifest: Option<Manifest>,
    /// The signer's key pair; `secret_key` is None for cores this store cannot write.
    pub public_key: Option<[u8; 32]>,
    pub secret_key: Option<KeyPair>,
    pub core_pointer: u64,
    pub data_pointer: u64,
    tree: MerkleTree,
    signature: Option<Vec<u8>>,
    bitfield: Bitfield,
    contiguous_length: u64,
    remote_contiguous_length: u64,
    /// What replication verified but has not written yet (see `flush_pending`).
    pending: Option<Pending>,
    /// Kept exact by every method here that writes or deletes tree nodes.
    node_cache: RefCell<NodeCache>,
    /// The group (CORE/GROUP) whose index lists this core by head timestamp.
    pub group: Option<CoreGroup>,
    /// The stored head's timestamp: its GROUP entry is keyed by it.
    pub head_timestamp: u64,
}

/// Verified data gathered across the proofs of one replication call and written as one
/// batch at its end: a bitfield page, the hints and the head are then written once per
/// call instead of once per block. Memory already reflects it; reads look here first.
#[derive(Default)]
struct Pending {
    nodes: IndexMap<TreeNode>,
    blocks: IndexMap<Vec<u8>>,
    pages: std::collections::BTreeSet<u64>,
    hints: bool,
    head: bool,
}

struct StoredNodes<'a> {
    storage: &'a Storage,
    data_pointer: u64,
    pending: Option<&'a IndexMap<TreeNode>>,
    cache: &'a RefCell<NodeCache>,
}

impl NodeSource for StoredNodes<'_> {
    fn node(&self, index: u64) -> Result<Option<TreeNode>> {
        if let Some(node) = self.pending.and_then(|p| p.get(&index)) {
            return Ok(Some(node.clone()));
        }
        if let Some(entry) = self.cache.borrow_mut().get(index) {
            return Ok(entry);
        }
        // Proofs walk the tree near where the last one did: read the neighbourhood in one
        // scan, which costs about as much as two point reads.
        let start = index - index % NODE_READ_SPAN;
        let end = start.saturating_add(NODE_READ_SPAN);
        let nodes = self
            .storage
            .tree_nodes(self.data_pointer, start, Some(end))?;
        Ok(self.cache.borrow_mut().fill(start, end, nodes, index))
    }
}

/// Flat-tree indexes read per cache miss: the nodes of 16 consecutive blocks.
const NODE_READ_SPAN: u64 = 32;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Hypercore {
    /// A core that was just created (nothing appended yet). `checked` is a key pair the
    /// caller already knows to be valid (derived from a name, or validated): when the auth
    /// record holds exactly it, its secret key is not derived a second time.
    pub fn new_empty(
        record: &CoreRecord,
        auth: &Auth,
        manifest: Option<Manifest>,
        checked: Option<&KeyPair>,
    ) -> Self {
        let (public_key, secret_key) = key_pair_from_auth(auth, checked);
        Hypercore {
            key: auth.key,
            discovery_key: auth.discovery_key,
            manifest,
            public_key,
            secret_key,
            core_pointer: record.core_pointer,
            data_pointer: record.data_pointer,
            tree: MerkleTree::default(),
            signature: None,
            bitfield: Bitfield::default(),
            contiguous_length: 0,
            remote_contiguous_length: 0,
            pending: None,
            node_cache: RefCell::default(),
            group: None,
            head_timestamp: 0,
        }
    }

    /// Opens a stored core and checks its head: the stored roots must hash to the signed
    /// root hash, and the signature must verify against the manifest.
    pub fn load(storage: &Storage, record: &CoreRecord, checked: Option<&KeyPair>) -> Result<Self> {
        let auth = storage.auth(record.core_pointer)?.ok_or_else(|| {
            Error::corruption("a core record has no auth record; the store is damaged")
        })?;
        let manifest = match &auth.manifest {
            Some(bytes) => Some(Manifest::decode_storage(bytes)?),
            None => None,
        };
        let mut core = Hypercore::new_empty(record, &auth, manifest, checked);
        if let Some(head) = storage.core_head(record.data_pointer)? {
            let nodes = core.node_source(storage);
            let tree = MerkleTree::load(&nodes, head.length, head.fork)?;
            if head.length > 0 && tree.hash() != head.root_hash {
                return Err(Error::corruption(
                    "the stored tree does not match the core's signed head",
                ));
            }
            if let (Some(manifest), Some(sig)) = (&core.manifest, &head.signature) {
                let signed = signature::Tree::new(&head.root_hash, head.length, head.fork);
                // the roots hash to the head's root (checked above) once there are any
                let signed = if head.length > 0 {
                    signed.with_roots(&tree.roots)
                } else {
                    signed
                };
                if !signature::verify_core_tree(&core.key, manifest, sig, signed) {
                    return Err(Error::new(
                        "INVALID_SIGNATURE",
                        "the stored head's signature does not verify",
                    ));
                }
            }
            core.tree = tree;
            core.signature = head.signature;
            core.head_timestamp = head.timestamp.unwrap_or(0);
        }
        core.group = storage
            .core_group(record.core_pointer)?
            .filter(|g| g.key.is_some());
        core.bitfield = Bitfield::from_pages(storage.bitfield_pages(record.data_pointer)?);
        core.contiguous_length = core.bitfield.first_unset(0, core.tree.length);
        if let Some(hints) = storage.hints(record.data_pointer)? {
            core.remote_contiguous_length = hints.remote_contiguous_length.unwrap_or(0);
        }
        Ok(core)
    }

    pub fn state(&self) -> CoreState {
        CoreState {
            length: self.tree.length,
            contiguous_length: self.contiguous_length,
            byte_length: self.tree.byte_length,
            fork: self.tree.fork,
            // hypercore's default state counts its whole tree as signed, signature or not
            // (a tree taken from the manifest's prologue has none)
            signed_length: self.tree.length,
            remote_contiguous_length: self.remote_contiguous_length.min(self.tree.length),
        }
    }

    pub fn writable(&self) -> bool {
        let compat_first = self.manifest.is_none()
            && self
                .secret_key
                .as_ref()
                .is_some_and(|k| k.public_key == self.key);
        compat_first || self.signing_key().is_some()
    }

    /// The key pair that can sign this core's tree: a single-signer manifest whose signer
    /// is the key pair we hold.
    pub fn signing_key(&self) -> Option<(&Manifest, &KeyPair)> {
        let manifest = self.manifest.as_ref()?;
        let kp = self.secret_key.as_ref()?;
        let signs = manifest.quorum <= 1
            && manifest.signers.len() == 1
            && manifest.signers[0].public_key == kp.public_key;
        signs.then_some((manifest, kp))
    }

    /// The key pair and manifest that sign the next head as `with` says. A core stored
    /// without a manifest whose key is the signer's public key (hypercore's compat core)
    /// gets the default single-signer manifest, as hypercore's `_setManifest` gives it.
    fn signer(&self, with: &SignWith) -> Result<(Option<KeyPair>, Manifest, bool)> {
        let not_writable = || Error::new("SESSION_NOT_WRITABLE", "This Hypercore is not writable");
        let kp = with.key_pair.clone().or_else(|| self.secret_key.clone());
        if kp.is_none() && with.signature.is_none() {
            return Err(not_writable());
        }
        match (&self.manifest, &kp) {
            (Some(m), _) => Ok((kp, m.clone(), false)),
            (None, Some(k)) if k.public_key == self.key => {
                Ok((kp, Manifest::single_signer(&self.key, 1), true))
            }
            _ => Err(not_writable()),
        }
    }

    /// The signature of `tree`: the caller's (checked first) or one made with the signer's
    /// key pair. A manifest the core gets on this write goes into `batch` and is returned.
    fn sign_head(
        &self,
        storage: &Storage,
        with: &SignWith,
        tree: &MerkleTree,
        batch: &mut Batch,
    ) -> Result<(Vec<u8>, Option<Manifest>)> {
        let (kp, manifest, adopt) = self.signer(with)?;
        let (hash, length, fork) = (tree.hash(), tree.length, tree.fork);
        let sig = match (&with.signature, &kp) {
            (Some(sig), _) => {
                let signed = signature::Tree::new(&hash, length, fork).with_roots(&tree.roots);
                if !signature::verify_core_tree(&self.key, &manifest, sig, signed) {
                    return Err(Error::new(
                        "INVALID_SIGNATURE",
                        "Proof contains an invalid signature",
                    ));
                }
                sig.clone()
            }
            (None, Some(kp)) => {
                signature::sign_core_tree(&self.key, &manifest, kp, &hash, length, fork)
                    .ok_or_else(|| Error::bad_argument("Public key is not a declared signer"))?
            }
            (None, None) => {
                return Err(Error::new(
                    "SESSION_NOT_WRITABLE",
                    "This Hypercore is not writable",
                ))
            }
        };
        if !adopt {
            return Ok((sig, None));
        }
        batch.put_auth(self.core_pointer, &self.auth_with(storage, &manifest)?);
        Ok((sig, Some(manifest)))
    }

    /// Use a key pair the caller supplied (by name or keyPair) for a stored core whose
    /// auth record has no secret key.
    pub fn adopt_key_pair(&mut self, kp: KeyPair) {
        if self.secret_key.is_none() && self.public_key.is_none_or(|p| p == kp.public_key) {
            self.public_key = Some(kp.public_key);
            self.secret_key = Some(kp);
        }
    }

    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    pub fn contiguous_length(&self) -> u64 {
        self.contiguous_length
    }

    pub fn remote_contiguous_length(&self) -> u64 {
        self.remote_contiguous_length
    }

    /// Takes a tree that was written to this core's data by someone else (a commit of a
    /// named session, an atom's flush): the bitfield and the cached nodes are read again.
    pub fn adopt_written(
        &mut self,
        storage: &Storage,
        tree: MerkleTree,
        signature: Option<Vec<u8>>,
    ) -> Result<()> {
        self.flush_pending(storage)?;
        self.node_cache.borrow_mut().clear();
        self.bitfield = Bitfield::from_pages(storage.bitfield_pages(self.data_pointer)?);
        self.tree = tree;
        self.signature = signature;
        self.contiguous_length = self.bitfield.first_unset(0, self.tree.length);
        Ok(())
    }

    pub fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }

    pub fn has_block(&self, index: u64) -> bool {
        index < self.tree.length && self.bitfield.get(index)
    }

    /// The stored tree nodes, for proofs.
    pub fn nodes<'a>(&'a self, storage: &'a Storage) -> impl NodeSource + 'a {
        self.node_source(storage)
    }

    fn node_source<'a>(&'a self, storage: &'a Storage) -> StoredNodes<'a> {
        StoredNodes {
            storage,
            data_pointer: self.data_pointer,
            pending: self.pending.as_ref().map(|p| &p.nodes),
            cache: &self.node_cache,
        }
    }

    /// Returns the head's timestamp, which the caller keeps once the batch is written.
    fn put_head(&self, batch: &mut Batch, tree: &MerkleTree, signature: &[u8]) -> u64 {
        let timestamp = now_ms();
        batch.put_core_head(
            self.data_pointer,
            &CoreHead {
                fork: tree.fork,
                length: tree.length,
                root_hash: tree.hash(),
                signature: Some(signature.to_vec()),
                timestamp: Some(timestamp),
            },
        );
        // as hypercore: a grouped core's index entry moves to the new head's timestamp
        if let Some(group) = &self.group {
            batch.delete_group_entry(group.pointer, self.head_timestamp, self.core_pointer);
            batch.put_group_entry(group.pointer, timestamp, self.core_pointer, &self.key);
        }
        timestamp
    }

    fn put_hints(&self, batch: &mut Batch, contiguous_length: u64) {
        batch.put_hints(
            self.data_pointer,
            &Hints {
                contiguous_length: Some(contiguous_length),
                remote_contiguous_length: Some(self.remote_contiguous_length),
                recovering: None,
            },
        );
    }

    fn put_bitfield_pages(&self, batch: &mut Batch, bitfield: &Bitfield, pages: &[u64]) {
        for &page in pages {
            match bitfield.page(page) {
                Some(bytes) => batch.put_bitfield_page(self.data_pointer, page, bytes),
                None => batch.delete_bitfield_page(self.data_pointer, page),
            }
        }
    }

    pub fn append(&mut self, storage: &Storage, blocks: &[&[u8]]) -> Result<CoreState> {
        self.append_as(storage, blocks, &SignWith::default())
    }

    /// `append`, signed as `with` says (a session's key pair, or a caller's signature).
    pub fn append_as(
        &mut self,
        storage: &Storage,
        blocks: &[&[u8]],
        with: &SignWith,
    ) -> Result<CoreState> {
        self.flush_pending(storage)?;
        self.signer(with)?;
        if blocks.is_empty() {
            return Ok(self.state());
        }
        let appended = self.tree.append(blocks.iter().copied());
        let tree = appended.tree;
        let mut batch = Batch::new();
        let (sig, adopted) = self.sign_head(storage, with, &tree, &mut batch)?;

        let start = self.tree.length;
        let mut bitfield = self.bitfield.clone_pages_for(start, tree.length);
        let pages = bitfield.set_range(start, tree.length, true);
        self.put_bitfield_pages(&mut batch, &bitfield, &pages);
        let contiguous = if self.contiguous_length == start {
            let c = bitfield.first_unset(start, tree.length);
            self.put_hints(&mut batch, c);
            c
        } else {
            self.contiguous_length
        };
        let timestamp = self.put_head(&mut batch, &tree, &sig);
        let indexed: Vec<(u64, &[u8])> = (start..).zip(blocks.iter().copied()).collect();
        let nodes: Vec<&TreeNode> = appended.nodes.iter().collect();
        let records = CoreRecords {
            data_pointer: self.data_pointer,
            blocks: &indexed,
            nodes: &nodes,
        };
        storage.write_with(batch, &records)?;
        self.head_timestamp = timestamp;

        let mut cache = self.node_cache.borrow_mut();
        for node in appended.nodes {
            cache.insert(node.index, Some(node));
        }
        drop(cache);
        self.bitfield.merge_pages(bitfield);
        self.tree = tree;
        self.signature = Some(sig);
        self.contiguous_length = contiguous;
        if adopted.is_some() {
            self.manifest = adopted;
        }
        Ok(self.state())
    }

    pub fn get(&self, storage: &Storage, index: u64) -> Result<Option<Vec<u8>>> {
        if index >= self.tree.length || !self.bitfield.get(index) {
            return Ok(None);
        }
        if let Some(block) = self.pending.as_ref().and_then(|p| p.blocks.get(&index)) {
            return Ok(Some(block.clone()));
        }
        Ok(storage.block(self.data_pointer, index)?)
    }

    pub fn has(&self, start: u64, end: u64) -> bool {
        end <= self.tree.length && self.bitfield.first_unset(start, end) >= end
    }

    /// The first block of [start, end) that is not here (`end` when all are).
    pub fn first_missing(&self, start: u64, end: u64) -> u64 {
        let held = end.min(self.tree.length);
        if start >= held {
            return start.min(end);
        }
        self.bitfield.first_unset(start, held)
    }

    pub fn seek(&self, storage: &Storage, bytes: u64, padding: u64) -> Result<Option<(u64, u64)>> {
        if self.contiguous_length < self.tree.length {
            // a sparse replica waits for a peer's seek proof where it lacks nodes
            return match self.seek_local(storage, bytes, padding)? {
                merkle::Seek::Found(index, offset) => Ok(Some((index, offset))),
                _ => Ok(None),
            };
        }
        self.tree.seek(&self.node_source(storage), bytes, padding)
    }

    pub fn seek_local(&self, storage: &Storage, bytes: u64, padding: u64) -> Result<merkle::Seek> {
        self.tree
            .seek_local(&self.node_source(storage), bytes, padding)
    }

    pub fn tree_hash(&self, storage: &Storage, length: u64) -> Result<[u8; 32]> {
        if length == self.tree.length {
            return Ok(self.tree.hash());
        }
        if length > self.tree.length {
            return Err(Error::bad_argument(format!(
                "Cannot get the tree hash at length {length}: the core has {} blocks",
                self.tree.length
            )));
        }
        Ok(merkle::hash_roots(&merkle::roots_at(
            &self.nodes(storage),
            length,
        )?))
    }

    pub fn truncate(&mut self, storage: &Storage, length: u64, fork: u64) -> Result<CoreState> {
        self.truncate_as(storage, length, fork, &SignWith::default())
    }

    /// `truncate`, signed as `with` says.
    pub fn truncate_as(
        &mut self,
        storage: &Storage,
        length: u64,
        fork: u64,
        with: &SignWith,
    ) -> Result<CoreState> {
        self.flush_pending(storage)?;
        self.signer(with)?;
        let old = self.tree.length;
        if length > old {
            return Err(Error::bad_argument(format!(
                "Cannot truncate to {length}: the core has only {old} blocks"
            )));
        }
        let tree = MerkleTree::load(&self.node_source(storage), length, fork)?;
        let mut batch = Batch::new();
        let (sig, adopted) = self.sign_head(storage, with, &tree, &mut batch)?;
        batch.delete_blocks(self.data_pointer, length, Some(old));
        batch.delete_tree_nodes(self.data_pointer, 2 * length, Some(2 * old));
        for index in merkle::stale_ancestors(length) {
            batch.delete_tree_nodes(self.data_pointer, index, Some(index + 1));
        }
        let mut bitfield = self.bitfield.clone_pages_for(length, old);
        let pages = bitfield.set_range(length, old, false);
        self.put_bitfield_pages(&mut batch, &bitfield, &pages);
        let contiguous = self.contiguous_length.min(length);
        if contiguous != self.contiguous_length {
            self.remote_contiguous_length = self.remote_contiguous_length.min(length);
            self.put_hints(&mut batch, contiguous);
        }
        let timestamp = self.put_head(&mut batch, &tree, &sig);
        self.node_cache.borrow_mut().clear();
        storage.write(batch)?;
        self.head_timestamp = timestamp;

        self.bitfield.merge_pages(bitfield);
        self.tree = tree;
        self.signature = Some(sig);
        self.contiguous_length = contiguous;
        if adopted.is_some() {
            self.manifest = adopted;
        }
        Ok(self.state())
    }

    /// Drops the local copies of blocks [start, end); the tree and head stay.
    pub fn clear(&mut self, storage: &Storage, start: u64, end: u64) -> Result<CoreState> {
        self.flush_pending(storage)?;
        let end = end.min(self.tree.length);
        if start >= end {
            return Ok(self.state());
        }
        let mut batch = Batch::new();
        batch.delete_blocks(self.data_pointer, start, Some(end));
        let mut bitfield = self.bitfield.clone_pages_for(start, end);
        let pages = bitfield.set_range(start, end, false);
        self.put_bitfield_pages(&mut batch, &bitfield, &pages);
        let contiguous = self.contiguous_length.min(start);
        if contiguous != self.contiguous_length {
            self.put_hints(&mut batch, contiguous);
        }
        storage.write(batch)?;
        self.bitfield.merge_pages(bitfield);
        self.contiguous_length = contiguous;
        Ok(self.state())
    }

    /// Marks blocks `[start, end)` as in use (`markBlock`), in one batch.
    pub fn mark(&self, storage: &Storage, start: u64, end: u64) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        // one batch of at most 4096 pages (16 MB) per call
        if end - start > 4096 * marks::BITS_PER_PAGE {
            return Err(Error::bad_argument(
                "markBlock covers at most 134217728 blocks per call; mark in smaller ranges",
            ));
        }
        let mut batch = Batch::new();
        for page in start / marks::BITS_PER_PAGE..=(end - 1) / marks::BITS_PER_PAGE {
            let mut bytes = storage.mark(self.data_pointer, page)?.unwrap_or_default();
            marks::set(&mut bytes, page, start, end);
            batch.put_mark(self.data_pointer, page, &bytes);
        }
        Ok(storage.write(batch)?)
    }

    pub fn clear_marks(&self, storage: &Storage) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete_marks(self.data_pointer, 0, None);
        Ok(storage.write(batch)?)
    }

    /// Drops every block no mark covers and the marks, in one batch (hypercore's `sweep`
    /// clears range by range and then the marks).
    /// Clears every block no mark covers, then the marks, in one write: the state, and the
    /// ranges cleared (peers are told of them).
    pub fn sweep(&mut self, storage: &Storage) -> Result<(CoreState, Vec<(u64, u64)>)> {
        self.flush_pending(storage)?;
        let length = self.tree.length;
        let ranges = marks::unmarked(&storage.marks(self.data_pointer)?, length);
        let mut batch = Batch::new();
        let mut bitfield = self.bitfield.clone_pages_for(0, length);
        let mut pages = std::collections::BTreeSet::new();
        for &(start, end) in &ranges {
            batch.delete_blocks(self.data_pointer, start, Some(end));
            pages.extend(bitfield.set_range(start, end, false));
        }
        let pages: Vec<u64> = pages.into_iter().collect();
        self.put_bitfield_pages(&mut batch, &bitfield, &pages);
        let contiguous = ranges
            .first()
            .map_or(self.contiguous_length, |&(start, _)| {
                self.contiguous_length.min(start)
            });
        if contiguous != self.contiguous_length {
            self.put_hints(&mut batch, contiguous);
        }
        batch.delete_marks(self.data_pointer, 0, None);
        storage.write(batch)?;
        self.bitfield.merge_pages(bitfield);
        self.contiguous_length = contiguous;
        Ok((self.state(), ranges))
    }

    pub fn user_data(&self, storage: &Storage, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(storage.user_data(self.data_pointer, key)?)
    }

    pub fn set_user_data(&self, storage: &Storage, key: &str, value: Option<&[u8]>) -> Result<()> {
        let mut batch = Batch::new();
        match value {
            Some(v) => batch.put_user_data(self.data_pointer, key, v),
            None => batch.delete_user_data(self.data_pointer, key),
        }
        Ok(storage.write(batch)?)
    }
}

/// What applying a verified proof changed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    /// The core grew (an upgrade was applied): the new length.
    pub upgraded_to: Option<u64>,
    /// A block that was not stored before and now is.
    pub block: Option<u64>,
}

impl Hypercore {
    /// This core's auth record with `manifest`; the rest as stored (an encryption key too).
    fn auth_with(&self, storage: &Storage, manifest: &Manifest) -> Result<Auth> {
        if let Some(mut auth) = storage.auth(self.core_pointer)? {
            auth.manifest = Some(manifest.encode_storage());
            return Ok(auth);
        }
        Ok(Auth {
            key: self.key,
            discovery_key: self.discovery_key,
            manifest: Some(manifest.encode_storage()),
            key_pair: self.public_key.map(|pk| crate::storage::AuthKeyPair {
                public_key: pk.to_vec(),
                secret_key: self.secret_key.as_ref().map(|kp| kp.secret_key.to_vec()),
            }),
            encryption_key: None,
        })
    }

    /// Stores a manifest learned from a peer (after checking it hashes to the key).
    pub fn adopt_manifest(&mut self, storage: &Storage, manifest: Manifest) -> Result<()> {
        if self.manifest.is_some() {
            return Ok(());
        }
        if manifest.hash() != self.key {
            return Err(Error::new(
                "INVALID_PROOF",
                "The peer sent a manifest that does not hash to the core's key",
            ));
        }
        let mut batch = Batch::new();
        batch.put_auth(self.core_pointer, &self.auth_with(storage, &manifest)?);
        storage.write(batch)?;
        self.manifest = Some(manifest);
        Ok(())
    }

    /// Takes in what a verified proof proved: its nodes, its block, and the new signed head
    /// when it upgrades the tree. Memory is updated now; the disk with `flush_pending`, which
    /// the replicator calls at the end of every call, so one call's proofs are one batch.
    pub fn apply_verified(&mut self, verified: crate::core::proof::Verified) -> Applied {
        let mut applied = Applied::default();
        let pending = self.pending.get_or_insert_with(Pending::default);
        for node in verified.nodes {
            pending.nodes.insert(node.index, node);
        }
        if let (Some(tree), Some(sig)) = (verified.tree, verified.signature) {
            if tree.fork == self.tree.fork && tree.length > self.tree.length {
                applied.upgraded_to = Some(tree.length);
                self.tree = tree;
                self.signature = Some(sig);
                pending.head = true;
            }
        }
        if let Some((index, value)) = verified.block {
            if index < self.tree.length && !self.bitfield.get(index) {
                self.bitfield.set_range(index, index + 1, true);
                pending
                    .pages
                    .insert(index / crate::core::bitfield::PAGE_BITS);
                pending.blocks.insert(index, value);
                if index == self.contiguous_length {
                    // Walk on through blocks already held past this one.
                    self.contiguous_length = self.bitfield.first_unset(index, self.tree.length);
                    pending.hints = true;
                }
                applied.block = Some(index);
            }
        }
        applied
    }

    /// Writes what `apply_verified` gathered, as one batch. On failure the core must be
    /// reloaded from disk (its memory is ahead of it): the store does that.
    pub fn flush_pending(&mut self, storage: &Storage) -> Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let mut batch = Batch::new();
        // In key order: RocksDB's memtable inserts a run of ascending keys next to each
        // other instead of searching its skip list from the top for each (that search was
        // a sixth of a replicating reader's time).
        let mut blocks: Vec<(u64, Vec<u8>)> = pending.blocks.into_iter().collect();
        blocks.sort_unstable_by_key(|(index, _)| *index);
        let mut nodes: Vec<TreeNode> = pending.nodes.into_values().collect();
        nodes.sort_unstable_by_key(|n| n.index);
        let pages: Vec<u64> = pending.pages.iter().copied().collect();
        self.put_bitfield_pages(&mut batch, &self.bitfield, &pages);
        if pending.hints {
            self.put_hints(&mut batch, self.contiguous_length);
        }
        let mut timestamp = None;
        if pending.head {
            if let Some(sig) = &self.signature {
                timestamp = Some(self.put_head(&mut batch, &self.tree, sig));
            }
        }
        let indexed: Vec<(u64, &[u8])> = blocks.iter().map(|(i, b)| (*i, &b[..])).collect();
        // An earlier batch may have stored a node already (a proof often carries nodes that
        // arrived after it was asked for): it goes in once.
        let fresh: Vec<&TreeNode> = {
            let cache = self.node_cache.borrow();
            nodes.iter().filter(|node| !cache.holds(node)).collect()
        };
        let records = CoreRecords {
            data_pointer: self.data_pointer,
            blocks: &indexed,
            nodes: &fresh,
        };
        storage.write_with(batch, &records)?;
        self.head_timestamp = timestamp.unwrap_or(self.head_timestamp);
        let mut cache = self.node_cache.borrow_mut();
        for node in nodes {
            cache.insert(node.index, Some(node));
        }
        Ok(())
    }

    /// A peer on our fork holds blocks [0, length) (its range message): the hints learn it
    /// with the next replication batch. True when it grew.
    pub fn learn_remote_contiguous_length(&mut self, length: u64) -> bool {
        if length <= self.remote_contiguous_length {
            return false;
        }
        self.remote_contiguous_length = length;
        self.pending.get_or_insert_with(Pending::default).hints = true;
        true
    }

    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

impl Hypercore {
    /// Adopts a peer's newer fork: the blocks and nodes past the common ancestors go, the
    /// new signed tree comes in, all in one batch (what a truncation on the writer becomes
    /// on a reader).
    pub fn apply_reorg(
        &mut self,
        storage: &Storage,
        reorg: crate::core::proof::Reorg,
    ) -> Result<u64> {
        self.flush_pending(storage)?;
        let old = self.tree.length;
        let ancestors = reorg.ancestors.min(old);
        let mut batch = Batch::new();
        // Deletes first: a put later in the same batch wins over them.
        batch.delete_blocks(self.data_pointer, ancestors, Some(old.max(ancestors + 1)));
        batch.delete_tree_nodes(
            self.data_pointer,
            2 * ancestors,
            Some((2 * old).max(2 * ancestors + 1)),
        );
        for index in merkle::stale_ancestors(ancestors) {
            batch.delete_tree_nodes(self.data_pointer, index, Some(index + 1));
        }
        let mut bitfield = self.bitfield.clone_pages_for(ancestors, old);
        let pages = bitfield.set_range(ancestors, old, false);
        self.put_bitfield_pages(&mut batch, &bitfield, &pages);
        for node in &reorg.nodes {
            batch.put_tree_node(self.data_pointer, node);
        }
        let contiguous = self.contiguous_length.min(ancestors);
        if contiguous != self.contiguous_length {
            self.remote_contiguous_length = self.remote_contiguous_length.min(reorg.tree.length);
            self.put_hints(&mut batch, contiguous);
        }
        let timestamp = self.put_head(&mut batch, &reorg.tree, &reorg.signature);
        self.node_cache.borrow_mut().clear();
        storage.write(batch)?;
        self.head_timestamp = timestamp;
        self.bitfield.merge_pages(bitfield);
        self.contiguous_length = contiguous;
        self.tree = reorg.tree;
        self.signature = Some(reorg.signature);
        Ok(ancestors)
    }
}

fn key_pair_from_auth(
    auth: &Auth,
    checked: Option<&KeyPair>,
) -> (Option<[u8; 32]>, Option<KeyPair>) {
    let Some(kp) = &auth.key_pair else {
        return (None, None);
    };
    let Ok(public_key) = <[u8; 32]>::try_from(kp.public_key.as_slice()) else {
        return (None, None);
    };
    let secret = kp.secret_key.as_deref().and_then(|sk| {
        let secret_key = <[u8; 64]>::try_from(sk).ok()?;
        // a secret key is checked by deriving its public key: one base-point
        // multiplication, most of the cost of opening a named core
        let known =
            checked.is_some_and(|c| c.public_key == public_key && c.secret_key == secret_key);
        (known || crypto::valid_secret_key(&public_key, &secret_key)).then_some(KeyPair {
            public_key,
            secret_key,
        })
    });
    (Some(public_key), secret)
}

#[cfg(test)]
mod tests {
    use crate::core::merkle::NodeSource;
    use crate::storage::TreeNode;
    use crate::store::{OpenRequest, Store};
    use std::path::PathBuf;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "cs-hypercore-{}-{}",
            std::process::id(),
            super::now_ms()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Everything a reader of the tree sees: the tree hash and a seek at every length, and
    /// each of the first 80 node indexes, stored or not.
    type TreeView = (Vec<([u8; 32], Option<(u64, u64)>)>, Vec<Option<TreeNode>>);

    fn tree_view(store: &mut Store, handle: u32) -> TreeView {
        let (core, storage) = store.core_mut(handle).expect("open core");
        let length = core.state().length;
        let roots = (1..=length)
            .map(|l| {
                let hash = core.tree_hash(storage, l).expect("tree hash");
                (hash, core.seek(storage, 3 * l, 0).expect("seek"))
            })
            .collect();
        let nodes = core.nodes(storage);
        let nodes = (0..80).map(|i| nodes.node(i).expect("node")).collect();
        (roots, nodes)
    }

    fn open(store: &mut Store) -> u32 {
        store
            .open_core(OpenRequest {
                name: Some("cached".into()),
                create_if_missing: true,
                ..Default::default()
            })
            .expect("open core")
    }

    /// The node cache must forget what a truncation deletes: nodes read before it (and
    /// indexes read as absent) would otherwise answer for the tree that replaced them.
    #[test]
    fn node_cache_follows_truncate_and_append() {
        let dir = tmp();
        let expected = {
            let mut store = Store::open(&dir, None, false).expect("open store");
            let handle = open(&mut store);
            let (core, storage) = store.core_mut(handle).expect("core");
            let old: Vec<Vec<u8>> = (0..40).map(|i| format!("old-{i}").into_bytes()).collect();
            let refs: Vec<&[u8]> = old.iter().map(|b| b.as_slice()).collect();
            core.append(storage, &refs).expect("append");
            let before = tree_view(&mut store, handle);
            assert_eq!(before.0.len(), 40);
            assert!(before.1[..63].iter().all(|n| n.is_some()));

            let (core, storage) = store.core_mut(handle).expect("core");
            core.truncate(storage, 10, 1).expect("truncate");
            let new: Vec<Vec<u8>> = (0..5).map(|i| format!("new-{i}!").into_bytes()).collect();
            let refs: Vec<&[u8]> = new.iter().map(|b| b.as_slice()).collect();
            core.append(storage, &refs).expect("append");
            let after = tree_view(&mut store, handle);
            assert_eq!(after.0[..10], before.0[..10]);
            assert_ne!(after.0[10..], before.0[10..15]);
            assert!(after.1[30..].iter().all(|n| n.is_none()));
            after
        };
        // a reopened store starts with an empty cache: it reads only what is on disk
        let mut store = Store::open(&dir, None, false).expect("reopen store");
        let handle = open(&mut store);
        assert_eq!(tree_view(&mut store, handle), expected);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A download's completion: the first block not held, past cleared ones and the length.
    #[test]
    fn first_missing_skips_held_blocks_and_stops_at_the_length() {
        let dir = tmp();
        let mut store = Store::open(&dir, None, false).expect("open store");
        let handle = open(&mut store);
        let (core, storage) = store.core_mut(handle).expect("core");
        let blocks: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; 3]).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(|b| b.as_slice()).collect();
        core.append(storage, &refs).expect("append");
        core.clear(storage, 5, 7).expect("clear");
        assert_eq!(core.first_missing(0, 20), 5);
        assert_eq!(core.first_missing(5, 20), 5);
        assert_eq!(core.first_missing(7, 20), 20);
        assert_eq!(core.first_missing(7, 30), 20); // past the length nothing is held
        assert_eq!(core.first_missing(25, 30), 25);
        assert_eq!(core.first_missing(3, 3), 3);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
