//! hypercore's default block encryption for the JS session layer, which encrypts before it
//! appends and decrypts after it reads (as hypercore does): the engine stores and
//! replicates the encrypted bytes like any others.

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use super::convert::{bad, bytes32, js_error, uint_in, Code};
use crate::crypto::block_encryption::{self, BlockKeys, PADDING};
use crate::error::Error as EngineError;

type Result<T> = std::result::Result<T, napi::Error<Code>>;

/// The keys of one core: `new BlockCipher(encryptionKey, hypercoreKey, isBlockKey, compat)`.
#[napi]
pub struct BlockCipher {
    keys: BlockKeys,
}

#[napi]
impl BlockCipher {
    #[napi(constructor)]
    pub fn new(
        encryption_key: Buffer,
        hypercore_key: Buffer,
        is_block_key: bool,
        compat: bool,
    ) -> Result<Self> {
        let hypercore_key = bytes32(&hypercore_key, "hypercore key")?;
        let keys =
            block_encryption::derive_keys(&encryption_key, &hypercore_key, is_block_key, compat)
                .ok_or_else(|| bad("a block encryption key must be 32 bytes".into()))?;
        Ok(BlockCipher { keys })
    }

    /// Bytes reserved in front of every block.
    #[napi(getter)]
    pub fn padding(&self) -> u32 {
        PADDING as u32
    }

    #[napi(getter)]
    pub fn block_key(&self) -> Buffer {
        self.keys.block.to_vec().into()
    }

    /// Encrypts `block` (whose first `padding` bytes are reserved) in place.
    #[napi]
    pub fn encrypt(&self, index: i64, fork: i64, mut block: BufferSlice) -> Result<()> {
        let (index, fork) = (uint_in(index, "index")?, uint_in(fork, "fork")?);
        if !block_encryption::encrypt(&self.keys, index, fork, &mut block) {
            return Err(bad(
                "an encrypted block has at least 8 bytes of padding".into()
            ));
        }
        Ok(())
    }

    /// Encrypts `blocks` in place as blocks `start`, `start + 1`, ... of an append: one
    /// crossing for a whole batch. `BufferSlice`s, not `Buffer`s: napi-rs makes an N-API
    /// reference for each `Buffer` (docs/DECISIONS.md §43).
    #[napi]
    pub fn encrypt_batch(&self, start: i64, fork: i64, mut blocks: Vec<BufferSlice>) -> Result<()> {
        let (start, fork) = (uint_in(start, "start")?, uint_in(fork, "fork")?);
        for (i, block) in blocks.iter_mut().enumerate() {
            if !block_encryption::encrypt(&self.keys, start + i as u64, fork, block) {
                return Err(bad(
                    "an encrypted block has at least 8 bytes of padding".into()
                ));
            }
        }
        Ok(())
    }

    /// Decrypts `block` in place; its first `padding` bytes are left as they were.
    #[napi]
    pub fn decrypt(&self, index: i64, mut block: BufferSlice) -> Result<()> {
        let index = uint_in(index, "index")?;
        if !block_encryption::decrypt(&self.keys, index, &mut block) {
            return Err(js_error(EngineError::new(
                "DECODING_ERROR",
                "The stored block is too short to be an encrypted block",
            )));
        }
        Ok(())
    }
}
