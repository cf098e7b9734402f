'use strict'

const { EventEmitter } = require('events')
const Hypercore = require('./lib/hypercore')
const CoreState = require('./lib/core-state')
const { ListStream } = require('./lib/streams')
const GroupNotifyHandle = require('./lib/notify')
const Storage = require('./lib/storage')
const { CoreList, SessionList } = require('./lib/core-view')
const { ReplicationStream, Replication, attachSecretStream, isSecretStream } = require('./lib/replication')
const { toBuffer } = require('./lib/encodings')
const loopBudget = require('./lib/loop-budget')
const { ASSERTION, BAD_ARGUMENT, SESSION_CLOSED, STORAGE_EMPTY, z32Decode } = require('./lib/errors')

const binding = require('./lib/native.js')
const { manifestInput } = require('./lib/manifest')
const { encryptionOption } = require('./lib/encryption')

const DEFAULT_NAMESPACE = Buffer.alloc(32) // 32 zero bytes, as corestore

const LINGER_TICK_MS = 2000
const LINGER_STRIKES = 4

class Corestore extends EventEmitter {
  constructor(storage, opts = {}) {
    super()

    this.root = opts.root || null
    this.opening = null
    this.closing = null
    this.opened = false
    this.closed = false

    this.storage = null // set below, once the directory is checked
    this.corestores = this.root ? this.root.corestores : new Set()
    this.readOnly = opts.writable === false || !!opts.readOnly
    this._allowBackup = !!opts.allowBackup // open a copied store without its device file (hypercore-storage)
    this.globalCache = this.root ? this.root.globalCache : opts.globalCache || null
    this.primaryKey = this.root ? this.root.primaryKey : opts.primaryKey || null
    this.ns = opts.namespace ? toBuffer(opts.namespace) : DEFAULT_NAMESPACE
    this.manifestVersion = opts.manifestVersion || 1
    this.shouldSuspend = opts.suspend !== false
    this.active = opts.active !== false
    this.watchers = null
    this.watchIndex = -1

    this.native = null // the NativeStore, on the root only
    this._nativeClosed = false
    this._root = this.root || this
    this._lists = new Map() // CoreState -> this store's sessions of that core
    this._findingCount = 0 // findingPeers() calls on this store not yet done
    this._cores = this.root ? null : new Map() // handle -> CoreState, on the root only
    // on the root: cores whose last strong session closed. As corestore's, they stay open
    // (replicating, in store.cores, taken again by the next get) for 6-8 s, then close.
    this._lingering = this.root ? null : new Set()
    this._lingerTimer = null
    this._states = this.root ? null : new Map() // state handle -> named/atomic SessionState
    this._replication = this.root ? null : new Replication()
    this._idleWaiters = null // db.idle() callers waiting for the replication worker
    this._workerPoll = false // a poll of the replication worker waits for the check phase
    this._pumped = 0 // on the root: engine outputs routed so far (see _stateFor)
    this._eventState = null // on the root: the state of the engine event being routed
    this._offThreadEngine = null // on the root: see _offThread
    this._watching = this.root ? this.root._watching : [] // stores with watchers
    this._groupNotifiers = this.root ? this.root._groupNotifiers : new Map() // topic hex -> handles
    this.cores = this.root ? this.root.cores : new CoreList(this) // open cores by discovery key
    this.sessions = new SessionList(this) // this store's sessions

    if (opts.primaryKey && !this.root && !opts.unsafe) {
      throw ASSERTION(
        'Passing the primary key is unsafe unless you know what you are doing. Set unsafe: true to acknowledge that'
      )
    }
    if (opts.primaryKey && !this.root && !isKey(opts.primaryKey)) {
      throw BAD_ARGUMENT('primaryKey must be a 32-byte Buffer')
    }
    if (opts.namespace && !isKey(opts.namespace)) {
      throw BAD_ARGUMENT('namespace must be a 32-byte Buffer')
    }
    if (!this.root && typeof storage !== 'string') {
      throw BAD_ARGUMENT('corestore-native needs a storage directory path')
    }
    this.storage = this.root
      ? this.root.storage
      : new Storage(this, storage, { readOnly: this.readOnly, treeCache: opts.treeCache })

    this.ready().catch(noop)
  }

  // ---- lifecycle (ready-resource semantics) ----

  ready() {
    if (this.opening !== null) return this.opening
    this.opening = this._openResource()
    return this.opening
  }

  async _openResource() {
    if (this.closing !== null) return
    try {
      await this._open()
    } catch (err) {
      this.close().catch(noop)
      throw err
    }
    this.opened = true
    this.emit('ready')
  }

  // the root opens its NativeStore synchronously (ready() runs in the constructor)
  async _open() {
    if (this.root !== null) {
      this.corestores.add(this)
      if (this.root.opened === false) await this.root.ready()
      this.primaryKey = this.root.primaryKey
      return
    }

    let native
    try {
      native = new binding.NativeStore(this.storage.path, {
        primaryKey: this.primaryKey ? toBuffer(this.primaryKey) : undefined,
        readOnly: this.readOnly,
        allowBackup: this._allowBackup
      })
    } catch (err) {
      if (/Another corestore is stored here/.test(err.message)) {
        throw new Error('Another corestore is stored here')
      }
      throw err
    }

    const primaryKey = native.primaryKey
    if (this.primaryKey !== null && !primaryKey.equals(this.primaryKey)) {
      native.close()
      throw new Error('Another corestore is stored here')
    }

    this.native = native
    this.primaryKey = primaryKey
    // what peers send is processed on a thread of the store's own (docs/DECISIONS.md §23);
    // CORESTORE_NATIVE_REPLICATION_THREAD=0 processes it in the call that receives it
    if (process.env.CORESTORE_NATIVE_REPLICATION_THREAD !== '0') native.replicationWorker(() => this._onworker())
    // corestore opens its storage (RocksDB) on a thread: a store is never ready before a
    // macrotask. Its sessions bind at once (key known), and are ready once it is: code that
    // awaits something and then listens for 'ready' or reads a length sees them opening.
    await new Promise(setImmediate)
  }

  // The replication worker has output or progress for us (src/napi/worker.rs). The worker
  // hears that we took it only once we handled it (replicationPolled): node calls a
  // threadsafe function again at once when it was called while running, up to 1000 times in
  // one turn, and a worker told first called it while we pumped, so timers waited for up to
  // 60 ms. What it made meanwhile is taken in the check phase (docs/DECISIONS.md §62).
  _onworker() {
    if (this._workerPoll) return // a poll in the check phase takes it
    if (loopBudget.spent()) this._pollNext()
    else this._pollWorker()
  }

  _pollNext() {
    this._workerPoll = true
    loopBudget.next(() => {
      this._workerPoll = false
      this._pollWorker()
    })
  }

  _pollWorker() {
    if (this.native === null || this._nativeClosed) return
    const out = this.native.replicationTake()
    try {
      this._pump(out)
      if (this._idleWaiters !== null && !this._replication.busy) this._settleIdle()
    } catch (err) {
      // an application's listener threw: the streams this output came from end, not the
      // process (as when their input was processed in their own write)
      const sessions = new Set()
      for (const c of out.consumed) sessions.add(c.session)
      for (const e of out.events) if (typeof e.session === 'number') sessions.add(e.session)
      for (const session of sessions) {
        const t = this._replication.targets.get(session)
        if (t !== undefined) failTarget(t, err)
      }
    }
    if (this.native === null || this._nativeClosed || !this.native.replicationPolled()) return
    this._pollNext()
  }

  // root only. hypercore-storage's `db.idle()`: resolves once the engine has processed
  // (verified, stored, answered) what peers sent so far
  _whenIdle() {
    if (this.native === null || this._nativeClosed || !this._replication.busy) return Promise.resolve()
    if (this._idleWaiters === null) this._idleWaiters = []
    return new Promise((resolve) => this._idleWaiters.push(resolve))
  }

  _settleIdle() {
    const waiters = this._idleWaiters
    this._idleWaiters = null
    for (const resolve of waiters) resolve()
  }

  close() {
    if (this.closing !== null) return this.closing
    this.closing = this._closeResource()
    return this.closing
  }

  async _closeResource() {
    try {
      if (this.opened === false && this.opening !== null) await this.opening
    } catch {
      // open errors are reported by ready()
    }
    if (this.opened === true || this.opening === null) await this._close()
    this.closed = true
    this.emit('close')
  }

  async _close() {
    if (this._findingCount > 0) {
      this._findingCount = 0
      this._eachSession((cs) => cs.foundPeers(1))
    }
    const closing = []
    for (const list of [...this._lists.values()]) {
      for (const s of list.slice()) closing.push(s.close())
    }

    if (this.watchers !== null) {
      this._unwatchStore()
      this.watchers = null
    }

    if (this.root !== null) {
      await Promise.all(closing)
      this.corestores.delete(this)
      return
    }

    for (const store of this.corestores) closing.push(store.close())
    await Promise.all(closing)

    this._stopLinger()
    // whatever is left: weak sessions and sessions made from them
    const left = []
    for (const cs of [...this._cores.values()]) left.push(cs.closeAll())
    await Promise.all(left)

    this._cores.clear()
    // as corestore: the cores' channels close (peers see them go), the streams stay open
    if (this._replication.active && this.native !== null) this._pump(this.native.replicationCloseCores())
    this._replication.destroyAll()
    if (this.native !== null) {
      this._nativeClosed = true
      this.native.close()
    }
    if (this._idleWaiters !== null) this._settleIdle()
  }

  _maybeClosed() {
    if (this.closing !== null || (this.root !== null && this.root.closing !== null)) {
      throw new Error('Corestore is closed')
    }
  }

  // ---- stores ----

  session(opts) {
    this._maybeClosed()
    return new Corestore(null, { manifestVersion: this.manifestVersion, ...opts, root: this._root })
  }

  namespace(name, opts) {
    // as corestore (b4a.from): other values throw Node's ERR_INVALID_ARG_TYPE
    const bytes = name instanceof Uint8Array ? toBuffer(name) : Buffer.from(name)
    return this.session({ ...opts, namespace: binding.deriveNamespace(this.ns, bytes) })
  }

  // ---- cores ----

  get(opts) {
    this._maybeClosed()

    if (Buffer.isBuffer(opts) || typeof opts === 'string') opts = { key: opts }
    if (!opts) opts = {}

    const sessionOpts = {
      valueEncoding: opts.valueEncoding || null,
      keyPair: opts.keyPair || null,
      wait: opts.wait !== false,
      timeout: opts.timeout || 0,
      exclusive: !!opts.exclusive,
      onwait: opts.onwait || null,
      writable: opts.writable === undefined && this.readOnly ? false : opts.writable,
      userData: opts.userData || null,
      encryption: opts.encryption || null,
      encryptionKey: opts.encryptionKey || null,
      isBlockKey: !!opts.isBlockKey,
      pushOnly: opts.pushOnly === true,
      allowPush: opts.allowPush === true,
      inflightRange: opts.inflightRange || null,
      active: opts.active !== false,
      globalCache: opts.globalCache || null
    }


    // corestore merges an async `preload` into the options before opening the core
    if (opts.preload) {
      const deferred = Promise.resolve(opts.preload).then((extra) => {
        const merged = { ...opts, ...extra, preload: null }
        // the preload's encryption options are the session's too (Autobase's views get
        // their encryption provider this way)
        return { ...this._nativeOpts(merged), encryption: encryptionOption(merged) }
      })
      deferred.catch(noop)
      return new Hypercore(this, { opts: sessionOpts, deferred })
    }

    const { native, check } = this._nativeOpts(opts)
    return new Hypercore(this, { opts: sessionOpts, native, check })
  }

  // get() options -> NativeOpenOptions (throws like corestore's _auth for undecodable input)
  _nativeOpts(opts) {
    const o = {}
    let check = false

    if (opts.key) o.key = decodeId(opts.key)
    if (opts.discoveryKey) o.discoveryKey = decodeId(opts.discoveryKey)
    if (opts.name) {
      o.name = typeof opts.name === 'string' ? opts.name : Buffer.from(opts.name).toString()
      o.namespace = this.ns
    }
    if (opts.keyPair) {
      if (!isKey(opts.keyPair.publicKey)) {
        throw BAD_ARGUMENT('keyPair.publicKey must be a 32-byte Buffer')
      }
      o.keyPair = {
        publicKey: toBuffer(opts.keyPair.publicKey),
        secretKey: opts.keyPair.secretKey ? toBuffer(opts.keyPair.secretKey) : undefined
      }
    }
    if (opts.manifest) o.manifest = manifestInput(opts.manifest)
    if (opts.name || opts.keyPair) o.manifestVersion = this.manifestVersion
    if (opts.createIfMissing === false) o.createIfMissing = false
    if (opts.group) {
      if (!isKey(opts.group)) throw BAD_ARGUMENT('group must be a 32-byte Buffer')
      o.group = toBuffer(opts.group)
    }

    if (!o.key && !o.name && !o.keyPair && !o.manifest) {
      if (!o.discoveryKey) throw new Error('Could not derive discovery from input')
      check = true
      o.createIfMissing = false
    }

    return { native: o, check }
  }

  async createKeyPair(name, ns = this.ns) {
    if (typeof name !== 'string' && !(name instanceof Uint8Array)) {
      throw BAD_ARGUMENT('name must be a string or a Buffer')
    }
    if (!isKey(ns)) throw BAD_ARGUMENT('namespace must be a 32-byte Buffer')
    if (this.opened === false) await this.ready()
    const n = typeof name === 'string' ? name : toBuffer(name).toString()
    const raw = this._root.native.createKeyPair(n, toBuffer(ns))
    return { publicKey: raw.subarray(0, 32), secretKey: raw.subarray(32) }
  }

  list(namespace) {
    if (namespace && !isKey(namespace)) throw BAD_ARGUMENT('namespace must be a 32-byte Buffer')
    return new ListStream(
      () => this.ready(),
      () => this._root.native.list(namespace || null)
    )
  }

  // ---- watchers: fn(session) for every core newly opened anywhere in this store tree ----

  watch(fn) {
    if (this.watchers === null) {
      this.watchers = new Set()
      this.watchIndex = this._watching.push(this) - 1
    }
    this.watchers.add(fn)
  }

  unwatch(fn) {
    if (this.watchers === null) return
    this.watchers.delete(fn)
    if (this.watchers.size === 0) {
      this.watchers = null
      this._unwatchStore()
    }
  }

  _unwatchStore() {
    if (this.watchIndex === -1) return
    const head = this._watching.pop()
    if (head !== this) this._watching[(head.watchIndex = this.watchIndex)] = head
    this.watchIndex = -1
  }

  // root: a core was opened that no session had open; watchers get the core (as corestore
  // hands them its internal core), to open weak sessions on: new Hypercore({ core, weak: true })
  _announce(cs) {
    const watching = this._watching
    if (watching.length === 0) return
    const core = cs.view()
    for (let i = watching.length - 1; i >= 0; i--) {
      const store = watching[i]
      if (store.watchers === null) continue
      for (const fn of store.watchers) fn(core)
    }
  }

  // ---- groups: cores that share a topic, indexed by their last head change ----

  notifyGroup(topic) {
    if (!(topic instanceof Uint8Array)) throw BAD_ARGUMENT('topic must be a Buffer')
    const id = Buffer.from(topic).toString('hex')
    let handles = this._groupNotifiers.get(id)
    if (handles === undefined) {
      handles = []
      this._groupNotifiers.set(id, handles)
    }
    const handle = new GroupNotifyHandle(this, topic)
    handle.index = handles.push(handle) - 1
    return handle
  }

  _removeGroupNotify(handle) {
    if (handle.index === -1) return
    const id = Buffer.from(handle._topic).toString('hex')
    const handles = this._groupNotifiers.get(id)
    if (handles === undefined || handles[handle.index] !== handle) return
    const last = handles.pop()
    if (last !== handle) handles[(last.index = handle.index)] = last
    handle.index = -1
    if (handles.length === 0) this._groupNotifiers.delete(id)
  }

  // a core of group `topic` changed its head (append, truncate, an upgrade from a peer)
  _onGroupActive(topic, update) {
    this.emit('group-active', topic, update)
    const handles = this._groupNotifiers.get(topic.toString('hex'))
    if (handles === undefined) return
    for (const handle of handles.slice()) handle.emit('update', update)
  }

  // root: a head change of an open core that no session has (a core replication opened)
  _passiveHeadChange(handle) {
    const topic = this.native.coreGroup(handle)
    if (topic === null) return
    const st = this.native.state(handle)
    const key = this.native.coreInfo(handle).ids.subarray(0, 32)
    this._onGroupActive(topic, { key, length: st.length, fork: st.fork })
  }

  // ---- misc ----

  // As corestore: every stored core in turn, { discoveryKey, key, audit } with hypercore's
  // audit of its tree, blocks and bitfield (repaired unless dryRun)
  async *audit({ dryRun = false } = {}) {
    if (this._root.opened === false) await this._root.ready()
    for (const discoveryKey of this._root.native.list(null)) {
      const session = this.get({ discoveryKey, active: false })
      await session.ready()
      try {
        const audit = await session.core.view().audit({ dryRun })
        yield { discoveryKey, key: session.key, audit }
      } finally {
        await session.close().catch(noop)
      }
    }
  }

  // As corestore: the stored identity of a core (key, discoveryKey, manifest, keyPair,
  // encryptionKey), or null when this store does not have it
  // As corestore: the core's data under a new key with no signers, whose prologue is the
  // core's signed head (length, tree hash), so it can never change; returns a session on it.
  // The original core's record now reads as the static core, as in corestore.
  async staticify(core, opts) {
    if (!this.opened) await this.ready()
    if (!core.opened) await core.ready()
    if (core.core === null) throw SESSION_CLOSED('Cannot staticify a closed session')
    let key
    try {
      key = this._root.native.staticify(core.core.handle)
    } catch (err) {
      if (err.code !== 'BAD_ARGUMENT') throw err
      throw new Error(err.message.replace(/^BAD_ARGUMENT: /, '')) // corestore's plain Error
    }
    const staticCore = this.get({ ...opts, key })
    await staticCore.ready()
    return staticCore
  }

  async getAuth(discoveryKey) {
    this._maybeClosed()
    if (this._root.opened === false) await this._root.ready()
    return this._root.native.getAuth(toBuffer(discoveryKey))
  }

  // As corestore: until the returned function is called, every session of this store (open
  // now or opened meanwhile) is finding peers, so its update() waits for them.
  findingPeers() {
    if (++this._findingCount === 1) this._eachSession((cs) => cs.findingPeers++)
    let done = false
    return () => {
      if (done || this._findingCount === 0) return
      done = true
      if (--this._findingCount === 0) this._eachSession((cs) => cs.foundPeers(1))
    }
  }

  // corestore's legacy findingPeers state: null when no findingPeers() call is pending
  get _findingPeers() {
    if (this._findingCount === 0) return null
    const pending = []
    for (const list of this._lists.values()) pending.push(...list)
    return { count: this._findingCount, pending, destroyed: this.closing !== null }
  }

  _eachSession(fn) {
    for (const [cs, list] of this._lists) {
      for (let i = 0; i < list.length; i++) fn(cs)
    }
  }

  // replicate(isInitiator) returns a duplex of the raw protocol bytes (Noise, secretstream,
  // protomux, hypercore messages); replicate(conn) runs over a Hyperswarm connection.
  replicate(isInitiator, opts) {
    this._maybeClosed()
    return this._root._replicate(isInitiator, false, opts).stream
  }

  // On the root. Returns the stream to hand back and the engine target it feeds; `scoped`
  // (core.replicate()) makes a new target carry only the cores added to it. A stream or
  // connection that already replicates for this store is reused, never attached twice.
  _replicate(isInitiator, scoped, opts) {
    // a Protomux (corestore and hypercore accept one): replicate over its stream
    if (isInitiator && isInitiator.isProtomux === true && isSecretStream(isInitiator.stream)) {
      return this._replicate(isInitiator.stream, scoped) // corestore returns the stream here
    }
    if (isInitiator instanceof ReplicationStream) {
      // another store's stream: this store's cores join it as a guest (lib/relay.js)
      if (isInitiator.root !== this) return { stream: isInitiator, target: isInitiator._guest(this, scoped) }
      if (!scoped) isInitiator._widen()
      return { stream: isInitiator, target: isInitiator }
    }
    // a protocol stream of the JS packages: its noise stream is the connection
    if (isInitiator && !isSecretStream(isInitiator) && isSecretStream(isInitiator.noiseStream)) {
      return { stream: isInitiator, target: this._replicate(isInitiator.noiseStream, scoped).target }
    }
    if (isSecretStream(isInitiator)) {
      const conn = isInitiator
      const known = this._replication.byConn.get(conn)
      if (known !== undefined) {
        if (!scoped) known._widen()
        return { stream: conn, target: known }
      }
      const target = attachSecretStream(this, conn, scoped)
      return { stream: conn, target }
    }
    if (typeof isInitiator === 'object' && isInitiator !== null) {
      throw BAD_ARGUMENT(
        'replicate() takes a boolean, a @hyperswarm/secret-stream connection, its Protomux, or a replication stream'
      )
    }
    const keyPair = (opts && opts.keyPair) || null // the stream's Noise identity, as hypercore's
    const stream = new ReplicationStream(this, !!isInitiator, scoped, keyPair)
    if (this.opened === false) {
      this.ready().then(() => stream._start(), (err) => stream.destroy(err))
    } else {
      stream._start()
    }
    return { stream, target: stream }
  }

  // Routes the replication engine's output: bytes to the streams, events to the cores.
  _pump(out) {
    const targets = this._replication.targets
    const pumped = ++this._pumped
    // Bytes and commands first: a stream told its input was consumed may take its next
    // chunk at once and, with the worker idle, have it processed in that call, whose own
    // pump must not send ahead of these (the peer's decryption fails on reordered frames).
    for (const s of out.sends) {
      const t = targets.get(s.session)
      if (t !== undefined) t._send(s.data)
    }
    if (out.commands) this._routeCommands(out.commands, targets)
    for (const c of out.consumed) {
      const t = targets.get(c.session)
      if (t !== undefined && t._consumed !== undefined) t._consumed(c.bytes)
    }
    for (const e of out.events) {
      switch (e.type) {
        case 'append':
        case 'download': {
          const cs = this._cores.get(e.handle)
          if (cs === undefined) {
            if (e.type === 'append') this._passiveHeadChange(e.handle)
            break
          }
          if (!cs.manifest) cs.refresh(this.native.coreInfo(e.handle)) // learned from the peer
          const st = this._stateFor(e, cs, pumped)
          if (e.type === 'append') {
            cs.onappend(st)
            if (cs._view !== null) cs._view._onpeerupdate(st)
          } else cs.ondownload(st, e.blocks, e.session)
          break
        }
        case 'upload': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.onupload(e.blocks, e.session)
          break
        }
        case 'block': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.onblock(e.data)
          break
        }
        case 'open': {
          // a stream finished its handshake: update() waiters look again, guests start
          const t = targets.get(e.session)
          if (t !== undefined && t._onopen !== undefined) t._onopen()
          for (const cs of this._cores.values()) cs.onsync()
          break
        }
        case 'relay': {
          const t = targets.get(e.session)
          if (t !== undefined && t._relay !== undefined) t._relay(e)
          break
        }
        case 'mux-open': {
          const t = targets.get(e.session)
          if (t !== undefined && t._muxOpen !== undefined) t._muxOpen(e)
          break
        }
        case 'truncate': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.ontruncate(this._stateFor(e, cs, pumped), e.index)
          else this._passiveHeadChange(e.handle)
          break
        }
        case 'extension': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.onextension(e.name, e.data, e.session)
          break
        }
        case 'sync': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.onsync()
          break
        }
        case 'verification-error': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.onverificationerror(replicationError(e), e.session)
          break
        }
        case 'conflict': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.onconflict(e.index, e.bytes)
          break
        }
        case 'manifest': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.onmanifest(this.native.coreInfo(e.handle))
          break
        }
        case 'remote-contiguous-length': {
          const cs = this._cores.get(e.handle)
          if (cs !== undefined) cs.onremotecontiguous(this._stateFor(e, cs, pumped), e.index)
          break
        }
        case 'core-open':
          this._onRemoteOpen(e.data)
          break
        case 'peer-add':
        case 'peer-remove': {
          const cs = this._cores.get(e.handle)
          const t = targets.get(e.session)
          // a stream that ended before its peer was announced (the worker's output comes
          // a turn later) is no peer: there is no stream left to reach it by
          if (t === undefined && e.type === 'peer-add') break
          if (cs !== undefined) {
            const key = e.remotePublicKey || (t && t.remotePublicKey) || null
            cs.onpeer(e.type === 'peer-add', e.session, key, t && peerStream(t))
          }
          break
        }
        case 'close': {
          const t = targets.get(e.session)
          targets.delete(e.session)
          if (t !== undefined) t._closed(e.code ? replicationError(e) : null)
          break
        }
      }
    }
  }

  // The engine for calls that settle on the thread pool (src/napi/append_task.rs).
  _offThread() {
    if (this._offThreadEngine === null) this._offThreadEngine = this.native.offThread()
    return this._offThreadEngine
  }

  // The engine's commands, each run of one session's to its target: a Hyperswarm
  // connection frames its channel messages itself (lib/mux-frames.js), a guest carries
  // them out one by one.
  _routeCommands({ meta, data }, targets) {
    const n = meta.byteLength / 16
    let i = 0
    let at = 0
    while (i < n) {
      const session = meta.readUInt32LE(16 * i)
      let j = i
      let end = at
      while (j < n && meta.readUInt32LE(16 * j) === session) end += meta.readUInt32LE(16 * j++ + 12)
      const t = targets.get(session)
      if (t !== undefined && t._commands !== undefined) t._commands(meta, data, i, j, at)
      i = j
      at = end
    }
  }

  // A core's state for an engine event of output number `pumped`: the state the event
  // carries (as of when the output was taken), unless the core changed here since then (a
  // listener of an earlier event appended): then it is read again (DECISIONS §29).
  _stateFor(e, cs, pumped) {
    // An output taken while another was being routed (a stream told its input was
    // consumed had its next chunk processed at once) carries newer states than the rest
    // of the one around it: once a newer output's state is applied, older events read the
    // engine's instead of putting theirs back.
    if (e.state && cs._localAt < pumped && cs._eventAt <= pumped) {
      cs._eventAt = pumped
      this._eventState = e.state
      return e.state
    }
    return this.native.state(e.handle)
  }

  // An atom's flush changed a parent state: its sessions hear it as hypercore's do
  // (a truncation when the atom dropped blocks it had, then an append).
  _onAtomFlushed(f) {
    const cs = this._cores.get(f.handle)
    if (cs === undefined) return
    if (f.state === undefined || f.state === null) {
      const st = this.native.state(f.handle)
      if (f.truncated && f.start < f.oldLength) {
        cs.ontruncate(st, f.start)
        if (f.appends === 0) return
      }
      cs.onappend(st)
      return
    }
    const state = this._states.get(f.state)
    if (state === undefined) return
    state.refresh()
    if (f.truncated && f.start < f.oldLength) {
      state.emit('truncate', f.start, state.fork)
      if (f.appends === 0) return
    }
    state.emit('append')
  }

  // After a local change (append, truncate, a core opened) while streams run.
  _pumpLocal() {
    if (this._replication !== null && this._replication.active && this.native !== null) {
      this._pump(this.native.replicationPoll())
    }
  }

  async suspend({ log = noop } = {}) {
    if (!this.shouldSuspend) return
    if (this._root.opened === false) await this._root.ready()
    await log('Suspending db...')
    this._root.native.suspend()
    await log('Suspending db completed')
  }

  async resume() {
    if (this._root.opened === false) await this._root.ready()
    this._root.native.resume()
  }

  // ---- internal, used by sessions ----

  // root only: one native reference; the registry dedupes cores, so the handle may be known.
  // `store`: the store whose get() opens it, which emits its 'group-active' events.
  // `globalCache`: the get's option, the core's `globalCache` when this opens it (as
  // corestore), else the store's.
  _openCore(o, store = this, globalCache = null) {
    if (this.native === null || this._nativeClosed) throw new Error('Corestore is closed')
    let info
    try {
      info = this.native.openCore(o)
    } catch (err) {
      throw storageEmptyWithKey(err, o)
    }
    let cs = this._cores.get(info.handle)
    const opening = cs === undefined
    // as hypercore: a core opened in a group joins it; one already in another group is a
    // STORAGE_CONFLICT when it opens, and keeps its group when it was open already
    if (o.group && (opening || cs.group === null)) {
      try {
        this.native.setGroup(info.handle, o.group)
      } catch (err) {
        this.native.closeCore(info.handle)
        throw err
      }
    }
    if (opening) {
      cs = new CoreState(this, info, store, globalCache)
      if (o.group) cs.group = o.group // hypercore reports the caller's topic buffer itself
      this._cores.set(info.handle, cs)
    } else {
      cs.refresh(info)
      if (o.group && cs.group === null) cs.group = o.group
      // a lingering core taken again: its lingering reference goes (openCore added one)
      if (this._lingering.delete(cs)) this.native.closeCore(info.handle)
    }
    this._pumpLocal()
    return cs
  }

  // root only. The engine opened a stored core for a peer's channel (corestore's
  // _attachMaybe): as corestore, the store lists it (store.cores) and its watchers get it,
  // like any core newly opened. The store takes a reference of its own; with no session on
  // it the core lingers, and goes once no peer has it (_lingerCycle).
  _onRemoteOpen(discoveryKey) {
    if (this.closing !== null || this.native === null || this._nativeClosed) return
    let info
    try {
      info = this.native.openCore({ discoveryKey, createIfMissing: false })
    } catch {
      return // gone from disk since
    }
    let cs = this._cores.get(info.handle)
    if (cs === undefined) {
      cs = new CoreState(this, info)
      this._cores.set(info.handle, cs)
    } else {
      cs.refresh(info)
      // a lingering core: its lingering reference goes, ours takes its place
      if (this._lingering.delete(cs)) this.native.closeCore(info.handle)
    }
    if (cs.strong > 0 || !this._lingerCore(cs)) this.native.closeCore(info.handle)
    if (cs.fresh) {
      cs.fresh = false
      this._announce(cs)
    }
  }

  // root only. The last strong session of `cs` closed: it lingers, keeping that session's
  // native reference (corestore's gc: a strike now, one every 2 s, closed at the fourth).
  // False when the store is closing: the caller releases the reference.
  _lingerCore(cs) {
    if (this.closing !== null || this.native === null || this._nativeClosed) return false
    cs.lingerStrikes = 1
    this._lingering.add(cs)
    if (this._lingerTimer === null) {
      this._lingerTimer = setInterval(() => this._lingerCycle(), LINGER_TICK_MS)
      this._lingerTimer.unref()
    }
    return true
  }

  _lingerCycle() {
    for (const cs of this._lingering) {
      // as corestore's: a core is not idle while peers replicate it
      if (cs.peers.length > 0) {
        cs.lingerStrikes = 1
        continue
      }
      if (++cs.lingerStrikes < LINGER_STRIKES) continue
      this._lingering.delete(cs)
      cs._gc()
      this._closeCore(cs.handle)
    }
    if (this._lingering.size === 0) this._stopLinger()
  }

  // the timer stops; on close, the lingering cores go with the store's native references
  _stopLinger() {
    if (this._lingerTimer !== null) clearInterval(this._lingerTimer)
    this._lingerTimer = null
    if (this.closing === null) return
    for (const cs of this._lingering) cs._gc()
    this._lingering.clear()
  }

  _closeCore(handle) {
    if (this.native === null || this._nativeClosed) return
    try {
      this.native.closeCore(handle)
    } catch {
      // already released (store closed)
    }
  }

  _sessionList(cs) {
    let list = this._lists.get(cs)
    if (list === undefined) {
      list = []
      this._lists.set(cs, list)
    }
    return list
  }

  _gcSessionList(cs, list) {
    if (this._lists.get(cs) === list) this._lists.delete(cs)
  }
}

function isKey(b) {
  return b instanceof Uint8Array && b.byteLength === 32
}

// hypercore-id-encoding's decode: a 32-byte buffer, a z32 or hex string, or pear://<z32>
function decodeId(id) {
  if (id instanceof Uint8Array) {
    if (id.byteLength !== 32) throw new Error('ID must be 32-bytes long')
    return toBuffer(id)
  }
  if (typeof id === 'string') {
    if (id.startsWith('pear://')) id = id.slice(7).split('/')[0]
    if (id.length === 52) return z32Decode(id)
    if (id.length === 64) {
      const buf = Buffer.from(id, 'hex')
      if (buf.byteLength === 32) return buf
    }
  }
  throw new Error('Invalid Hypercore key')
}

// hypercore names the core in STORAGE_EMPTY when it knows the key
function storageEmptyWithKey(err, o) {
  if (err.code !== 'STORAGE_EMPTY' || err.message.includes('(discovery key:')) return err
  const dk = o.key ? binding.discoveryKey(o.key) : o.discoveryKey || null
  return dk ? STORAGE_EMPTY('No Hypercore is stored here', dk) : err
}

function noop() {}

// ends a replication target (a raw stream, a Hyperswarm connection, a guest on a host's
// stream) with an error
function failTarget(t, err) {
  if (typeof t.destroy === 'function') t.destroy(err)
  else if (t.conn) t.conn.destroy(err)
  else if (t.host) t.host.destroy(err)
}

module.exports = Corestore
module.exports.default = Corestore
module.exports.GroupNotifyHandle = GroupNotifyHandle
module.exports.Hypercore = Hypercore

function replicationError(e) {
  const err = new Error(e.message || e.code)
  err.code = e.code
  return err
}

// hypercore's peer.stream: the noise stream of the connection (a secret-stream is its own;
// a raw replication stream's is its NoiseView, also for guest stores on it)
function peerStream(t) {
  const s = t.conn || t
  return s.noiseStream || s
}
