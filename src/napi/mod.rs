//! The N-API surface: `NativeStore` and a few pure functions (see docs/native-binding.md).
//! Only this module knows N-API. It checks every argument, converts between JS values and
//! engine types, and turns engine errors into JS `Error`s with a hypercore-style `code`.

mod append_task;
mod audit;
mod convert;
mod encryption;
mod engine;
mod manifest;
mod sessions;
mod storage_view;
mod worker;
pub use manifest::{decode_manifest, encode_manifest};
mod groups;
mod push_only;
mod relay;
mod signing;
mod snapshot;
mod staticify;
mod stream_keys;
mod verifier;
pub use verifier::{
    assemble_signature, sign_message, tree_hash_of_roots, tree_signable_compat, verify_message,
    verify_tree_signature,
};

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, BufferSlice, Function};
use napi::Env;
use napi_derive::napi;

use crate::error::Error as EngineError;
use crate::replication::{Event, Output, Replicator};
use crate::store::{OpenRequest, Store, DEFAULT_NAMESPACE};
use crate::wire::channel_events;
use convert::*;
use worker::{Job, Shared, Worker};

pub use convert::Code;
type Result<T> = napi::Result<T, Code>;

/// Peer input reaches the worker in pieces of at most this many bytes.
const WORKER_PIECE: usize = 256 * 1024;

/// Peer input this small is processed in the receiving call when the worker is idle: a
/// peer's syncs, ranges and extension messages (and the handshake) take effect at once, as
/// in JS, where the application may look one event-loop turn later; a thread hop would
/// make it wait for the worker's turn too. Kept small: a few bytes of requests can ask
/// for much work (512 bytes: ~40 block requests).
const INLINE_MAX: usize = 512;

/// Input up to this size is processed in the receiving call too when the worker is idle
/// and no input over `INLINE_MAX` came in the `QUIET` before it: an exchange between
/// transfers (a few small blocks with their proofs, Autobase's acks and heads) then takes
/// effect in the order JS hands it over, as in JS, instead of in whichever order two
/// stores' workers get a core. Two Autobase writers that received the same blocks in one
/// turn acked them in different turns when the scheduler ran one store's worker late, and
/// Autobase's "sequential restarts" ended with a different indexer set
/// (docs/DECISIONS.md §56). In a transfer such input comes more often than that (a
/// sender's requests, a reader's answers), and it all goes to the worker.
const INLINE_QUIET_MAX: usize = 4 * 1024;

/// How long no input over `INLINE_MAX` must have come for `INLINE_QUIET_MAX`.
const QUIET: std::time::Duration = std::time::Duration::from_millis(5);

/// How long such input is worked on in the receiving call: what is left (a burst of block
/// requests that opens a transfer is a few KiB of milliseconds of work) goes on in the
/// worker, so the event loop is never held longer.
const QUIET_BUDGET: std::time::Duration = std::time::Duration::from_micros(250);

/// Where peer input is processed.
enum Route {
    /// handed to the worker
    Worker,
    /// in the receiving call
    Here,
    /// in the receiving call for `QUIET_BUDGET`, the rest in the worker
    Briefly,
}

#[napi(object)]
pub struct StoreOptions {
    pub primary_key: Option<Buffer>,
    pub read_only: Option<bool>,
    /// corestore's `allowBackup`: open a copied store without its device file
    pub allow_backup: Option<bool>,
}

#[napi]
pub struct NativeStore {
    shared: Arc<Shared>,
    /// the replication worker, once a stream received something
    worker: Option<Worker>,
    /// what the worker calls to wake JS (`replicationWorker`)
    wakeup: Option<Arc<worker::Wakeup>>,
    /// when input over `INLINE_MAX` bytes last came
    large_at: Option<std::time::Instant>,
}

#[napi]
impl NativeStore {
    #[napi(constructor)]
    pub fn new(path: String, opts: Option<StoreOptions>) -> Result<Self> {
        let opts = opts.unwrap_or(StoreOptions {
            primary_key: None,
            read_only: None,
            allow_backup: None,
        });
        let primary_key = match &opts.primary_key {
            Some(b) => Some(bytes32(b, "primaryKey")?),
            None => None,
        };
        let store = Store::open_with(
            std::path::Path::new(&path),
            primary_key,
            &crate::storage::OpenOptions {
                read_only: opts.read_only.unwrap_or(false),
                allow_backup: opts.allow_backup.unwrap_or(false),
            },
        )
        .map_err(js_error)?;
        Ok(NativeStore {
            shared: Shared::new(store),
            worker: None,
            wakeup: None,
            large_at: None,
        })
    }

    /// The engine, for one call. Held for the whole call: the worker waits meanwhile.
    fn engine(&self) -> worker::EngineGuard<'_> {
        self.shared.lock()
    }

    /// `callback` is called (with no arguments) when the replication worker has output or
    /// progress for JS to take with `replicationPoll`.
    #[napi]
    pub fn replication_worker(&mut self, callback: Function<'_, (), ()>) -> Result<()> {
        let wakeup = callback
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()
            .map_err(napi_failure)?;
        self.wakeup = Some(Arc::new(wakeup));
        Ok(())
    }

    /// Where `bytes` of peer input are processed: in the worker (started on first use),
    /// except without a worker callback or when the thread cannot start, and when they are
    /// few and the worker is idle (see INLINE_MAX and INLINE_QUIET_MAX).
    fn route(&mut self, bytes: usize) -> Route {
        let quiet = if bytes > INLINE_MAX {
            let now = std::time::Instant::now();
            let quiet = self.large_at.is_none_or(|at| now - at >= QUIET);
            self.large_at = Some(now);
            quiet && bytes <= INLINE_QUIET_MAX && self.shared.idle()
        } else if self.shared.idle() {
            return Route::Here;
        } else {
            false
        };
        if self.worker.is_none() {
            let Some(wakeup) = self.wakeup.clone() else {
                return Route::Here;
            };
            self.worker = Worker::start(&self.shared, wakeup).ok();
        }
        match (self.worker.is_some(), quiet) {
            (false, _) => Route::Here,
            (true, true) => Route::Briefly,
            (true, false) => Route::Worker,
        }
    }

    /// Input routed `Briefly`: `f` runs on the engine until `QUIET_BUDGET` from now, and
    /// what it left of the session's input goes on in the worker. (If the worker's thread
    /// has just ended, the session's next input or call finds it still in order in the
    /// backlog.)
    fn briefly(
        &mut self,
        env: &Env,
        session: u32,
        f: impl FnOnce(&mut Replicator, &mut Store, std::time::Instant),
    ) -> Result<ReplicationOut> {
        let deadline = std::time::Instant::now() + QUIET_BUDGET;
        let (out, left) = {
            let mut engine = self.engine();
            let out = engine.replicate_with(|r, store| f(r, store, deadline))?;
            (out, engine.replicator.session_has_backlog(session))
        };
        if left {
            let _ = self.submit(env, Job::Resume);
        }
        Ok(out)
    }

    /// Hands a job to the worker; back when its thread has ended (then the caller runs it,
    /// and the next input does not try the worker again).
    fn submit(&mut self, env: &Env, job: Job) -> std::result::Result<(), Job> {
        let Some(w) = self.worker.as_mut() else {
            return Err(job);
        };
        let submitted = w.submit(env, &self.shared, job);
        if submitted.is_err() {
            self.worker = None;
            self.wakeup = None;
        }
        submitted
    }

    #[napi(getter)]
    pub fn primary_key(&self) -> Result<Buffer> {
        let mut engine = self.engine();
        let e = &mut *engine;
        Ok(e.store()?.primary_key().to_vec().into())
    }

    #[napi]
    pub fn open_core(&self, opts: OpenOptions) -> Result<CoreInfo> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let req = OpenRequest {
            key: opt_bytes32(&opts.key, "key")?,
            discovery_key: opt_bytes32(&opts.discovery_key, "discoveryKey")?,
            name: opts.name,
            namespace: opt_bytes32(&opts.namespace, "namespace")?.unwrap_or(DEFAULT_NAMESPACE),
            key_pair: match &opts.key_pair {
                Some(kp) => Some(key_pair_in(kp)?),
                None => None,
            },
            manifest: match &opts.manifest {
                Some(m) => Some(manifest_in(m, opts.manifest_version)?),
                None => None,
            },
            manifest_version: version_in(opts.manifest_version)?,
            create_if_missing: opts.create_if_missing.unwrap_or(true),
        };
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let handle = store.open_core(req).map_err(js_error)?;
        if e.replicator.is_active() {
            e.replicator.attach(store, handle);
        }
        let core = store.core(handle).map_err(js_error)?;
        Ok(core_info(handle, core))
    }

    #[napi]
    pub fn close_core(&self, handle: u32) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        if let Some(store) = e.store.as_mut() {
            store.close_core(handle);
            if store.core(handle).is_err() {
                e.replicator.forget_core(handle);
            }
        }
        Ok(())
    }

    #[napi]
    pub fn has_core(&self, discovery_key: Buffer) -> Result<bool> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let dkey = bytes32(&discovery_key, "discoveryKey")?;
        e.store()?.has_core(&dkey).map_err(js_error)
    }

    /// corestore `getAuth(discoveryKey)`: the stored identity of a core, or null.
    #[napi]
    pub fn get_auth(&self, discovery_key: Buffer) -> Result<Option<AuthOut>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let dkey = bytes32(&discovery_key, "discoveryKey")?;
        let found = e.store()?.auth(&dkey).map_err(js_error)?;
        Ok(found.map(|(auth, manifest)| auth_out(&auth, manifest.as_ref())))
    }

    /// The key pair corestore derives for `name` in `namespace`, as one 96-byte buffer
    /// (public key, then the 64-byte secret key) that the facade slices: one allocation
    /// and no per-field objects on a call that benchmarks count.
    #[napi]
    pub fn create_key_pair<'e>(
        &self,
        env: &'e Env,
        name: String,
        namespace: BufferSlice,
    ) -> Result<BufferSlice<'e>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let ns = bytes32(&namespace, "namespace")?;
        let kp = e.store()?.create_key_pair(&name, &ns);
        let mut out = [0u8; 96];
        out[..32].copy_from_slice(&kp.public_key);
        out[32..].copy_from_slice(&kp.secret_key);
        BufferSlice::copy_from(env, out).map_err(napi_failure)
    }

    #[napi]
    pub fn list(&self, namespace: Option<Buffer>) -> Result<Vec<Buffer>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let ns = opt_bytes32(&namespace, "namespace")?;
        let keys = e.store()?.list(ns.as_ref()).map_err(js_error)?;
        Ok(keys.into_iter().map(|k| k.to_vec().into()).collect())
    }

    #[napi]
    pub fn suspend(&self) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store()?.storage().flush().map_err(|e| js_error(e.into()))
    }

    #[napi]
    pub fn resume(&self) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store().map(|_| ())
    }

    /// Releases every core, RocksDB and the directory lock. Idempotent.
    #[napi]
    pub fn close(&mut self) {
        {
            let mut engine = self.engine();
            let e = &mut *engine;
            if let Some(store) = e.store.as_mut() {
                e.replicator.close_all(store);
            }
            e.store = None;
        }
        // the worker's thread ends once its queue is closed; what it still holds finds
        // no store
        self.shared.close();
        self.worker = None;
        self.wakeup = None;
    }

    #[napi]
    pub fn append(&self, handle: u32, blocks: Vec<BufferSlice>) -> Result<CoreStateOut> {
        let slices: Vec<&[u8]> = blocks.iter().map(|b| b.as_ref()).collect();
        let state = self.engine().append(handle, &slices).map_err(js_error)?;
        Ok(state_out(state))
    }

    #[napi]
    pub fn get(&self, handle: u32, index: i64) -> Result<Option<Buffer>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let index = uint_in(index, "index")?;
        let store = e.store()?;
        let core = store.core(handle).map_err(js_error)?;
        let block = core.get(store.storage(), index).map_err(js_error)?;
        Ok(block.map(Buffer::from))
    }

    #[napi]
    pub fn has(&self, handle: u32, start: i64, end: i64) -> Result<bool> {
        let (start, end) = (uint_in(start, "start")?, uint_in(end, "end")?);
        Ok(self
            .engine()
            .store()?
            .core(handle)
            .map_err(js_error)?
            .has(start, end))
    }

    /// The first block of [start, end) the core does not hold (`end` when it holds all):
    /// a download's completion in one call instead of one per block.
    #[napi]
    pub fn first_missing(&self, handle: u32, start: i64, end: i64) -> Result<i64> {
        let (start, end) = (uint_in(start, "start")?, uint_in(end, "end")?);
        let engine = self.engine();
        let core = engine.store()?.core(handle).map_err(js_error)?;
        Ok(core.first_missing(start, end) as i64)
    }

    #[napi]
    pub fn seek(
        &self,
        handle: u32,
        byte_offset: i64,
        padding: Option<u32>,
    ) -> Result<Option<Vec<i64>>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let bytes = uint_in(byte_offset, "byteOffset")?;
        let store = e.store()?;
        let core = store.core(handle).map_err(js_error)?;
        let padding = u64::from(padding.unwrap_or(0));
        let found = core
            .seek(store.storage(), bytes, padding)
            .map_err(js_error)?;
        Ok(found.map(|(i, o)| vec![i as i64, o as i64]))
    }

    #[napi]
    pub fn truncate(&self, handle: u32, new_length: i64, fork: i64) -> Result<CoreStateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (length, fork) = (uint_in(new_length, "newLength")?, uint_in(fork, "fork")?);
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let (core, storage) = store.core_mut(handle).map_err(js_error)?;
        let state = core.truncate(storage, length, fork).map_err(js_error)?;
        if e.replicator.is_active() {
            e.replicator.on_local_change(store, handle);
        }
        Ok(state_out(state))
    }

    #[napi]
    pub fn clear(&self, handle: u32, start: i64, end: i64) -> Result<CoreStateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (start, end) = (uint_in(start, "start")?, uint_in(end, "end")?);
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let (core, storage) = store.core_mut(handle).map_err(js_error)?;
        let end = end.min(core.tree().length);
        let state = core.clear(storage, start, end).map_err(js_error)?;
        if start < end && e.replicator.is_active() {
            e.replicator.on_clear(handle, &[(start, end)]);
        }
        Ok(state_out(state))
    }

    /// hypercore `markBlock(start, end)`: the blocks stay through the next `sweep`.
    #[napi]
    pub fn mark_blocks(&self, handle: u32, start: i64, end: i64) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (start, end) = (uint_in(start, "start")?, uint_in(end, "end")?);
        let (core, storage) = e.store_mut()?.core_mut(handle).map_err(js_error)?;
        core.mark(storage, start, end).map_err(js_error)
    }

    #[napi]
    pub fn clear_markings(&self, handle: u32) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (core, storage) = e.store_mut()?.core_mut(handle).map_err(js_error)?;
        core.clear_marks(storage).map_err(js_error)
    }

    /// hypercore `sweep()`: clears every block no mark covers, and the marks.
    #[napi]
    pub fn sweep(&self, handle: u32) -> Result<CoreStateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let (core, storage) = store.core_mut(handle).map_err(js_error)?;
        let (state, cleared) = core.sweep(storage).map_err(js_error)?;
        if e.replicator.is_active() {
            e.replicator.on_clear(handle, &cleared);
        }
        Ok(state_out(state))
    }

    #[napi]
    pub fn tree_hash(&self, handle: u32, length: i64) -> Result<Buffer> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let length = uint_in(length, "length")?;
        let store = e.store()?;
        let core = store.core(handle).map_err(js_error)?;
        let hash = core.tree_hash(store.storage(), length).map_err(js_error)?;
        Ok(hash.to_vec().into())
    }

    #[napi]
    pub fn get_user_data(&self, handle: u32, key: String) -> Result<Option<Buffer>> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store()?;
        let core = store.core(handle).map_err(js_error)?;
        let value = core.user_data(store.storage(), &key).map_err(js_error)?;
        Ok(value.map(Buffer::from))
    }

    #[napi]
    pub fn set_user_data(&self, handle: u32, key: String, value: Option<Buffer>) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store()?;
        let core = store.core(handle).map_err(js_error)?;
        core.set_user_data(store.storage(), &key, value.as_deref())
            .map_err(js_error)
    }

    /// Starts a replication stream. Without `handshakeHash` we run Noise ourselves and the
    /// stream carries raw bytes; with it (from a JS secret-stream) the stream runs on the
    /// connection's JS Protomux: channel events in (`replicationChannelEvent`), channel
    /// commands out (`commands`). A `scoped` stream (hypercore's `core.replicate()`)
    /// carries only the cores given to `replicationAddCore`.
    #[napi]
    pub fn replication_open(
        &self,
        is_initiator: bool,
        handshake_hash: Option<Buffer>,
        scoped: Option<bool>,
        key_pair: Option<convert::KeyPairIn>,
    ) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let hash = match &handshake_hash {
            Some(h) => Some(<[u8; 64]>::try_from(h.as_ref()).map_err(|_| {
                js_error(EngineError::bad_argument("handshakeHash must be 64 bytes"))
            })?),
            None => None,
        };
        let key_pair = match &key_pair {
            Some(kp) => {
                let (public_key, secret_key) = convert::key_pair_in(kp)?;
                let secret_key = secret_key
                    .filter(|sk| crate::crypto::valid_secret_key(&public_key, sk))
                    .ok_or_else(|| {
                        js_error(EngineError::bad_argument(
                            "keyPair needs a secretKey that matches its publicKey",
                        ))
                    })?;
                Some(crate::crypto::KeyPair {
                    public_key,
                    secret_key,
                })
            }
            None => None,
        };
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let session =
            e.replicator
                .open(store, is_initiator, hash, scoped.unwrap_or(false), key_pair);
        let mut out = e.take_output();
        out.session = Some(session);
        Ok(out)
    }

    /// A session extension message for the core, to the peer on `session` or to all.
    #[napi]
    pub fn replication_extension(
        &self,
        handle: u32,
        session: Option<u32>,
        name: String,
        message: BufferSlice,
    ) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        if name.is_empty() {
            return Err(js_error(EngineError::bad_argument(
                "An extension needs a name",
            )));
        }
        e.replicator
            .send_extension(handle, session, &name, &message);
        Ok(e.take_output())
    }

    /// `store.replicate(stream)` on a `core.replicate()` stream: every core replicates on it.
    #[napi]
    pub fn replication_widen(&self, session: u32) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicate_with(|r, store| r.widen(store, session))
    }

    /// `core.replicate(stream)`: the core replicates on this stream too.
    #[napi]
    pub fn replication_add_core(&self, session: u32, handle: u32) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicate_with(|r, store| r.add_to_scope(store, session, handle))
    }

    /// Raw transport bytes from the peer, for the worker: null, and the worker's output
    /// comes through `replicationPoll`. Without a worker, processed here: the output.
    #[napi]
    pub fn replication_recv(
        &mut self,
        env: &Env,
        session: u32,
        data: BufferSlice,
    ) -> Result<Option<ReplicationOut>> {
        let mut rest: &[u8] = &data;
        let route = self.route(data.len());
        if let Route::Briefly = route {
            return self
                .briefly(env, session, |r, store, deadline| {
                    r.recv_until(store, session, rest, Some(deadline))
                })
                .map(Some);
        }
        if let Route::Worker = route {
            // in pieces: what the worker makes of the first (requests, answers) goes out
            // while it works on the next, so both ends of a transfer keep busy
            while !rest.is_empty() {
                let (piece, after) = rest.split_at(rest.len().min(WORKER_PIECE));
                let job = Job::Recv {
                    session,
                    data: piece.to_vec(),
                };
                if self.submit(env, job).is_err() {
                    break; // the worker is gone: this piece and the rest are processed here
                }
                rest = after;
            }
            if rest.is_empty() {
                return Ok(None);
            }
        }
        self.engine()
            .replicate_with(|r, store| r.recv(store, session, rest))
            .map(Some)
    }

    /// Channel events of an external stream's JS Protomux, batched as
    /// src/wire/channel_events.rs describes. Handed to the worker (null) unless `here`, or
    /// without a worker: then processed now (the output).
    #[napi]
    pub fn replication_channel_events(
        &mut self,
        env: &Env,
        session: u32,
        meta: BufferSlice,
        data: BufferSlice,
        here: Option<bool>,
    ) -> Result<Option<ReplicationOut>> {
        let bad =
            |what: String| js_error(EngineError::bad_argument(format!("channel events: {what}")));
        let route = if here == Some(true) {
            Route::Here
        } else {
            self.route(data.len())
        };
        let events = match route {
            Route::Worker => {
                channel_events::check(&meta, &data).map_err(bad)?;
                let job = Job::Events {
                    session,
                    meta: meta.to_vec(),
                    data: data.to_vec(),
                };
                // back only when the worker is gone: then processed here
                let Err(Job::Events { meta, data, .. }) = self.submit(env, job) else {
                    return Ok(None);
                };
                channel_events::decode(&meta, &data).map_err(bad)?
            }
            Route::Briefly => {
                let events = channel_events::decode(&meta, &data).map_err(bad)?;
                return self
                    .briefly(env, session, |r, store, deadline| {
                        r.external_until(store, session, events, Some(deadline))
                    })
                    .map(Some);
            }
            Route::Here => channel_events::decode(&meta, &data).map_err(bad)?,
        };
        self.engine()
            .replicate_with(|r, store| r.external(store, session, events))
            .map(Some)
    }

    /// An empty message on an idle raw stream, as hypercore's 5-second keep-alive.
    #[napi]
    pub fn replication_keep_alive(&self, session: u32) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicate_with(|r, store| r.keep_alive(store, session))
    }

    #[napi]
    pub fn replication_close(&mut self, env: &Env, session: u32) -> Result<ReplicationOut> {
        // with input of this stream still at the worker, the worker closes it after that
        if !self.shared.idle() && self.submit(env, Job::Close { session }).is_ok() {
            return Ok(self.engine().take_output());
        }
        let mut engine = self.engine();
        let e = &mut *engine;
        if let Some(store) = e.store.as_mut() {
            e.replicator.close(store, session, None);
        }
        Ok(e.take_output())
    }

    /// Local readers wait for blocks [start, end): ask peers for them. `end` -1: every
    /// block, now and as the core grows (download() without a range).
    #[napi]
    pub fn replication_want(
        &self,
        handle: u32,
        start: i64,
        end: i64,
        force: Option<bool>,
        read: Option<bool>,
    ) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let start = uint_in(start, "start")?;
        let end = if end == -1 {
            None
        } else {
            Some(uint_in(end, "end")?)
        };
        let (force, read) = (force.unwrap_or(false), read.unwrap_or(false));
        e.replicate_with(|r, store| r.want(store, handle, start, end, force, read))
    }

    /// A local seek of a sparse replica lacks tree nodes: ask a peer for a seek proof.
    #[napi]
    pub fn replication_seek(
        &self,
        handle: u32,
        bytes: i64,
        padding: i64,
    ) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (bytes, padding) = (uint_in(bytes, "bytes")?, uint_in(padding, "padding")?);
        e.replicate_with(|r, store| r.want_seek(store, handle, bytes, padding))
    }

    /// What the peer on `session` told us about the core, or null when it has no channel
    /// for it (hypercore's Peer remoteLength, remoteFork, ...).
    #[napi]
    pub fn replication_peer(&self, handle: u32, session: u32) -> Option<PeerInfoOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicator
            .peer_info(handle, session)
            .map(|p| PeerInfoOut {
                remote_length: p.length as i64,
                remote_fork: p.fork as i64,
                remote_contiguous_length: p.contiguous_length as i64,
                remote_can_upgrade: p.can_upgrade,
                remote_allow_push: p.allow_push,
                inflight: p.inflight,
            })
    }

    /// hypercore's `stats` of a core (`session` None: its replicator's) or of its channel
    /// on one stream, flat: the 10 message kinds sent, the 10 received (wire type order),
    /// then hotswaps, invalidData, invalidRequests, backoffs, notAvailableBackoffs. None
    /// when that stream has no channel for the core.
    #[napi]
    pub fn replication_stats(&self, handle: u32, session: Option<u32>) -> Option<Vec<f64>> {
        let engine = self.engine();
        let stats = match session {
            Some(session) => engine.replicator.peer_stats(handle, session)?,
            None => engine.replicator.core_stats(handle),
        };
        let mut flat: Vec<f64> = stats
            .tx
            .iter()
            .chain(stats.rx.iter())
            .map(|&n| n as f64)
            .collect();
        flat.extend(
            [
                stats.hotswaps,
                stats.invalid_data,
                stats.invalid_requests,
                stats.backoffs,
                stats.not_available_backoffs,
            ]
            .map(|n| n as f64),
        );
        Some(flat)
    }

    /// Whether block `index` of the core is wanted (a read, a download) or requested from a peer.
    #[napi]
    pub fn replication_block_requested(&self, handle: u32, index: i64) -> Result<bool> {
        let index = uint_in(index, "index")?;
        Ok(self.engine().replicator.block_requested(handle, index))
    }

    #[napi]
    pub fn replication_unwant(&self, handle: u32, start: i64, end: i64) -> Result<()> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let (start, end) = (uint_in(start, "start")?, uint_in(end, "end")?);
        e.replicator.unwant(handle, start, end);
        Ok(())
    }

    /// 0: no peer knows more; 1: an upgrade is on its way; 2: peers have not synced yet.
    #[napi]
    pub fn replication_update(&self, handle: u32) -> Result<ReplicationOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let store = e.store.as_mut().ok_or_else(store_closed)?;
        let status = e.replicator.update(store, handle);
        let mut out = e.take_output();
        out.status = Some(status);
        Ok(out)
    }

    /// What the replication worker made, taken without telling it: it does not wake JS
    /// again until `replicationPolled`, so node does not call back again while JS handles
    /// this (docs/DECISIONS.md §62).
    #[napi]
    pub fn replication_take(&mut self) -> ReplicationOut {
        self.shared.take_output()
    }

    /// After `replicationTake`'s output was handled: the worker wakes JS for what it makes
    /// next. True when it made some meanwhile, which JS then takes in a turn of its own.
    #[napi]
    pub fn replication_polled(&mut self, env: &Env) -> bool {
        if let Some(w) = self.worker.as_mut() {
            w.polled(env, &self.shared);
        }
        self.shared.has_output()
    }

    /// What local changes (append, truncate, cores opened) queued for the streams.
    #[napi]
    pub fn replication_poll(&mut self, env: &Env) -> ReplicationOut {
        if let Some(w) = self.worker.as_mut() {
            w.polled(env, &self.shared);
        }
        self.shared.take_output()
    }

    #[napi]
    pub fn peer_count(&self, handle: u32) -> u32 {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.replicator.peer_count(handle)
    }

    /// What `openCore` returns, for a core already open (no reference added): the facade
    /// refreshes a core whose manifest was learned from a peer.
    #[napi]
    pub fn core_info(&self, handle: u32) -> Result<CoreInfo> {
        let mut engine = self.engine();
        let e = &mut *engine;
        let core = e.store()?.core(handle).map_err(js_error)?;
        Ok(core_info(handle, core))
    }

    #[napi]
    pub fn state(&self, handle: u32) -> Result<CoreStateOut> {
        let mut engine = self.engine();
        let e = &mut *engine;
        e.store()?.state(handle).map(state_out).map_err(js_error)
    }
}

/// corestore's `namespace(name)`: BLAKE2b-256 over the parent namespace and the name.
#[napi]
pub fn derive_namespace(parent: Buffer, name: Buffer) -> Result<Buffer> {
    let parent = bytes32(&parent, "namespace")?;
    Ok(crate::crypto::namespace(&parent, &name).to_vec().into())
}

/// hypercore `caps.treeSignable`: the bytes a core's signers sign for a tree.
#[napi]
pub fn tree_signable(
    manifest_hash: Buffer,
    tree_hash: Buffer,
    length: i64,
    fork: i64,
) -> Result<Buffer> {
    let manifest_hash = bytes32(&manifest_hash, "manifest hash")?;
    let tree_hash = bytes32(&tree_hash, "tree hash")?;
    let (length, fork) = (uint_in(length, "length")?, uint_in(fork, "fork")?);
    Ok(crate::core::signature::tree_signable(&manifest_hash, &tree_hash, length, fork).into())
}

#[napi]
pub fn discovery_key(key: Buffer) -> Result<Buffer> {
    let key = bytes32(&key, "key")?;
    Ok(crate::crypto::discovery_key(&key).to_vec().into())
}

/// hypercore's `caps.DEFAULT_NAMESPACE`: the namespace of a default manifest's signer.
#[napi]
pub fn default_signer_namespace() -> Buffer {
    crate::crypto::caps().default_namespace.to_vec().into()
}

#[napi]
pub fn z32_encode(bytes: Buffer) -> String {
    crate::crypto::z32_encode(&bytes)
}

#[napi]
pub fn z32_decode(s: String) -> Result<Buffer> {
    crate::crypto::z32_decode(&s)
        .map(Buffer::from)
        .ok_or_else(|| js_error(EngineError::bad_argument("Invalid z-base-32 string")))
}

/// A failure inside N-API itself (allocation), which no caller input causes.
fn napi_failure(e: napi::Error) -> napi::Error<Code> {
    js_error(EngineError::new("STORAGE_ERROR", e.reason.clone()))
}

fn store_closed() -> napi::Error<Code> {
    js_error(engine::closed())
}

#[napi(object)]
pub struct SendOut {
    pub session: u32,
    pub data: Buffer,
}

#[napi(object)]
pub struct EventOut {
    /// open | close | append | download | upload | truncate | peer-add | peer-remove | sync
    pub r#type: String,
    pub session: Option<u32>,
    pub handle: Option<u32>,
    pub index: Option<i64>,
    pub bytes: Option<i64>,
    /// extension: the extension's name and message.
    pub name: Option<String>,
    pub data: Option<Buffer>,
    /// download / upload: the blocks, as (index, byte length, requested at ms) triples of little-endian
    /// doubles. One event carries a run of blocks of one core from (or to) one peer:
    /// a replication call moves hundreds of blocks, and one object per block cost more
    /// than the blocks' verification.
    pub blocks: Option<Buffer>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub remote_public_key: Option<Buffer>,
    /// relay: 0 remote-open, 1 opened, 2 message, 3 close; the channel; the message type
    pub kind: Option<u32>,
    pub channel: Option<u32>,
    pub message_type: Option<u32>,
    /// append / download / truncate / remote-contiguous-length: the core's state as of the
    /// last release of the engine lock, so JS routes the event without an engine call
    pub state: Option<CoreStateOut>,
}

/// The commands for the JS Protomux of external streams, in order, packed
/// (src/replication/packed_commands.rs): one crossing per output instead of an object and a
/// Buffer per message (3.3 µs each, measured on a 50 MB transfer over a secret-stream pair).
#[napi(object)]
pub struct CommandsOut {
    pub meta: Buffer,
    pub data: Buffer,
}

#[napi(object)]
pub struct ReplicationOut {
    pub session: Option<u32>,
    /// replicationRelayOpen: the relay channel's id
    pub channel: Option<u32>,
    pub status: Option<u32>,
    pub sends: Vec<SendOut>,
    pub commands: Option<CommandsOut>,
    pub events: Vec<EventOut>,
    /// peer input the replication worker processed, per session, since the last poll
    pub consumed: Vec<ConsumedOut>,
}

#[napi(object)]
pub struct ConsumedOut {
    pub session: u32,
    pub bytes: f64,
}

#[napi(object)]
pub struct PeerInfoOut {
    pub remote_length: i64,
    pub remote_fork: i64,
    pub remote_contiguous_length: i64,
    pub remote_can_upgrade: bool,
    pub remote_allow_push: bool,
    pub inflight: u32,
}

fn replication_out(
    out: Output,
    states: &std::collections::HashMap<u32, crate::core::hypercore::CoreState>,
) -> ReplicationOut {
    let event = |t: &str| EventOut {
        r#type: t.to_string(),
        session: None,
        handle: None,
        index: None,
        bytes: None,
        blocks: None,
        name: None,
        data: None,
        code: None,
        message: None,
        remote_public_key: None,
        kind: None,
        channel: None,
        message_type: None,
        state: None,
    };
    // Consecutive downloads of one core (uploads of one core to one peer) become one run.
    let mut items: Vec<Item> = Vec::with_capacity(out.events.len());
    for e in out.events {
        let (kind, handle, session, index, bytes, at) = match e {
            Event::Download {
                handle,
                index,
                bytes,
                session,
                requested_at,
            } => ("download", handle, session, index, bytes, requested_at),
            Event::Upload {
                handle,
                index,
                bytes,
                session,
            } => ("upload", handle, session, index, bytes, 0),
            other => {
                items.push(Item::One(other));
                continue;
            }
        };
        match items.last_mut() {
            Some(Item::Run {
                kind: k,
                handle: h,
                session: s,
                pairs,
            }) if *k == kind && *h == handle && *s == session => {
                pairs.extend_from_slice(&block_pair(index, bytes, at))
            }
            _ => items.push(Item::Run {
                kind,
                handle,
                session,
                pairs: block_pair(index, bytes, at),
            }),
        }
    }
    let events = items
        .into_iter()
        .map(|item| match item {
            Item::Run {
                kind,
                handle,
                session,
                pairs,
            } => block_event(kind, handle, session, pairs, &event),
            Item::One(e) => one_event(e, &event),
        })
        .map(|mut e: EventOut| {
            let changes_state = matches!(
                e.r#type.as_str(),
                "append" | "download" | "truncate" | "remote-contiguous-length"
            );
            if let Some(st) = e
                .handle
                .and_then(|h| states.get(&h))
                .filter(|_| changes_state)
            {
                e.state = Some(state_out(*st));
            }
            e
        })
        .collect();

    let commands = (!out.commands.is_empty()).then(|| CommandsOut {
        meta: out.commands.meta.into(),
        data: out.commands.data.into(),
    });
    ReplicationOut {
        session: None,
        channel: None,
        status: None,
        commands,
        sends: out
            .sends
            .into_iter()
            .map(|(session, data)| SendOut {
                session,
                data: data.into(),
            })
            .collect(),
        events,
        consumed: Vec::new(),
    }
}

/// One block of a run: index, byte length and, for downloads, when it was requested (ms
/// since the epoch, 0 if unasked), as little-endian doubles.
fn block_pair(index: u64, bytes: u64, requested_at: u64) -> Vec<u8> {
    let mut pair = Vec::with_capacity(24);
    pair.extend_from_slice(&(index as f64).to_le_bytes());
    pair.extend_from_slice(&(bytes as f64).to_le_bytes());
    pair.extend_from_slice(&(requested_at as f64).to_le_bytes());
    pair
}

/// A run of block events (see `EventOut::blocks`), or any other event.
enum Item {
    Run {
        kind: &'static str,
        handle: u32,
        session: u32,
        pairs: Vec<u8>,
    },
    One(Event),
}

fn one_event(e: Event, event: &dyn Fn(&str) -> EventOut) -> EventOut {
    match e {
        Event::Open { session } => EventOut {
            session: Some(session),
            ..event("open")
        },
        Event::Close { session, error } => EventOut {
            session: Some(session),
            code: error.as_ref().map(|e| e.code.to_string()),
            message: error.map(|e| e.to_string()),
            ..event("close")
        },
        Event::Append { handle } => EventOut {
            handle: Some(handle),
            ..event("append")
        },
        Event::Truncate { handle, ancestors } => EventOut {
            handle: Some(handle),
            index: Some(ancestors as i64),
            ..event("truncate")
        },
        Event::PeerAdd {
            handle,
            session,
            remote_public_key,
        } => EventOut {
            handle: Some(handle),
            session: Some(session),
            remote_public_key: remote_public_key.map(|k| k.to_vec().into()),
            ..event("peer-add")
        },
        Event::PeerRemove { handle, session } => EventOut {
            handle: Some(handle),
            session: Some(session),
            ..event("peer-remove")
        },
        Event::Extension {
            handle,
            session,
            name,
            message,
        } => EventOut {
            handle: Some(handle),
            session: Some(session),
            name: Some(name),
            data: Some(message.into()),
            ..event("extension")
        },
        Event::Sync { handle } => EventOut {
            handle: Some(handle),
            ..event("sync")
        },
        Event::RemoteContiguousLength { handle, length } => EventOut {
            handle: Some(handle),
            index: Some(length as i64),
            ..event("remote-contiguous-length")
        },
        // `replication_out` groups these into runs before they get here
        Event::Download {
            handle,
            index,
            bytes,
            session,
            requested_at,
        } => block_event(
            "download",
            handle,
            session,
            block_pair(index, bytes, requested_at),
            event,
        ),
        Event::Relay {
            session,
            kind,
            channel,
            message_type,
            data,
        } => EventOut {
            session: Some(session),
            kind: Some(u32::from(kind)),
            channel: u32::try_from(channel).ok(),
            message_type: u32::try_from(message_type).ok(),
            data: Some(data.into()),
            ..event("relay")
        },
        Event::MuxOpen {
            session,
            remote_id,
            protocol,
            id,
        } => EventOut {
            session: Some(session),
            channel: u32::try_from(remote_id).ok(),
            name: Some(protocol),
            data: id.map(Into::into),
            ..event("mux-open")
        },
        Event::VerificationError {
            handle,
            session,
            code,
            message,
        } => EventOut {
            handle: Some(handle),
            session: Some(session),
            code: Some(code),
            message: Some(message),
            ..event("verification-error")
        },
        Event::Conflict {
            handle,
            length,
            fork,
        } => EventOut {
            handle: Some(handle),
            index: Some(length as i64),
            bytes: Some(fork as i64),
            ..event("conflict")
        },
        Event::CoreOpen {
            handle,
            discovery_key,
        } => EventOut {
            handle: Some(handle),
            data: Some(discovery_key.to_vec().into()),
            ..event("core-open")
        },
        Event::Manifest { handle } => EventOut {
            handle: Some(handle),
            ..event("manifest")
        },
        // the block, then its index (a little-endian double) in the same allocation: the
        // reader gets a view of it, as hypercore's gets a view of the message it came in
        Event::Block {
            handle,
            index,
            mut value,
        } => {
            value.extend_from_slice(&(index as f64).to_le_bytes());
            EventOut {
                handle: Some(handle),
                data: Some(value.into()),
                ..event("block")
            }
        }
        Event::Upload {
            handle,
            index,
            bytes,
            session,
        } => block_event(
            "upload",
            handle,
            session,
            block_pair(index, bytes, 0),
            event,
        ),
    }
}

fn block_event(
    kind: &str,
    handle: u32,
    session: u32,
    pairs: Vec<u8>,
    event: &dyn Fn(&str) -> EventOut,
) -> EventOut {
    EventOut {
        handle: Some(handle),
        session: Some(session),
        blocks: Some(pairs.into()),
        ..event(kind)
    }
}
