'use strict'
// What every replication target (a raw stream, a Hyperswarm connection, a guest on another
// store's stream) does with the cores given to it: hypercore's core.replicate(target) adds
// one core, corestore's store.replicate(target) widens it to every core.

function addCore(target, handle) {
  if (target.session !== 0) {
    target.root._pump(target.root.native.replicationAddCore(target.session, handle))
  } else {
    target._adding.push(handle)
  }
}

function widen(target) {
  if (!target.scoped) return
  target.scoped = false
  if (target.session !== 0) target.root._pump(target.root.native.replicationWiden(target.session))
}

// the cores added before the engine session started
function addQueued(target) {
  const adding = target._adding
  target._adding = []
  for (const handle of adding) addCore(target, handle)
}

// The queued channel events (kind, channel, type, data, ...) as replicationChannelEvents
// takes them: 10 bytes of meta per event (kind, type, channel u32le, data length u32le) and
// the events' data in one buffer (one crossing, instead of one per Buffer).
function packChannelEvents(q) {
  const n = q.length / 4
  const meta = Buffer.allocUnsafe(10 * n)
  const parts = new Array(n)
  for (let i = 0; i < n; i++) {
    const d = q[4 * i + 3] || EMPTY
    meta[10 * i] = q[4 * i]
    meta[10 * i + 1] = q[4 * i + 2]
    meta.writeUInt32LE(q[4 * i + 1], 10 * i + 2)
    meta.writeUInt32LE(d.byteLength, 10 * i + 6)
    parts[i] = d
  }
  return { meta, data: n === 1 ? parts[0] : Buffer.concat(parts) }
}

const EMPTY = Buffer.alloc(0)

// The engine's commands for JS Protomuxes (src/napi/mod.rs CommandsOut): 16 bytes of meta
// per command (session, channel, message type or OPEN, payload length; u32 LE) and the
// payloads in one buffer. unpackCommands makes objects of commands from..to, whose payloads
// start at `at`: a message's data is a view of that buffer (protomux copies it into its
// frame); an open's handshake is copied, since its channel keeps it.
const OPEN = 0xffffffff

// The open command i, whose payload (the discovery key, then our handshake) starts at `at`.
function openCommand(meta, data, i, at) {
  const end = at + meta.readUInt32LE(16 * i + 12)
  return {
    channel: meta.readUInt32LE(16 * i + 4),
    discoveryKey: Buffer.from(data.subarray(at, at + 32)),
    data: Buffer.from(data.subarray(at + 32, end))
  }
}

function unpackCommands(meta, data, from, to, at) {
  const out = []
  for (let i = from; i < to; i++) {
    const session = meta.readUInt32LE(16 * i)
    const type = meta.readUInt32LE(16 * i + 8)
    const end = at + meta.readUInt32LE(16 * i + 12)
    if (type === OPEN) {
      out.push({ session, op: 'open', messageType: null, ...openCommand(meta, data, i, at) })
    } else {
      const channel = meta.readUInt32LE(16 * i + 4)
      out.push({ session, op: 'send', channel, discoveryKey: null, messageType: type, data: data.subarray(at, end) })
    }
    at = end
  }
  return out
}

module.exports = { addCore, widen, addQueued, packChannelEvents, unpackCommands, openCommand, OPEN }
