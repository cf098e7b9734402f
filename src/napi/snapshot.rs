//! RocksDB snapshots for hypercore's snapshot sessions: a snapshot keeps serving the
//! blocks it had after the core is truncated (or cleared) below them, as hypercore's do
//! through their storage snapshot.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use super::convert::{js_error, uint_in, Code};
use super::NativeStore;
use crate::error::Error as EngineError;

type Result<T> = std::result::Result<T, napi::Error<Code>>;

#[napi]
impl NativeStore {
    /// A point-in-time view of the store's database: its id.
    #[napi]
    pub fn storage_snapshot(&self) -> Result<i64> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let id = e.store()?.storage().snapshot();
        i64::try_from(id).map_err(|_| js_error(EngineError::bad_argument("too many snapshots")))
    }

    #[napi]
    pub fn release_storage_snapshot(&self, id: i64) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        if let (Some(store), Ok(id)) = (e.store.as_ref(), u64::try_from(id)) {
            store.storage().release_snapshot(id);
        }
        Ok(())
    }

    /// Block `index` of core `handle` as snapshot `id` saw it; null when it had none.
    #[napi]
    pub fn snapshot_get(&self, id: i64, handle: u32, index: i64) -> Result<Option<Buffer>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (id, index) = (uint_in(id, "id")?, uint_in(index, "index")?);
        let store = e.store()?;
        let core = store.core(handle).map_err(js_error)?;
        let block = store
            .storage()
            .snapshot_block(id, core.data_pointer, index)
            .map_err(|e| js_error(EngineError::from(e)))?;
        Ok(block.map(Buffer::from))
    }
}
