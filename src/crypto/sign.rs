//! Ed25519 as libsodium (and so hypercore-crypto / corestore) does it: secret keys in the
//! 64-byte `seed || public key` layout, detached signatures, strict verification.

use curve25519_dalek::scalar::clamp_integer;
use curve25519_dalek::{EdwardsPoint, Scalar};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub public_key: [u8; 32],
    /// libsodium layout: the 32-byte seed followed by the public key.
    pub secret_key: [u8; 64],
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &crate::crypto::hex(&self.public_key))
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// libsodium `crypto_sign_seed_keypair`.
pub fn key_pair_from_seed(seed: &[u8; 32]) -> KeyPair {
    let (scalar_bytes, _) = expand_seed(seed);
    let public_key = base_point_times(&clamp_integer(scalar_bytes));
    let mut secret_key = [0u8; 64];
    secret_key[..32].copy_from_slice(seed);
    secret_key[32..].copy_from_slice(&public_key);
    KeyPair {
        public_key,
        secret_key,
    }
}

/// 32 bytes from the operating system's random source.
pub fn random_bytes32() -> [u8; 32] {
    let mut out = [0u8; 32];
    fill_random(&mut out);
    out
}

/// Fills `buf` from the operating system's random source (libsodium `randombytes_buf`).
pub fn fill_random(buf: &mut [u8]) {
    // getrandom only fails when the OS has no entropy source at all; nothing can run
    // safely then, and libsodium aborts the process in the same case.
    if let Err(err) = getrandom::getrandom(buf) {
        panic!("the operating system's random source failed: {err}");
    }
}

/// hypercore-crypto `keyPair()`: a fresh random key pair.
pub fn random_key_pair() -> KeyPair {
    key_pair_from_seed(&random_bytes32())
}

/// libsodium `crypto_sign_detached`, step for step: the nonce from the seed's hash and the
/// message, R = nonce·B, and the public key hashed in is the stored second half of
/// `secret_key` (libsodium's choice too), so no second base-point multiplication derives
/// it again: one multiplication per signature instead of two (half the time of
/// ed25519-dalek's `SigningKey::from_bytes(seed).sign()`, measured 32.6 -> 16 µs).
pub fn sign(secret_key: &[u8; 64], message: &[u8]) -> [u8; 64] {
    let (seed, public_key) = secret_key.split_at(32);
    let (scalar_bytes, prefix) = expand_seed(seed);
    let a = Scalar::from_bytes_mod_order(clamp_integer(scalar_bytes));
    let r = wide_scalar(Sha512::new().chain_update(prefix).chain_update(message));
    let big_r = base_point_times(r.as_bytes());
    let k = wide_scalar(
        Sha512::new()
            .chain_update(big_r)
            .chain_update(public_key)
            .chain_update(message),
    );
    let s = k * a + r;
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&big_r);
    out[32..].copy_from_slice(s.as_bytes());
    out
}

/// a·B compressed, for a scalar below 2^255: eight table lookups at a time with AVX-512
/// IFMA where the CPU has it (2.5x curve25519-dalek's, docs/DECISIONS.md §46),
/// curve25519-dalek's otherwise.
fn base_point_times(scalar: &[u8; 32]) -> [u8; 32] {
    #[cfg(target_arch = "x86_64")]
    if super::base_mul_x8::available() {
        // SAFETY: available() saw AVX-512F, DQ and IFMA on this CPU
        return unsafe { super::base_mul_x8::mul_base(scalar) };
    }
    EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(*scalar))
        .compress()
        .to_bytes()
}

/// SHA-512 of an Ed25519 seed, in halves: the secret scalar's bytes (not yet clamped) and
/// the nonce prefix. What ed25519-dalek's `SigningKey::from_bytes(seed)` computes too, but
/// without deriving the public key (a base-point multiplication) it then does.
pub fn expand_seed(seed: &[u8]) -> ([u8; 32], [u8; 32]) {
    let expanded = Sha512::digest(seed);
    let mut scalar_bytes = [0u8; 32];
    let mut prefix = [0u8; 32];
    scalar_bytes.copy_from_slice(&expanded[..32]);
    prefix.copy_from_slice(&expanded[32..]);
    (scalar_bytes, prefix)
}

/// A SHA-512 digest reduced mod the group order (libsodium `sc_reduce`).
fn wide_scalar(hash: Sha512) -> Scalar {
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&hash.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// libsodium `crypto_sign_verify_detached` (as hypercore-crypto `verify`): false for a
/// signature that is not 64 bytes, a public key that is not a canonical encoding of a point
/// of large order, a non-canonical S, a small-order R, or a signature that does not match.
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig_bytes) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    // libsodium refuses non-canonical point encodings of the public key.
    if key.to_edwards().compress().to_bytes() != *public_key {
        return false;
    }
    let sig = Signature::from_bytes(&sig_bytes);
    key.verify_strict(message, &sig).is_ok()
}

/// hypercore-crypto `validateKeyPair`, plus the length check: `secret_key` is 64 bytes and
/// its seed derives `public_key` and its second half is `public_key`.
pub fn valid_secret_key(public_key: &[u8; 32], secret_key: &[u8]) -> bool {
    let Ok(sk) = <&[u8; 64]>::try_from(secret_key) else {
        return false;
    };
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&sk[..32]);
    let derived = key_pair_from_seed(&seed);
    derived.public_key == *public_key && sk[32..] == public_key[..]
}
