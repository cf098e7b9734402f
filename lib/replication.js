'use strict'
// Connects the native replication engine to JS streams. The engine is sans-IO: each call
// returns the bytes to write per stream and the events for the cores; `pump` routes both.

const { Duplex } = require('streamx')
const Protomux = require('protomux')
const { addCore, widen, addQueued, packChannelEvents, BATCH, REMOTE_OPEN, OPENED, MESSAGE, CLOSE } = require('./targets')
const { receiver } = require('./mux-receive')
const { sendCommands } = require('./mux-frames')
const { joinAsGuest, startGuests, relayEvent, endGuests } = require('./relay')
const { NoiseView } = require('./engine-mux')
const loopBudget = require('./loop-budget')

// replicate(true|false): a duplex carrying the raw Noise + secretstream bytes, which the
// engine encrypts and decrypts itself.
class ReplicationStream extends Duplex {
  constructor(root, isInitiator, scoped = false, keyPair = null) {
    // Input is held only once this much output waits unread: far above what an honest
    // peer leaves queued (two streams piped to each other must never both stop), low
    // enough to bound what a peer that stops reading can make us hold.
    super({ mapWritable: toBuffer, highWaterMark: OUTPUT_HIGH_WATER_MARK })
    this.root = root
    this.isInitiator = isInitiator
    this.scoped = scoped // core.replicate(): only the cores added with _addCore
    this.keyPair = keyPair // replicate(isInitiator, { keyPair }): our Noise identity
    this.session = 0
    this._adding = [] // cores added before the engine session started
    // hypercore's stream.noiseStream: the handshake's facts and, as its userData, the
    // stream's Protomux for JavaScript (lib/engine-mux.js)
    this.noiseStream = new NoiseView(this)
    this.userData = null
    this._muxInUse = false // the engine offers other protocols' channels to that mux
    this._congested = false
    this._unconsumed = 0 // bytes handed to the replication worker, not yet processed
    this._resume = null // the write callback held while we stop taking input
    this._keepAlive = null
    this._sent = false
    this._burst = 0 // when this turn's writes began (0: none since the event loop last turned)
    this._endBurst = () => {
      this._burst = 0
    }
    this._lastKeys = null // the Noise keys, kept for after the stream ended
    this._guests = null // other stores replicating on this stream: their root -> Guest
    this._relays = new Map() // our relay channel -> the Guest it carries
    // As hypercore's raw protocol stream (secret-stream listens on it): an error here, such
    // as the PREMATURE_CLOSE of a pipe partner that was destroyed, never goes uncaught.
    this.on('error', noop)
  }

  // The engine session starts as soon as the store is open, so cores see a peer coming
  // (update({ wait: true }) waits for it) before the stream is first read or written.
  _start() {
    if (this.session !== 0 || this.destroying || this.root.native === null) return
    const kp = this.keyPair
    let out
    try {
      out = this.root.native.replicationOpen(
        this.isInitiator,
        undefined,
        this.scoped,
        kp ? { publicKey: kp.publicKey, secretKey: kp.secretKey } : undefined
      )
    } catch (err) {
      this.destroy(err) // a bad keyPair
      return
    }
    this.session = out.session
    this.root._replication.add(this.session, this)
    if (this._muxInUse) this.root.native.replicationUseMux(this.session)
    this.root._pump(out)
    addQueued(this)
    this._keepAlive = setInterval(keepAlive, KEEP_ALIVE_MS, this)
    this._keepAlive.unref()
  }

  _open(cb) {
    this._start()
    cb(null)
  }

  // hypercore's stream.publicKey / remotePublicKey: our Noise key (the keyPair given, or
  // one the engine made), the peer's once the handshake is done
  get publicKey() {
    if (this.keyPair) return this.keyPair.publicKey
    const k = this._keys()
    return k === null ? null : k.publicKey
  }

  get remotePublicKey() {
    const k = this._keys()
    return k === null ? null : k.remotePublicKey || null
  }

  _keys() {
    if (this.session !== 0) this._lastKeys = this.root.native.replicationKeys(this.session)
    return this._lastKeys
  }

  // core.replicate(stream): the core replicates here too
  _addCore(handle) {
    addCore(this, handle)
  }

  // store.replicate(stream): every core replicates here
  _widen() {
    widen(this)
  }

  // another store's core.replicate(stream) / store.replicate(stream): lib/relay.js
  _guest(root, scoped) {
    return joinAsGuest(this, root, scoped)
  }

  _onopen() {
    startGuests(this)
    this.noiseStream._onopen()
  }

  _relay(e) {
    relayEvent(this, e)
  }

  // ---- for the stream's Protomux (lib/engine-mux.js) ----

  _useMux() {
    this._muxInUse = true
    if (this.session !== 0) this.root.native.replicationUseMux(this.session)
  }

  // whether a core of this stream's stores (ours, then the guests') has its channel open
  // on both sides here
  _hasHypercoreChannel(discoveryKey) {
    if (hasChannel(this.root, this.session, discoveryKey)) return true
    if (this._guests === null) return false
    for (const g of this._guests.values()) if (hasChannel(g.root, g.session, discoveryKey)) return true
    return false
  }

  // the peer opened a channel of another protocol
  _muxOpen(e) {
    const mux = this.noiseStream._mux
    if (mux !== null) mux._offer(e.channel, e.name, e.data || null)
    else this._relayReject(e.channel)
  }

  // a channel of the mux: the engine's id for it, null if the stream is gone
  _relayOpen(protocol, id, handshake) {
    if (this.session === 0) return null
    const out = this.root.native.replicationRelayOpenProtocol(this.session, protocol, id || undefined, handshake)
    this.root._pump(out)
    return out.channel === undefined || out.channel === null ? null : out.channel
  }

  _relaySend(channel, type, data) {
    if (this.session !== 0) this.root._pump(this.root.native.replicationRelaySend(this.session, channel, type, data))
  }

  _relayClose(channel) {
    this._relays.delete(channel)
    if (this.session !== 0) this.root._pump(this.root.native.replicationRelayClose(this.session, channel))
  }

  _relayReject(remoteId) {
    if (this.session !== 0) this.root._pump(this.root.native.replicationRelayReject(this.session, remoteId))
  }

  // The replication worker processes what we receive (src/napi/worker.rs). While what we
  // send is not being read, or the worker has much of our input still to process, stop
  // taking input: the peer's requests are what make us send, so this bounds what a slow or
  // hostile reader (or a fast sender) can make us buffer.
  _write(data, cb) {
    if (this.session !== 0) {
      const out = this.root.native.replicationRecv(this.session, data)
      if (out === null) this._unconsumed += data.byteLength
      else this.root._pump(out) // no worker: processed in that call
    }
    if (this._congested || this._unconsumed > INPUT_HIGH_WATER_MARK) this._resume = cb
    else if (this._burst === 0) {
      this._burst = Date.now()
      setImmediate(this._endBurst)
      cb(null)
    } else if (Date.now() - this._burst < YIELD_MS) cb(null)
    else {
      // Two of these streams piped to each other can hand data back and forth without
      // end; after YIELD_MS of that, the event loop (timers, I/O, the application) gets a
      // turn. Counted from this turn's first write, not from the last yield: a write after
      // a quiet spell takes its cb at once, so what the peer sent in the same turn (two
      // extension messages) is processed in that turn, as in JS.
      setImmediate(cb, null)
    }
  }

  // input handed to the worker that it has not processed yet
  get _busy() {
    return this._unconsumed > 0
  }

  // the worker processed this much of our input
  _consumed(bytes) {
    this._unconsumed -= bytes
    this._continue()
  }

  _read(cb) {
    this._congested = false
    this._continue()
    cb(null)
  }

  _continue() {
    if (this._resume === null || this._congested || this._unconsumed > INPUT_HIGH_WATER_MARK) return
    this._release()
  }

  // lets the held write finish: streamx destroys a stream only once its write is done, and
  // an ended engine session reports no more progress
  _release() {
    const resume = this._resume
    this._resume = null
    if (resume !== null) resume(null)
  }

  _predestroy() {
    this._release()
  }

  _final(cb) {
    this._end()
    cb(null)
  }

  _destroy(cb) {
    this._end()
    cb(null)
  }

  _end() {
    if (this._keepAlive !== null) clearInterval(this._keepAlive)
    this._keepAlive = null
    this.noiseStream._onclose()
    if (this.session === 0) return endGuests(this)
    const session = this.session
    this.session = 0
    endGuests(this)
    if (this.root._replication.remove(session)) {
      this.root._pump(this.root.native.replicationClose(session))
    }
    this.push(null)
  }

  // engine output for this stream
  _send(data) {
    this._sent = true
    if (this.push(data) === false) this._congested = true
  }

  // `detached`: the store closed. As corestore, the stream stays open (its cores are gone)
  // until the application ends it; whatever the peer sends meanwhile is dropped.
  _closed(err, detached = false) {
    this.session = 0
    this._release()
    endGuests(this)
    this.noiseStream._onclose()
    if (err) this.destroy(err)
    else if (!detached) this.push(null)
  }
}

// A Hyperswarm connection (@hyperswarm/secret-stream): Noise runs in JS, and replication
// runs on the connection's Protomux (Protomux.from shares the one the application may
// already have on conn.userData, or creates the one it will find there later). Each
// hypercore channel's events go to the engine; the engine's commands come back here.
function attachSecretStream(root, conn, scoped) {
  const mux = Protomux.from(conn)
  const channels = new Map() // engine channel id -> protomux Channel
  // our channels among the Protomux's, whose received frames may come whole (§71)
  const owners = receiver(mux)
  const sink = { types: MESSAGE_TYPES, take: (frame, rows) => batch(frame, rows) }
  const target = {
    session: 0,
    conn, // what a Peer's `stream` is
    root,
    scoped,
    _adding: [],
    _addCore(handle) {
      addCore(target, handle)
    },
    _widen() {
      widen(target)
      pairAll()
    },
    get remotePublicKey() {
      return conn.remotePublicKey || null
    },
    _send() {},
    _commands(meta, data, from, to, at) {
      sendCommands(mux, conn, channels, openChannel, meta, data, from, to, at)
    },
    // input handed to the worker that it has not processed yet
    get _busy() {
      return handed > processed || queued.length > 0
    },
    // the worker processed this much of what we handed it: below the mark, read again
    _consumed(bytes) {
      processed += bytes
      // the engine has answered these opens (its commands run before the promises settle)
      while (answering.length > 0 && answering[0].mark <= processed) answering.shift().resolve()
      if (paused && handed - processed <= INPUT_HIGH_WATER_MARK) {
        paused = false
        if (!yielding) conn.resume()
      }
    },
    _closed(err) {
      ended = true // no session starts again: a later _widen() pairs nothing
      target.session = 0
      settleOpens()
      for (const ch of channels.values()) ch.close()
      channels.clear()
      unpairAll()
      if (err) conn.destroy(err)
    }
  }

  // Protomux raises the events of one received chunk one by one; they reach the engine
  // together once the chunk is done, so its blocks are verified and written as one batch.
  let queued = [] // kind, channel, type, data, ...
  let paused = false // conn, while the worker has much of its input still to process
  // Received since the last yield: past TURN_BYTES, conn pauses until the event loop's
  // check phase. A connection that flows again hands over all its peer sent meanwhile (up
  // to the 4 MB of blocks a channel asks for at once), decrypted and parsed in one turn
  // while timers wait (docs/DECISIONS.md §63).
  let turnBytes = 0
  let yielding = false
  const endTurn = () => {
    yielding = false
    turnBytes = 0
    if (!paused) conn.resume()
  }
  // Protomux rejects a peer's channel unless it is paired once the pair handler's promise
  // settles; the engine pairs it when the worker has processed the open. So each handler
  // call waits for that: `opening` until handed to the worker, then `answering` until the
  // worker processed input up to `mark`.
  let handed = 0
  let processed = 0
  let opening = []
  const answering = [] // { mark, resolve }
  const settleOpens = () => {
    for (const resolve of opening) resolve()
    for (const a of answering) a.resolve()
    opening = []
    answering.length = 0
  }
  const event = (kind, channel, type, data) => {
    if (target.session === 0) return
    if (queued.length === 0) queueMicrotask(deliver)
    queued.push(kind, channel, type, data)
    if (data) received(data.byteLength)
  }
  // a received frame whose messages are all for our channels (lib/mux-receive.js)
  const batch = (frame, rows) => {
    if (target.session === 0) return
    if (queued.length === 0) queueMicrotask(deliver)
    queued.push(BATCH, 0, rows, frame)
    received(rows[rows.length - 1] - rows[2])
  }
  const received = (bytes) => {
    if ((turnBytes += bytes) > TURN_BYTES && !yielding) {
      yielding = true
      conn.pause()
      loopBudget.next(endTurn)
    }
  }
  const deliver = () => {
    const q = queued
    queued = []
    if (target.session === 0) return settleOpens()
    if (q.length === 0) return
    const { meta, data } = packChannelEvents(q)
    mux.cork()
    try {
      const out = root.native.replicationChannelEvents(target.session, meta, data)
      if (out !== null) {
        root._pump(out) // no worker: processed in that call
        settleOpens()
      } else {
        handed += data.byteLength
        for (const resolve of opening) answering.push({ mark: handed, resolve })
        opening = []
        if (!paused && handed - processed > INPUT_HIGH_WATER_MARK) {
          paused = true
          conn.pause()
        }
      }
    } catch (err) {
      // outside protomux's call stack now: what throws (an application's event listener)
      // ends this connection instead of the process
      conn.destroy(err)
    } finally {
      mux.uncork()
    }
  }

  function openChannel({ channel, discoveryKey, data }) {
    const messages = []
    for (let type = 0; type < MESSAGE_TYPES; type++) {
      messages.push({ encoding: raw, onmessage: (m) => event(MESSAGE, channel, type, m) })
    }
    const ch = mux.createChannel({
      protocol: PROTOCOL,
      aliases: ALIASES,
      id: discoveryKey,
      handshake: raw,
      messages,
      onopen: (handshake) => event(OPENED, channel, 0, handshake),
      // every channel closes here, ours or Protomux's doing (its stream's close closes them)
      onclose: () => {
        owners.delete(ch)
        if (channels.get(channel) !== ch) return
        channels.delete(channel)
        event(CLOSE, channel, 0, EMPTY)
      }
    })
    if (ch === null) return // this core already has a channel on this connection
    channels.set(channel, ch)
    owners.set(ch, { sink, channel })
    ch.open(data)
  }

  // The peer opened a channel for a core we have not: the engine opens it if stored. Only a
  // store's target claims every discovery key; hypercore's core.replicate() (scoped) opens
  // its own channels and leaves the rest to whoever else pairs on this Protomux (the
  // ondiscoverykey of createProtocolStream, another store). As in JS corestore, the pairing
  // starts with replicate(), before the engine session does: an open that comes first waits
  // in `early` for it (start() may wait a turn of the event loop).
  let paired = false
  let early = [] // { id, resolve }
  function pairAll() {
    if (paired || target.scoped || ended) return
    paired = true
    mux.pair({ protocol: PROTOCOL }, (id) => {
      if (ended) return
      return new Promise((resolve) => (target.session === 0 ? early.push({ id, resolve }) : remoteOpen(id, resolve)))
    })
  }
  // the engine hears of the peer's open; the pair handler settles once it has answered
  function remoteOpen(id, resolve) {
    event(REMOTE_OPEN, 0, 0, id)
    opening.push(resolve)
  }
  function unpairAll() {
    for (const { resolve } of early) resolve()
    early = []
    if (!paired) return
    paired = false
    mux.unpair({ protocol: PROTOCOL })
  }

  let pending = true // counted until the engine session starts or the connection ends
  root._replication.pending++
  const settle = () => {
    if (!pending) return
    pending = false
    root._replication.pending--
  }

  const start = () => {
    if (root.opened === false && root.closing === null) {
      root.ready().then(start, (err) => conn.destroy(err))
      return
    }
    settle()
    if (target.session !== 0) return
    // no session after all: the opens that waited for one are refused now
    if (ended || conn.destroyed || root.closing !== null) return unpairAll()
    mux.cork()
    const out = root.native.replicationOpen(conn.isInitiator, conn.handshakeHash, target.scoped)
    target.session = out.session
    root._replication.add(target.session, target)
    root._pump(out)
    addQueued(target)
    for (const { id, resolve } of early) remoteOpen(id, resolve)
    early = []
    mux.uncork()
  }
  // A handshake that completes in a turn whose replication work used its budget (both ends
  // of an in-process pair, whose messages pass as microtasks) starts the session after the
  // timers: the session's first output and the peer's answers made that turn 16-21 ms
  // (docs/DECISIONS.md §73). Not a scoped target's (core.replicate()): it has no pair
  // handler, so a peer's open that came before its channels would be refused.
  const begin = () => (!target.scoped && loopBudget.spent() ? setTimeout(start, 0) : start())
  root._replication.byConn.set(conn, target)
  let ended = false
  const end = () => {
    ended = true
    root._replication.byConn.delete(conn)
    settle()
    unpairAll()
    if (target.session === 0) return
    const session = target.session
    target.session = 0
    channels.clear()
    if (root._replication.remove(session)) root._pump(root.native.replicationClose(session))
  }
  conn.on('close', end)
  conn.on('error', noop)
  pairAll()
  loopBudget.spent() // the budget counts from here if this turn has not spent any yet
  if (conn.handshakeHash) begin()
  else conn.opened.then((ok) => ok !== false && begin(), noop)
  return target
}

const PROTOCOL = 'hypercore/alpha'
const ALIASES = ['hypercore']
const MESSAGE_TYPES = 10
const EMPTY = Buffer.alloc(0)

// Passes message bytes through protomux unchanged: the engine encodes and decodes them.
const raw = {
  preencode(state, b) {
    state.end += b.byteLength
  },
  encode(state, b) {
    state.buffer.set(b, state.start)
    state.start += b.byteLength
  },
  decode(state) {
    const b = state.buffer.subarray(state.start, state.end)
    state.start = state.end
    return b
  }
}

class Replication {
  constructor() {
    this.targets = new Map()
    this.byConn = new Map() // secret-stream connection -> its target
    this.pending = 0 // connections whose handshake has not finished yet
  }

  get active() {
    return this.targets.size > 0 || this.pending > 0
  }

  // some stream's input is still with the replication worker
  get busy() {
    for (const t of this.targets.values()) if (t._busy) return true
    return false
  }

  add(session, target) {
    this.targets.set(session, target)
  }

  remove(session) {
    return this.targets.delete(session)
  }

  destroyAll() {
    for (const t of [...this.targets.values()]) t._closed(null, true)
    this.targets.clear()
    this.byConn.clear()
  }
}

const OUTPUT_HIGH_WATER_MARK = 8 * 1024 * 1024
// Input handed to the worker and not yet processed: enough for it to always have the next
// chunk (a pipe's chunks are up to 64 KiB), little enough to bound memory.
const INPUT_HIGH_WATER_MARK = 1024 * 1024
const TURN_BYTES = 128 * 1024
const YIELD_MS = 10

// hypercore's protocol streams send an empty message after 5 s without traffic
const KEEP_ALIVE_MS = 5000

function keepAlive(stream) {
  if (stream._sent) {
    stream._sent = false
    return
  }
  if (stream.session !== 0) stream.root._pump(stream.root.native.replicationKeepAlive(stream.session))
}

function hasChannel(root, session, discoveryKey) {
  if (session === 0 || root.native === null) return false
  for (const cs of root._cores.values()) {
    if (cs.closed || !cs.discoveryKey.equals(discoveryKey)) continue
    return cs.native.replicationPeer(cs.handle, session) !== null
  }
  return false
}

function isSecretStream(s) {
  return typeof s === 'object' && s !== null && typeof s.pipe === 'function' && 'handshakeHash' in s
}

function toBuffer(data) {
  return typeof data === 'string' ? Buffer.from(data) : data
}

function noop() {}

module.exports = { ReplicationStream, Replication, attachSecretStream, isSecretStream }
