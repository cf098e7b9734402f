'use strict'
// A raw replication stream's Protomux, for JavaScript. On `store.replicate(true|false)` the
// Noise handshake, secretstream and Protomux run in the engine, where hypercore's channels
// stay. Applications and libraries reach the mux of a corestore stream the way hypercore
// gives it: `stream.noiseStream.userData` (Hypercore.getProtocolMuxer, protomux-wakeup,
// Autobase), or `Protomux.from(stream.noiseStream)`. That is an EngineMux: protomux's API,
// whose channels the engine's Protomux carries for it (relay channels, docs/DECISIONS.md
// §22). Encodings run here; framing, pairing and batching stay in the engine.

const { EventEmitter } = require('events')
const c = require('compact-encoding')
const b4a = require('b4a')

// relay event kinds (src/replication: Event::Relay)
const OPENED = 1
const MESSAGE = 2
const CLOSE = 3

const EMPTY = b4a.alloc(0)

// what getLastChannel gives for a hypercore channel of the engine that is open both sides
const OPENED_HYPERCORE_CHANNEL = {
  protocol: 'hypercore/alpha',
  opened: true,
  closed: false,
  fullyOpened() {
    return Promise.resolve(true)
  }
}

// What hypercore's createProtocolStream calls the noise stream: the handshake's facts and
// the place the stream's Protomux is kept (`userData`).
class NoiseView extends EventEmitter {
  constructor(stream) {
    super()
    this.rawStream = stream
    this.noiseStream = this // as secret-stream's
    this.connected = false // the handshake is done ('open' is emitted then)
    this._closed = false
    this._userData = null
    this._opened = null
  }

  get isInitiator() {
    return this.rawStream.isInitiator
  }

  get handshakeHash() {
    const s = this.rawStream
    const hs = s.session !== 0 ? s.root.native.replicationHandshake(s.session) : null
    return hs ? hs.handshakeHash : null
  }

  get publicKey() {
    return this.rawStream.publicKey
  }

  get remotePublicKey() {
    return this.rawStream.remotePublicKey
  }

  get destroyed() {
    return this.rawStream.destroyed
  }

  get destroying() {
    return this.rawStream.destroying
  }

  // As secret-stream's: resolves true once the handshake is done, false if it never is.
  get opened() {
    if (this._opened === null) {
      this._opened = this.connected
        ? Promise.resolve(true)
        : new Promise((resolve) => {
            const done = (v) => {
              this.off('open', onopen)
              this.off('close', onclose)
              resolve(v)
            }
            const onopen = () => done(true)
            const onclose = () => done(false)
            this.on('open', onopen)
            this.on('close', onclose)
          })
    }
    return this._opened
  }

  // Made on first use, so a stream nobody asks for a mux pays nothing for it.
  get userData() {
    if (this._userData === null && !this.rawStream.destroyed) this._userData = new EngineMux(this)
    return this._userData
  }

  set userData(value) {
    this._userData = value
  }

  get _mux() {
    const mux = this._userData
    return mux instanceof EngineMux ? mux : null
  }

  destroy(err) {
    this.rawStream.destroy(err)
  }

  // the stream's handshake completed
  _onopen() {
    if (this.connected) return
    this.connected = true
    const mux = this._mux
    if (mux !== null) mux._onopen()
    this.emit('open')
  }

  // the stream ended: the mux's channels close, as protomux's on its stream's close
  _onclose() {
    if (this._closed) return
    this._closed = true
    const mux = this._mux
    if (mux !== null) mux._shutdown()
    this.emit('close')
  }
}

class EngineMux {
  constructor(view) {
    this.isProtomux = true
    this.stream = view
    this.corked = 0
    this.drained = true
    this._host = view.rawStream
    this._infos = new Map()
    this._notify = new Map()
    this._channels = new Set() // open, not closed: what iterating a Protomux yields
    this._waiting = [] // channels opened before the handshake completed
    this._destroying = false
    this._host._useMux()
  }

  *[Symbol.iterator]() {
    yield* this._channels
  }

  isIdle() {
    return this._channels.size === 0
  }

  // The engine sends what one call makes as one batch already.
  cork() {
    this.corked++
  }

  uncork() {
    if (this.corked > 0) this.corked--
  }

  // hypercore's channels are the engine's: what core-coupler asks is whether one is open
  getLastChannel({ protocol, id = null }) {
    const info = this._infos.get(toKey(protocol, id))
    if (info && info.lastChannel !== null) return info.lastChannel
    if ((protocol === 'hypercore' || protocol === 'hypercore/alpha') && id) {
      return this._host._hasHypercoreChannel(id) ? OPENED_HYPERCORE_CHANNEL : null
    }
    return null
  }

  pair({ protocol, id = null }, notify) {
    this._notify.set(toKey(protocol, id), notify)
  }

  unpair({ protocol, id = null }) {
    this._notify.delete(toKey(protocol, id))
  }

  opened({ protocol, id = null }) {
    const info = this._infos.get(toKey(protocol, id))
    return info ? info.opened > 0 : false
  }

  createChannel({
    userData = null,
    protocol,
    aliases = [],
    id = null,
    unique = true,
    handshake = null,
    messages = [],
    onopen = noop,
    onclose = noop,
    ondestroy = noop,
    ondrain = noop
  }) {
    if (this._host.destroyed || this._host.destroying || this._destroying) return null
    const info = this._get(protocol, id, aliases)
    if (unique && info.opened > 0) return null
    // the peer's oldest unanswered open of this protocol+id is the one the engine pairs
    // this channel with when it opens
    if (info.incoming.length > 0) info.incoming.shift()
    const ch = new Channel(this, info, userData, protocol, aliases, id, handshake, onopen, onclose, ondestroy, ondrain)
    for (const m of messages) ch.addMessage(m)
    return ch
  }

  destroy(err) {
    this._destroying = true
    this._host.destroy(err)
  }

  // The peer opened a channel no channel of ours waits for: as protomux, its pair handler
  // (for this id, else for the protocol) may open one; once that settled, an open still
  // unanswered is rejected.
  _offer(remoteId, protocol, id) {
    const info = this._get(protocol, id)
    info.incoming.push(remoteId)
    info.pairing++
    this._requestChannel(protocol, id, info).catch((err) => this.destroy(err))
  }

  async _requestChannel(protocol, id, info) {
    const notify = this._notify.get(toKey(protocol, id)) || this._notify.get(toKey(protocol, null))
    if (notify) await notify(id)
    if (--info.pairing > 0) return
    while (info.incoming.length > 0) this._host._relayReject(info.incoming.shift())
    this._gc(info)
  }

  _open(ch) {
    if (!this.stream.connected) {
      this._waiting.push(ch)
      return
    }
    const localId = this._host._relayOpen(ch.protocol, ch.id, ch._handshakeBytes)
    if (localId === null) {
      ch._close(true) // the stream is gone
      return
    }
    ch._bind(localId)
  }

  _onopen() {
    const waiting = this._waiting
    this._waiting = []
    for (const ch of waiting) if (!ch.closed) this._open(ch)
  }

  _shutdown() {
    this._destroying = true
    this._waiting = []
    for (const ch of [...this._channels]) ch._close(true)
  }

  _get(protocol, id, aliases = []) {
    const key = toKey(protocol, id)
    let info = this._infos.get(key)
    if (info) return info
    info = { key, aliases: [], pairing: 0, opened: 0, incoming: [], lastChannel: null }
    this._infos.set(key, info)
    for (const alias of aliases) {
      const k = toKey(alias, id)
      info.aliases.push(k)
      this._infos.set(k, info)
    }
    return info
  }

  _gc(info) {
    if (info.opened > 0 || info.incoming.length > 0 || info.pairing > 0) return
    this._infos.delete(info.key)
    for (const k of info.aliases) this._infos.delete(k)
  }
}

class Channel {
  constructor(mux, info, userData, protocol, aliases, id, handshake, onopen, onclose, ondestroy, ondrain) {
    this.userData = userData
    this.protocol = protocol
    this.aliases = aliases
    this.id = id
    this.handshake = null
    this.messages = []
    this.opened = false
    this.closed = false
    this.destroyed = false
    this.onopen = onopen
    this.onclose = onclose
    this.ondestroy = ondestroy
    this.ondrain = ondrain

    this._mux = mux
    this._info = info
    this._handshake = handshake
    this._handshakeBytes = EMPTY
    this._localId = 0 // the engine's id for it, once the stream could open it
    this._queued = null // messages sent before then
    this._active = 0
    this._openedPromise = null
    this._openedResolve = null
    this._destroyedPromise = null
    this._destroyedResolve = null
  }

  get drained() {
    return this._mux.drained
  }

  fullyOpened() {
    if (this.opened) return Promise.resolve(true)
    if (this.closed) return Promise.resolve(false)
    if (this._openedPromise === null) {
      this._openedPromise = new Promise((resolve) => {
        this._openedResolve = resolve
      })
    }
    return this._openedPromise
  }

  fullyClosed() {
    if (this.destroyed) return Promise.resolve()
    if (this._destroyedPromise === null) {
      this._destroyedPromise = new Promise((resolve) => {
        this._destroyedResolve = resolve
      })
    }
    return this._destroyedPromise
  }

  open(handshake) {
    if (this.closed) return
    this._info.opened++
    this._info.lastChannel = this
    this._mux._channels.add(this)
    this._handshakeBytes = this._handshake ? c.encode(this._handshake, handshake) : EMPTY
    this._mux._open(this)
  }

  addMessage(opts) {
    const type = this.messages.length
    if (!opts) {
      const skip = { type, encoding: c.raw, onmessage: noop, send: () => false }
      this.messages.push(skip)
      return skip
    }
    const ch = this
    const m = {
      type,
      encoding: opts.encoding || c.raw,
      onmessage: opts.onmessage || noop,
      send(value, session = ch) {
        return session._send(m, value)
      }
    }
    this.messages.push(m)
    return m
  }

  cork() {
    this._mux.cork()
  }

  uncork() {
    this._mux.uncork()
  }

  close() {
    if (this.closed) return
    const host = this._mux._host
    if (this._localId !== 0) host._relayClose(this._localId)
    this._close(false)
  }

  _send(m, value) {
    if (this.closed) return false
    const bytes = c.encode(m.encoding, value)
    if (this._localId === 0) {
      if (this._queued === null) this._queued = []
      this._queued.push(m.type, bytes)
      return true
    }
    this._mux._host._relaySend(this._localId, m.type, bytes)
    return this._mux.drained
  }

  _bind(localId) {
    this._localId = localId
    this._mux._host._relays.set(localId, this)
    const q = this._queued
    this._queued = null
    if (q !== null) for (let i = 0; i < q.length; i += 2) this._mux._host._relaySend(localId, q[i], q[i + 1])
  }

  // A relay event of the engine for this channel (lib/relay.js routes them by channel).
  // What an application's handler throws ends the stream, as protomux does.
  _event(kind, channel, type, data) {
    try {
      if (kind === OPENED) this._fullyOpen(data)
      else if (kind === MESSAGE) this._recv(type, data)
      else if (kind === CLOSE) this._close(true)
    } catch (err) {
      this._mux.destroy(err)
    }
  }

  _fullyOpen(data) {
    if (this.opened || this.closed) return
    this.handshake = this._handshake ? c.decode(this._handshake, data) : null
    this._track(this.onopen(this.handshake, this))
    this.opened = true
    this._resolveOpen(true)
  }

  _recv(type, data) {
    if (type >= this.messages.length || this.closed) return
    const m = this.messages[type]
    this._track(m.onmessage(c.decode(m.encoding, data), this))
  }

  _close(isRemote) {
    if (this.closed) return
    this.closed = true
    const mux = this._mux
    if (this._localId !== 0) mux._host._relays.delete(this._localId)
    this._queued = null
    if (mux._channels.delete(this)) this._info.opened--
    if (this._info.lastChannel === this) this._info.lastChannel = null
    mux._gc(this._info)
    this._track(this.onclose(isRemote, this))
    if (this._active === 0) this._destroy()
    this._resolveOpen(false)
  }

  _destroy() {
    if (this.destroyed) return
    this.destroyed = true
    this._track(this.ondestroy(this))
    if (this._destroyedResolve !== null) {
      this._destroyedResolve()
      this._destroyedResolve = this._destroyedPromise = null
    }
  }

  _resolveOpen(opened) {
    if (this._openedResolve !== null) {
      this._openedResolve(opened)
      this._openedResolve = this._openedPromise = null
    }
  }

  // a handler's promise keeps the channel from being destroyed until it settles; a
  // rejection ends the stream unless the channel already closed
  _track(p) {
    if (!p || typeof p.then !== 'function') return
    this._active++
    p.then(
      () => this._settled(),
      (err) => {
        this._settled()
        if (!this.closed) this._mux.destroy(err)
      }
    )
  }

  _settled() {
    if (--this._active === 0 && this.closed) this._destroy()
  }
}

function toKey(protocol, id) {
  return protocol + '##' + (id ? b4a.toString(id, 'hex') : '')
}

function noop() {}

module.exports = { NoiseView, EngineMux }
