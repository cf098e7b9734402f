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
// takes them: 6 bytes of meta per event (kind, type, channel u32le) and the data apart.
function packChannelEvents(q) {
  const n = q.length / 4
  const meta = Buffer.allocUnsafe(6 * n)
  const data = new Array(n)
  for (let i = 0; i < n; i++) {
    meta[6 * i] = q[4 * i]
    meta[6 * i + 1] = q[4 * i + 2]
    meta.writeUInt32LE(q[4 * i + 1], 6 * i + 2)
    data[i] = q[4 * i + 3]
  }
  return { meta, data }
}

module.exports = { addCore, widen, addQueued, packChannelEvents }
