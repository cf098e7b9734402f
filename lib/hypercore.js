'use strict'

const { EventEmitter } = require('events')
const encodings = require('./encodings')
const { ReadStream, ByteStream, WriteStream } = require('./streams')
const CoreState = require('./core-state')
const { NONE } = CoreState
const { manifestInput, encodeManifest } = require('./manifest')
const { CoreView } = require('./core-view')
const encryption = require('./encryption')
const { SessionState } = require('./session-state')
const binding = require('./native.js')
const turn = require('./turn')
const { takePlace, lockState } = require('./lock')
const c = require('compact-encoding')
const {
  HypercoreError,
  AssertionError,
  ASSERTION,
  BAD_ARGUMENT,
  STORAGE_EMPTY,
  INVALID_OPERATION,
  REQUEST_CANCELLED,
  SESSION_CLOSED,
  SESSION_NOT_WRITABLE,
  SNAPSHOT_NOT_AVAILABLE,
  DECODING_ERROR
} = require('./errors')

// hypercore does not limit block sizes but enforces 15mb for smooth replication
const MAX_SUGGESTED_BLOCK_SIZE = 15 * 1024 * 1024

// Appends of this many bytes or more run on the thread pool (DECISIONS §30); smaller ones
// take less time than the hop.
const OFF_THREAD_APPEND = 64 * 1024

class Info {
  constructor(opts) {
    this.key = opts.key
    this.discoveryKey = opts.discoveryKey
    this.length = opts.length || 0
    this.contiguousLength = opts.contiguousLength || 0
    this.byteLength = opts.byteLength || 0
    this.fork = opts.fork || 0
    this.padding = opts.padding || 0
    this.storage = opts.storage || null
  }
}

// download({ start, end } | { blocks }): asks peers for the blocks; done() resolves when
// every one of them is stored locally.
class Download {
  constructor(session, range) {
    this.session = session
    this.range = range || null
    this.request = null
    this.opened = false
    this.destroyed = false
    // as hypercore's: on an open session the blocks are asked for before download() returns
    if (session.opened === true) {
      this._want()
      this.opening = Promise.resolve()
    } else {
      this.opening = session.ready().then(() => this._want())
      this.opening.catch(noop)
    }
  }

  _want() {
    this.opened = true
    const cs = this.session.core
    if (cs === null || cs.closed) return
    for (const [start, end] of this._ranges()) cs.want(start, end)
  }

  // [start, end) pairs; end -1 means open-ended (live: everything, as the core grows)
  _ranges() {
    const r = this.range || {}
    if (Array.isArray(r.blocks)) return r.blocks.map((i) => [i, i + 1])
    const start = r.start || 0
    // as hypercore: { length } counts from start, and wins over end
    const end = r.length !== undefined && r.length !== -1 ? start + r.length : r.end === undefined ? -1 : r.end
    return end === -1 || end > start ? [[start, end]] : []
  }

  ready() {
    return this.opening
  }

  async done() {
    await this.opening
    const cs = this.session.core
    if (cs === null) return true
    for (const [start, range] of this._ranges()) {
      if (this.destroyed) return false
      // an open-ended download is done when what the core has now is all here
      const end = () => (range === -1 ? cs.length : range)
      // Checked on every run of blocks that arrives, so it moves a cursor (the first block
      // not held when last asked) instead of rescanning; and asks the engine only when that
      // block may have come: an engine call waits for the replication worker's slice.
      let cursor = start
      let asked = false
      const complete = () => {
        const e = end()
        if (cursor < cs.contiguousLength) cursor = cs.contiguousLength
        if (cursor < e && (!asked || cs.mayHold(cursor))) {
          cursor = cs.native.firstMissing(cs.handle, cursor, e)
          asked = true
        }
        return cursor >= e ? true : null
      }
      if (complete()) continue
      try {
        await cs.wait(this.session, complete, 0)
      } catch {
        return false // as hypercore's range requests: a cancelled download (session closed) is not done
      }
    }
    // has() reads what the replication worker stored, maybe before its 'download' events
    // reached us: they come first, as hypercore emits them before a range resolves
    cs.root._pumpLocal()
    // and the lengths are the engine's now, as hypercore's are when a range resolves
    if (!cs.closed && cs.root.native !== null && !cs.root._nativeClosed) cs.update(cs.native.state(cs.handle))
    return true
  }

  downloaded() {
    return this.done()
  }

  destroy() {
    this.destroyed = true
  }
}

// A session on a core. `ctx` (internal): { opts, native, check, deferred, parent, core, weak }
//   native: NativeOpenOptions to open through the store; check: discovery-key-only get
//   deferred: Promise<{ native, check }> (get with `preload`)
//   parent: the session this one is made from; core: attach to this CoreState without a ref
class Hypercore extends EventEmitter {
  constructor(store, ctx) {
    // the public form, on a core from store.watch(): new Hypercore({ core, weak: true })
    if (!(ctx && ctx.opts) && !isStore(store)) {
      const opts = (isPlainOptions(store) ? store : isPlainOptions(ctx) ? ctx : arguments[2]) || {}
      if (!(opts.core instanceof CoreView)) {
        throw BAD_ARGUMENT(
          'corestore-native opens cores through a Corestore: store.get(), or new Hypercore({ core }) with a core from store.watch()'
        )
      }
      const cs = opts.core._cs
      store = cs.root
      ctx = opts.weak
        ? { opts, core: cs, weak: true }
        : { opts, native: { key: cs.key } }
    }
    super()
    // EventEmitter makes its listener table when the first listener comes; a session that
    // never has one (most, in a store of many cores) saves that dictionary
    this._events = undefined

    const opts = ctx.opts || {}

    this.store = store
    this.core = null // CoreState once attached
    this.sessions = []
    this.keyPair = opts.keyPair || null
    this.valueEncoding = opts.valueEncoding ? encodings.from(opts.valueEncoding) : null
    // blocks -> the buffers to append, instead of one encoded value each (not inherited by
    // sessions, as in hypercore)
    this.encodeBatch = opts.encodeBatch || null
    this.readable = true
    this.exclusive = false
    this.opened = false
    this.closed = false
    this.closing = null
    // true while the session waits for its store to open: its lengths read 0, as hypercore's
    // before its storage is read (what a stream brings meanwhile is still announced)
    this._loading = false
    this.weak = !!ctx.weak
    // hypercore: a session counts as active (the core is "downloading") unless made with
    // active: false; a weak one only with active: true
    this._active = this.weak ? !!opts.active : opts.active !== false
    this.snapshotted = !!opts.snapshot
    this.wait = opts.wait !== false
    this.timeout = opts.timeout || 0
    this.onwait = opts.onwait || null
    this.onseq = opts.onseq || null
    this.encryption = null
    this._encryptionOption = encryption.encryptionOption(opts)
    this._parent = ctx.parent || null
    this.extensions = NONE // a Map once an extension registers (lib/core-state.js)
    this.waits = 0

    this._readonly = opts.writable === false
    // corestore learns the key of a core opened by name or discovery key only once it is
    // ready; match that so code written against it sees the same values.
    this._identityAfterReady = !!(ctx.native && (ctx.native.name || ctx.check))
    this._snapshot = null // { length, byteLength, fork, compat } for snapshots
    this._marking = ctx.parent ? ctx.parent._marking : false // startMarking(): get() marks
    this._waiters = null
    // hypercore's list of this session's waiting requests (Hypercore.destroyRequests takes it)
    this.activeRequests = []
    this._stateIndex = -1
    this._sessionIndex = -1
    this._findingPeers = 0
    // a named or atomic state (lib/session-state.js); null: the core's default state
    this._state = null
    this._stateOpts = ctx.state || null // { name, atom, overwrite, checkout } to make one
    this._parentState = null // the state a new one is made from (the parent session's)

    ctx.userData = opts.userData || null // written when the core is bound (_attach)
    ctx.globalCache = opts.globalCache || null // the core's, when this get opens it
    this.opening = this._open(ctx, opts)
    this.opening.catch(noop)
  }

  [Symbol.for('nodejs.util.inspect.custom')](depth, opts) {
    const pad = ' '.repeat(typeof opts.indentationLvl === 'number' ? opts.indentationLvl : 0)
    const hex = (b) => opts.stylize(b ? b.toString('hex') : b, 'string')
    const field = (name, value, type) => `${pad}  ${name}: ${opts.stylize(value, type)}\n`
    return (
      'Hypercore(\n' +
      field('id', this.id, 'string') +
      `${pad}  key: ${hex(this.key)}\n` +
      `${pad}  discoveryKey: ${hex(this.discoveryKey)}\n` +
      field('opened', this.opened, 'boolean') +
      field('closed', this.closed, 'boolean') +
      field('snapshotted', this.snapshotted, 'boolean') +
      field('writable', this.writable, 'boolean') +
      field('length', this.length, 'number') +
      field('fork', this.fork, 'number') +
      `${pad}  sessions: [ ${opts.stylize(this.sessions.length, 'number')} ]\n` +
      `${pad}  peers: [ ${opts.stylize(0, 'number')} ]\n` +
      `${pad})`
    )
  }

  // ---- opening / closing ----

  async _open(ctx, opts) {
    try {
      let attached = false
      try {
        attached = this._attach(ctx)
        // in the same tick as the attach: a session is never seen bound to the wrong state
        if (attached && this._stateOpts !== null) this._openState(this._stateOpts)
      } catch (err) {
        await null // fail after the caller had a chance to listen, as hypercore does
        throw err
      }
      if (!attached) {
        await this._attachLater(ctx)
        if (this._stateOpts !== null) this._openState(this._stateOpts)
      }
      const root = this.store._root
      if (attached && root.opened === false) {
        // bound while the store still opens (Corestore._open): ready once it is
        this._loading = true
        await root.ready()
        this._loading = false
      } else if (attached) await null

      if (opts.pushOnly === true) this.core.setPushOnly(true) // one session sets it for all
      // as corestore, allowPush and inflightRange are options of the get() that opened the core
      if (opts.allowPush === true && this.core.sessions.length === 1) this.core.setAllowPush(true)
      if (Array.isArray(opts.inflightRange) && this.core.sessions.length === 1) {
        this.core.replicator.setInflightRange(opts.inflightRange[0], opts.inflightRange[1])
      }

      if (opts.exclusive && opts.writable !== false) {
        this.exclusive = true
        await this.core.lockExclusive(this)
      }

      // as hypercore: a session given the manifest of a core stored without one stores it
      if (opts.manifest && this.core.manifest === null) {
        const cs = this.core
        cs.native.setManifest(cs.handle, manifestInput(opts.manifest))
        cs.refresh(cs.native.coreInfo(cs.handle))
      }
    } catch (err) {
      this._detach(null)
      this.closed = true
      this.emit('close')
      throw err
    }

    this.opened = true
    this.emit('ready')
  }

  // attach synchronously when the store and the parent are ready; false: try again later
  _attach(ctx) {
    const root = this.store._root
    const parent = ctx.parent || null

    if (ctx.core) {
      if (this.keyPair === null) this.keyPair = ctx.core.keyPair
      this._bind(ctx.core, [])
      return true
    }

    if (parent !== null) {
      const pc = parent.core
      if (pc === null) return false
      if (pc.closed || parent.closing !== null) {
        throw SESSION_CLOSED('Cannot make sessions on a closing core', pc.discoveryKey)
      }
      if (this.keyPair === null) this.keyPair = parent.keyPair
      if (parent._snapshot !== null) {
        this._snapshot = parent._snapshot
        this._snapshot.refs++
      }
      if (this.weak) this._bind(pc, parent.sessions)
      else this._bind(pc.root._openCore({ key: pc.key }), parent.sessions) // pc's store (a moved snapshot's core may be another's)
      return true
    }

    if (ctx.deferred) return false
    if (root.native === null) return false
    if (root.closing !== null) throw new Error('Corestore is closed')

    const o = ctx.native
    if (ctx.check && !root.native.hasCore(o.discoveryKey)) {
      throw STORAGE_EMPTY('No Hypercore is stored here')
    }

    const cs = root._openCore(o, this.store, ctx.globalCache)
    this._bind(cs, this.store._sessionList(cs))
    if (this.keyPair === null) this.keyPair = cs.keyPair
    // before watchers see the core, as hypercore writes it while the core opens (Autobase's
    // wakeup reads the 'referrer' of every core a watcher is given)
    if (ctx.userData) {
      for (const [key, value] of Object.entries(ctx.userData)) {
        root.native.setUserData(cs.handle, key, userDataValue(value))
      }
    }
    if (cs.fresh) {
      cs.fresh = false
      root._announce(cs)
    }
    return true
  }

  async _attachLater(ctx) {
    if (ctx.deferred) {
      const { native, check, encryption: e } = await ctx.deferred
      ctx.native = native
      ctx.check = check
      ctx.deferred = null
      this._encryptionOption = e
    }
    if (ctx.parent) await ctx.parent.opening
    else await this.store.ready()
    if (this.closing !== null) throw SESSION_CLOSED('Cannot open a closed session')
    if (!this._attach(ctx)) throw new Error('Corestore is closed')
  }

  _bind(cs, sessions) {
    this.core = cs
    this.sessions = sessions
    // as hypercore: a parent's encryption, else this session's own option
    const parent = this._parent
    this._parent = null // needed only here; a session must not keep its parent alive
    if (parent !== null && parent.encryption) this.encryption = parent.encryption
    if (this.encryption === null) this.encryption = encryption.provider(this._encryptionOption, cs)
    for (const ext of this.extensions.values()) cs.ownExtensions().set(ext.name, ext)
    this._sessionIndex = sessions.push(this) - 1
    if (parent !== null && parent._state !== null) {
      this._parentState = parent._state
      if (this._stateOpts === null) {
        // as hypercore: a snapshot of a session on a named or atomic state works on a
        // snapshot of that state (sessions made from a snapshot share it)
        const ps = parent._state
        this._state = this.snapshotted && !ps.isSnapshot() ? ps.snapshot() : ps
        this._state.add(this)
      }
    }
    if (this.snapshotted && this._snapshot === null) {
      const src = this._state || cs
      const ofState = this._state !== null && this._state.isSnapshot()
      this._snapshot = {
        length: src.length,
        byteLength: src.byteLength,
        fork: src.fork,
        // what may still be read from the live core (hypercore's snapshotCompatLength)
        compat: ofState ? Math.min(src.length, cs.length) : src.length,
        // a snapshot state reads through its own storage snapshot (the engine's); the
        // default state's snapshot through this one, released with the last session
        // sharing it
        storage: ofState ? undefined : cs.native.storageSnapshot(),
        ofState,
        refs: 1
      }
    }
    cs.add(this)
  }

  // hypercore's transferSession: this session's state moved to core `cs` (moveTo); the
  // session leaves its core for that one and says so with 'migrate'
  _transferTo(cs) {
    const old = this.core
    if (old === cs || old === null) return
    const strong = this.weak === false
    const list = this.sessions
    if (this._sessionIndex !== -1) {
      const head = list.pop()
      if (head !== this) list[(head._sessionIndex = this._sessionIndex)] = head
      this._sessionIndex = -1
      if (list.length === 0) this.store._gcSessionList(old, list)
    }
    // the new core's reference first; each in its own store (a snapshot of a named
    // session may move to a core of another store)
    if (strong) cs.root._openCore({ key: cs.key })
    old.remove(this)
    if (strong) old.root._closeCore(old.handle)
    this.core = cs
    this.sessions = this.store._sessionList(cs)
    this._sessionIndex = this.sessions.push(this) - 1
    cs.add(this)
    this.emit('migrate', cs.key)
  }

  // hypercore's createSession: a named session (resumed from disk unless `overwrite`) or
  // an atomic state of this session's state, optionally checked out at a shorter length
  _openState(o) {
    const cs = this.core
    const root = cs.root
    const parent = this._parentState
    this._parentState = null
    const atom = o.atom || null
    const handle = root.native.stateCreate(
      parent !== null ? parent.handle : cs.handle,
      atom === null ? o.name : undefined,
      !!o.overwrite,
      atom === null ? undefined : atom._handle(root)
    )
    const name = atom === null ? o.name : parent !== null ? parent.name : null
    const state = new SessionState(cs, handle, { name, atom, parentDefault: parent === null })
    root._states.set(handle, state)
    if (atom !== null) {
      state._atomOf = parent !== null ? parent : cs.state
      state._atomOf.atomized = state
    }
    this._state = state
    state.add(this)

    const checkout = o.checkout === undefined ? -1 : o.checkout
    if (checkout === -1) return
    if (checkout > state.length) {
      throw ASSERTION(`Invalid checkout ${checkout} for ${o.name}, length is ${state.length}`, this.discoveryKey)
    }
    const prologue = state.prologue
    if (prologue && checkout < prologue.length) {
      throw ASSERTION(`Invalid checkout ${checkout} for ${o.name}, prologue length is ${prologue.length}`, this.discoveryKey)
    }
    if (checkout < state.length) state.update(root.native.stateTruncate(handle, checkout, state.fork))
  }

  _detach(error) {
    const cs = this.core
    this.readable = false
    if (cs === null || this._stateIndex === -1) return

    for (const ext of [...this.extensions.values()]) ext.destroy()

    // the store's per-core session list
    const list = this.sessions
    if (this._sessionIndex !== -1) {
      const head = list.pop()
      if (head !== this) list[(head._sessionIndex = this._sessionIndex)] = head
      this._sessionIndex = -1
      if (list.length === 0) this.store._gcSessionList(cs, list)
    }

    if (this._waiters !== null) {
      for (const w of this._waiters) CoreState.settle(w, error || REQUEST_CANCELLED(), null)
    }

    if (this.exclusive) cs.unlockExclusive(this)

    if (this._state !== null) this._state.remove(this)

    const snap = this._snapshot
    if (snap !== null && snap.storage !== undefined && --snap.refs === 0 && cs.root.native !== null) {
      cs.root.native.releaseStorageSnapshot(snap.storage)
    }

    const strong = this.weak === false
    const lingers = cs.remove(this)
    if (strong && !lingers) cs.root._closeCore(cs.handle)
  }

  ready() {
    return this.opening
  }

  close({ error } = {}) {
    if (this.closing !== null) return this.closing
    this.closing = this._close(error || null)
    return this.closing
  }

  async _close(error) {
    if (this.opened === false) {
      try {
        await this.opening
      } catch (err) {
        if (!this.closed) throw err
      }
    }
    if (this.closed) return

    this.opened = false
    this._detach(error)
    this.closed = true
    this.emit('close')
  }

  // ---- properties ----

  // (a closed session keeps what it knew, as hypercore's does)
  get _identityKnown() {
    return this.core !== null && (this.opened || this.closed || !this._identityAfterReady)
  }

  get key() {
    return this._identityKnown ? this.core.key : null
  }

  get discoveryKey() {
    return this._identityKnown ? this.core.discoveryKey : null
  }

  get id() {
    return this._identityKnown ? this.core.id : null
  }

  get manifest() {
    return this._identityKnown ? this.core.manifest : null
  }

  get length() {
    if (this._snapshot !== null) return this._snapshot.length
    if (this.readable === false || this._loading || this.core === null) return 0
    return this._state !== null ? this._state.length : this.core.length
  }

  // hypercore's session state: the core's default one, or this session's named/atomic one
  get state() {
    if (this._state !== null) return this._state
    return this.core === null ? null : this.core.state
  }

  // without the padding of encrypted blocks (a snapshot's, as hypercore's, with it)
  get byteLength() {
    if (this.readable === false || this._loading || this.core === null) return 0
    if (this._snapshot !== null) return this._snapshot.byteLength
    const src = this._state !== null ? this._state : this.core
    return src.byteLength - src.length * this.padding
  }

  get contiguousLength() {
    if (this.readable === false || this._loading || this.core === null) return 0
    return Math.min(this.core.length, this.core.contiguousLength)
  }

  get contiguousByteLength() {
    return 0
  }

  get remoteContiguousLength() {
    if (this.opened === false || this.readable === false || this.core === null) return 0
    return Math.min(this.core.length, this.core.remoteContiguousLength)
  }

  get fork() {
    if (this.readable === false || this._loading || this.core === null) return 0
    if (this._snapshot !== null) return this._snapshot.fork
    return this._state !== null ? this._state.fork : this.core.fork
  }

  get signedLength() {
    if (this.readable === false || this._loading || this.core === null) return 0
    const snap = this._snapshot
    // hypercore: a snapshot of a state counts all it holds as flushed, up to the core's length
    if (snap !== null && snap.ofState) return Math.min(snap.length, this.core.length, snap.compat)
    const l = this._state !== null ? this._state.signedLength : this.core.signedLength
    return snap !== null && l > snap.compat ? snap.compat : l
  }

  // as hypercore: false until the session is open; then whether its key pair can sign
  // (a key pair that is not a signer still counts: its appends fail)
  get writable() {
    if (this.opened === false || this.readable === false || this._readonly) return false
    // a named session is writable whatever the key pair: its appends are unsigned
    if (this._state !== null && !this._state.isDefault()) return true
    return canSign(this.keyPair)
  }

  // bytes in front of every stored block; 0 until an encrypted core's manifest is known
  get padding() {
    if (this.encryption && this.core !== null && this.core.manifest) {
      return this.encryption.padding(this.core, this.length)
    }
    return 0
  }

  async setEncryptionKey(key, opts) {
    if (!this.opened) await this.opening
    return this.setEncryption(encryption.provider({ key, block: !!(opts && opts.block) }, this.core))
  }

  async setEncryption(provider) {
    if (!this.opened) await this.opening
    if (provider !== null && !encryption.isProvider(provider)) {
      throw ASSERTION('Provider does not satisfy HypercoreEncryption interface', this.discoveryKey)
    }
    this.encryption = provider
  }

  get peers() {
    return this.core === null ? [] : this.core.peers
  }

  get replicator() {
    return this.core === null ? null : this.core.replicator
  }

  get globalCache() {
    return this.opened && this.core !== null ? this.core.globalCache : null
  }

  get recovering() {
    return 0
  }

  getManifest({ raw = false } = {}) {
    const m = this.manifest
    if (m === null) return null
    return raw ? encodeManifest(m) : m
  }

  setKeyPair(keyPair) {
    this.keyPair = keyPair
  }

  // hypercore's setActive: whether this session keeps its core downloading, which is what
  // lets peers push to a core opened with allowPush
  setActive(bool) {
    const active = !!bool
    if (active === this._active || this.closing !== null) return
    this._active = active
    if (this.core !== null && this._stateIndex !== -1) this.core.activity(active ? 1 : -1)
  }

  // the core joins the group of `topic` (STORAGE_CONFLICT when it is in another one)
  async setGroup(topic) {
    if (!this.opened) await this.opening
    if (!(topic instanceof Uint8Array) || topic.byteLength !== 32) {
      throw BAD_ARGUMENT('group must be a 32-byte Buffer')
    }
    const cs = this.core
    const group = Buffer.from(topic)
    cs.native.setGroup(cs.handle, group)
    if (cs.group === null) cs.group = group
  }

  // ---- sessions ----

  session(opts = {}) {
    if (this.closing !== null) {
      throw SESSION_CLOSED('Cannot make sessions on a closing core', this.discoveryKey)
    }
    if (opts.checkout !== undefined && !opts.name && !opts.atom) {
      throw ASSERTION('Checkouts are only supported on atoms or named sessions', this.discoveryKey)
    }

    const child = {
      ...opts,
      wait: opts.wait === false ? false : this.wait,
      writable: opts.writable === undefined ? !this._readonly : opts.writable === true,
      onwait: opts.onwait === undefined ? this.onwait : opts.onwait,
      onseq: opts.onseq === undefined ? this.onseq : opts.onseq,
      timeout: opts.timeout === undefined ? this.timeout : opts.timeout
    }
    const weak = opts.weak === undefined ? this.weak : !!opts.weak
    const state =
      opts.name || opts.atom
        ? { name: opts.name || null, atom: opts.atom || null, overwrite: !!opts.overwrite, checkout: opts.checkout }
        : null
    return new Hypercore(this.store, { opts: child, parent: this, weak, state })
  }

  snapshot(opts) {
    return this.session({ ...opts, snapshot: true })
  }

  // hypercore's commit: what the named session `session` added (up to `length`) becomes
  // this core's signed default state (state.commit). null when the core moved on in a way it
  // does not contain.
  async commit(session, opts = {}) {
    await this.ready()
    await session.ready()
    if (session.closing !== null) throw SESSION_CLOSED('Cannot commit a closed session', this.discoveryKey)
    return this.state.commit(session.state, opts)
  }

  // as hypercore: RocksDB compacts this core's records
  async compact() {
    if (this.opened === false) await this.opening
    this._checkReadable()
    this.core.native.compact(this._state !== null ? this._state.handle : this.core.handle)
  }

  // ---- writes ----

  // Appends and truncations of a core's default state take effect in call order, as under
  // hypercore's state mutex: a turn of the event loop (lib/turn.js) or a large append on
  // the thread pool (DECISIONS §30) must not let a later call overtake.
  async append(blocks, opts) {
    const place = inOrder(this)
    try {
      if (place !== null && place.after !== null) await place.after
      return await this._append(blocks, opts)
    } finally {
      if (place !== null) letNextAppend(place)
    }
  }

  async _append(blocks, opts) {
    if (this.core === null) await this.opening
    const t = turn() // let the event loop run now and then: the engine answers at once
    if (t !== null) await t
    if (this.closing !== null) {
      throw SESSION_CLOSED('Cannot append to a closed session', this.core.discoveryKey)
    }
    const cs = this.core
    const state = this._state
    // as hypercore: a named or atomic session appends whatever its key pair (a named one
    // unsigned); the default state needs a key pair that signs, or a signature
    const keyPair =
      opts && opts.keyPair !== undefined ? opts.keyPair : state === null || state.name === null ? this.keyPair : null
    const signature = (opts && opts.signature) || null
    const writable = state !== null || !!signature || canSign(keyPair)
    if (this._readonly || !writable) {
      throw SESSION_NOT_WRITABLE('cannot append to a readonly core', cs.discoveryKey)
    }
    checkWritableState(this)

    const enc = this.valueEncoding
    const padding = this.padding
    let buffers
    if (this.encodeBatch !== null) {
      buffers = this.encodeBatch(Array.isArray(blocks) ? blocks : [blocks]).map((b) => encodeBlock(null, b, padding))
    } else if (Array.isArray(blocks)) {
      buffers = new Array(blocks.length)
      for (let i = 0; i < blocks.length; i++) buffers[i] = encodeBlock(enc, blocks[i], padding)
    } else {
      buffers = [encodeBlock(enc, blocks, padding)]
    }

    for (let i = 0; i < buffers.length; i++) {
      if (buffers[i].byteLength > MAX_SUGGESTED_BLOCK_SIZE) {
        throw BAD_ARGUMENT(
          'Appended block exceeds the maximum suggested block size',
          cs.discoveryKey
        )
      }
    }

    const src = state !== null ? state : cs
    const e = this.encryption
    // hypercore encrypts under the state's lock: a provider that awaits (Autobase's) would
    // otherwise let a second append read the same length and encrypt its blocks at an
    // index they do not land at. Any append waits while someone holds the lock
    // (`state.mutex`).
    if ((e && !(e instanceof encryption.DefaultEncryption)) || src._appends) {
      const unlock = await lockState(src)
      try {
        if (this.closing !== null) {
          throw SESSION_CLOSED('Cannot append to a closed session', cs.discoveryKey)
        }
        return await this._appendBuffers(cs, state, src, buffers, opts, keyPair, signature)
      } finally {
        unlock()
      }
    }
    return this._appendBuffers(cs, state, src, buffers, opts, keyPair, signature)
  }

  async _appendBuffers(cs, state, src, buffers, opts, keyPair, signature) {
    if (opts && typeof opts.maxLength === 'number' && opts.maxLength >= 0) {
      if (src.length + buffers.length > opts.maxLength) {
        return { length: src.length, byteLength: src.byteLength }
      }
    }

    if (buffers.length === 0) return { length: src.length, byteLength: src.byteLength }

    // as hypercore: blocks are encrypted at their index in this session's state, with the
    // core's fork
    const e = this.encryption
    const at = src.length
    if (e instanceof encryption.DefaultEncryption) e.encryptBatch(at, buffers, cs.fork, cs)
    else if (e) for (let i = 0; i < buffers.length; i++) await e.encrypt(at + i, buffers[i], cs.fork, cs)

    // as hypercore: `postappend(blocks)` runs once the blocks are stored, before the
    // session's 'append' event and before peers hear of the new length
    const postappend = (opts && typeof opts.postappend === 'function' && opts.postappend) || null

    if (state !== null) {
      const info = state.native.stateAppend(state.handle, buffers)
      state.update(info)
      if (postappend !== null) await postappend(buffers)
      state.emit('append')
      return { length: info.length, byteLength: info.byteLength }
    }

    const sign = signOptions(cs, keyPair, signature)
    if (sign === null && byteLength(buffers) >= OFF_THREAD_APPEND) {
      return this._appendOffThread(cs, buffers, postappend)
    }
    const st =
      sign === null ? cs.native.append(cs.handle, buffers) : signed(cs, () => cs.native.appendSigned(cs.handle, buffers, sign))
    if (sign !== null) refreshManifest(cs)
    if (postappend !== null) {
      cs.update(st)
      await postappend(buffers)
    }
    return appended(cs, st)
  }

  // A large append runs on the thread pool while the event loop goes on (DECISIONS §30);
  // later appends and truncations wait for it (append() keeps them in order).
  async _appendOffThread(cs, buffers, postappend) {
    const out = await cs.root._offThread().append(cs.handle, buffers)
    if (!out.state) throw new HypercoreError(out.message, out.code)
    if (postappend !== null) {
      cs.update(out.state)
      await postappend(buffers)
    }
    return appended(cs, out.state)
  }

  async truncate(newLength = 0, opts = {}) {
    const place = inOrder(this)
    try {
      if (place !== null && place.after !== null) await place.after
      return await this._truncate(newLength, opts)
    } finally {
      if (place !== null) place.done()
    }
  }

  async _truncate(newLength = 0, opts = {}) {
    if (this.core === null) await this.opening
    const cs = this.core
    if (this.closing !== null) {
      throw SESSION_CLOSED('Cannot append to a closed session', cs.discoveryKey)
    }
    if (!isIndex(newLength)) throw BAD_ARGUMENT('Truncation length must be a non-negative integer')

    const o = typeof opts === 'number' ? { fork: opts } : opts || {}
    const state = this._state
    const src = state !== null ? state : cs
    if (src._appends) {
      // someone holds the state's lock (`state.mutex`) or an append waits for it
      const unlock = await lockState(src)
      unlock()
      if (this.closing !== null) throw SESSION_CLOSED('Cannot append to a closed session', cs.discoveryKey)
    }
    const fork = o.fork === undefined ? src.fork + 1 : o.fork
    if (!isIndex(fork)) throw BAD_ARGUMENT('Fork must be a non-negative integer')
    checkWritableState(this)
    // as hypercore: the blocks of the manifest's prologue are the core's for good
    const prologue = this.state !== null ? this.state.prologue : null
    if (prologue && newLength < prologue.length) {
      throw INVALID_OPERATION('Truncation breaks prologue', cs.discoveryKey)
    }

    if (state !== null) {
      if (newLength > state.length) {
        throw INVALID_OPERATION(
          'Not a truncation, ' + newLength + ' must be less or equal to ' + state.length,
          cs.discoveryKey
        )
      }
      const info = state.native.stateTruncate(state.handle, newLength, fork)
      state.update(info)
      state.emit('truncate', newLength, info.fork)
      return
    }

    const keyPair = o.keyPair !== undefined ? o.keyPair : this.keyPair
    const signature = o.signature || null
    const writable = !this._readonly && !!(signature || canSign(keyPair))
    if (writable === false && (newLength > 0 || fork !== cs.fork)) {
      throw SESSION_NOT_WRITABLE('cannot append to a non-writable core', cs.discoveryKey)
    }
    if (newLength > cs.length) {
      throw INVALID_OPERATION(
        'Not a truncation, ' + newLength + ' must be less or equal to ' + cs.length,
        cs.discoveryKey
      )
    }

    const sign = signOptions(cs, keyPair, signature)
    const st =
      sign === null
        ? cs.native.truncate(cs.handle, newLength, fork)
        : signed(cs, () => cs.native.truncateSigned(cs.handle, newLength, fork, sign))
    if (sign !== null) refreshManifest(cs)
    cs.ontruncate(st, newLength)
    cs.root._pumpLocal()
  }

  async clear(start, end = start + 1, opts) {
    if (this.core === null) await this.opening
    const cs = this.core
    if (this.closing !== null) {
      throw SESSION_CLOSED('cannot clear on a closed session', cs.discoveryKey)
    }

    if (typeof end === 'object' && end !== null) {
      opts = end
      end = start + 1
    }
    if (!isIndex(start) || !isIndex(end)) {
      throw ASSERTION('clear range is invalid', cs.discoveryKey)
    }

    const cleared = opts && opts.diff ? { blocks: 0 } : null
    const length = this.length
    if (start >= end || start >= length) return cleared
    if (end > length) end = length
    checkWritableState(this)

    if (this._state !== null) {
      this._state.update(this._state.native.stateClear(this._state.handle, start, end))
      return cleared
    }
    cs.native.clear(cs.handle, start, end)
    cs.update(cs.native.state(cs.handle))
    cs.onclear(start)
    cs.root._pumpLocal() // peers hear the blocks are gone
    return cleared
  }

  // ---- mark and sweep (hypercore 11): keep the blocks read or marked, clear the rest ----

  async startMarking() {
    if (this._marking) {
      throw ASSERTION("Hypercore cannot be gc'ed when already in gc mode", this.discoveryKey)
    }
    if (this._state !== null && this._state.name !== null) {
      throw ASSERTION("Hypercore cannot be gc'ed when a named session", this.discoveryKey)
    }
    if (this._state !== null && this._state.atom !== null) {
      throw ASSERTION("Hypercore cannot be gc'ed when an atomic session", this.discoveryKey)
    }
    if (this.opened === false) await this.opening
    await this.clearMarkings()
    this._marking = true
  }

  async markBlock(start, end = start + 1) {
    if (this.opened === false) await this.opening
    if (!isIndex(start) || !isIndex(end)) throw ASSERTION('mark range is invalid', this.discoveryKey)
    this._checkReadable()
    this.core.native.markBlocks(this.core.handle, start, end)
  }

  async clearMarkings() {
    if (this.opened === false) await this.opening
    this._checkReadable()
    this.core.native.clearMarkings(this.core.handle)
  }

  // clears every block no mark covers, then the marks (one write)
  async sweep() {
    if (this.opened === false) await this.opening
    if (this.snapshotted) throw ASSERTION('Cannot sweep a snapshot', this.discoveryKey)
    this._checkReadable()
    const cs = this.core
    cs.update(cs.native.sweep(cs.handle))
    cs.onclear(0)
    cs.root._pumpLocal() // peers hear the blocks are gone
    this._marking = false
  }

  async setUserData(key, value) {
    if (this.core === null) await this.opening
    this._checkReadable()
    if (typeof key !== 'string') throw BAD_ARGUMENT('User data key must be a string')
    checkWritableState(this)
    if (this._state !== null) {
      this._state.native.stateSetUserData(this._state.handle, key, userDataValue(value))
      return
    }
    this.core.native.setUserData(this.core.handle, key, userDataValue(value))
  }

  // ---- reads ----

  async get(index, opts) {
    if (this.opened === false) await this.opening
    const cs = this.core
    if (!isIndex(index)) throw ASSERTION('block index is invalid', cs.discoveryKey)
    if (this.closing !== null) {
      throw SESSION_CLOSED('cannot get on a closed session', cs.discoveryKey)
    }

    const enc =
      opts && opts.valueEncoding ? encodings.from(opts.valueEncoding) : this.valueEncoding

    if (this.onseq !== null) this.onseq(index, this)
    if (this._marking) cs.native.markBlocks(cs.handle, index, index + 1)

    const snap = this._snapshot
    const state = this._state
    const read =
      state === null
        ? () => cs.native.get(cs.handle, index)
        : snap !== null && snap.ofState
          ? () => snapshotStateGet(this, snap, state, index)
          : () => state.native.stateGet(state.handle, index)
    let block
    if (snap !== null && snap.ofState) {
      // hypercore: what the snapshot's storage holds, else the live core below compat
      block = read()
      if (block === null && index >= snap.compat) throw snapshotError(this, index)
    } else if (snap !== null && index >= snap.compat) {
      // truncated or cleared below this block since the snapshot: what the storage
      // snapshot holds (hypercore reads snapshots through one too)
      block = index < snap.length ? cs.native.snapshotGet(snap.storage, cs.handle, index) : null
      if (block === null) throw snapshotError(this, index)
    } else {
      block = read()
    }

    if (block === null) {
      // hypercore reads the block from storage asynchronously first: a session closed in
      // the meantime fails the get with SESSION_CLOSED (a request already waiting is
      // cancelled instead, as there)
      await null
      if (this.closing !== null) throw SESSION_CLOSED('cannot get on a closed session', cs.discoveryKey)
      // it may have arrived meanwhile (the wait below only sees blocks that arrive later)
      if (snap === null || index < snap.compat) block = read()
    }

    if (block !== null) {
      // a block read at once: a loop of such gets gives the event loop its turns (a block
      // to wait for asks peers first, as hypercore's get does before it awaits anything)
      const t = turn()
      if (t !== null) {
        await t
        if (this.closing !== null) throw SESSION_CLOSED('cannot get on a closed session', cs.discoveryKey)
      }
    } else {
      if (opts && opts.wait !== undefined ? opts.wait === false : this.wait === false) return null

      this.waits++
      if (opts && opts.onwait) opts.onwait(index, this)
      if (this.onwait !== null) this.onwait(index, this)

      const requests = (opts && opts.activeRequests) || this.activeRequests
      if (CoreState.isRequestsDestroyed(requests)) throw REQUEST_CANCELLED()
      const timeout = opts && opts.timeout !== undefined ? opts.timeout : this.timeout
      // checked on every block that arrives: the bitfield first, the read only once it is there
      const ready = () => {
        if (!cs.native.has(cs.handle, index, index + 1)) return null
        // a snapshot's compat length may have dropped below the block meanwhile
        if (snap !== null && index >= snap.compat) throw snapshotError(this, index)
        return read()
      }
      // as hypercore, a get is snapshotted at call time: a truncation below the block
      // while it waits fails it (a snapshot session checks its own length below)
      const truncated = snap !== null ? null : (to) => (index >= to ? implicitSnapshotError(this, index, to) : null)
      // waiting before asking: a peer's answer may be processed within the want (input is
      // processed inline while the worker is idle), and its 'block' event must find us
      const waiting = cs.wait(this, ready, timeout, truncated, requests, state === null ? index : -1)
      waiting.catch(noop) // settled below, unless the want throws (the store is closing)
      cs.want(index, index + 1, !!(opts && opts.force === true), state === null)
      block = await waiting
      if (snap !== null && index >= snap.compat) throw snapshotError(this, index)
    }

    if (opts && opts.raw) return block
    if (this.encryption) {
      if (!opts || opts.decrypt !== false) {
        const decrypting = this.encryption.decrypt(index, block, cs)
        if (decrypting && typeof decrypting.then === 'function') await decrypting // a provider's
      }
      block = block.subarray(this.encryption.padding(cs, index))
    }
    if (enc === null) return block
    try {
      return encodings.decode(enc, block)
    } catch (err) {
      throw DECODING_ERROR(err.message, cs.discoveryKey)
    }
  }

  async has(start, end = start + 1) {
    if (this.core === null) await this.opening
    const cs = this.core
    if (!isIndex(start) || !isIndex(end)) {
      throw ASSERTION('has range is invalid', cs.discoveryKey)
    }
    this._checkReadable()
    if (this._state !== null && !this._state.isDefault()) {
      return this._state.native.stateHas(this._state.handle, start, end)
    }
    return cs.native.has(cs.handle, start, end)
  }

  async seek(bytes, opts) {
    if (this.core === null) await this.opening
    const cs = this.core
    if (!isIndex(bytes)) throw ASSERTION('seek is invalid', cs.discoveryKey)
    if (this.closing !== null) {
      throw SESSION_CLOSED('cannot seek on a closed session', cs.discoveryKey)
    }

    // an encrypted core's padding is known once its manifest is
    if (this.encryption && !cs.manifest) await this.update({ wait: true })
    const padding = this.padding
    const snap = this._snapshot
    const state = this._state
    const at =
      state === null
        ? () => cs.native.seek(cs.handle, bytes, padding)
        : () => state.native.stateSeek(state.handle, bytes, padding)
    const seek = snap === null ? at : () => (bytes > snap.byteLength ? null : at())

    const res = seek()
    if (res !== null) return res

    if (opts && opts.wait !== undefined ? opts.wait === false : this.wait === false) return null
    const timeout = opts && opts.timeout !== undefined ? opts.timeout : this.timeout
    // a sparse replica may lack the tree nodes: ask peers for them (again as it grows)
    const seekOrAsk = () => {
      const r = seek()
      if (r === null && bytes < cs.byteLength) cs.wantSeek(bytes, padding)
      return r
    }
    const requests = (opts && opts.activeRequests) || this.activeRequests
    if (CoreState.isRequestsDestroyed(requests)) throw REQUEST_CANCELLED()
    if (bytes < cs.byteLength) cs.wantSeek(bytes, padding)
    return cs.wait(this, seekOrAsk, timeout, null, requests)
  }

  async treeHash(length = -1) {
    if (this.core === null) await this.opening
    this._checkReadable()
    if (length === -1) length = this.length
    if (this._state !== null) {
      if (!isIndex(length) || length > this._state.length) {
        throw BAD_ARGUMENT('Tree length must be an integer between 0 and the session length')
      }
      return this._state.native.stateTreeHash(this._state.handle, length)
    }
    // a writer's core grows only by its own appends: past its length there is nothing to
    // wait for (hypercore waits forever there)
    if (!isIndex(length) || (length > this.core.length && this.core.writable)) {
      throw BAD_ARGUMENT('Tree length must be an integer between 0 and the core length')
    }
    // As hypercore does: a sparse reader fetches the last block first, whose proof brings
    // the nodes the roots at that length need (past our length it waits for the upgrade).
    if (length > 0 && (length > this.core.length || !this.core.native.has(this.core.handle, length - 1, length))) {
      await this.get(length - 1)
    }
    if (length > this.core.length) {
      throw BAD_ARGUMENT('Tree length must be an integer between 0 and the core length')
    }
    return this.core.native.treeHash(this.core.handle, length)
  }

  // as hypercore: the bytes the core's signers sign for the tree at (length, fork)
  async signable(length = -1, fork = -1) {
    if (this.opened === false) await this.opening
    if (length === -1) length = this.length
    if (fork === -1) fork = this.fork
    return binding.treeSignable(this.key, await this.treeHash(length), length, fork)
  }

  async getUserData(key) {
    if (this.core === null) await this.opening
    this._checkReadable()
    if (typeof key !== 'string') throw BAD_ARGUMENT('User data key must be a string')
    if (this._state !== null) return this._state.native.stateGetUserData(this._state.handle, key)
    return this.core.native.getUserData(this.core.handle, key)
  }

  async info(opts) {
    if (this.core === null) await this.opening
    return new Info({
      key: this.key,
      discoveryKey: this.discoveryKey,
      length: this.length,
      contiguousLength: this.contiguousLength,
      byteLength: this.byteLength,
      fork: this.fork,
      padding: this.padding,
      storage: null
    })
  }

  // Resolves true when a peer had a longer signed tree and it was fetched, false when no
  // connected peer knows more (or none is connected).
  async update(opts) {
    if (this.opened === false) await this.opening
    const cs = this.core
    if (cs === null || this.closing !== null || this.snapshotted) return false
    // as hypercore: a writer has the latest version unless told otherwise
    if (this.writable && !(opts && opts.force === true)) return false
    const before = cs.length
    // as hypercore: wait for peers when asked to, or by default while someone is still
    // finding peers (findingPeers()); until the first peer of this core shows up, a
    // finding store waits for it instead of answering "nothing newer"
    const wait = opts && typeof opts.wait === 'boolean' ? opts.wait : cs.findingPeers > 0
    if (!wait) return false // eager upgrades already brought what synced peers have
    for (let rounds = 0; rounds < 64; ) {
      const status = cs.requestUpdate()
      if (status === 0 && !(cs.findingPeers > 0 && !cs.hadPeers)) break
      if (status !== 0) rounds++
      await cs.nextSync()
      if (this.closing !== null) break
    }
    return cs.length > before
  }

  createReadStream(opts) {
    return new ReadStream(this, opts)
  }

  createByteStream(opts) {
    return new ByteStream(this, opts)
  }

  createWriteStream() {
    return new WriteStream(this)
  }

  download(range) {
    return new Download(this, range)
  }

  undownload(range) {
    if (range) range.destroy()
  }

  cancel() {}

  // Until the returned function is called (or this session closes), update() waits for
  // peers: call it once the swarm has found its peers (swarm.flush()).
  findingPeers() {
    this._findingPeers++
    if (this.core !== null && this._stateIndex !== -1) this.core.findingPeers++
    let once = true
    return () => {
      if (!once || this._findingPeers === 0) return
      once = false
      this._findingPeers--
      if (this.core !== null && this._stateIndex !== -1) this.core.foundPeers(1)
    }
  }

  // As hypercore: messages of the application's own protocol, sent on this core's channels.
  // handlers: { encoding, onmessage(message, peer) }; the last session to register a name
  // receives its messages.
  registerExtension(name, handlers = {}) {
    const existing = this.extensions.get(name)
    if (existing !== undefined) {
      existing.handlers = handlers
      existing.encoding = c.from(handlers.encoding || c.buffer)
      return existing
    }
    const session = this
    const ext = {
      name,
      handlers,
      encoding: c.from(handlers.encoding || c.buffer),
      session,
      send(message, peer) {
        session._sendExtension(name, c.encode(this.encoding, message), peer ? peer.session : undefined)
      },
      broadcast(message) {
        session._sendExtension(name, c.encode(this.encoding, message), undefined)
      },
      destroy() {
        const cs = session.core
        if (cs !== null && cs.extensions.get(name) === ext) cs.extensions.delete(name)
        if (session.extensions.get(name) === ext) session.extensions.delete(name)
      },
      _onmessage(buffer, peer) {
        let m
        try {
          m = c.decode(this.encoding, buffer)
        } catch {
          return // as hypercore, an undecodable message from a peer is dropped
        }
        if (this.handlers.onmessage) this.handlers.onmessage(m, peer)
      }
    }
    if (this.extensions === NONE) this.extensions = new Map()
    this.extensions.set(name, ext)
    if (this.core !== null && this._stateIndex !== -1) this.core.ownExtensions().set(name, ext)
    return ext
  }

  _sendExtension(name, buffer, session) {
    const cs = this.core
    if (cs === null || this.closing !== null || cs.root.native === null) return
    cs.root._pump(cs.root.native.replicationExtension(cs.handle, session, name, buffer))
  }

  // As hypercore: this core only, on a new stream (true/false), or this core added to a
  // stream, connection or Protomux that replicates already. Returns that stream.
  replicate(isInitiator, opts) {
    if (this.closing !== null) throw SESSION_CLOSED('Cannot replicate a closed session', this.discoveryKey)
    const { stream, target } = this.store._root._replicate(isInitiator, true, opts)
    const add = () => {
      if (this.core !== null && this.closing === null) target._addCore(this.core.handle)
    }
    if (this.opened) add()
    else this.opening.then(add, noop)
    return isInitiator && isInitiator.isProtomux === true ? isInitiator : stream // as hypercore
  }

  _checkReadable() {
    if (this.readable === false) {
      throw SESSION_CLOSED('cannot read from a closed session', this.discoveryKey)
    }
  }
}

function implicitSnapshotError(session, index, length) {
  return SNAPSHOT_NOT_AVAILABLE(
    `snapshot at index ${index} not available (max compat length ${length})`,
    session.discoveryKey
  )
}

function canSign(keyPair) {
  return !!(keyPair && keyPair.secretKey)
}

// hypercore writes through its session state's write batch, which asserts that the state
// is not a snapshot: the same nameless AssertionError for every write on a snapshot
function checkWritableState(session) {
  if (session.snapshotted) throw new AssertionError()
}

// null: the core signs with its own key pair; else what appendSigned/truncateSigned take
function signOptions(cs, keyPair, signature) {
  if (signature) return { signature: encodings.toBuffer(signature) }
  if (!keyPair || keyPair === cs.keyPair) return null
  if (cs.keyPair && cs.keyPair.secretKey && keyPair.publicKey && cs.keyPair.publicKey.equals(keyPair.publicKey)) return null
  return {
    keyPair: { publicKey: encodings.toBuffer(keyPair.publicKey), secretKey: encodings.toBuffer(keyPair.secretKey) }
  }
}

// the engine's refusal of a key pair or signature, as hypercore words it: a key pair that
// is not a signer is a BAD_ARGUMENT, a bad signature an INVALID_SIGNATURE of this core
function signed(cs, fn) {
  try {
    return fn()
  } catch (err) {
    if (typeof err.code !== 'string' || !err.message.startsWith(err.code + ': ')) throw err
    const text = err.message.slice(err.code.length + 2)
    const dkey = err.code === 'BAD_ARGUMENT' ? null : cs.discoveryKey
    throw new HypercoreError(text, err.code, signed, dkey)
  }
}

// a compat core stored without a manifest gets one with its first signed write
function refreshManifest(cs) {
  if (cs.manifest === null) cs.refresh(cs.native.coreInfo(cs.handle))
}

// a block of a snapshot of a named or atomic state: what its storage snapshot holds, else
// (a sparse core's block that arrived since) the live core's, below the compat length
function snapshotStateGet(session, snap, state, index) {
  const cs = session.core
  const block = state.native.stateGet(state.handle, index)
  if (block !== null || index >= snap.compat) return block
  return cs.native.get(cs.handle, index)
}

function snapshotError(session, index) {
  return SNAPSHOT_NOT_AVAILABLE(
    `snapshot at index ${index} not available (max compat length ${session._snapshot.compat})`,
    session.discoveryKey
  )
}

function userDataValue(value) {
  if (value === null || value === undefined) return null
  if (typeof value === 'string') return Buffer.from(value)
  if (value instanceof Uint8Array) return encodings.toBuffer(value)
  throw BAD_ARGUMENT('User data value must be a Buffer, a string or null')
}

function byteLength(buffers) {
  let n = 0
  for (let i = 0; i < buffers.length; i++) n += buffers[i].byteLength
  return n
}

function isIndex(n) {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0
}


// The default state grew by an append: its sessions and peers hear it.
function appended(cs, st) {
  cs.onappend(st)
  cs.root._pumpLocal()
  return { length: st.length, byteLength: st.byteLength }
}

// As in hypercore, where each append waits for its storage write: an append or truncation
// called while this append ran (append() awaits its own work, so a loop of unawaited
// appends calls the next before this one is done) goes once this append's callers have
// run, a macrotask later. So `append(x).then(() => core.length)` or
// `.then(() => replicator.push(i))` sees this append's length, not that of appends called
// after it (hypercore's "push and pull concurrently" pushed block 20 with an upgrade to
// length 30). An append awaited before the next is called waits for nothing.
function letNextAppend(place) {
  if (place.followed()) setImmediate(place.done)
  else place.done()
}

// A place in the order of a core's appends and truncations (see append()), or null for a
// session whose core is not open yet or that has a state of its own (named, atomic,
// snapshot): those keep their own order.
function inOrder(session) {
  const cs = session.core
  if (cs === null || session._state !== null || session._snapshot !== null) return null
  return takePlace(cs, '_ops')
}

// A block as stored: `padding` bytes (for the encryption header), then the encoded value.
function encodeBlock(enc, value, padding) {
  const b = encodings.encode(enc, value)
  if (padding === 0) return b
  const out = Buffer.allocUnsafe(padding + b.byteLength)
  out.set(b, padding)
  return out
}

function noop() {}

Hypercore.MAX_SUGGESTED_BLOCK_SIZE = MAX_SUGGESTED_BLOCK_SIZE
Hypercore.Info = Info

module.exports = Hypercore

function isStore(s) {
  return typeof s === 'object' && s !== null && typeof s._openCore === 'function'
}

function isPlainOptions(o) {
  return typeof o === 'object' && o !== null && !Buffer.isBuffer(o) && !isStore(o)
}
