//! Protomux (the JS `protomux` package, 3.x): channels multiplexed over one message stream,
//! sans-IO. Every inbound and outbound item is one whole protomux frame, which is one
//! secret-stream message.
//!
//! Frames:
//! - channel message: `uint channel, uint type, payload`. `channel` is always the SENDER's
//!   local id of the channel; the receiver maps it through its table of remote ids.
//! - control (`channel` 0): type 0 batch, 1 open, 2 reject, 3 close.
//!   - open:   `00 01 uint localId, string protocol, optionalBuffer id, handshake...`
//!   - reject: `00 02 uint remoteId` (the id the PEER gave the channel it opened)
//!   - close:  `00 03 uint localId`
//!   - batch:  `00 00 uint channel, (uint len, len bytes)*`, where each item is `type,
//!     payload` on the current channel, and `len` 0 is followed by a new `uint channel`.
//!     Control messages travel in a batch on channel 0 (item = `01 ...` for an open, etc.).
//!
//! Pairing: protomux pairs one local channel with one remote channel of the same protocol
//! and id (aliases also match). A peer's open either answers one of our unanswered opens of
//! that protocol+id (oldest first: `Opened`), or waits (`Open`) until we `open` the same
//! protocol+id (pairs at once: `Opened` is queued, see `take_events`) or `reject` it. Every
//! `Open` event must be answered with `open` or `reject`, as the peer keeps its id reserved
//! until then. Local ids are recycled (last freed first, like protomux), but the id of a
//! channel closed before the peer answered its open stays reserved until that answer.
//!
//! Tolerance as in protomux: empty frames, unknown control types, messages on unknown or
//! closed channels, trailing bytes after the fields of control frames and batch item
//! lengths running past the end (clamped) are all accepted. An error (`MuxError`) is what
//! makes protomux destroy the stream: the caller must then end the connection.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use crate::encoding::compact::{DecodeError, Reader, Writer};
use crate::wire::messages::lossy_string;

pub const CONTROL_BATCH: u64 = 0;
pub const CONTROL_OPEN: u64 = 1;
pub const CONTROL_REJECT: u64 = 2;
pub const CONTROL_CLOSE: u64 = 3;

/// protomux starts a new batch frame once one reaches this size (bytes).
pub const MAX_BATCH: usize = 8 * 1024 * 1024;

/// Batches inside batches are legal (protomux decodes them recursively) but no peer makes
/// them; deeper nesting than this is refused rather than risking the stack.
const MAX_BATCH_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxError {
    /// A truncated or malformed frame.
    Decode(DecodeError),
    /// An open whose id is neither the next new id nor a free one ("Invalid open message").
    InvalidOpen { remote_id: u64 },
    /// A reject of a channel we have no unanswered open for ("Invalid reject message").
    InvalidReject { local_id: u64 },
    /// Batches nested deeper than any peer makes them.
    BatchTooDeep,
}

impl fmt::Display for MuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MuxError::Decode(e) => write!(f, "protomux: {e}"),
            MuxError::InvalidOpen { remote_id } => {
                write!(f, "protomux: invalid open message (remote id {remote_id})")
            }
            MuxError::InvalidReject { local_id } => {
                write!(f, "protomux: invalid reject message (local id {local_id})")
            }
            MuxError::BatchTooDeep => write!(f, "protomux: batches nested too deep"),
        }
    }
}

impl std::error::Error for MuxError {}

impl From<DecodeError> for MuxError {
    fn from(e: DecodeError) -> Self {
        MuxError::Decode(e)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent {
    /// The peer opened a channel we have not opened: answer with `open(protocol, id, ..)`
    /// (pairs with it) or `reject(remote_id)`. Messages the peer sends on it meanwhile are
    /// buffered and delivered after the `Opened` that pairing queues.
    Open {
        remote_id: u64,
        protocol: String,
        id: Option<Vec<u8>>,
        handshake: Vec<u8>,
    },
    /// Our channel `local_id` is paired with the peer's `remote_id`; `handshake` is the
    /// peer's (the bytes after the id in its open frame).
    Opened {
        local_id: u64,
        remote_id: u64,
        handshake: Vec<u8>,
    },
    /// A message on a paired channel. Types the protocol does not know must be ignored.
    Message {
        local_id: u64,
        message_type: u64,
        payload: Vec<u8>,
    },
    /// The peer closed the paired channel `local_id`; it is closed here too (don't `close`).
    Close { local_id: u64 },
    /// The peer rejected our open of `local_id` (it lacks the core); the channel is closed.
    Reject { local_id: u64 },
    /// The peer closed a channel it opened that we had not answered yet (an `Open`). It no
    /// longer pairs; answer with `reject(remote_id)` so both sides free the id.
    RemoteClosed { remote_id: u64 },
}

type Key = (String, Option<Vec<u8>>);

/// protomux's per protocol+id "info": opens not yet answered on either side.
#[derive(Debug, Default)]
struct Info {
    keys: Vec<Key>,
    /// local channels open (not closed) under this key
    opened: usize,
    /// our opens the peer has not answered (open or reject) yet, oldest first
    outgoing: VecDeque<u64>,
    /// the peer's opens we have not answered yet, oldest first
    incoming: VecDeque<u64>,
}

#[derive(Debug)]
struct LocalChannel {
    info: u64,
    /// 0 until paired
    remote_id: u64,
}

#[derive(Debug)]
enum RemoteSlot {
    Pending {
        info: u64,
        handshake: Vec<u8>,
        buffered: Vec<(u64, Vec<u8>)>,
        closed: bool,
    },
    Paired {
        local_id: u64,
    },
}

#[derive(Debug, Default)]
pub struct Mux {
    /// by local id - 1; None = free, or closed and waiting for the peer's answer
    local: Vec<Option<LocalChannel>>,
    /// free local indexes (id - 1), reused last-in first-out
    free: Vec<usize>,
    /// by remote id - 1
    remote: Vec<Option<RemoteSlot>>,
    infos: HashMap<u64, Info>,
    keys: HashMap<Key, u64>,
    next_info: u64,
    events: Vec<MuxEvent>,
    buffered: usize,
}

fn norm_id(id: Option<&[u8]>) -> Option<Vec<u8>> {
    // optionalBuffer: an empty id is the same as none on the wire
    id.filter(|b| !b.is_empty()).map(|b| b.to_vec())
}

fn control_frame(kind: u64, id: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(4);
    w.u8(0).uint(kind).uint(id);
    w.into_vec()
}

/// Splits one frame made by `Mux` into (channel, item) for a batch; None if it cannot be.
fn batch_item(frame: &[u8]) -> Option<(u64, &[u8])> {
    let mut r = Reader::new(frame);
    let channel = r.uint().ok()?;
    let item = r.rest();
    // an empty item cannot be batched (length 0 means "switch channel")
    (!item.is_empty()).then_some((channel, item))
}

fn encode_batch(items: &[(u64, &[u8])]) -> Vec<u8> {
    let Some(&(first, _)) = items.first() else {
        return Vec::new();
    };
    let size: usize = items.iter().map(|(_, b)| b.len() + 10).sum();
    let mut w = Writer::with_capacity(size + 12);
    w.u8(0).u8(0).uint(first);
    let mut prev = first;
    for &(channel, item) in items {
        if channel != prev {
            w.u8(0).uint(channel);
            prev = channel;
        }
        w.buffer(item);
    }
    w.into_vec()
}

fn uint_len(v: u64) -> usize {
    match v {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

impl Mux {
    pub fn new() -> Mux {
        Mux::default()
    }

    /// Opens a channel: returns its local id and the open frame to send. If the peer has
    /// already opened the same protocol+id (an unanswered `Open`), the two pair now and an
    /// `Opened` event (then any messages the peer sent on it) is queued: see `take_events`.
    /// Like protomux with `unique: false`: check `is_opened` first for one per core.
    pub fn open(&mut self, protocol: &str, id: Option<&[u8]>, handshake: &[u8]) -> (u64, Vec<u8>) {
        self.open_with_aliases(protocol, &[], id, handshake)
    }

    /// `open`, also pairing with peer opens under the `aliases` protocol names (hypercore
    /// opens `hypercore/alpha` with the alias `hypercore`). Aliases take effect only when
    /// this protocol+id has no state yet, as in protomux.
    pub fn open_with_aliases(
        &mut self,
        protocol: &str,
        aliases: &[&str],
        id: Option<&[u8]>,
        handshake: &[u8],
    ) -> (u64, Vec<u8>) {
        let id = norm_id(id);
        let info_id = self.info_for(protocol, &id, aliases);
        let index = self.free.pop().unwrap_or_else(|| {
            self.local.push(None);
            self.local.len() - 1
        });
        let local_id = index as u64 + 1;

        // pair with the oldest unanswered open of the peer, as createChannel does
        let mut paired = None;
        if let Some(info) = self.infos.get_mut(&info_id) {
            info.opened += 1;
            while let Some(remote_id) = info.incoming.pop_front() {
                let slot = usize::try_from(remote_id - 1)
                    .ok()
                    .and_then(|i| self.remote.get_mut(i));
                if let Some(slot @ Some(RemoteSlot::Pending { closed: false, .. })) = slot {
                    paired = Some((remote_id, slot.take()));
                    *slot = Some(RemoteSlot::Paired { local_id });
                    break;
                }
            }
            if paired.is_none() {
                info.outgoing.push_back(local_id);
            }
        }
        let remote_id = paired.as_ref().map_or(0, |(r, _)| *r);
        self.local[index] = Some(LocalChannel {
            info: info_id,
            remote_id,
        });
        if let Some((
            remote_id,
            Some(RemoteSlot::Pending {
                handshake: remote_handshake,
                buffered,
                ..
            }),
        )) = paired
        {
            self.events.push(MuxEvent::Opened {
                local_id,
                remote_id,
                handshake: remote_handshake,
            });
            for (message_type, payload) in buffered {
                self.buffered = self.buffered.saturating_sub(payload.len());
                self.events.push(MuxEvent::Message {
                    local_id,
                    message_type,
                    payload,
                });
            }
        }

        let mut w = Writer::with_capacity(8 + protocol.len() + 33 + handshake.len());
        w.u8(0)
            .uint(CONTROL_OPEN)
            .uint(local_id)
            .string(protocol)
            .opt_buffer(id.as_deref())
            .fixed(handshake);
        (local_id, w.into_vec())
    }

    /// A message frame on our channel `local_id` (paired or not yet). Empty when the channel
    /// is not open (protomux sends nothing then): don't send empty frames.
    pub fn send(&mut self, local_id: u64, message_type: u64, payload: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        self.write_message(&mut w, local_id, message_type, payload.len(), |w| {
            w.fixed(payload);
        });
        w.into_vec()
    }

    /// `send` of the payload that `payload` writes (about `len` bytes), the frame appended
    /// to `w` (a buffer of several frames) without a buffer of its own first: false, and
    /// nothing written, when the channel is not open.
    pub fn write_message(
        &self,
        w: &mut Writer,
        local_id: u64,
        message_type: u64,
        len: usize,
        payload: impl FnOnce(&mut Writer),
    ) -> bool {
        if self.local_channel(local_id).is_none() {
            return false;
        }
        w.buf
            .reserve(uint_len(local_id) + uint_len(message_type) + len);
        w.uint(local_id).uint(message_type);
        payload(w);
        true
    }

    /// Closes our channel `local_id`: the close frame (empty if it is not open).
    pub fn close(&mut self, local_id: u64) -> Vec<u8> {
        let Some(index) = self.local_index(local_id) else {
            return Vec::new();
        };
        let Some(ch) = self.local[index].take() else {
            return Vec::new();
        };
        if ch.remote_id > 0 {
            if let Some(slot) = self.remote_slot_mut(ch.remote_id) {
                *slot = None;
            }
            // paired: the peer knows the id, and this close frees it on its side too
            self.free.push(index);
        }
        // else the id stays reserved until the peer answers the open (still in outgoing)
        if let Some(info) = self.infos.get_mut(&ch.info) {
            info.opened = info.opened.saturating_sub(1);
        }
        self.gc(ch.info);
        control_frame(CONTROL_CLOSE, local_id)
    }

    /// Rejects the peer's unanswered open `remote_id` (an `Open` or `RemoteClosed` event):
    /// the reject frame, empty if there is no such open.
    pub fn reject(&mut self, remote_id: u64) -> Vec<u8> {
        let Some(slot) = self.remote_slot_mut(remote_id) else {
            return Vec::new();
        };
        let info_id = match slot {
            Some(RemoteSlot::Pending { info, buffered, .. }) => {
                let n: usize = buffered.iter().map(|(_, p)| p.len()).sum();
                let info = *info;
                *slot = None;
                self.buffered = self.buffered.saturating_sub(n);
                info
            }
            _ => return Vec::new(),
        };
        if let Some(info) = self.infos.get_mut(&info_id) {
            info.incoming.retain(|&r| r != remote_id);
        }
        self.gc(info_id);
        control_frame(CONTROL_REJECT, remote_id)
    }

    /// One batch frame carrying `frames` (each a whole frame returned by `open`, `send`,
    /// `close` or `reject`), laid out as protomux's cork/uncork does: consecutive items on
    /// the same channel share its id. Empty frames are skipped; no frames give an empty
    /// result. Keep a batch under `MAX_BATCH` (see `batches`); a secret-stream message
    /// cannot exceed 16 MiB.
    pub fn batch<B: AsRef<[u8]>>(&self, frames: &[B]) -> Vec<u8> {
        let items: Vec<(u64, &[u8])> = frames
            .iter()
            .filter_map(|f| batch_item(f.as_ref()))
            .collect();
        encode_batch(&items)
    }

    /// Like `batch`, but starts a new batch frame whenever one has reached `limit` bytes
    /// (protomux does so at `MAX_BATCH` while corked).
    pub fn batches<B: AsRef<[u8]>>(&self, frames: &[B], limit: usize) -> Vec<Vec<u8>> {
        let limit = limit.min(MAX_BATCH);
        let mut out = Vec::new();
        let mut items: Vec<(u64, &[u8])> = Vec::new();
        let mut size = 1;
        for (channel, item) in frames.iter().filter_map(|f| batch_item(f.as_ref())) {
            if size >= limit && !items.is_empty() {
                out.push(encode_batch(&items));
                items.clear();
                size = 1;
            }
            if items.last().is_none_or(|(c, _)| *c != channel) {
                size += 1 + uint_len(channel);
            }
            size += uint_len(item.len() as u64) + item.len();
            items.push((channel, item));
        }
        if !items.is_empty() {
            out.push(encode_batch(&items));
        }
        out
    }

    /// Handles one inbound frame. Returns the events it caused, after any events queued by
    /// `open`. On error the connection must be destroyed (protomux destroys the stream).
    pub fn recv(&mut self, frame: &[u8]) -> Result<Vec<MuxEvent>, MuxError> {
        let mut events = std::mem::take(&mut self.events);
        if frame.is_empty() {
            return Ok(events); // protomux ignores empty frames
        }
        let mut r = Reader::new(frame);
        let channel = r.uint()?;
        self.decode(channel, r.rest(), 0, &mut events)?;
        Ok(events)
    }

    /// Whether the peer's open `remote_id` still waits for our `open` or `reject`.
    pub fn is_pending(&self, remote_id: u64) -> bool {
        let Some(i) = remote_id
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return false;
        };
        matches!(self.remote.get(i), Some(Some(RemoteSlot::Pending { .. })))
    }

    /// The events queued by `open` when it paired with a peer's earlier open.
    pub fn take_events(&mut self) -> Vec<MuxEvent> {
        std::mem::take(&mut self.events)
    }

    /// The peer's id for our channel, once paired.
    pub fn remote_id(&self, local_id: u64) -> Option<u64> {
        self.local_channel(local_id)
            .map(|c| c.remote_id)
            .filter(|&r| r > 0)
    }

    /// Whether a local channel of this protocol+id (or alias) is open (protomux `opened`).
    pub fn is_opened(&self, protocol: &str, id: Option<&[u8]>) -> bool {
        let key = (protocol.to_string(), norm_id(id));
        self.keys
            .get(&key)
            .and_then(|i| self.infos.get(i))
            .is_some_and(|info| info.opened > 0)
    }

    /// Payload bytes of messages buffered for unanswered peer opens. protomux pauses the
    /// stream above 32 KiB: stop reading until this drops (by `open` or `reject`).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// No local channel open or waiting for an answer (protomux `isIdle`).
    pub fn is_idle(&self) -> bool {
        self.local.len() == self.free.len()
    }

    // ---- internals -------------------------------------------------------------------

    fn local_index(&self, local_id: u64) -> Option<usize> {
        let i = usize::try_from(local_id.checked_sub(1)?).ok()?;
        (i < self.local.len()).then_some(i)
    }

    fn local_channel(&self, local_id: u64) -> Option<&LocalChannel> {
        self.local.get(self.local_index(local_id)?)?.as_ref()
    }

    fn remote_slot_mut(&mut self, remote_id: u64) -> Option<&mut Option<RemoteSlot>> {
        let i = usize::try_from(remote_id.checked_sub(1)?).ok()?;
        self.remote.get_mut(i)
    }

    fn info_for(&mut self, protocol: &str, id: &Option<Vec<u8>>, aliases: &[&str]) -> u64 {
        let key = (protocol.to_string(), id.clone());
        if let Some(&i) = self.keys.get(&key) {
            if self.infos.contains_key(&i) {
                return i;
            }
        }
        let info_id = self.next_info;
        self.next_info += 1;
        let mut info = Info::default();
        for name in std::iter::once(protocol).chain(aliases.iter().copied()) {
            let k = (name.to_string(), id.clone());
            self.keys.insert(k.clone(), info_id);
            info.keys.push(k);
        }
        self.infos.insert(info_id, info);
        info_id
    }

    fn gc(&mut self, info_id: u64) {
        let Some(info) = self.infos.get(&info_id) else {
            return;
        };
        if info.opened > 0 || !info.outgoing.is_empty() || !info.incoming.is_empty() {
            return;
        }
        if let Some(info) = self.infos.remove(&info_id) {
            for k in info.keys {
                if self.keys.get(&k) == Some(&info_id) {
                    self.keys.remove(&k);
                }
            }
        }
    }

    fn decode(
        &mut self,
        channel: u64,
        data: &[u8],
        depth: usize,
        events: &mut Vec<MuxEvent>,
    ) -> Result<(), MuxError> {
        let mut r = Reader::new(data);
        let kind = r.uint()?;
        let rest = r.rest();
        if channel != 0 {
            self.on_message(channel, kind, rest, events);
            return Ok(());
        }
        match kind {
            CONTROL_BATCH => self.on_batch(rest, depth, events),
            CONTROL_OPEN => self.on_open(rest, events),
            CONTROL_REJECT => self.on_reject(rest, events),
            CONTROL_CLOSE => self.on_close(rest, events),
            _ => Ok(()), // unknown control messages are ignored
        }
    }

    fn on_batch(
        &mut self,
        data: &[u8],
        depth: usize,
        events: &mut Vec<MuxEvent>,
    ) -> Result<(), MuxError> {
        if depth >= MAX_BATCH_DEPTH {
            return Err(MuxError::BatchTooDeep);
        }
        let mut r = Reader::new(data);
        let mut channel = r.uint()?;
        while !r.is_empty() {
            let len = r.uint()?;
            if len == 0 {
                channel = r.uint()?;
                continue;
            }
            // a length past the end is clamped to it, as protomux does
            let n = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(r.remaining());
            let item = r.take(n)?;
            self.decode(channel, item, depth + 1, events)?;
        }
        Ok(())
    }

    fn on_open(&mut self, data: &[u8], events: &mut Vec<MuxEvent>) -> Result<(), MuxError> {
        let mut r = Reader::new(data);
        let remote_id = r.uint()?;
        let protocol = lossy_string(&mut r)?;
        let id = r.opt_buffer()?.map(|b| b.to_vec());
        let handshake = r.rest().to_vec();

        // an open of the control channel: protomux tries to reject it; nothing to pair
        if remote_id == 0 {
            return Ok(());
        }
        let invalid = MuxError::InvalidOpen { remote_id };
        let rid = usize::try_from(remote_id - 1).map_err(|_| invalid.clone())?;
        // the peer may grow its ids by one, or reuse a free one
        if rid == self.remote.len() {
            self.remote.push(None);
        }
        if rid >= self.remote.len() || self.remote[rid].is_some() {
            return Err(invalid);
        }

        let info_id = self.info_for(&protocol, &id, &[]);
        let answered = self
            .infos
            .get_mut(&info_id)
            .and_then(|info| info.outgoing.pop_front());
        if let Some(local_id) = answered {
            // the answer to our open
            let index = (local_id - 1) as usize;
            match self.local.get_mut(index).and_then(|c| c.as_mut()) {
                Some(ch) => {
                    ch.remote_id = remote_id;
                    self.remote[rid] = Some(RemoteSlot::Paired { local_id });
                    events.push(MuxEvent::Opened {
                        local_id,
                        remote_id,
                        handshake,
                    });
                }
                None => {
                    // we closed it before the answer came: only now is the id free
                    self.free.push(index);
                    self.gc(info_id);
                }
            }
            return Ok(());
        }

        self.remote[rid] = Some(RemoteSlot::Pending {
            info: info_id,
            handshake: handshake.clone(),
            buffered: Vec::new(),
            closed: false,
        });
        if let Some(info) = self.infos.get_mut(&info_id) {
            info.incoming.push_back(remote_id);
        }
        events.push(MuxEvent::Open {
            remote_id,
            protocol,
            id,
            handshake,
        });
        Ok(())
    }

    fn on_reject(&mut self, data: &[u8], events: &mut Vec<MuxEvent>) -> Result<(), MuxError> {
        let local_id = Reader::new(data).uint()?;
        let found = self.infos.iter_mut().find_map(|(&info_id, info)| {
            let pos = info.outgoing.iter().position(|&l| l == local_id)?;
            info.outgoing.remove(pos);
            Some(info_id)
        });
        let Some(info_id) = found else {
            return Err(MuxError::InvalidReject { local_id });
        };
        let index = (local_id - 1) as usize;
        self.free.push(index);
        if let Some(ch) = self.local.get_mut(index).and_then(|c| c.take()) {
            if let Some(info) = self.infos.get_mut(&ch.info) {
                info.opened = info.opened.saturating_sub(1);
            }
            events.push(MuxEvent::Reject { local_id });
        }
        self.gc(info_id);
        Ok(())
    }

    fn on_close(&mut self, data: &[u8], events: &mut Vec<MuxEvent>) -> Result<(), MuxError> {
        let remote_id = Reader::new(data).uint()?;
        let mut buffered = 0;
        let mut gc_info = None;
        let Some(slot) = self.remote_slot_mut(remote_id) else {
            return Ok(()); // 0, unknown or already closed: ignored
        };
        match slot {
            Some(RemoteSlot::Paired { local_id }) => {
                let local_id = *local_id;
                *slot = None;
                let index = (local_id - 1) as usize;
                if let Some(ch) = self.local.get_mut(index).and_then(|c| c.take()) {
                    self.free.push(index);
                    if let Some(info) = self.infos.get_mut(&ch.info) {
                        info.opened = info.opened.saturating_sub(1);
                    }
                    self.gc(ch.info);
                }
                events.push(MuxEvent::Close { local_id });
            }
            Some(RemoteSlot::Pending {
                info,
                buffered: pending,
                closed,
                ..
            }) if !*closed => {
                // protomux ignores this (and may later pair with the dead channel); we
                // tell the caller, who should reject it to free the id on both sides
                *closed = true;
                buffered = pending.iter().map(|(_, p)| p.len()).sum();
                pending.clear();
                gc_info = Some(*info);
                events.push(MuxEvent::RemoteClosed { remote_id });
            }
            _ => {}
        }
        self.buffered = self.buffered.saturating_sub(buffered);
        if let Some(info_id) = gc_info {
            if let Some(info) = self.infos.get_mut(&info_id) {
                info.incoming.retain(|&r| r != remote_id);
            }
            self.gc(info_id);
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        channel: u64,
        message_type: u64,
        payload: &[u8],
        events: &mut Vec<MuxEvent>,
    ) {
        match self.remote_slot_mut(channel) {
            Some(Some(RemoteSlot::Paired { local_id })) => events.push(MuxEvent::Message {
                local_id: *local_id,
                message_type,
                payload: payload.to_vec(),
            }),
            Some(Some(RemoteSlot::Pending {
                buffered,
                closed: false,
                ..
            })) => {
                buffered.push((message_type, payload.to_vec()));
                self.buffered += payload.len();
            }
            // unknown or closed channel: ignored (may be a message sent before a close)
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hex;
    use crate::crypto::test_vectors::Json;
    use crate::wire::messages::tests::{vectors, Rng};
    use crate::wire::messages::{self, message_type as t, Handshake, PROTOCOL, PROTOCOL_ALIASES};

    fn frame(frames: &Json, name: &str) -> Vec<u8> {
        let list = frames.get(name).arr();
        assert_eq!(list.len(), 1, "{name}: one frame");
        list[0].bytes()
    }

    fn payload(v: &Json, name: &str) -> Vec<u8> {
        v.get("messages")
            .arr()
            .iter()
            .find(|m| m.get("name").str() == name)
            .unwrap()
            .get("hex")
            .bytes()
    }

    fn msg(local_id: u64, message_type: u64, payload: &[u8]) -> MuxEvent {
        MuxEvent::Message {
            local_id,
            message_type,
            payload: payload.to_vec(),
        }
    }

    /// The scenario of wire-mux-vectors.js, replayed with two Rust muxes: every frame the
    /// JS muxes wrote is produced byte-identically, and every frame decodes to the events
    /// the JS muxes acted on.
    #[test]
    fn js_scenario_frames_byte_identical() {
        let v = vectors();
        let mux = v.get("mux");
        let f = mux.get("frames");
        let keys: Vec<[u8; 32]> = mux.get("keys").arr().iter().map(|k| k.b32()).collect();
        let dks: Vec<Vec<u8>> = mux
            .get("discoveryKeys")
            .arr()
            .iter()
            .map(|k| k.bytes())
            .collect();
        let hh = mux.get("handshakeHash").bytes();
        let hs = |initiator: bool, i: usize, seeks: bool| {
            let mut h = Handshake::new(initiator, &keys[i], &hh);
            h.seeks = seeks;
            h.encode()
        };
        let open = |m: &mut Mux, i: usize, h: Vec<u8>| {
            m.open_with_aliases(PROTOCOL, PROTOCOL_ALIASES, Some(&dks[i]), &h)
        };
        let (mut a, mut b) = (Mux::new(), Mux::new());

        // 1. A opens core 0 and sends a sync before B answered
        let (a0, fr) = open(&mut a, 0, hs(true, 0, true));
        assert_eq!((a0, hex(&fr)), (1, hex(&frame(f, "a_open_0"))));
        let sync0 = payload(&v, "sync-0");
        assert_eq!(a.send(a0, t::SYNC, &sync0), frame(f, "a_sync_0"));

        // 2. B: the open waits for B's answer, the sync is buffered until then
        let ev = b.recv(&frame(f, "a_open_0")).unwrap();
        let MuxEvent::Open {
            remote_id: 1,
            protocol,
            id: Some(id),
            handshake,
        } = &ev[0]
        else {
            panic!("{ev:?}")
        };
        assert_eq!((protocol.as_str(), id), (PROTOCOL, &dks[0]));
        let remote_hs = Handshake::decode(handshake).unwrap();
        assert!(remote_hs.verify(false, &keys[0], &hh));
        assert_eq!(b.recv(&frame(f, "a_sync_0")).unwrap(), vec![]);
        assert_eq!(b.buffered_bytes(), sync0.len());
        let (b0, fr) = open(&mut b, 0, hs(false, 0, true));
        assert_eq!((b0, fr), (1, frame(f, "b_open_0")));
        assert_eq!(b.buffered_bytes(), 0);
        assert_eq!(
            b.take_events(),
            vec![
                MuxEvent::Opened {
                    local_id: 1,
                    remote_id: 1,
                    handshake: hs(true, 0, true)
                },
                msg(1, t::SYNC, &sync0)
            ]
        );
        assert_eq!(
            a.recv(&frame(f, "b_open_0")).unwrap(),
            vec![MuxEvent::Opened {
                local_id: 1,
                remote_id: 1,
                handshake: hs(false, 0, true)
            }]
        );

        // 3. A's corked batch: sync + range on core 0, open of core 1, request on core 0
        let (sync1, range0, req0) = (
            payload(&v, "sync-1"),
            payload(&v, "range-0"),
            payload(&v, "request-0"),
        );
        let mut frames = vec![a.send(a0, t::SYNC, &sync1), a.send(a0, t::RANGE, &range0)];
        let (a1, open1) = open(&mut a, 1, hs(true, 1, true));
        assert_eq!(a1, 2);
        frames.push(open1);
        frames.push(a.send(a0, t::REQUEST, &req0));
        assert_eq!(hex(&a.batch(&frames)), hex(&frame(f, "a_batch")));
        assert_eq!(a.batches(&frames, MAX_BATCH), vec![frame(f, "a_batch")]);

        // 4. B: the batch's events; B answers with data and the reject of core 1, corked
        let ev = b.recv(&frame(f, "a_batch")).unwrap();
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert_eq!(ev[0], msg(1, t::SYNC, &sync1));
        assert_eq!(ev[1], msg(1, t::RANGE, &range0));
        assert!(
            matches!(&ev[2], MuxEvent::Open { remote_id: 2, id: Some(id), .. } if *id == dks[1])
        );
        assert_eq!(ev[3], msg(1, t::REQUEST, &req0));
        let data0 = payload(&v, "data-0");
        let reply = [b.send(b0, t::DATA, &data0), b.reject(2)];
        assert_eq!(hex(&b.batch(&reply)), hex(&frame(f, "b_reply_batch")));
        assert_eq!(
            a.recv(&frame(f, "b_reply_batch")).unwrap(),
            vec![msg(1, t::DATA, &data0), MuxEvent::Reject { local_id: 2 }]
        );

        // 5. core 2 alone: the freed id 2 is reused; a plain reject
        let (a2, fr) = open(&mut a, 2, hs(true, 2, false));
        assert_eq!((a2, fr), (2, frame(f, "a_open_2")));
        let ev = b.recv(&frame(f, "a_open_2")).unwrap();
        assert!(matches!(&ev[..], [MuxEvent::Open { remote_id: 2, .. }]));
        assert_eq!(b.reject(2), frame(f, "b_reject_2"));
        assert_eq!(b.reject(2), Vec::<u8>::new(), "nothing left to reject");
        assert_eq!(
            a.recv(&frame(f, "b_reject_2")).unwrap(),
            vec![MuxEvent::Reject { local_id: 2 }]
        );

        // 6. crossing opens of core 3
        let (a3, fa) = open(&mut a, 3, hs(true, 3, true));
        let (b3, fb) = open(&mut b, 3, hs(false, 3, true));
        assert_eq!((a3, fa), (2, frame(f, "a_open_3")));
        assert_eq!((b3, fb), (2, frame(f, "b_open_3")));
        assert_eq!(
            b.recv(&frame(f, "a_open_3")).unwrap(),
            vec![MuxEvent::Opened {
                local_id: 2,
                remote_id: 2,
                handshake: hs(true, 3, true)
            }]
        );
        assert!(matches!(
            &a.recv(&frame(f, "b_open_3")).unwrap()[..],
            [MuxEvent::Opened {
                local_id: 2,
                remote_id: 2,
                ..
            }]
        ));
        let ext = payload(&v, "extension");
        assert_eq!(a.send(a3, t::EXTENSION, &ext), frame(f, "a_extension_3"));
        assert_eq!(
            b.recv(&frame(f, "a_extension_3")).unwrap(),
            vec![msg(2, t::EXTENSION, &ext)]
        );

        // 7. close of core 0; then a want and the close of core 3 in one batch
        assert_eq!(a.close(a0), frame(f, "a_close_0"));
        assert_eq!(a.close(a0), Vec::<u8>::new(), "already closed");
        assert_eq!(a.send(a0, t::SYNC, &sync0), Vec::<u8>::new());
        assert_eq!(
            b.recv(&frame(f, "a_close_0")).unwrap(),
            vec![MuxEvent::Close { local_id: 1 }]
        );
        let want = messages::Want {
            start: 0,
            length: 65536,
            any: false,
        }
        .encode();
        let frames = [a.send(a3, t::WANT, &want), a.close(a3)];
        assert_eq!(hex(&a.batch(&frames)), hex(&frame(f, "a_batch_close_3")));
        assert_eq!(
            b.recv(&frame(f, "a_batch_close_3")).unwrap(),
            vec![msg(2, t::WANT, &want), MuxEvent::Close { local_id: 2 }]
        );
        assert!(a.is_idle() && b.is_idle());
        assert!(!a.is_opened(PROTOCOL, Some(&dks[3])));
        assert!(f.get("b_unexpected").is_null());
        assert!(a.infos.is_empty() && a.keys.is_empty());
        assert!(b.infos.is_empty() && b.keys.is_empty());
    }

    /// Delivers every frame and collects the events on the receiving side.
    #[test]
    fn a_second_open_of_a_paired_channel_stays_pending_until_rejected() {
        let (mut a, mut b) = (Mux::new(), Mux::new());
        let dk = [3u8; 32];
        let (_, f1) = a.open("proto", Some(&dk), b"");
        let (_, f2) = a.open("proto", Some(&dk), b"");
        deliver(&mut b, &[f1]);
        assert!(b.is_pending(1));
        b.open("proto", Some(&dk), b"");
        assert!(!b.is_pending(1), "answered by our open");
        // the second open finds our channel paired already: it waits for an answer
        assert!(matches!(
            &deliver(&mut b, &[f2])[..],
            [MuxEvent::Opened { .. }, MuxEvent::Open { remote_id: 2, .. }]
        ));
        assert!(b.is_pending(2));
        deliver(&mut b, &[a.send(2, 9, &[1; 100])]);
        assert_eq!(b.buffered_bytes(), 100);
        assert_eq!(b.reject(2), vec![0, 2, 2]);
        assert!(!b.is_pending(2) && !b.is_pending(0) && !b.is_pending(u64::MAX));
        assert_eq!(b.buffered_bytes(), 0);
    }

    fn deliver(to: &mut Mux, frames: &[Vec<u8>]) -> Vec<MuxEvent> {
        let mut out = Vec::new();
        for fr in frames.iter().filter(|f| !f.is_empty()) {
            out.extend(to.recv(fr).unwrap());
        }
        out
    }

    #[test]
    fn two_muxes_pair_exchange_and_close() {
        let (mut a, mut b) = (Mux::new(), Mux::new());
        let dk = [7u8; 32];
        let (la, fa) = a.open("proto", Some(&dk), b"hello from a");
        let (lb_other, fb_other) = b.open("other", None, b"");
        let ev = deliver(&mut b, &[fa, a.send(la, 4, b"early")]);
        assert_eq!(
            ev,
            vec![MuxEvent::Open {
                remote_id: 1,
                protocol: "proto".into(),
                id: Some(dk.to_vec()),
                handshake: b"hello from a".to_vec()
            }]
        );
        assert!(a.is_opened("proto", Some(&dk)) && !b.is_opened("proto", Some(&dk)));
        let (lb, fb) = b.open("proto", Some(&dk), b"hello from b");
        assert_eq!((lb_other, lb), (1, 2));
        assert_eq!(b.remote_id(lb), Some(1));
        // queued events come out of the next recv too
        let ev = b.recv(&[]).unwrap();
        assert_eq!(ev[1], msg(lb, 4, b"early"));
        // A: B's "other" open waits; the proto open answers A's
        let ev = deliver(&mut a, &[fb_other, fb]);
        assert!(
            matches!(&ev[0], MuxEvent::Open { remote_id: 1, protocol, id: None, .. } if protocol == "other")
        );
        assert_eq!(
            ev[1],
            MuxEvent::Opened {
                local_id: la,
                remote_id: 2,
                handshake: b"hello from b".to_vec()
            }
        );
        assert_eq!(a.reject(1), vec![0, 2, 1]);
        assert_eq!(
            deliver(&mut b, &[vec![0, 2, 1]]),
            vec![MuxEvent::Reject { local_id: 1 }]
        );
        // messages both ways, single and batched
        let ev = deliver(&mut b, &[a.send(la, 0, b"one"), a.send(la, 200, &[9; 300])]);
        assert_eq!(ev, vec![msg(lb, 0, b"one"), msg(lb, 200, &[9; 300])]);
        let frames = [b.send(lb, 1, b"x"), b.send(lb, 2, b""), b.send(lb, 3, b"z")];
        let batch = b.batch(&frames);
        let ev = deliver(&mut a, &[batch]);
        assert_eq!(
            ev,
            vec![msg(la, 1, b"x"), msg(la, 2, b""), msg(la, 3, b"z")]
        );
        // close from B: A's channel closes with it, ids are free on both sides
        let fr = b.close(lb);
        assert_eq!(
            deliver(&mut a, &[fr]),
            vec![MuxEvent::Close { local_id: la }]
        );
        assert_eq!(a.close(la), Vec::<u8>::new());
        assert!(a.is_idle() && b.is_idle());
        // ids are reused: next open on each side is 1 again (B: 2 was freed last)
        assert_eq!(a.open("p", None, b"").0, 1);
        assert_eq!(b.open("p", None, b"").0, 2);
    }

    #[test]
    fn aliases_pair_and_batch_split() {
        let (mut a, mut b) = (Mux::new(), Mux::new());
        let dk = [1u8; 32];
        // an old peer opening "hypercore" pairs with our "hypercore/alpha" channel
        let (la, fa) = a.open_with_aliases(PROTOCOL, PROTOCOL_ALIASES, Some(&dk), b"h");
        let (_, fb) = b.open("hypercore", Some(&dk), b"old");
        assert!(
            matches!(&a.recv(&fb).unwrap()[..], [MuxEvent::Opened { local_id, .. }] if *local_id == la)
        );
        // (the old peer's side: our "hypercore/alpha" open waits for its answer)
        assert!(matches!(&b.recv(&fa).unwrap()[..], [MuxEvent::Open { .. }]));
        // batches split at MAX_BATCH like protomux
        let (mut a, mut b) = (Mux::new(), Mux::new());
        let (la, fa) = a.open("p", None, b"");
        deliver(&mut b, &[fa]);
        b.open("p", None, b"");
        let big = vec![0u8; MAX_BATCH / 3];
        let frames: Vec<Vec<u8>> = (0..7).map(|_| a.send(la, 3, &big)).collect();
        let batches = a.batches(&frames, MAX_BATCH);
        assert_eq!(batches.len(), 3);
        let mut n = 0;
        for fr in &batches {
            assert!(fr.len() < MAX_BATCH + big.len() + 16);
            n += b.recv(fr).unwrap().len();
        }
        assert_eq!(n, 1 + 7, "Opened, then the seven messages");
        assert_eq!(a.batch::<Vec<u8>>(&[]), Vec::<u8>::new());
    }

    #[test]
    fn tolerant_like_protomux() {
        let mut m = Mux::new();
        let (l, _) = m.open("p", None, b"");
        // the peer's open with trailing handshake bytes, then its messages
        let open = [0, 1, 1, 1, b'p', 0, 0xaa, 0xbb];
        assert!(
            matches!(&m.recv(&open).unwrap()[..], [MuxEvent::Opened { handshake, .. }] if handshake == &[0xaa, 0xbb])
        );
        assert_eq!(m.recv(&[]).unwrap(), vec![], "empty frame ignored");
        assert_eq!(m.recv(&[0, 9, 1, 2, 3]).unwrap(), vec![], "unknown control");
        assert_eq!(m.recv(&[5, 0, 1]).unwrap(), vec![], "unknown channel");
        assert_eq!(m.recv(&[0, 3, 0]).unwrap(), vec![], "close of channel 0");
        assert_eq!(
            m.recv(&[0, 3, 9, 9]).unwrap(),
            vec![],
            "close of unknown channel"
        );
        // a batch item length past the end is clamped; switching channels with 0
        let ev = m
            .recv(&[0, 0, 1, 3, 7, 1, 2, 0, 5, 2, 1, 1, 0, 1, 50, 8, 1])
            .unwrap();
        assert_eq!(ev, vec![msg(l, 7, &[1, 2]), msg(l, 8, &[1])]);
        // nested batches decode
        let inner = [0, 0, 1, 2, 6, 6];
        let mut outer = vec![0, 0, 0, inner.len() as u8 - 1];
        outer.extend_from_slice(&inner[1..]);
        assert_eq!(m.recv(&outer).unwrap(), vec![msg(l, 6, &[6])]);
        // close with trailing bytes
        assert_eq!(
            m.recv(&[0, 3, 1, 0xff, 0xff]).unwrap(),
            vec![MuxEvent::Close { local_id: l }]
        );
        // message after close: ignored
        assert_eq!(m.recv(&[1, 0, 1]).unwrap(), vec![]);
    }

    #[test]
    fn errors_as_protomux() {
        let mut m = Mux::new();
        // ids must grow by one
        assert_eq!(
            m.recv(&[0, 1, 2, 1, b'p', 0]),
            Err(MuxError::InvalidOpen { remote_id: 2 })
        );
        assert!(m.recv(&[0, 1, 1, 1, b'p', 0]).is_ok());
        // an id in use
        assert_eq!(
            m.recv(&[0, 1, 1, 1, b'q', 0]),
            Err(MuxError::InvalidOpen { remote_id: 1 })
        );
        // a reject of nothing we opened
        assert_eq!(
            m.recv(&[0, 2, 1]),
            Err(MuxError::InvalidReject { local_id: 1 })
        );
        assert!(matches!(m.recv(&[0, 2]), Err(MuxError::Decode(_))));
        assert!(matches!(m.recv(&[0xfd, 1]), Err(MuxError::Decode(_))));
        assert!(matches!(m.recv(&[3]), Err(MuxError::Decode(_))));
        assert!(matches!(
            m.recv(&[0, 1, 2, 9, b'p']),
            Err(MuxError::Decode(_))
        ));
        // batches nested in batches: fine a few deep, refused past MAX_BATCH_DEPTH
        let nested = |levels: usize| {
            let mut item = vec![9u8]; // an unknown control message
            for _ in 0..levels {
                let mut w = Writer::new();
                w.uint(CONTROL_BATCH).uint(0).buffer(&item);
                item = w.into_vec();
            }
            let mut frame = vec![0u8];
            frame.extend_from_slice(&item);
            frame
        };
        assert_eq!(m.recv(&nested(4)).unwrap(), vec![]);
        assert_eq!(m.recv(&nested(40)), Err(MuxError::BatchTooDeep));
        let deep = nested(100_000);
        assert!(m.recv(&deep).is_err());
    }

    #[test]
    fn close_before_answer_keeps_the_id_reserved() {
        let (mut a, mut b) = (Mux::new(), Mux::new());
        let (l1, f1) = a.open("p", Some(b"x"), b"");
        let c1 = a.close(l1);
        // not answered yet: the id is not reused
        let (l2, f2) = a.open("p", Some(b"y"), b"");
        assert_eq!((l1, l2), (1, 2));
        assert!(!a.is_idle());
        // B answers the first open (it opens the same core), then gets the close
        deliver(&mut b, &[f1]);
        let (_, fb) = b.open("p", Some(b"x"), b"");
        assert!(matches!(&b.take_events()[..], [MuxEvent::Opened { .. }]));
        assert_eq!(deliver(&mut a, &[fb]), vec![], "answer to a closed channel");
        assert_eq!(
            deliver(&mut b, &[c1]),
            vec![MuxEvent::Close { local_id: 1 }]
        );
        // id 1 is free now
        assert_eq!(a.open("p", Some(b"z"), b"").0, 1);
        // B rejects the second open: its id is free
        assert!(matches!(
            &deliver(&mut b, &[f2])[..],
            [MuxEvent::Open { remote_id: 2, .. }]
        ));
        let r = b.reject(2);
        assert_eq!(
            deliver(&mut a, &[r]),
            vec![MuxEvent::Reject { local_id: 2 }]
        );
        assert_eq!(a.open("p", None, b"").0, 2);
    }

    #[test]
    fn remote_close_of_unanswered_open() {
        let (mut a, mut b) = (Mux::new(), Mux::new());
        let (l, f) = a.open("p", None, b"");
        let m1 = a.send(l, 1, b"buffered");
        let c = a.close(l);
        assert_eq!(deliver(&mut b, &[f, m1]).len(), 1);
        assert_eq!(b.buffered_bytes(), 8);
        assert_eq!(
            deliver(&mut b, &[c]),
            vec![MuxEvent::RemoteClosed { remote_id: 1 }]
        );
        assert_eq!(b.buffered_bytes(), 0);
        // a later open of the same protocol+id does not pair with the dead channel
        let (lb, _) = b.open("p", None, b"");
        assert_eq!(b.remote_id(lb), None);
        assert_eq!(b.take_events(), vec![]);
        // rejecting frees the peer's id
        let r = b.reject(1);
        assert_eq!(r, vec![0, 2, 1]);
        assert_eq!(deliver(&mut a, &[r]), vec![]);
        assert!(a.is_idle());
    }

    #[test]
    fn fuzz_frames_never_panic() {
        let v = vectors();
        let f = v.get("mux").get("frames");
        let mut corpus: Vec<Vec<u8>> = Vec::new();
        if let Json::Obj(map) = f {
            for list in map.values() {
                corpus.extend(list.arr().iter().map(|x| x.bytes()));
            }
        }
        assert!(corpus.len() >= 10);
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        // truncations of every JS frame, into fresh and into used muxes
        for fr in &corpus {
            for cut in 0..=fr.len() {
                let _ = Mux::new().recv(&fr[..cut]);
            }
        }
        for round in 0..2_000 {
            let mut m = Mux::new();
            m.open("hypercore/alpha", Some(&[1; 32]), b"");
            m.open("p", None, b"");
            for _ in 0..8 {
                let fr = match rng.below(4) {
                    0 => {
                        let len = rng.below(40) as usize;
                        rng.bytes(len)
                    }
                    1 => {
                        // a small control frame with random ids
                        vec![
                            0,
                            rng.below(5) as u8,
                            rng.below(5) as u8,
                            rng.next() as u8,
                            b'p',
                            0,
                        ]
                    }
                    _ => {
                        let mut b = corpus[rng.below(corpus.len() as u64) as usize].clone();
                        for _ in 0..1 + rng.below(3) {
                            let i = rng.below(b.len() as u64) as usize;
                            b[i] = if round % 2 == 0 {
                                rng.next() as u8
                            } else {
                                rng.below(4) as u8
                            };
                        }
                        b.truncate(1 + rng.below(b.len() as u64) as usize);
                        b
                    }
                };
                if m.recv(&fr).is_err() {
                    break;
                }
                // the caller's side keeps working on the same mux
                let _ = m.send(rng.below(4), 1, b"x");
                let _ = m.reject(rng.below(4));
                let _ = m.close(rng.below(4));
            }
        }
    }
}
