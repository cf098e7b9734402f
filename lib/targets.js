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
// the events' data in one buffer (one crossing, instead of one per Buffer). A BATCH entry
// (BATCH, 0, rows, frame) is a received Protomux frame taken whole (lib/mux-receive.js):
// its messages' rows (channel, type, start, end in frame) become message events, the bytes
// between them SKIP rows, and the frame's bytes from the first message to the last are the
// data, not copied when they are all there is.
function packChannelEvents(q) {
  let n = 0
  for (let i = 0; i < q.length; i += 4) n += q[i] === BATCH ? q[i + 2].length / 2 - 1 : 1
  const meta = Buffer.allocUnsafe(10 * n)
  const parts = new Array(q.length / 4)
  let m = 0
  for (let i = 0; i < q.length; i += 4) {
    if (q[i] === BATCH) {
      const rows = q[i + 2]
      for (let k = 0; k < rows.length; k += 4) {
        if (k > 0) m = row(meta, m, SKIP, 0, 0, rows[k + 2] - rows[k - 1])
        m = row(meta, m, MESSAGE, rows[k + 1], rows[k], rows[k + 3] - rows[k + 2])
      }
      parts[i / 4] = q[i + 3].subarray(rows[2], rows[rows.length - 1])
      continue
    }
    const d = q[i + 3] || EMPTY
    m = row(meta, m, q[i], q[i + 2], q[i + 1], d.byteLength)
    parts[i / 4] = d
  }
  return { meta, data: parts.length === 1 ? parts[0] : Buffer.concat(parts) }
}

function row(meta, at, kind, type, channel, length) {
  meta[at] = kind
  meta[at + 1] = type
  meta.writeUInt32LE(channel, at + 2)
  meta.writeUInt32LE(length, at + 6)
  return at + 10
}

// Kinds of packed channel events (src/wire/channel_events.rs; relay events use the first
// four too), and the queue's marker of a frame taken whole.
const REMOTE_OPEN = 0
const OPENED = 1
const MESSAGE = 2
const CLOSE = 3
const SKIP = 4
const BATCH = -1

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

module.exports = {
  addCore,
  widen,
  addQueued,
  packChannelEvents,
  unpackCommands,
  openCommand,
  OPEN,
  BATCH,
  REMOTE_OPEN,
  OPENED,
  MESSAGE,
  CLOSE
}
