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

const c = require('compact-encoding')

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

// rows: channel, type, start, end of each message's payload in the frame
function take(mux, owners, state) {
  const end = state.end
  // read on a copy: Protomux gets `state` as it was when the frame is not taken
  const s = { buffer: state.buffer, start: state.start, end }
  const rows = []
  let sink = null
  let channel = 0 // the engine's id of remoteId's channel
  let lastId = -1
  try {
    let remoteId = c.uint.decode(s)
    while (s.start < end) {
      const len = c.uint.decode(s)
      if (len === 0) {
        remoteId = c.uint.decode(s)
        continue
      }
      const to = Math.min(s.start + len, end)
      s.end = to
      const type = c.uint.decode(s)
      s.end = end
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
      rows.push(channel, type, s.start, to)
      s.start = to
    }
  } catch {
    return false // a uint cut short: Protomux's own path refuses the frame
  }
  if (sink === null) return false
  sink.take(state.buffer, rows)
  return true
}

module.exports = { receiver }
