'use strict'

const { Readable } = require('streamx')
const { TreeBatch, readRoots } = require('./verifier')
const { AssertionError, INVALID_OPERATION } = require('./errors')
const { StateMutex } = require('./lock')

// hypercore 11's session states as the facade sees them. A session reads and writes its
// core's default state unless it was made with `{ name }` (a named session: data of its
// own on disk, depending on the default data) or `{ atom }` (its writes wait in the atom
// until `atom.flush()` writes them as one batch). The engine holds the states
// (src/core/session_state.rs); these objects cache what it reports and fan events out to
// the sessions of one state.

// `state.storage` of hypercore: where atoms come from
class StateStorage {
  constructor(root, atom, handle, snapshotted = false, owned = false) {
    this.root = root
    this.atom = atom || null
    this.handle = handle // the engine handle of the state (a core handle for the default)
    this._snapshotted = snapshotted
    this._owned = owned // a state made by createSession, which close() lets go of
  }

  // hypercore-storage's createSession(name, head): the named session `name` of this core
  // made anew from this data at `head.length` blocks (null: all of them), its own blocks
  // and tree dropped, in one batch. The storage of that session holds an engine state
  // until close() or the store closes.
  async createSession(name, head = null) {
    const length = head === null || head === undefined ? undefined : head.length
    const handle = this.root.native.stateCreate(this.handle, name, true, undefined, length)
    return new StateStorage(this.root, null, handle, false, true)
  }

  async close() {
    if (!this._owned) return
    this._owned = false
    const root = this.root
    if (root.native !== null && !root._nativeClosed) root.native.stateClose(this.handle)
  }

  // hypercore-storage's pointers: { corePointer, dataPointer, dependencies }
  get core() {
    return this.root.native.storageInfo(this.handle)
  }

  get dependencies() {
    return this.core.dependencies
  }

  // hypercore-storage's `db`, for its idle(): what peers sent so far is processed
  get db() {
    const root = this.root
    return { path: root.storage.db.path, idle: () => root._whenIdle() }
  }

  // hypercore-storage's write transaction: local records and user data of this state,
  // one batch on flush() (into the atom when the state has one)
  write() {
    return new StorageTx(this)
  }

  read() {
    return new StorageRx(this)
  }

  createLocalStream({ gte = EMPTY, lt = null, reverse = false } = {}) {
    const entries = this.root.native.storageLocalRange(this.handle, toBuffer(gte), lt ? toBuffer(lt) : undefined)
    if (reverse) entries.reverse()
    return Readable.from(entries, { objectMode: true })
  }

  // hypercore-storage's block stream: { index, value } of the blocks this state holds
  createBlockStream({ gt = -1, gte = gt + 1, lte = -1, lt = lte === -1 ? -1 : lte + 1, reverse = false } = {}) {
    const blocks = this.root.native.storageBlocks(this.handle, gte, lt)
    if (reverse) blocks.reverse()
    return Readable.from(blocks, { objectMode: true })
  }

  // hypercore-storage's mark stream: { index, page } of the mark-and-sweep pages
  createMarkStream({ reverse = false } = {}) {
    const pages = this.root.native.storageMarks(this.handle).map((p) => ({ index: p.index, page: p.value }))
    if (reverse) pages.reverse()
    return Readable.from(pages, { objectMode: true })
  }

  async deleteSessions() {
    this.root.native.storageDeleteSessions(this.handle)
  }

  get snapshotted() {
    return this._snapshotted
  }

  createAtom() {
    return new Atom(this.root)
  }
}

const EMPTY = Buffer.alloc(0)

function toBuffer(b) {
  if (typeof b === 'string') return Buffer.from(b)
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

class StorageTx {
  constructor(storage) {
    this.storage = storage
    this.ops = []
  }

  // as hypercore-storage, a null value deletes (Autobase moves a boot record that may be
  // missing with putUserData(key, null))
  putLocal(key, value) {
    if (value === null || value === undefined) return this.deleteLocal(key)
    this.ops.push({ op: 'putLocal', key: toBuffer(key), value: toBuffer(value) })
  }

  deleteLocal(key) {
    this.ops.push({ op: 'deleteLocal', key: toBuffer(key) })
  }

  deleteLocalRange(start, end) {
    this.ops.push({ op: 'deleteLocalRange', key: toBuffer(start), end: end === null || end === undefined ? undefined : toBuffer(end) })
  }

  putUserData(key, value) {
    if (value === null || value === undefined) return this.deleteUserData(key)
    this.ops.push({ op: 'putUserData', key: Buffer.from(key), value: toBuffer(value) })
  }

  deleteUserData(key) {
    this.ops.push({ op: 'deleteUserData', key: Buffer.from(key) })
  }

  // the data below `length` is read from `dataPointer`'s: the record only, as in
  // hypercore-storage (open states keep the dependencies they read)
  setDependency({ dataPointer, length }) {
    this.ops.push({ op: 'setDependency', dataPointer, length })
  }

  // as hypercore-storage: true when written to RocksDB, false when it went into the atom
  async flush() {
    const ops = this.ops
    this.ops = []
    const s = this.storage
    s.root.native.storageWrite(s.handle, ops)
    return s.atom === null
  }
}

class StorageRx {
  constructor(storage) {
    this.storage = storage
  }

  async getBlock(index) {
    return this.storage.root.native.storageBlock(this.storage.handle, index)
  }

  async getTreeNode(index) {
    return this.storage.root.native.storageTreeNode(this.storage.handle, index)
  }

  async getHead() {
    return this.storage.root.native.storageHead(this.storage.handle)
  }

  async getHints() {
    return this.storage.root.native.storageHints(this.storage.handle)
  }

  async getBitfieldPage(index) {
    return this.storage.root.native.storageBitfieldPage(this.storage.handle, index)
  }

  async getUserData(key) {
    const s = this.storage
    const state = s.root._states.get(s.handle)
    return state === undefined && !s._owned
      ? s.root.native.getUserData(s.handle, key)
      : s.root.native.stateGetUserData(s.handle, key)
  }

  tryFlush() {}

  destroy() {}
}

// hypercore-storage's Atom: a set of writes, across cores, that lands as one
class Atom {
  constructor(root) {
    this.root = root
    this.id = 0 // the engine's atom in `root`, made when a session first uses it
    this._others = null // Map root -> engine atom, for sessions of other stores
    this.flushing = false
    this.preflushes = []
    this.flushes = []
    this._flushed = null
  }

  // the engine atom of `root` (a store other than the one that made the atom gets its
  // own: its writes land in its own RocksDB, when this atom flushes)
  _handle(root = this.root) {
    if (root === this.root) {
      if (this.id === 0) this.id = root.native.atomCreate()
      return this.id
    }
    if (this._others === null) this._others = new Map()
    let id = this._others.get(root)
    if (id === undefined) {
      id = root.native.atomCreate()
      this._others.set(root, id)
    }
    return id
  }

  preflush(fn) {
    this.preflushes.push(fn)
  }

  onflush(fn) {
    this.flushes.push(fn)
  }

  flushed() {
    if (!this.flushing) return Promise.resolve()
    if (this._flushed === null) {
      let resolve
      const promise = new Promise((r) => (resolve = r))
      this._flushed = { promise, resolve }
    }
    return this._flushed.promise
  }

  async flush() {
    if (this.flushing) throw new Error('Atom already flushing')
    this.flushing = true
    try {
      for (let i = 0, n = this.preflushes.length; i < n; i++) this.preflushes[i]()
      const engines = [[this.root, this.id], ...(this._others || [])]
      for (const [root, id] of engines) {
        if (id === 0 || root.native === null || root._nativeClosed) continue
        let changed
        try {
          changed = root.native.atomFlush(id)
        } catch (err) {
          // the engine's refusal of an atomic state whose parent moved away is hypercore's
          // nanoassert in `_precommit`
          if (err.code !== 'ERR_ASSERTION') throw err
          throw new AssertionError(err.message.replace(/^ERR_ASSERTION: /, ''))
        }
        for (const f of changed) root._onAtomFlushed(f)
        root._pumpLocal()
      }
      const n = this.flushes.length // in case of reentry
      const all = []
      for (let i = 0; i < n; i++) all.push(this.flushes[i]())
      await Promise.all(all)
    } finally {
      this.flushing = false
      const f = this._flushed
      this._flushed = null
      if (f !== null) f.resolve()
    }
  }
}

// A named or atomic state, or a snapshot of one. `handle` is the engine's state handle.
class SessionState {
  constructor(core, handle, { name, atom, parentDefault, snapshot = false }) {
    this.core = core
    this.handle = handle
    this.name = name || null
    this.atom = atom || null
    this.sessions = []
    this.refs = 0
    // the store whose engine holds the state (a snapshot state keeps it when it moves to a
    // core of another store)
    this.root = core.root
    this.storage = new StateStorage(core.root, this.atom, handle, snapshot)
    this._parentDefault = !!parentDefault
    this._snapshot = snapshot
    this._info = core.native.stateInfo(handle)
    // hypercore: the atomic state made from this one, while it is open
    this.atomized = null
    this._atomOf = null // the state this atomic one was made from
    this._mutex = null
  }

  get mutex() {
    if (this._mutex === null) this._mutex = new StateMutex(this)
    return this._mutex
  }

  _unlock() {
    this.mutex.unlock()
  }

  get native() {
    return this.root.native
  }

  // hypercore: an atomic state of the default state stands in for it
  isDefault() {
    return this.atom !== null && this.name === null && this._parentDefault
  }

  isSnapshot() {
    return this._snapshot
  }

  // hypercore's state.snapshot(): a state that reads this one's tree and data as they are
  // now (the engine holds a storage snapshot for it), whatever this one does later; its
  // sessions are snapshot sessions and hear no events
  snapshot() {
    const root = this.root
    const handle = root.native.stateSnapshot(this.handle)
    const state = new SessionState(this.core, handle, { name: this.name, atom: null, parentDefault: false, snapshot: true })
    root._states.set(handle, state)
    return state
  }

  // as hypercore: a state of this name truncated to `to` lowers the compat length of the
  // snapshots of that name on its core (what they may still read from the live core)
  _snapshotsTruncated(to) {
    for (const st of this.root._states.values()) {
      if (st._snapshot === false || st.core !== this.core || st.name !== this.name) continue
      for (const s of st.sessions) {
        const snap = s._snapshot
        if (snap !== null && to < snap.compat) snap.compat = to
      }
    }
  }

  get length() {
    return this._info.length
  }

  get byteLength() {
    return this._info.byteLength
  }

  get fork() {
    return this._info.fork
  }

  get signedLength() {
    return this._info.signedLength
  }

  update(info) {
    this._info = info
  }

  hash() {
    return this.native.stateTreeHash(this.handle, this.length)
  }

  // hypercore's state.roots / signature / prologue: the tree this state holds, the
  // signature its own head carries (a named session's appends are unsigned: null), and
  // the core's prologue
  get roots() {
    return readRoots(this.native, this.handle, this.length)
  }

  get signature() {
    const head = this.native.storageHead(this.handle)
    return head !== null && head.length === this.length ? head.signature : null
  }

  get prologue() {
    return prologueOf(this.core)
  }

  createTreeBatch() {
    return treeBatch(this)
  }

  // hypercore's state.commit(src, opts): into an atomic state of the default state
  async commit(src, opts) {
    return commitInto(this, src, opts)
  }

  // hypercore's moveTo: this named session continues on `session`'s core (an Autobase
  // fork), as its named session of the same name; its sessions migrate with it
  async moveTo(session, length) {
    if (session.opened === false) await session.ready()
    const target = session.core
    if (this._snapshot) return this._moveSnapshot(target)
    if (target.root !== this.root) {
      throw INVALID_OPERATION('A named session cannot move to a core of another store', this.core.discoveryKey)
    }
    const before = this.length
    // the target session's own state when it has one (Autobase moves its view's batch
    // onto the new core's 'batch' session), else its core's default state
    const into = session._state !== null ? session._state.handle : target.handle
    const source = this.core
    const out = this.core.native.stateMoveTo(this.handle, into, length)
    this.update(out.state)
    this.core = target
    this.storage = new StateStorage(target.root, this.atom, this.handle)
    for (const s of this.sessions.slice()) s._transferTo(target)
    // as hypercore, the snapshots of this name move with it (the engine moved them too):
    // they keep reading what they saw, and the new core is what they read past that
    for (const st of source.root._states.values()) {
      if (st._snapshot === false || st.core !== source || st.name !== this.name) continue
      st.core = target
      for (const s of st.sessions.slice()) s._transferTo(target)
    }
    const fork = this.fork
    for (const s of this.sessions.slice()) {
      if (out.truncated) s.emit('truncate', before, fork)
      if (this.length > before) s.emit('append')
    }
  }

  // hypercore's moveTo of a snapshot state: it keeps reading what it holds (its storage
  // does not change) and belongs to the target core from now on, with the other snapshots
  // of its name on its core. A core of another store is fine: the state stays in this
  // store's engine, which reads it as before.
  _moveSnapshot(target) {
    const source = this.core
    if (target === source) return
    if (target.root === this.root) this.native.stateMoveSnapshot(this.handle, target.handle)
    for (const st of this.root._states.values()) {
      if (st._snapshot === false || st.core !== source || st.name !== this.name) continue
      st.core = target
      for (const s of st.sessions.slice()) s._transferTo(target)
    }
  }

  // hypercore's catchup: a named session drops its own blocks and takes the core's tree
  // at `length`
  async catchup(length) {
    const before = this.length
    const out = this.native.stateCatchup(this.handle, length)
    this.update(out.state)
    if (out.sharedLength < before) this.emit('truncate', out.sharedLength, this.fork)
    if (out.sharedLength < length) this.emit('append')
  }

  refresh() {
    this._info = this.native.stateInfo(this.handle)
  }

  emit(name, a, b) {
    if (name === 'truncate') this._snapshotsTruncated(a)
    const ss = this.sessions
    for (let i = ss.length - 1; i >= 0; i--) {
      if (ss[i]._snapshot === null) ss[i].emit(name, a, b)
    }
  }

  add(session) {
    this.refs++
    this.sessions.push(session)
  }

  remove(session) {
    // hypercore's order: the last session takes the removed one's place (Autobase closes
    // `state.sessions[0]` until none is left, and sessions made meanwhile must still work)
    const i = this.sessions.indexOf(session)
    if (i !== -1) {
      const last = this.sessions.pop()
      if (last !== session) this.sessions[i] = last
    }
    if (--this.refs > 0) return
    if (this._atomOf !== null && this._atomOf.atomized === this) this._atomOf.atomized = null
    const root = this.root
    root._states.delete(this.handle)
    if (root.native !== null && !root._nativeClosed) root.native.stateClose(this.handle)
  }
}

// The default state of a core, as `session.state` / `session.core.state` show it.
class DefaultState {
  constructor(core) {
    this.core = core
    this.name = null
    this.atom = null
    this.storage = new StateStorage(core.root, null, core.handle)
    this.atomized = null
    this._mutex = null
  }

  // appends and truncations of the default state wait on the core's line
  get mutex() {
    if (this._mutex === null) this._mutex = new StateMutex(this.core)
    return this._mutex
  }

  _unlock() {
    this.mutex.unlock()
  }

  hash() {
    return this.core.native.treeHash(this.core.handle, this.core.length)
  }

  get roots() {
    return readRoots(this.core.native, this.core.handle, this.core.length)
  }

  // the signature of the core's signed head
  get signature() {
    return this.core.native.coreHead(this.core.handle).signature
  }

  get prologue() {
    return prologueOf(this.core)
  }

  createTreeBatch() {
    return treeBatch(this)
  }

  // hypercore's state.commit(src, opts): what the named state `src` added (up to
  // opts.length) becomes the core's signed tree; null when the core moved on in a way
  // `src` does not contain
  async commit(src, opts) {
    return commitInto(this, src, opts)
  }

  isDefault() {
    return true
  }

  isSnapshot() {
    return false
  }

  get sessions() {
    return this.core.sessions.filter((s) => s._state === null)
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

  get signedLength() {
    return this.core.signedLength
  }
}

// state.commit of the default state or of an atomic state of it (then it lands with the
// atom). hypercore checks both with nanoassert (AssertionError); the engine checks again.
function commitInto(target, src, opts = {}) {
  if (!target.isDefault()) throw new AssertionError('Can only commit into default state')
  if (!(src instanceof SessionState) || src.core !== target.core) throw new AssertionError('Cannot commit across cores')
  const cs = target.core
  const length = typeof opts.length === 'number' ? opts.length : undefined
  const treeLength = typeof opts.treeLength === 'number' && opts.treeLength >= 0 ? opts.treeLength : undefined
  const signature = opts.signature ? toBuffer(opts.signature) : undefined
  const into = target instanceof SessionState ? target.handle : cs.handle
  const info = cs.native.commit(into, src.handle, length, treeLength, signature)
  if (info === null) return null
  src.refresh()
  if (target instanceof SessionState) {
    target.update(info)
    target.emit('append')
  } else {
    cs.onappend(cs.native.state(cs.handle))
    cs.root._pumpLocal()
  }
  return { length: info.length, byteLength: info.byteLength }
}

function prologueOf(core) {
  return (core.manifest && core.manifest.prologue) || null
}

// hypercore's state.createTreeBatch(): the state's tree as it is now, to sign or check
function treeBatch(state) {
  return new TreeBatch({
    fork: state.fork,
    length: state.length,
    byteLength: state.byteLength,
    roots: state.roots,
    signature: state.signature,
    prologue: state.prologue
  })
}

module.exports = { SessionState, DefaultState, Atom, StateStorage }
