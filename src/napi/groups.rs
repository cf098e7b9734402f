//! Core groups on the N-API surface: `core.setGroup(topic)` / `get({ group })`, and what
//! corestore's `notifyGroup(topic).updates()` reads (see src/store/groups.rs).

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use super::convert::{bytes32, js_error, uint_in};
use super::{NativeStore, Result};

#[napi]
impl NativeStore {
    /// The core joins the group of `topic` (created on first use); a core already in
    /// another group is `STORAGE_CONFLICT`.
    #[napi]
    pub fn set_group(&self, handle: u32, topic: Buffer) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let topic = bytes32(&topic, "group")?;
        e.store_mut()?.set_group(handle, &topic).map_err(js_error)
    }

    /// The topic of the group the core is in, or null.
    #[napi]
    pub fn core_group(&self, handle: u32) -> Result<Option<Buffer>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let group = e.store()?.group_of(handle).map_err(js_error)?;
        Ok(group.map(|g| g.to_vec().into()))
    }

    /// The keys of the group's cores by last head change (newest first unless `reverse` is
    /// false), from `since` ms on; null when the topic has no group.
    #[napi]
    pub fn group_updates(
        &self,
        topic: Buffer,
        since: Option<i64>,
        reverse: Option<bool>,
    ) -> Result<Option<Vec<Buffer>>> {
        let topic = bytes32(&topic, "topic")?;
        let since = match since {
            Some(s) => uint_in(s, "since")?,
            None => 0,
        };
        let keys = self
            .engine()
            .store()?
            .group_updates(&topic, since, reverse.unwrap_or(true))
            .map_err(js_error)?;
        Ok(keys.map(|ks| ks.into_iter().map(Buffer::from).collect()))
    }
}
