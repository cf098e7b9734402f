'use strict'
// Several Corestores on one raw replication stream (docs/DECISIONS.md §19). In JS any core
// can join any protocol stream; here a raw stream's Noise, secretstream and Protomux run in
// the engine of the store that made it (the host). A core of another store given that
// stream (`a.replicate(b.replicate(true))`) replicates through a *guest*: an engine session
// of its own store in "external mux" mode, whose channels the host's Protomux carries:
// the guest's channel commands become the host's relay calls, and the host's relay events
// (the peer's side of those channels) come back to the guest as channel events.

const { addCore, widen, addQueued, packChannelEvents, unpackCommands, REMOTE_OPEN, OPENED, MESSAGE, CLOSE } = require('./targets')

class Guest {
  constructor(host, root, scoped) {
    this.host = host // the ReplicationStream of the store that runs the stream
    this.root = root // the guest's store
    this.scoped = scoped
    this.session = 0 // the guest engine's session, once the host's handshake is done
    this.conn = host // what a Peer's `stream` is
    this._adding = []
    this._toHost = new Map() // guest channel -> host relay channel
    this._fromHost = new Map() // host relay channel -> guest channel
    this._queued = [] // kind, channel, type, data, ... delivered together
    this._pending = true // counted in root._replication.pending until started or ended
    root._replication.pending++
  }

  get remotePublicKey() {
    const hs = this.host.session !== 0 ? this.host.root.native.replicationHandshake(this.host.session) : null
    return (hs && hs.remotePublicKey) || null
  }

  _addCore(handle) {
    addCore(this, handle)
  }

  _widen() {
    widen(this)
  }

  _settle() {
    if (!this._pending) return
    this._pending = false
    this.root._replication.pending--
  }

  // the host's handshake is done: the guest's engine session starts on its hash
  _start() {
    const root = this.root
    if (root.opened === false && root.closing === null) {
      root.ready().then(() => this._start(), noop)
      return
    }
    const host = this.host
    if (this.session !== 0) return
    if (host.session === 0 || root.closing !== null || root.native === null) return this._settle()
    const hs = host.root.native.replicationHandshake(host.session)
    if (hs === null) return // startGuests() once it is done
    this._settle()
    host.root._pump(host.root.native.replicationHostGuests(host.session))
    const out = root.native.replicationOpen(host.isInitiator, hs.handshakeHash, this.scoped)
    this.session = out.session
    root._replication.add(this.session, this)
    root._pump(out)
    addQueued(this)
  }

  _send() {}

  // our worker processed this much relayed input: the host stream holds its input while
  // the guests' backlog counts too
  _consumed(bytes) {
    this.host._consumed(bytes)
  }

  // the guest engine's channel commands, carried out on the host's Protomux
  _commands(meta, data, from, to, at) {
    for (const cmd of unpackCommands(meta, data, from, to, at)) this._command(cmd)
  }

  _command(cmd) {
    const host = this.host
    if (host.session === 0) return
    if (cmd.op === 'open') {
      const out = host.root.native.replicationRelayOpen(host.session, cmd.discoveryKey, cmd.data)
      if (out.channel !== undefined && out.channel !== null) {
        this._toHost.set(cmd.channel, out.channel)
        this._fromHost.set(out.channel, cmd.channel)
        host._relays.set(out.channel, this)
      }
      host.root._pump(out)
    } else {
      const ch = this._toHost.get(cmd.channel)
      if (ch === undefined) return
      host.root._pump(host.root.native.replicationRelaySend(host.session, ch, cmd.messageType, cmd.data))
    }
  }

  // a relay event of the host, for one of our channels (or a peer's open to consider)
  _event(kind, hostChannel, type, data) {
    if (this.session === 0) return
    let channel = 0
    if (kind !== REMOTE_OPEN) {
      channel = this._fromHost.get(hostChannel)
      if (channel === undefined) return
      if (kind === CLOSE) this._forget(hostChannel)
    }
    if (this._queued.length === 0) queueMicrotask(() => this._deliver())
    this._queued.push(kind, channel, type, data)
  }

  // What one host call relayed reaches the guest's engine in one call, so its blocks are
  // verified and written as one batch (as on a Hyperswarm connection). `here`: processed
  // on this thread now, not by the worker (a peer's open, which the host rejects right
  // after unless a guest paired it).
  _deliver(here = false) {
    const q = this._queued
    this._queued = []
    if (this.session === 0 || q.length === 0) return
    const { meta, data } = packChannelEvents(q)
    try {
      const out = this.root.native.replicationChannelEvents(this.session, meta, data, here)
      if (out !== null) this.root._pump(out) // no worker: processed in that call
      else this.host._unconsumed += data.byteLength
    } catch (err) {
      this.host.destroy(err) // an application's listener threw: this stream ends, not the process
    }
  }

  _forget(hostChannel) {
    const channel = this._fromHost.get(hostChannel)
    this._fromHost.delete(hostChannel)
    if (channel !== undefined) this._toHost.delete(channel)
    this.host._relays.delete(hostChannel)
  }

  // The guest's engine ended its session (a protocol error on one of our channels ends the
  // whole stream, as in JS), or its store closed (`detached`): our channels close.
  _closed(err) {
    this.session = 0
    this._settle()
    const host = this.host
    if (host._guests !== null && host._guests.get(this.root) === this) host._guests.delete(this.root)
    for (const ch of [...this._fromHost.keys()]) {
      this._forget(ch)
      if (host.session !== 0) host.root._pump(host.root.native.replicationRelayClose(host.session, ch))
    }
    if (err) host.destroy(err)
  }

  // the host stream ended
  _end() {
    this._settle()
    this._fromHost.clear()
    this._toHost.clear()
    if (this.session === 0) return
    const session = this.session
    this.session = 0
    const root = this.root
    if (root._replication.remove(session) && root.native !== null) {
      root._pump(root.native.replicationClose(session))
    }
  }
}

// core.replicate(stream) / store.replicate(stream) with a raw stream of another store
function joinAsGuest(host, root, scoped) {
  if (host._guests === null) host._guests = new Map()
  let guest = host._guests.get(root)
  if (guest !== undefined) {
    if (!scoped) guest._widen()
    return guest
  }
  guest = new Guest(host, root, scoped)
  host._guests.set(root, guest)
  if (host.destroying || host.destroyed) guest._end()
  else if (host.session !== 0) guest._start() // waits for the handshake if it is not done
  return guest
}

// the host's handshake completed: its guests start
function startGuests(host) {
  if (host._guests === null) return
  for (const g of host._guests.values()) g._start()
}

// A relay event of the host's engine: a peer's open of a core the host lacks goes to every
// guest (one whose store has that core opens its channel), then is rejected if none did;
// the others go to the guest whose channel it is.
function relayEvent(host, e) {
  if (e.kind === REMOTE_OPEN) {
    if (host._guests !== null) {
      for (const g of host._guests.values()) {
        g._event(REMOTE_OPEN, 0, 0, e.data)
        g._deliver(true)
      }
    }
    if (host.session !== 0) host.root._pump(host.root.native.replicationRelayReject(host.session, e.channel))
    return
  }
  const g = host._relays.get(e.channel)
  if (g !== undefined) g._event(e.kind, e.channel, e.messageType || 0, e.data)
}

function endGuests(host) {
  if (host._guests === null) return
  const guests = [...host._guests.values()]
  host._guests.clear()
  host._relays.clear()
  for (const g of guests) g._end()
}

function noop() {}

module.exports = { joinAsGuest, startGuests, relayEvent, endGuests }
