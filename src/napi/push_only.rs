//! hypercore's push-only mode (`get({ pushOnly: true })`, `replicator.setPushOnly`).

use napi_derive::napi;

use super::{replication_out, store_closed, NativeStore, ReplicationOut, Result};

#[napi]
impl NativeStore {
    /// While on, the core answers peers but requests nothing from them.
    #[napi]
    pub fn replication_push_only(
        &mut self,
        handle: u32,
        push_only: bool,
    ) -> Result<ReplicationOut> {
        let store = self.store.as_mut().ok_or_else(store_closed)?;
        self.replicator.set_push_only(store, handle, push_only);
        Ok(replication_out(self.replicator.take_output()))
    }
}
