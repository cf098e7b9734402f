//! A store's replication worker: one Rust thread that verifies, answers and stores what
//! peers send, so the JS thread only moves bytes (docs/DECISIONS.md §23).
//!
//! JS hands each received chunk over (`Job`) and returns at once. The worker takes the
//! engine lock per job, runs the replicator on it, records the bytes it consumed, and wakes
//! JS through a threadsafe function when something waits there. JS then takes the output
//! from `Pending` (engine.rs) without the engine lock, in the order the engine made it
//! (docs/DECISIONS.md §29). While jobs are outstanding the
//! threadsafe function is referenced, so a process whose only pending work is replication
//! stays alive, as it would with JS streams; when none are, it is not.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};

use super::engine::{take_pending, Engine, Pending};
use super::ReplicationOut;
use crate::replication::pacing;

/// A call into JS with no arguments, created unreferenced (it does not keep the process
/// alive by itself).
pub(crate) type Wakeup = ThreadsafeFunction<(), (), (), Status, false, true, 0>;

pub(crate) enum Job {
    /// raw transport bytes of a stream whose Noise and Protomux run in the engine
    Recv { session: u32, data: Vec<u8> },
    /// channel events of a stream whose Protomux runs in JS, packed (checked by the JS
    /// thread, decoded by the worker: src/wire/channel_events.rs)
    Events {
        session: u32,
        meta: Vec<u8>,
        data: Vec<u8>,
    },
    /// the stream ended: what it handed over before is processed first (as it would have
    /// been in its own write, without a worker), then its session closes
    Close { session: u32 },
    /// what a call on the JS thread left in the streams' backlogs
    Resume,
}

/// What the JS thread and the worker share.
pub(crate) struct Shared {
    engine: Mutex<Engine>,
    /// what the engine made for JS, taken without the engine lock
    pending: Arc<Mutex<Pending>>,
    /// JS has been woken and has not polled since
    woken: AtomicBool,
    /// jobs handed over and not yet processed
    outstanding: AtomicUsize,
    /// the JS thread waits for the engine: the worker lets it go first
    js_waiting: AtomicUsize,
    /// the store closed: the worker waits for JS no more
    closed: AtomicBool,
}

impl Shared {
    pub fn new(store: crate::store::Store) -> Arc<Self> {
        let pending = Arc::new(Mutex::new(Pending::default()));
        Arc::new(Shared {
            engine: Mutex::new(Engine::new(store, Arc::clone(&pending))),
            pending,
            woken: AtomicBool::new(false),
            outstanding: AtomicUsize::new(0),
            js_waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        })
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Until what the worker made and JS has not taken is small again (or the store
    /// closed), so what JS handles per turn stays small and memory stays bounded. Below
    /// that the worker goes on with its next job without waiting for JS: a store whose
    /// JS thread is busy with another store's work still answers its peers (waiting for
    /// JS after every job made two stores' peers take turns, docs/DECISIONS.md §36).
    fn wait_for_room(&self) {
        while self.woken.load(Ordering::SeqCst)
            && !self.closed.load(Ordering::SeqCst)
            && super::engine::pending_full(&self.pending)
        {
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }

    /// No job handed over is still being processed.
    pub fn idle(&self) -> bool {
        self.outstanding.load(Ordering::SeqCst) == 0
    }

    /// The engine, for a call from JS. A panic cannot leave it half-changed in a way a
    /// later call trips on more than the panic did, so a poisoned lock is still taken.
    pub fn lock(&self) -> EngineGuard<'_> {
        self.js_waiting.fetch_add(1, Ordering::SeqCst);
        let engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        self.js_waiting.fetch_sub(1, Ordering::SeqCst);
        EngineGuard(engine)
    }

    /// What the engine made for JS since it last took it, without waiting for the engine.
    pub fn take_output(&self) -> ReplicationOut {
        take_pending(&self.pending)
    }

    /// The worker made output JS has not taken.
    pub fn has_output(&self) -> bool {
        !super::engine::pending_empty(&self.pending)
    }

    /// The engine, for the worker's next job: after any JS call waiting for it, so the
    /// event loop never waits more than one job.
    fn lock_for_worker(&self) -> EngineGuard<'_> {
        while self.js_waiting.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
        EngineGuard(self.engine.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The engine, held: what it made moves to `Pending` before the lock is released.
pub(crate) struct EngineGuard<'a>(MutexGuard<'a, Engine>);

impl Deref for EngineGuard<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.0
    }
}

impl DerefMut for EngineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.0
    }
}

impl Drop for EngineGuard<'_> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// The JS thread's end of a worker.
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
    thread: std::thread::Thread,
    wakeup: Arc<Wakeup>,
    referenced: bool,
}

impl Worker {
    pub fn start(shared: &Arc<Shared>, wakeup: Arc<Wakeup>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let shared = Arc::clone(shared);
        let wake = Arc::clone(&wakeup);
        let handle = std::thread::Builder::new()
            .name("corestore-replication".into())
            .spawn(move || {
                pacing::yield_every(YIELD_EVERY);
                run(&shared, &queue, &wake)
            })?;
        Ok(Worker {
            jobs,
            thread: handle.thread().clone(),
            wakeup,
            referenced: false,
        })
    }

    /// Hands a job to the worker; back when the worker is gone (its thread ended).
    pub fn submit(&mut self, env: &Env, shared: &Shared, job: Job) -> Result<(), Job> {
        shared.outstanding.fetch_add(1, Ordering::SeqCst);
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            shared.outstanding.fetch_sub(1, Ordering::SeqCst);
            return Err(job);
        }
        self.reference(env, true);
        Ok(())
    }

    /// Called on the JS thread before it takes the output: the next job done wakes JS
    /// again, and with nothing outstanding the process may exit.
    pub fn polled(&mut self, env: &Env, shared: &Shared) {
        shared.woken.store(false, Ordering::SeqCst);
        self.thread.unpark();
        if shared.outstanding.load(Ordering::SeqCst) == 0 {
            self.reference(env, false);
        }
    }

    fn reference(&mut self, env: &Env, on: bool) {
        if self.referenced == on {
            return;
        }
        let raw = self.wakeup.raw();
        // SAFETY: called on the JS thread of `env`, on a threadsafe function this worker
        // keeps alive (it is released only when the last Arc of it drops)
        let status = unsafe {
            if on {
                napi::sys::napi_ref_threadsafe_function(env.raw(), raw)
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), raw)
            }
        };
        if status == napi::sys::Status::napi_ok {
            self.referenced = on;
        }
    }
}

/// How long the worker holds the engine at a time. A JS call waits at most about this
/// long, and what the worker made by then goes out while it continues. (Handing output
/// over every 0.5 ms within a hold, for the other end of a transfer to start on sooner,
/// made a transfer slower: 1.7 s against 1.1 s for 50 MB.)
const SLICE: Duration = Duration::from_millis(2);

/// How often the worker lets a thread waiting for its CPU run while it works. The JS
/// thread woken for the worker's output waited up to a scheduler tick (4 ms) behind it;
/// yielding every 100 µs took the secret-stream pair's event-loop p99 from 9.4 to 4.1 ms,
/// as did 50 and 25 µs (docs/DECISIONS.md §73).
const YIELD_EVERY: Duration = Duration::from_micros(100);

/// How long output of finished jobs may wait for the next job's before JS is woken for it,
/// while jobs are queued. A worker that woke JS after every job woke it ~3,600 times a
/// second per store in a pipe transfer (docs/DECISIONS.md §57).
const WAKE_GAP: Duration = Duration::from_micros(500);

fn run(shared: &Shared, queue: &mpsc::Receiver<Job>, wakeup: &Wakeup) {
    let wake = || {
        if !shared.woken.swap(true, Ordering::SeqCst) {
            wakeup.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    };
    let mut woke_at = Instant::now();
    while let Ok(job) = queue.recv() {
        if let Job::Close { session } = job {
            close(shared, session, &wake);
            shared.outstanding.fetch_sub(1, Ordering::SeqCst);
            wake();
            continue;
        }
        shared.wait_for_room();
        let mut left = hold(&mut shared.lock_for_worker(), Some(job));
        // the rest of the job, a slice at a time, JS calls in between
        while left {
            wake();
            shared.wait_for_room();
            left = hold(&mut shared.lock_for_worker(), None);
        }
        shared.outstanding.fetch_sub(1, Ordering::SeqCst);
        // with more jobs queued, their output goes with this one's unless JS last heard
        // from us a while ago: fewer turns of the JS thread for the same bytes
        if shared.idle() || woke_at.elapsed() >= WAKE_GAP {
            wake();
            woke_at = Instant::now();
        }
    }
}

/// One hold of the engine: the job, or what waits in the streams' backlogs, until the
/// slice ends. True while input is left.
fn hold(engine: &mut Engine, job: Option<Job>) -> bool {
    let deadline = Instant::now() + SLICE;
    let Some(store) = engine.store.as_mut() else {
        return false;
    };
    match job {
        Some(Job::Recv { session, data }) => {
            engine
                .replicator
                .recv_until(store, session, &data, Some(deadline));
            engine.consumed(session, data.len() as u64);
        }
        Some(Job::Events {
            session,
            meta,
            data,
        }) => {
            // checked when handed over: nothing here fails
            let events = crate::wire::channel_events::decode(&meta, &data).unwrap_or_default();
            engine
                .replicator
                .external_until(store, session, events, Some(deadline));
            engine.consumed(session, data.len() as u64);
        }
        Some(Job::Close { .. }) => {} // run() closes sessions
        Some(Job::Resume) | None => return engine.replicator.resume(store, deadline),
    }
    engine.replicator.has_backlog()
}

/// Closes a session once the backlog it left is processed, a slice at a time.
fn close(shared: &Shared, session: u32, wake: &dyn Fn()) {
    loop {
        shared.wait_for_room();
        let mut engine = shared.lock_for_worker();
        let e = &mut *engine;
        let Some(store) = e.store.as_mut() else {
            return;
        };
        if !e.replicator.session_has_backlog(session) {
            e.replicator.close(store, session, None);
            return;
        }
        e.replicator.resume(store, Instant::now() + SLICE);
        drop(engine);
        wake();
    }
}
