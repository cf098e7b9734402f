//! hypercore's `stream.publicKey` / `stream.remotePublicKey` for the raw streams whose
//! Noise handshake the engine runs.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::NativeStore;

#[napi(object)]
pub struct StreamKeys {
    pub public_key: Buffer,
    pub remote_public_key: Option<Buffer>,
}

#[napi]
impl NativeStore {
    /// A raw stream's Noise keys (hypercore's `stream.publicKey` / `remotePublicKey`): ours
    /// from the start, the peer's once the handshake is done. Null for other streams.
    #[napi]
    pub fn replication_keys(&self, session: u32) -> Option<StreamKeys> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (public_key, remote) = e.replicator.keys(session)?;
        Some(StreamKeys {
            public_key: public_key.to_vec().into(),
            remote_public_key: remote.map(|k| k.to_vec().into()),
        })
    }
}
