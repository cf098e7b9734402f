//! The crypto of hypercore and corestore, byte-identical to hypercore-crypto, hypercore's
//! caps, corestore's key derivation and the z32 id encoding.

#[cfg(target_arch = "x86_64")]
mod base_mul_x8;
#[cfg(target_arch = "x86_64")]
mod blake2b_x8;
pub mod block_encryption;
#[cfg(target_arch = "x86_64")]
mod field25519;
mod hash;
#[cfg(target_arch = "x86_64")]
mod salsa20_x16;
mod sign;
mod z32;

pub use hash::{
    caps, corestore_namespace, crypto_namespace, derive_seed, discovery_key, hash, hash_keyed,
    leaf_hash, leaf_hashes, namespace, parent_hash, parent_hashes, replicate_capability, tree_hash,
    Caps, CORESTORE_DEFAULT_NAMESPACE,
};
pub use sign::{
    expand_seed, fill_random, key_pair_from_seed, random_bytes32, random_key_pair, sign,
    valid_secret_key, verify, KeyPair,
};
pub use z32::{id_decode, id_encode, z32_decode, z32_encode};

/// corestore `createKeyPair(primaryKey, namespace, name)`: the key pair of a named core.
pub fn create_key_pair(primary_key: &[u8; 32], namespace: &[u8; 32], name: &[u8]) -> KeyPair {
    key_pair_from_seed(&derive_seed(primary_key, namespace, name))
}

/// Lower-case hex, for messages and debug output.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses hex (either case); None for odd length or a non-hex digit.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_vectors;

#[cfg(test)]
mod tests;
