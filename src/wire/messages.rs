//! The hypercore/alpha protocol messages (hypercore 11 `lib/messages.js`, `wire.*`): the
//! channel handshake and the ten message types of a replication channel, byte-identical to
//! the JS encoders.
//!
//! Decoders are as tolerant as the JS ones: unknown flag bits are ignored, trailing bytes
//! are ignored (hypercore may append fields), the optional trailing flags of `noData`,
//! `want` and `unwant` may be absent. They never panic: a short or malformed payload is a
//! `DecodeError`, as a JS decode throw would be (which makes protomux destroy the stream).

use crate::core::manifest::Manifest;
pub use crate::encoding::compact::DecodeError;
use crate::encoding::compact::{Reader, Result, Writer};

/// The protomux protocol name of a hypercore replication channel; the channel id is the
/// core's discovery key and the open carries a [`Handshake`].
pub const PROTOCOL: &str = "hypercore/alpha";
/// Also accepted for a remote open (hypercore creates its channel with these aliases).
pub const PROTOCOL_ALIASES: &[&str] = &["hypercore"];

/// Message type ids: the index in the `messages` list of hypercore's `createChannel`.
pub mod message_type {
    pub const SYNC: u64 = 0;
    pub const REQUEST: u64 = 1;
    pub const CANCEL: u64 = 2;
    pub const DATA: u64 = 3;
    pub const NO_DATA: u64 = 4;
    pub const WANT: u64 = 5;
    pub const UNWANT: u64 = 6;
    pub const BITFIELD: u64 = 7;
    pub const RANGE: u64 = 8;
    pub const EXTENSION: u64 = 9;
}

/// `noData.reason` values hypercore sends (replicator.js).
pub mod no_data_reason {
    pub const UNKNOWN: u64 = 0;
    pub const NOT_AVAILABLE: u64 = 1;
    pub const INVALID_REQUEST: u64 = 2;
}

/// One hypercore/alpha message struct: `encode` gives the payload that follows the
/// protomux type id; `decode` reads one (tolerantly).
pub trait WireMessage: Sized {
    const TYPE: u64;
    fn encode_into(&self, w: &mut Writer);
    fn decode_from(r: &mut Reader<'_>) -> Result<Self>;

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_into(&mut w);
        w.into_vec()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_from(&mut Reader::new(bytes))
    }
}

macro_rules! inherent_codec {
    ($($t:ty),*) => {$(
        impl $t {
            /// The payload bytes (what follows the protomux type id).
            pub fn encode(&self) -> Vec<u8> {
                WireMessage::encode(self)
            }
            /// Decodes a payload; unknown flags and trailing bytes are ignored.
            pub fn decode(bytes: &[u8]) -> Result<Self> {
                <Self as WireMessage>::decode(bytes)
            }
        }
    )*};
}

fn bit(flags: u64, b: u64) -> bool {
    flags & b != 0
}

/// compact-encoding `string` decoded as JS does: invalid UTF-8 becomes U+FFFD, no error.
pub(crate) fn lossy_string(r: &mut Reader<'_>) -> Result<String> {
    Ok(String::from_utf8_lossy(r.buffer()?).into_owned())
}

// ---- the channel handshake -------------------------------------------------------------

/// The handshake in a hypercore/alpha channel open (`wire.handshake`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The peer supports seek requests (hypercore always sends true).
    pub seeks: bool,
    /// `caps.replicate(stream.isInitiator, core.key, stream.handshakeHash)`.
    pub capability: [u8; 32],
}

impl Handshake {
    /// The handshake we send for the core `key` on a stream whose Noise handshake hash is
    /// `handshake_hash`; `is_initiator` is our side of the Noise handshake.
    pub fn new(is_initiator: bool, key: &[u8; 32], handshake_hash: &[u8]) -> Handshake {
        Handshake {
            seeks: true,
            capability: crate::crypto::replicate_capability(is_initiator, key, handshake_hash),
        }
    }

    /// Checks the capability of the REMOTE handshake, as hypercore's `onopen`:
    /// `caps.replicate(!isInitiator, key, handshakeHash)` where `is_initiator` is our side.
    /// hypercore destroys the whole stream when this fails.
    pub fn verify(&self, is_initiator: bool, key: &[u8; 32], handshake_hash: &[u8]) -> bool {
        let expected = crate::crypto::replicate_capability(!is_initiator, key, handshake_hash);
        expected
            .iter()
            .zip(self.capability.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(33);
        self.encode_into(&mut w);
        w.into_vec()
    }

    pub fn encode_into(&self, w: &mut Writer) {
        w.uint(self.seeks as u64).fixed(&self.capability);
    }

    pub fn decode(bytes: &[u8]) -> Result<Handshake> {
        Self::decode_from(&mut Reader::new(bytes))
    }

    pub fn decode_from(r: &mut Reader<'_>) -> Result<Handshake> {
        let flags = r.uint()?;
        Ok(Handshake {
            seeks: bit(flags, 1),
            capability: r.array::<32>()?,
        })
    }
}

// ---- proof parts -----------------------------------------------------------------------

/// A merkle tree node in a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub index: u64,
    pub size: u64,
    pub hash: [u8; 32],
}

fn encode_nodes(w: &mut Writer, nodes: &[Node]) {
    w.uint(nodes.len() as u64);
    for n in nodes {
        w.uint(n.index).uint(n.size).fixed(&n.hash);
    }
}

fn decode_nodes(r: &mut Reader<'_>) -> Result<Vec<Node>> {
    let n = r.array_len()?;
    // a node takes at least 34 bytes: never trust the length for the allocation
    let mut out = Vec::with_capacity(n.min(r.remaining() / 34));
    for _ in 0..n {
        out.push(Node {
            index: r.uint()?,
            size: r.uint()?,
            hash: r.array::<32>()?,
        });
    }
    Ok(out)
}

/// `request.block` and `request.hash`. `index` is a block index for `block` and a tree
/// index (`2 * block`) for `hash`; `nodes` is how many tree nodes on the path up from it the
/// requester is missing (hypercore's `MerkleTree.missingNodes`; 0 when it does not know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBlock {
    pub index: u64,
    pub nodes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSeek {
    pub bytes: u64,
    pub padding: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUpgrade {
    pub start: u64,
    pub length: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlock {
    pub index: u64,
    pub value: Vec<u8>,
    pub nodes: Vec<Node>,
    /// The block's leaf hash when the receiver computed it already, with those of the
    /// answers around it (not on the wire).
    pub leaf: Option<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataHash {
    pub index: u64,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSeek {
    pub bytes: u64,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUpgrade {
    pub start: u64,
    pub length: u64,
    pub nodes: Vec<Node>,
    pub additional_nodes: Vec<Node>,
    /// `optionalBuffer`: an empty signature is encoded as (and decodes to) none.
    pub signature: Option<Vec<u8>>,
}

// ---- the ten messages ------------------------------------------------------------------

/// type 0: the peer's view of the core, sent on open and whenever it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sync {
    pub fork: u64,
    pub length: u64,
    pub remote_length: u64,
    pub can_upgrade: bool,
    pub uploading: bool,
    pub downloading: bool,
    pub has_manifest: bool,
    pub allow_push: bool,
}

impl WireMessage for Sync {
    const TYPE: u64 = message_type::SYNC;
    fn encode_into(&self, w: &mut Writer) {
        let flags = self.can_upgrade as u64
            | (self.uploading as u64) << 1
            | (self.downloading as u64) << 2
            | (self.has_manifest as u64) << 3
            | (self.allow_push as u64) << 4;
        w.uint(flags)
            .uint(self.fork)
            .uint(self.length)
            .uint(self.remote_length);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let flags = r.uint()?;
        Ok(Sync {
            fork: r.uint()?,
            length: r.uint()?,
            remote_length: r.uint()?,
            can_upgrade: bit(flags, 1),
            uploading: bit(flags, 2),
            downloading: bit(flags, 4),
            has_manifest: bit(flags, 8),
            allow_push: bit(flags, 16),
        })
    }
}

/// type 1. `priority` 0 means none (not encoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub fork: u64,
    pub block: Option<RequestBlock>,
    pub hash: Option<RequestBlock>,
    pub seek: Option<RequestSeek>,
    pub upgrade: Option<RequestUpgrade>,
    /// The requester wants the manifest (flag only, no body).
    pub manifest: bool,
    pub priority: u64,
}

impl WireMessage for Request {
    const TYPE: u64 = message_type::REQUEST;
    fn encode_into(&self, w: &mut Writer) {
        let flags = self.block.is_some() as u64
            | (self.hash.is_some() as u64) << 1
            | (self.seek.is_some() as u64) << 2
            | (self.upgrade.is_some() as u64) << 3
            | (self.manifest as u64) << 4
            | ((self.priority != 0) as u64) << 5;
        w.uint(flags).uint(self.id).uint(self.fork);
        if let Some(b) = &self.block {
            w.uint(b.index).uint(b.nodes);
        }
        if let Some(h) = &self.hash {
            w.uint(h.index).uint(h.nodes);
        }
        if let Some(s) = &self.seek {
            w.uint(s.bytes).uint(s.padding);
        }
        if let Some(u) = &self.upgrade {
            w.uint(u.start).uint(u.length);
        }
        if self.priority != 0 {
            w.uint(self.priority);
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let flags = r.uint()?;
        let id = r.uint()?;
        let fork = r.uint()?;
        let mut block_of = |set: bool| -> Result<Option<RequestBlock>> {
            Ok(if set {
                Some(RequestBlock {
                    index: r.uint()?,
                    nodes: r.uint()?,
                })
            } else {
                None
            })
        };
        let block = block_of(bit(flags, 1))?;
        let hash = block_of(bit(flags, 2))?;
        let seek = if bit(flags, 4) {
            Some(RequestSeek {
                bytes: r.uint()?,
                padding: r.uint()?,
            })
        } else {
            None
        };
        let upgrade = if bit(flags, 8) {
            Some(RequestUpgrade {
                start: r.uint()?,
                length: r.uint()?,
            })
        } else {
            None
        };
        let priority = if bit(flags, 32) { r.uint()? } else { 0 };
        Ok(Request {
            id,
            fork,
            block,
            hash,
            seek,
            upgrade,
            manifest: bit(flags, 16),
            priority,
        })
    }
}

/// type 2: the request with this id is no longer wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cancel {
    pub request: u64,
}

impl WireMessage for Cancel {
    const TYPE: u64 = message_type::CANCEL;
    fn encode_into(&self, w: &mut Writer) {
        w.uint(self.request);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Cancel { request: r.uint()? })
    }
}

/// type 3: the answer to a request, with its proof and (when asked for) the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Data {
    pub request: u64,
    pub fork: u64,
    pub block: Option<DataBlock>,
    pub hash: Option<DataHash>,
    pub seek: Option<DataSeek>,
    pub upgrade: Option<DataUpgrade>,
    pub manifest: Option<Manifest>,
}

impl WireMessage for Data {
    const TYPE: u64 = message_type::DATA;
    fn encode_into(&self, w: &mut Writer) {
        let flags = self.block.is_some() as u64
            | (self.hash.is_some() as u64) << 1
            | (self.seek.is_some() as u64) << 2
            | (self.upgrade.is_some() as u64) << 3
            | (self.manifest.is_some() as u64) << 4;
        w.uint(flags).uint(self.request).uint(self.fork);
        if let Some(b) = &self.block {
            w.uint(b.index).buffer(&b.value);
            encode_nodes(w, &b.nodes);
        }
        if let Some(h) = &self.hash {
            w.uint(h.index);
            encode_nodes(w, &h.nodes);
        }
        if let Some(s) = &self.seek {
            w.uint(s.bytes);
            encode_nodes(w, &s.nodes);
        }
        if let Some(u) = &self.upgrade {
            w.uint(u.start).uint(u.length);
            encode_nodes(w, &u.nodes);
            encode_nodes(w, &u.additional_nodes);
            w.opt_buffer(u.signature.as_deref());
        }
        if let Some(m) = &self.manifest {
            m.encode_into(w);
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let flags = r.uint()?;
        let request = r.uint()?;
        let fork = r.uint()?;
        let block = if bit(flags, 1) {
            Some(DataBlock {
                index: r.uint()?,
                value: r.buffer()?.to_vec(),
                nodes: decode_nodes(r)?,
                leaf: None,
            })
        } else {
            None
        };
        let hash = if bit(flags, 2) {
            Some(DataHash {
                index: r.uint()?,
                nodes: decode_nodes(r)?,
            })
        } else {
            None
        };
        let seek = if bit(flags, 4) {
            Some(DataSeek {
                bytes: r.uint()?,
                nodes: decode_nodes(r)?,
            })
        } else {
            None
        };
        let upgrade = if bit(flags, 8) {
            Some(DataUpgrade {
                start: r.uint()?,
                length: r.uint()?,
                nodes: decode_nodes(r)?,
                additional_nodes: decode_nodes(r)?,
                signature: r.opt_buffer()?.map(|s| s.to_vec()),
            })
        } else {
            None
        };
        let manifest = if bit(flags, 16) {
            Some(Manifest::decode_from(r)?)
        } else {
            None
        };
        Ok(Data {
            request,
            fork,
            block,
            hash,
            seek,
            upgrade,
            manifest,
        })
    }
}

/// type 4: the request cannot be answered. `reason` 0 = none given (then not encoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoData {
    pub request: u64,
    pub reason: u64,
}

impl WireMessage for NoData {
    const TYPE: u64 = message_type::NO_DATA;
    fn encode_into(&self, w: &mut Writer) {
        w.uint(self.request);
        if self.reason != 0 {
            w.uint(1).uint(self.reason);
        } else {
            w.uint(0);
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let request = r.uint()?;
        let flags = if r.is_empty() { 0 } else { r.uint()? };
        let reason = if bit(flags, 1) { r.uint()? } else { 0 };
        Ok(NoData { request, reason })
    }
}

/// types 5 and 6: the range the peer wants (or no longer wants) to hear about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Want {
    pub start: u64,
    pub length: u64,
    pub any: bool,
}

fn encode_want(w: &mut Writer, start: u64, length: u64, any: bool) {
    w.uint(start).uint(length);
    if any {
        w.uint(1);
    }
}

fn decode_want(r: &mut Reader<'_>) -> Result<(u64, u64, bool)> {
    let start = r.uint()?;
    let length = r.uint()?;
    let flags = if r.is_empty() { 0 } else { r.uint()? };
    Ok((start, length, bit(flags, 1)))
}

impl WireMessage for Want {
    const TYPE: u64 = message_type::WANT;
    fn encode_into(&self, w: &mut Writer) {
        encode_want(w, self.start, self.length, self.any);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let (start, length, any) = decode_want(r)?;
        Ok(Want { start, length, any })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unwant {
    pub start: u64,
    pub length: u64,
    pub any: bool,
}

impl WireMessage for Unwant {
    const TYPE: u64 = message_type::UNWANT;
    fn encode_into(&self, w: &mut Writer) {
        encode_want(w, self.start, self.length, self.any);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let (start, length, any) = decode_want(r)?;
        Ok(Unwant { start, length, any })
    }
}

/// type 7: a page of the peer's bitfield, 32-bit little-endian words from block `start`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitfield {
    pub start: u64,
    pub bitfield: Vec<u32>,
}

impl WireMessage for Bitfield {
    const TYPE: u64 = message_type::BITFIELD;
    fn encode_into(&self, w: &mut Writer) {
        w.uint(self.start).uint(self.bitfield.len() as u64);
        for word in &self.bitfield {
            w.fixed(&word.to_le_bytes());
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let start = r.uint()?;
        let n = r.uint()?;
        let bytes = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(4))
            .ok_or(DecodeError("out of bounds"))?;
        let raw = r.take(bytes)?;
        let bitfield = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Bitfield { start, bitfield })
    }
}

/// type 8: the peer has (or, with `drop`, no longer has) blocks `start..start + length`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Range {
    pub drop: bool,
    pub start: u64,
    pub length: u64,
}

impl WireMessage for Range {
    const TYPE: u64 = message_type::RANGE;
    fn encode_into(&self, w: &mut Writer) {
        let flags = self.drop as u64 | ((self.length == 1) as u64) << 1;
        w.uint(flags).uint(self.start);
        if self.length != 1 {
            w.uint(self.length);
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let flags = r.uint()?;
        let start = r.uint()?;
        let length = if bit(flags, 2) { 1 } else { r.uint()? };
        Ok(Range {
            drop: bit(flags, 1),
            start,
            length,
        })
    }
}

/// type 9: a session extension message. hypercore sends an empty `name` when it is the
/// same as the previous extension message's name on this channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extension {
    pub name: String,
    pub message: Vec<u8>,
}

impl WireMessage for Extension {
    const TYPE: u64 = message_type::EXTENSION;
    fn encode_into(&self, w: &mut Writer) {
        w.string(&self.name).fixed(&self.message);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let name = lossy_string(r)?;
        let message = r.rest().to_vec();
        // consume the rest: the message is raw to the end of the payload
        let _ = r.take(message.len());
        Ok(Extension { name, message })
    }
}

inherent_codec!(Sync, Request, Cancel, Data, NoData, Want, Unwant, Bitfield, Range, Extension);

/// Any hypercore/alpha channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Sync(Sync),
    Request(Request),
    Cancel(Cancel),
    /// Boxed: a data message is much larger than the others.
    Data(Box<Data>),
    NoData(NoData),
    Want(Want),
    Unwant(Unwant),
    Bitfield(Bitfield),
    Range(Range),
    Extension(Extension),
}

impl Message {
    pub fn message_type(&self) -> u64 {
        match self {
            Message::Sync(_) => Sync::TYPE,
            Message::Request(_) => Request::TYPE,
            Message::Cancel(_) => Cancel::TYPE,
            Message::Data(_) => Data::TYPE,
            Message::NoData(_) => NoData::TYPE,
            Message::Want(_) => Want::TYPE,
            Message::Unwant(_) => Unwant::TYPE,
            Message::Bitfield(_) => Bitfield::TYPE,
            Message::Range(_) => Range::TYPE,
            Message::Extension(_) => Extension::TYPE,
        }
    }

    /// The payload (without the type id; `Mux::send` adds it).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut w);
        w.into_vec()
    }

    /// About the payload's length, at least for the bulky messages (a block and its
    /// proof): what to reserve so that encoding does not grow the buffer, copying, on
    /// every block sent.
    pub fn encoded_len_hint(&self) -> usize {
        // a node: index and size (compact uints, up to 9 bytes each), hash
        let nodes = |n: &[Node]| 1 + n.len() * 50;
        const SMALL: usize = 32;
        match self {
            Message::Data(m) => {
                let block = m
                    .block
                    .as_ref()
                    .map_or(0, |b| 20 + b.value.len() + nodes(&b.nodes));
                let hash = m.hash.as_ref().map_or(0, |h| 10 + nodes(&h.nodes));
                let seek = m.seek.as_ref().map_or(0, |s| 10 + nodes(&s.nodes));
                let upgrade = m.upgrade.as_ref().map_or(0, |u| {
                    20 + nodes(&u.nodes) + nodes(&u.additional_nodes) + 70
                });
                // the manifest, when asked for, is rare: let it grow the buffer
                SMALL + block + hash + seek + upgrade
            }
            Message::Bitfield(m) => SMALL + m.bitfield.len() * 4,
            Message::Extension(m) => SMALL + m.message.len(),
            _ => SMALL,
        }
    }

    /// Appends the payload to `w`.
    pub fn encode_into(&self, w: &mut Writer) {
        match self {
            Message::Sync(m) => m.encode_into(w),
            Message::Request(m) => m.encode_into(w),
            Message::Cancel(m) => m.encode_into(w),
            Message::Data(m) => m.encode_into(w),
            Message::NoData(m) => m.encode_into(w),
            Message::Want(m) => m.encode_into(w),
            Message::Unwant(m) => m.encode_into(w),
            Message::Bitfield(m) => m.encode_into(w),
            Message::Range(m) => m.encode_into(w),
            Message::Extension(m) => m.encode_into(w),
        }
    }

    /// Decodes the payload of a message of type `message_type`. `Ok(None)` for a type this
    /// protocol does not know: protomux ignores those (a newer peer may send them).
    pub fn decode(message_type: u64, payload: &[u8]) -> Result<Option<Message>> {
        use crate::wire::messages::message_type as t;
        Ok(Some(match message_type {
            t::SYNC => Message::Sync(Sync::decode(payload)?),
            t::REQUEST => Message::Request(Request::decode(payload)?),
            t::CANCEL => Message::Cancel(Cancel::decode(payload)?),
            t::DATA => Message::Data(Box::new(Data::decode(payload)?)),
            t::NO_DATA => Message::NoData(NoData::decode(payload)?),
            t::WANT => Message::Want(Want::decode(payload)?),
            t::UNWANT => Message::Unwant(Unwant::decode(payload)?),
            t::BITFIELD => Message::Bitfield(Bitfield::decode(payload)?),
            t::RANGE => Message::Range(Range::decode(payload)?),
            t::EXTENSION => Message::Extension(Extension::decode(payload)?),
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::test_vectors::{load, Json};
    use crate::crypto::{from_hex, hex};

    pub(crate) fn vectors() -> Json {
        load(&["__test__/fixtures/wire-mux-vectors.json"])
    }

    fn nodes(j: &Json) -> Vec<Node> {
        j.arr()
            .iter()
            .map(|n| Node {
                index: n.get("index").u64(),
                size: n.get("size").u64(),
                hash: n.get("hash").b32(),
            })
            .collect()
    }

    fn opt<T>(j: &Json, f: impl Fn(&Json) -> T) -> Option<T> {
        (!j.is_null()).then(|| f(j))
    }

    fn req_block(j: &Json) -> RequestBlock {
        RequestBlock {
            index: j.get("index").u64(),
            nodes: j.get("nodes").u64(),
        }
    }

    /// The message a vector's JSON value describes.
    fn expected(kind: u64, v: &Json) -> Message {
        let u = |k: &str| v.get(k).u64();
        let b = |k: &str| v.get(k).bool();
        match kind {
            0 => Message::Sync(Sync {
                fork: u("fork"),
                length: u("length"),
                remote_length: u("remoteLength"),
                can_upgrade: b("canUpgrade"),
                uploading: b("uploading"),
                downloading: b("downloading"),
                has_manifest: b("hasManifest"),
                allow_push: b("allowPush"),
            }),
            1 => Message::Request(Request {
                id: u("id"),
                fork: u("fork"),
                block: opt(v.get("block"), req_block),
                hash: opt(v.get("hash"), req_block),
                seek: opt(v.get("seek"), |s| RequestSeek {
                    bytes: s.get("bytes").u64(),
                    padding: s.get("padding").u64(),
                }),
                upgrade: opt(v.get("upgrade"), |s| RequestUpgrade {
                    start: s.get("start").u64(),
                    length: s.get("length").u64(),
                }),
                manifest: b("manifest"),
                priority: u("priority"),
            }),
            2 => Message::Cancel(Cancel {
                request: u("request"),
            }),
            3 => Message::Data(Box::new(Data {
                request: u("request"),
                fork: u("fork"),
                block: opt(v.get("block"), |j| DataBlock {
                    index: j.get("index").u64(),
                    value: from_hex(j.get("value").str()).unwrap(),
                    nodes: nodes(j.get("nodes")),
                    leaf: None,
                }),
                hash: opt(v.get("hash"), |j| DataHash {
                    index: j.get("index").u64(),
                    nodes: nodes(j.get("nodes")),
                }),
                seek: opt(v.get("seek"), |j| DataSeek {
                    bytes: j.get("bytes").u64(),
                    nodes: nodes(j.get("nodes")),
                }),
                upgrade: opt(v.get("upgrade"), |j| DataUpgrade {
                    start: j.get("start").u64(),
                    length: j.get("length").u64(),
                    nodes: nodes(j.get("nodes")),
                    additional_nodes: nodes(j.get("additionalNodes")),
                    signature: opt(j.get("signature"), |s| s.bytes()),
                }),
                manifest: opt(v.get("manifest"), |m| {
                    let bytes = m.bytes();
                    let manifest = Manifest::decode(&bytes).unwrap();
                    assert_eq!(manifest.encode(), bytes, "manifest re-encodes");
                    manifest
                }),
            })),
            4 => Message::NoData(NoData {
                request: u("request"),
                reason: u("reason"),
            }),
            5 => Message::Want(Want {
                start: u("start"),
                length: u("length"),
                any: b("any"),
            }),
            6 => Message::Unwant(Unwant {
                start: u("start"),
                length: u("length"),
                any: b("any"),
            }),
            7 => Message::Bitfield(Bitfield {
                start: u("start"),
                bitfield: v
                    .get("bitfield")
                    .arr()
                    .iter()
                    .map(|w| w.u64() as u32)
                    .collect(),
            }),
            8 => Message::Range(Range {
                drop: b("drop"),
                start: u("start"),
                length: u("length"),
            }),
            9 => Message::Extension(Extension {
                name: v.get("name").str().to_string(),
                message: from_hex(v.get("message").str()).unwrap(),
            }),
            _ => panic!("unknown type {kind}"),
        }
    }

    fn expected_handshake(v: &Json) -> Handshake {
        Handshake {
            seeks: v.get("seeks").bool(),
            capability: v.get("capability").b32(),
        }
    }

    /// Decodes `bytes` as the vector `v` says and returns what it decoded to, as a
    /// comparable string (handshakes and messages alike).
    fn decode_as(v: &Json, bytes: &[u8]) -> std::result::Result<String, DecodeError> {
        if v.get("type").is_null() {
            Handshake::decode(bytes).map(|h| format!("{h:?}"))
        } else {
            Message::decode(v.get("type").u64(), bytes)
                .map(|m| format!("{:?}", m.expect("known type")))
        }
    }

    fn expected_debug(v: &Json) -> String {
        if v.get("type").is_null() {
            format!("{:?}", expected_handshake(v.get("value")))
        } else {
            format!("{:?}", expected(v.get("type").u64(), v.get("value")))
        }
    }

    #[test]
    fn message_vectors_round_trip_byte_identical() {
        let vectors = vectors();
        let list = vectors.get("messages").arr();
        assert!(list.len() >= 30);
        let mut seen = [false; 10];
        for v in list {
            let name = v.get("name").str();
            let bytes = v.get("hex").bytes();
            if v.get("type").is_null() {
                let want = expected_handshake(v.get("value"));
                assert_eq!(Handshake::decode(&bytes).unwrap(), want, "{name}");
                assert_eq!(want.encode(), bytes, "{name}");
                continue;
            }
            let kind = v.get("type").u64();
            let want = expected(kind, v.get("value"));
            seen[kind as usize] = true;
            assert_eq!(want.message_type(), kind, "{name}");
            let got = Message::decode(kind, &bytes).unwrap().unwrap();
            assert_eq!(got, want, "{name}");
            assert_eq!(hex(&want.encode()), hex(&bytes), "{name} encodes as JS");
        }
        assert!(seen.iter().all(|&s| s), "every message type has a vector");
    }

    #[test]
    fn js_tolerance_vectors_decode() {
        let vectors = vectors();
        let list = vectors.get("messages").arr();
        for t in vectors.get("tolerant").arr() {
            let of = list
                .iter()
                .find(|v| v.get("name").str() == t.get("of").str())
                .unwrap();
            let got = decode_as(of, &t.get("hex").bytes()).unwrap();
            assert_eq!(got, expected_debug(of), "{}", t.get("name").str());
        }
    }

    #[test]
    fn trailing_bytes_and_unknown_flags_are_ignored() {
        let vectors = vectors();
        for v in vectors.get("messages").arr() {
            let name = v.get("name").str();
            let kind = v.get("type");
            let bytes = v.get("hex").bytes();
            let want = expected_debug(v);
            // an extension's message runs to the end; want/unwant without `any` and noData
            // end in optional fields that trailing bytes would be read as (in JS too)
            let open_ended = !kind.is_null() && [5, 6, 9].contains(&kind.u64());
            if !open_ended || name.ends_with("-any") {
                let mut more = bytes.clone();
                more.extend_from_slice(&[0x00, 0xff, 0xfd, 0x07]);
                assert_eq!(decode_as(v, &more).unwrap(), want, "{name} + trailing");
            }
            // flag-led messages: set a bit no version defines
            let flag_led = kind.is_null() || [0, 1, 3, 8].contains(&kind.u64());
            if flag_led && bytes[0] < 0x40 {
                let mut flagged = bytes.clone();
                flagged[0] |= 0x40;
                assert_eq!(decode_as(v, &flagged).unwrap(), want, "{name} + flag");
            }
        }
    }

    /// xorshift64*: deterministic bytes for the fuzz loops.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        pub fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn truncated_and_garbage_payloads_error_never_panic() {
        let vectors = vectors();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for v in vectors.get("messages").arr() {
            let name = v.get("name").str();
            let bytes = v.get("hex").bytes();
            let kind = v.get("type");
            // every field of these is required: any strict prefix is an error
            let strict = kind.is_null() || [0, 1, 2, 3, 7, 8].contains(&kind.u64());
            for cut in 0..bytes.len() {
                let r = decode_as(v, &bytes[..cut]);
                if strict {
                    assert!(r.is_err(), "{name} cut at {cut} must not decode");
                }
            }
            for _ in 0..300 {
                let mut b = bytes.clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] = rng.next() as u8;
                }
                let _ = decode_as(v, &b);
            }
        }
        for _ in 0..20_000 {
            let len = rng.below(80) as usize;
            let b = rng.bytes(len);
            let _ = Handshake::decode(&b);
            for kind in 0..11 {
                let _ = Message::decode(kind, &b);
            }
        }
        // lengths far beyond the input allocate nothing and fail
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        let mut b = vec![0u8];
        b.extend_from_slice(&huge);
        assert!(Bitfield::decode(&b).is_err());
        assert!(Data::decode(&[1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(Data::decode(&[1, 0, 0, 0, 0, 0xfe, 0, 0, 0x10, 0]).is_err());
    }

    #[test]
    fn unknown_message_types_decode_to_none() {
        assert_eq!(Message::decode(10, &[1, 2, 3]), Ok(None));
        assert_eq!(Message::decode(u64::MAX, &[]), Ok(None));
    }

    #[test]
    fn capabilities_match_js() {
        let vectors = vectors();
        for c in vectors.get("capabilities").arr() {
            let key = c.get("key").b32();
            let hh = c.get("handshakeHash").bytes();
            let init = c.get("isInitiator").bool();
            let hs = Handshake::new(init, &key, &hh);
            assert_eq!(hs.capability, c.get("capability").b32());
            assert!(hs.seeks);
            // the other side verifies it with its own (opposite) initiator flag
            assert!(hs.verify(!init, &key, &hh));
            assert!(!hs.verify(init, &key, &hh));
        }
    }

    /// A block with its proof, a seek and an upgrade at the largest varints: the hint
    /// covers the encoding, so encoding never grows (and copies) its buffer.
    #[test]
    fn the_length_hint_covers_a_data_message() {
        let node = |i: u64| Node {
            index: u64::MAX - i,
            size: u64::MAX,
            hash: [7; 32],
        };
        let nodes = |n: u64| (0..n).map(node).collect::<Vec<_>>();
        let data = Message::Data(Box::new(Data {
            request: u64::MAX,
            fork: u64::MAX,
            block: Some(DataBlock {
                index: u64::MAX,
                value: vec![1; 1024],
                nodes: nodes(20),
                leaf: None,
            }),
            hash: None,
            seek: Some(DataSeek {
                bytes: u64::MAX,
                nodes: nodes(1),
            }),
            upgrade: Some(DataUpgrade {
                start: u64::MAX,
                length: u64::MAX,
                nodes: nodes(30),
                additional_nodes: nodes(10),
                signature: Some(vec![9; 64]),
            }),
            manifest: None,
        }));
        let bytes = data.encode();
        let hint = data.encoded_len_hint();
        // decoding what this test encoded: an error here is the test failing
        assert!(bytes.len() <= hint, "{} > {hint}", bytes.len());
        assert_eq!(bytes.capacity(), hint, "the buffer never grew");
        assert_eq!(Message::decode(Data::TYPE, &bytes).unwrap(), Some(data));
    }
}
