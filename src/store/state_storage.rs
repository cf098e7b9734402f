//! hypercore-storage's per-state record API that libraries call directly
//! (`core.state.storage.write()`, `createLocalStream`, `deleteSessions`): DATA/LOCAL records
//! and user data of a state's own data, written as one batch per transaction — into the
//! state's atom when it has one, so they land with the atom's flush.

use crate::core::merkle::NodeSource;
use crate::core::session_state::AtomLink;
use crate::error::{Error, Result};
use crate::storage::{keys, Batch, CoreHead, Dependency, Hints, Reader, Sessions, TreeNode};

use super::sessions::entry_via;
use super::{closed_handle, Store};

/// One operation of a write transaction, as the facade hands it over.
pub enum StorageOp {
    PutLocal(Vec<u8>, Vec<u8>),
    DeleteLocal(Vec<u8>),
    /// `[start, end)`; `None` for the end of the table.
    DeleteLocalRange(Vec<u8>, Option<Vec<u8>>),
    PutUserData(String, Vec<u8>),
    DeleteUserData(String),
    /// The data this state's data depends on below a length (hypercore-storage's
    /// `tx.setDependency`): the record only, as there; the open state keeps what it read.
    SetDependency(Dependency),
}

fn local_key(data_pointer: u64, key: &[u8]) -> Result<Vec<u8>> {
    keys::local(data_pointer, key)
        .ok_or_else(|| Error::bad_argument("A local key is at most 2048 bytes"))
}

impl Store {
    /// The data a handle writes to (a core's default data or a state's), and its atom.
    fn data_of(&self, handle: u32) -> Result<(u64, Option<AtomLink>)> {
        if let Some(open) = self.cores.get(&handle) {
            return Ok((open.core.data_pointer, None));
        }
        let e = self.states.get(&handle).ok_or_else(closed_handle)?;
        Ok((e.state.data_pointer, e.state.atom))
    }

    /// Applies a transaction of local-record and user-data writes as one batch.
    pub fn storage_write(&mut self, handle: u32, ops: Vec<StorageOp>) -> Result<()> {
        if self
            .states
            .get(&handle)
            .is_some_and(|e| e.snapshot.is_some())
        {
            return Err(Error::new("ERR_ASSERTION", "Cannot write to a snapshot"));
        }
        let (dp, atom) = self.data_of(handle)?;
        let mut batch = Batch::new();
        for op in ops {
            match op {
                StorageOp::PutLocal(k, v) => batch.put_raw(local_key(dp, &k)?, v),
                StorageOp::DeleteLocal(k) => batch.delete_raw(local_key(dp, &k)?),
                StorageOp::DeleteLocalRange(start, end) => {
                    let end = match end {
                        Some(e) => local_key(dp, &e)?,
                        None => keys::local_range(dp).1,
                    };
                    batch.delete_range_raw(local_key(dp, &start)?, end);
                }
                StorageOp::PutUserData(k, v) => batch.put_user_data(dp, &k, &v),
                StorageOp::DeleteUserData(k) => batch.delete_user_data(dp, &k),
                StorageOp::SetDependency(d) => batch.put_dependency(dp, &d),
            }
        }
        match atom.and_then(|l| self.atoms.get_mut(&l.atom)) {
            Some(a) => a.overlay.apply(batch),
            None => self.storage.write(batch)?,
        }
        Ok(())
    }

    /// Local records with keys in `[gte, lt)` (`lt` None: to the end), in key order, as the
    /// handle sees them (its atom's writes included).
    pub fn local_range(
        &self,
        handle: u32,
        gte: &[u8],
        lt: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (dp, atom) = self.data_of(handle)?;
        let start = local_key(dp, gte)?;
        let end = match lt {
            Some(k) => local_key(dp, k)?,
            None => keys::local_range(dp).1,
        };
        let prefix = keys::local_range(dp).0.len();
        let overlay = atom
            .and_then(|l| self.atoms.get(&l.atom))
            .map(|a| &a.overlay);
        let entries = match overlay {
            Some(o) => o.scan(&self.storage, &start, &end)?,
            None => {
                let mut out = Vec::new();
                self.storage.scan_raw(&start, &end, |k, v| {
                    out.push((k.to_vec(), v.to_vec()));
                    Ok(true)
                })?;
                out
            }
        };
        Ok(entries
            .into_iter()
            .map(|(k, v)| (k[prefix.min(k.len())..].to_vec(), v))
            .collect())
    }

    /// hypercore-storage's `deleteSessions()`: forgets every named session of the core and
    /// drops their data, in one batch.
    pub fn delete_sessions(&mut self, handle: u32) -> Result<()> {
        let core_handle = match self.states.get(&handle) {
            Some(e) => e.core,
            None => handle,
        };
        let core_pointer = self
            .cores
            .get(&core_handle)
            .ok_or_else(closed_handle)?
            .core
            .core_pointer;
        let Some(sessions) = self.storage.sessions(core_pointer)? else {
            return Ok(());
        };
        let mut batch = Batch::new();
        batch.put_sessions(core_pointer, &Sessions::default());
        for s in &sessions.0 {
            batch.delete_data_range(s.data_pointer);
        }
        self.storage.write(batch)?;
        Ok(())
    }

    /// A raw record of the handle's own data (head, hints, bitfield page) as it reads it.
    fn own_record(&self, handle: u32, key: impl FnOnce(u64) -> Vec<u8>) -> Result<Option<Vec<u8>>> {
        if let Some(open) = self.cores.get(&handle) {
            return Ok(self.storage.get_raw(&key(open.core.data_pointer))?);
        }
        let e = self.states.get(&handle).ok_or_else(closed_handle)?;
        let reader = entry_via(&self.storage, &self.atoms, e);
        Ok(reader.get(&key(e.state.data_pointer))?)
    }

    pub fn storage_head(&self, handle: u32) -> Result<Option<CoreHead>> {
        match self.own_record(handle, keys::data_head)? {
            Some(v) => Ok(Some(CoreHead::decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn storage_hints(&self, handle: u32) -> Result<Option<Hints>> {
        match self.own_record(handle, keys::data_hints)? {
            Some(v) => Ok(Some(Hints::decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn storage_bitfield_page(&self, handle: u32, page: u64) -> Result<Option<Vec<u8>>> {
        self.own_record(handle, |dp| keys::bitfield(dp, page, 0))
    }

    /// A block as the handle's state reads it (through its dependencies).
    pub fn storage_block(&self, handle: u32, index: u64) -> Result<Option<Vec<u8>>> {
        if let Some(open) = self.cores.get(&handle) {
            return Ok(self.storage.block(open.core.data_pointer, index)?);
        }
        self.state_read(handle, |s, r| s.get(r, index))
    }

    /// Blocks in `[start, end)` (`end` None: all) that the handle's state holds, in order.
    pub fn storage_blocks(
        &self,
        handle: u32,
        start: u64,
        end: Option<u64>,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        if let Some(open) = self.cores.get(&handle) {
            return Ok(self.storage.blocks(open.core.data_pointer, start, end)?);
        }
        self.state_read(handle, |s, r| {
            let end = end.map_or(s.tree.length, |e| e.min(s.tree.length));
            let mut out = Vec::new();
            for i in start..end {
                if let Some(b) = s.get(r, i)? {
                    out.push((i, b));
                }
            }
            Ok(out)
        })
    }

    pub fn storage_tree_node(&self, handle: u32, index: u64) -> Result<Option<TreeNode>> {
        if let Some(open) = self.cores.get(&handle) {
            return open.core.nodes(&self.storage).node(index);
        }
        self.state_read(handle, |s, r| s.nodes(r).node(index))
    }

    /// The mark pages (hypercore's mark-and-sweep) of the handle's own data, in order.
    pub fn storage_marks(&self, handle: u32) -> Result<Vec<(u64, Vec<u8>)>> {
        let (dp, _) = self.data_of(handle)?;
        Ok(self.storage.marks(dp)?)
    }
}
