//! N-API for named and atomic sessions (hypercore's session states) and atoms. A state is
//! addressed by the handle `stateCreate` returns; its core keeps its own handle.

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use super::convert::{js_error, uint_in};
use super::{store_closed, NativeStore, Result};
use crate::storage::Dependency;
use crate::store::{Flushed, StateInfo, StorageOp};

#[napi(object)]
pub struct StorageOpIn {
    pub op: String,
    pub key: Option<Buffer>,
    pub value: Option<Buffer>,
    pub end: Option<Buffer>,
    /// `setDependency`'s `{ dataPointer, length }`
    pub data_pointer: Option<i64>,
    pub length: Option<i64>,
}

#[napi(object)]
pub struct UserDataOut {
    pub key: String,
    pub value: Buffer,
}

/// A prologue copy (`exportPrologue` / `importPrologue`).
#[napi(object)]
pub struct PrologueCopyOut {
    pub length: i64,
    pub nodes: Vec<super::storage_view::TreeNodeOut>,
    pub blocks: Vec<super::storage_view::BlockOut>,
    pub user_data: Vec<UserDataOut>,
}

#[napi(object)]
pub struct LocalEntryOut {
    pub key: Buffer,
    pub value: Buffer,
}

fn bad(message: &str) -> napi::Error<super::Code> {
    js_error(crate::error::Error::bad_argument(message))
}

#[napi(object, use_nullable = true)]
pub struct HeadOut {
    pub fork: i64,
    pub length: i64,
    pub root_hash: Buffer,
    pub signature: Option<Buffer>,
}

#[napi(object)]
pub struct MovedOut {
    pub state: StateOut,
    pub truncated: bool,
}

#[napi(object)]
pub struct CatchupOut {
    pub state: StateOut,
    pub shared_length: i64,
}

#[napi(object)]
pub struct DependencyOut {
    pub data_pointer: i64,
    pub length: i64,
}

#[napi(object)]
pub struct StorageInfoOut {
    pub core_pointer: i64,
    pub data_pointer: i64,
    pub dependencies: Vec<DependencyOut>,
}

#[napi(object)]
pub struct StateOut {
    pub length: i64,
    pub byte_length: i64,
    pub fork: i64,
    pub signed_length: i64,
}

fn state_info_out(s: StateInfo) -> StateOut {
    StateOut {
        length: s.length as i64,
        byte_length: s.byte_length as i64,
        fork: s.fork as i64,
        signed_length: s.signed_length as i64,
    }
}

/// One parent state an atom's flush changed: `state` is null for the core's default state.
#[napi(object)]
pub struct FlushedOut {
    pub handle: u32,
    pub state: Option<u32>,
    pub old_length: i64,
    pub truncated: bool,
    pub start: i64,
    pub appends: i64,
}

fn flushed_out(f: Flushed) -> FlushedOut {
    let p = f.pending;
    FlushedOut {
        handle: f.core,
        state: f.state,
        old_length: f.old_length as i64,
        truncated: p.is_some_and(|p| p.truncated),
        start: p.map_or(-1, |p| p.start as i64),
        appends: p.map_or(0, |p| p.appends as i64),
    }
}

#[napi]
impl NativeStore {
    #[napi]
    pub fn atom_create(&self) -> Result<u32> {
        let mut engine = self.engine();
        let e = &mut *engine;
        Ok(e.store_mut()?.create_atom())
    }

    /// Writes the atom's changes as one batch; returns what each parent state adopted.
    #[napi]
    pub fn atom_flush(&self, atom: u32) -> Result<Vec<FlushedOut>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let flushed = store.flush_atom(atom).map_err(js_error)?;
        if e.replicator.is_active() {
            for f in flushed.iter().filter(|f| f.state.is_none()) {
                e.replicator.on_local_change(store, f.core);
            }
        }
        Ok(flushed.into_iter().map(flushed_out).collect())
    }

    #[napi]
    pub fn atom_release(&self, atom: u32) {
        let mut engine = self.engine();
        let e = &mut *engine;
        if let Some(store) = e.store.as_mut() {
            store.release_atom(atom);
        }
    }

    /// A state made from `parent` (a core handle for the default state, or a state handle):
    /// atomic when `atom` is given, else the named session `name`. A named session made
    /// anew (`overwrite`) starts at `length` blocks of the parent when given, else at all.
    #[napi]
    pub fn state_create(
        &self,
        parent: u32,
        name: Option<String>,
        overwrite: Option<bool>,
        atom: Option<u32>,
        length: Option<i64>,
    ) -> Result<u32> {
        let at = length.map(|l| uint_in(l, "length")).transpose()?;
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store_mut()?
            .create_state_at(parent, name, overwrite.unwrap_or(false), atom, at)
            .map_err(js_error)
    }

    /// hypercore's `state.snapshot()`: a state of its own that reads `state`'s tree and data
    /// as they are now, through a storage snapshot (closed with `stateClose`).
    #[napi]
    pub fn state_snapshot(&self, state: u32) -> Result<u32> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store_mut()?.snapshot_state(state).map_err(js_error)
    }

    #[napi]
    pub fn state_close(&self, state: u32) {
        let mut engine = self.engine();
        let e = &mut *engine;
        if let Some(store) = e.store.as_mut() {
            store.close_state(state);
        }
    }

    #[napi]
    pub fn state_info(&self, state: u32) -> Result<StateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store()?
            .state_info(state)
            .map(state_info_out)
            .map_err(js_error)
    }

    #[napi]
    pub fn state_append(&self, state: u32, blocks: Vec<BufferSlice>) -> Result<StateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let slices: Vec<&[u8]> = blocks.iter().map(|b| b.as_ref()).collect();
        let store = e.store_mut()?;
        // only a state standing in for the default one signs what it appends
        let sign = store
            .state_entry(state)
            .map_err(js_error)?
            .state
            .is_atomic_default();
        store
            .state_change(state, sign, |s, r, signer, default| {
                s.plan_append(r, &slices, signer, default)
            })
            .map(state_info_out)
            .map_err(js_error)
    }

    #[napi]
    pub fn state_truncate(&self, state: u32, length: i64, fork: i64) -> Result<StateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (length, fork) = (uint_in(length, "length")?, uint_in(fork, "fork")?);
        e.store_mut()?
            .state_change(state, true, |s, r, signer, default| {
                s.plan_truncate(r, length, fork, signer, default)
            })
            .map(state_info_out)
            .map_err(js_error)
    }

    #[napi]
    pub fn state_clear(&self, state: u32, start: i64, end: i64) -> Result<StateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (start, end) = (uint_in(start, "start")?, uint_in(end, "end")?);
        e.store_mut()?
            .state_change(state, false, |s, _, _, _| Ok(s.plan_clear(start, end)))
            .map(state_info_out)
            .map_err(js_error)
    }

    #[napi]
    pub fn state_get(&self, state: u32, index: i64) -> Result<Option<Buffer>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let index = uint_in(index, "index")?;
        e.store()?
            .state_read(state, |s, r| s.get(r, index))
            .map(|b| b.map(Buffer::from))
            .map_err(js_error)
    }

    #[napi]
    pub fn state_has(&self, state: u32, start: i64, end: i64) -> Result<bool> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (start, end) = (uint_in(start, "start")?, uint_in(end, "end")?);
        e.store()?
            .state_read(state, |s, r| s.has(r, start, end))
            .map_err(js_error)
    }

    #[napi]
    pub fn state_seek(
        &self,
        state: u32,
        byte_offset: i64,
        padding: Option<u32>,
    ) -> Result<Option<Vec<i64>>> {
        let bytes = uint_in(byte_offset, "byteOffset")?;
        let padding = u64::from(padding.unwrap_or(0));
        let found = self
            .engine()
            .store()?
            .state_read(state, |s, r| s.tree.seek(&s.nodes(r), bytes, padding))
            .map_err(js_error)?;
        Ok(found.map(|(i, o)| vec![i as i64, o as i64]))
    }

    #[napi]
    pub fn state_tree_hash(&self, state: u32, length: i64) -> Result<Buffer> {
        let length = uint_in(length, "length")?;
        let hash = self
            .engine()
            .store()?
            .state_read(state, |s, r| s.tree_hash(r, length))
            .map_err(js_error)?;
        Ok(hash.to_vec().into())
    }

    #[napi]
    pub fn state_get_user_data(&self, state: u32, key: String) -> Result<Option<Buffer>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store()?
            .state_read(state, |s, r| s.user_data(r, &key))
            .map(|v| v.map(Buffer::from))
            .map_err(js_error)
    }

    #[napi]
    pub fn state_set_user_data(
        &self,
        state: u32,
        key: String,
        value: Option<Buffer>,
    ) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store_mut()?
            .state_change(state, false, |s, _, _, _| {
                Ok(crate::core::session_state::Planned {
                    batch: s.plan_user_data(&key, value.as_deref()),
                    tree: s.tree.clone(),
                    signature: s.signature.clone(),
                    deps: None,
                    range: None,
                })
            })
            .map(|_| ())
            .map_err(js_error)
    }

    /// hypercore's `state.catchup(length)`: the state, and the length it shared before
    /// (JS emits a truncation from there when it had more, and an append when it grows).
    #[napi]
    pub fn state_catchup(&mut self, state: u32, length: i64) -> Result<CatchupOut> {
        let length = uint_in(length, "length")?;
        let (info, shared) = self
            .engine()
            .store_mut()?
            .state_catchup(state, length)
            .map_err(js_error)?;
        Ok(CatchupOut {
            state: state_info_out(info),
            shared_length: shared as i64,
        })
    }

    /// hypercore's `state.moveTo(session, length)` onto `target` (the session's state handle, or
    /// its core handle on the default state); `truncated`: the session was cut to `length`.
    #[napi]
    pub fn state_move_to(&mut self, state: u32, target: u32, length: i64) -> Result<MovedOut> {
        let length = uint_in(length, "length")?;
        let (info, truncated) = self
            .engine()
            .store_mut()?
            .move_state(state, target, length)
            .map_err(js_error)?;
        Ok(MovedOut {
            state: state_info_out(info),
            truncated,
        })
    }

    /// hypercore's `state.moveTo(session)` of the snapshot state `state` onto core `target`
    /// of this store (it keeps what it reads).
    #[napi]
    pub fn state_move_snapshot(&mut self, state: u32, target: u32) -> Result<()> {
        self.engine()
            .store_mut()?
            .move_snapshot(state, target)
            .map_err(js_error)
    }

    /// hypercore's `copyPrologue(src)` into core `handle` from a core or state handle.
    #[napi]
    pub fn copy_prologue(&self, handle: u32, src: u32) -> Result<bool> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let copied = store.copy_prologue(handle, src).map_err(js_error)?;
        if copied && e.replicator.is_active() {
            e.replicator.on_local_change(store, handle);
        }
        Ok(copied)
    }

    /// The first `length` blocks of `src` (a core or state handle) with their tree nodes
    /// and user data, for `importPrologue` into a core of another store (hypercore's
    /// copyPrologue across storages). Null when the source is shorter.
    #[napi]
    pub fn export_prologue(&self, src: u32, length: i64) -> Result<Option<PrologueCopyOut>> {
        let engine = self.engine();
        let length = uint_in(length, "length")?;
        let store = engine.store.as_ref().ok_or_else(store_closed)?;
        let Some(copy) = store.prologue_source(src, length).map_err(js_error)? else {
            return Ok(None);
        };
        Ok(Some(PrologueCopyOut {
            length: copy.length as i64,
            nodes: copy
                .nodes
                .into_iter()
                .map(|n| super::storage_view::TreeNodeOut {
                    index: n.index as i64,
                    size: n.size as i64,
                    hash: n.hash.to_vec().into(),
                })
                .collect(),
            blocks: copy
                .blocks
                .into_iter()
                .map(|(i, b)| super::storage_view::BlockOut {
                    index: i as i64,
                    value: b.into(),
                })
                .collect(),
            user_data: copy
                .user_data
                .into_iter()
                .map(|(key, value)| UserDataOut {
                    key,
                    value: value.into(),
                })
                .collect(),
        }))
    }

    /// The length of core `handle`'s prologue (what `exportPrologue` is asked for).
    #[napi]
    pub fn prologue_length(&self, handle: u32) -> Result<i64> {
        let engine = self.engine();
        let store = engine.store.as_ref().ok_or_else(store_closed)?;
        Ok(store.prologue_length(handle).map_err(js_error)? as i64)
    }

    /// hypercore's copyPrologue from a core of another store: what its `exportPrologue`
    /// gave, checked against this core's prologue hash; as `copyPrologue`.
    #[napi]
    pub fn import_prologue(&self, handle: u32, copy: PrologueCopyOut) -> Result<bool> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let mut nodes = Vec::with_capacity(copy.nodes.len());
        for n in &copy.nodes {
            nodes.push(crate::storage::TreeNode {
                index: uint_in(n.index, "index")?,
                size: uint_in(n.size, "size")?,
                hash: <[u8; 32]>::try_from(&n.hash[..])
                    .map_err(|_| bad("a tree node hash is 32 bytes"))?,
            });
        }
        let mut blocks = Vec::with_capacity(copy.blocks.len());
        for b in &copy.blocks {
            blocks.push((uint_in(b.index, "index")?, b.value.to_vec()));
        }
        let copy = crate::store::PrologueCopy {
            length: uint_in(copy.length, "length")?,
            nodes,
            blocks,
            user_data: copy
                .user_data
                .iter()
                .map(|u| (u.key.clone(), u.value.to_vec()))
                .collect(),
        };
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let copied = store.write_prologue(handle, copy).map_err(js_error)?;
        if e.replicator.is_active() {
            e.replicator.on_local_change(store, handle);
        }
        Ok(copied)
    }

    /// hypercore-storage's view of where a state's data is: `{ corePointer, dataPointer,
    /// dependencies }` (a core handle gives its default state's).
    #[napi]
    pub fn storage_info(&self, handle: u32) -> Result<StorageInfoOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (core_pointer, data_pointer, deps) =
            e.store()?.storage_pointers(handle).map_err(js_error)?;
        Ok(StorageInfoOut {
            core_pointer: core_pointer as i64,
            data_pointer: data_pointer as i64,
            dependencies: deps
                .into_iter()
                .map(|d| DependencyOut {
                    data_pointer: d.data_pointer as i64,
                    length: d.length as i64,
                })
                .collect(),
        })
    }

    /// A transaction of hypercore-storage's `state.storage.write()`: local records and user
    /// data of the state's own data, one batch (into its atom when it has one).
    #[napi]
    pub fn storage_write(&self, handle: u32, ops: Vec<StorageOpIn>) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let mut parsed = Vec::with_capacity(ops.len());
        for op in ops {
            let key = op.key.as_ref().map(|k| k.to_vec()).unwrap_or_default();
            let text =
                || String::from_utf8(key.clone()).map_err(|_| bad("user data keys are strings"));
            parsed.push(match op.op.as_str() {
                "putLocal" => {
                    StorageOp::PutLocal(key, op.value.map(|v| v.to_vec()).unwrap_or_default())
                }
                "deleteLocal" => StorageOp::DeleteLocal(key),
                "deleteLocalRange" => StorageOp::DeleteLocalRange(key, op.end.map(|e| e.to_vec())),
                "putUserData" => StorageOp::PutUserData(
                    text()?,
                    op.value.map(|v| v.to_vec()).unwrap_or_default(),
                ),
                "deleteUserData" => StorageOp::DeleteUserData(text()?),
                "setDependency" => StorageOp::SetDependency(Dependency {
                    data_pointer: uint_in(op.data_pointer.unwrap_or(-1), "dataPointer")?,
                    length: uint_in(op.length.unwrap_or(-1), "length")?,
                }),
                other => return Err(bad(&format!("unknown storage write operation {other}"))),
            });
        }
        e.store_mut()?
            .storage_write(handle, parsed)
            .map_err(js_error)
    }

    /// hypercore-storage's `createLocalStream({ gte, lt })`, read at once.
    #[napi]
    pub fn storage_local_range(
        &self,
        handle: u32,
        gte: Buffer,
        lt: Option<Buffer>,
    ) -> Result<Vec<LocalEntryOut>> {
        let entries = self
            .engine()
            .store()?
            .local_range(handle, &gte, lt.as_deref())
            .map_err(js_error)?;
        Ok(entries
            .into_iter()
            .map(|(k, v)| LocalEntryOut {
                key: k.into(),
                value: v.into(),
            })
            .collect())
    }

    #[napi]
    pub fn storage_delete_sessions(&self, handle: u32) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store_mut()?.delete_sessions(handle).map_err(js_error)
    }

    /// The signed head of a core's default state (hypercore's `core.header.tree`).
    #[napi]
    pub fn core_head(&self, handle: u32) -> Result<HeadOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store()?;
        let core = store.core(handle).map_err(js_error)?;
        let tree = core.tree();
        Ok(HeadOut {
            fork: tree.fork as i64,
            length: tree.length as i64,
            root_hash: tree.hash().to_vec().into(),
            signature: core.signature().map(|s| s.to_vec().into()),
        })
    }

    /// The store is closing: every core's channels close on every stream (the peers hear
    /// it) and the streams stay open, as corestore's.
    #[napi]
    pub fn replication_close_cores(&self) -> Result<super::ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicate_with(|r, store| r.close_channels(store))
    }

    /// hypercore's `replicator.setInflightRange(min, max)` for one core.
    #[napi]
    pub fn replication_set_inflight_range(&self, handle: u32, min: u32, max: u32) {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicator
            .set_inflight_range(handle, min as usize, max as usize);
    }

    /// hypercore's `core.compact()`: RocksDB compacts the core's records.
    #[napi]
    pub fn compact(&self, handle: u32) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store()?;
        let (core_pointer, data_pointer, _) = store.storage_pointers(handle).map_err(js_error)?;
        store
            .storage()
            .compact(core_pointer, data_pointer)
            .map_err(|e| js_error(e.into()))
    }

    /// hypercore's `core.commit(session, { length, treeLength })`: null when the core moved
    /// on in a way the session does not contain.
    #[napi]
    pub fn commit(
        &self,
        handle: u32,
        state: u32,
        length: Option<i64>,
        tree_length: Option<i64>,
        signature: Option<Buffer>,
    ) -> Result<Option<StateOut>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let length = length.map(|l| uint_in(l, "length")).transpose()?;
        let tree_length = tree_length.map(|l| uint_in(l, "treeLength")).transpose()?;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let done = store
            .commit(
                handle,
                state,
                length,
                tree_length,
                signature.map(|s| s.to_vec()),
            )
            .map_err(js_error)?;
        if done.is_some() && e.replicator.is_active() && store.core(handle).is_ok() {
            e.replicator.on_local_change(store, handle);
        }
        Ok(done.map(state_info_out))
    }
}
