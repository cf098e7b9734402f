//! The engine state a `NativeStore` shares with its replication worker (worker.rs): the
//! store and the replicator, behind one mutex that the JS thread takes for every call and
//! the worker for each slice of peer input it processes.
//!
//! What the engine makes for JS (bytes for the streams, events for the cores, input the
//! worker consumed) moves, before the engine lock is released, into `Pending`, which has a
//! mutex of its own: JS takes it there without waiting for a worker's slice to end. It
//! queues in the order the engine made it, whichever thread made it (secretstream bytes
//! must reach the wire in the order they were encrypted). The cores its events name carry
//! their state as of the last release of the engine lock, so routing the events needs no
//! engine call either (docs/DECISIONS.md §29).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{replication_out, store_closed, ReplicationOut, Result};
use crate::core::hypercore::CoreState;
use crate::error::Error as EngineError;
use crate::replication::{Event, Output, Replicator};
use crate::store::Store;

/// Output made and not yet taken by JS.
#[derive(Default)]
pub(crate) struct Pending {
    out: Output,
    /// bytes of peer input the worker processed per session
    consumed: HashMap<u32, u64>,
    /// the state of each core an event in `out` names
    states: HashMap<u32, CoreState>,
    /// about how many bytes `out` holds (see `Pending::full`)
    size: usize,
}

/// What the worker may make ahead of JS: past it, it waits for JS to take its output.
/// Enough for the answers to many small messages (a handshake, requests, acks) so a store
/// whose JS thread is busy elsewhere still answers its peers at once; little enough that
/// one poll is quick for JS and a fast sender cannot grow it without bound.
const PENDING_AHEAD: usize = 256 * 1024;

/// What one event or command costs JS about as much as, in bytes of sends.
const ITEM_SIZE: usize = 64;

impl Pending {
    pub fn full(&self) -> bool {
        self.size >= PENDING_AHEAD
    }
}

pub(crate) struct Engine {
    pub store: Option<Store>,
    pub replicator: Replicator,
    pending: Arc<Mutex<Pending>>,
}

impl Engine {
    pub fn new(store: Store, pending: Arc<Mutex<Pending>>) -> Self {
        Engine {
            store: Some(store),
            replicator: Replicator::default(),
            pending,
        }
    }

    pub fn store(&self) -> Result<&Store> {
        self.store.as_ref().ok_or_else(store_closed)
    }

    pub fn store_mut(&mut self) -> Result<&mut Store> {
        self.store.as_mut().ok_or_else(store_closed)
    }

    /// Runs one replicator call on the open store and hands back everything output so far.
    pub fn replicate_with(
        &mut self,
        f: impl FnOnce(&mut Replicator, &mut Store),
    ) -> Result<ReplicationOut> {
        let store = self.store.as_mut().ok_or_else(store_closed)?;
        f(&mut self.replicator, store);
        Ok(self.take_output())
    }

    /// Appends to a core's default state and tells the streams: `appendAsync` calls this
    /// on the thread pool and `append` on the JS thread.
    pub fn append(
        &mut self,
        handle: u32,
        blocks: &[&[u8]],
    ) -> std::result::Result<CoreState, EngineError> {
        let store = self.store.as_mut().ok_or_else(closed)?;
        let (core, storage) = store.core_mut(handle)?;
        let state = core.append(storage, blocks)?;
        if self.replicator.is_active() {
            self.replicator.on_local_change(store, handle);
        }
        Ok(state)
    }

    /// The worker processed `bytes` of a session's input.
    pub fn consumed(&mut self, session: u32, bytes: u64) {
        *lock(&self.pending).consumed.entry(session).or_insert(0) += bytes;
    }

    /// Moves the replicator's output to `Pending` and brings the states there up to date:
    /// called whenever the engine lock is about to be released, so whatever JS takes from
    /// `Pending` is never older than what an engine call has shown it.
    pub fn flush(&mut self) {
        let mut out = self.replicator.take_output();
        let mut pending = lock(&self.pending);
        if out.sends.is_empty()
            && out.commands.is_empty()
            && out.events.is_empty()
            && pending.states.is_empty()
        {
            return;
        }
        let p = &mut *pending;
        p.size += out.sends.iter().map(|(_, data)| data.len()).sum::<usize>()
            + (out.events.len() + out.commands.len()) * ITEM_SIZE;
        for e in &out.events {
            if let Some(handle) = state_of(e) {
                p.states.entry(handle).or_default();
            }
        }
        p.out.sends.extend(out.sends);
        p.out.commands.extend(&mut out.commands);
        p.out.events.extend(out.events);
        match self.store.as_ref() {
            Some(store) => p.states.retain(|&handle, state| match store.state(handle) {
                Ok(now) => {
                    *state = now;
                    true
                }
                Err(_) => false, // closed: JS asks, and hears why
            }),
            None => p.states.clear(),
        }
    }

    /// Everything queued for JS, this call's output included.
    pub fn take_output(&mut self) -> ReplicationOut {
        self.flush();
        take_pending(&self.pending)
    }
}

/// The error of every call on a store that closed.
pub(crate) fn closed() -> EngineError {
    EngineError::new("SESSION_CLOSED", "The corestore is closed")
}

/// Everything queued for JS, without the engine lock.
pub(crate) fn take_pending(pending: &Mutex<Pending>) -> ReplicationOut {
    let Pending {
        out,
        consumed,
        states,
        ..
    } = std::mem::take(&mut *lock(pending));
    let mut out = replication_out(out, &states);
    out.consumed = consumed
        .into_iter()
        .map(|(session, bytes)| super::ConsumedOut {
            session,
            bytes: bytes as f64,
        })
        .collect();
    out
}

/// The core whose state JS updates with this event.
fn state_of(e: &Event) -> Option<u32> {
    match e {
        Event::Append { handle }
        | Event::Truncate { handle, .. }
        | Event::Download { handle, .. }
        | Event::RemoteContiguousLength { handle, .. } => Some(*handle),
        _ => None,
    }
}

/// A panic while `Pending` was held cannot leave it half-moved in a way worse than the
/// panic itself, so a poisoned lock is still taken.
fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the worker made anything JS has not taken yet.
pub(crate) fn pending_empty(pending: &Mutex<Pending>) -> bool {
    let p = lock(pending);
    p.out.sends.is_empty()
        && p.out.commands.is_empty()
        && p.out.events.is_empty()
        && p.consumed.is_empty()
}

/// JS has yet to take more than the worker may make ahead of it.
pub(crate) fn pending_full(pending: &Mutex<Pending>) -> bool {
    lock(pending).full()
}
