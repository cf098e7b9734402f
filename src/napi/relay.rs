//! Guest stores on a raw replication stream: a core of another Corestore given a stream
//! this store runs (`a.replicate(b.replicate(true))`) replicates on it through channels
//! that our Protomux carries for it (docs/DECISIONS.md §19). The guest's engine speaks the
//! protocol ("external mux" mode); these calls carry its channel commands, and relay
//! events (`type: 'relay'`) carry the peer's side back.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::{convert, js_error, NativeStore, ReplicationOut, Result};
use crate::error::Error as EngineError;

#[napi(object)]
pub struct StreamHandshake {
    pub handshake_hash: Buffer,
    pub remote_public_key: Option<Buffer>,
}

#[napi]
impl NativeStore {
    /// The handshake hash (and the peer's Noise key) of a raw stream once it is open: a
    /// guest's engine session runs on that hash. Null while the handshake runs.
    #[napi]
    pub fn replication_handshake(&self, session: u32) -> Option<StreamHandshake> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (hash, key) = e.replicator.handshake(session)?;
        Some(StreamHandshake {
            handshake_hash: hash.to_vec().into(),
            remote_public_key: key.map(|k| k.to_vec().into()),
        })
    }

    /// Offer the peer's channels for cores we lack to guest stores from now on.
    #[napi]
    pub fn replication_host_guests(&self, session: u32) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicate_with(|r, _| r.host_guests(session))
    }

    /// Opens a channel for a guest's core (its engine's `open` command): the channel id
    /// (`channel`), absent when the stream is not open or has that core's channel already.
    #[napi]
    pub fn replication_relay_open(
        &self,
        session: u32,
        discovery_key: BufferSlice,
        handshake: BufferSlice,
    ) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let dkey = convert::bytes32(&discovery_key, "discoveryKey")?;
        let mut channel = None;
        let mut out =
            e.replicate_with(|r, _| channel = r.relay_open(session, &dkey, &handshake))?;
        out.channel = channel.and_then(|c| u32::try_from(c).ok());
        Ok(out)
    }

    /// The stream's JS Protomux view is in use: the peer's channels of other protocols are
    /// offered to it (`mux-open` events).
    #[napi]
    pub fn replication_use_mux(&self, session: u32) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicator.use_mux(session);
        Ok(())
    }

    /// Opens a channel of the JS Protomux view (any protocol; `handshake` as its encoding
    /// made it): the channel id (`channel`), absent when the stream is not open.
    #[napi]
    pub fn replication_relay_open_protocol(
        &self,
        session: u32,
        protocol: String,
        id: Option<BufferSlice>,
        handshake: BufferSlice,
    ) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let mut channel = None;
        let mut out = e.replicate_with(|r, _| {
            channel = r.relay_open_protocol(session, &protocol, id.as_deref(), &handshake)
        })?;
        out.channel = channel.and_then(|c| u32::try_from(c).ok());
        Ok(out)
    }

    /// A guest's message (its engine's `send` command) on its relay channel.
    #[napi]
    pub fn replication_relay_send(
        &self,
        session: u32,
        channel: u32,
        message_type: u32,
        data: BufferSlice,
    ) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicate_with(|r, _| {
            r.relay_send(session, u64::from(channel), u64::from(message_type), &data)
        })
    }

    /// A guest's channel goes (its core or its store closed).
    #[napi]
    pub fn replication_relay_close(&self, session: u32, channel: u32) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicate_with(|r, _| r.relay_close(session, u64::from(channel)))
    }

    /// No guest took a peer's channel offered by a relay event of kind 0.
    #[napi]
    pub fn replication_relay_reject(&self, session: u32, channel: u32) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        if channel == 0 {
            return Err(js_error(EngineError::bad_argument(
                "channel 0 is not a peer's channel",
            )));
        }
        e.replicate_with(|r, _| r.relay_reject(session, u64::from(channel)))
    }
}
