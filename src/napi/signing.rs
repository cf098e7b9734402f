//! Appends and truncations signed by someone other than the core's own key pair: a
//! session's `keyPair` (hypercore's `session({ keyPair })`, `setKeyPair`) or a caller's
//! `signature`. The engine checks both as hypercore does (`Verifier.sign`, the signature
//! against the new tree) before anything is written.

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use super::convert::{js_error, key_pair_in, state_out, uint_in, Code, CoreStateOut, KeyPairIn};
use super::{store_closed, NativeStore};
use crate::core::hypercore::SignWith;
use crate::crypto::{self, KeyPair};
use crate::error::Error as EngineError;

type Result<T> = std::result::Result<T, napi::Error<Code>>;

#[napi(object)]
pub struct SignOptions {
    pub key_pair: Option<KeyPairIn>,
    pub signature: Option<Buffer>,
}

fn sign_with(opts: &SignOptions) -> Result<SignWith> {
    let key_pair = match &opts.key_pair {
        None => None,
        Some(kp) => {
            let (public_key, secret_key) = key_pair_in(kp)?;
            // a key pair without its secret half cannot sign: hypercore's "not writable"
            let secret_key = secret_key.ok_or_else(|| {
                js_error(EngineError::new(
                    "SESSION_NOT_WRITABLE",
                    "This key pair has no secret key",
                ))
            })?;
            if !crypto::valid_secret_key(&public_key, &secret_key) {
                return Err(js_error(EngineError::bad_argument(
                    "keyPair.secretKey does not belong to keyPair.publicKey",
                )));
            }
            Some(KeyPair {
                public_key,
                secret_key,
            })
        }
    };
    Ok(SignWith {
        key_pair,
        signature: opts.signature.as_ref().map(|s| s.to_vec()),
    })
}

#[napi]
impl NativeStore {
    /// `append`, signed as `opts` says.
    #[napi]
    pub fn append_signed(
        &self,
        handle: u32,
        blocks: Vec<BufferSlice>,
        opts: SignOptions,
    ) -> Result<CoreStateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let with = sign_with(&opts)?;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let (core, storage) = store.core_mut(handle).map_err(js_error)?;
        let slices: Vec<&[u8]> = blocks.iter().map(|b| b.as_ref()).collect();
        let state = core.append_as(storage, &slices, &with).map_err(js_error)?;
        if e.replicator.is_active() {
            e.replicator.on_local_change(store, handle);
        }
        Ok(state_out(state))
    }

    /// `truncate`, signed as `opts` says.
    #[napi]
    pub fn truncate_signed(
        &self,
        handle: u32,
        new_length: i64,
        fork: i64,
        opts: SignOptions,
    ) -> Result<CoreStateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (length, fork) = (uint_in(new_length, "newLength")?, uint_in(fork, "fork")?);
        let with = sign_with(&opts)?;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let (core, storage) = store.core_mut(handle).map_err(js_error)?;
        let state = core
            .truncate_as(storage, length, fork, &with)
            .map_err(js_error)?;
        if e.replicator.is_active() {
            e.replicator.on_local_change(store, handle);
        }
        Ok(state_out(state))
    }
}
