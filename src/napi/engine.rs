//! The engine state a `NativeStore` shares with its replication worker (worker.rs): the
//! store, the replicator, and what the worker consumed that JS has not been told yet. One
//! mutex guards all of it; the JS thread takes it for every call, the worker for each chunk
//! of peer input it processes. Every output (bytes for the streams, events for the cores)
//! queues in the replicator in the order the engine made it, whichever thread made it, and
//! leaves only through `take_output` on the JS thread: secretstream bytes must reach the
//! wire in the order they were encrypted.

use std::collections::HashMap;

use super::{replication_out, store_closed, ReplicationOut, Result};
use crate::replication::Replicator;
use crate::store::Store;

pub(crate) struct Engine {
    pub store: Option<Store>,
    pub replicator: Replicator,
    /// bytes of peer input the worker processed per session, since JS last polled
    pub consumed: HashMap<u32, u64>,
}

impl Engine {
    pub fn new(store: Store) -> Self {
        Engine {
            store: Some(store),
            replicator: Replicator::default(),
            consumed: HashMap::new(),
        }
    }

    pub fn store(&self) -> Result<&Store> {
        self.store.as_ref().ok_or_else(store_closed)
    }

    pub fn store_mut(&mut self) -> Result<&mut Store> {
        self.store.as_mut().ok_or_else(store_closed)
    }

    /// Runs one replicator call on the open store and hands back everything output so far.
    pub fn replicate_with(
        &mut self,
        f: impl FnOnce(&mut Replicator, &mut Store),
    ) -> Result<ReplicationOut> {
        let store = self.store.as_mut().ok_or_else(store_closed)?;
        f(&mut self.replicator, store);
        Ok(self.take_output())
    }

    /// Everything queued for JS: the replicator's output and the worker's progress.
    pub fn take_output(&mut self) -> ReplicationOut {
        let mut out = replication_out(self.replicator.take_output());
        out.consumed = std::mem::take(&mut self.consumed)
            .into_iter()
            .map(|(session, bytes)| super::ConsumedOut {
                session,
                bytes: bytes as f64,
            })
            .collect();
        out
    }
}
