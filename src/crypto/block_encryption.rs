//! hypercore's default block encryption (`DefaultEncryption`, lib/default-encryption.js).
//! A stored block is 8 bytes of header, the core's fork blinded with a keystream, then the
//! block's bytes XORed with XSalsa20 under a nonce of (index, blinded fork). The tree and
//! replication only ever see these stored bytes; readers holding the key decrypt.

use super::hash::{caps, hash, hash_keyed};

/// Bytes in front of every encrypted block.
pub const PADDING: usize = 8;

pub struct BlockKeys {
    pub block: [u8; 32],
    pub blinding: [u8; 32],
}

/// The keys for one core. `is_block_key`: `encryption_key` is the block key itself;
/// `compat`: the derivation of cores without a manifest (the key is the signer's key).
/// None when a block key is not 32 bytes.
pub fn derive_keys(
    encryption_key: &[u8],
    hypercore_key: &[u8; 32],
    is_block_key: bool,
    compat: bool,
) -> Option<BlockKeys> {
    let block = if is_block_key {
        <[u8; 32]>::try_from(encryption_key).ok()?
    } else if compat {
        hash_keyed(&[encryption_key], Some(hypercore_key))
    } else {
        hash(&[&caps().default_encryption, hypercore_key, encryption_key])
    };
    let blinding = hash(&[&block]);
    Some(BlockKeys { block, blinding })
}

fn nonce(index: u64, header: &[u8; 8]) -> [u8; 24] {
    let mut nonce = [0u8; 24];
    nonce[..8].copy_from_slice(&index.to_le_bytes());
    nonce[8..16].copy_from_slice(header);
    nonce
}

/// Encrypts `block` in place: its first `PADDING` bytes are overwritten with the blinded
/// fork. False when the block is shorter than the padding.
pub fn encrypt(keys: &BlockKeys, index: u64, fork: u64, block: &mut [u8]) -> bool {
    if block.len() < PADDING {
        return false;
    }
    let (head, body) = block.split_at_mut(PADDING);
    head.copy_from_slice(&fork.to_le_bytes());
    // blinding the fork may repeat a nonce across a reorg; hypercore accepts that, as the
    // fork is public on the wire anyway
    xsalsa20(&keys.blinding, &nonce(index, &[0; 8]), head);
    let mut header = [0u8; 8];
    header.copy_from_slice(head);
    xsalsa20(&keys.block, &nonce(index, &header), body);
    true
}

/// XORs `data` with the XSalsa20 keystream: sixteen blocks at a time where AVX-512 is.
fn xsalsa20(key: &[u8; 32], nonce: &[u8; 24], data: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    super::salsa20_x16::apply_xsalsa20(key, nonce, data);
    #[cfg(not(target_arch = "x86_64"))]
    {
        use salsa20::cipher::{KeyIvInit, StreamCipher};
        salsa20::XSalsa20::new(key.into(), nonce.into()).apply_keystream(data);
    }
}

/// Decrypts `block` in place (the header stays). False when it is shorter than the padding.
pub fn decrypt(keys: &BlockKeys, index: u64, block: &mut [u8]) -> bool {
    if block.len() < PADDING {
        return false;
    }
    let (head, body) = block.split_at_mut(PADDING);
    let mut header = [0u8; 8];
    header.copy_from_slice(head);
    xsalsa20(&keys.block, &nonce(index, &header), body);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_the_header_hides_the_fork() {
        let keys = derive_keys(&[7u8; 32], &[9u8; 32], false, false).expect("keys");
        let plain = b"\0\0\0\0\0\0\0\0hello block".to_vec();
        let mut block = plain.clone();
        assert!(encrypt(&keys, 3, 2, &mut block));
        assert_ne!(block[PADDING..], plain[PADDING..]);
        assert_ne!(block[..PADDING], 2u64.to_le_bytes());
        assert!(decrypt(&keys, 3, &mut block));
        assert_eq!(block[PADDING..], plain[PADDING..]);
        assert!(!encrypt(&keys, 0, 0, &mut [0u8; 7]));
        assert!(derive_keys(&[1u8; 31], &[0u8; 32], true, false).is_none());
    }
}
