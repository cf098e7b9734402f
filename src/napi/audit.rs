//! hypercore `core.audit()` (what corestore's `store.audit()` runs on every core).

use napi_derive::napi;

use super::convert::js_error;
use super::{store_closed, NativeStore, Result};

/// hypercore's audit result.
#[napi(object)]
pub struct AuditOut {
    pub tree_nodes: i64,
    pub blocks: i64,
    pub bits: i64,
    pub dropped_tree_nodes: i64,
    pub dropped_blocks: i64,
    pub dropped_bits: i64,
    pub corrupt: bool,
}

#[napi]
impl NativeStore {
    /// Checks the core's stored tree, blocks and bitfield against each other and, unless
    /// `dryRun`, drops what does not verify (one batch).
    #[napi]
    pub fn audit(&self, handle: u32, dry_run: bool) -> Result<AuditOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let (core, storage) = store.core_mut(handle).map_err(js_error)?;
        let s = core.audit(storage, dry_run).map_err(js_error)?;
        let n = |v: u64| v as i64;
        Ok(AuditOut {
            tree_nodes: n(s.tree_nodes),
            blocks: n(s.blocks),
            bits: n(s.bits),
            dropped_tree_nodes: n(s.dropped_tree_nodes),
            dropped_blocks: n(s.dropped_blocks),
            dropped_bits: n(s.dropped_bits),
            corrupt: s.corrupt,
        })
    }
}
