'use strict'
// A batch frame a JS Protomux receives, taken whole when every message in it is for the
// engine's channels of one connection (docs/DECISIONS.md §71). Protomux would raise each
// message on its own (a decode, a handler call and a view per message: about 0.6 µs each
// on the JS thread), and packChannelEvents then copied them all into one buffer again.
// Taken here, the frame's bytes go to the engine as they are, with rows that say which
// bytes are messages (channel, type) and which are framing to skip: one pass over the
// frame's lengths, no copy. Any other frame (another protocol's messages among ours, a
// channel still opening or closed, a message type our channels lack, bytes Protomux would
// refuse) goes through Protomux as before.
//
// A batch frame (after its 0, 0): the channel's remote id, then each message as its length
// and bytes (its type, then its payload); a length of 0 is followed by the remote id of
// the channel the next messages belong to. Integers are compact-encoding uints.

const hooks = new WeakMap() // Protomux -> Map(Channel -> owner)

// The engine's channels on a Protomux: a Map(Channel -> { sink, channel }), where sink is
// { types, take(frame, rows) } of one connection's replication and channel the engine's id.
function receiver(mux) {
  let owners = hooks.get(mux)
  if (owners !== undefined) return owners
  owners = new Map()
  hooks.set(mux, owners)
  // relies on Protomux 3's `_onbatch(state)` and `_remote` ({ pending, session } per remote
  // id); a Protomux without them keeps its own path
  if (typeof mux._onbatch === 'function' && Array.isArray(mux._remote)) {
    const onbatch = mux._onbatch
    mux._onbatch = function (state) {
      if (owners.size === 0 || !take(mux, owners, state)) onbatch.call(this, state)
    }
  }
  return owners
}

// Compact-encoding uints read by `uint`, which returns the value and leaves the position
// after it in `pos`; -1 when it runs past `end` or takes more than 4 bytes.
let pos = 0

function uint(buf, at, end) {
  if (at >= end) return -1
  const a = buf[at]
  if (a <= 0xfc) {
    pos = at + 1
    return a
  }
  if (a === 0xfd) {
    if (at + 3 > end) return -1
    pos = at + 3
    return buf[at + 1] | (buf[at + 2] << 8)
  }
  if (a === 0xfe) {
    if (at + 5 > end) return -1
    pos = at + 5
    return buf.readUInt32LE(at + 1)
  }
  return -1
}

// rows: channel, type, start, end of each message's payload in `buf`
function take(mux, owners, state) {
  const buf = state.buffer
  const end = state.end
  let remoteId = uint(buf, state.start, end)
  if (remoteId < 0) return false
  let at = pos
  let sink = null
  let channel = 0 // the engine's id of remoteId's channel
  let lastId = -1
  const rows = []
  while (at < end) {
    const len = uint(buf, at, end)
    if (len < 0) return false
    at = pos
    if (len === 0) {
      remoteId = uint(buf, at, end)
      if (remoteId < 0) return false
      at = pos
      continue
    }
    const to = Math.min(at + len, end)
    const type = uint(buf, at, to)
    if (type < 0) return false
    if (remoteId !== lastId) {
      const remote = remoteId > 0 && remoteId <= mux._remote.length ? mux._remote[remoteId - 1] : null
      if (remote === null || remote.pending !== null || !remote.session || remote.session.closed) return false
      const owner = owners.get(remote.session)
      if (owner === undefined || (sink !== null && owner.sink !== sink)) return false
      sink = owner.sink
      channel = owner.channel
      lastId = remoteId
    }
    if (type >= sink.types) return false
    rows.push(channel, type, pos, to)
    at = to
  }
  if (sink === null) return false
  sink.take(buf, rows)
  return true
}

module.exports = { receiver }
