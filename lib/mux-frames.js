'use strict'
// The engine's messages for a JS Protomux, framed here as that Protomux frames messages sent
// while it is corked: one batch frame per run of them (docs/DECISIONS.md §61). Handing
// them to Protomux one by one cost about 2 µs a message on the JS thread (an object, a
// buffer and an encoding per message, then a copy into the batch); a frame written here
// costs one pass over the engine's packed commands and one copy of each payload.
//
// A batch frame: 0 (control channel), 0 (batch), the channel's local id, then each message
// as its length and bytes (its type, then its payload); a length of 0 is followed by the id
// of the channel the next messages belong to. Integers are compact-encoding uints.

const { openCommand, OPEN } = require('./targets')

// Frames stop growing past this: the peer processes nothing of a frame before all of it
// has arrived and been decrypted, so a burst of answers goes out in pieces it works on while
// the next arrive (the engine's own streams do the same, src/replication/peer.rs RAW_BATCH).
const FRAME_MAX = 256 * 1024

function uintLength(n) {
  return n <= 0xfc ? 1 : n <= 0xffff ? 3 : n <= 0xffffffff ? 5 : 9
}

function writeUint(buf, at, n) {
  if (n <= 0xfc) {
    buf[at] = n
    return at + 1
  }
  if (n <= 0xffff) {
    buf[at] = 0xfd
    buf.writeUInt16LE(n, at + 1)
    return at + 3
  }
  if (n <= 0xffffffff) {
    buf[at] = 0xfe
    buf.writeUInt32LE(n, at + 1)
    return at + 5
  }
  buf[at] = 0xff
  buf.writeBigUInt64LE(BigInt(n), at + 1)
  return at + 9
}

// Commands from..to of packed output ({ meta, data }: src/napi/mod.rs CommandsOut), whose
// payloads start at `at` in data, carried out on `mux` (the Protomux of `conn`).
// `channels` maps the engine's channel ids to Protomux channels; `open(cmd)` opens one.
// Sends on a channel that is gone are dropped, as Protomux drops them.
function sendCommands(mux, conn, channels, open, meta, data, from, to, at) {
  let i = from
  while (i < to) {
    const type = meta.readUInt32LE(16 * i + 8)
    const len = meta.readUInt32LE(16 * i + 12)
    if (type === OPEN) {
      open(openCommand(meta, data, i, at))
      i++
      at += len
      continue
    }
    // Corked with messages waiting in its batch (Protomux's own, or another protocol's):
    // those go out first, so these go through it. A Protomux that is not corked, or corked
    // with an empty batch (as it is while it raises the messages of a received batch, when
    // the engine answers them in the same turn), has nothing to send before a frame written
    // here; only channels that say their id are framed.
    if (mux.corked !== 0 && !batchEmpty(mux)) {
      const ch = channels.get(meta.readUInt32LE(16 * i + 4))
      if (ch !== undefined) ch.messages[type].send(data.subarray(at, at + len))
      i++
      at += len
      continue
    }
    const end = frameRun(mux, conn, channels, meta, data, i, to, at)
    i = end.i
    at = end.at
  }
}

// A corked Protomux holds what is sent meanwhile in `_batch` until it uncorks.
function batchEmpty(mux) {
  return Array.isArray(mux._batch) && mux._batch.length === 0
}

// The channel's Protomux local id, or 0 when its messages cannot be framed here.
function localIdOf(ch) {
  if (ch === undefined || ch.closed === true || typeof ch._localId !== 'number') return 0
  return ch._localId
}

// Frames the sends from i on (up to an open, `to` or FRAME_MAX bytes) and writes the frame.
function frameRun(mux, conn, channels, meta, data, i, to, at) {
  // first pass: how far, and how many bytes
  let size = 2
  let prev = 0
  let last = -1 // engine channel of `prev`
  let end = i
  let endAt = at
  for (; end < to; end++) {
    const type = meta.readUInt32LE(16 * end + 8)
    if (type === OPEN || size >= FRAME_MAX) break
    const channel = meta.readUInt32LE(16 * end + 4)
    const len = meta.readUInt32LE(16 * end + 12)
    endAt += len
    const id = channel === last ? prev : localIdOf(channels.get(channel))
    if (id === 0) continue
    if (id !== prev) {
      size += (prev === 0 ? 0 : 1) + uintLength(id)
      prev = id
      last = channel
    }
    const item = uintLength(type) + len
    size += uintLength(item) + item
  }
  if (prev === 0) return { i: end, at: endAt } // every channel gone
  // second pass: the frame. A secret-stream encrypts what its alloc() gave in place.
  const frame = typeof conn.alloc === 'function' ? conn.alloc(size) : Buffer.allocUnsafe(size)
  frame[0] = 0
  frame[1] = 0
  let w = 2
  let p = at
  prev = 0
  last = -1
  for (let k = i; k < end; k++) {
    const channel = meta.readUInt32LE(16 * k + 4)
    const type = meta.readUInt32LE(16 * k + 8)
    const len = meta.readUInt32LE(16 * k + 12)
    const id = channel === last ? prev : localIdOf(channels.get(channel))
    if (id !== 0) {
      if (id !== prev) {
        if (prev !== 0) frame[w++] = 0
        w = writeUint(frame, w, id)
        prev = id
        last = channel
      }
      w = writeUint(frame, w, uintLength(type) + len)
      w = writeUint(frame, w, type)
      data.copy(frame, w, p, p + len)
      w += len
    }
    p += len
  }
  mux.drained = conn.write(frame)
  return { i: end, at: endAt }
}

module.exports = { sendCommands, FRAME_MAX }
