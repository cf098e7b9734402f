'use strict'

// What corestore hands to store.watch(fn) and lists in store.cores: the shared core behind
// the sessions (corestore's internal Core), here a view on one open CoreState. It carries
// what users read of a core (key, discoveryKey, id, manifest, length, byteLength, fork,
// sessions, header, replicator) and the part of hypercore's Core contract that a
// `new Hypercore({ core, weak: true })` session attaches through (state.addSession,
// addMonitor/removeMonitor, hasSession, ...), for Corestore.Hypercore and for the JS
// hypercore package alike. Sessions attached that way see the core's identity, lengths,
// 'append'/'truncate' events, and close when the core does; reading blocks needs
// Corestore.Hypercore (the JS package's reads go through hypercore-storage).

class CoreView {
  constructor(cs) {
    this._cs = cs
    this.monitors = []
    this.autoClose = false
    this.opened = true
    this.opening = Promise.resolve()
    this.destroyed = false
    this._closing = null
    this.replicator = cs.replicator
    this.state = new StateView(this)
    // hypercore's hook for data from peers (Autobase's wakeup sets it): see _onpeerupdate
    this.preupdate = null
  }

  // A peer's data grew the core to `st`. hypercore awaits preupdate(batch, key) before it
  // stores what it verified; the engine verifies and stores in one call, so the hook runs
  // right after, with the new head as the batch (Autobase reads its length).
  _onpeerupdate(st) {
    if (this.preupdate === null) return
    const batch = { length: st.length, byteLength: st.byteLength, fork: st.fork, upgraded: true }
    try {
      const p = this.preupdate(batch, this._cs.key)
      if (p && typeof p.then === 'function') p.catch(noop)
    } catch {}
  }

  get key() {
    return this._cs.key
  }

  get discoveryKey() {
    return this._cs.discoveryKey
  }

  get id() {
    return this._cs.id
  }

  get manifest() {
    return this._cs.manifest
  }

  get compat() {
    return this._cs.compat
  }

  get globalCache() {
    return this._cs.globalCache
  }

  get length() {
    return this._cs.length
  }

  get byteLength() {
    return this._cs.byteLength
  }

  get fork() {
    return this._cs.fork
  }

  get closing() {
    return this._closing
  }

  get closed() {
    return this._cs.closed
  }

  // every session on the core: the store's and those attached through this view
  get sessions() {
    return this.allSessions()
  }

  allSessions() {
    return this._cs.sessions.concat(this.state.sessions)
  }

  get header() {
    return this._cs.header
  }

  // hypercore's core.storage: the default state's hypercore-storage view
  get storage() {
    return this._cs.storage
  }

  get sessionStates() {
    return this._cs.sessionStates
  }

  ready() {
    return this.opening
  }

  hasSession() {
    return this._cs.strong + this.state.strong > 0
  }

  addMonitor(s) {
    if (s._monitorIndex >= 0) return
    s._monitorIndex = this.monitors.push(s) - 1
  }

  removeMonitor(s) {
    if (s._monitorIndex < 0) return
    const last = this.monitors.pop()
    if (last !== s) this.monitors[(last._monitorIndex = s._monitorIndex)] = last
    s._monitorIndex = -1
  }

  checkIfIdle() {}

  lockExclusive() {
    return this._cs.lockExclusive(this)
  }

  unlockExclusive() {
    this._cs.unlockExclusive(this)
  }

  async setGroup(topic) {
    const cs = this._cs
    cs.native.setGroup(cs.handle, Buffer.from(topic))
    if (cs.group === null) cs.group = Buffer.from(topic)
  }

  // hypercore's core.audit(): checks the stored blocks and tree of the core
  async audit(opts = {}) {
    const cs = this._cs
    return cs.native.audit(cs.handle, !!opts.dryRun)
  }

  _emit(name, ...args) {
    const ss = this.state.sessions
    for (let i = ss.length - 1; i >= 0; i--) ss[i].emit(name, ...args)
  }

  // the CoreState closed (its last strong session did): close what attached through us
  _close() {
    if (this._closing !== null) return this._closing
    this.destroyed = true
    const all = []
    for (const s of this.state.sessions.slice()) all.push(s.close().catch(noop))
    this._closing = Promise.all(all).then(noop)
    return this._closing
  }
}

// hypercore's default SessionState, as much as a session attached through a view uses
class StateView {
  constructor(core) {
    this.core = core
    this.sessions = []
    this.strong = 0
    this.active = 0
    this.storage = core._cs.storage // the default state's (reads work through it)
  }

  get length() {
    return this.core.length
  }

  get byteLength() {
    return this.core.byteLength
  }

  get fork() {
    return this.core.fork
  }

  get encryptionFork() {
    return this.core.fork
  }

  signedLength() {
    return this.core._cs.signedLength
  }

  isDefault() {
    return true
  }

  isSnapshot() {
    return false
  }

  ref() {
    this.active++
    return this
  }

  unref() {
    if (this.active > 0) this.active--
  }

  addSession(s) {
    s._stateIndex = this.sessions.push(s) - 1
    if (s.weak === false) this.strong++
  }

  removeSession(s) {
    if (s._stateIndex === -1) return
    const last = this.sessions.pop()
    if (last !== s) this.sessions[(last._stateIndex = s._stateIndex)] = last
    s._stateIndex = -1
    if (s.weak === false) this.strong--
  }
}

// store.cores: the open cores by discovery key (hex), as corestore's core tracker
class CoreList {
  constructor(root) {
    this._root = root
  }

  get map() {
    const map = new Map()
    const cores = this._root._cores
    if (cores === null) return map
    for (const cs of cores.values()) {
      if (!cs.closed) map.set(cs.discoveryKey.toString('hex'), cs.view())
    }
    return map
  }

  get size() {
    return this.map.size
  }

  get(id) {
    if (id instanceof Uint8Array) id = Buffer.from(id).toString('hex')
    return this.map.get(id) || null
  }

  *[Symbol.iterator]() {
    yield* this.map.values()
  }
}

// store.sessions: this store's sessions by core, as corestore's session tracker
class SessionList {
  constructor(store) {
    this._store = store
  }

  get size() {
    return this._store._lists.size
  }

  list(id) {
    if (!id) return [...this]
    for (const [cs, list] of this._store._lists) if (cs.id === id) return list
    return []
  }

  *[Symbol.iterator]() {
    for (const list of this._store._lists.values()) yield* list
  }
}

function noop() {}

module.exports = { CoreView, CoreList, SessionList }
