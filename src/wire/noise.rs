//! The Noise XX handshake exactly as @hyperswarm/secret-stream runs it through the
//! `noise-handshake` package with `noise-curve-ed`:
//!
//! * protocol name `Noise_XX_Ed25519_ChaChaPoly_BLAKE2b` (35 bytes, so it is the initial
//!   handshake hash zero-padded to 64 bytes, and the chaining key starts as a copy of it);
//! * the prologue (secret-stream passes an empty one) is mixed into the hash;
//! * DH is Ed25519 scalar multiplication: the local scalar is the clamped first half of
//!   SHA-512(seed) of a libsodium key pair, the remote key an Ed25519 public key, and the
//!   result the compressed point (libsodium `crypto_scalarmult_ed25519_noclamp`, which
//!   refuses non-canonical, small-order and mixed-order points and an identity result);
//! * HASH is BLAKE2b-512, HKDF is HMAC-BLAKE2b (block 128) with an empty info;
//! * the cipher is IETF ChaCha20-Poly1305, nonce = 4 zero bytes || u32 LE counter || 4 zero
//!   bytes, the handshake hash as associated data;
//! * `EncryptAndHash` without a key passes the plaintext through but still mixes it into the
//!   hash (so the empty payload of message 1 still changes the hash);
//! * split: `HKDF(ck, "")`, the first 32 bytes of each output; the initiator sends with the
//!   first key. The handshake hash handed out is the final `h` (64 bytes).
//!
//! Messages: 1 `-> e` (32 bytes), 2 `<- e, ee, s, es` (32 + 48 + 16 = 96 bytes),
//! 3 `-> s, se` (48 + 16 = 64 bytes). Payloads are empty when we send; a received payload is
//! authenticated and ignored, as secret-stream does.
//!
//! Sans-IO and panic-free: nothing from the peer can make this code panic.

use crate::crypto::{self, KeyPair};
use blake2b_simd::Params;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::IsIdentity;
use std::fmt;

/// An error of the replication wire: a stable code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub code: &'static str,
    pub message: String,
}

impl WireError {
    pub fn new(code: &'static str, message: impl Into<String>) -> WireError {
        WireError {
            code,
            message: message.into(),
        }
    }

    fn handshake(message: impl Into<String>) -> WireError {
        WireError::new("HANDSHAKE_FAILED", message)
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for WireError {}

/// BLAKE2b output length, the Noise HASHLEN.
pub const HASHLEN: usize = 64;
/// Ed25519 public key / DH output length.
pub const DHLEN: usize = 32;
/// The Poly1305 tag appended by the handshake cipher.
pub const MACLEN: usize = 16;
/// noise-handshake's limit on a handshake ciphertext (the Noise maximum message length).
pub const MAX_HANDSHAKE_MESSAGE: usize = 65535;

const PROTOCOL_NAME: &[u8] = b"Noise_XX_Ed25519_ChaChaPoly_BLAKE2b";
const HMAC_BLOCKLEN: usize = 128;

/// What a completed handshake yields.
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeResult {
    /// Key this side encrypts with (secret-stream takes it as the secretstream push key).
    pub tx: [u8; 32],
    /// Key this side decrypts with.
    pub rx: [u8; 32],
    /// The final handshake hash `h`; secret-stream's `handshakeHash`.
    pub handshake_hash: [u8; 64],
    /// Our static public key.
    pub public_key: [u8; 32],
    /// The peer's static public key (authenticated by the handshake).
    pub remote_public_key: [u8; 32],
}

impl fmt::Debug for HandshakeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeResult")
            .field("tx", &"<redacted>")
            .field("rx", &"<redacted>")
            .field("handshake_hash", &crypto::hex(&self.handshake_hash))
            .field("public_key", &crypto::hex(&self.public_key))
            .field("remote_public_key", &crypto::hex(&self.remote_public_key))
            .finish()
    }
}

/// One side of a Noise XX handshake. Initiator: `send`, `recv`, `send`; responder: `recv`,
/// `send`, `recv`. Any failure (or a call out of turn) poisons the handshake.
#[derive(Clone)]
pub struct Handshake {
    is_initiator: bool,
    s: KeyPair,
    e: Option<KeyPair>,
    re: Option<[u8; 32]>,
    rs: Option<[u8; 32]>,
    h: [u8; 64],
    ck: [u8; 64],
    k: Option<[u8; 32]>,
    n: u64,
    /// Index of the next message of the pattern (0, 1, 2; 3 when done).
    step: usize,
    failed: bool,
    result: Option<HandshakeResult>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("is_initiator", &self.is_initiator)
            .field("step", &self.step)
            .field("failed", &self.failed)
            .field("result", &self.result)
            .finish()
    }
}

impl Handshake {
    /// A handshake with a fresh random ephemeral key pair (generated when message e is sent).
    pub fn new(is_initiator: bool, static_key_pair: &KeyPair, prologue: &[u8]) -> Handshake {
        Handshake::init(is_initiator, static_key_pair, None, prologue)
    }

    /// A handshake with a given ephemeral key pair, for deterministic tests.
    pub fn with_ephemeral(
        is_initiator: bool,
        static_key_pair: &KeyPair,
        ephemeral_key_pair: &KeyPair,
        prologue: &[u8],
    ) -> Handshake {
        Handshake::init(
            is_initiator,
            static_key_pair,
            Some(ephemeral_key_pair.clone()),
            prologue,
        )
    }

    fn init(is_initiator: bool, s: &KeyPair, e: Option<KeyPair>, prologue: &[u8]) -> Handshake {
        let mut h = [0u8; 64];
        h[..PROTOCOL_NAME.len()].copy_from_slice(PROTOCOL_NAME);
        let mut hs = Handshake {
            is_initiator,
            s: s.clone(),
            e,
            re: None,
            rs: None,
            h,
            ck: h,
            k: None,
            n: 0,
            step: 0,
            failed: false,
            result: None,
        };
        hs.mix_hash(prologue);
        hs
    }

    pub fn is_initiator(&self) -> bool {
        self.is_initiator
    }

    pub fn is_complete(&self) -> bool {
        self.result.is_some()
    }

    pub fn result(&self) -> Option<&HandshakeResult> {
        self.result.as_ref()
    }

    /// Our static public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.s.public_key
    }

    /// True when it is our turn to `send` the next handshake message.
    pub fn wants_send(&self) -> bool {
        !self.failed && self.step < 3 && self.step.is_multiple_of(2) == self.is_initiator
    }

    /// The next handshake message (unframed), with an empty payload.
    pub fn send(&mut self) -> Result<Vec<u8>, WireError> {
        self.check_turn(true)?;
        let out = self.write_message();
        if out.is_err() {
            self.failed = true;
        }
        out
    }

    /// Processes the peer's next handshake message (unframed).
    pub fn recv(&mut self, msg: &[u8]) -> Result<(), WireError> {
        self.check_turn(false)?;
        let out = self.read_message(msg);
        if out.is_err() {
            self.failed = true;
        }
        out
    }

    fn check_turn(&self, sending: bool) -> Result<(), WireError> {
        if self.failed {
            return Err(WireError::handshake("the handshake already failed"));
        }
        if self.step >= 3 {
            return Err(WireError::handshake("the handshake is already complete"));
        }
        if self.wants_send() != sending {
            return Err(WireError::handshake(if sending {
                "not our turn to send a handshake message"
            } else {
                "unexpected handshake message: it is our turn to send"
            }));
        }
        Ok(())
    }

    fn write_message(&mut self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(96);
        match self.step {
            0 => {
                // -> e
                let e_pub = self.ephemeral().public_key;
                self.mix_hash(&e_pub);
                out.extend_from_slice(&e_pub);
            }
            1 => {
                // <- e, ee, s, es (responder)
                let e_pub = self.ephemeral().public_key;
                self.mix_hash(&e_pub);
                out.extend_from_slice(&e_pub);
                let re = self.remote_ephemeral()?;
                self.mix_dh(Local::Ephemeral, &re)?;
                let s_pub = self.s.public_key;
                out.extend_from_slice(&self.encrypt_and_hash(&s_pub)?);
                self.mix_dh(Local::Static, &re)?;
            }
            _ => {
                // -> s, se (initiator)
                let s_pub = self.s.public_key;
                out.extend_from_slice(&self.encrypt_and_hash(&s_pub)?);
                let re = self.remote_ephemeral()?;
                self.mix_dh(Local::Static, &re)?;
            }
        }
        out.extend_from_slice(&self.encrypt_and_hash(&[])?);
        self.step += 1;
        if self.step == 3 {
            self.finish()?;
        }
        Ok(out)
    }

    fn read_message(&mut self, msg: &[u8]) -> Result<(), WireError> {
        let mut rest = msg;
        match self.step {
            0 => {
                // -> e (responder reads)
                let re = take32(&mut rest, "ephemeral key")?;
                self.mix_hash(&re);
                self.re = Some(re);
            }
            1 => {
                // <- e, ee, s, es (initiator reads)
                let re = take32(&mut rest, "ephemeral key")?;
                self.mix_hash(&re);
                self.re = Some(re);
                self.mix_dh(Local::Ephemeral, &re)?;
                let rs = self.read_static(&mut rest)?;
                self.mix_dh(Local::Ephemeral, &rs)?;
            }
            _ => {
                // -> s, se (responder reads)
                let rs = self.read_static(&mut rest)?;
                self.mix_dh(Local::Ephemeral, &rs)?;
            }
        }
        // The payload: authenticated (once there is a key) and ignored.
        self.decrypt_and_hash(rest)?;
        self.step += 1;
        if self.step == 3 {
            self.finish()?;
        }
        Ok(())
    }

    fn read_static(&mut self, rest: &mut &[u8]) -> Result<[u8; 32], WireError> {
        let len = if self.k.is_some() {
            DHLEN + MACLEN
        } else {
            DHLEN
        };
        if rest.len() < len {
            return Err(WireError::handshake(
                "handshake message too short for the static key",
            ));
        }
        let (c, tail) = rest.split_at(len);
        *rest = tail;
        let plain = self.decrypt_and_hash(c)?;
        let rs: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| WireError::handshake("bad static key length"))?;
        self.rs = Some(rs);
        Ok(rs)
    }

    fn ephemeral(&mut self) -> &KeyPair {
        self.e
            .get_or_insert_with(|| crypto::key_pair_from_seed(&crypto::random_bytes32()))
    }

    fn remote_ephemeral(&self) -> Result<[u8; 32], WireError> {
        self.re
            .ok_or_else(|| WireError::handshake("no remote ephemeral key"))
    }

    fn finish(&mut self) -> Result<(), WireError> {
        let (k1, k2) = hkdf2(&self.ck, &[]);
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a.copy_from_slice(&k1[..32]);
        b.copy_from_slice(&k2[..32]);
        let (tx, rx) = if self.is_initiator { (a, b) } else { (b, a) };
        let remote_public_key = self
            .rs
            .ok_or_else(|| WireError::handshake("no remote static key"))?;
        self.result = Some(HandshakeResult {
            tx,
            rx,
            handshake_hash: self.h,
            public_key: self.s.public_key,
            remote_public_key,
        });
        // Forget the secrets the handshake no longer needs.
        self.e = None;
        self.k = None;
        self.ck = [0; 64];
        Ok(())
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = blake2b512(&[&self.h, data]);
    }

    fn mix_dh(&mut self, local: Local, remote: &[u8; 32]) -> Result<(), WireError> {
        let seed = match local {
            Local::Static => seed_of(&self.s),
            Local::Ephemeral => match &self.e {
                Some(e) => seed_of(e),
                None => return Err(WireError::handshake("no local ephemeral key")),
            },
        };
        let shared = dh(&seed, remote)?;
        let (ck, k) = hkdf2(&self.ck, &shared);
        self.ck = ck;
        let mut key = [0u8; 32];
        key.copy_from_slice(&k[..32]);
        self.k = Some(key);
        self.n = 0;
        Ok(())
    }

    fn nonce(&self) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        // noise-handshake writes the counter as a u32 at offset 4 (it never gets near 2^32).
        nonce[4..8].copy_from_slice(&(self.n as u32).to_le_bytes());
        nonce
    }

    fn encrypt_and_hash(&mut self, plain: &[u8]) -> Result<Vec<u8>, WireError> {
        let c = match self.k {
            None => plain.to_vec(),
            Some(key) => {
                let cipher = ChaCha20Poly1305::new(&key.into());
                let c = cipher
                    .encrypt(
                        &self.nonce().into(),
                        Payload {
                            msg: plain,
                            aad: &self.h,
                        },
                    )
                    .map_err(|_| WireError::handshake("encryption failed"))?;
                if c.len() > MAX_HANDSHAKE_MESSAGE {
                    return Err(WireError::handshake("handshake ciphertext too long"));
                }
                self.n += 1;
                c
            }
        };
        self.mix_hash(&c);
        Ok(c)
    }

    fn decrypt_and_hash(&mut self, c: &[u8]) -> Result<Vec<u8>, WireError> {
        let plain = match self.k {
            None => c.to_vec(),
            Some(key) => {
                if c.len() > MAX_HANDSHAKE_MESSAGE {
                    return Err(WireError::handshake("handshake ciphertext too long"));
                }
                let cipher = ChaCha20Poly1305::new(&key.into());
                let plain = cipher
                    .decrypt(
                        &self.nonce().into(),
                        Payload {
                            msg: c,
                            aad: &self.h,
                        },
                    )
                    .map_err(|_| {
                        WireError::handshake("handshake message failed to authenticate")
                    })?;
                self.n += 1;
                plain
            }
        };
        self.mix_hash(c);
        Ok(plain)
    }
}

#[derive(Clone, Copy)]
enum Local {
    Static,
    Ephemeral,
}

fn seed_of(kp: &KeyPair) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&kp.secret_key[..32]);
    seed
}

fn take32(rest: &mut &[u8], what: &str) -> Result<[u8; 32], WireError> {
    if rest.len() < 32 {
        return Err(WireError::handshake(format!(
            "handshake message too short for the {what}"
        )));
    }
    let (head, tail) = rest.split_at(32);
    *rest = tail;
    let mut out = [0u8; 32];
    out.copy_from_slice(head);
    Ok(out)
}

/// noise-curve-ed `dh(publicKey, { secretKey })`: libsodium
/// `crypto_scalarmult_ed25519_noclamp(clamp(sha512(seed)[..32]), publicKey)`.
pub fn dh(seed: &[u8; 32], remote_public_key: &[u8; 32]) -> Result<[u8; 32], WireError> {
    let bad = || WireError::handshake("invalid remote public key for Ed25519 DH");
    let point = CompressedEdwardsY(*remote_public_key)
        .decompress()
        .ok_or_else(bad)?;
    // libsodium: canonical encoding, not of small order, in the prime-order subgroup.
    if point.compress().as_bytes() != remote_public_key
        || point.is_small_order()
        || !point.is_torsion_free()
    {
        return Err(bad());
    }
    // mul_clamped clamps exactly as noise-curve-ed does before the no-clamp multiply.
    let (scalar, _) = crypto::expand_seed(seed);
    let shared = point.mul_clamped(scalar);
    if shared.is_identity() {
        return Err(bad());
    }
    Ok(shared.compress().to_bytes())
}

fn blake2b512(parts: &[&[u8]]) -> [u8; 64] {
    let mut state = Params::new().hash_length(64).to_state();
    for part in parts {
        state.update(part);
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// HMAC-BLAKE2b-512 (block length 128), as noise-handshake's hmac.js.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 64] {
    let mut k = [0u8; HMAC_BLOCKLEN];
    if key.len() > HMAC_BLOCKLEN {
        k[..64].copy_from_slice(&blake2b512(&[key]));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0u8; HMAC_BLOCKLEN];
    let mut opad = [0u8; HMAC_BLOCKLEN];
    for ((i, o), b) in ipad.iter_mut().zip(opad.iter_mut()).zip(k.iter()) {
        *i = b ^ 0x36;
        *o = b ^ 0x5c;
    }
    let mut inner = Params::new().hash_length(64).to_state();
    inner.update(&ipad);
    for part in parts {
        inner.update(part);
    }
    let inner = inner.finalize();
    blake2b512(&[&opad, inner.as_bytes()])
}

/// noise-handshake `hkdf(salt, ikm)` with an empty info and two outputs.
fn hkdf2(salt: &[u8], ikm: &[u8]) -> ([u8; 64], [u8; 64]) {
    let prk = hmac(salt, &[ikm]);
    let t1 = hmac(&prk, &[&[1]]);
    let t2 = hmac(&prk, &[&t1, &[2]]);
    (t1, t2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::key_pair_from_seed;

    fn kp(b: u8) -> KeyPair {
        key_pair_from_seed(&[b; 32])
    }

    fn run(i: &mut Handshake, r: &mut Handshake) {
        let m1 = i.send().unwrap();
        assert_eq!(m1.len(), 32);
        r.recv(&m1).unwrap();
        let m2 = r.send().unwrap();
        assert_eq!(m2.len(), 96);
        i.recv(&m2).unwrap();
        let m3 = i.send().unwrap();
        assert_eq!(m3.len(), 64);
        assert!(i.is_complete());
        assert!(!r.is_complete());
        r.recv(&m3).unwrap();
        assert!(r.is_complete());
    }

    #[test]
    fn xx_agrees() {
        let (a, b) = (kp(1), kp(2));
        let mut i = Handshake::new(true, &a, &[]);
        let mut r = Handshake::new(false, &b, &[]);
        run(&mut i, &mut r);
        let (ri, rr) = (i.result().unwrap(), r.result().unwrap());
        assert_eq!(ri.tx, rr.rx);
        assert_eq!(ri.rx, rr.tx);
        assert_ne!(ri.tx, ri.rx);
        assert_eq!(ri.handshake_hash, rr.handshake_hash);
        assert_eq!(ri.remote_public_key, b.public_key);
        assert_eq!(rr.remote_public_key, a.public_key);
        assert!(i.send().is_err());
        assert!(r.recv(&[0; 64]).is_err());
    }

    #[test]
    fn deterministic_with_ephemeral() {
        let go = || {
            let mut i = Handshake::with_ephemeral(true, &kp(1), &kp(3), b"pro");
            let mut r = Handshake::with_ephemeral(false, &kp(2), &kp(4), b"pro");
            run(&mut i, &mut r);
            i.result().unwrap().clone()
        };
        assert_eq!(go(), go());
    }

    #[test]
    fn prologue_mismatch_fails() {
        let mut i = Handshake::new(true, &kp(1), b"a");
        let mut r = Handshake::new(false, &kp(2), b"b");
        r.recv(&i.send().unwrap()).unwrap();
        let m2 = r.send().unwrap();
        let err = i.recv(&m2).unwrap_err();
        assert_eq!(err.code, "HANDSHAKE_FAILED");
        assert!(i.send().is_err());
    }

    #[test]
    fn garbage_and_turns() {
        let mut r = Handshake::new(false, &kp(2), &[]);
        assert!(r.send().is_err());
        assert!(r.recv(&[1, 2, 3]).is_err());
        // An invalid point (or small order / identity) is refused at the DH.
        let mut i = Handshake::new(true, &kp(1), &[]);
        i.send().unwrap();
        let mut m2 = vec![0u8; 96];
        m2[0] = 1; // the identity point
        assert!(i.recv(&m2).is_err());
        let mut i = Handshake::new(true, &kp(1), &[]);
        i.send().unwrap();
        assert!(i.recv(&[0xff; 96]).is_err());
        let mut i = Handshake::new(true, &kp(1), &[]);
        i.send().unwrap();
        assert!(i.recv(&[]).is_err());
        // Tampering any byte of message 2 or 3 fails.
        for pos in [0usize, 40, 95] {
            let mut i = Handshake::new(true, &kp(1), &[]);
            let mut r = Handshake::new(false, &kp(2), &[]);
            r.recv(&i.send().unwrap()).unwrap();
            let mut m2 = r.send().unwrap();
            m2[pos] ^= 1;
            assert!(i.recv(&m2).is_err());
        }
        for pos in [0usize, 50, 63] {
            let mut i = Handshake::new(true, &kp(1), &[]);
            let mut r = Handshake::new(false, &kp(2), &[]);
            r.recv(&i.send().unwrap()).unwrap();
            i.recv(&r.send().unwrap()).unwrap();
            let mut m3 = i.send().unwrap();
            m3[pos] ^= 1;
            assert!(r.recv(&m3).is_err());
            assert!(!r.is_complete());
        }
    }

    #[test]
    fn hmac_blake2b_shape() {
        // HMAC with a key longer than the block hashes the key first.
        let long = [7u8; 200];
        assert_eq!(hmac(&long, &[b"x"]), hmac(&blake2b512(&[&long]), &[b"x"]));
        // Parts concatenate.
        assert_eq!(hmac(b"k", &[b"ab", b"c"]), hmac(b"k", &[b"abc"]));
    }
}
