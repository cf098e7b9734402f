//! Manifests as bytes (hypercore's `getManifest({ raw: true })`, a raw manifest given to
//! `get`), and a manifest given to a session of a core stored without one.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use super::convert::{js_error, manifest_in, manifest_out, Code, ManifestIn, ManifestOut};
use super::{store_closed, NativeStore};
use crate::core::manifest::Manifest;
use crate::error::Error as EngineError;

type Result<T> = std::result::Result<T, napi::Error<Code>>;

/// hypercore's manifest encoding (`Verifier.encodeManifest`).
#[napi]
pub fn encode_manifest(manifest: ManifestIn) -> Result<Buffer> {
    Ok(manifest_in(&manifest, None)?.encode().into())
}

/// `Verifier.decodeManifest`: DECODING_ERROR for bytes that are not a manifest.
#[napi]
pub fn decode_manifest(bytes: Buffer) -> Result<ManifestOut> {
    let m = Manifest::decode(&bytes).map_err(|e| {
        js_error(EngineError::new(
            "DECODING_ERROR",
            format!("not a manifest: {e}"),
        ))
    })?;
    Ok(manifest_out(&m))
}

#[napi]
impl NativeStore {
    /// Gives a core stored without a manifest the one that hashes to its key (nothing for
    /// a core that has one). INVALID_CHECKSUM when it does not hash to the key.
    #[napi]
    pub fn set_manifest(&self, handle: u32, manifest: ManifestIn) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let m = manifest_in(&manifest, None)?;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let (core, storage) = store.core_mut(handle).map_err(js_error)?;
        if core.manifest.is_some() {
            return Ok(());
        }
        if m.hash() != core.key {
            return Err(js_error(EngineError::new(
                "INVALID_CHECKSUM",
                "Manifest hash does not match",
            )));
        }
        core.adopt_manifest(storage, m).map_err(js_error)
    }
}
