//! Replication of every loaded core over every live stream, as hypercore 11's replicator
//! does it on the wire: one `hypercore/alpha` channel per core and peer, sync + range on
//! open, eager upgrades, block requests for what local readers wait on, proofs verified
//! before anything is stored. Sans-IO: each call takes bytes or frames and leaves the
//! bytes to send (per stream) and the events for JS in `Output`.

mod coming;
pub mod pacing;
pub mod packed_commands;
pub mod peer;
mod range_set;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use crate::core::hypercore::Hypercore;
use crate::core::index_map::IntMap;
use crate::core::merkle::NodeSource;
use crate::core::proof::{self, Proof, ProofRequest};
use crate::crypto::{self, KeyPair};
use crate::error::{Error, Result};
use crate::storage::TreeNode;
use crate::store::{OpenRequest, Store};
use crate::wire::messages::{self, Message, PROTOCOL, PROTOCOL_ALIASES};
use crate::wire::protomux::MuxEvent;
use coming::Parked;
use packed_commands::PackedCommands;
pub use peer::WireStats;
use peer::{inflight_limit, Channel, Inflight, Peer, Transport, MAX_INFLIGHT};
use range_set::RangeSet;

const NOT_AVAILABLE: u64 = 1;
/// A time-bounded call (the worker's slice) also ends once it made this many bytes of
/// messages for one stream: 2 ms of answering requests made 1.5 MB, which the JS thread
/// then framed, encrypted and parsed in one turn of its event loop (docs/DECISIONS.md §67).
const OUTPUT_SLICE: usize = 256 * 1024;
/// hypercore's want batch (compat): a peer is asked about blocks in spans of this many.
const WANT_BATCH: u64 = 65536 * 32;
/// Blocks per bitfield message we send in answer to a want.
const BITFIELD_CHUNK: u64 = 32 * 1024;
const INVALID_REQUEST: u64 = 2;
/// Most wanted blocks one scheduling pass looks at (it runs after every block received).
const MAX_SCAN: usize = 65536;
/// Wanted blocks one pass looks at: a pass runs after every call that received blocks, so
/// a long run of blocks no peer holds must not be walked each time (the next pass goes on
/// where this one stopped).
const EXPLICIT_SCAN: usize = 4096;
/// Hotswap (hypercore's): a channel with fewer block requests in flight than this (or half
/// its limit) may ask again for blocks that are slow to come from another peer, up to this
/// many requests per block; the first answer cancels the others.
const HOTSWAP_IDLE: usize = 16;
const HOTSWAP_COPIES: u8 = 3;
/// A block is taken over only once its request is older than twice the taker's pace and
/// this. A taker that has sent nothing yet has no pace: it takes over a few requests a
/// second old, and its answers give it one.
const HOTSWAP_MIN_AGE_MS: u64 = 20;
const HOTSWAP_PROBE_AGE_MS: u64 = 1000;
const HOTSWAP_PROBES: usize = 2;
/// In-flight blocks one hotswap pass looks at; a pass runs at most this often per core.
const HOTSWAP_SCAN: usize = 1024;
const HOTSWAP_INTERVAL_MS: u64 = 10;
/// hypercore's MAX_INVALID_REQUESTS: the invalid requests a peer may make on one channel.
const MAX_INVALID_REQUESTS: u64 = 64;
/// hypercore's MAX_BACKOFFS: the invalid-request answers after which we stop asking a peer.
const MAX_BACKOFFS: u64 = MAX_INVALID_REQUESTS / 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The core grew through replication.
    Append {
        handle: u32,
    },
    /// The core adopted a peer's newer fork: blocks from `ancestors` on were replaced.
    Truncate {
        handle: u32,
        ancestors: u64,
    },
    /// A block a local read waits for (`want` with `read`) arrived and was stored; comes
    /// right before its `Download`. `value` is the stored bytes, with capacity for 8 more
    /// (the N-API layer appends the index without reallocating: one buffer crosses).
    Block {
        handle: u32,
        index: u64,
        value: Vec<u8>,
    },
    /// A block arrived from the peer on `session` and was stored.
    Download {
        handle: u32,
        index: u64,
        bytes: u64,
        session: u32,
        /// When we asked for it (ms since the epoch; 0 if it came unasked).
        requested_at: u64,
    },
    /// The core learned its manifest from a peer.
    Manifest {
        handle: u32,
    },
    /// A block was sent to a peer.
    Upload {
        handle: u32,
        index: u64,
        bytes: u64,
        session: u32,
    },
    /// A peer's channel for the core opened, and its first sync arrived.
    PeerAdd {
        handle: u32,
        session: u32,
        remote_public_key: Option<[u8; 32]>,
    },
    PeerRemove {
        handle: u32,
        session: u32,
    },
    /// A peer on our fork holds more of the core in full than any before
    /// (`remote-contiguous-length`).
    RemoteContiguousLength {
        handle: u32,
        length: u64,
    },
    /// A peer opened a channel for a stored core that no one had open, and the engine
    /// opened it for that channel (corestore's watchers are told of such a core).
    CoreOpen {
        handle: u32,
        discovery_key: [u8; 32],
    },
    /// A peer told us its length (update() waits on these).
    Sync {
        handle: u32,
    },
    /// A session extension message from the peer on `session` (`core.registerExtension`).
    Extension {
        handle: u32,
        session: u32,
        name: String,
        message: Vec<u8>,
    },
    /// A channel event for a guest store on a raw stream we carry (see `host_guests`):
    /// `kind` 0 the peer opened `channel` (its remote id) for the discovery key in `data`,
    /// which we lack; 1 our relay `channel` paired (`data`: the peer's handshake); 2 a
    /// message; 3 the channel closed (or the peer rejected it).
    Relay {
        session: u32,
        kind: u8,
        channel: u64,
        message_type: u64,
        data: Vec<u8>,
    },
    /// The peer opened a channel of a protocol the engine does not speak, on a raw stream
    /// whose JS Protomux view is in use (`use_mux`): `remote_id` waits for that view to
    /// pair it (`relay_open_protocol`) or reject it (`relay_reject`).
    MuxOpen {
        session: u32,
        remote_id: u64,
        protocol: String,
        id: Option<Vec<u8>>,
    },
    /// Data from the peer on `session` did not verify (hypercore's 'verification-error');
    /// that peer is paused.
    VerificationError {
        handle: u32,
        session: u32,
        code: String,
        message: String,
    },
    /// Two valid trees of the core exist at `length` (two writers of one key forked):
    /// hypercore's 'conflict'. The core asks nothing more of anyone; its sessions close.
    Conflict {
        handle: u32,
        length: u64,
        fork: u64,
    },
    /// The stream's handshake completed.
    Open {
        session: u32,
    },
    /// The stream ended; `error` when a peer broke the protocol.
    Close {
        session: u32,
        error: Option<Error>,
    },
}

pub struct PeerInfo {
    pub length: u64,
    pub fork: u64,
    pub contiguous_length: u64,
    pub can_upgrade: bool,
    pub allow_push: bool,
    /// Our requests on the channel that the peer has not answered (hypercore's
    /// `peer.inflight`).
    pub inflight: u32,
}

#[derive(Default)]
pub struct Output {
    pub sends: Vec<(u32, Vec<u8>)>,
    pub commands: PackedCommands,
    pub events: Vec<Event>,
}

#[derive(Default)]
struct Wants {
    blocks: RangeSet,
    /// Wanted blocks asked for even in push-only mode (hypercore's get({ force: true })).
    forced: RangeSet,
    /// Wanted blocks a local read waits for: they go to it with the download (`Event::Block`)
    /// instead of being read back from storage. Kept until stored or unwanted.
    reads: RangeSet,
    /// download() without a range: every block, now and as the core grows.
    all: bool,
    /// Where the next pass over "all" starts: blocks before it were asked for or held.
    next_all: u64,
    /// Where the next pass over `blocks` starts: past blocks no peer could serve last time
    /// (they are looked at again when a pass wraps around).
    next_explicit: u64,
}

#[derive(Default)]
pub struct Replicator {
    peers: IntMap<u32, Peer>,
    next_session: u32,
    wants: IntMap<u32, Wants>,
    /// (handle, index) of blocks asked for: how many requests for each are in flight. One,
    /// but for a hotswap (a block asked of a second peer while the first is slow).
    inflight_blocks: BTreeMap<(u32, u64), u8>,
    /// Cores with an upgrade request in flight.
    inflight_upgrades: BTreeSet<u32>,
    /// Cores with a reorg (fork proof) in flight.
    inflight_reorgs: BTreeSet<u32>,
    /// hypercore's `replicator.setInflightRange(min, max)`, per core: the bounds of the
    /// block requests a channel keeps in flight.
    inflight_ranges: HashMap<u32, (usize, usize)>,
    /// Cores in hypercore's push-only mode: they answer peers but never request.
    push_only: BTreeSet<u32>,
    /// Cores that take blocks a peer sends unasked (hypercore's allowPush while the core
    /// has active sessions); their syncs say so.
    allowing_push: BTreeSet<u32>,
    /// Cores with a conflict (two valid trees at one length): they replicate no more.
    frozen: BTreeSet<u32>,
    /// Cores that heard a peer's sync in this call: upgrades and block requests are made
    /// for them when the call's messages are all read.
    after_call: BTreeSet<u32>,
    /// Byte offsets (bytes, padding) local seeks wait on, not yet asked for, per core.
    seeks: HashMap<u32, Vec<(u64, u64)>>,
    /// When each block request in flight was sent (ms since the epoch), for the download
    /// event's request timing.
    requested_at: IntMap<(u32, u64), u64>,
    /// When each core's last hotswap pass ran (ms since the epoch).
    hotswapped_at: HashMap<u32, u64>,
    /// Cores whose last hotswap pass was skipped for coming too soon after the one before:
    /// the next message on any of their channels runs it (nothing else may come to).
    hotswap_owed: HashSet<u32>,
    /// Hotswap passes tried (run or skipped): a message whose handling tried one does not
    /// try again for what is owed.
    hotswap_tries: u64,
    /// The stats of channels gone, per core: a core's stats are these plus its live
    /// channels' (hypercore's replicator.stats count for as long as the core is open).
    retired_stats: HashMap<u32, WireStats>,
    out: Output,
}

impl Replicator {
    /// hypercore `replicator.setPushOnly()`: while on, the core sends no requests (upgrades,
    /// blocks, fork proofs); turned off, it asks for what it waits for again.
    pub fn set_push_only(&mut self, store: &mut Store, handle: u32, push_only: bool) {
        if push_only {
            self.push_only.insert(handle);
        } else if self.push_only.remove(&handle) {
            self.maybe_upgrade(store, handle);
            self.schedule(store, handle);
        }
    }

    /// hypercore's `allowPush` while the core is downloading (has active sessions): peers
    /// hear it in a sync at once, and blocks they push unasked are verified and kept.
    pub fn set_allow_push(&mut self, store: &mut Store, handle: u32, allow: bool) {
        let changed = if allow {
            self.allowing_push.insert(handle)
        } else {
            self.allowing_push.remove(&handle)
        };
        if !changed {
            return;
        }
        let Ok(core) = store.core(handle) else {
            return;
        };
        let sessions: Vec<u32> = self.peers.keys().copied().collect();
        for session in sessions {
            let Some(peer) = self.peers.get_mut(&session) else {
                continue;
            };
            let Some((local_id, ch)) = peer.channel_of(handle).filter(|(_, c)| c.paired) else {
                continue;
            };
            let sync = sync_message(core, store.storage(), &ch.remote, allow);
            peer.send(local_id, &Message::Sync(sync));
            self.flush(session);
        }
    }

    /// hypercore's `replicator.push(index)`: sends block `index` unasked, with an upgrade
    /// when the peer's length (or what we pushed it before) does not reach it, to every
    /// peer on our fork that allows push and lacks it.
    pub fn push(&mut self, store: &mut Store, handle: u32, index: u64) {
        let Ok(core) = store.core(handle) else {
            return;
        };
        let state = core.state();
        if index >= state.length {
            return;
        }
        let sessions: Vec<u32> = self.peers.keys().copied().collect();
        for session in sessions {
            let Some(peer) = self.peers.get_mut(&session) else {
                continue;
            };
            let Some((local_id, ch)) = peer.channel_of(handle) else {
                continue;
            };
            let r = &ch.remote;
            if !ch.paired || !r.synced || !r.allow_push || r.fork != state.fork || r.has(index) {
                continue;
            }
            let remote_length = r.length.max(ch.pushed_length);
            let request = messages::Request {
                id: 0,
                fork: state.fork,
                block: Some(messages::RequestBlock {
                    index,
                    nodes: proof::max_missing_nodes(2 * index, remote_length),
                }),
                upgrade: (index >= remote_length).then(|| messages::RequestUpgrade {
                    start: remote_length,
                    length: state.length - remote_length,
                }),
                manifest: r.length == 0,
                ..Default::default()
            };
            let Message::Data(data) = answer_request(core, store, &request) else {
                continue;
            };
            if let Some(b) = &data.block {
                self.out.events.push(Event::Upload {
                    handle,
                    index: b.index,
                    bytes: b.value.len() as u64,
                    session,
                });
            }
            if data.upgrade.is_some() {
                if let Some(ch) = peer.channels.get_mut(&local_id) {
                    ch.pushed_length = state.length;
                }
            }
            peer.send(local_id, &Message::Data(data));
            self.flush(session);
        }
    }

    pub fn is_active(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Bounds the block requests in flight per channel of a core (hypercore's
    /// `setInflightRange`; Hyperbee asks for 256-512 as its nodes are small).
    pub fn set_inflight_range(&mut self, handle: u32, min: usize, max: usize) {
        let max = max.clamp(1, MAX_INFLIGHT);
        self.inflight_ranges
            .insert(handle, (min.clamp(1, max), max));
    }

    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.out)
    }

    /// A new stream. With `handshake_hash` the stream runs on a JS Protomux over a JS
    /// secret-stream that did the Noise handshake; without, we run Noise ourselves with a
    /// fresh key pair and the stream carries raw bytes. A `scoped` stream (hypercore's
    /// `core.replicate()`) carries only the cores later added with `add_to_scope`.
    pub fn open(
        &mut self,
        store: &mut Store,
        is_initiator: bool,
        handshake_hash: Option<[u8; 64]>,
        scoped: bool,
        key_pair: Option<KeyPair>,
    ) -> u32 {
        self.next_session = self.next_session.wrapping_add(1).max(1);
        let session = self.next_session;
        let mut peer = match handshake_hash {
            Some(hash) => Peer::new(is_initiator, Transport::External, Some(hash)),
            // replicate(isInitiator, { keyPair }): the Noise identity is the caller's
            None => Peer::raw(
                is_initiator,
                key_pair.unwrap_or_else(crate::crypto::random_key_pair),
            ),
        };
        if scoped {
            peer.scope = Some(Default::default());
        }
        let opened = peer.is_open();
        self.peers.insert(session, peer);
        for handle in store.open_handles() {
            self.attach_to(store, session, handle);
        }
        if opened {
            self.out.events.push(Event::Open { session });
        }
        self.flush(session);
        session
    }

    /// Attaches a core to every live stream (a core opened while streams run).
    pub fn attach(&mut self, store: &mut Store, handle: u32) {
        let sessions: Vec<u32> = self.peers.keys().copied().collect();
        for session in sessions {
            self.attach_to(store, session, handle);
            self.flush(session);
        }
    }

    /// Sends a session extension message for a core to the peer on `session`, or to every
    /// peer of the core (`None`). The name always goes in full.
    pub fn send_extension(
        &mut self,
        handle: u32,
        session: Option<u32>,
        name: &str,
        message: &[u8],
    ) {
        let message = Message::Extension(crate::wire::messages::Extension {
            name: name.to_string(),
            message: message.to_vec(),
        });
        let sessions: Vec<u32> = match session {
            Some(s) => vec![s],
            None => self.peers.keys().copied().collect(),
        };
        for s in sessions {
            let Some(peer) = self.peers.get_mut(&s) else {
                continue;
            };
            let paired = peer
                .by_handle
                .get(&handle)
                .copied()
                .filter(|id| peer.channels.get(id).is_some_and(|c| c.paired));
            if let Some(local_id) = paired {
                peer.send(local_id, &message);
                self.flush(s);
            }
        }
    }

    /// Makes a `core.replicate()` stream a store's stream (`store.replicate(stream)` on it):
    /// every loaded core replicates on it from now on.
    pub fn widen(&mut self, store: &mut Store, session: u32) {
        let Some(peer) = self.peers.get_mut(&session) else {
            return;
        };
        if peer.scope.take().is_none() {
            return;
        }
        for handle in store.open_handles() {
            self.attach_to(store, session, handle);
        }
        self.flush(session);
    }

    /// Lets a core replicate on a stream (`core.replicate(stream)`); on a store's stream,
    /// where every loaded core replicates already, this attaches it if it was not.
    pub fn add_to_scope(&mut self, store: &mut Store, session: u32, handle: u32) {
        let Some(peer) = self.peers.get_mut(&session) else {
            return;
        };
        if let Some(scope) = peer.scope.as_mut() {
            scope.insert(handle);
        }
        self.attach_to(store, session, handle);
        self.flush(session);
    }

    fn attach_to(&mut self, store: &mut Store, session: u32, handle: u32) {
        let Some(peer) = self.peers.get_mut(&session) else {
            return;
        };
        if peer.by_handle.contains_key(&handle)
            || !peer.in_scope(handle)
            || self.frozen.contains(&handle)
        {
            return;
        }
        if !peer.is_open() {
            if !peer.pending.contains(&handle) {
                peer.pending.push(handle);
            }
            return;
        }
        let Ok(core) = store.core(handle) else {
            return;
        };
        let (key, dkey) = (core.key, core.discovery_key);
        if peer.open_channel(handle, &key, &dkey).is_some() && store.retain(handle).is_err() {
            peer.by_handle.remove(&handle);
        }
    }

    /// Raw transport bytes from the peer.
    pub fn recv(&mut self, store: &mut Store, session: u32, data: &[u8]) {
        self.recv_until(store, session, data, None);
    }

    /// `recv`, with the messages handled until `deadline`: the rest waits in the peer's
    /// backlog for `resume`, so a call never holds the engine long (the replication worker
    /// lets the JS thread in between).
    pub fn recv_until(
        &mut self,
        store: &mut Store,
        session: u32,
        data: &[u8],
        deadline: Option<Instant>,
    ) {
        let result = self
            .recv_inner(store, session, data)
            .and_then(|()| self.drain(store, session, deadline));
        self.finish(store, session, result);
    }

    /// Channel events from a JS Protomux, in the order it raised them: everything one
    /// received chunk carried, so its blocks are written in one batch.
    pub fn external(&mut self, store: &mut Store, session: u32, events: Vec<MuxEvent>) {
        self.external_until(store, session, events, None);
    }

    /// `external`, handled until `deadline` (see `recv_until`).
    pub fn external_until(
        &mut self,
        store: &mut Store,
        session: u32,
        events: Vec<MuxEvent>,
        deadline: Option<Instant>,
    ) {
        if let Some(peer) = self.peers.get_mut(&session) {
            peer.backlog_events.extend(events);
        }
        let result = self.drain(store, session, deadline);
        self.finish(store, session, result);
    }

    /// Handles what waits in the streams' backlogs until `deadline`. True while some is left.
    pub fn resume(&mut self, store: &mut Store, deadline: Instant) -> bool {
        let sessions: Vec<u32> = self
            .peers
            .iter()
            .filter(|(_, p)| p.has_backlog())
            .map(|(s, _)| *s)
            .collect();
        for session in sessions {
            let result = self.drain(store, session, Some(deadline));
            self.finish(store, session, result);
            if Instant::now() >= deadline {
                break;
            }
        }
        self.has_backlog()
    }

    pub fn has_backlog(&self) -> bool {
        self.peers.values().any(Peer::has_backlog)
    }

    pub fn session_has_backlog(&self, session: u32) -> bool {
        self.peers.get(&session).is_some_and(Peer::has_backlog)
    }

    /// Handles the session's backlog in order, until `deadline` if there is one.
    fn drain(&mut self, store: &mut Store, session: u32, deadline: Option<Instant>) -> Result<()> {
        loop {
            let Some(peer) = self.peers.get_mut(&session) else {
                return Ok(());
            };
            let data = take_data_run(peer);
            if !data.is_empty() {
                for (local_id, m) in data {
                    self.on_message(store, session, local_id, Message::Data(m))?;
                }
            } else if let Some(event) = peer.backlog_events.pop_front() {
                self.on_mux_event(store, session, event)?;
            } else if let Some(frame) = peer.backlog_frames.pop_front() {
                let events = peer.recv_frame(frame)?;
                peer.backlog_events.extend(events);
                continue;
            } else {
                return Ok(());
            }
            if let Some(deadline) = deadline {
                let made = self.peers.get(&session).map_or(0, |p| p.unflushed);
                let now = Instant::now();
                pacing::point(now);
                if made >= OUTPUT_SLICE || now >= deadline {
                    return Ok(());
                }
            }
        }
    }

    fn finish(&mut self, store: &mut Store, session: u32, result: Result<()>) {
        for handle in std::mem::take(&mut self.after_call) {
            if store.core(handle).is_ok() {
                self.maybe_upgrade(store, handle);
                self.schedule(store, handle);
            }
        }
        // What one peer sent can make us write to the others (a relayed block's range, a
        // new length's sync), so every stream is flushed.
        let result = result.and(store.flush_pending());
        match result {
            Ok(()) => self.flush_all(),
            Err(e) => self.close(store, session, Some(e)),
        }
    }

    fn recv_inner(&mut self, store: &mut Store, session: u32, data: &[u8]) -> Result<()> {
        let peer = self
            .peers
            .get_mut(&session)
            .ok_or_else(|| Error::new("SESSION_CLOSED", "The replication stream is closed"))?;
        let was_open = peer.is_open();
        let frames = peer.recv_raw(data)?;
        if !was_open && peer.is_open() {
            self.out.events.push(Event::Open { session });
            let pending = std::mem::take(&mut peer.pending);
            for handle in pending {
                self.attach_to(store, session, handle);
            }
        }
        if let Some(peer) = self.peers.get_mut(&session) {
            peer.backlog_frames.extend(frames);
        }
        Ok(())
    }

    fn on_mux_event(&mut self, store: &mut Store, session: u32, event: MuxEvent) -> Result<()> {
        if self.relay_event(session, &event) {
            return Ok(());
        }
        match event {
            MuxEvent::Open {
                remote_id,
                protocol,
                id,
                ..
            } => self.on_remote_open(store, session, remote_id, &protocol, id),
            MuxEvent::Opened {
                local_id,
                handshake,
                ..
            } => self.on_paired(store, session, local_id, &handshake),
            MuxEvent::Message {
                local_id,
                message_type,
                payload,
            } => {
                let message = Message::decode(message_type, &payload).map_err(|e| {
                    Error::new(
                        "INVALID_MESSAGE",
                        format!("The peer sent an invalid message: {e}"),
                    )
                })?;
                match message {
                    Some(m) => self.on_message(store, session, local_id, m),
                    None => Ok(()),
                }
            }
            MuxEvent::Close { local_id } | MuxEvent::Reject { local_id } => {
                self.drop_channel(store, session, local_id);
                Ok(())
            }
            MuxEvent::RemoteClosed { remote_id } => {
                self.reject(session, remote_id);
                Ok(())
            }
        }
    }

    /// The peer opened a channel we have not: a core we have loaded or stored pairs with it
    /// (stored cores are opened on demand); anything else is rejected, revealing nothing.
    fn on_remote_open(
        &mut self,
        store: &mut Store,
        session: u32,
        remote_id: u64,
        protocol: &str,
        id: Option<Vec<u8>>,
    ) -> Result<()> {
        let is_hypercore = protocol == PROTOCOL || PROTOCOL_ALIASES.contains(&protocol);
        if !is_hypercore {
            self.offer_to_mux(session, remote_id, protocol, id);
            return Ok(());
        }
        let dkey = id.and_then(|id| <[u8; 32]>::try_from(id.as_slice()).ok());
        let scoped = self.peers.get(&session).is_some_and(|p| p.scope.is_some());
        let handle = match (is_hypercore, dkey) {
            (true, Some(dkey)) => match store.open_handle(&dkey) {
                Some(h) => Some((h, false)),
                None if !scoped && store.has_core(&dkey).unwrap_or(false) => store
                    .open_core(OpenRequest {
                        discovery_key: Some(dkey),
                        create_if_missing: false,
                        ..Default::default()
                    })
                    .ok()
                    .map(|h| (h, true)),
                None => None,
            },
            _ => None,
        };
        match handle {
            Some((handle, opened_now)) => {
                self.attach_to(store, session, handle);
                if opened_now {
                    // attach_to took its own reference; drop the one open_core added.
                    store.close_core(handle);
                }
                // Unanswered: not attached (out of scope: a guest store may take it), or a
                // second open of a core whose channel is already paired. protomux rejects
                // those; left pending, the peer could make us buffer whatever it sends on it.
                let (attached, pending) = self.peers.get(&session).map_or((false, false), |p| {
                    (
                        p.by_handle.contains_key(&handle),
                        p.mux.is_pending(remote_id),
                    )
                });
                if !attached {
                    self.reject_or_offer(session, remote_id, dkey);
                } else if pending {
                    self.reject(session, remote_id);
                }
                if attached && opened_now {
                    if let Some(discovery_key) = dkey {
                        self.out.events.push(Event::CoreOpen {
                            handle,
                            discovery_key,
                        });
                    }
                }
                // Our open answered theirs and paired at once: handle what that queued (the
                // pairing, then what the peer sent on the channel meanwhile) now. Left for the
                // peer's next frame, a peer that waits for our sync (as hypercore does once
                // paired) was never answered.
                let queued = match self.peers.get_mut(&session) {
                    Some(peer) => peer.mux.take_events(),
                    None => Vec::new(),
                };
                for event in queued {
                    self.on_mux_event(store, session, event)?;
                }
            }
            None => self.reject_or_offer(session, remote_id, dkey),
        }
        Ok(())
    }

    /// A channel of another protocol: the stream's JS Protomux view decides, if it has one
    /// (applications' protocols, such as Autobase's wakeup); else it is rejected.
    fn offer_to_mux(&mut self, session: u32, remote_id: u64, protocol: &str, id: Option<Vec<u8>>) {
        let viewed = self.peers.get(&session).is_some_and(|p| p.js_mux);
        if viewed && remote_id > 0 {
            self.out.events.push(Event::MuxOpen {
                session,
                remote_id,
                protocol: protocol.to_string(),
                id,
            });
        } else {
            self.reject(session, remote_id);
        }
    }

    fn reject(&mut self, session: u32, remote_id: u64) {
        if let Some(peer) = self.peers.get_mut(&session) {
            peer.reject(remote_id);
        }
    }

    /// A peer's channel we do not take: offered to the guest stores of the stream (the
    /// facade rejects it with `relay_reject` if none does), else rejected.
    fn reject_or_offer(&mut self, session: u32, remote_id: u64, dkey: Option<[u8; 32]>) {
        let hosts = self.peers.get(&session).is_some_and(|p| p.hosts_guests);
        match dkey {
            Some(dkey) if hosts && remote_id > 0 => self.out.events.push(Event::Relay {
                session,
                kind: 0,
                channel: remote_id,
                message_type: 0,
                data: dkey.to_vec(),
            }),
            _ => self.reject(session, remote_id),
        }
    }

    /// Passes an event of a relay channel to the guest store that owns it. True if it was
    /// one (the guest's engine verifies and answers it, not us).
    fn relay_event(&mut self, session: u32, event: &MuxEvent) -> bool {
        let Some(peer) = self.peers.get_mut(&session) else {
            return false;
        };
        let local_id = match event {
            MuxEvent::Opened { local_id, .. }
            | MuxEvent::Message { local_id, .. }
            | MuxEvent::Close { local_id }
            | MuxEvent::Reject { local_id } => *local_id,
            _ => return false,
        };
        if !peer.relays.contains(&local_id) {
            return false;
        }
        let (kind, message_type, data) = match event {
            MuxEvent::Opened { handshake, .. } => (1, 0, handshake.clone()),
            MuxEvent::Message {
                message_type,
                payload,
                ..
            } => (2, *message_type, payload.clone()),
            _ => {
                peer.relays.remove(&local_id);
                (3, 0, Vec::new())
            }
        };
        self.out.events.push(Event::Relay {
            session,
            kind,
            channel: local_id,
            message_type,
            data,
        });
        true
    }

    /// A raw stream's handshake hash and the peer's Noise key, once the handshake is done.
    pub fn handshake(&self, session: u32) -> Option<([u8; 64], Option<[u8; 32]>)> {
        let peer = self.peers.get(&session)?;
        Some((peer.handshake_hash?, peer.remote_public_key()))
    }

    /// Our Noise public key on a raw stream and, once the handshake is done, the peer's.
    pub fn keys(&self, session: u32) -> Option<([u8; 32], Option<[u8; 32]>)> {
        let peer = self.peers.get(&session)?;
        Some((peer.public_key()?, peer.remote_public_key()))
    }

    /// Lets other stores replicate on the raw stream `session` (a core of another
    /// Corestore given this stream): from now on a peer's channel for a core we lack is
    /// offered to them (`Event::Relay` kind 0) before it is rejected.
    pub fn host_guests(&mut self, session: u32) {
        if let Some(peer) = self.peers.get_mut(&session) {
            peer.hosts_guests = true;
        }
    }

    /// The raw stream `session` has a JS Protomux view (`stream.noiseStream.userData`): from
    /// now on the peer's channels of protocols other than hypercore's are offered to it
    /// (`Event::MuxOpen`) instead of being rejected.
    pub fn use_mux(&mut self, session: u32) {
        if let Some(peer) = self.peers.get_mut(&session) {
            peer.js_mux = true;
        }
    }

    /// Opens a channel of the JS Protomux view on the raw stream `session`: its local id
    /// (its events come back as `Event::Relay`), None if the stream is not open.
    pub fn relay_open_protocol(
        &mut self,
        session: u32,
        protocol: &str,
        id: Option<&[u8]>,
        handshake: &[u8],
    ) -> Option<u64> {
        let local_id = self
            .peers
            .get_mut(&session)?
            .open_relay_protocol(protocol, id, handshake);
        self.flush(session);
        local_id
    }

    /// Opens a relay channel for a guest's core on the raw stream `session`; None if the
    /// stream is not open or already has a channel for that core.
    pub fn relay_open(
        &mut self,
        session: u32,
        discovery_key: &[u8; 32],
        handshake: &[u8],
    ) -> Option<u64> {
        let id = self
            .peers
            .get_mut(&session)?
            .open_relay(discovery_key, handshake);
        self.flush(session);
        id
    }

    pub fn relay_send(&mut self, session: u32, channel: u64, message_type: u64, payload: &[u8]) {
        if let Some(peer) = self.peers.get_mut(&session) {
            peer.send_relay(channel, message_type, payload);
            self.flush(session);
        }
    }

    pub fn relay_close(&mut self, session: u32, channel: u64) {
        if let Some(peer) = self.peers.get_mut(&session) {
            peer.close_relay(channel);
            self.flush(session);
        }
    }

    /// No guest took the peer's channel `remote_id` offered with `Event::Relay` kind 0.
    pub fn relay_reject(&mut self, session: u32, remote_id: u64) {
        self.reject(session, remote_id);
        self.flush(session);
    }

    fn on_paired(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handshake: &[u8],
    ) -> Result<()> {
        let Some(peer) = self.peers.get_mut(&session) else {
            return Ok(());
        };
        let Some(hash) = peer.handshake_hash else {
            return Err(Error::new(
                "INVALID_OPERATION",
                "Channel opened before the handshake",
            ));
        };
        let is_initiator = peer.is_initiator;
        let Some(channel) = peer.channels.get_mut(&local_id) else {
            return Ok(());
        };
        let hs = messages::Handshake::decode(handshake).map_err(|e| {
            Error::new(
                "INVALID_CAPABILITY",
                format!("Invalid channel handshake: {e}"),
            )
        })?;
        if !hs.verify(is_initiator, &channel.key, &hash) {
            return Err(Error::new(
                "INVALID_CAPABILITY",
                "Remote sent an invalid replication capability",
            ));
        }
        channel.paired = true;
        let handle = channel.handle;
        let core = store.core(handle)?;
        let sync = sync_message(
            core,
            store.storage(),
            &channel.remote,
            self.allowing_push.contains(&handle),
        );
        let st = core.state();
        let contiguous = st.contiguous_length.min(st.length);
        if contiguous == st.length {
            channel.full_signaled = st.length;
        }
        peer.send(local_id, &Message::Sync(sync));
        if contiguous > 0 {
            peer.send(
                local_id,
                &Message::Range(messages::Range {
                    drop: false,
                    start: 0,
                    length: contiguous,
                }),
            );
        }
        let remote_public_key = peer.remote_public_key();
        self.out.events.push(Event::PeerAdd {
            handle,
            session,
            remote_public_key,
        });
        Ok(())
    }

    fn on_message(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        message: Message,
    ) -> Result<()> {
        let Some(ch) = self
            .peers
            .get_mut(&session)
            .and_then(|p| p.channels.get_mut(&local_id))
            .filter(|c| c.paired)
        else {
            return Ok(());
        };
        ch.stats.received(message.message_type());
        let handle = ch.handle;
        let tries = self.hotswap_tries;
        let handled = self.handle_message(store, session, local_id, handle, message);
        if self.hotswap_tries == tries && self.hotswap_owed.contains(&handle) {
            self.hotswap(store, handle);
        }
        handled
    }

    fn handle_message(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        message: Message,
    ) -> Result<()> {
        match message {
            Message::Sync(m) => self.on_sync(store, session, local_id, handle, m),
            Message::Request(m) => self.on_request(store, session, local_id, handle, m),
            Message::Data(m) => self.on_data(store, session, local_id, handle, *m),
            Message::NoData(m) => {
                if let Some(ch) = self.channel_mut(session, local_id) {
                    match m.reason {
                        NOT_AVAILABLE => ch.stats.not_available_backoffs += 1,
                        INVALID_REQUEST => {
                            // as hypercore: a peer that keeps refusing our requests as
                            // invalid is asked nothing more (before it ends the connection)
                            ch.stats.backoffs += 1;
                            if ch.stats.backoffs >= MAX_BACKOFFS {
                                ch.paused = true;
                            }
                        }
                        _ => {}
                    }
                }
                let refused = self.forget_request(session, local_id, handle, m.request);
                match refused.map(|(kind, _)| kind) {
                    Some(Inflight::Block(i)) => {
                        // The peer does not have it after all: stop asking it, ask others.
                        if let Some(ch) = self.channel_mut(session, local_id) {
                            forget_block(&mut ch.remote, i);
                            ch.swapped.remove(&i);
                        }
                        self.rewant(handle, i);
                        self.release_orphans(session, local_id, handle);
                    }
                    // the block goes back to the wants, asked for again after the upgrade
                    Some(Inflight::UpgradeBlock(i)) => self.rewant(handle, i),
                    Some(Inflight::Seek(bytes, padding)) => {
                        // ask the others; this one again once it tells us something new
                        if let Some(ch) = self.channel_mut(session, local_id) {
                            ch.seek_refused = true;
                        }
                        self.seeks.entry(handle).or_default().push((bytes, padding));
                    }
                    _ => {}
                }
                self.schedule(store, handle);
                Ok(())
            }
            Message::Range(m) => {
                let mut remote_fork = None;
                if let Some(ch) = self.channel_mut(session, local_id) {
                    ch.seek_refused = false;
                    apply_range(ch, &m);
                    remote_fork = Some(ch.remote.fork);
                    check_remote_pages(ch)?;
                }
                if m.start == 0 && !m.drop {
                    let (core, _) = store.core_mut(handle)?;
                    if remote_fork == Some(core.tree().fork)
                        && core.learn_remote_contiguous_length(m.length)
                    {
                        self.out.events.push(Event::RemoteContiguousLength {
                            handle,
                            length: m.length,
                        });
                    }
                }
                self.schedule(store, handle);
                Ok(())
            }
            Message::Bitfield(m) => {
                if let Some(ch) = self.channel_mut(session, local_id) {
                    apply_bitfield(ch, &m);
                    check_remote_pages(ch)?;
                }
                self.schedule(store, handle);
                Ok(())
            }
            // We answer requests as they arrive, so there is nothing to cancel; wants only
            // tune which ranges a peer hears about, and we always announce what we have.
            Message::Extension(m) => {
                if let Some(ch) = self.channel_mut(session, local_id) {
                    if !m.name.is_empty() {
                        ch.last_extension = m.name;
                    }
                    let name = ch.last_extension.clone();
                    if !name.is_empty() {
                        self.out.events.push(Event::Extension {
                            handle,
                            session,
                            name,
                            message: m.message,
                        });
                    }
                }
                Ok(())
            }
            Message::Want(m) => self.on_want(store, session, local_id, handle, m),
            Message::Cancel(_) | Message::Unwant(_) => Ok(()),
        }
    }

    fn channel_mut(&mut self, session: u32, local_id: u64) -> Option<&mut Channel> {
        self.peers.get_mut(&session)?.channels.get_mut(&local_id)
    }

    fn on_sync(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        m: messages::Sync,
    ) -> Result<()> {
        let core = store.core(handle)?;
        let state = core.state();
        let Some(peer) = self.peers.get_mut(&session) else {
            return Ok(());
        };
        let Some(ch) = peer.channels.get_mut(&local_id) else {
            return Ok(());
        };
        ch.remote.synced = true;
        ch.seek_refused = false;
        ch.remote.fork = m.fork;
        ch.remote.length = m.length;
        ch.remote.can_upgrade = m.can_upgrade;
        ch.remote.length_acked = if m.fork == state.fork {
            m.remote_length
        } else {
            0
        };
        ch.remote.has_manifest = m.has_manifest;
        ch.remote.allow_push = m.allow_push;
        let paused = ch.paused;
        // The peer is behind us on our fork: tell it our length, so it can upgrade.
        if m.fork == state.fork && state.length > m.length {
            let sync = sync_message(
                core,
                store.storage(),
                &ch.remote,
                self.allowing_push.contains(&handle),
            );
            peer.send(local_id, &Message::Sync(sync));
        }
        let newer_fork = m.fork > state.fork && m.length > 0;
        let needs_manifest = core.manifest.is_none() && m.has_manifest;
        let may_request = !self.push_only.contains(&handle) && !paused;
        if newer_fork && may_request && !self.inflight_reorgs.contains(&handle) {
            // The writer truncated: ask for its new tree from the start, at its fork.
            let id = peer.next_request_id();
            if let Some(ch) = peer.channels.get_mut(&local_id) {
                ch.inflight.insert(id, Inflight::Reorg);
            }
            peer.send(
                local_id,
                &Message::Request(messages::Request {
                    id,
                    fork: m.fork,
                    upgrade: Some(messages::RequestUpgrade {
                        start: 0,
                        length: m.length,
                    }),
                    // a reader that has only the key learns the manifest with the tree
                    manifest: needs_manifest,
                    ..Default::default()
                }),
            );
            self.inflight_reorgs.insert(handle);
        }
        self.out.events.push(Event::Sync { handle });
        // Asked for once the whole chunk is read: a peer sends its new length (sync) before
        // the range of blocks it has, and a block we wait for past our length then rides
        // on the upgrade request, as hypercore asks for it.
        self.after_call.insert(handle);
        Ok(())
    }

    /// Eager upgrade, as corestore sets up its cores: when a peer on our fork is longer
    /// (or has the manifest we lack), ask it for the signed tree.
    fn maybe_upgrade(&mut self, store: &mut Store, handle: u32) {
        if self.inflight_upgrades.contains(&handle) {
            return;
        }
        let Ok(core) = store.core(handle) else {
            return;
        };
        // push-only: no upgrade unless a forced block needs it
        let push_only = self.push_only.contains(&handle);
        let length = core.state().length;
        if push_only
            && self
                .wants
                .get(&handle)
                .is_none_or(|w| w.forced.iter_from(length).next().is_none())
        {
            return;
        }
        let state = core.state();
        let needs_manifest = core.manifest.is_none();
        for (session, peer) in self.peers.iter_mut() {
            let Some((local_id, ch)) = peer.channel_of(handle) else {
                continue;
            };
            let r = &ch.remote;
            // as hypercore: only a peer that says it can prove its tree to our length, and
            // whose word is about our length now
            let longer = r.synced
                && r.fork == state.fork
                && r.length > state.length
                && r.can_upgrade
                && r.length_acked == state.length;
            // as hypercore, the manifest alone only from an empty peer: a longer one sends
            // it with the upgrade, which asks for it too (one request where two were sent)
            let manifest_only = r.synced && needs_manifest && r.has_manifest && r.length == 0;
            if !(longer || manifest_only) || ch.paused || ch.holding() >= ch.max_inflight {
                continue;
            }
            let (remote_length, remote_has_manifest) = (r.length, r.has_manifest);
            // the first block a local reader waits for in the part the upgrade brings
            let block = match self.wants.get(&handle) {
                Some(w) if longer => {
                    let from = if push_only { &w.forced } else { &w.blocks };
                    from.iter_between(state.length, remote_length)
                        .find(|&i| r.has(i) && !self.inflight_blocks.contains_key(&(handle, i)))
                }
                _ => None,
            };
            let id = peer.next_request_id();
            let upgrade = longer.then(|| messages::RequestUpgrade {
                start: state.length,
                length: remote_length - state.length,
            });
            let request = messages::Request {
                id,
                fork: state.fork,
                // every node below the block: our tree does not reach it yet
                block: block.map(|index| messages::RequestBlock { index, nodes: 0 }),
                upgrade,
                manifest: needs_manifest && remote_has_manifest,
                ..Default::default()
            };
            if let Some(ch) = peer.channels.get_mut(&local_id) {
                let kind = block.map_or(Inflight::Upgrade, Inflight::UpgradeBlock);
                ch.inflight.insert(id, kind);
            }
            peer.send(local_id, &Message::Request(request));
            self.inflight_upgrades.insert(handle);
            if let Some(index) = block {
                *self.inflight_blocks.entry((handle, index)).or_default() += 1;
                self.requested_at.insert((handle, index), now_ms());
                if let Some(w) = self.wants.get_mut(&handle) {
                    w.blocks.remove(index);
                }
            }
            let _ = session;
            return;
        }
    }

    /// Requests wanted blocks from peers that have them, one request per block.
    fn schedule(&mut self, store: &mut Store, handle: u32) {
        self.schedule_blocks(store, handle);
        self.hotswap(store, handle);
    }

    fn schedule_blocks(&mut self, store: &mut Store, handle: u32) {
        // push-only: nothing is asked for but the blocks of get({ force: true })
        let push_only = self.push_only.contains(&handle);
        if push_only && self.wants.get(&handle).is_none_or(|w| w.forced.is_empty()) {
            return;
        }
        if self.seeks.contains_key(&handle) {
            self.schedule_seeks(store, handle);
        }
        let Some(wants) = self.wants.get(&handle) else {
            return;
        };
        if wants.blocks.is_empty() && !wants.all {
            return;
        }
        let length = store.state(handle).map_or(0, |s| s.length);
        if wants.all || wants.blocks.last().is_some_and(|i| i >= length) {
            self.maybe_upgrade(store, handle);
        }
        let Some(wants) = self.wants.get(&handle) else {
            return;
        };
        let Ok(core) = store.core(handle) else {
            return;
        };
        let state = core.state();
        let limit = self.block_limit(handle, &state);
        // Free request slots on the peers that can serve this core: never look at more
        // wanted blocks than can be asked for now (this runs after every block received).
        // the channels that can serve this core now, looked up once for the whole pass
        let serving: Vec<&Channel> = self
            .peers
            .values()
            .filter_map(|p| p.channel_of(handle).map(|(_, ch)| ch))
            .filter(|ch| {
                ch.paired && !ch.paused && ch.remote.synced && ch.remote.fork == state.fork
            })
            .collect();
        let free: usize = serving
            .iter()
            .map(|ch| limit.min(ch.max_inflight).saturating_sub(ch.holding()))
            .sum();
        if free == 0 {
            return;
        }
        // Explicit wants first (a block is removed from them once asked for), then, for a
        // live download(), the blocks from where the last pass stopped. Only blocks some
        // peer can serve now take a request slot: a long run of blocks no peer holds (a
        // sparse writer) must not keep the ones after it waiting forever. Those are asked
        // about with wants instead, once per batch. A pass looks at a bounded number.
        let servable = |i: u64| {
            serving
                .iter()
                .any(|ch| i < ch.remote.length && ch.remote.has(i))
        };
        let mut wanted = Vec::new();
        let mut done = Vec::new();
        let mut unservable: Vec<u64> = Vec::new();
        let explicit = if push_only {
            &wants.forced
        } else {
            &wants.blocks
        };
        // The furthest block asked for, past our length and held by no peer (a reader
        // waiting for the next append): its peers hear a want at once, as in hypercore,
        // not once the scan below reaches it.
        if let Some(last) = explicit.last() {
            if last >= state.length
                && !servable(last)
                && !self.inflight_blocks.contains_key(&(handle, last))
            {
                want_batch_of(&mut unservable, last);
            }
        }
        let from = wants.next_explicit;
        let lowest = explicit.first();
        let mut next_explicit = None;
        let mut looked_last = None;
        for i in explicit
            .iter_from(from)
            .chain(explicit.iter_between(0, from))
            .take(EXPLICIT_SCAN)
        {
            if wanted.len() >= free {
                break;
            }
            looked_last = Some(i);
            if core.has_block(i) {
                done.push(i);
            } else if self.inflight_blocks.contains_key(&(handle, i)) {
                continue;
            } else if servable(i) {
                // Past our length, the upgrade brings it (maybe_upgrade asks for the first
                // such block with it): it takes no request slot, which the blocks after it
                // in the scan may need. When it is the first block wanted at all, the next
                // pass starts here: passes made while the upgrade was on its way moved the
                // start 4096 blocks each, and a download of a whole core began thousands
                // of blocks in. (Not when a block below it is wanted: that one must not
                // wait behind thousands of blocks that wait for the upgrade.)
                if i < state.length || lowest == Some(i) {
                    next_explicit.get_or_insert(i);
                }
                if i < state.length {
                    wanted.push(i);
                }
            } else {
                want_batch_of(&mut unservable, i);
            }
        }
        let mut all_from = None;
        if wants.all && !push_only {
            let mut i = wants.next_all.max(state.contiguous_length);
            let mut first_unservable = None;
            let mut looked = 0usize;
            while wanted.len() < free && i < state.length && looked < MAX_SCAN {
                looked += 1;
                if !core.has_block(i) && !self.inflight_blocks.contains_key(&(handle, i)) {
                    if servable(i) {
                        wanted.push(i);
                    } else {
                        first_unservable.get_or_insert(i);
                        want_batch_of(&mut unservable, i);
                    }
                }
                i += 1;
            }
            // the next pass starts at the first block nobody could serve yet
            all_from = Some(first_unservable.map_or(i, |u| u.min(i)));
        }
        for &i in &unservable {
            want_from_peers(&mut self.peers, handle, i, state.fork);
        }
        let mut unsent_from_all: Option<u64> = None;
        let mut sent_now = Vec::new();
        for index in wanted {
            let mut sent = false;
            for peer in self.peers.values_mut() {
                let Some((local_id, ch)) = peer.channel_of(handle) else {
                    continue;
                };
                let r = &ch.remote;
                if !ch.paired || ch.paused || !r.synced || r.fork != state.fork || !r.has(index) {
                    continue;
                }
                // Blocks past our length wait for the upgrade (asked for below), so that
                // no two requests carry upgrades that race each other.
                if ch.holding() >= limit.min(ch.max_inflight)
                    || index >= r.length
                    || index >= state.length
                {
                    continue;
                }
                let remote_has_manifest = r.has_manifest;
                request_block(
                    peer,
                    local_id,
                    core,
                    store.storage(),
                    remote_has_manifest,
                    index,
                );
                sent = true;
                break;
            }
            if sent {
                *self.inflight_blocks.entry((handle, index)).or_default() += 1;
                self.requested_at.insert((handle, index), now_ms());
                sent_now.push(index);
            } else {
                want_from_peers(&mut self.peers, handle, index, state.fork);
            }
            if !sent && all_from.is_some() && unsent_from_all.is_none_or(|u| index < u) {
                unsent_from_all = Some(index);
            }
        }
        if let Some(w) = self.wants.get_mut(&handle) {
            for i in done {
                w.blocks.remove(i);
                w.forced.remove(i);
                w.reads.remove(i);
            }
            // a forced block stays forced until it is stored: asked again if this fails
            for i in sent_now {
                w.blocks.remove(i);
            }
            if let Some(stop) = all_from {
                // The next pass resumes at the first block no peer could serve yet.
                w.next_all = unsent_from_all.map_or(stop, |u| u.min(stop));
            }
            w.next_explicit = next_explicit
                .or(looked_last.map(|i| i.saturating_add(1)))
                .unwrap_or(0);
        }
    }

    /// A local seek lacks the nodes below some node: ask a peer that holds our whole tree
    /// for a hash proof of that node's first block with a seek proof for the offset (what
    /// hypercore serves: a seek proof rides on a block, hash or upgrade).
    pub fn want_seek(&mut self, store: &mut Store, handle: u32, bytes: u64, padding: u64) {
        let asked = self.peers.values().any(|p| {
            p.channel_of(handle).map(|(_, ch)| ch).is_some_and(|ch| {
                ch.inflight
                    .values()
                    .any(|f| matches!(f, Inflight::Seek(b, pad) if *b == bytes && *pad == padding))
            })
        });
        if asked {
            return;
        }
        let list = self.seeks.entry(handle).or_default();
        if !list.contains(&(bytes, padding)) {
            list.push((bytes, padding));
        }
        self.schedule_seeks(store, handle);
        self.flush_all();
    }

    /// The block requests one channel may keep in flight for this core.
    fn block_limit(&self, handle: u32, state: &crate::core::hypercore::CoreState) -> usize {
        let limit = inflight_limit(state.byte_length, state.length);
        match self.inflight_ranges.get(&handle) {
            Some(&(min, max)) => limit.clamp(min, max),
            None => limit,
        }
    }

    /// hypercore's hotswap: a peer with little in flight asks for blocks another peer has
    /// been slow to send, so one slow peer does not hold up the end of a download. Unlike
    /// hypercore, which takes over any block, a peer takes over only from one at most half
    /// as fast (in ms per block sent; a silent peer grows slower by the ms), and only
    /// requests older than two of its own blocks: a slow peer never takes over a fast one's.
    /// A peer that has sent nothing yet takes over a few requests a second old (two at a
    /// time). A pass too soon after the last one is owed, not dropped: a block given up
    /// by its taker (an orphaned parked answer) may have nothing else to ask for it again.
    fn hotswap(&mut self, store: &mut Store, handle: u32) {
        self.hotswap_tries += 1;
        self.hotswap_owed.remove(&handle);
        if self.push_only.contains(&handle) {
            return;
        }
        let keys = (handle, 0)..=(handle, u64::MAX);
        if self.inflight_blocks.range(keys).next().is_none() {
            return;
        }
        let now = now_ms();
        match self.hotswapped_at.get(&handle) {
            Some(&at) if now.saturating_sub(at) < HOTSWAP_INTERVAL_MS => {
                self.hotswap_owed.insert(handle);
                return;
            }
            _ => {}
        }
        // counted from here, one peer or many: this runs after every block received
        self.hotswapped_at.insert(handle, now);
        let Ok(core) = store.core(handle) else {
            return;
        };
        let state = core.state();
        let limit = self.block_limit(handle, &state);
        // (session, channel, pace) of every channel that serves this core now
        let serving: Vec<(u32, u64, Option<u64>)> = self
            .peers
            .iter()
            .filter_map(|(&session, peer)| {
                let (local_id, ch) = peer.channel_of(handle)?;
                let serves =
                    ch.paired && !ch.paused && ch.remote.synced && ch.remote.fork == state.fork;
                serves.then_some((session, local_id, ch.pace_ms(now)))
            })
            .collect();
        if serving.len() < 2 {
            return;
        }
        for &(session, local_id, pace) in &serving {
            let Some(ch) = self.channel_mut(session, local_id) else {
                continue;
            };
            // idle: fewer than half the requests it may have in flight
            let idle = HOTSWAP_IDLE.max(limit.min(ch.max_inflight) / 2);
            if ch.holding() >= idle {
                continue;
            }
            let mine: HashSet<u64> = ch.blocks_in_flight().collect();
            let (length, has_manifest) = (ch.remote.length, ch.remote.has_manifest);
            let mut picks: Vec<(u8, u64, std::cmp::Reverse<u64>)> = Vec::new();
            for &(other, other_id, other_pace) in &serving {
                if (other, other_id) == (session, local_id) {
                    continue;
                }
                let Some(theirs) = self
                    .peers
                    .get(&other)
                    .and_then(|p| p.channels.get(&other_id))
                else {
                    continue;
                };
                for i in theirs.blocks_in_flight().take(HOTSWAP_SCAN) {
                    let copies = self.inflight_blocks.get(&(handle, i)).copied().unwrap_or(0);
                    let Some(&at) = self.requested_at.get(&(handle, i)) else {
                        continue;
                    };
                    let age = now.saturating_sub(at);
                    let takes = match pace {
                        Some(ms) => {
                            // a peer that never answered is as slow as this request is old
                            ms.saturating_mul(2) <= other_pace.unwrap_or(age)
                                && age >= ms.saturating_mul(2).max(HOTSWAP_MIN_AGE_MS)
                        }
                        None => age >= HOTSWAP_PROBE_AGE_MS,
                    };
                    if takes
                        && copies < HOTSWAP_COPIES
                        && i < length
                        && i < state.length
                        && !mine.contains(&i)
                    {
                        picks.push((copies, at, std::cmp::Reverse(i)));
                    }
                }
            }
            let Some(peer) = self.peers.get_mut(&session) else {
                continue;
            };
            let Some(ch) = peer.channels.get(&local_id) else {
                continue;
            };
            // blocks asked of the fewest peers first, then the longest waiting, then the
            // last: the slow peer is likely to send the first ones before our copy comes
            picks.retain(|&(_, _, std::cmp::Reverse(i))| ch.remote.has(i));
            picks.sort_unstable();
            picks.dedup_by_key(|p| p.2 .0);
            let room = match pace {
                Some(_) => idle.saturating_sub(ch.holding()),
                None => HOTSWAP_PROBES.saturating_sub(ch.swapped.len()),
            };
            picks.truncate(room);
            for &(_, _, std::cmp::Reverse(index)) in &picks {
                request_block(peer, local_id, core, store.storage(), has_manifest, index);
                *self.inflight_blocks.entry((handle, index)).or_default() += 1;
            }
            if let Some(ch) = peer.channels.get_mut(&local_id) {
                ch.stats.hotswaps += picks.len() as u64;
                ch.swapped.extend(picks.iter().map(|&(_, _, i)| (i.0, now)));
            }
        }
    }

    /// A block came: the requests for it still in flight on other peers (hotswaps) are
    /// cancelled.
    fn cancel_block(&mut self, handle: u32, index: u64) {
        if self.inflight_blocks.remove(&(handle, index)).is_none() {
            return;
        }
        let mut orphans = Vec::new();
        for peer in self.peers.values_mut() {
            let Some((local_id, ch)) = peer.channel_of_mut(handle) else {
                continue;
            };
            ch.swapped.remove(&index);
            let ids: Vec<u64> = ch
                .inflight
                .iter()
                .filter(|(_, f)| matches!(f, Inflight::Block(i) if *i == index))
                .map(|(&id, _)| id)
                .collect();
            for id in &ids {
                ch.forget(*id);
            }
            if !ids.is_empty() {
                // answers parked here for what the cancelled request would have brought
                orphans.extend(ch.coming.orphans());
            }
            for id in ids {
                peer.send(local_id, &Message::Cancel(messages::Cancel { request: id }));
            }
        }
        for o in orphans {
            self.rewant(handle, o);
        }
    }

    fn schedule_seeks(&mut self, store: &mut Store, handle: u32) {
        let Some(list) = self.seeks.remove(&handle) else {
            return;
        };
        let Ok(core) = store.core(handle) else {
            return;
        };
        let state = core.state();
        let mut left = Vec::new();
        for (bytes, padding) in list {
            let node = match core.seek_local(store.storage(), bytes, padding) {
                Ok(crate::core::merkle::Seek::Missing(node)) => node,
                Ok(crate::core::merkle::Seek::Beyond) => {
                    left.push((bytes, padding)); // waits for the tree to grow
                    continue;
                }
                _ => continue, // found locally (or unreadable): nothing to ask
            };
            let (first, last) = crate::core::flat_tree::span(node);
            let mut sent = false;
            for peer in self.peers.values_mut() {
                let Some((local_id, ch)) = peer.channel_of(handle) else {
                    continue;
                };
                let r = &ch.remote;
                if !ch.paired
                    || ch.paused
                    || ch.seek_refused
                    || !r.synced
                    || r.fork != state.fork
                    || r.length < state.length
                {
                    continue;
                }
                // the hash proof must be of a block the peer holds (a sparse peer has the
                // nodes of its blocks' paths), anywhere below the node
                let Some(block) = (first / 2..=last / 2).take(1 << 16).find(|&i| r.has(i)) else {
                    continue;
                };
                let nodes =
                    proof::missing_nodes(&core.nodes(store.storage()), 2 * block, state.length)
                        .unwrap_or(0);
                let id = peer.next_request_id();
                if let Some(ch) = peer.channels.get_mut(&local_id) {
                    ch.inflight.insert(id, Inflight::Seek(bytes, padding));
                }
                peer.send(
                    local_id,
                    &Message::Request(messages::Request {
                        id,
                        fork: state.fork,
                        hash: Some(messages::RequestBlock {
                            index: 2 * block,
                            nodes,
                        }),
                        seek: Some(messages::RequestSeek { bytes, padding }),
                        ..Default::default()
                    }),
                );
                sent = true;
                break;
            }
            if !sent {
                // no peer is known to hold a block below the node: ask what they hold there
                want_from_peers(&mut self.peers, handle, first / 2, state.fork);
                left.push((bytes, padding));
            }
        }
        if !left.is_empty() {
            self.seeks.insert(handle, left);
        }
    }

    /// The peer asks what we hold of a span (hypercore's want): the contiguous range when
    /// it covers the span, else our bitfield there.
    fn on_want(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        m: messages::Want,
    ) -> Result<()> {
        let core = store.core(handle)?;
        let state = core.state();
        let contig = state.contiguous_length.min(state.length);
        let Some(peer) = self.peers.get_mut(&session) else {
            return Ok(());
        };
        let end = m.start.saturating_add(m.length);
        if end < contig || state.length == contig || (m.any && m.start < contig) {
            peer.send(
                local_id,
                &Message::Range(messages::Range {
                    drop: false,
                    start: 0,
                    length: contig,
                }),
            );
            return Ok(());
        }
        let end = end.min(state.length);
        if m.any {
            if let Some(bit) = (m.start..end).find(|&i| core.has_block(i)) {
                peer.send(
                    local_id,
                    &Message::Range(messages::Range {
                        drop: false,
                        start: bit,
                        length: 1,
                    }),
                );
            }
            return Ok(());
        }
        let mut at = m.start - m.start % 32;
        while at < end {
            let stop = (at + BITFIELD_CHUNK).min(end);
            let words = (stop - at).div_ceil(32);
            let mut bitfield = vec![0u32; words as usize];
            for i in at..stop {
                if core.has_block(i) {
                    bitfield[((i - at) / 32) as usize] |= 1 << ((i - at) % 32);
                }
            }
            // Sent even when empty, as hypercore does: the peer learns we lack these
            // blocks instead of waiting on us.
            peer.send(
                local_id,
                &Message::Bitfield(messages::Bitfield {
                    start: at,
                    bitfield,
                }),
            );
            at = stop;
        }
        Ok(())
    }

    fn on_request(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        m: messages::Request,
    ) -> Result<()> {
        let core = store.core(handle)?;
        let m = self.after_pushes(session, local_id, m);
        let reply = answer_request(core, store, &m);
        if let Message::NoData(nd) = &reply {
            if nd.reason == INVALID_REQUEST {
                // As hypercore: a peer that keeps asking for proofs that cannot exist is
                // hostile or broken, and its connection ends at the 64th.
                if let Some(ch) = self.channel_mut(session, local_id) {
                    ch.stats.invalid_requests += 1;
                    if ch.stats.invalid_requests >= MAX_INVALID_REQUESTS {
                        return Err(Error::new(
                            "INVALID_OPERATION",
                            format!("The peer made {MAX_INVALID_REQUESTS} invalid requests"),
                        ));
                    }
                }
            }
        }
        if let Message::Data(data) = &reply {
            if let (Some(u), Some(ch)) = (&data.upgrade, self.channel_mut(session, local_id)) {
                if ch.remote.allow_push {
                    ch.pushed_length = ch.pushed_length.max(u.start + u.length);
                }
            }
            if let Some(block) = &data.block {
                self.out.events.push(Event::Upload {
                    handle,
                    index: block.index,
                    bytes: block.value.len() as u64,
                    session,
                });
            }
        }
        if let Some(peer) = self.peers.get_mut(&session) {
            peer.send(local_id, &reply);
        }
        Ok(())
    }

    /// As hypercore, for a peer we push to: an upgrade it asks for past what we pushed it
    /// continues from there (messages arrive in order, so it has that by then).
    fn after_pushes(
        &mut self,
        session: u32,
        local_id: u64,
        mut m: messages::Request,
    ) -> messages::Request {
        let Some(ch) = self.channel_mut(session, local_id) else {
            return m;
        };
        let pushed = ch.pushed_length;
        if !ch.remote.allow_push || pushed == 0 {
            return m;
        }
        if let Some(u) = m.upgrade.clone() {
            let end = u.start.saturating_add(u.length);
            if u.start < pushed && pushed < end {
                m.upgrade = Some(messages::RequestUpgrade {
                    start: pushed,
                    length: end - pushed,
                });
            }
        }
        m
    }

    /// A requested block that did not arrive goes back to the wanted ones.
    fn rewant(&mut self, handle: u32, index: u64) {
        let w = self.wants.entry(handle).or_default();
        if w.all && index < w.next_all {
            w.next_all = index;
        } else {
            w.blocks.insert(index);
        }
    }

    /// A request is answered or refused: it is in flight no more. What it was for, and
    /// whether it asked for fewer nodes because another one in flight brings the rest
    /// (docs/DECISIONS.md §40).
    fn forget_request(
        &mut self,
        session: u32,
        local_id: u64,
        handle: u32,
        request: u64,
    ) -> Option<(Inflight, bool)> {
        let (inflight, relies) = self
            .channel_mut(session, local_id)
            .and_then(|ch| ch.forget(request))?;
        match &inflight {
            Inflight::Block(i) => {
                release(&mut self.inflight_blocks, handle, *i);
            }
            Inflight::Upgrade => {
                self.inflight_upgrades.remove(&handle);
            }
            Inflight::UpgradeBlock(i) => {
                self.inflight_upgrades.remove(&handle);
                release(&mut self.inflight_blocks, handle, *i);
            }
            Inflight::Reorg => {
                self.inflight_reorgs.remove(&handle);
            }
            Inflight::Seek(..) => {}
        }
        Some((inflight, relies))
    }

    fn on_data(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        m: messages::Data,
    ) -> Result<()> {
        let answered = self.on_answer(store, session, local_id, handle, m);
        let unparked = self.unpark(store, session, local_id, handle);
        answered.and(unparked)
    }

    fn on_answer(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        m: messages::Data,
    ) -> Result<()> {
        // A peer's whole tree from 0 unasked: a conflict check (ours answered, or a peer that
        // found a conflict telling us); always looked at, as hypercore does.
        if m.request == 0 && m.upgrade.as_ref().is_some_and(|u| u.start == 0) {
            if self.check_conflict(store, session, local_id, handle, &m)? {
                return Ok(());
            }
            let was_paused = self
                .channel_mut(session, local_id)
                .is_some_and(|ch| std::mem::replace(&mut ch.paused, false));
            if was_paused {
                // asked of it again: what waited while it was paused
                self.maybe_upgrade(store, handle);
                self.schedule(store, handle);
            }
            // our tree agrees and it brings nothing past it (a check's answer): done. A
            // push to a peer that had nothing also starts at 0, and goes on below.
            let length = store.state(handle).map_or(0, |st| st.length);
            if m.upgrade
                .as_ref()
                .is_some_and(|u| u.start + u.length <= length)
            {
                return Ok(());
            }
        }
        // Only answers to our own requests are taken, and blocks pushed unasked (request 0)
        // to a core that allows push; anything else is dropped unread.
        let (kind, relies) = match self.forget_request(session, local_id, handle, m.request) {
            Some(asked) => asked,
            None if m.request == 0 && self.allowing_push.contains(&handle) => match &m.block {
                Some(b) => (Inflight::Block(b.index), false),
                None => (Inflight::Upgrade, false),
            },
            None => return Ok(()),
        };
        if let Inflight::UpgradeBlock(i) = kind {
            // wanted until it is stored: the answer may carry the upgrade alone
            self.rewant(handle, i);
        }
        if let (true, Inflight::Block(index), Some(end)) = (relies, &kind, parkable_end(&m)) {
            // asked with fewer nodes because an earlier answer brings the rest, and that
            // answer has not come yet: this one waits for it
            let core = store.core(handle)?;
            if core.nodes(store.storage()).node(end)?.is_none() {
                let index = *index;
                let nodes = m.block.as_ref().map_or(0, |b| b.nodes.len() as u64);
                let parked = Parked {
                    id: m.request,
                    index,
                    end,
                    data: m,
                };
                let kept = self
                    .channel_mut(session, local_id)
                    .is_some_and(|ch| ch.coming.park(parked, nodes));
                if !kept {
                    self.rewant(handle, index);
                    self.schedule(store, handle);
                }
                return Ok(());
            }
        }
        self.verify_answer(store, session, local_id, handle, kind, m)
    }

    /// The parked answers on a channel whose end node came are taken now, lowest block
    /// first; those whose end node nothing brings any more are asked for again.
    fn unpark(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
    ) -> Result<()> {
        loop {
            let Some(ch) = self.channel_mut(session, local_id) else {
                return Ok(());
            };
            if !ch.coming.has_parked() {
                return Ok(());
            }
            let mut took = false;
            let mut parked = ch.coming.take_parked().into_iter();
            while let Some(p) = parked.next() {
                let held = store
                    .core(handle)
                    .and_then(|core| core.nodes(store.storage()).node(p.end));
                let (id, index) = (p.id, p.index);
                let taken = match held {
                    Ok(Some(_)) => {
                        took = true;
                        let kind = Inflight::Block(index);
                        let taken =
                            self.verify_answer(store, session, local_id, handle, kind, p.data);
                        // what it brings is held now, or will not be
                        if let Some(ch) = self.channel_mut(session, local_id) {
                            ch.coming.remove(id);
                        }
                        taken
                    }
                    Ok(None) => {
                        if let Some(ch) = self.channel_mut(session, local_id) {
                            ch.coming.repark(p);
                        }
                        continue;
                    }
                    Err(e) => {
                        self.give_up_parked(session, local_id, handle, id, index);
                        Err(e)
                    }
                };
                if let Err(e) = taken {
                    for p in parked {
                        self.give_up_parked(session, local_id, handle, p.id, p.index);
                    }
                    self.release_orphans(session, local_id, handle);
                    self.schedule(store, handle);
                    return Err(e);
                }
            }
            if self.release_orphans(session, local_id, handle) {
                self.schedule(store, handle);
            }
            if !took {
                return Ok(());
            }
        }
    }

    /// A parked answer is dropped: what it brings is no longer coming, its block is wanted
    /// again.
    fn give_up_parked(&mut self, session: u32, local_id: u64, handle: u32, id: u64, index: u64) {
        if let Some(ch) = self.channel_mut(session, local_id) {
            ch.coming.remove(id);
        }
        self.rewant(handle, index);
    }

    /// The blocks of answers parked on a channel that nothing in flight completes any
    /// more are wanted again: whether there were any.
    fn release_orphans(&mut self, session: u32, local_id: u64, handle: u32) -> bool {
        let orphans = self
            .channel_mut(session, local_id)
            .map(|ch| ch.coming.orphans())
            .unwrap_or_default();
        for &index in &orphans {
            self.rewant(handle, index);
        }
        !orphans.is_empty()
    }

    /// Verifies an answer and takes what it brings.
    fn verify_answer(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        kind: Inflight,
        m: messages::Data,
    ) -> Result<()> {
        let pushed = m.request == 0;
        let leaf = m.block.as_ref().and_then(|b| b.leaf);
        let proof = into_proof(m);
        if let Inflight::Reorg = kind {
            return self.on_reorg_data(store, session, local_id, handle, &proof);
        }
        let (core, storage) = store.core_mut(handle)?;
        // A manifest the peer sends is kept only with a proof that verifies against it.
        let learned = match (&core.manifest, &proof.manifest) {
            (Some(_), _) => None,
            (None, Some(manifest)) => Some(checked_manifest(core, manifest)?),
            (None, None) => return Ok(()),
        };
        let Some(manifest) = core.manifest.clone().or_else(|| learned.clone()) else {
            return Ok(());
        };
        if proof.fork != core.tree().fork {
            // A different fork: truncation on the writer. Not handled yet; ignore.
            return Ok(());
        }
        let stale = proof
            .upgrade
            .as_ref()
            .is_some_and(|u| u.start < core.tree().length);
        let checked =
            proof::verify_owned(core.tree(), &core.nodes(storage), &manifest, proof, leaf);
        let verified = match checked {
            Ok(v) => v,
            // An answer or a push that raced another upgrade (a push, or another peer's):
            // its upgrade starts below our length now, which this verifier does not take.
            // Nothing wrong with the peer: dropped, and what was asked is asked again.
            Err(_) if stale => {
                match kind {
                    Inflight::Block(i) if !pushed => self.rewant(handle, i),
                    Inflight::Seek(bytes, padding) => {
                        self.seeks.entry(handle).or_default().push((bytes, padding))
                    }
                    _ => {}
                }
                self.maybe_upgrade(store, handle);
                self.schedule(store, handle);
                return Ok(());
            }
            Err(e) => {
                let length = core.tree().length;
                return self.on_invalid_data(store, session, local_id, handle, kind, length, e);
            }
        };
        if learned.is_some() {
            core.adopt_manifest(storage, manifest)?;
            self.out.events.push(Event::Manifest { handle });
            // as hypercore's manifest hook (onupgrade): the peers hear at once, before what
            // the proof brings (a second sync follows an upgrade)
            self.announce(store, handle, None);
        }
        let (core, _) = store.core_mut(handle)?;
        if let Inflight::Seek(..) = kind {
            // the seek's nodes are in: waiting seeks look again
            self.out.events.push(Event::Sync { handle });
        }
        let block_len = verified.block.as_ref().map(|(_, v)| v.len() as u64);
        // a block a read waits for goes to it from here: this copy replaces reading it back
        let read_value = verified.block.as_ref().and_then(|(index, value)| {
            let w = self.wants.get(&handle)?;
            w.reads.contains(*index).then(|| {
                let mut v = Vec::with_capacity(value.len() + 8);
                v.extend_from_slice(value);
                v
            })
        });
        let applied = core.apply_verified(verified);
        // The read gets its block first: an upgrade that came with it (a get of a core we
        // did not know the length of) must not wake the get to read the block back.
        if let (Some(index), Some(value)) = (applied.block, read_value) {
            self.out.events.push(Event::Block {
                handle,
                index,
                value,
            });
        }
        if applied.upgraded_to.is_some() {
            self.out.events.push(Event::Append { handle });
            self.announce(store, handle, None);
        }
        if let Some(index) = applied.block {
            let requested_at = self.requested_at.remove(&(handle, index)).unwrap_or(0);
            if let (Some(ch), true) = (self.channel_mut(session, local_id), requested_at > 0) {
                ch.note_answer(index, requested_at, now_ms());
            }
            self.cancel_block(handle, index);
            self.out.events.push(Event::Download {
                handle,
                index,
                bytes: block_len.unwrap_or(0),
                session,
                requested_at,
            });
            self.announce(store, handle, Some((session, index)));
            if let Some(w) = self.wants.get_mut(&handle) {
                w.blocks.remove(index);
                w.forced.remove(index);
                w.reads.remove(index);
            }
        }
        // What this answer freed is asked for again once the call's messages are read:
        // the requests leave then anyway, and one pass fills the slots of every answer the
        // call brought (a pass per answer was a fifth of a downloading reader's time).
        self.after_call.insert(handle);
        Ok(())
    }

    /// Data that did not verify: as hypercore, the stream stays and the peer is paused
    /// (asked nothing more), the core's sessions hear a 'verification-error', what was
    /// asked of it is asked of others, and, in case the peer's tree forked from ours (two
    /// writers of one key), we ask for its whole tree to check for a conflict.
    #[allow(clippy::too_many_arguments)]
    fn on_invalid_data(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        kind: Inflight,
        local_length: u64,
        e: Error,
    ) -> Result<()> {
        match kind {
            Inflight::Block(i) => self.rewant(handle, i),
            Inflight::Seek(bytes, padding) => {
                self.seeks.entry(handle).or_default().push((bytes, padding))
            }
            Inflight::Upgrade | Inflight::UpgradeBlock(_) | Inflight::Reorg => {}
        }
        self.out.events.push(Event::VerificationError {
            handle,
            session,
            code: e.code.to_string(),
            message: e.to_string(),
        });
        let Some(peer) = self.peers.get_mut(&session) else {
            return Ok(());
        };
        let Some(ch) = peer.channels.get_mut(&local_id) else {
            return Ok(());
        };
        ch.stats.invalid_data += 1;
        ch.paused = true;
        let (length, fork) = (local_length.min(ch.remote.length), ch.remote.fork);
        if e.code != "INVALID_OPERATION" && length > 0 {
            peer.send(
                local_id,
                &Message::Request(messages::Request {
                    id: 0,
                    fork,
                    upgrade: Some(messages::RequestUpgrade { start: 0, length }),
                    ..Default::default()
                }),
            );
        }
        self.schedule(store, handle);
        Ok(())
    }

    /// hypercore's checkConflict: a peer's tree from 0 to `length` (a data message with
    /// request 0). True when it is handled here (a conflict, or a proof that does not
    /// verify); false when it agrees with ours or cannot be compared (then the peer is
    /// unpaused and the message is treated as any other).
    fn check_conflict(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        m: &messages::Data,
    ) -> Result<bool> {
        let Some(length) = m.upgrade.as_ref().map(|u| u.length) else {
            return Ok(false);
        };
        let (core, storage) = store.core_mut(handle)?;
        let state = core.state();
        if state.length < length || m.fork != state.fork || length == 0 {
            return Ok(false); // out of date: ignored for now, as hypercore
        }
        let Some(manifest) = core.manifest.clone() else {
            return Ok(false);
        };
        // the peer's tree verified on its own, from nothing
        let empty = crate::core::merkle::MerkleTree {
            roots: Vec::new(),
            length: 0,
            byte_length: 0,
            fork: m.fork,
        };
        let proof = proof_from_data(m);
        let remote = match proof::verify_proof(&empty, &core.nodes(storage), &manifest, &proof) {
            Ok(v) => v.tree.map(|t| t.hash()),
            Err(_) => return Ok(true),
        };
        let Some(remote) = remote else {
            return Ok(true);
        };
        if core.tree_hash(storage, length)? == remote {
            return Ok(false);
        }
        self.on_conflict(store, handle, length, m.fork);
        let _ = (session, local_id);
        Ok(true)
    }

    /// Two valid trees at `length`: the core stops asking peers for anything, tells each
    /// peer on its fork what its own tree is (so they find the conflict too) and closes its
    /// channels; the facade emits 'conflict' and closes the core's sessions.
    fn on_conflict(&mut self, store: &mut Store, handle: u32, length: u64, fork: u64) {
        if !self.frozen.insert(handle) {
            return;
        }
        self.out.events.push(Event::Conflict {
            handle,
            length,
            fork,
        });
        let Ok(core) = store.core(handle) else {
            return;
        };
        let state = core.state();
        let sessions: Vec<u32> = self.peers.keys().copied().collect();
        for session in sessions {
            let Some(peer) = self.peers.get_mut(&session) else {
                continue;
            };
            let Some((local_id, ch)) = peer.channel_of(handle) else {
                continue;
            };
            let r = &ch.remote;
            if ch.paired && r.length > 0 && r.fork == state.fork {
                let ours = messages::Request {
                    id: 0,
                    fork: state.fork,
                    upgrade: Some(messages::RequestUpgrade {
                        start: 0,
                        length: state.length.min(r.length),
                    }),
                    ..Default::default()
                };
                let reply = answer_request(core, store, &ours);
                peer.send(local_id, &reply);
            }
            peer.close_channel(local_id);
        }
        let ids: Vec<(u32, u64)> = self
            .peers
            .iter()
            .filter_map(|(s, p)| p.by_handle.get(&handle).map(|id| (*s, *id)))
            .collect();
        for (session, local_id) in ids {
            self.drop_channel(store, session, local_id);
        }
    }

    /// A step of adopting the peer's newer fork: the first proof gives its tree, hash
    /// proofs narrow down where it parts from ours, then the reorg is applied.
    fn on_reorg_data(
        &mut self,
        store: &mut Store,
        session: u32,
        local_id: u64,
        handle: u32,
        proof: &Proof,
    ) -> Result<()> {
        let (core, storage) = store.core_mut(handle)?;
        let learned = match (&core.manifest, &proof.manifest) {
            (None, Some(manifest)) => Some(checked_manifest(core, manifest)?),
            _ => None,
        };
        let Some(manifest) = core.manifest.clone().or_else(|| learned.clone()) else {
            return Ok(());
        };
        let pending = self
            .channel_mut(session, local_id)
            .and_then(|ch| ch.reorg.take());
        let reorg = match pending {
            Some(mut reorg) => {
                reorg.update(&core.nodes(storage), proof)?;
                reorg
            }
            None => {
                if proof.fork <= core.tree().fork {
                    return Ok(());
                }
                proof::verify_reorg(core.tree(), &core.nodes(storage), &manifest, proof)?
            }
        };
        if learned.is_some() {
            core.adopt_manifest(storage, manifest)?;
            self.out.events.push(Event::Manifest { handle });
        }
        if let Some(want) = reorg.want {
            let fork = reorg.tree.fork;
            let Some(peer) = self.peers.get_mut(&session) else {
                return Ok(());
            };
            let id = peer.next_request_id();
            if let Some(ch) = peer.channels.get_mut(&local_id) {
                ch.inflight.insert(id, Inflight::Reorg);
                ch.reorg = Some(reorg);
            }
            peer.send(
                local_id,
                &Message::Request(messages::Request {
                    id,
                    fork,
                    hash: Some(messages::RequestBlock {
                        index: 2 * want.start,
                        nodes: want.nodes,
                    }),
                    ..Default::default()
                }),
            );
            self.inflight_reorgs.insert(handle);
            return Ok(());
        }
        let new_length = reorg.tree.length;
        let old_length = core.tree().length;
        let ancestors = core.apply_reorg(storage, reorg)?;
        self.out.events.push(Event::Truncate { handle, ancestors });
        if old_length > ancestors {
            // as hypercore: peers hear that the blocks past the ancestors are gone
            self.broadcast_range(
                handle,
                messages::Range {
                    drop: true,
                    start: ancestors,
                    length: old_length - ancestors,
                },
            );
        }
        if new_length > ancestors {
            self.out.events.push(Event::Append { handle });
        }
        self.announce(store, handle, None);
        self.maybe_upgrade(store, handle);
        self.schedule(store, handle);
        Ok(())
    }

    /// Tells the peers of a core what changed locally: our length (sync) after an append or
    /// upgrade, or one new block (range) to the peers other than the one it came from.
    fn announce(&mut self, store: &Store, handle: u32, block: Option<(u32, u64)>) {
        let Ok(core) = store.core(handle) else {
            return;
        };
        let state = core.state();
        let full = state.length > 0 && state.contiguous_length == state.length;
        for (&session, peer) in self.peers.iter_mut() {
            let Some((local_id, ch)) = peer.channel_of_mut(handle) else {
                continue;
            };
            if !ch.paired {
                continue;
            }
            // truncated: growing back to full must be announced again
            ch.full_signaled = ch.full_signaled.min(state.length);
            let ch = &*ch;
            match block {
                None => {
                    let sync = sync_message(
                        core,
                        store.storage(),
                        &ch.remote,
                        self.allowing_push.contains(&handle),
                    );
                    peer.send(local_id, &Message::Sync(sync));
                    if full {
                        if let Some(ch) = peer.channels.get_mut(&local_id) {
                            ch.full_signaled = state.length;
                        }
                        peer.send(
                            local_id,
                            &Message::Range(messages::Range {
                                drop: false,
                                start: 0,
                                length: state.length,
                            }),
                        );
                    }
                }
                Some(_) if full && ch.full_signaled < state.length => {
                    // Fully contiguous now: every peer, the sender too, hears it once.
                    if let Some(ch) = peer.channels.get_mut(&local_id) {
                        ch.full_signaled = state.length;
                    }
                    peer.send(
                        local_id,
                        &Message::Range(messages::Range {
                            drop: false,
                            start: 0,
                            length: state.length,
                        }),
                    );
                }
                Some((from, index)) if from != session => {
                    peer.send(
                        local_id,
                        &Message::Range(messages::Range {
                            drop: false,
                            start: index,
                            length: 1,
                        }),
                    );
                }
                Some(_) => {}
            }
        }
    }

    fn broadcast_range(&mut self, handle: u32, range: messages::Range) {
        for peer in self.peers.values_mut() {
            let Some(&local_id) = peer.by_handle.get(&handle) else {
                continue;
            };
            if peer.channels.get(&local_id).is_some_and(|ch| ch.paired) {
                peer.send(local_id, &Message::Range(range.clone()));
            }
        }
    }

    /// After a local append or truncate: every peer hears the new length.
    pub fn on_local_change(&mut self, store: &Store, handle: u32) {
        self.announce(store, handle, None);
        self.flush_all();
    }

    /// After a local clear or sweep: every peer hears that the blocks of each [start, end)
    /// are gone (a range with drop), as hypercore's peers do, so none asks us for them.
    pub fn on_clear(&mut self, handle: u32, cleared: &[(u64, u64)]) {
        let Some(first) = cleared.iter().map(|&(start, _)| start).min() else {
            return;
        };
        for peer in self.peers.values_mut() {
            if let Some((_, ch)) = peer.channel_of_mut(handle) {
                ch.full_signaled = ch.full_signaled.min(first);
            }
        }
        for &(start, end) in cleared {
            self.broadcast_range(
                handle,
                messages::Range {
                    drop: true,
                    start,
                    length: end - start,
                },
            );
        }
        self.flush_all();
    }

    /// Local readers want blocks [start, end): request them from peers that have them.
    /// `end` None: every block from `start` on, including those appended later.
    /// `force`: asked for even in push-only mode (hypercore's get({ force: true })).
    /// `read`: a local read waits for them (`Event::Block` brings each).
    pub fn want(
        &mut self,
        store: &mut Store,
        handle: u32,
        start: u64,
        end: Option<u64>,
        force: bool,
        read: bool,
    ) {
        let wants = self.wants.entry(handle).or_default();
        match end {
            None => wants.all = true,
            Some(end) => {
                wants.blocks.insert_range(start, end);
                if force {
                    wants.forced.insert_range(start, end);
                }
                if read {
                    wants.reads.insert_range(start, end);
                }
            }
        }
        self.schedule(store, handle);
        self.flush_all();
    }

    pub fn unwant(&mut self, handle: u32, start: u64, end: u64) {
        if let Some(w) = self.wants.get_mut(&handle) {
            w.blocks.remove_range(start, end);
            w.forced.remove_range(start, end);
            w.reads.remove_range(start, end);
        }
    }

    /// update(): 0 when no peer knows more than we do, 1 when an upgrade is on its way,
    /// 2 when peers are attached but have not synced yet.
    pub fn update(&mut self, store: &mut Store, handle: u32) -> u32 {
        self.maybe_upgrade(store, handle);
        self.flush_all();
        if self.inflight_upgrades.contains(&handle) {
            return 1;
        }
        let Ok(core) = store.core(handle) else {
            return 0;
        };
        let state = core.state();
        // Waited for: a peer not synced yet, and (as hypercore) a longer peer on our fork
        // whose last sync was about another length of ours: its answer to our sync says
        // whether it can upgrade us; and, while we are empty, any longer peer (its first
        // sync, sent before it heard ours, cannot say it can upgrade us yet).
        let unsynced = self.peers.values().any(|p| {
            p.channel_of(handle).map(|(_, ch)| ch).is_some_and(|ch| {
                let r = &ch.remote;
                !r.synced
                    || (!ch.paused && state.length == 0 && r.length > 0)
                    || (!ch.paused
                        && r.fork == state.fork
                        && r.length > state.length
                        && r.length_acked != state.length)
            }) || (!p.is_open())
        });
        if unsynced {
            2
        } else {
            0
        }
    }

    /// What the peer on `session` told us about a core (hypercore's public Peer members):
    /// its length, fork, contiguous length (capped at its length), whether it can upgrade
    /// us and accepts pushes. None when that peer has no paired channel for the core.
    pub fn peer_info(&self, handle: u32, session: u32) -> Option<PeerInfo> {
        let peer = self.peers.get(&session)?;
        let (_, ch) = peer.channel_of(handle)?;
        if !ch.paired {
            return None;
        }
        let r = &ch.remote;
        Some(PeerInfo {
            length: r.length,
            fork: r.fork,
            contiguous_length: r.contiguous.min(r.length),
            can_upgrade: r.can_upgrade,
            allow_push: r.allow_push,
            inflight: u32::try_from(ch.inflight.len()).unwrap_or(u32::MAX),
        })
    }

    /// hypercore's `replicator.stats` of a core: every channel's it had, live or gone.
    pub fn core_stats(&self, handle: u32) -> WireStats {
        let mut stats = self.retired_stats.get(&handle).copied().unwrap_or_default();
        for peer in self.peers.values() {
            if let Some((_, ch)) = peer.channel_of(handle) {
                stats.add(&ch.stats);
            }
        }
        stats
    }

    /// hypercore's `peer.stats`: the channel's for the core on the stream `session`.
    pub fn peer_stats(&self, handle: u32, session: u32) -> Option<WireStats> {
        let (_, ch) = self.peers.get(&session)?.channel_of(handle)?;
        Some(ch.stats)
    }

    /// A channel goes: its counts stay in its core's stats.
    fn retire_stats(&mut self, ch: &Channel) {
        self.retired_stats
            .entry(ch.handle)
            .or_default()
            .add(&ch.stats);
    }

    /// The core is closed: what the replicator kept for it goes (a reopened core starts
    /// new counts, as a new hypercore replicator does).
    pub fn forget_core(&mut self, handle: u32) {
        self.retired_stats.remove(&handle);
    }

    /// Whether block `index` of the core is asked for (hypercore's
    /// `replicator._blocks.has(index)`): a local read or a download wants it, or a peer is
    /// asked for it. hypercore counts a download's block only once a peer is asked for it.
    pub fn block_requested(&self, handle: u32, index: u64) -> bool {
        self.inflight_blocks.contains_key(&(handle, index))
            || self
                .wants
                .get(&handle)
                .is_some_and(|w| w.blocks.contains(index) || w.reads.contains(index))
    }

    pub fn peer_count(&self, handle: u32) -> u32 {
        self.peers
            .values()
            .filter(|p| {
                p.channel_of(handle)
                    .map(|(_, ch)| ch)
                    .is_some_and(|ch| ch.paired)
            })
            .count() as u32
    }

    fn drop_channel(&mut self, store: &mut Store, session: u32, local_id: u64) {
        let Some(peer) = self.peers.get_mut(&session) else {
            return;
        };
        let Some(mut ch) = peer.channels.remove(&local_id) else {
            return;
        };
        peer.by_handle.remove(&ch.handle);
        self.retire_stats(&ch);
        for parked in ch.coming.take_parked() {
            self.rewant(ch.handle, parked.index);
        }
        for (_, inflight) in ch.inflight {
            match inflight {
                Inflight::Block(i) => {
                    release(&mut self.inflight_blocks, ch.handle, i);
                    self.rewant(ch.handle, i);
                }
                Inflight::Upgrade => {
                    self.inflight_upgrades.remove(&ch.handle);
                }
                Inflight::UpgradeBlock(i) => {
                    self.inflight_upgrades.remove(&ch.handle);
                    release(&mut self.inflight_blocks, ch.handle, i);
                    self.rewant(ch.handle, i);
                }
                Inflight::Reorg => {
                    self.inflight_reorgs.remove(&ch.handle);
                }
                Inflight::Seek(bytes, padding) => {
                    self.seeks
                        .entry(ch.handle)
                        .or_default()
                        .push((bytes, padding));
                }
            }
        }
        if ch.paired {
            self.out.events.push(Event::PeerRemove {
                handle: ch.handle,
                session,
            });
        }
        // Whoever waits in update() for this peer stops waiting.
        self.out.events.push(Event::Sync { handle: ch.handle });
        store.close_core(ch.handle);
        if store.core(ch.handle).is_err() {
            self.forget_core(ch.handle);
        }
        self.schedule(store, ch.handle);
    }

    /// Ends a stream: its channels go, cores it opened are released, waiting requests move
    /// to other peers.
    pub fn close(&mut self, store: &mut Store, session: u32, error: Option<Error>) {
        let Some(peer) = self.peers.get(&session) else {
            return;
        };
        let ids: Vec<u64> = peer.channels.keys().copied().collect();
        for id in ids {
            self.drop_channel(store, session, id);
        }
        self.peers.remove(&session);
        self.out.events.push(Event::Close { session, error });
        self.flush_all();
    }

    pub fn keep_alive(&mut self, store: &mut Store, session: u32) {
        let result = match self.peers.get_mut(&session) {
            Some(peer) => peer.keep_alive(),
            None => return,
        };
        self.finish(store, session, result);
    }

    /// Closes every core's channel on every stream, telling the peers, while the streams
    /// stay open (corestore's store.close(): its cores close, the application ends the
    /// streams).
    pub fn close_channels(&mut self, store: &mut Store) {
        let sessions: Vec<u32> = self.peers.keys().copied().collect();
        for session in sessions {
            let ids: Vec<u64> = self
                .peers
                .get(&session)
                .map(|p| p.channels.keys().copied().collect())
                .unwrap_or_default();
            for id in ids {
                if let Some(peer) = self.peers.get_mut(&session) {
                    peer.close_channel(id);
                }
                self.drop_channel(store, session, id);
            }
        }
        self.flush_all();
    }

    /// Closes every stream (the store is closing).
    pub fn close_all(&mut self, store: &mut Store) {
        let sessions: Vec<u32> = self.peers.keys().copied().collect();
        for s in sessions {
            self.close(store, s, None);
        }
    }

    fn flush(&mut self, session: u32) {
        let Some(peer) = self.peers.get_mut(&session) else {
            return;
        };
        self.out.commands.append(session, &mut peer.commands);
        match peer.flush() {
            Ok(chunks) => {
                for chunk in chunks {
                    self.out.sends.push((session, chunk));
                }
            }
            Err(e) => {
                if let Some(peer) = self.peers.remove(&session) {
                    for ch in peer.channels.values() {
                        self.retire_stats(ch);
                    }
                }
                self.out.events.push(Event::Close {
                    session,
                    error: Some(e),
                });
            }
        }
    }

    fn flush_all(&mut self) {
        let sessions: Vec<u32> = self.peers.keys().copied().collect();
        for s in sessions {
            self.flush(s);
        }
    }
}

/// A manifest from a peer, for a core that has none: it must hash to the core's key.
fn checked_manifest(
    core: &Hypercore,
    manifest: &crate::core::manifest::Manifest,
) -> Result<crate::core::manifest::Manifest> {
    if manifest.hash() != core.key {
        return Err(Error::new(
            "INVALID_PROOF",
            "The peer sent a manifest that does not hash to the core's key",
        ));
    }
    Ok(manifest.clone())
}

/// Asks `peer` for block `index` (with the tree nodes we lack for it) on channel `local_id`.
fn request_block(
    peer: &mut Peer,
    local_id: u64,
    core: &Hypercore,
    storage: &crate::storage::Storage,
    remote_has_manifest: bool,
    index: u64,
) {
    let state = core.state();
    let id = peer.next_request_id();
    let Some(ch) = peer.channels.get_mut(&local_id) else {
        return;
    };
    let coming = &ch.coming;
    let (nodes, relies) =
        proof::missing_nodes_before(&core.nodes(storage), 2 * index, state.length, |node| {
            coming.brings(node)
        })
        .unwrap_or((0, false));
    ch.ask(id, index, nodes, relies);
    let request = messages::Request {
        id,
        fork: state.fork,
        block: Some(messages::RequestBlock { index, nodes }),
        manifest: core.manifest.is_none() && remote_has_manifest,
        ..Default::default()
    };
    peer.send(local_id, &Message::Request(request));
}

/// One request for a block is no longer in flight.
fn release(inflight: &mut BTreeMap<(u32, u64), u8>, handle: u32, index: u64) {
    if let Some(copies) = inflight.get_mut(&(handle, index)) {
        *copies = copies.saturating_sub(1);
        if *copies == 0 {
            inflight.remove(&(handle, index));
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn sync_message(
    core: &Hypercore,
    storage: &crate::storage::Storage,
    remote: &peer::Remote,
    allow_push: bool,
) -> messages::Sync {
    let state = core.state();
    let same_fork = remote.synced && remote.fork == state.fork;
    messages::Sync {
        fork: state.fork,
        length: state.length,
        remote_length: if same_fork { remote.length } else { 0 },
        can_upgrade: same_fork && can_upgrade(core, storage, remote.length),
        uploading: true,
        downloading: true,
        has_manifest: core.manifest.is_some(),
        allow_push,
    }
}

/// Whether we can prove our tree to a peer on our fork at `remote_length` (hypercore's
/// canUpgrade in a sync): it is shorter and we hold the roots of its tree, which an upgrade
/// proof starts from. A sparse core that was fast-forwarded (given a tree's roots only)
/// may not; a peer asking it anyway would only get invalid-request answers.
fn can_upgrade(core: &Hypercore, storage: &crate::storage::Storage, remote_length: u64) -> bool {
    let length = core.state().length;
    remote_length == 0
        || (remote_length < length
            && crate::core::merkle::roots_at(&core.nodes(storage), remote_length).is_ok())
}

/// No peer is known to hold `index`: ask the peers that might (synced on our fork, not
/// known to hold the span already) what they hold of its want batch, once per batch. As
/// hypercore's `_maybeWant`, also past a peer's length: a get beyond every peer's length
/// asks them too.
fn want_from_peers(peers: &mut IntMap<u32, Peer>, handle: u32, index: u64, fork: u64) {
    let batch = index / WANT_BATCH;
    for peer in peers.values_mut() {
        let Some((local_id, ch)) = peer.channel_of_mut(handle) else {
            continue;
        };
        let r = &ch.remote;
        if !ch.paired || ch.paused || !r.synced || r.fork != fork || index < r.contiguous {
            continue;
        }
        if !ch.wants_sent.insert(batch) {
            continue;
        }
        peer.send(
            local_id,
            &Message::Want(messages::Want {
                start: batch * WANT_BATCH,
                length: WANT_BATCH,
                any: false,
            }),
        );
    }
}

/// Notes that no peer can serve `index` now: its want batch is asked about (once per batch
/// in a run of such blocks; `want_from_peers` sends each batch once per channel).
fn want_batch_of(unservable: &mut Vec<u64>, index: u64) {
    if unservable
        .last()
        .is_none_or(|&u| u / WANT_BATCH != index / WANT_BATCH)
    {
        unservable.push(index);
    }
}

fn forget_block(remote: &mut peer::Remote, index: u64) {
    if index < remote.contiguous {
        let end = remote.contiguous.min(index.saturating_add(1 << 24));
        remote.bitfield.set_range(index + 1, end, true);
        remote.contiguous = index;
    }
    remote.bitfield.set_range(index, index + 1, false);
}

/// Bitfield pages one peer may make us keep for one core: 64 MB, what it takes to know
/// which of 512 million blocks it holds when they are scattered. hypercore keeps whatever a
/// peer announces; a peer announcing blocks far apart (each range or bitfield a new page)
/// could then grow us until the process dies (200,000 such messages: 0.9 GB here, 4 GB in JS).
const MAX_REMOTE_PAGES: usize = 16384;

fn check_remote_pages(ch: &Channel) -> Result<()> {
    if ch.remote.bitfield.page_count() > MAX_REMOTE_PAGES {
        return Err(Error::new(
            "INVALID_OPERATION",
            "The peer announced more scattered blocks than a connection may make us track",
        ));
    }
    Ok(())
}

/// A peer's bitfield message: runs of full words are set in one go (a 16 MiB message is
/// 128 million bits; one call per bit stalled the event loop for seconds).
fn apply_bitfield(ch: &mut Channel, m: &messages::Bitfield) {
    let bits = &mut ch.remote.bitfield;
    let mut run: Option<(u64, u64)> = None; // [start, end) of consecutive full words
    for (w, &word) in m.bitfield.iter().enumerate() {
        let Some(base) = (w as u64)
            .checked_mul(32)
            .and_then(|o| m.start.checked_add(o))
            .filter(|b| b.checked_add(32).is_some())
        else {
            break; // past u64: nothing real lives there
        };
        if word == u32::MAX {
            run = match run {
                Some((start, end)) if end == base => Some((start, base + 32)),
                other => {
                    if let Some((start, end)) = other {
                        bits.set_range(start, end, true);
                    }
                    Some((base, base + 32))
                }
            };
            continue;
        }
        for bit in 0..32u64 {
            if word & (1 << bit) != 0 {
                bits.set_range(base + bit, base + bit + 1, true);
            }
        }
    }
    if let Some((start, end)) = run {
        bits.set_range(start, end, true);
    }
}

fn apply_range(ch: &mut Channel, m: &messages::Range) {
    let end = m.start.saturating_add(m.length);
    if m.drop {
        if m.start < ch.remote.contiguous {
            ch.remote.contiguous = m.start;
        }
        ch.remote
            .bitfield
            .set_range(m.start, end.min(m.start + (1 << 24)), false);
    } else if m.start <= ch.remote.contiguous {
        ch.remote.contiguous = ch.remote.contiguous.max(end);
    } else {
        ch.remote
            .bitfield
            .set_range(m.start, end.min(m.start + (1 << 24)), true);
    }
}

fn to_nodes(nodes: &[messages::Node]) -> Vec<TreeNode> {
    nodes
        .iter()
        .map(|n| TreeNode {
            index: n.index,
            size: n.size,
            hash: n.hash,
        })
        .collect()
}

fn from_nodes(nodes: &[TreeNode]) -> Vec<messages::Node> {
    nodes
        .iter()
        .map(|n| messages::Node {
            index: n.index,
            size: n.size,
            hash: n.hash,
        })
        .collect()
}

/// Answers handled together: their blocks' leaf hashes are computed at once, four BLAKE2b
/// states per AVX2 pass (docs/DECISIONS.md §41).
const DATA_RUN: usize = 8;

/// The data messages at the front of a stream's backlog (up to DATA_RUN, and none of a
/// relayed channel's), decoded, with their blocks' leaf hashes. A message that does not
/// decode stays in the backlog and ends the run: its error comes in its turn.
fn take_data_run(peer: &mut Peer) -> Vec<(u64, Box<messages::Data>)> {
    let mut run = Vec::new();
    while run.len() < DATA_RUN {
        let Some(MuxEvent::Message {
            local_id,
            message_type: messages::message_type::DATA,
            payload,
        }) = peer.backlog_events.front()
        else {
            break;
        };
        if peer.relays.contains(local_id) {
            break;
        }
        let Ok(Some(Message::Data(m))) = Message::decode(messages::message_type::DATA, payload)
        else {
            break;
        };
        run.push((*local_id, m));
        peer.backlog_events.pop_front();
    }
    if run.len() > 1 {
        let values: Vec<&[u8]> = run
            .iter()
            .filter_map(|(_, m)| m.block.as_ref().map(|b| b.value.as_slice()))
            .collect();
        let mut hashes = crypto::leaf_hashes(&values).into_iter();
        for (_, m) in &mut run {
            if let Some(b) = m.block.as_mut() {
                b.leaf = hashes.next();
            }
        }
    }
    run
}

/// The node the proof of an answer to a plain block request ends in (docs/DECISIONS.md
/// §40); None for other answers.
fn parkable_end(m: &messages::Data) -> Option<u64> {
    if m.upgrade.is_some() || m.seek.is_some() || m.hash.is_some() {
        return None;
    }
    let block = m.block.as_ref()?;
    proof::block_proof_end(block.index, block.nodes.len())
}

/// `proof_from_data` for an answer that is not needed after: its block is moved, not
/// copied.
fn into_proof(mut m: messages::Data) -> Proof {
    let (block, manifest) = (m.block.take(), m.manifest.take());
    let mut proof = proof_from_data(&m);
    proof.block = block.map(|b| proof::BlockProof {
        index: b.index,
        nodes: to_nodes(&b.nodes),
        value: b.value,
    });
    proof.manifest = manifest;
    proof
}

pub(crate) fn proof_from_data(m: &messages::Data) -> Proof {
    Proof {
        fork: m.fork,
        block: m.block.as_ref().map(|b| proof::BlockProof {
            index: b.index,
            value: b.value.clone(),
            nodes: to_nodes(&b.nodes),
        }),
        hash: m.hash.as_ref().map(|h| proof::HashProof {
            index: h.index,
            nodes: to_nodes(&h.nodes),
        }),
        seek: m.seek.as_ref().map(|s| proof::SeekProof {
            bytes: s.bytes,
            nodes: to_nodes(&s.nodes),
        }),
        upgrade: m.upgrade.as_ref().map(|u| proof::UpgradeProof {
            start: u.start,
            length: u.length,
            nodes: to_nodes(&u.nodes),
            additional_nodes: to_nodes(&u.additional_nodes),
            signature: u.signature.clone().unwrap_or_default(),
        }),
        manifest: m.manifest.clone(),
    }
}

/// What hypercore answers a request with: a proof (data) or no-data.
fn answer_request(core: &Hypercore, store: &Store, m: &messages::Request) -> Message {
    let no_data = |reason| {
        Message::NoData(messages::NoData {
            request: m.id,
            reason,
        })
    };
    let state = core.state();
    if m.fork != state.fork {
        return no_data(NOT_AVAILABLE);
    }
    let wants_proof =
        m.block.is_some() || m.hash.is_some() || m.seek.is_some() || m.upgrade.is_some();
    if !wants_proof {
        return match (&core.manifest, m.manifest) {
            (Some(manifest), true) => Message::Data(Box::new(messages::Data {
                request: m.id,
                fork: state.fork,
                manifest: Some(manifest.clone()),
                ..Default::default()
            })),
            _ => no_data(NOT_AVAILABLE),
        };
    }
    let block_value = match &m.block {
        Some(b) => {
            if !core.has_block(b.index) {
                return no_data(NOT_AVAILABLE);
            }
            match core.get(store.storage(), b.index) {
                Ok(Some(v)) => Some(v),
                _ => return no_data(NOT_AVAILABLE),
            }
        }
        None => None,
    };
    let req = ProofRequest {
        fork: m.fork,
        block: m.block.as_ref().map(|b| (b.index, b.nodes)),
        hash: m.hash.as_ref().map(|h| (h.index, h.nodes)),
        seek: m.seek.as_ref().map(|s| (s.bytes, s.padding)),
        upgrade: m.upgrade.as_ref().map(|u| (u.start, u.length)),
        manifest: m.manifest,
    };
    let signature = core.signature().unwrap_or(&[]);
    match proof::create_proof(
        core.tree(),
        &core.nodes(store.storage()),
        block_value,
        signature,
        &req,
    ) {
        Ok(p) => Message::Data(Box::new(messages::Data {
            request: m.id,
            fork: p.fork,
            block: p.block.map(|b| messages::DataBlock {
                index: b.index,
                value: b.value,
                nodes: from_nodes(&b.nodes),
                leaf: None,
            }),
            hash: p.hash.map(|h| messages::DataHash {
                index: h.index,
                nodes: from_nodes(&h.nodes),
            }),
            seek: p.seek.map(|s| messages::DataSeek {
                bytes: s.bytes,
                nodes: from_nodes(&s.nodes),
            }),
            upgrade: p.upgrade.map(|u| messages::DataUpgrade {
                start: u.start,
                length: u.length,
                nodes: from_nodes(&u.nodes),
                additional_nodes: from_nodes(&u.additional_nodes),
                signature: Some(u.signature),
            }),
            manifest: if m.manifest {
                core.manifest.clone()
            } else {
                None
            },
        })),
        Err(_) => no_data(INVALID_REQUEST),
    }
}

/// Not used outside tests yet: a raw-transport peer with a given key pair.
pub fn raw_peer_for_tests(is_initiator: bool, key_pair: KeyPair) -> Peer {
    Peer::raw(is_initiator, key_pair)
}
