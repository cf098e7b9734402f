//! One replication stream with one peer: its transport (our Noise + secretstream, or
//! frames already decrypted by a JS secret-stream), its Protomux, and the state of each
//! hypercore channel on it. No protocol decisions here; `Replicator` makes them.

use std::collections::VecDeque;

use super::coming::Coming;
use super::packed_commands::PackedCommands;
use crate::core::bitfield::Bitfield;
use crate::core::index_map::IntMap;
use crate::crypto::KeyPair;
use crate::encoding::compact::Writer;
use crate::error::{Error, Result};
use crate::wire::messages::{Handshake, Message, PROTOCOL, PROTOCOL_ALIASES};
use crate::wire::protomux::{Mux, MuxEvent};
use crate::wire::secretstream::{SecretStream, StreamEvent};

/// Most requests in flight on one channel: bounds what a slow peer makes us hold. A
/// channel on a JS Protomux may have this many (its round trips cross the JS thread twice
/// per side, docs/DECISIONS.md §60); one on our own stream `RAW_MAX_INFLIGHT`.
pub const MAX_INFLIGHT: usize = 4096;

/// Most requests in flight on one channel of a raw stream. More did not make a transfer
/// faster there, and a reader then held more of its input in JS stream buffers, which one
/// event-loop turn drained at once: the event loop's p99 delay rose from 4.0-4.2 to
/// 4.4-4.9 ms and its max from 10-11 to 12-20 ms.
const RAW_MAX_INFLIGHT: usize = 1024;

/// A channel starts with at most this many requests in flight and gains one per block
/// answered, up to its cap: the window doubles each round trip, as TCP's slow start. A
/// first round of 4096 requests (40 KB of them) was parsed by the sender's JS Protomux,
/// answered and verified while the JIT was cold, in one event-loop iteration of 20-40 ms
/// (docs/DECISIONS.md §70). 512 is hypercore's own most.
const START_INFLIGHT: usize = 512;

/// Our batch frames (one secretstream message each) stop growing past this size. The peer
/// can decrypt and process nothing of a message before all of it arrived, so a transfer's
/// answers go out in pieces the receiver works on while the next are made.
const RAW_BATCH: usize = 256 * 1024;

/// About how many bytes of blocks one channel asks for at once. A raw stream stops taking
/// input while more than 8 MB of its output is unread, so two of our streams that both
/// answer more than that at once would each wait for the other; asking for less than
/// that keeps what each side owes the other below it.
const INFLIGHT_BYTES: u64 = 4 * 1024 * 1024;
const MIN_INFLIGHT: usize = 16;

/// The block requests one channel may have in flight for a core whose blocks average
/// `byte_length / length` bytes.
pub fn inflight_limit(byte_length: u64, length: u64) -> usize {
    if length == 0 {
        return MAX_INFLIGHT;
    }
    let average = (byte_length / length).max(1);
    usize::try_from(INFLIGHT_BYTES / average)
        .unwrap_or(MAX_INFLIGHT)
        .clamp(MIN_INFLIGHT, MAX_INFLIGHT)
}

pub enum Transport {
    /// We run Noise + secretstream + Protomux: bytes in and out are the raw stream.
    Raw(Box<SecretStream>),
    /// A JS Protomux on a JS secret-stream (a Hyperswarm connection, shareable with the
    /// application's own protocols): channel events come in one by one, and channel
    /// commands go out for the facade to carry out on that Protomux.
    External,
}

/// What we know of the peer's copy of a core.
#[derive(Default)]
pub struct Remote {
    pub synced: bool,
    pub fork: u64,
    pub length: u64,
    /// The peer can prove its tree to us from the length it acknowledged (`length_acked`,
    /// its sync's remoteLength): upgrades are asked of it only then, as hypercore does.
    pub can_upgrade: bool,
    pub length_acked: u64,
    pub has_manifest: bool,
    /// The peer accepts blocks it did not ask for (its sync's allowPush).
    pub allow_push: bool,
    pub contiguous: u64,
    pub bitfield: Bitfield,
}

impl Remote {
    pub fn has(&self, index: u64) -> bool {
        index < self.contiguous || self.bitfield.get(index)
    }
}

pub enum Inflight {
    Block(u64),
    Upgrade,
    /// An upgrade that also asks for a wanted block past our length (hypercore asks for
    /// such a block together with the upgrade: one round trip).
    UpgradeBlock(u64),
    /// A proof of the peer's newer fork (upgrade from 0), or a hash proof that narrows the
    /// common ancestors of a reorg in progress.
    Reorg,
    /// A hash + seek proof for a byte offset (bytes, padding) that a local seek waits on.
    Seek(u64, u64),
}

pub struct Channel {
    pub handle: u32,
    pub key: [u8; 32],
    pub paired: bool,
    pub remote: Remote,
    pub inflight: IntMap<u64, Inflight>,
    /// A reorg that needs more hash proofs before it can be applied.
    pub reorg: Option<crate::core::proof::Reorg>,
    /// The name of the last extension message received: hypercore sends an empty name for
    /// "the same again".
    pub last_extension: String,
    /// The length we last told this peer we hold in full (hypercore's
    /// fullyDownloadedSignaled): becoming fully contiguous is always announced once.
    pub full_signaled: u64,
    /// The peer answered a seek proof request with no-data: not asked again for seeks
    /// until it tells us something new (sync or range).
    pub seek_refused: bool,
    /// Want batches (index / WANT_BATCH) we asked this peer about: it answers with what
    /// it holds there (bitfield or range), as hypercore's peers do.
    pub wants_sent: std::collections::BTreeSet<u64>,
    /// The peer sent data that did not verify: nothing more is asked of it (hypercore's
    /// paused peer) until a conflict check clears it.
    pub paused: bool,
    /// The length our pushed upgrades brought this peer to (hypercore's pushedLength):
    /// the next push continues from there.
    pub pushed_length: u64,
    /// Messages sent and received on this channel, and its trouble counters (hypercore's
    /// `peer.stats`). `stats.invalid_requests` counts requests we could not build a proof
    /// for: at MAX_INVALID_REQUESTS the connection ends.
    pub stats: WireStats,
    /// How fast this peer sends the blocks asked of it: ms from one answer to the next (or
    /// from the request, after a pause), a moving average. Decides hotswaps.
    pub service_ms: Option<u64>,
    /// When it last answered a block request (ms since the epoch; 0: never).
    pub answered_at: u64,
    /// When it was last asked for a block with none in flight (ms since the epoch).
    pub busy_since: u64,
    /// Blocks asked of this peer as hotswaps: when (the block's own request time is
    /// another peer's).
    pub swapped: IntMap<u64, u64>,
    /// The tree nodes the block requests in flight here will bring.
    pub coming: Coming,
    /// Most block requests in flight here now: from START_INFLIGHT up to `inflight_cap`
    pub max_inflight: usize,
    /// Most block requests in flight here (by transport: MAX_INFLIGHT or RAW_MAX_INFLIGHT)
    pub inflight_cap: usize,
}

impl Channel {
    /// Block `index`, asked for at `requested_at` (of this peer or, for a hotswap, of
    /// another), came at `now`.
    pub fn note_answer(&mut self, index: u64, requested_at: u64, now: u64) {
        let asked = self.swapped.remove(&index).unwrap_or(requested_at);
        let ms = now.saturating_sub(asked.max(self.answered_at));
        self.service_ms = Some(self.service_ms.map_or(ms, |avg| (avg * 3 + ms) / 4));
        self.answered_at = now;
        if self.max_inflight < self.inflight_cap {
            self.max_inflight += 1;
        }
    }

    /// How long this peer is taking per block now: its usual pace, or longer if it has
    /// been silent longer than that with blocks to send. None if it never answered.
    pub fn pace_ms(&self, now: u64) -> Option<u64> {
        let busy = self.blocks_in_flight().next().is_some();
        let silent = now.saturating_sub(self.answered_at.max(self.busy_since));
        self.service_ms
            .map(|ms| if busy { ms.max(silent) } else { ms })
    }

    /// A block request goes out on this channel, asking for `nodes` nodes; `relies`: that
    /// count stopped at a node another request here brings.
    pub fn ask(&mut self, id: u64, index: u64, nodes: u64, relies: bool) {
        if self.blocks_in_flight().next().is_none() {
            self.busy_since = crate::replication::now_ms();
        }
        self.inflight.insert(id, Inflight::Block(index));
        self.coming.add(id, index, nodes, relies);
    }

    /// Requests in flight and answers parked until what they need comes: what the
    /// in-flight limits bound (a parked answer holds its block as a request's answer would).
    pub fn holding(&self) -> usize {
        self.inflight.len() + self.coming.parked()
    }

    /// Request `id` is answered, refused or given up: what it was for, and whether it
    /// asked for fewer nodes because another request brings the rest.
    pub fn forget(&mut self, id: u64) -> Option<(Inflight, bool)> {
        let inflight = self.inflight.remove(&id)?;
        let relies = self.coming.remove(id).unwrap_or(false);
        Some((inflight, relies))
    }

    /// The block requests in flight on this channel.
    pub fn blocks_in_flight(&self) -> impl Iterator<Item = u64> + '_ {
        self.inflight.values().filter_map(|f| match f {
            Inflight::Block(i) => Some(*i),
            _ => None,
        })
    }
}

/// Message kinds counted by hypercore's stats, in wire type order (sync = 0 ... extension = 9).
pub const MESSAGE_KINDS: usize = 10;

/// hypercore's replicator and peer `stats`: messages by wire type sent (`tx`) and received
/// (`rx`), and counters of requests and data that went wrong.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireStats {
    pub tx: [u64; MESSAGE_KINDS],
    pub rx: [u64; MESSAGE_KINDS],
    pub hotswaps: u64,
    pub invalid_data: u64,
    pub invalid_requests: u64,
    pub backoffs: u64,
    pub not_available_backoffs: u64,
}

impl WireStats {
    pub fn add(&mut self, other: &WireStats) {
        for i in 0..MESSAGE_KINDS {
            self.tx[i] += other.tx[i];
            self.rx[i] += other.rx[i];
        }
        self.hotswaps += other.hotswaps;
        self.invalid_data += other.invalid_data;
        self.invalid_requests += other.invalid_requests;
        self.backoffs += other.backoffs;
        self.not_available_backoffs += other.not_available_backoffs;
    }

    fn count(counts: &mut [u64; MESSAGE_KINDS], message_type: u64) {
        if let Some(c) = usize::try_from(message_type)
            .ok()
            .and_then(|i| counts.get_mut(i))
        {
            *c += 1;
        }
    }

    pub fn sent(&mut self, message_type: u64) {
        Self::count(&mut self.tx, message_type);
    }

    /// hypercore counts every kind it receives but no-data and unwant.
    pub fn received(&mut self, message_type: u64) {
        use crate::wire::messages::message_type as t;
        if message_type != t::NO_DATA && message_type != t::UNWANT {
            Self::count(&mut self.rx, message_type);
        }
    }
}

pub struct Peer {
    pub is_initiator: bool,
    pub transport: Transport,
    pub handshake_hash: Option<[u8; 64]>,
    pub mux: Mux,
    pub channels: IntMap<u64, Channel>,
    pub by_handle: IntMap<u32, u64>,
    /// Cores to attach once the handshake is done.
    pub pending: Vec<u32>,
    /// A stream of `core.replicate()`: only these cores (handles) replicate on it, and a
    /// peer's channel for any other core is refused, never opened on demand. None: a
    /// store's stream, where every loaded core replicates.
    pub scope: Option<std::collections::HashSet<u32>>,
    /// Frames produced while handling one call, sent as one batch at its end.
    pub frames: Frames,
    /// Raw transport bytes to write (Raw transport only).
    pub raw_out: Vec<Vec<u8>>,
    /// Channel commands for the JS Protomux (External transport only), session 0 until
    /// the replicator moves them to its output.
    pub commands: PackedCommands,
    /// Bytes of messages sent since the last flush: a time-bounded call also ends at
    /// OUTPUT_SLICE of them (see Replicator::drain).
    pub unflushed: usize,
    next_external_channel: u64,
    pub next_request: u64,
    pub closed: bool,
    /// Other stores replicate on this raw stream too (`core.replicate(stream)` of a core in
    /// another Corestore): a peer's channel for a core we lack goes to them (an
    /// `Event::Relay`) instead of being rejected.
    pub hosts_guests: bool,
    /// Our channels that carry a guest store's core: their events go out as
    /// `Event::Relay` untouched, the guest's engine speaks the protocol on them.
    pub relays: std::collections::HashSet<u64>,
    /// The stream's JS Protomux view is in use: channels of other protocols go to it.
    pub js_mux: bool,
    /// What the peer sent and a time-bounded call left unprocessed: decrypted frames, and
    /// the events of a frame partly handled, in the order they came.
    pub backlog_frames: VecDeque<Vec<u8>>,
    pub backlog_events: VecDeque<MuxEvent>,
}

/// The frames of one call: their bytes back to back in one buffer, which the next call
/// reuses, instead of a buffer per message (the allocations were about 4% of a sending
/// worker's time in a pipe transfer; docs/DECISIONS.md §74).
#[derive(Default)]
pub struct Frames {
    bytes: Writer,
    ends: Vec<usize>,
}

impl Frames {
    /// What a call may leave allocated for the next: a call makes up to OUTPUT_SLICE
    /// (256 KiB) of messages before it flushes, rarely more.
    const KEEP: usize = 4 << 20;

    pub fn push(&mut self, frame: &[u8]) {
        self.bytes.buf.extend_from_slice(frame);
        self.end_frame();
    }

    /// The bytes written since the last frame's end are one frame.
    fn end_frame(&mut self) {
        self.ends.push(self.bytes.buf.len());
    }

    /// A message frame on our channel `local_id`, written in place (`Mux::write_message`):
    /// its size, 0 when the channel is not open (nothing is sent then).
    fn message(
        &mut self,
        mux: &Mux,
        local_id: u64,
        message_type: u64,
        len: usize,
        payload: impl FnOnce(&mut Writer),
    ) -> usize {
        let start = self.bytes.buf.len();
        if !mux.write_message(&mut self.bytes, local_id, message_type, len, payload) {
            return 0;
        }
        self.end_frame();
        self.bytes.buf.len() - start
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let bytes = &self.bytes.buf;
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let frame = &bytes[start..end];
            start = end;
            frame
        })
    }

    fn clear(&mut self) {
        self.bytes.buf.clear();
        self.ends.clear();
        if self.bytes.buf.capacity() > Self::KEEP {
            self.bytes.buf.shrink_to(Self::KEEP);
        }
    }
}

impl Peer {
    pub fn new(is_initiator: bool, transport: Transport, handshake_hash: Option<[u8; 64]>) -> Peer {
        Peer {
            is_initiator,
            transport,
            handshake_hash,
            mux: Mux::new(),
            channels: IntMap::default(),
            by_handle: IntMap::default(),
            pending: Vec::new(),
            scope: None,
            frames: Frames::default(),
            raw_out: Vec::new(),
            commands: PackedCommands::default(),
            unflushed: 0,
            next_external_channel: 1,
            next_request: 1,
            closed: false,
            hosts_guests: false,
            relays: Default::default(),
            js_mux: false,
            backlog_frames: VecDeque::new(),
            backlog_events: VecDeque::new(),
        }
    }

    pub fn has_backlog(&self) -> bool {
        !self.backlog_frames.is_empty() || !self.backlog_events.is_empty()
    }

    pub fn raw(is_initiator: bool, key_pair: KeyPair) -> Peer {
        let mut stream = SecretStream::new(is_initiator, key_pair);
        // Both sides send keep-alives (empty messages) on idle streams, as hypercore's
        // protocol streams do; they carry no frame.
        stream.set_filter_empty_messages(true);
        let first = stream
            .start()
            .into_iter()
            .filter_map(|ev| match ev {
                StreamEvent::Send(bytes) => Some(bytes),
                _ => None,
            })
            .collect();
        let mut peer = Peer::new(is_initiator, Transport::Raw(Box::new(stream)), None);
        peer.raw_out = first;
        peer
    }

    /// Whether the core with `handle` may replicate on this stream.
    pub fn in_scope(&self, handle: u32) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(&handle))
    }

    /// An empty message, so an idle stream stays up (raw transport, once open).
    pub fn keep_alive(&mut self) -> Result<()> {
        if let Transport::Raw(stream) = &mut self.transport {
            if stream.is_open() {
                let bytes = stream
                    .keep_alive()
                    .map_err(|e| Error::new(e.code, e.message))?;
                self.raw_out.push(bytes);
            }
        }
        Ok(())
    }

    /// Our Noise public key, where we run the handshake (known from the start).
    pub fn public_key(&self) -> Option<[u8; 32]> {
        match &self.transport {
            Transport::Raw(stream) => Some(*stream.public_key()),
            Transport::External => None,
        }
    }

    /// The peer's Noise public key, where we ran the handshake.
    pub fn remote_public_key(&self) -> Option<[u8; 32]> {
        match &self.transport {
            Transport::Raw(stream) => stream.remote_public_key().copied(),
            Transport::External => None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.handshake_hash.is_some()
    }

    /// Feeds transport bytes; returns the decrypted protomux frames.
    pub fn recv_raw(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let Transport::Raw(stream) = &mut self.transport else {
            return Err(Error::bad_argument(
                "this replication stream takes frames, not bytes",
            ));
        };
        let events = stream
            .recv(bytes)
            .map_err(|e| Error::new(e.code, e.message))?;
        let mut frames = Vec::new();
        for ev in events {
            match ev {
                StreamEvent::Send(b) => self.raw_out.push(b),
                StreamEvent::Open { handshake_hash, .. } => {
                    self.handshake_hash = Some(handshake_hash)
                }
                StreamEvent::Message(m) => frames.push(m),
            }
        }
        Ok(frames)
    }

    /// Decodes a frame `recv_raw` gave; its memory then takes the next frames.
    pub fn recv_frame(&mut self, frame: Vec<u8>) -> Result<Vec<MuxEvent>> {
        let events = self.mux.recv(&frame).map_err(|e| {
            Error::new(
                "INVALID_FRAME",
                format!("The peer sent an invalid frame: {e:?}"),
            )
        });
        if let Transport::Raw(stream) = &mut self.transport {
            stream.recycle(frame);
        }
        events
    }

    /// Opens the hypercore channel for a core (our half; pairs when the peer opens too).
    pub fn open_channel(
        &mut self,
        handle: u32,
        key: &[u8; 32],
        discovery_key: &[u8; 32],
    ) -> Option<u64> {
        if self.by_handle.contains_key(&handle) {
            return None;
        }
        let hash = self.handshake_hash?;
        let hs = Handshake::new(self.is_initiator, key, &hash);
        let (local_id, cap) = match self.transport {
            Transport::Raw(_) => {
                let (local_id, frame) = self.mux.open_with_aliases(
                    PROTOCOL,
                    PROTOCOL_ALIASES,
                    Some(discovery_key),
                    &hs.encode(),
                );
                self.frames.push(&frame);
                (local_id, RAW_MAX_INFLIGHT)
            }
            Transport::External => {
                let channel = self.next_external_channel;
                self.next_external_channel += 1;
                self.commands.open(channel, discovery_key, &hs.encode());
                (channel, MAX_INFLIGHT)
            }
        };
        self.channels.insert(
            local_id,
            Channel {
                handle,
                key: *key,
                paired: false,
                remote: Remote::default(),
                inflight: IntMap::default(),
                reorg: None,
                last_extension: String::new(),
                full_signaled: 0,
                seek_refused: false,
                wants_sent: Default::default(),
                paused: false,
                pushed_length: 0,
                stats: WireStats::default(),
                service_ms: None,
                answered_at: 0,
                busy_since: 0,
                swapped: IntMap::default(),
                coming: Coming::default(),
                max_inflight: START_INFLIGHT.min(cap),
                inflight_cap: cap,
            },
        );
        self.by_handle.insert(handle, local_id);
        Some(local_id)
    }

    /// Opens a channel on our Protomux for a guest store's core (raw transport only), with
    /// the handshake the guest's engine made: its local id.
    pub fn open_relay(&mut self, discovery_key: &[u8; 32], handshake: &[u8]) -> Option<u64> {
        if !matches!(self.transport, Transport::Raw(_)) || !self.is_open() {
            return None;
        }
        if self.mux.is_opened(PROTOCOL, Some(discovery_key)) {
            return None; // one channel per core and stream, as hypercore's unique channels
        }
        let (local_id, frame) =
            self.mux
                .open_with_aliases(PROTOCOL, PROTOCOL_ALIASES, Some(discovery_key), handshake);
        self.frames.push(&frame);
        self.relays.insert(local_id);
        Some(local_id)
    }

    /// Opens a channel of the JS Protomux view (raw transport only): any protocol, as
    /// protomux's createChannel, whose unique check the view makes. Its local id.
    pub fn open_relay_protocol(
        &mut self,
        protocol: &str,
        id: Option<&[u8]>,
        handshake: &[u8],
    ) -> Option<u64> {
        if !matches!(self.transport, Transport::Raw(_)) || !self.is_open() {
            return None;
        }
        let (local_id, frame) = self.mux.open(protocol, id, handshake);
        self.frames.push(&frame);
        self.relays.insert(local_id);
        Some(local_id)
    }

    /// A guest's message on its relay channel, bytes as its engine encoded them.
    pub fn send_relay(&mut self, local_id: u64, message_type: u64, payload: &[u8]) {
        if !self.relays.contains(&local_id) {
            return;
        }
        self.frames
            .message(&self.mux, local_id, message_type, payload.len(), |w| {
                w.fixed(payload);
            });
    }

    /// A guest closed its channel (its core or store closed).
    pub fn close_relay(&mut self, local_id: u64) {
        if self.relays.remove(&local_id) {
            self.close_channel(local_id);
        }
    }

    pub fn send(&mut self, local_id: u64, message: &Message) {
        if let Some(ch) = self.channels.get_mut(&local_id) {
            ch.stats.sent(message.message_type());
        }
        if let Transport::External = self.transport {
            self.unflushed += self.commands.send(
                local_id,
                message.message_type(),
                message.encoded_len_hint(),
                |w| message.encode_into(w),
            );
            return;
        }
        self.unflushed += self.frames.message(
            &self.mux,
            local_id,
            message.message_type(),
            message.encoded_len_hint(),
            |w| message.encode_into(w),
        );
    }

    /// Closes one of our channels on a raw stream (the core is going away); a JS Protomux
    /// closes its channels itself.
    pub fn close_channel(&mut self, local_id: u64) {
        if let Transport::Raw(_) = self.transport {
            let frame = self.mux.close(local_id);
            if !frame.is_empty() {
                self.frames.push(&frame);
            }
        }
    }

    /// Refuses a channel the peer opened (a JS Protomux does that itself when its pairing
    /// callback opens nothing).
    pub fn reject(&mut self, remote_id: u64) {
        if let Transport::Raw(_) = self.transport {
            let frame = self.mux.reject(remote_id);
            if !frame.is_empty() {
                self.frames.push(&frame);
            }
        }
    }

    /// Our channel for the core `handle` on this stream, with its local id.
    pub fn channel_of(&self, handle: u32) -> Option<(u64, &Channel)> {
        let id = *self.by_handle.get(&handle)?;
        Some((id, self.channels.get(&id)?))
    }

    pub fn channel_of_mut(&mut self, handle: u32) -> Option<(u64, &mut Channel)> {
        let id = *self.by_handle.get(&handle)?;
        Some((id, self.channels.get_mut(&id)?))
    }

    pub fn next_request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request = self.next_request.wrapping_add(1).max(1);
        id
    }

    /// The frames of this call as one batch, then as transport bytes where we encrypt.
    pub fn flush(&mut self) -> Result<Vec<Vec<u8>>> {
        self.unflushed = 0;
        let result = match &mut self.transport {
            Transport::External => Ok(Vec::new()),
            Transport::Raw(stream) => {
                let frames: Vec<&[u8]> = self.frames.iter().collect();
                let batched;
                let merged = if frames.len() > 1 {
                    batched = self.mux.batches(&frames, RAW_BATCH);
                    batched.iter().map(Vec::as_slice).collect()
                } else {
                    frames
                };
                let mut out = std::mem::take(&mut self.raw_out);
                let mut sent = Ok(());
                for frame in merged {
                    match stream.send(frame) {
                        Ok(bytes) => out.push(bytes),
                        Err(e) => {
                            sent = Err(Error::new(e.code, e.message));
                            break;
                        }
                    }
                }
                sent.map(|()| out)
            }
        };
        self.frames.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_as_they_went_in_and_clear_for_the_next_call() {
        let mut frames = Frames::default();
        frames.push(b"ab");
        frames.push(b"");
        frames.bytes.uint(7).fixed(b"xyz");
        frames.end_frame();
        let got: Vec<&[u8]> = frames.iter().collect();
        assert_eq!(got, vec![&b"ab"[..], &b""[..], &[7, b'x', b'y', b'z'][..]]);
        frames.clear();
        assert_eq!(frames.iter().count(), 0);
        frames.push(b"c");
        assert_eq!(frames.iter().collect::<Vec<_>>(), vec![&b"c"[..]]);
    }

    #[test]
    fn inflight_follows_the_block_size() {
        assert_eq!(inflight_limit(0, 0), MAX_INFLIGHT);
        assert_eq!(inflight_limit(1024 * 1000, 1000), MAX_INFLIGHT); // 1 KiB blocks
        assert_eq!(inflight_limit(64 * 1024 * 300, 300), 64); // 64 KiB blocks: 4 MiB
        assert_eq!(inflight_limit(15 << 20, 1), MIN_INFLIGHT); // huge blocks
        assert_eq!(inflight_limit(0, 10), MAX_INFLIGHT); // empty blocks
    }
}
