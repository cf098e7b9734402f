//! hypercore's push modes: push-only (`get({ pushOnly: true })`, `replicator.setPushOnly`)
//! and allowPush (`get({ allowPush: true })`: peers may send blocks unasked), and push.

use napi_derive::napi;

use super::{NativeStore, ReplicationOut, Result};

#[napi]
impl NativeStore {
    /// While on, the core answers peers but requests nothing from them.
    #[napi]
    pub fn replication_push_only(&self, handle: u32, push_only: bool) -> Result<ReplicationOut> {
        self.engine()
            .replicate_with(|r, store| r.set_push_only(store, handle, push_only))
    }

    /// hypercore's allowPush while the core has active sessions: the syncs we send say
    /// so, and blocks a peer pushes unasked are verified and kept.
    #[napi]
    pub fn replication_allow_push(&self, handle: u32, allow: bool) -> Result<ReplicationOut> {
        self.engine()
            .replicate_with(|r, store| r.set_allow_push(store, handle, allow))
    }

    /// hypercore's `replicator.push(index)`: the block goes unasked to the peers that allow
    /// push and lack it.
    #[napi]
    pub fn replication_push(&self, handle: u32, index: i64) -> Result<ReplicationOut> {
        let index = super::convert::uint_in(index, "index")?;
        self.engine()
            .replicate_with(|r, store| r.push(store, handle, index))
    }
}
