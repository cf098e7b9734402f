//! corestore's `staticify(core)` on the N-API surface (see src/store/staticify.rs).

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use super::convert::js_error;
use super::{NativeStore, Result};

#[napi]
impl NativeStore {
    /// Records the core's data under a signer-less key whose prologue is the core's signed
    /// head; returns that key (the facade opens it). A core without blocks is BAD_ARGUMENT
    /// "Core must have data".
    #[napi]
    pub fn staticify(&self, handle: u32) -> Result<Buffer> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let key = e.store_mut()?.staticify(handle).map_err(js_error)?;
        Ok(key.to_vec().into())
    }
}
