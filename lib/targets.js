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

module.exports = { addCore, widen, addQueued }
