//! A large append off the JS thread. Hashing and storing a batch of 1000 1 KiB blocks takes
//! 5-7 ms, all of which the event loop waited for (docs/DECISIONS.md §30); the same append
//! runs on libuv's thread pool instead and JS awaits it. Small appends stay synchronous:
//! for them the hop costs more than the work.

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, BufferSlice};
use napi::{Env, Task};
use napi_derive::napi;

use super::convert::{state_out, CoreStateOut};
use super::worker::Shared;
use super::NativeStore;
use crate::core::hypercore::CoreState;
use crate::encoding::split_at_ends;
use crate::error::Error as EngineError;

/// What `appendAsync` resolves with: the core's state, or the error the append met (as an
/// object: a thread-pool task cannot reject with a hypercore-style code).
#[napi(object)]
pub struct AppendOut {
    pub state: Option<CoreStateOut>,
    pub code: Option<String>,
    pub message: Option<String>,
}

pub struct AppendTask {
    shared: Arc<Shared>,
    handle: u32,
    /// the blocks, one after another, and where each ends
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Task for AppendTask {
    type Output = std::result::Result<CoreState, EngineError>;
    type JsValue = AppendOut;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        // `ends` were made from the blocks' lengths in order (append below), so each range
        // is within `bytes` and starts where the one before ended
        let blocks = split_at_ends(&self.bytes, &self.ends);
        Ok(self.shared.lock().append(self.handle, &blocks))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<AppendOut> {
        Ok(match output {
            Ok(state) => AppendOut {
                state: Some(state_out(state)),
                code: None,
                message: None,
            },
            Err(err) => AppendOut {
                state: None,
                code: Some(err.code.to_string()),
                message: Some(err.message),
            },
        })
    }
}

/// The store's engine for calls that finish on the thread pool. A class of its own: N-API
/// keeps the object a pending task came from borrowed until it settles, and the store's
/// own methods (replication input among them) must not wait for that.
#[napi]
pub struct OffThread {
    shared: Arc<Shared>,
}

#[napi]
impl NativeStore {
    #[napi]
    pub fn off_thread(&self) -> OffThread {
        OffThread {
            shared: Arc::clone(&self.shared),
        }
    }
}

#[napi]
impl OffThread {
    /// `append` on the thread pool: the blocks are copied here, the JS thread goes on, and
    /// the promise resolves once they are stored. The caller keeps appends to one core in
    /// order (lib/hypercore.js waits for one before the next).
    #[napi(ts_return_type = "Promise<AppendOut>")]
    pub fn append(&self, handle: u32, blocks: Vec<BufferSlice>) -> AsyncTask<AppendTask> {
        let total = blocks.iter().map(|b| b.len()).sum();
        let mut bytes = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(blocks.len());
        for b in &blocks {
            bytes.extend_from_slice(b);
            ends.push(bytes.len());
        }
        AsyncTask::new(AppendTask {
            shared: Arc::clone(&self.shared),
            handle,
            bytes,
            ends,
        })
    }
}
