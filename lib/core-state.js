'use strict'

const { REQUEST_TIMEOUT, REQUEST_CANCELLED, z32Encode } = require('./errors')
const { DefaultState } = require('./session-state')
const { CoreView } = require('./core-view')
const { Verifier } = require('./verifier')
const { manifestInput } = require('./manifest')
const { defaultSignerNamespace } = require('./native.js')

// One CoreState per open native core (keyed by handle in the root Corestore). It caches the
// NativeCoreInfo/NativeCoreState, keeps the sessions attached to the core, fans 'append' and
// 'truncate' out to them and resolves gets/seeks that wait for local appends.

class CoreState {
  constructor(root, info, opener = root, globalCache = null) {
    this.root = root
    this._opener = opener // the store whose get() opened the core (ongroupupdate)
    this.globalCache = globalCache || opener.globalCache || null // as hypercore: kept for whoever reads it
    this.native = root.native
    this.handle = info.handle

    this.key = null
    this.discoveryKey = null
    this._id = null // hypercore's core.id, made when first read
    this.manifest = null
    this.keyPair = null
    this._identify(info)
    this.writable = info.writable

    this.length = info.length
    this.contiguousLength = info.contiguousLength
    this.byteLength = info.byteLength
    this.fork = info.fork
    this.signedLength = info.signedLength
    this.group = root.native.coreGroup(info.handle) // the topic of the core's group, or null
    this.remoteContiguousLength = info.remoteContiguousLength || 0
    this._localAt = root._pumped // the engine output taken when the state was last read here
    this._eventAt = 0 // the newest engine output whose event state was applied here
    this._arrived = null // the run of downloaded blocks waiters are looking at (mayHold)
    this._ops = null // settles when the last append or truncation called is done (lib/hypercore.js)

    this.sessions = [] // every attached session (strong, weak and snapshots)
    this.strong = 0 // sessions holding a native reference
    // NONE until something waits or an extension registers: most cores never need them, and
    // an empty Set or Map is a few hundred bytes of every open core
    this.waiters = NONE
    this.peers = []
    this.extensions = NONE // name -> the extension that receives its messages
    this.hadPeers = false // a peer ever had a channel for this core
    this.findingPeers = 0 // sessions' findingPeers() calls not yet done
    this._syncWaiters = null
    this.closed = false
    this.fresh = true // not yet announced to store watchers
    this.pushOnly = false // as hypercore's replicator: never ask peers for anything
    this.allowPush = false // as hypercore's replicator: take blocks peers push unasked
    this.activeCount = 0 // sessions that keep the core downloading (setActive)
    this._pushAllowed = false // what the engine was last told
    this._view = null // the CoreView store.watch() and store.cores hand out

    this._exclusive = null
    this._exclusiveQueue = null
    this._state = null
  }

  // hypercore's `core.header`: the core's identity and its signed head, read when asked
  get header() {
    return {
      key: this.key,
      manifest: this.manifest,
      keyPair: this.keyPair,
      group: this.group === null ? null : { key: this.group },
      tree: this.native.coreHead(this.handle),
      hints: { contiguousLength: this.contiguousLength, remoteContiguousLength: this.remoteContiguousLength || 0, recovering: 0 }
    }
  }

  // hypercore's `core.storage`: the default state's hypercore-storage view
  get storage() {
    return this.state.storage
  }

  // hypercore's `core.sessionStates`: the default state, then the named, atomic and
  // snapshot states open on this core
  get sessionStates() {
    const out = [this.state]
    for (const st of this.root._states.values()) if (st.core === this) out.push(st)
    return out
  }

  // hypercore's `core.verifier`: signs, checks and assembles signatures for this core's
  // manifest (null until the core has one)
  get verifier() {
    const m = this.manifest
    if (m === null) return null
    if (this._verifier === undefined || this._verifier.manifest !== m) this._verifier = new Verifier(this.key, m)
    return this._verifier
  }

  // hypercore's `core.setManifest(manifest)`: a core stored without its manifest takes
  // the one (an object or its encoding) that hashes to its key
  async setManifest(manifest) {
    if (this.manifest !== null) return
    this.native.setManifest(this.handle, manifestInput(manifest))
    this.onmanifest(this.native.coreInfo(this.handle))
  }

  // hypercore's `core.replicator`: the members libraries call on it
  get replicator() {
    if (this._replicator === undefined) this._replicator = new ReplicatorView(this)
    return this._replicator
  }

  // hypercore's copyPrologue: a core whose manifest has a prologue takes the blocks `src`
  // (a core's state) holds below it and their tree, checked against the prologue's hash.
  // A core without a head grows to the prologue (an append); a longer one only gains
  // blocks, which waiting gets may be after
  async copyPrologue(src) {
    const handle = src.handle !== undefined ? src.handle : src.core.handle
    const from = src.core.root // the store the source is in
    let grew
    if (from === this.root) {
      grew = this.native.copyPrologue(this.handle, handle)
    } else {
      // a core of another store: its engine gives the blocks and nodes, ours checks them
      // against the prologue and writes them
      const copy = from.native.exportPrologue(handle, this.native.prologueLength(this.handle))
      grew = copy === null ? false : this.native.importPrologue(this.handle, copy)
    }
    this.root._pumpLocal() // peers hear what the core holds now
    const st = this.native.state(this.handle)
    if (grew) return this.onappend(st)
    this.update(st)
    if (this.waiters.size > 0) this._drain()
  }

  // hypercore's counts of the sessions on this core: strong ones, and all of them
  get activeSessions() {
    return this.strong
  }

  allSessions() {
    return this.sessions.slice()
  }

  // hypercore's `core.bitfield`, for code that asks it which blocks are here
  get bitfield() {
    return { get: (index) => this.native.has(this.handle, index, index + 1) }
  }

  // the default state, as hypercore's `core.state` (made on first use)
  get state() {
    if (this._state === null) this._state = new DefaultState(this)
    return this._state
  }

  // hypercore's core.compat: the key is the single signer's public key (a manifest-less
  // core), which changes how encryption keys are derived
  get compat() {
    const m = this.manifest
    return !!m && !!m.signers && m.signers.length === 1 && !!this.key && this.key.equals(m.signers[0].publicKey)
  }

  view() {
    if (this._view === null) this._view = new CoreView(this)
    return this._view
  }

  // hypercore's core.preupdate, as sessions' `core.core` (this) and watchers' core (the
  // view) both reach it: one hook, kept on the view (CoreView._onpeerupdate runs it)
  get preupdate() {
    return this._view !== null ? this._view.preupdate : null
  }

  set preupdate(fn) {
    this.view().preupdate = fn
  }

  // hypercore's allowPush: peers may push blocks to this core while it has active sessions
  // (hypercore's replicator.isAllowingPush: allowPush and downloading)
  setAllowPush(allowPush) {
    this.allowPush = allowPush
    this._signalPush()
  }

  activity(inc) {
    this.activeCount += inc
    this._signalPush()
  }

  _signalPush() {
    const on = this.allowPush && this.activeCount > 0
    if (on === this._pushAllowed || this.closed) return
    this._pushAllowed = on
    this.root._pump(this.native.replicationAllowPush(this.handle, on))
  }

  push(index) {
    if (this.closed || !this.root._replication.active) return
    this.root._pump(this.native.replicationPush(this.handle, index))
  }

  setPushOnly(pushOnly) {
    if (pushOnly === this.pushOnly) return
    this.pushOnly = pushOnly
    this.root._pump(this.native.replicationPushOnly(this.handle, pushOnly))
  }

  // another openCore returned this handle: pick up what that call may have taught the engine
  refresh(info) {
    this._identify(info)
    this.writable = info.writable
    this.update(info)
  }

  // the keys, key pair and manifest of an openCore/coreInfo result: views of its one buffer
  _identify(info) {
    const ids = info.ids
    this.key = ids.subarray(0, 32)
    this.discoveryKey = ids.subarray(32, 64)
    let at = 64
    this.keyPair = null
    if (info.hasPublicKey) {
      const publicKey = ids.subarray(at, (at += 32))
      const secretKey = info.hasSecretKey ? ids.subarray(at, (at += 64)) : null
      this.keyPair = { publicKey, secretKey }
    }
    const m = info.manifest
    if (m === undefined) {
      this.manifest = null
      return
    }
    const signers = new Array(m.signers)
    for (let i = 0; i < m.signers; i++) {
      signers[i] = {
        signature: 'ed25519',
        namespace: known(ids.subarray(at, (at += 32)), DEFAULT_NAMESPACE),
        publicKey: known(ids.subarray(at, (at += 32)), this.keyPair && this.keyPair.publicKey)
      }
    }
    this.manifest = {
      version: m.version,
      hash: 'blake2b',
      allowPatch: m.allowPatch,
      quorum: m.quorum,
      signers,
      prologue: m.prologue,
      linked: m.linked,
      userData: m.userData
    }
  }

  // hypercore's core.id: the key in z-base-32
  get id() {
    if (this._id === null) this._id = z32Encode(this.key)
    return this._id
  }

  // hypercore's core hook for head changes of a grouped core; corestore points it at the
  // store that opened the core, which emits 'group-active'
  ongroupupdate(topic, update) {
    this._opener._onGroupActive(topic, update)
  }

  // the Map of extensions to add to, made on first use
  ownExtensions() {
    if (this.extensions === NONE) this.extensions = new Map()
    return this.extensions
  }

  update(st) {
    // a state read here, not carried by an engine event: events already taken are older
    if (st !== this.root._eventState) this._localAt = this.root._pumped
    this.length = st.length
    this.contiguousLength = st.contiguousLength
    this.byteLength = st.byteLength
    this.fork = st.fork
    this.signedLength = st.signedLength
    this.remoteContiguousLength = st.remoteContiguousLength || 0
  }

  add(session) {
    session._stateIndex = this.sessions.push(session) - 1
    if (session.weak === false) this.strong++
    this.findingPeers += finding(session)
    if (session._active) this.activity(1)
  }

  remove(session) {
    const i = session._stateIndex
    if (i === -1) return
    const head = this.sessions.pop()
    if (head !== session) this.sessions[(head._stateIndex = i)] = head
    session._stateIndex = -1
    this.foundPeers(finding(session))
    if (session._active) this.activity(-1)
    if (session.weak === false && --this.strong === 0) {
      if (this.root._lingerCore(this)) return true // keeps the session's native reference
      this._gc()
    }
    return false
  }

  // the last strong session left: the engine frees the core, so weak sessions go too
  _gc() {
    if (this.closed) return
    this.closed = true
    if (this.root._cores.get(this.handle) === this) this.root._cores.delete(this.handle)
    if (this._view !== null) this._view._close()
    for (let i = this.sessions.length - 1; i >= 0; i--) {
      const s = this.sessions[i]
      if (s.closing === null) s.close().catch(noop)
    }
  }

  closeAll() {
    const all = []
    for (const s of this.sessions.slice()) all.push(s.close())
    return Promise.all(all)
  }

  onappend(st) {
    this.update(st)
    this.onsync()
    const ss = this.sessions
    for (let i = ss.length - 1; i >= 0; i--) {
      const s = ss[i]
      if (s._snapshot === null && s._state === null) s.emit('append')
    }
    if (this._view !== null) this._view._emit('append')
    if (this.group !== null) this._groupActive()
    if (this.waiters.size > 0) this._drain()
  }

  // as hypercore: every head change of a grouped core is reported to its store's notifiers
  _groupActive() {
    this.ongroupupdate(this.group, { key: this.key, length: this.length, fork: this.fork })
  }

  // `blocks`: (index, byte length, requested at) little-endian doubles, a run of blocks from
  // (to) the peer on stream `session`; the events name that peer, as hypercore's do
  ondownload(st, blocks, session) {
    this.update(st)
    this._emitBlocks('download', blocks, session)
    if (this.waiters.size > 0) {
      this._arrived = blocks
      try {
        this._drain()
      } finally {
        this._arrived = null
      }
    }
  }

  // While waiters look at a run of downloaded blocks: false when block `index` is sure to
  // be still missing if it was before (it is not in the run); any other change may add it.
  mayHold(index) {
    const blocks = this._arrived
    if (blocks === null) return true
    for (let at = 0; at < blocks.byteLength; at += 24) {
      if (blocks.readDoubleLE(at) === index) return true
    }
    return false
  }

  // A block gets wait for, as the engine verified and stored it (before its 'download'):
  // `data` is the block and then its index as a little-endian double, one buffer, so the
  // gets take it instead of reading it back. As hypercore's, a block that fills less than
  // half of its buffer is copied out (unslabbed) and a larger one stays a view; a second
  // get of the same block gets its own copy, as gets decrypt in place.
  onblock(data) {
    if (this.waiters.size === 0) return
    const index = data.readDoubleLE(data.byteLength - 8)
    const block = data.subarray(0, data.byteLength - 8)
    let shared = false
    for (const w of this.waiters) {
      if (w.index !== index) continue
      settle(w, null, shared ? copyOut(block) : maybeUnslab(block))
      shared = true
    }
  }

  // a peer on our fork holds [0, length) in full, more than any peer before it
  onremotecontiguous(st, length) {
    this.update(st)
    const ss = this.sessions
    for (let i = ss.length - 1; i >= 0; i--) ss[i].emit('remote-contiguous-length', length)
  }

  onupload(blocks, session) {
    this._emitBlocks('upload', blocks, session)
  }

  // `blocks`: (index, byte length, requested at) triples; a download names its request's
  // timing as hypercore's request object does (timestamp sent, elapsed until stored)
  _emitBlocks(name, blocks, session) {
    const ss = this.sessions
    // most transfers have no listener: no event objects for a run of thousands of blocks
    let heard = false
    for (let i = 0; i < ss.length && !heard; i++) heard = ss[i].listenerCount(name) > 0
    if (!heard) return
    const peer = this._peer(session)
    const now = Date.now()
    for (let at = 0; at < blocks.byteLength; at += 24) {
      const index = blocks.readDoubleLE(at)
      const bytes = blocks.readDoubleLE(at + 8)
      const sent = blocks.readDoubleLE(at + 16)
      if (name === 'upload') {
        for (let i = ss.length - 1; i >= 0; i--) ss[i].emit(name, index, bytes, peer)
        continue
      }
      const req = sent > 0 ? { index, timestamp: sent, elapsed: Math.max(0, now - sent) } : null
      for (let i = ss.length - 1; i >= 0; i--) ss[i].emit(name, index, bytes, peer, req)
    }
  }

  // the core learned its manifest from a peer
  onmanifest(info) {
    const had = this.manifest !== null
    this.refresh(info)
    if (had || this.manifest === null) return
    const ss = this.sessions
    for (let i = ss.length - 1; i >= 0; i--) ss[i].emit('manifest')
  }

  _peer(session) {
    return this.peers.find((p) => p.session === session) || null
  }

  // hypercore's 'verification-error' (err, req, res, from): data from the peer on `session`
  // did not verify; that peer is paused. The request and response are not kept here (null).
  onverificationerror(err, session) {
    const from = this._peer(session)
    const ss = this.sessions.slice()
    for (let i = 0; i < ss.length; i++) ss[i].emit('verification-error', err, null, null, from)
    if (this._view !== null) this._view._emit('verification-error', err, null, null, from)
  }

  // hypercore's 'conflict' (length, fork, proof): two valid trees of this core exist at
  // `length` (two writers of one key forked). As hypercore, every session hears it and is
  // then closed with that error. The proof is given as { fork, upgrade: { start, length } }
  // (the engine keeps the proof itself).
  onconflict(length, fork) {
    const proof = { fork, upgrade: { start: 0, length } }
    const ss = this.sessions.slice()
    for (let i = ss.length - 1; i >= 0; i--) ss[i].emit('conflict', length, fork, proof)
    if (this._view !== null) this._view._emit('conflict', length, fork, proof)
    const err = new Error('Two conflicting signatures exist for length ' + length)
    for (const s of this.sessions.slice()) {
      if (s.closing === null) s.close({ error: err }).catch(noop)
    }
  }

  onextension(name, data, session) {
    const ext = this.extensions.get(name)
    if (ext !== undefined) ext._onmessage(data, this._peer(session))
  }

  onsync() {
    // a seek proof may have brought what waiting seeks lack
    if (this.waiters.size > 0) this._drain()
    const w = this._syncWaiters
    if (w === null) return
    this._syncWaiters = null
    for (const resolve of w) resolve()
  }

  // findingPeers() calls ended (done, or their session closed): an update() that waited
  // for peers to show up looks again, and gives up when none did
  foundPeers(calls) {
    if (calls === 0) return
    this.findingPeers -= calls
    if (this.findingPeers === 0) this.onsync()
  }

  onpeer(added, session, remotePublicKey, stream) {
    if (added) {
      this.hadPeers = true
      const peer = new Peer(this, session, remotePublicKey, stream)
      this.peers.push(peer)
      for (const s of this.sessions) s.emit('peer-add', peer)
    } else {
      const i = this.peers.findIndex((p) => p.session === session)
      if (i === -1) return
      const [peer] = this.peers.splice(i, 1)
      peer._remove()
      for (const s of this.sessions) s.emit('peer-remove', peer)
    }
    this.onsync()
  }

  // local readers wait for [start, end): the engine asks peers that have them
  // (registered even before any stream exists: a stream that connects later serves them)
  // `force`: asked for even in push-only mode (hypercore's get({ force: true }))
  // read: a get waits for the blocks (they come to it in a 'block' event, see onblock)
  want(start, end, force = false, read = false) {
    this.root._pump(this.native.replicationWant(this.handle, start, end, force, read))
  }

  // a seek lacks tree nodes this sparse replica does not hold: a peer's seek proof brings them
  wantSeek(bytes, padding) {
    if (!this.root._replication.active) return
    this.root._pump(this.native.replicationSeek(this.handle, bytes, padding))
  }

  // 0: no peer knows more; 1: an upgrade is coming; 2: wait for peers to sync
  requestUpdate() {
    const replication = this.root._replication
    if (!replication.active) return 0
    const out = this.native.replicationUpdate(this.handle)
    this.root._pump(out)
    if (out.status === 0 && replication.pending > 0) return 2 // a connection is still opening
    return out.status
  }

  // resolves on the next sync, append or peer change of this core
  nextSync() {
    return new Promise((resolve) => {
      if (this._syncWaiters === null) this._syncWaiters = []
      this._syncWaiters.push(resolve)
    })
  }

  ontruncate(st, to) {
    this.update(st)
    const ss = this.sessions
    for (let i = ss.length - 1; i >= 0; i--) {
      const s = ss[i]
      const snap = s._snapshot
      if (snap !== null) {
        if (to < snap.compat) snap.compat = to
        continue
      }
      if (s._state === null) s.emit('truncate', to, st.fork)
    }
    if (this.waiters.size > 0) {
      for (const w of this.waiters) {
        if (w.ontruncate === null) continue
        const err = w.ontruncate(to)
        if (err) settle(w, err, null)
      }
    }
    if (this._view !== null) this._view._emit('truncate', to, st.fork)
    if (this.group !== null) this._groupActive()
  }

  onclear(start) {
    const ss = this.sessions
    for (let i = ss.length - 1; i >= 0; i--) {
      const snap = ss[i]._snapshot
      if (snap !== null && start < snap.compat) snap.compat = start
    }
  }

  _drain() {
    let refreshed = false
    for (const w of this.waiters) {
      let value
      try {
        value = w.fn()
      } catch (err) {
        settle(w, err, null)
        continue
      }
      if (value === null) continue
      // The engine may be ahead of the events delivered so far (the replication worker
      // stored more since): what a waiter found there shows in the lengths too, and the
      // rest of this output's events, older, do not take them back (update marks them read)
      if (!refreshed && !this.closed) {
        refreshed = true
        this.update(this.native.state(this.handle))
      }
      settle(w, null, value)
    }
  }

  // ontruncate(to): an Error to fail the wait with when the core is truncated to `to`.
  // requests: the activeRequests array the wait is listed in (hypercore's), so that
  // Hypercore.destroyRequests(requests) cancels it as it cancels hypercore's requests.
  // index: the block of the core's default state the wait is for, which onblock may bring
  wait(session, fn, timeout, ontruncate = null, requests = null, index = -1) {
    return new Promise((resolve, reject) => {
      const w = { state: this, session, fn, ontruncate, resolve, reject, timer: null, index }
      if (timeout) w.timer = setTimeout(ontimeout, timeout, w)
      if (this.waiters === NONE) this.waiters = new Set()
      this.waiters.add(w)
      if (session._waiters === null) session._waiters = new Set()
      session._waiters.add(w)
      if (requests !== null) listRequest(w, requests)
    })
  }

  lockExclusive(session) {
    if (this._exclusive === null) {
      this._exclusive = session
      return Promise.resolve()
    }
    if (this._exclusiveQueue === null) this._exclusiveQueue = []
    return new Promise((resolve) => this._exclusiveQueue.push({ session, resolve }))
  }

  unlockExclusive(session) {
    if (this._exclusive !== session) {
      const q = this._exclusiveQueue
      if (q !== null) {
        const i = q.findIndex((e) => e.session === session)
        if (i !== -1) q.splice(i, 1)
      }
      return
    }
    this._exclusive = null
    const q = this._exclusiveQueue
    if (q !== null && q.length > 0) {
      const next = q.shift()
      this._exclusive = next.session
      next.resolve()
    }
  }
}

// hypercore's default in-flight range of a peer's block requests
const DEFAULT_INFLIGHT_RANGE = [16, 512]

class ReplicatorView {
  constructor(core) {
    this.core = core
    this.inflightRange = DEFAULT_INFLIGHT_RANGE
    this.findingPeers = 0 // sessions of the hypercore package count here
    this._stats = undefined
  }

  get peers() {
    return this.core.peers
  }

  // hypercore's replicator.stats: the messages of every channel this core had, by kind
  get stats() {
    if (this._stats === undefined) {
      const core = this.core
      let last = null // a closed core keeps its last counts
      this._stats = liveStats(() => {
        if (!core.closed) last = core.native.replicationStats(core.handle, null)
        return last
      })
    }
    return this._stats
  }

  get pushOnly() {
    return this.core.pushOnly
  }

  // as hypercore: a push-only core answers peers and never asks them for anything
  setPushOnly(pushOnly) {
    this.core.setPushOnly(!!pushOnly)
  }

  // hypercore's replicator.downloading: the core has active sessions (setActive)
  get downloading() {
    return this.core.activeCount > 0
  }

  isDownloading() {
    return this.downloading
  }

  get allowPush() {
    return this.core.allowPush
  }

  // as hypercore: peers may push blocks to this core (told in syncs while it downloads)
  setAllowPush(allowPush) {
    this.core.setAllowPush(!!allowPush)
  }

  // as hypercore: block `index` goes unasked to every peer that allows push and lacks it
  async push(index) {
    this.core.push(index)
  }

  // what sessions attached through a CoreView (the hypercore package) call on it: +1 / -1
  // for an active session opening / closing (0 for the others)
  updateActivity(inc) {
    if (inc) this.core.activity(inc)
  }

  clearRequests() {}

  // hypercore's block requests: `_blocks.has(index)` tells whether block `index` is asked
  // for (a get or a download wants it, or a peer is asked for it). hypercore counts a
  // download's block only once a peer is asked for it; Autobase's tests read it to see that
  // blocks an apply needs were asked for before it runs.
  get _blocks() {
    const core = this.core
    return {
      has: (index) => !core.closed && Number.isInteger(index) && index >= 0 && core.native.replicationBlockRequested(core.handle, index)
    }
  }

  // requests each channel of this core keeps in flight, at least `min`, at most `max`;
  // also takes the [min, max] pair that `inflightRange` gives back (mirror-drive restores it so)
  setInflightRange(min, max) {
    if (Array.isArray(min)) [min, max] = min
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < 0) return
    this.inflightRange = [min, max]
    this.core.native.replicationSetInflightRange(this.core.handle, min, max)
  }
}

// A replication peer of a core, with hypercore's public Peer members: what the peer told
// us comes from the engine when read (the last values once the peer is removed).
class Peer {
  constructor(state, session, remotePublicKey, stream) {
    this.session = session
    this.remotePublicKey = remotePublicKey
    this.stream = stream || null
    this.paused = false
    this.removed = false
    this._state = state
    this._last = null
    this._stats = undefined
    this._lastStats = null
  }

  _info() {
    if (this.removed || this._state.closed) return this._last || NO_INFO
    const info = this._state.native.replicationPeer(this._state.handle, this.session)
    if (info !== null) this._last = info
    return info || this._last || NO_INFO
  }

  _remove() {
    this._info()
    if (this._stats !== undefined) this._readStats()
    this.removed = true
  }

  // hypercore's peer.stats: the messages of this peer's channel for the core, by kind
  get stats() {
    if (this._stats === undefined) this._stats = liveStats(() => this._readStats())
    return this._stats
  }

  _readStats() {
    if (this.removed || this._state.closed) return this._lastStats
    const flat = this._state.native.replicationStats(this._state.handle, this.session)
    if (flat !== null) this._lastStats = flat
    return this._lastStats
  }

  // hypercore's peer.protomux: the Protomux of the peer's stream (a Hyperswarm
  // connection's, or a raw stream's EngineMux: lib/engine-mux.js)
  get protomux() {
    return (this.stream && this.stream.userData) || null
  }

  get remoteLength() {
    return this._info().remoteLength
  }

  // the [min, max] block requests kept in flight with this peer: the core's (hypercore
  // peers take their replicator's)
  get inflightRange() {
    return this._state.replicator.inflightRange
  }

  get remoteFork() {
    return this._info().remoteFork
  }

  get remoteContiguousLength() {
    return this._info().remoteContiguousLength
  }

  get remoteCanUpgrade() {
    return this._info().remoteCanUpgrade
  }

  get remoteAllowPush() {
    return this._info().remoteAllowPush
  }

  // our requests to this peer it has not answered yet (0 once the peer is removed)
  get inflight() {
    return this.removed ? 0 : this._info().inflight
  }
}

// hypercore's stats keys for the message kinds, with their wire type (the index of its
// count in the engine's flat stats: sent at type, received at 10 + type)
const WIRE_STATS = [
  ['wireSync', 0],
  ['wireRequest', 1],
  ['wireCancel', 2],
  ['wireData', 3],
  ['wireWant', 5],
  ['wireUnwant', 6],
  ['wireBitfield', 7],
  ['wireRange', 8],
  ['wireExtension', 9]
]

// the empty stand-in for CoreState.waiters and .extensions (and a session's extensions)
// until one is needed: every reader only reads, deletes or iterates it
const NONE = new Map()

// hypercore's caps.DEFAULT_NAMESPACE: as in hypercore, the manifests of cores made here
// share it, and a signer's key that is the key pair's is the same buffer
const DEFAULT_NAMESPACE = defaultSignerNamespace()

function known(bytes, same) {
  return same && same.equals(bytes) ? same : bytes
}

const COUNTER_STATS = ['hotswaps', 'invalidData', 'invalidRequests', 'backoffs', 'notAvailableBackoffs']

// An object shaped as hypercore's stats whose every number is read from the engine when
// it is read (`read()` gives the flat counts, or null for none yet): holders of it see
// the counts grow, as with hypercore's.
function liveStats(read) {
  const at = (i) => {
    const flat = read()
    return flat === null ? 0 : flat[i]
  }
  const stats = {}
  for (const [name, type] of WIRE_STATS) {
    stats[name] = Object.defineProperties(
      {},
      {
        tx: { enumerable: true, get: () => at(type) },
        rx: { enumerable: true, get: () => at(10 + type) }
      }
    )
  }
  COUNTER_STATS.forEach((name, i) => {
    Object.defineProperty(stats, name, { enumerable: true, get: () => at(20 + i) })
  })
  return stats
}

const NO_INFO = {
  remoteLength: 0,
  remoteFork: 0,
  remoteContiguousLength: 0,
  remoteCanUpgrade: false,
  remoteAllowPush: false,
  inflight: 0
}

// hypercore's request refs: an entry of an activeRequests array is { context, session,
// sindex } and `ref.context.detach(ref, err)` takes it out and fails it, which is all
// Hypercore.destroyRequests (hypercore's static, used by Hyperbee and HyperDB) calls.
const REQUEST_CONTEXT = {
  replicator: { queueUpdateAll: noop }, // our engine re-plans its requests as waits settle
  detach(w, err) {
    if (w.context !== REQUEST_CONTEXT) return false
    settle(w, err || REQUEST_CANCELLED(), null)
    return true
  }
}

function listRequest(w, requests) {
  w.context = REQUEST_CONTEXT
  w.requests = requests
  w.sindex = requests.push(w) - 1
}

function unlistRequest(w) {
  const list = w.requests
  w.requests = null
  w.context = null
  const last = list.pop()
  if (last !== w) list[(last.sindex = w.sindex)] = last
}

// hypercore marks a destroyed activeRequests array by a leading null
function isRequestsDestroyed(requests) {
  return requests.length > 0 && requests[0] === null
}

function settle(w, err, value) {
  if (w.requests) unlistRequest(w)
  w.session._waiters.delete(w)
  w.state.waiters.delete(w)
  if (w.timer !== null) clearTimeout(w.timer)
  if (err) w.reject(err)
  else w.resolve(value)
}

function ontimeout(w) {
  w.timer = null
  settle(w, REQUEST_TIMEOUT(), null)
}

function noop() {}

function maybeUnslab(block) {
  return 2 * block.byteLength < block.buffer.byteLength ? copyOut(block) : block
}

// a copy with an ArrayBuffer of its own (not a slice of Buffer's pool)
function copyOut(block) {
  const out = Buffer.allocUnsafeSlow(block.byteLength)
  block.copy(out)
  return out
}

CoreState.settle = settle
CoreState.isRequestsDestroyed = isRequestsDestroyed

// What a session adds to its core's findingPeers: its own calls, and one while its store's
// findingPeers() is outstanding.
function finding(session) {
  return session._findingPeers + (session.store._findingCount > 0 ? 1 : 0)
}

module.exports = CoreState
module.exports.NONE = NONE
