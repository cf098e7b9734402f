//! N-API for hypercore-storage's read API on a core's or a state's data
//! (`core.state.storage.read()`, `createBlockStream`), which libraries and hypercore's own
//! tests call directly.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use super::convert::{js_error, uint_in};
use super::sessions::HeadOut;
use super::{NativeStore, Result};

#[napi(object)]
pub struct TreeNodeOut {
    pub index: i64,
    pub size: i64,
    pub hash: Buffer,
}

#[napi(object)]
pub struct HintsOut {
    pub contiguous_length: i64,
    pub remote_contiguous_length: i64,
    pub recovering: i64,
}

#[napi(object)]
pub struct BlockOut {
    pub index: i64,
    pub value: Buffer,
}

#[napi]
impl NativeStore {
    #[napi]
    pub fn storage_block(&self, handle: u32, index: i64) -> Result<Option<Buffer>> {
        let index = uint_in(index, "index")?;
        let block = self
            .engine()
            .store()?
            .storage_block(handle, index)
            .map_err(js_error)?;
        Ok(block.map(Buffer::from))
    }

    /// Blocks of `[gte, lt)` (`lt` -1: to the end) the handle holds, in index order.
    #[napi]
    pub fn storage_blocks(&self, handle: u32, gte: i64, lt: i64) -> Result<Vec<BlockOut>> {
        let start = uint_in(gte, "gte")?;
        let end = if lt < 0 {
            None
        } else {
            Some(uint_in(lt, "lt")?)
        };
        let blocks = self
            .engine()
            .store()?
            .storage_blocks(handle, start, end)
            .map_err(js_error)?;
        Ok(blocks
            .into_iter()
            .map(|(i, v)| BlockOut {
                index: i as i64,
                value: v.into(),
            })
            .collect())
    }

    #[napi]
    pub fn storage_tree_node(&self, handle: u32, index: i64) -> Result<Option<TreeNodeOut>> {
        let index = uint_in(index, "index")?;
        let node = self
            .engine()
            .store()?
            .storage_tree_node(handle, index)
            .map_err(js_error)?;
        Ok(node.map(|n| TreeNodeOut {
            index: n.index as i64,
            size: n.size as i64,
            hash: n.hash.to_vec().into(),
        }))
    }

    #[napi]
    pub fn storage_head(&self, handle: u32) -> Result<Option<HeadOut>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let head = e.store()?.storage_head(handle).map_err(js_error)?;
        Ok(head.map(|h| HeadOut {
            fork: h.fork as i64,
            length: h.length as i64,
            root_hash: h.root_hash.to_vec().into(),
            signature: h.signature.map(Buffer::from),
        }))
    }

    #[napi]
    pub fn storage_hints(&self, handle: u32) -> Result<Option<HintsOut>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let hints = e.store()?.storage_hints(handle).map_err(js_error)?;
        Ok(hints.map(|h| HintsOut {
            contiguous_length: h.contiguous_length.unwrap_or(0) as i64,
            remote_contiguous_length: h.remote_contiguous_length.unwrap_or(0) as i64,
            recovering: h.recovering.unwrap_or(0) as i64,
        }))
    }

    #[napi]
    pub fn storage_bitfield_page(&self, handle: u32, page: i64) -> Result<Option<Buffer>> {
        let page = uint_in(page, "page")?;
        let bytes = self
            .engine()
            .store()?
            .storage_bitfield_page(handle, page)
            .map_err(js_error)?;
        Ok(bytes.map(Buffer::from))
    }

    /// hypercore-storage's `createMarkStream()`: (page index, page bytes) of the marks.
    #[napi]
    pub fn storage_marks(&self, handle: u32) -> Result<Vec<BlockOut>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let pages = e.store()?.storage_marks(handle).map_err(js_error)?;
        Ok(pages
            .into_iter()
            .map(|(i, v)| BlockOut {
                index: i as i64,
                value: v.into(),
            })
            .collect())
    }
}
