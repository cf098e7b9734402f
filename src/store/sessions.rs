//! The store's named and atomic session states (src/core/session_state.rs) and its atoms.
//! A state lives under a handle of its own, taken from the same counter as core handles;
//! an atom holds the writes of its states until `flush_atom` writes them as one batch.

use crate::core::merkle::{self, MerkleTree};
use crate::core::session_state::{
    add_dependency, plan_commit, set_dependency_head, AtomLink, DefaultView, PendingRange, Planned,
    SessionState,
};
use crate::error::{Error, Result};
use crate::storage::{
    Batch, CoreHead, Dependency, Overlaid, Overlay, Pending, Reader, Session, Sessions,
    SnapshotRead, Storage,
};

use super::{closed_handle, Store};
use std::collections::HashMap;
use std::sync::Arc;

/// What a prologue copy takes from its source (`Store::prologue_source`): the tree nodes
/// below the prologue's length, the blocks held there (index, bytes) and the user data.
#[derive(Default)]
pub struct PrologueCopy {
    pub length: u64,
    pub nodes: Vec<crate::storage::TreeNode>,
    pub blocks: Vec<(u64, Vec<u8>)>,
    pub user_data: Vec<(String, Vec<u8>)>,
}

/// Tree nodes held in memory, as a node source.
struct MemNodes<'a>(&'a HashMap<u64, crate::storage::TreeNode>);

impl merkle::NodeSource for MemNodes<'_> {
    fn node(&self, index: u64) -> Result<Option<crate::storage::TreeNode>> {
        Ok(self.0.get(&index).cloned())
    }
}

pub struct StateEntry {
    /// The handle of the core the state belongs to.
    pub core: u32,
    pub state: SessionState,
    /// A snapshot state reads everything as it was when it was taken; None for others.
    pub snapshot: Option<StateSnapshot>,
}

/// What a snapshot state reads through (hypercore's snapshotted state storage): a RocksDB
/// snapshot, and the pending writes of the atom the state wrote into, as they were.
pub struct StateSnapshot {
    /// The storage snapshot's id (`Storage::snapshot`), released with the state.
    pub storage: u64,
    pub pending: Option<Arc<Pending>>,
}

#[derive(Default)]
pub struct AtomEntry {
    pub(super) overlay: Overlay,
    /// The states writing into this atom, in the order they were made.
    states: Vec<u32>,
}

/// What JS sees of a state after each operation.
#[derive(Debug, Clone, Copy)]
pub struct StateInfo {
    pub length: u64,
    pub byte_length: u64,
    pub fork: u64,
    pub signed_length: u64,
}

/// What an atom's flush changed for one parent state: JS replays it as events.
pub struct Flushed {
    pub core: u32,
    /// The parent state's handle; None for the core's default state.
    pub state: Option<u32>,
    pub old_length: u64,
    pub pending: Option<PendingRange>,
}

/// Reads of a state: straight from RocksDB, or through its atom's writes.
pub(super) enum Via<'a> {
    Db(&'a Storage),
    Atom(Overlaid<'a>),
    Snapshot(SnapshotRead<'a>),
}

impl Reader for Via<'_> {
    fn get(&self, key: &[u8]) -> crate::storage::Result<Option<Vec<u8>>> {
        match self {
            Via::Db(s) => s.get_raw(key),
            Via::Atom(o) => o.get(key),
            Via::Snapshot(r) => r.get(key),
        }
    }
}

/// How a state reads: through its snapshot when it is one, else as `via` says.
pub(super) fn entry_via<'a>(
    storage: &'a Storage,
    atoms: &'a HashMap<u32, AtomEntry>,
    e: &'a StateEntry,
) -> Via<'a> {
    match &e.snapshot {
        Some(snap) => Via::Snapshot(SnapshotRead {
            storage,
            id: snap.storage,
            pending: snap.pending.as_deref(),
        }),
        None => via(storage, atoms, e.state.atom),
    }
}

fn snapshot_refused() -> Error {
    Error::new("ERR_ASSERTION", "Cannot change a snapshot")
}

pub(super) fn via<'a>(
    storage: &'a Storage,
    atoms: &'a HashMap<u32, AtomEntry>,
    link: Option<AtomLink>,
) -> Via<'a> {
    match link.and_then(|l| atoms.get(&l.atom)) {
        Some(a) => Via::Atom(Overlaid {
            overlay: &a.overlay,
            storage,
        }),
        None => Via::Db(storage),
    }
}

/// The state a new one starts from: the core's default state or another session state.
struct ParentView {
    name: Option<String>,
    data_pointer: u64,
    deps: Vec<Dependency>,
    tree: MerkleTree,
    signature: Option<Vec<u8>>,
    atom: Option<AtomLink>,
    state_handle: Option<u32>,
}

impl Store {
    pub fn create_atom(&mut self) -> u32 {
        let id = self.take_handle();
        self.atoms.insert(id, AtomEntry::default());
        id
    }

    fn take_handle(&mut self) -> u32 {
        let h = self.next_handle;
        self.next_handle = self.next_handle.saturating_add(1);
        h
    }

    fn parent_view(&self, parent: u32) -> Result<(u32, ParentView)> {
        if let Some(open) = self.cores.get(&parent) {
            let core = &open.core;
            return Ok((
                parent,
                ParentView {
                    name: None,
                    data_pointer: core.data_pointer,
                    deps: Vec::new(),
                    tree: core.tree().clone(),
                    signature: core.signature().map(|s| s.to_vec()),
                    atom: None,
                    state_handle: None,
                },
            ));
        }
        let e = self.states.get(&parent).ok_or_else(closed_handle)?;
        let s = &e.state;
        Ok((
            e.core,
            ParentView {
                name: s.name.clone(),
                data_pointer: s.data_pointer,
                deps: s.deps.clone(),
                tree: s.tree.clone(),
                signature: s.signature.clone(),
                atom: s.atom,
                state_handle: Some(parent),
            },
        ))
    }

    /// hypercore's `createSession`: an atomic state (`atom`) of `parent`, or the named
    /// session `name` of its core, resumed from disk unless `overwrite` or new.
    pub fn create_state(
        &mut self,
        parent: u32,
        name: Option<String>,
        overwrite: bool,
        atom: Option<u32>,
    ) -> Result<u32> {
        self.create_state_at(parent, name, overwrite, atom, None)
    }

    /// [`Store::create_state`]; a named session made anew (`overwrite`) starts at `at`
    /// blocks of its parent instead of all of them, as hypercore-storage's
    /// `createSession(name, head)` with a shorter head.
    pub fn create_state_at(
        &mut self,
        parent: u32,
        name: Option<String>,
        overwrite: bool,
        atom: Option<u32>,
        at: Option<u64>,
    ) -> Result<u32> {
        let (core_handle, p) = self.parent_view(parent)?;
        let state = match atom {
            Some(atom) => {
                if !self.atoms.contains_key(&atom) {
                    return Err(Error::bad_argument(
                        "Unknown atom: make it with createAtom()",
                    ));
                }
                SessionState {
                    name: p.name,
                    data_pointer: p.data_pointer,
                    deps: p.deps,
                    tree: p.tree,
                    signature: p.signature,
                    atom: Some(AtomLink {
                        atom,
                        parent: p.state_handle,
                    }),
                    pending: None,
                }
            }
            None => {
                let name = name.ok_or_else(|| {
                    Error::bad_argument("A session state needs a name or an atom")
                })?;
                self.named_state(core_handle, p, name, overwrite, at)?
            }
        };
        let handle = self.take_handle();
        if let Some(link) = state.atom {
            if let Some(a) = self.atoms.get_mut(&link.atom) {
                a.states.push(handle);
            }
        }
        self.states.insert(
            handle,
            StateEntry {
                core: core_handle,
                state,
                snapshot: None,
            },
        );
        Ok(handle)
    }

    fn named_state(
        &mut self,
        core_handle: u32,
        p: ParentView,
        name: String,
        overwrite: bool,
        at: Option<u64>,
    ) -> Result<SessionState> {
        let core = &self.cores.get(&core_handle).ok_or_else(closed_handle)?.core;
        let core_pointer = core.core_pointer;
        let mut sessions = self.storage.sessions(core_pointer)?.unwrap_or_default();
        let existing = sessions
            .0
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.data_pointer);

        if let (Some(dp), false) = (existing, overwrite) {
            let dep = self.storage.dependency(dp)?;
            let deps = add_dependency(&p.deps, dep.as_ref());
            let length = self.storage.core_head(dp)?.map_or(0, |h| h.length);
            return self.state_at(name, dp, deps, &p, length);
        }

        let length = match at {
            Some(l) if l > p.tree.length => {
                return Err(Error::bad_argument("Invalid head passed, ahead of core"));
            }
            Some(l) => l,
            None => p.tree.length,
        };
        let mut batch = Batch::new();
        let dp = match existing {
            Some(dp) => {
                batch.delete_blocks(dp, 0, None);
                batch.delete_tree_nodes(dp, 0, None);
                batch.delete_bitfield_pages(dp, 0, None);
                dp
            }
            None => {
                let mut head = self.head.clone();
                let dp = head.datas;
                head.datas += 1;
                batch.put_head(&head);
                sessions.0.push(Session {
                    name: name.clone(),
                    data_pointer: dp,
                });
                batch.put_sessions(core_pointer, &Sessions(sessions.0.clone()));
                dp
            }
        };
        let dep = Dependency {
            data_pointer: p.data_pointer,
            length,
        };
        let deps = add_dependency(&p.deps, Some(&dep));
        if let Some(last) = deps.last() {
            batch.put_dependency(dp, last);
        }
        // the tree at `length`, read through the parent's data before anything is written
        let state = self.state_at(name, dp, deps, &p, length)?;
        if length > 0 {
            batch.put_core_head(
                dp,
                &CoreHead {
                    fork: state.tree.fork,
                    length,
                    root_hash: state.tree.hash(),
                    signature: state.signature.clone(),
                    timestamp: None,
                },
            );
        }
        self.storage.write(batch)?;
        if existing.is_none() {
            self.head.datas = dp + 1;
        }
        Ok(state)
    }

    fn state_at(
        &self,
        name: String,
        data_pointer: u64,
        deps: Vec<Dependency>,
        p: &ParentView,
        length: u64,
    ) -> Result<SessionState> {
        let mut state = SessionState {
            name: Some(name),
            data_pointer,
            deps,
            tree: p.tree.clone(),
            signature: p.signature.clone(),
            atom: None,
            pending: None,
        };
        if length != p.tree.length {
            let reader = via(&self.storage, &self.atoms, p.atom);
            let roots = merkle::roots_at(&state.nodes(&reader), length)?;
            state.tree = MerkleTree {
                byte_length: roots.iter().map(|r| r.size).sum(),
                roots,
                length,
                fork: p.tree.fork,
            };
            state.signature = None;
        }
        Ok(state)
    }

    /// hypercore's `state.snapshot()`: a state that keeps reading `handle`'s tree and
    /// data as they are now (its dependencies, its atom's pending writes) through a
    /// storage snapshot, whatever the state does later (truncate, catchup, moveTo).
    pub fn snapshot_state(&mut self, handle: u32) -> Result<u32> {
        let e = self.state_entry(handle)?;
        if e.snapshot.is_some() {
            return Err(Error::bad_argument(
                "A snapshot state is shared, not snapshotted again",
            ));
        }
        let pending = e
            .state
            .atom
            .and_then(|l| self.atoms.get(&l.atom))
            .map(|a| a.overlay.frozen());
        let mut state = e.state.clone();
        // it writes nowhere: no atom to flush into
        state.atom = None;
        state.pending = None;
        let core = e.core;
        let storage = self.storage.snapshot();
        let snap = self.take_handle();
        self.states.insert(
            snap,
            StateEntry {
                core,
                state,
                snapshot: Some(StateSnapshot { storage, pending }),
            },
        );
        Ok(snap)
    }

    pub fn close_state(&mut self, handle: u32) {
        if let Some(e) = self.states.remove(&handle) {
            if let Some(a) = e.state.atom.and_then(|l| self.atoms.get_mut(&l.atom)) {
                a.states.retain(|&h| h != handle);
            }
            if let Some(snap) = e.snapshot {
                self.storage.release_snapshot(snap.storage);
            }
        }
    }

    pub fn state_entry(&self, handle: u32) -> Result<&StateEntry> {
        self.states.get(&handle).ok_or_else(closed_handle)
    }

    pub fn state_info(&self, handle: u32) -> Result<StateInfo> {
        let e = self.state_entry(handle)?;
        let core_length = self.cores.get(&e.core).map_or(0, |o| o.core.tree().length);
        // a snapshot counts all it holds as flushed (hypercore's flushedLength)
        let flushed = match e.snapshot {
            Some(_) => e.state.tree.length,
            None => e.state.flushed_length(),
        };
        Ok(StateInfo {
            length: e.state.tree.length,
            byte_length: e.state.tree.byte_length,
            fork: e.state.tree.fork,
            signed_length: flushed.min(core_length),
        })
    }

    /// Runs a read of a state with the reader it needs.
    pub fn state_read<T>(
        &self,
        handle: u32,
        f: impl FnOnce(&SessionState, &dyn Reader) -> Result<T>,
    ) -> Result<T> {
        let e = self.state_entry(handle)?;
        let reader = entry_via(&self.storage, &self.atoms, e);
        f(&e.state, &reader)
    }

    /// Plans a change of a state (with its core's key pair and default view when it
    /// stands in for the default state), writes it — to RocksDB, or into its atom — and
    /// lets the state adopt it.
    pub fn state_change(
        &mut self,
        handle: u32,
        sign: bool,
        plan: impl FnOnce(
            &SessionState,
            &dyn Reader,
            Option<(&crate::core::manifest::Manifest, &crate::crypto::KeyPair)>,
            Option<&DefaultView>,
        ) -> Result<Planned>,
    ) -> Result<StateInfo> {
        let e = self.states.get_mut(&handle).ok_or_else(closed_handle)?;
        if e.snapshot.is_some() {
            return Err(snapshot_refused());
        }
        let core = &self.cores.get(&e.core).ok_or_else(closed_handle)?.core;
        let signer = if sign { core.signing_key() } else { None };
        let default = e.state.is_atomic_default().then(|| DefaultView {
            contiguous_length: core.contiguous_length(),
            remote_contiguous_length: core.remote_contiguous_length(),
        });
        let mut planned = {
            let reader = via(&self.storage, &self.atoms, e.state.atom);
            plan(&e.state, &reader, signer, default.as_ref())?
        };
        let batch = std::mem::take(&mut planned.batch);
        match e.state.atom.and_then(|l| self.atoms.get_mut(&l.atom)) {
            Some(a) => a.overlay.apply(batch),
            None => self.storage.write(batch)?,
        }
        e.state.adopt(planned);
        self.state_info(handle)
    }

    /// hypercore's `state.moveTo(session, length)`: the named session continues on another
    /// core (an Autobase fork), as that core's named session of the same name. `target` is
    /// the session's state handle, or its core handle when it works on the default state.
    /// When the target's core has a session of that name (Autobase makes it first, with
    /// `overwrite` and `checkout`, and appends the view's blocks to it), the state resumes
    /// it — through `target`'s dependencies, as hypercore-storage's `resumeSession` — and
    /// takes its tree at `length`; else it is made there from the target's tree at the
    /// session's length. The session is truncated to `length` first when it is longer.
    /// Returns the state and whether it was truncated.
    pub fn move_state(
        &mut self,
        handle: u32,
        target: u32,
        length: u64,
    ) -> Result<(StateInfo, bool)> {
        let e = self.states.get(&handle).ok_or_else(closed_handle)?;
        if e.snapshot.is_some() {
            return Err(snapshot_refused());
        }
        let Some(name) = e.state.name.clone().filter(|_| e.state.atom.is_none()) else {
            return Err(Error::new("ERR_ASSERTION", "Only named sessions can move"));
        };
        let truncated = length < e.state.tree.length;
        if truncated {
            let fork = e.state.tree.fork;
            self.state_change(handle, false, |s, r, _, _| {
                s.plan_truncate(r, length, fork, None, None)
            })?;
        }
        let own_length = self.state_entry(handle)?.state.tree.length;
        let fork = self.state_entry(handle)?.state.tree.fork + u64::from(truncated);
        let (target_core, p) = self.parent_view(target)?;
        let core_pointer = self
            .cores
            .get(&target_core)
            .ok_or_else(closed_handle)?
            .core
            .core_pointer;
        let resumed = self
            .storage
            .sessions(core_pointer)?
            .is_some_and(|s| s.0.iter().any(|s| s.name == name));
        let mut state = if resumed {
            self.named_state(target_core, p, name, false, None)?
        } else {
            // made from the target's tree at the session's length (hypercore's
            // `_getTreeHeadAt(this.length)`), which the target must have
            if own_length > p.tree.length {
                return Err(Error::invalid_operation(format!(
                    "Cannot move a session of length {own_length} onto a core of length {}",
                    p.tree.length
                )));
            }
            let parent = if own_length == p.tree.length {
                p
            } else {
                let reader = via(&self.storage, &self.atoms, p.atom);
                let nodes = crate::core::session_state::StateNodes {
                    reader: &reader,
                    data_pointer: p.data_pointer,
                    deps: &p.deps,
                };
                let roots = merkle::roots_at(&nodes, own_length)?;
                ParentView {
                    tree: MerkleTree {
                        byte_length: roots.iter().map(|r| r.size).sum(),
                        roots,
                        length: own_length,
                        fork: p.tree.fork,
                    },
                    signature: None,
                    ..p
                }
            };
            self.named_state(target_core, parent, name, false, None)?
        };
        // hypercore takes the roots at `length` from the session's storage, always
        let reader = via(&self.storage, &self.atoms, None);
        let roots = merkle::roots_at(&state.nodes(&reader), length)?;
        if state.tree.length != length || state.tree.roots != roots {
            state.signature = None;
        }
        state.tree = MerkleTree {
            byte_length: roots.iter().map(|r| r.size).sum(),
            roots,
            length,
            fork,
        };
        let e = self.states.get_mut(&handle).ok_or_else(closed_handle)?;
        let source_core = std::mem::replace(&mut e.core, target_core);
        let name = e.state.name.clone();
        e.state = state;
        // as hypercore, the snapshots of this name move to the core too (they keep reading
        // what they hold; the core is what they count as signed)
        for e in self.states.values_mut() {
            if e.snapshot.is_some() && e.core == source_core && e.state.name == name {
                e.core = target_core;
            }
        }
        Ok((self.state_info(handle)?, truncated))
    }

    /// hypercore's `moveTo` of a snapshot state onto core `target`: it keeps reading what
    /// it holds and counts the target core as its core from now on, with the other
    /// snapshots of its name on its core.
    pub fn move_snapshot(&mut self, handle: u32, target: u32) -> Result<()> {
        let e = self.states.get(&handle).ok_or_else(closed_handle)?;
        if e.snapshot.is_none() {
            return Err(Error::new("ERR_ASSERTION", "Not a snapshot state"));
        }
        if !self.cores.contains_key(&target) {
            return Err(closed_handle());
        }
        let (source_core, name) = (e.core, e.state.name.clone());
        for e in self.states.values_mut() {
            if e.snapshot.is_some() && e.core == source_core && e.state.name == name {
                e.core = target;
            }
        }
        Ok(())
    }

    /// hypercore's `copyPrologue(src)`: a core whose manifest has a prologue (the tree hash
    /// at a length) takes the blocks the source holds below that length, their tree nodes,
    /// their bitfield bits and the source's user data, checked against the hash, in one
    /// batch; unsigned, as the prologue vouches for them. As hypercore, this also runs when
    /// the core is longer already (a sparse replica of the view fills in what the source
    /// has); only a core without a head takes the prologue's tree as its head. Returns
    /// whether the core's tree changed (it had no head).
    pub fn copy_prologue(&mut self, handle: u32, src: u32) -> Result<bool> {
        let length = self.prologue_length(handle)?;
        match self.prologue_source(src, length)? {
            Some(copy) => self.write_prologue(handle, copy),
            None => Ok(false),
        }
    }

    /// The length of the prologue of core `handle`'s manifest.
    pub fn prologue_length(&self, handle: u32) -> Result<u64> {
        let open = self.cores.get(&handle).ok_or_else(closed_handle)?;
        match open
            .core
            .manifest
            .as_ref()
            .and_then(|m| m.prologue.as_ref())
        {
            Some(prologue) => Ok(prologue.length),
            None => Err(Error::bad_argument("The core's manifest has no prologue")),
        }
    }

    /// What a copy of the first `length` blocks of `src` (a core or state handle) takes
    /// from it: the tree nodes below that length it has, the blocks it holds and its user
    /// data. None when it is shorter (or `length` is 0): there is nothing to copy. Another
    /// store's core gets it through `write_prologue` (a copy across stores).
    pub fn prologue_source(&self, src: u32, length: u64) -> Result<Option<PrologueCopy>> {
        let (src_state, src_core) = match self.states.get(&src) {
            Some(e) => (Some(e.state.clone()), e.core),
            None => (None, src),
        };
        let source = &self.cores.get(&src_core).ok_or_else(closed_handle)?.core;
        let src_length = src_state
            .as_ref()
            .map_or(source.tree().length, |s| s.tree.length);
        if src_length < length || length == 0 {
            return Ok(None);
        }
        let reader = via(
            &self.storage,
            &self.atoms,
            src_state.as_ref().and_then(|s| s.atom),
        );
        let nodes: Box<dyn crate::core::merkle::NodeSource + '_> = match &src_state {
            Some(s) => Box::new(s.nodes(&reader)),
            None => Box::new(source.nodes(&self.storage)),
        };
        // the nodes of the prologue's tree the source has (a superset of hypercore's: it
        // copies the roots and the paths down to the blocks it copies)
        let mut copy = PrologueCopy {
            length,
            ..Default::default()
        };
        let last = 2 * (length - 1);
        for index in 0..=last {
            if crate::core::flat_tree::right_span(index) > last {
                continue;
            }
            if let Some(n) = nodes.node(index)? {
                copy.nodes.push(n);
            }
        }
        for i in 0..length {
            let block = match &src_state {
                Some(s) => s.get(&reader, i)?,
                None => source.get(&self.storage, i)?,
            };
            if let Some(b) = block {
                copy.blocks.push((i, b));
            }
        }
        let src_data = src_state
            .as_ref()
            .map_or(source.data_pointer, |s| s.data_pointer);
        copy.user_data = self.storage.user_data_entries(src_data)?;
        Ok(Some(copy))
    }

    /// Writes a prologue copy into core `handle` (see `copy_prologue`), after checking that
    /// its nodes give the prologue's tree hash.
    pub fn write_prologue(&mut self, handle: u32, copy: PrologueCopy) -> Result<bool> {
        let open = self.cores.get(&handle).ok_or_else(closed_handle)?;
        let Some(prologue) = open.core.manifest.as_ref().and_then(|m| m.prologue.clone()) else {
            return Err(Error::bad_argument("The core's manifest has no prologue"));
        };
        let length = prologue.length;
        if copy.length != length || length == 0 {
            return Err(Error::bad_argument(
                "The copy is not of the core's prologue length",
            ));
        }
        let last = 2 * (length - 1);
        let mut nodes: HashMap<u64, crate::storage::TreeNode> = HashMap::new();
        for n in copy.nodes {
            if crate::core::flat_tree::right_span(n.index) <= last {
                nodes.insert(n.index, n);
            }
        }
        let roots = merkle::roots_at(&MemNodes(&nodes), length)?;
        if merkle::hash_roots(&roots) != prologue.hash {
            return Err(Error::invalid_operation(
                "The source does not match the prologue's tree hash",
            ));
        }
        let dp = open.core.data_pointer;
        let mut batch = Batch::new();
        for n in nodes.values() {
            batch.put_tree_node(dp, n);
        }
        // the blocks, with their bits set in the core's own bitfield pages (which may hold
        // bits past the prologue already)
        let pages = (length - 1) / crate::core::bitfield::PAGE_BITS;
        let mut existing = Vec::new();
        for page in 0..=pages {
            if let Some(bytes) = self.storage.bitfield_page(dp, page)? {
                existing.push((page, bytes));
            }
        }
        let mut bitfield = crate::core::bitfield::Bitfield::from_pages(existing);
        let mut copied = false;
        for (i, b) in &copy.blocks {
            if *i >= length {
                continue;
            }
            batch.put_block(dp, *i, b);
            bitfield.set_range(*i, i + 1, true);
            copied = true;
        }
        if copied {
            for page in 0..=pages {
                if let Some(bytes) = bitfield.page(page) {
                    batch.put_bitfield_page(dp, page, bytes);
                }
            }
        }
        for (key, value) in &copy.user_data {
            batch.put_user_data(dp, key, value);
        }
        let headless = self.storage.core_head(dp)?.is_none();
        let tree = MerkleTree {
            byte_length: roots.iter().map(|r| r.size).sum(),
            roots,
            length,
            fork: 0,
        };
        if headless {
            // hypercore's prologueToTree: fork 0, no signature
            let mut head = crate::core::session_state::head_record(&tree, None);
            head.timestamp = None;
            batch.put_core_head(dp, &head);
        }
        self.storage.write(batch)?;
        let open = self.cores.get_mut(&handle).ok_or_else(closed_handle)?;
        let (tree, signature) = if headless {
            (tree, None)
        } else {
            (
                open.core.tree().clone(),
                open.core.signature().map(|s| s.to_vec()),
            )
        };
        open.core.adopt_written(&self.storage, tree, signature)?;
        Ok(headless)
    }

    /// hypercore's `state.catchup(length)` for a named session or an atomic state of one
    /// (Autobase catches up its views through its atom); returns the state and the length
    /// it shared with the core before. An atomic state's writes go into its atom, and what
    /// it dropped is noted for the parent to replay when the atom flushes.
    pub fn state_catchup(&mut self, handle: u32, length: u64) -> Result<(StateInfo, u64)> {
        let e = self.states.get(&handle).ok_or_else(closed_handle)?;
        if e.snapshot.is_some() {
            return Err(snapshot_refused());
        }
        // hypercore refuses the default state and atomic states of it (`isDefault()`)
        if e.state.name.is_none() || e.state.is_atomic_default() {
            return Err(Error::new("ERR_ASSERTION", "Cannot catchup signed state"));
        }
        let core = &self.cores.get(&e.core).ok_or_else(closed_handle)?.core;
        if length > core.tree().length {
            return Err(Error::invalid_operation(
                "Invalid catchup length, tree nodes not available",
            ));
        }
        let (mut planned, shared) = {
            let nodes = core.nodes(&self.storage);
            e.state.plan_catchup(&nodes, core.data_pointer, length)?
        };
        let batch = std::mem::take(&mut planned.batch);
        let e = self.states.get_mut(&handle).ok_or_else(closed_handle)?;
        match e.state.atom.and_then(|l| self.atoms.get_mut(&l.atom)) {
            Some(a) => a.overlay.apply(batch),
            None => self.storage.write(batch)?,
        }
        e.state.adopt(planned);
        Ok((self.state_info(handle)?, shared))
    }

    /// Where a state's data lives, as hypercore-storage shows it: (core pointer, data
    /// pointer, dependencies).
    pub fn storage_pointers(&self, handle: u32) -> Result<(u64, u64, Vec<Dependency>)> {
        if let Some(open) = self.cores.get(&handle) {
            return Ok((open.core.core_pointer, open.core.data_pointer, Vec::new()));
        }
        let e = self.state_entry(handle)?;
        let core_pointer = self.cores.get(&e.core).map_or(0, |o| o.core.core_pointer);
        Ok((core_pointer, e.state.data_pointer, e.state.deps.clone()))
    }

    /// hypercore's `core.commit(session)`: what the named session `src` added, up to
    /// `length`, becomes the core's signed default state — or, when `target` is an atomic
    /// state of it, goes into that atom. None when the target moved on in a way the session
    /// does not contain.
    pub fn commit(
        &mut self,
        target: u32,
        src: u32,
        length: Option<u64>,
        tree_length: Option<u64>,
        given_signature: Option<Vec<u8>>,
    ) -> Result<Option<StateInfo>> {
        let source = self
            .states
            .get(&src)
            .ok_or_else(|| Error::new("SESSION_CLOSED", "Cannot commit a closed session"))?;
        if source.snapshot.is_some() {
            return Err(snapshot_refused());
        }
        let source_state = source.state.clone();
        let core_handle = if self.cores.contains_key(&target) {
            target
        } else {
            let e = self.state_entry(target)?;
            if !e.state.is_atomic_default() {
                return Err(Error::new(
                    "ERR_ASSERTION",
                    "Can only commit into default state",
                ));
            }
            e.core
        };
        if source.core != core_handle {
            return Err(Error::new("ERR_ASSERTION", "Cannot commit across cores"));
        }
        let open = self.cores.get_mut(&core_handle).ok_or_else(closed_handle)?;
        open.core.flush_pending(&self.storage)?;
        let length = length.unwrap_or(source_state.tree.length);
        let core = &open.core;
        let dst = (target != core_handle)
            .then(|| self.states.get(&target))
            .flatten();
        let planned = {
            let src_reader = via(&self.storage, &self.atoms, source_state.atom);
            let dst_reader = via(&self.storage, &self.atoms, dst.and_then(|d| d.state.atom));
            let (tree, signature) = match dst {
                Some(d) => (&d.state.tree, d.state.signature.as_deref()),
                None => (core.tree(), core.signature()),
            };
            let t = crate::core::session_state::CommitTarget {
                tree,
                signature,
                data_pointer: core.data_pointer,
                signer: core.signing_key(),
                manifest: core.manifest.as_ref(),
                reader: &dst_reader,
            };
            plan_commit(
                &t,
                &source_state,
                &src_reader,
                length,
                tree_length,
                given_signature,
            )?
        };
        let Some(planned) = planned else {
            return Ok(None);
        };
        let atom = dst.and_then(|d| d.state.atom);
        match atom.and_then(|l| self.atoms.get_mut(&l.atom)) {
            Some(a) => a.overlay.apply(planned.batch),
            None => self.storage.write(planned.batch)?,
        }
        if let Some(deps) = planned.source_deps {
            if let Some(e) = self.states.get_mut(&src) {
                e.state.deps = deps;
            }
        }
        if target == core_handle {
            let open = self.cores.get_mut(&core_handle).ok_or_else(closed_handle)?;
            open.core
                .adopt_written(&self.storage, planned.tree, planned.signature)?;
            let st = open.core.state();
            return Ok(Some(StateInfo {
                length: st.length,
                byte_length: st.byte_length,
                fork: st.fork,
                signed_length: st.signed_length,
            }));
        }
        let from = planned.tree_length;
        let added = planned.tree.length - from;
        let e = self.states.get_mut(&target).ok_or_else(closed_handle)?;
        e.state.adopt(Planned {
            batch: Batch::new(),
            tree: planned.tree,
            signature: planned.signature,
            deps: None,
            range: Some((from, added, false)),
        });
        self.state_info(target).map(Some)
    }

    /// Writes everything the atom's states wrote as one batch; each parent then takes its
    /// atomic state's tree (hypercore's `atom.flush()`).
    pub fn flush_atom(&mut self, atom: u32) -> Result<Vec<Flushed>> {
        let a = self
            .atoms
            .get_mut(&atom)
            .ok_or_else(|| Error::bad_argument("Unknown atom"))?;
        let states = a.states.clone();
        // hypercore's `_precommit`: an atomic state flushes into its parent's data only
        // while the parent still writes there (a named parent moved to another core since
        // does not). As hypercore-storage, the atom's writes are dropped then, not written.
        let moved = states.iter().any(|sh| {
            let Some(e) = self.states.get(sh) else {
                return false;
            };
            let Some(link) = e.state.atom else {
                return false;
            };
            let parent_data = match link.parent {
                None => self.cores.get(&e.core).map(|o| o.core.data_pointer),
                Some(ph) => self.states.get(&ph).map(|p| p.state.data_pointer),
            };
            parent_data.is_some_and(|d| d != e.state.data_pointer)
        });
        let a = self
            .atoms
            .get_mut(&atom)
            .ok_or_else(|| Error::bad_argument("Unknown atom"))?;
        let batch = a.overlay.take();
        if moved {
            return Err(Error::new(
                "ERR_ASSERTION",
                "Atomic state must flush to parent",
            ));
        }
        self.storage.write(batch)?;
        let mut out = Vec::new();
        for sh in states {
            let Some(e) = self.states.get_mut(&sh) else {
                continue;
            };
            let Some(link) = e.state.atom else {
                continue;
            };
            let pending = e.state.pending.take();
            let (tree, signature) = (e.state.tree.clone(), e.state.signature.clone());
            match link.parent {
                None => {
                    let Some(open) = self.cores.get_mut(&e.core) else {
                        continue;
                    };
                    let old_length = open.core.tree().length;
                    open.core.adopt_written(&self.storage, tree, signature)?;
                    out.push(Flushed {
                        core: e.core,
                        state: None,
                        old_length,
                        pending,
                    });
                }
                Some(ph) => {
                    let core = e.core;
                    let Some(pe) = self.states.get_mut(&ph) else {
                        continue;
                    };
                    let old_length = pe.state.tree.length;
                    pe.state.tree = tree;
                    pe.state.signature = signature;
                    if let Some(dep) = self.storage.dependency(pe.state.data_pointer)? {
                        pe.state.deps = set_dependency_head(&pe.state.deps, &dep);
                    }
                    out.push(Flushed {
                        core,
                        state: Some(ph),
                        old_length,
                        pending,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Forgets an atom whose sessions are gone (its unflushed writes are dropped, as JS
    /// drops an atom nobody flushes).
    pub fn release_atom(&mut self, atom: u32) {
        if self.atoms.get(&atom).is_some_and(|a| a.states.is_empty()) {
            self.atoms.remove(&atom);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{OpenRequest, Store};

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("cs-states-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn open(store: &mut Store) -> u32 {
        store
            .open_core(OpenRequest {
                name: Some("states".into()),
                create_if_missing: true,
                ..Default::default()
            })
            .expect("open core")
    }

    fn append(store: &mut Store, handle: u32, blocks: &[&[u8]]) {
        let (core, storage) = store.core_mut(handle).expect("core");
        core.append(storage, blocks).expect("append");
    }

    fn state_append(store: &mut Store, state: u32, blocks: &[&[u8]], sign: bool) -> u64 {
        store
            .state_change(state, sign, |s, r, signer, default| {
                s.plan_append(r, blocks, signer, default)
            })
            .expect("state append")
            .length
    }

    #[test]
    fn a_named_session_commits_and_is_resumed_after_reopen() {
        let dir = tmp("named");
        {
            let mut store = Store::open(&dir, None, false).expect("store");
            let h = open(&mut store);
            append(&mut store, h, &[b"a", b"b", b"c"]);
            let s = store
                .create_state(h, Some("batch".into()), false, None)
                .expect("state");
            assert_eq!(state_append(&mut store, s, &[b"de", b"fg"], false), 5);
            assert_eq!(store.core(h).expect("core").state().length, 3);
            let read = |store: &Store, i| store.state_read(s, |st, r| st.get(r, i)).expect("get");
            assert_eq!(read(&store, 1).as_deref(), Some(&b"b"[..])); // from the core's data
            assert_eq!(read(&store, 4).as_deref(), Some(&b"fg"[..])); // from its own
            let info = store
                .commit(h, s, None, None, None)
                .expect("commit")
                .expect("committed");
            assert_eq!((info.length, info.byte_length), (5, 7));
            let again = store
                .create_state(h, Some("draft".into()), false, None)
                .expect("state");
            state_append(&mut store, again, &[b"h"], false);
        }
        let mut store = Store::open(&dir, None, false).expect("reopen");
        let h = open(&mut store);
        let core = store.core(h).expect("core");
        assert_eq!(core.state().length, 5);
        assert_eq!(
            core.get(store.storage(), 4).expect("get").as_deref(),
            Some(&b"fg"[..])
        );
        // the draft is resumed from disk, with its own block
        let d = store
            .create_state(h, Some("draft".into()), false, None)
            .expect("resume");
        assert_eq!(store.state_info(d).expect("info").length, 6);
        let b = store.state_read(d, |st, r| st.get(r, 5)).expect("get");
        assert_eq!(b.as_deref(), Some(&b"h"[..]));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_atom_writes_nothing_until_it_flushes_then_all_at_once() {
        let dir = tmp("atom");
        let mut store = Store::open(&dir, None, false).expect("store");
        let h = open(&mut store);
        append(&mut store, h, &[b"x"]);
        let atom = store.create_atom();
        let a = store
            .create_state(h, None, false, Some(atom))
            .expect("atomic state");
        assert_eq!(state_append(&mut store, a, &[b"y", b"z"], true), 3);
        // nothing on disk yet: the core and RocksDB still have one block
        assert_eq!(store.core(h).expect("core").state().length, 1);
        assert_eq!(store.storage().block(0, 1).expect("read"), None);
        let seen = store.state_read(a, |st, r| st.get(r, 2)).expect("get");
        assert_eq!(seen.as_deref(), Some(&b"z"[..]));
        let flushed = store.flush_atom(atom).expect("flush");
        assert_eq!(flushed.len(), 1);
        let st = store.core(h).expect("core").state();
        assert_eq!(
            (st.length, st.signed_length, st.contiguous_length),
            (3, 3, 3)
        );
        drop(store);
        // a fresh open verifies the signed head the atom wrote
        let mut store = Store::open(&dir, None, false).expect("reopen");
        let h = open(&mut store);
        assert_eq!(store.core(h).expect("core").state().length, 3);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_snapshot_state_keeps_reading_what_its_state_had() {
        let dir = tmp("snapshot");
        let mut store = Store::open(&dir, None, false).expect("store");
        let h = open(&mut store);
        append(&mut store, h, &[b"a", b"b"]);
        let s = store
            .create_state(h, Some("batch".into()), false, None)
            .expect("state");
        state_append(&mut store, s, &[b"c", b"d"], false);
        let snap = store.snapshot_state(s).expect("snapshot");
        let read = |store: &Store, st, i| store.state_read(st, |x, r| x.get(r, i)).expect("get");

        // the named session is rewritten from block 2 (a rebase)
        let fork = store.state_info(s).expect("info").fork;
        store
            .state_change(s, false, |x, r, _, _| {
                x.plan_truncate(r, 2, fork, None, None)
            })
            .expect("truncate");
        state_append(&mut store, s, &[b"X"], false);
        assert_eq!(read(&store, s, 2).as_deref(), Some(&b"X"[..]));
        assert_eq!(read(&store, snap, 2).as_deref(), Some(&b"c"[..]));
        assert_eq!(read(&store, snap, 3).as_deref(), Some(&b"d"[..]));
        assert_eq!(read(&store, snap, 0).as_deref(), Some(&b"a"[..])); // through its deps
        let info = store.state_info(snap).expect("info");
        assert_eq!((info.length, info.signed_length), (4, 2));

        // a snapshot of an atomic state holds the atom's writes as they were
        let atom = store.create_atom();
        let a = store
            .create_state(s, None, false, Some(atom))
            .expect("atomic state");
        state_append(&mut store, a, &[b"P"], false);
        let asnap = store.snapshot_state(a).expect("snapshot");
        state_append(&mut store, a, &[b"Q"], false);
        assert_eq!(store.state_info(asnap).expect("info").length, 4);
        assert_eq!(read(&store, asnap, 3).as_deref(), Some(&b"P"[..]));
        assert_eq!(read(&store, asnap, 4), None);
        store.flush_atom(atom).expect("flush");
        assert_eq!(read(&store, asnap, 3).as_deref(), Some(&b"P"[..]));
        assert_eq!(read(&store, s, 4).as_deref(), Some(&b"Q"[..]));

        // nothing changes a snapshot, and none is snapshotted again
        let refused = store.state_change(snap, false, |x, r, _, _| {
            x.plan_append(r, &[b"no"], None, None)
        });
        assert!(refused.is_err());
        assert!(store.state_catchup(snap, 2).is_err());
        assert!(store.snapshot_state(snap).is_err());
        assert!(store
            .storage_write(
                snap,
                vec![crate::store::state_storage::StorageOp::PutUserData(
                    "k".into(),
                    b"v".to_vec()
                )]
            )
            .is_err());

        store.close_state(snap);
        assert!(store.state_read(snap, |x, r| x.get(r, 0)).is_err());
        store.close_state(asnap);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
