//! The @hyperswarm/secret-stream wire (v6), sans-IO: bytes in, bytes and events out.
//!
//! Framing: every frame on the raw transport is a 3-byte little-endian length followed by
//! that many bytes (so a frame body is at most 2^24 - 1 bytes; secret-stream has no other
//! limit). The frames, in order, each way:
//!
//! 1. the Noise XX handshake messages (see `noise.rs`; 32, 96 and 64 bytes, initiator first);
//! 2. once the handshake completes, each side sends one 56-byte header frame:
//!    `stream id (32) || crypto_secretstream_xchacha20poly1305 header (24)`, where the stream
//!    id is `BLAKE2b-256(NS_INITIATOR or NS_RESPONDER, key = handshake hash)` for the
//!    sender's role (`NS_* = crypto.namespace('hyperswarm/secret-stream', 3)`), and the
//!    secretstream key is the sender's Noise tx key;
//! 3. then every app message is one frame: the secretstream ciphertext of the message with
//!    TAG_MESSAGE, i.e. `encrypted tag (1) || ciphertext || MAC (16)`, 17 bytes more than the
//!    message. Empty messages are legal: secret-stream's keepalive is an empty message (sent
//!    by hypercore's protocol streams every 5 s of write idleness), and a side with keepalive
//!    on drops empty messages it receives (`set_filter_empty_messages`).
//!
//! There is no in-band close: the JS ends its side by ending the raw stream (half-close)
//! and never sends a TAG_FINAL message. The caller maps transport EOF to end-of-stream.
//! secret-stream's UDP `send`/`trySend` secretbox messages only exist on UDX transports
//! and are not part of this byte stream.

pub use super::noise::WireError;
use super::noise::{Handshake, HandshakeResult, MAX_HANDSHAKE_MESSAGE};
use crate::crypto::{self, KeyPair};
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::{ChaCha20, R20};
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::Poly1305;
use std::sync::OnceLock;

/// The largest frame body the 3-byte length prefix can carry, and secret-stream's
/// `MAX_ATOMIC_WRITE`. It is also our receive limit for app frames by default.
pub const MAX_FRAME: usize = 0xff_ffff;
/// The largest app message one frame can carry.
pub const MAX_MESSAGE: usize = MAX_FRAME - ABYTES;

/// Buffers kept for the next messages: how many, and up to what size (our peers' batch
/// frames stay under 256 KiB; a rare larger one is not held on to).
const SPARE_BUFFERS: usize = 4;
const KEPT_BUFFER: usize = 1 << 20;
/// libsodium `crypto_secretstream_xchacha20poly1305_ABYTES`.
pub const ABYTES: usize = 17;
/// libsodium `crypto_secretstream_xchacha20poly1305_HEADERBYTES`.
pub const HEADERBYTES: usize = 24;
/// The header frame body: stream id and secretstream header.
pub const IDHEADERBYTES: usize = 32 + HEADERBYTES;

pub const TAG_MESSAGE: u8 = 0;
pub const TAG_PUSH: u8 = 1;
pub const TAG_REKEY: u8 = 2;
pub const TAG_FINAL: u8 = TAG_PUSH | TAG_REKEY;

/// An event of a `SecretStream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// Raw bytes to write to the transport, in order.
    Send(Vec<u8>),
    /// The handshake completed: `send` works from now on.
    Open {
        remote_public_key: [u8; 32],
        handshake_hash: [u8; 64],
    },
    /// One decrypted app message.
    Message(Vec<u8>),
}

/// `crypto.namespace('hyperswarm/secret-stream', 3)`: initiator, responder, send.
fn namespaces() -> &'static [[u8; 32]; 3] {
    static NS: OnceLock<[[u8; 32]; 3]> = OnceLock::new();
    NS.get_or_init(|| {
        let list = crypto::crypto_namespace(b"hyperswarm/secret-stream", &[0, 1, 2]);
        let mut out = [[0u8; 32]; 3];
        for (o, l) in out.iter_mut().zip(list) {
            *o = l;
        }
        out
    })
}

/// secret-stream `NoiseSecretStream.id(handshakeHash, isInitiator)`.
pub fn stream_id(handshake_hash: &[u8; 64], is_initiator: bool) -> [u8; 32] {
    let ns = &namespaces()[if is_initiator { 0 } else { 1 }];
    crypto::hash_keyed(&[ns], Some(handshake_hash))
}

// ---------------------------------------------------------------------------------------
// libsodium crypto_secretstream_xchacha20poly1305

/// The state of one direction of libsodium's crypto_secretstream_xchacha20poly1305:
/// a ChaCha20 key (HChaCha20 of the key and the first 16 header bytes) and an IETF nonce of
/// a 32-bit block counter (starting at 1) and an 8-bit "inonce" (the last 8 header bytes).
#[derive(Clone)]
pub struct SodiumSecretStream {
    k: [u8; 32],
    nonce: [u8; 12],
}

impl SodiumSecretStream {
    /// `init_push` / `init_pull` with a given header.
    pub fn new(key: &[u8; 32], header: &[u8; HEADERBYTES]) -> SodiumSecretStream {
        let mut input = [0u8; 16];
        input.copy_from_slice(&header[..16]);
        let subkey = chacha20::hchacha::<R20>(key.into(), &input.into());
        let mut k = [0u8; 32];
        k.copy_from_slice(&subkey);
        let mut nonce = [0u8; 12];
        nonce[0] = 1;
        nonce[4..].copy_from_slice(&header[16..]);
        SodiumSecretStream { k, nonce }
    }

    /// `init_push` with a random header; returns the state and the header to send.
    pub fn new_push(key: &[u8; 32]) -> (SodiumSecretStream, [u8; HEADERBYTES]) {
        let mut header = [0u8; HEADERBYTES];
        crypto::fill_random(&mut header);
        (SodiumSecretStream::new(key, &header), header)
    }

    fn cipher(&self, block_counter: u64) -> ChaCha20 {
        let mut c = ChaCha20::new(&self.k.into(), &self.nonce.into());
        c.seek(64 * block_counter);
        c
    }

    /// The Poly1305 tag over `block || c || pad || lengths`. libsodium pads the ciphertext
    /// with `(0x10 - 64 + mlen) & 0xf` = `mlen % 16` zero bytes (not up to a multiple of 16),
    /// so the stream is not block-aligned and the last block may be partial.
    fn mac(&self, block: &[u8; 64], c: &[u8]) -> [u8; 16] {
        let mut poly_key = [0u8; 32];
        self.cipher(0).apply_keystream(&mut poly_key);
        let mut poly = Poly1305::new(&poly_key.into());
        // (no associated data: secret-stream passes none, and its padding is then empty)
        poly.update_padded(block);
        let aligned = c.len() - c.len() % 16;
        let (full, tail) = c.split_at(aligned);
        poly.update_padded(full);
        let mut rest = [0u8; 15 + 15 + 16];
        let r = tail.len();
        rest[..r].copy_from_slice(tail);
        // rest[r..2r] stays zero: the padding
        rest[2 * r + 8..2 * r + 16].copy_from_slice(&(64 + c.len() as u64).to_le_bytes());
        let tag = poly.compute_unpadded(&rest[..2 * r + 16]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag);
        out
    }

    fn advance(&mut self, tag: u8, mac: &[u8; 16]) {
        for (n, m) in self.nonce[4..].iter_mut().zip(mac.iter()) {
            *n ^= m;
        }
        let mut counter = [0u8; 4];
        counter.copy_from_slice(&self.nonce[..4]);
        let counter = u32::from_le_bytes(counter).wrapping_add(1);
        self.nonce[..4].copy_from_slice(&counter.to_le_bytes());
        if tag & TAG_REKEY != 0 || counter == 0 {
            self.rekey();
        }
    }

    /// `crypto_secretstream_xchacha20poly1305_rekey`.
    pub fn rekey(&mut self) {
        let mut buf = [0u8; 40];
        buf[..32].copy_from_slice(&self.k);
        buf[32..].copy_from_slice(&self.nonce[4..]);
        let mut c = ChaCha20::new(&self.k.into(), &self.nonce.into());
        c.apply_keystream(&mut buf);
        self.k.copy_from_slice(&buf[..32]);
        self.nonce[4..].copy_from_slice(&buf[32..]);
        self.nonce[..4].copy_from_slice(&1u32.to_le_bytes());
    }

    /// `push` (no associated data): appends `tag byte || ciphertext || MAC` to `out`.
    pub fn push(&mut self, message: &[u8], tag: u8, out: &mut Vec<u8>) {
        let mut block = [0u8; 64];
        block[0] = tag;
        self.cipher(1).apply_keystream(&mut block);
        let start = out.len();
        out.push(block[0]);
        out.extend_from_slice(message);
        let c_start = start + 1;
        let mut mac = [0u8; 16];
        if let Some(c) = out.get_mut(c_start..) {
            self.cipher(2).apply_keystream(c);
            mac = self.mac(&block, c);
        }
        out.extend_from_slice(&mac);
        self.advance(tag, &mac);
    }

    /// `pull` (no associated data): the message and its tag, or an error for a ciphertext
    /// that is too short or fails to authenticate (the state is unchanged then). The
    /// message is written into `plain` (cleared first): a buffer a finished message gave
    /// back, so that a stream of large messages does not allocate (and fault in) fresh
    /// memory for each.
    pub fn pull(&mut self, cipher: &[u8], mut plain: Vec<u8>) -> Result<(Vec<u8>, u8), WireError> {
        if cipher.len() < ABYTES {
            return Err(WireError::new(
                "INVALID_FRAME",
                "secretstream message shorter than its overhead",
            ));
        }
        let (&tag_byte, rest) = cipher
            .split_first()
            .ok_or_else(|| WireError::new("INVALID_FRAME", "empty secretstream message"))?;
        let (c, stored) = rest.split_at(rest.len() - 16);
        let mut block = [0u8; 64];
        block[0] = tag_byte;
        self.cipher(1).apply_keystream(&mut block);
        let tag = block[0];
        block[0] = tag_byte;
        let mac = self.mac(&block, c);
        if !ct_eq(&mac, stored) {
            return Err(WireError::new(
                "DECRYPTION_FAILED",
                "secretstream message failed to authenticate",
            ));
        }
        plain.clear();
        plain.extend_from_slice(c);
        self.cipher(2).apply_keystream(&mut plain);
        self.advance(tag, &mac);
        Ok((plain, tag))
    }
}

fn ct_eq(a: &[u8; 16], b: &[u8]) -> bool {
    if b.len() != 16 {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    diff == 0
}

// ---------------------------------------------------------------------------------------
// The stream

#[derive(Clone)]
enum Phase {
    /// Running the Noise handshake.
    Handshake(Box<Handshake>),
    /// Handshake done (we can send), waiting for the peer's header frame.
    Header,
    /// Both directions set up.
    Data,
}

/// One side of a secret-stream connection.
#[derive(Clone)]
pub struct SecretStream {
    is_initiator: bool,
    public_key: [u8; 32],
    phase: Phase,
    started: bool,
    result: Option<HandshakeResult>,
    encrypt: Option<SodiumSecretStream>,
    decrypt: Option<SodiumSecretStream>,
    /// Frame parser: the length prefix so far and how many of its bytes have arrived.
    len_buf: [u8; 3],
    len_have: usize,
    /// The body of the current frame, once its length is known.
    body: Vec<u8>,
    /// Message buffers given back (`recycle`), to decrypt the next messages into.
    spare: Vec<Vec<u8>>,
    body_len: Option<usize>,
    max_frame: usize,
    filter_empty: bool,
    failed: Option<WireError>,
    bytes_read: u64,
    bytes_written: u64,
}

impl std::fmt::Debug for SecretStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match self.phase {
            Phase::Handshake(_) => "handshake",
            Phase::Header => "header",
            Phase::Data => "data",
        };
        f.debug_struct("SecretStream")
            .field("is_initiator", &self.is_initiator)
            .field("public_key", &crypto::hex(&self.public_key))
            .field("phase", &phase)
            .field("open", &self.is_open())
            .field("failed", &self.failed)
            .finish()
    }
}

impl SecretStream {
    /// A stream that runs the Noise XX handshake with `key_pair` as its static key.
    pub fn new(is_initiator: bool, key_pair: KeyPair) -> SecretStream {
        let handshake = Handshake::new(is_initiator, &key_pair, &[]);
        SecretStream::from_handshake(handshake)
    }

    /// A stream over a handshake made by the caller (e.g. with fixed ephemeral keys), which
    /// has not exchanged any message yet (a completed one is taken as its result).
    pub fn from_handshake(handshake: Handshake) -> SecretStream {
        if let Some(result) = handshake.result() {
            return SecretStream::from_handshake_result(handshake.is_initiator(), result.clone());
        }
        let mut s = SecretStream::blank(handshake.is_initiator(), *handshake.public_key());
        s.phase = Phase::Handshake(Box::new(handshake));
        s
    }

    /// secret-stream's `opts.handshake`: a stream whose handshake was done elsewhere (as
    /// hyperdht does); `start` sends the header frame and reports `Open` at once.
    pub fn from_handshake_result(is_initiator: bool, result: HandshakeResult) -> SecretStream {
        let mut s = SecretStream::blank(is_initiator, result.public_key);
        s.result = Some(result);
        s.phase = Phase::Header;
        s
    }

    fn blank(is_initiator: bool, public_key: [u8; 32]) -> SecretStream {
        SecretStream {
            is_initiator,
            public_key,
            phase: Phase::Header,
            started: false,
            result: None,
            encrypt: None,
            decrypt: None,
            len_buf: [0; 3],
            len_have: 0,
            body: Vec::new(),
            spare: Vec::new(),
            body_len: None,
            max_frame: MAX_FRAME,
            filter_empty: false,
            failed: None,
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// Lowers the largest app frame accepted (default and maximum `MAX_FRAME`); a peer frame
    /// announcing more is an `INVALID_FRAME` error before any of it is buffered.
    pub fn set_max_frame(&mut self, max: usize) {
        self.max_frame = max.clamp(ABYTES, MAX_FRAME);
    }

    /// Drop received empty messages (secret-stream does when keepalive is on, or with
    /// `filterZeroByteMessages`); off by default, as in secret-stream.
    pub fn set_filter_empty_messages(&mut self, on: bool) {
        self.filter_empty = on;
    }

    pub fn is_initiator(&self) -> bool {
        self.is_initiator
    }

    /// True once the handshake completed (messages can be sent).
    pub fn is_open(&self) -> bool {
        self.encrypt.is_some() && self.failed.is_none()
    }

    /// Our static public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// The peer's static public key, once open.
    pub fn remote_public_key(&self) -> Option<&[u8; 32]> {
        self.result.as_ref().map(|r| &r.remote_public_key)
    }

    /// The handshake hash, once open (hypercore derives its capabilities from it).
    pub fn handshake_hash(&self) -> Option<&[u8; 64]> {
        self.result.as_ref().map(|r| &r.handshake_hash)
    }

    /// The error that broke the stream, if any; every later call fails with it.
    pub fn error(&self) -> Option<&WireError> {
        self.failed.as_ref()
    }

    /// Raw bytes received and written so far (frames included).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Starts the stream: the initiator's first handshake message, or (for a stream made
    /// with `from_handshake_result`) the header frame and `Open`. Later calls do nothing.
    pub fn start(&mut self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if self.started || self.failed.is_some() {
            return events;
        }
        self.started = true;
        let mut out = Vec::new();
        if let Phase::Handshake(hs) = &mut self.phase {
            if hs.wants_send() {
                match hs.send() {
                    Ok(msg) => write_frame(&mut out, &msg),
                    Err(err) => {
                        // Our own first message cannot fail; if it did, the stream is dead.
                        self.failed = Some(err);
                        return events;
                    }
                }
            }
        } else if self.encrypt.is_none() {
            if let Some(result) = self.result.clone() {
                self.setup(result, &mut out, &mut events);
            }
        }
        if !out.is_empty() {
            self.bytes_written += out.len() as u64;
            events.insert(0, StreamEvent::Send(out));
        }
        events
    }

    /// Feeds raw bytes from the transport, in any chunking. Returns bytes to send and what
    /// happened. An error breaks the stream (events of the same call are dropped with it).
    pub fn recv(&mut self, mut bytes: &[u8]) -> Result<Vec<StreamEvent>, WireError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        // A responder needs no `start`; an initiator that skipped it sends its first
        // message now.
        let mut events = self.start();
        let mut out = Vec::new();
        let res = self.recv_inner(&mut bytes, &mut out, &mut events);
        if let Err(err) = res {
            self.failed = Some(err.clone());
            return Err(err);
        }
        if !out.is_empty() {
            self.bytes_written += out.len() as u64;
            let at = events
                .iter()
                .position(|e| !matches!(e, StreamEvent::Send(_)))
                .unwrap_or(events.len());
            events.insert(at, StreamEvent::Send(out));
        }
        Ok(events)
    }

    fn recv_inner(
        &mut self,
        bytes: &mut &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), WireError> {
        while !bytes.is_empty() || self.body_len == Some(0) {
            let len = match self.body_len {
                Some(len) => len,
                None => {
                    let need = 3 - self.len_have;
                    let n = need.min(bytes.len());
                    let (head, tail) = bytes.split_at(n);
                    self.len_buf[self.len_have..self.len_have + n].copy_from_slice(head);
                    self.len_have += n;
                    self.bytes_read += n as u64;
                    *bytes = tail;
                    if self.len_have < 3 {
                        return Ok(());
                    }
                    self.len_have = 0;
                    let [a, b, c] = self.len_buf;
                    let len = a as usize | (b as usize) << 8 | (c as usize) << 16;
                    self.check_frame_len(len)?;
                    self.body_len = Some(len);
                    len
                }
            };
            // Fast path: a whole frame in the input, nothing buffered.
            if self.body.is_empty() && bytes.len() >= len {
                let (frame, tail) = bytes.split_at(len);
                *bytes = tail;
                self.bytes_read += len as u64;
                self.body_len = None;
                self.on_frame(frame, out, events)?;
                continue;
            }
            let n = (len - self.body.len()).min(bytes.len());
            let (part, tail) = bytes.split_at(n);
            self.body.extend_from_slice(part);
            self.bytes_read += n as u64;
            *bytes = tail;
            if self.body.len() < len {
                return Ok(());
            }
            let mut frame = std::mem::take(&mut self.body);
            self.body_len = None;
            self.on_frame(&frame, out, events)?;
            // the next frame that arrives in pieces is gathered in the same memory
            if frame.capacity() <= KEPT_BUFFER {
                frame.clear();
                self.body = frame;
            }
        }
        Ok(())
    }

    fn check_frame_len(&self, len: usize) -> Result<(), WireError> {
        let bad = |what: String| Err(WireError::new("INVALID_FRAME", what));
        match self.phase {
            Phase::Handshake(_) if len > MAX_HANDSHAKE_MESSAGE => bad(format!(
                "handshake frame of {len} bytes (max {MAX_HANDSHAKE_MESSAGE})"
            )),
            Phase::Header if len != IDHEADERBYTES => bad(format!(
                "header frame of {len} bytes (expected {IDHEADERBYTES})"
            )),
            Phase::Data if len < ABYTES => {
                bad(format!("message frame of {len} bytes (min {ABYTES})"))
            }
            Phase::Data if len > self.max_frame => bad(format!(
                "message frame of {len} bytes (max {})",
                self.max_frame
            )),
            _ => Ok(()),
        }
    }

    fn on_frame(
        &mut self,
        frame: &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), WireError> {
        match &mut self.phase {
            Phase::Handshake(hs) => {
                hs.recv(frame)?;
                if hs.wants_send() {
                    let msg = hs.send()?;
                    write_frame(out, &msg);
                }
                if let Some(result) = hs.result().cloned() {
                    self.setup(result, out, events);
                }
                Ok(())
            }
            Phase::Header => {
                let result = self.result.as_ref().ok_or_else(|| {
                    WireError::new("INVALID_FRAME", "header before the handshake")
                })?;
                if frame.len() != IDHEADERBYTES {
                    return Err(WireError::new("INVALID_HEADER", "invalid header message"));
                }
                let (id, header) = frame.split_at(32);
                let expected = stream_id(&result.handshake_hash, !self.is_initiator);
                if id != expected {
                    return Err(WireError::new(
                        "INVALID_HEADER",
                        "the peer's stream id does not match the handshake",
                    ));
                }
                let header: [u8; HEADERBYTES] = header
                    .try_into()
                    .map_err(|_| WireError::new("INVALID_HEADER", "invalid header message"))?;
                self.decrypt = Some(SodiumSecretStream::new(&result.rx, &header));
                self.phase = Phase::Data;
                Ok(())
            }
            Phase::Data => {
                let decrypt = self
                    .decrypt
                    .as_mut()
                    .ok_or_else(|| WireError::new("INVALID_FRAME", "message before the header"))?;
                // secret-stream ignores the tag (it never sends anything but TAG_MESSAGE).
                let buffer = self.spare.pop().unwrap_or_default();
                let (plain, _tag) = decrypt.pull(frame, buffer)?;
                if !(plain.is_empty() && self.filter_empty) {
                    events.push(StreamEvent::Message(plain));
                }
                Ok(())
            }
        }
    }

    /// After the handshake: our header frame, the encrypt state, `Open`.
    fn setup(&mut self, result: HandshakeResult, out: &mut Vec<u8>, events: &mut Vec<StreamEvent>) {
        let (push, header) = SodiumSecretStream::new_push(&result.tx);
        let mut body = [0u8; IDHEADERBYTES];
        body[..32].copy_from_slice(&stream_id(&result.handshake_hash, self.is_initiator));
        body[32..].copy_from_slice(&header);
        write_frame(out, &body);
        self.encrypt = Some(push);
        events.push(StreamEvent::Open {
            remote_public_key: result.remote_public_key,
            handshake_hash: result.handshake_hash,
        });
        self.result = Some(result);
        self.phase = Phase::Header;
    }

    /// A message this stream decrypted, processed: its memory takes the next ones.
    pub fn recycle(&mut self, mut message: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && message.capacity() <= KEPT_BUFFER {
            message.clear();
            self.spare.push(message);
        }
    }

    /// Encrypts and frames one app message (after `Open`; empty is allowed).
    pub fn send(&mut self, message: &[u8]) -> Result<Vec<u8>, WireError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let Some(encrypt) = self.encrypt.as_mut() else {
            return Err(WireError::new(
                "NOT_OPEN",
                "cannot send before the handshake completes",
            ));
        };
        if message.len() > MAX_MESSAGE {
            return Err(WireError::new(
                "MESSAGE_TOO_LARGE",
                format!(
                    "message of {} bytes is too large for an atomic write (max {MAX_MESSAGE})",
                    message.len()
                ),
            ));
        }
        let len = message.len() + ABYTES;
        let mut out = Vec::with_capacity(3 + len);
        out.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
        encrypt.push(message, TAG_MESSAGE, &mut out);
        self.bytes_written += out.len() as u64;
        Ok(out)
    }

    /// secret-stream's keepalive: an empty message.
    pub fn keep_alive(&mut self) -> Result<Vec<u8>, WireError> {
        self.send(&[])
    }
}

fn write_frame(out: &mut Vec<u8>, body: &[u8]) {
    // Callers only frame handshake messages and headers, far below 2^24.
    let len = body.len().min(MAX_FRAME) as u32;
    out.extend_from_slice(&len.to_le_bytes()[..3]);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::key_pair_from_seed;
    use crate::crypto::test_vectors::{parse, Json};
    use std::io::{Read, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    struct Peer {
        s: SecretStream,
        incoming: Vec<u8>,
        opened: Option<([u8; 32], [u8; 64])>,
        messages: Vec<Vec<u8>>,
    }

    impl Peer {
        fn new(s: SecretStream) -> Peer {
            Peer {
                s,
                incoming: Vec::new(),
                opened: None,
                messages: Vec::new(),
            }
        }
    }

    /// Applies events of `me`: Send goes to `other_incoming`.
    fn route(events: Vec<StreamEvent>, me: &mut Peer, other_incoming: &mut Vec<u8>) {
        for e in events {
            match e {
                StreamEvent::Send(b) => other_incoming.extend_from_slice(&b),
                StreamEvent::Open {
                    remote_public_key,
                    handshake_hash,
                } => {
                    assert!(me.opened.is_none(), "opened twice");
                    me.opened = Some((remote_public_key, handshake_hash));
                }
                StreamEvent::Message(m) => me.messages.push(m),
            }
        }
    }

    /// Delivers pending bytes both ways, in chunks of the sizes `chunk` picks, until quiet.
    fn pump(peers: &mut [Peer; 2], chunk: &mut dyn FnMut() -> usize) {
        loop {
            let mut moved = false;
            for dir in 0..2 {
                let (left, right) = peers.split_at_mut(1);
                let (me, other) = if dir == 0 {
                    (&mut left[0], &mut right[0])
                } else {
                    (&mut right[0], &mut left[0])
                };
                while !me.incoming.is_empty() {
                    let n = chunk().clamp(1, me.incoming.len());
                    let piece: Vec<u8> = me.incoming.drain(..n).collect();
                    let events = me.s.recv(&piece).expect("recv");
                    route(events, me, &mut other.incoming);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn kp(b: u8) -> KeyPair {
        key_pair_from_seed(&[b; 32])
    }

    fn open_pair(chunk: &mut dyn FnMut() -> usize) -> [Peer; 2] {
        let mut peers = [
            Peer::new(SecretStream::new(true, kp(1))),
            Peer::new(SecretStream::new(false, kp(2))),
        ];
        assert!(peers[1].s.start().is_empty());
        let events = peers[0].s.start();
        let (a, b) = peers.split_at_mut(1);
        route(events, &mut a[0], &mut b[0].incoming);
        pump(&mut peers, chunk);
        peers
    }

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn pattern(len: usize, salt: u64) -> Vec<u8> {
        let mut r = Lcg(salt.wrapping_add(len as u64));
        (0..len).map(|_| r.next() as u8).collect()
    }

    fn round_trip(chunk: &mut dyn FnMut() -> usize, sizes: &[usize]) {
        let mut peers = open_pair(chunk);
        let (ia, ra) = (peers[0].opened.unwrap(), peers[1].opened.unwrap());
        assert_eq!(ia.0, kp(2).public_key);
        assert_eq!(ra.0, kp(1).public_key);
        assert_eq!(ia.1, ra.1);
        assert!(peers[0].s.is_open() && peers[1].s.is_open());
        assert_eq!(peers[0].s.handshake_hash(), Some(&ia.1));
        let mut expect = [Vec::new(), Vec::new()];
        for (n, &size) in sizes.iter().enumerate() {
            for dir in 0..2 {
                let m = pattern(size, (n * 2 + dir) as u64);
                let bytes = peers[dir].s.send(&m).unwrap();
                assert_eq!(bytes.len(), 3 + ABYTES + size);
                peers[1 - dir].incoming.extend_from_slice(&bytes);
                expect[1 - dir].push(m);
            }
            if n % 7 == 3 {
                pump(&mut peers, chunk);
            }
        }
        pump(&mut peers, chunk);
        assert_eq!(peers[0].messages, expect[0]);
        assert_eq!(peers[1].messages, expect[1]);
        assert_eq!(peers[0].s.bytes_read(), peers[1].s.bytes_written());
        assert_eq!(peers[1].s.bytes_read(), peers[0].s.bytes_written());
    }

    const SIZES: &[usize] = &[
        0, 1, 15, 16, 17, 63, 64, 65, 0, 100, 1000, 4096, 70000, 3, 0,
    ];

    #[test]
    fn round_trip_one_byte_chunks() {
        round_trip(&mut || 1, SIZES);
    }

    #[test]
    fn round_trip_merged_chunks() {
        round_trip(&mut || usize::MAX, SIZES);
        let many: Vec<usize> = (0..300).map(|n| n % 50).collect();
        round_trip(&mut || usize::MAX, &many);
    }

    #[test]
    fn round_trip_random_chunks() {
        for seed in 0..4u64 {
            let mut r = Lcg(seed);
            round_trip(&mut || (r.next() % 300) as usize + 1, SIZES);
        }
        let mut r = Lcg(99);
        round_trip(
            &mut || (r.next() % 100_000) as usize + 1,
            &[1 << 20, 0, 5, (1 << 20) + 3],
        );
    }

    #[test]
    fn filters_empty_messages_when_asked() {
        let mut peers = open_pair(&mut || usize::MAX);
        peers[1].s.set_filter_empty_messages(true);
        let mut bytes = peers[0].s.keep_alive().unwrap();
        assert_eq!(bytes.len(), 3 + ABYTES);
        bytes.extend(peers[0].s.send(b"x").unwrap());
        let events = peers[1].s.recv(&bytes).unwrap();
        assert_eq!(events, vec![StreamEvent::Message(b"x".to_vec())]);
    }

    #[test]
    fn tampering_fails() {
        // Every byte of a message frame (tag byte, ciphertext, MAC) is authenticated.
        for pos in [3usize, 4, 8, 3 + ABYTES + 4] {
            let mut peers = open_pair(&mut || usize::MAX);
            let mut bytes = peers[0].s.send(b"hello").unwrap();
            bytes[pos] ^= 0x40;
            let err = peers[1].s.recv(&bytes).unwrap_err();
            assert_eq!(err.code, "DECRYPTION_FAILED", "{err}");
            // The stream stays broken.
            assert_eq!(peers[1].s.recv(&[]).unwrap_err(), err);
            assert!(peers[1].s.send(b"x").is_err());
            assert!(!peers[1].s.is_open());
        }
        // A frame made one byte shorter (length prefix and body agree) fails too.
        let mut peers = open_pair(&mut || usize::MAX);
        let mut bytes = peers[0].s.send(b"hello").unwrap();
        bytes.pop();
        bytes[0] -= 1;
        assert_eq!(
            peers[1].s.recv(&bytes).unwrap_err().code,
            "DECRYPTION_FAILED"
        );
        // Replaying a frame fails (the nonce moved on).
        let mut peers = open_pair(&mut || usize::MAX);
        let bytes = peers[0].s.send(b"hello").unwrap();
        peers[1].s.recv(&bytes).unwrap();
        assert!(peers[1].s.recv(&bytes).is_err());
    }

    #[test]
    fn bad_lengths_fail() {
        // Handshake frames are at most 65535 bytes: refused from the length prefix alone.
        let mut r = SecretStream::new(false, kp(2));
        let err = r.recv(&[0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(err.code, "INVALID_FRAME");
        let mut r = SecretStream::new(false, kp(2));
        assert_eq!(r.recv(&[0, 0, 1]).unwrap_err().code, "INVALID_FRAME");
        // App frames above the configured maximum, or below the overhead.
        let mut peers = open_pair(&mut || usize::MAX);
        peers[1].s.set_max_frame(1000);
        let bytes = peers[0].s.send(&[7; 2000]).unwrap();
        let err = peers[1].s.recv(&bytes[..3]).unwrap_err();
        assert_eq!(err.code, "INVALID_FRAME");
        let mut peers = open_pair(&mut || usize::MAX);
        let err = peers[1].s.recv(&[16, 0, 0]).unwrap_err();
        assert_eq!(err.code, "INVALID_FRAME");
        // A wrong-sized header frame.
        let mut i = SecretStream::new(true, kp(1));
        let mut r = SecretStream::new(false, kp(2));
        let m1 = only_send(i.start());
        let m2 = only_send(r.recv(&m1).unwrap());
        let _ = i.recv(&m2).unwrap();
        assert_eq!(i.recv(&[55, 0, 0]).unwrap_err().code, "INVALID_FRAME");
        // Sending more than a frame can hold.
        let mut peers = open_pair(&mut || usize::MAX);
        let big = vec![0u8; MAX_MESSAGE + 1];
        assert_eq!(peers[0].s.send(&big).unwrap_err().code, "MESSAGE_TOO_LARGE");
        assert!(peers[0].s.is_open());
    }

    fn only_send(events: Vec<StreamEvent>) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            if let StreamEvent::Send(b) = e {
                out.extend(b);
            }
        }
        out
    }

    #[test]
    fn wrong_stream_id_fails() {
        let mut i = SecretStream::new(true, kp(1));
        let mut r = SecretStream::new(false, kp(2));
        let m1 = only_send(i.start());
        let m2 = only_send(r.recv(&m1).unwrap());
        let mut m3_and_header = only_send(i.recv(&m2).unwrap());
        assert_eq!(m3_and_header.len(), 3 + 64 + 3 + IDHEADERBYTES);
        m3_and_header[3 + 64 + 3] ^= 1;
        assert_eq!(r.recv(&m3_and_header).unwrap_err().code, "INVALID_HEADER");
        // The peer's header must carry the id of the other role, not ours.
        let mut i = SecretStream::new(true, kp(1));
        let mut r = SecretStream::new(false, kp(2));
        let m1 = only_send(i.start());
        let m2 = only_send(r.recv(&m1).unwrap());
        let m3_and_header = only_send(i.recv(&m2).unwrap());
        let header_r = only_send(r.recv(&m3_and_header).unwrap());
        let hash = *i.handshake_hash().unwrap();
        let mut forged = header_r.clone();
        forged[3..35].copy_from_slice(&stream_id(&hash, true));
        assert_eq!(i.recv(&forged).unwrap_err().code, "INVALID_HEADER");
    }

    #[test]
    fn garbage_never_panics() {
        let mut r = Lcg(7);
        for round in 0..300 {
            let len = (r.next() % 400) as usize;
            let mut junk: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            if round % 3 == 0 && junk.len() >= 3 {
                // plausible small lengths
                junk[0] = (r.next() % 120) as u8;
                junk[1] = 0;
                junk[2] = 0;
            }
            let mut s = SecretStream::new(round % 2 == 0, kp(3));
            let _ = s.start();
            let _ = s.recv(&junk);
            let mut peers = open_pair(&mut || usize::MAX);
            let _ = peers[1].s.recv(&junk);
            let _ = peers[1].s.recv(&junk);
        }
        // A responder fed a small-order ephemeral key fails at its DH (sending message 2).
        let mut s = SecretStream::new(false, kp(3));
        let mut m1 = vec![32u8, 0, 0];
        m1.extend_from_slice(&[0u8; 32]);
        assert_eq!(s.recv(&m1).unwrap_err().code, "HANDSHAKE_FAILED");
        // An initiator that gets a garbage message 2.
        let mut i = SecretStream::new(true, kp(1));
        let _ = i.start();
        let mut bad = vec![96u8, 0, 0];
        bad.extend_from_slice(&[0xab; 96]);
        assert_eq!(i.recv(&bad).unwrap_err().code, "HANDSHAKE_FAILED");
    }

    #[test]
    fn truncated_frames_wait() {
        let mut peers = open_pair(&mut || usize::MAX);
        let bytes = peers[0].s.send(b"partial").unwrap();
        let (head, tail) = bytes.split_at(bytes.len() - 1);
        assert!(peers[1].s.recv(head).unwrap().is_empty());
        assert_eq!(
            peers[1].s.recv(tail).unwrap(),
            vec![StreamEvent::Message(b"partial".to_vec())]
        );
    }

    #[test]
    fn send_before_open_fails() {
        let mut s = SecretStream::new(true, kp(1));
        assert_eq!(s.send(b"x").unwrap_err().code, "NOT_OPEN");
        let _ = s.start();
        assert_eq!(s.send(b"x").unwrap_err().code, "NOT_OPEN");
        assert!(!s.is_open());
    }

    #[test]
    fn pre_made_handshake() {
        let mut hi = Handshake::new(true, &kp(1), &[]);
        let mut hr = Handshake::new(false, &kp(2), &[]);
        hr.recv(&hi.send().unwrap()).unwrap();
        hi.recv(&hr.send().unwrap()).unwrap();
        hr.recv(&hi.send().unwrap()).unwrap();
        let mut peers = [
            Peer::new(SecretStream::from_handshake_result(
                true,
                hi.result().unwrap().clone(),
            )),
            Peer::new(SecretStream::from_handshake_result(
                false,
                hr.result().unwrap().clone(),
            )),
        ];
        for n in 0..2 {
            let events = peers[n].s.start();
            let (a, b) = peers.split_at_mut(1);
            if n == 0 {
                route(events, &mut a[0], &mut b[0].incoming);
            } else {
                route(events, &mut b[0], &mut a[0].incoming);
            }
        }
        let m = peers[0].s.send(b"pre").unwrap();
        peers[1].incoming.extend(m);
        pump(&mut peers, &mut || 5);
        assert_eq!(peers[1].messages, vec![b"pre".to_vec()]);
        assert_eq!(peers[0].opened.unwrap().0, kp(2).public_key);
    }

    // ----- against the JS packages -----------------------------------------------------

    fn manifest_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// None (with a notice) when node or the JS packages are missing.
    fn node_ready() -> bool {
        let root = manifest_dir();
        if !root.join("node_modules/@hyperswarm/secret-stream").exists() {
            eprintln!("notice: node_modules/@hyperswarm/secret-stream missing; skipping");
            return false;
        }
        match Command::new("node").arg("--version").output() {
            Ok(o) if o.status.success() => true,
            _ => {
                eprintln!("notice: node not found on PATH; skipping");
                false
            }
        }
    }

    fn hexs(j: &Json) -> Vec<u8> {
        j.bytes()
    }

    #[test]
    fn matches_js_vectors() {
        if !node_ready() {
            return;
        }
        let out = Command::new("node")
            .arg("__test__/fixtures/wire-vectors.js")
            .current_dir(manifest_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = parse(&String::from_utf8(out.stdout).unwrap());

        for nv in v.get("noise").arr() {
            let prologue = hexs(nv.get("prologue"));
            let mut i = Handshake::with_ephemeral(true, &kp(1), &kp(3), &prologue);
            let mut r = Handshake::with_ephemeral(false, &kp(2), &kp(4), &prologue);
            let m1 = i.send().unwrap();
            assert_eq!(m1, hexs(nv.get("m1")));
            r.recv(&m1).unwrap();
            let m2 = r.send().unwrap();
            assert_eq!(m2, hexs(nv.get("m2")));
            i.recv(&m2).unwrap();
            let m3 = i.send().unwrap();
            assert_eq!(m3, hexs(nv.get("m3")));
            r.recv(&m3).unwrap();
            let res = i.result().unwrap();
            assert_eq!(res.tx.to_vec(), hexs(nv.get("tx")));
            assert_eq!(res.rx.to_vec(), hexs(nv.get("rx")));
            assert_eq!(res.handshake_hash.to_vec(), hexs(nv.get("hash")));
            assert_eq!(
                r.result().unwrap().handshake_hash.to_vec(),
                hexs(nv.get("responderHash"))
            );
            assert_eq!(
                stream_id(&res.handshake_hash, true).to_vec(),
                hexs(nv.get("initiatorIdHex"))
            );
            assert_eq!(
                stream_id(&res.handshake_hash, false).to_vec(),
                hexs(nv.get("responderIdHex"))
            );
        }

        let sv = v.get("secretstream");
        let key = sv.get("key").b32();
        let header: [u8; HEADERBYTES] = hexs(sv.get("header")).try_into().unwrap();
        let mut pull = SodiumSecretStream::new(&key, &header);
        let mut push = SodiumSecretStream::new(&key, &header);
        let mut count = 0;
        for item in sv.get("items").arr() {
            if item.get("rekey").bool() {
                pull.rekey();
                push.rekey();
                continue;
            }
            let tag = item.get("tag").u64() as u8;
            let m = hexs(item.get("message"));
            let c = hexs(item.get("cipher"));
            let mut mine = Vec::new();
            push.push(&m, tag, &mut mine);
            assert_eq!(mine, c, "push of item {count}");
            let (plain, got_tag) = pull.pull(&c, Vec::new()).unwrap();
            assert_eq!(plain, m);
            assert_eq!(got_tag, tag);
            count += 1;
        }
        assert!(count >= 10);
    }

    /// Kills the child if the test bails out early, and shows its stderr (the test harness
    /// prints it when the test fails).
    struct ChildGuard {
        child: Child,
        stderr: Option<std::thread::JoinHandle<String>>,
    }

    impl Drop for ChildGuard {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            if let Some(t) = self.stderr.take() {
                eprintln!("JS peer stderr:\n{}", t.join().unwrap_or_default());
            }
        }
    }

    #[derive(Default)]
    struct Seen {
        opened: Option<([u8; 32], [u8; 64])>,
        js_info: Option<Json>,
        js_empty: usize,
        js_hello: usize,
        echoes: Vec<Vec<u8>>,
    }

    impl Seen {
        fn handle(&mut self, events: Vec<StreamEvent>, out: &mpsc::Sender<Vec<u8>>) {
            for e in events {
                match e {
                    StreamEvent::Send(b) => out.send(b).unwrap(),
                    StreamEvent::Open {
                        remote_public_key,
                        handshake_hash,
                    } => {
                        assert!(self.opened.is_none());
                        self.opened = Some((remote_public_key, handshake_hash));
                    }
                    StreamEvent::Message(m) => {
                        if let Some(rest) = m.strip_prefix(b"echo:") {
                            self.echoes.push(rest.to_vec());
                        } else if m.is_empty() {
                            self.js_empty += 1;
                        } else if m == b"hello from js" {
                            self.js_hello += 1;
                        } else {
                            assert!(self.js_info.is_none(), "unexpected message {m:?}");
                            self.js_info = Some(parse(std::str::from_utf8(&m).unwrap()));
                        }
                    }
                }
            }
        }
    }

    fn interop(rust_is_initiator: bool) {
        if !node_ready() {
            return;
        }
        let js_seed = [0x5a; 32];
        let js_public_key = key_pair_from_seed(&js_seed).public_key;
        let ours = kp(0xa5);
        let role = if rust_is_initiator {
            "responder"
        } else {
            "initiator"
        };
        let script = Path::new("__test__/fixtures/wire-secretstream-peer.js");
        let mut child = Command::new("node")
            .arg(script)
            .arg(role)
            .arg(crypto::hex(&js_seed))
            .current_dir(manifest_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        let mut stdout = child.stdout.take().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let mut child = ChildGuard {
            child,
            stderr: Some(std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            })),
        };

        let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if in_tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>();
        let writer = std::thread::spawn(move || {
            for chunk in out_rx {
                if stdin.write_all(&chunk).is_err() {
                    return;
                }
            }
            // dropping stdin ends the JS side's input
        });

        let deadline = Instant::now() + Duration::from_secs(90);
        let mut stream = SecretStream::new(rust_is_initiator, ours.clone());
        let mut seen = Seen::default();
        let mut chunks_in = 0usize;

        seen.handle(stream.start(), &out_tx);
        let mut recv_some = |stream: &mut SecretStream| -> Vec<StreamEvent> {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = in_rx
                .recv_timeout(left)
                .expect("timed out (or JS exited) waiting for the JS peer");
            chunks_in += 1;
            stream.recv(&chunk).expect("recv from JS")
        };

        while seen.opened.is_none() {
            let events = recv_some(&mut stream);
            seen.handle(events, &out_tx);
        }
        let (remote_pk, hash) = seen.opened.unwrap();
        assert_eq!(remote_pk, js_public_key);

        // ~100 messages: empty ones, small ones, a 1 MB one.
        let mut sent: Vec<Vec<u8>> = Vec::new();
        for n in 0..100usize {
            let len = match n {
                _ if n % 10 == 0 => 0,
                55 => 1 << 20,
                77 => 70_000,
                _ => n * 37,
            };
            let m = pattern(len, n as u64);
            out_tx.send(stream.send(&m).unwrap()).unwrap();
            sent.push(m);
        }
        while seen.echoes.len() < sent.len() || seen.js_info.is_none() || seen.js_hello == 0 {
            let events = recv_some(&mut stream);
            seen.handle(events, &out_tx);
        }
        assert_eq!(seen.echoes, sent);
        assert_eq!(seen.js_empty, 1);
        assert_eq!(seen.js_hello, 1);
        let info = seen.js_info.take().unwrap();
        assert_eq!(info.get("publicKey").b32(), js_public_key);
        assert_eq!(info.get("remotePublicKey").b32(), ours.public_key);
        assert_eq!(hexs(info.get("handshakeHash")), hash.to_vec());

        // End our side: the JS ends its own and exits.
        drop(out_tx);
        writer.join().unwrap();
        loop {
            match in_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(chunk) => {
                    // Nothing but well-formed frames may follow.
                    stream.recv(&chunk).unwrap();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("JS peer did not end"),
            }
        }
        reader.join().unwrap();
        let status = loop {
            if let Some(status) = child.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "JS peer did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "JS peer exited with {status}");
        let sent_bytes: usize = sent.iter().map(|m| m.len()).sum();
        println!(
            "interop (rust {}): {} messages / {} payload bytes each way echoed; raw bytes \
             written {}, read {} in {} chunks",
            if rust_is_initiator {
                "initiator"
            } else {
                "responder"
            },
            sent.len(),
            sent_bytes,
            stream.bytes_written(),
            stream.bytes_read(),
            chunks_in
        );
    }

    #[test]
    fn interop_rust_initiator_js_responder() {
        interop(true);
    }

    #[test]
    fn interop_js_initiator_rust_responder() {
        interop(false);
    }
}
