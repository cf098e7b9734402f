'use strict'
// The Protomux of a raw replication stream, for JavaScript: `stream.noiseStream.userData`
// (what Hypercore.getProtocolMuxer gives, what protomux-wakeup and Autobase use) carries an
// application's own protocol next to hypercore's, in every pairing with JS corestore; a
// peer's stream and protomux are those of hypercore; the core a watcher gets keeps its
// preupdate hook; a core whose last session closed lingers, as corestore's gc does.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const c = require('compact-encoding')
const Protomux = require('protomux')
const Hypercore = require('hypercore')
const { forEachPairing, within, until, pipeStores } = require('./helpers/replication.js')
const same = require('./helpers/same.js')

// One side of a small protocol: a string handshake and one string message each way.
function chat(stream, name, log, { pairOnly = false } = {}) {
  const mux = Protomux.from(stream.noiseStream)
  const open = () => {
    const ch = mux.createChannel({
      protocol: 'test/chat',
      id: b4a.from('room'),
      handshake: c.string,
      messages: [{ encoding: c.string, onmessage: (m) => log.push(`${name} got ${m}`) }],
      onopen: (hs) => {
        log.push(`${name} open ${hs}`)
        ch.messages[0].send(`hi from ${name}`)
      },
      onclose: (remote) => log.push(`${name} closed remote=${remote}`)
    })
    if (ch === null) return null
    ch.open(`hello ${name}`)
    return ch
  }
  if (!pairOnly) return open()
  mux.pair({ protocol: 'test/chat' }, (id) => {
    log.push(`${name} notified ${b4a.toString(id)}`)
    open()
  })
  return null
}

forEachPairing("an application's protocol on the stream's Protomux, both opening", async (t, p, e) => {
  const a = e.store(p.Writer)
  const b = e.store(p.Reader)
  const { s1, s2 } = pipeStores(e, a, b)
  const log = []
  const ca = chat(s1, 'A', log)
  chat(s2, 'B', log)
  await until(() => log.length === 4, 5000, 'both open and both messages')
  assert.deepEqual(log.slice().sort(), ['A got hi from B', 'A open hello B', 'B got hi from A', 'B open hello A'])
  assert.equal(Hypercore.getProtocolMuxer(s1), Protomux.from(s1.noiseStream))
  assert.equal(Protomux.from(s1.noiseStream).opened({ protocol: 'test/chat', id: b4a.from('room') }), true)
  assert.equal(s1.noiseStream.handshakeHash.byteLength, 64)
  ca.close()
  await until(() => log.length === 6, 5000, 'both closed')
  assert.deepEqual(log.slice(4).sort(), ['A closed remote=false', 'B closed remote=true'])
})

forEachPairing('a peer opening first is paired by the pair() handler, after the handshake', async (t, p, e) => {
  const a = e.store(p.Writer)
  const b = e.store(p.Reader)
  const s1 = e.stream(a.replicate(true))
  const s2 = e.stream(b.replicate(false))
  const log = []
  chat(s1, 'A', log) // opened before any byte moved: it goes out once the handshake is done
  chat(s2, 'B', log, { pairOnly: true })
  const opened = []
  s1.noiseStream.on('open', () => opened.push(s1.noiseStream.connected))
  s1.pipe(s2).pipe(s1)
  await until(() => log.length === 5, 5000, 'notified, both open, both messages')
  assert.equal(log[0], 'B notified room')
  assert.deepEqual(opened, [true])
})

forEachPairing('a channel nobody pairs is rejected: the opener sees it close', async (t, p, e) => {
  const a = e.store(p.Writer)
  const b = e.store(p.Reader)
  const { s1, s2 } = pipeStores(e, a, b)
  await within(5000, s1.noiseStream.opened, 'handshake')
  Protomux.from(s2.noiseStream) // the peer has a mux, but no channel or handler for it
  const log = []
  chat(s1, 'A', log)
  await until(() => log.length === 1, 5000, 'closed')
  assert.deepEqual(log, ['A closed remote=true'])
  // hypercore replication on the same stream is untouched
  const core = a.get({ name: 'c' })
  await core.append('x')
  const clone = b.get({ key: core.key })
  assert.equal(b4a.toString(await within(5000, clone.get(0), 'block')), 'x')
})

forEachPairing("peers' stream is the noise stream, and their protomux its mux", async (t, p, e) => {
  const a = e.store(p.Writer)
  const b = e.store(p.Reader)
  const core = a.get({ name: 'c' })
  await core.append('x')
  const clone = b.get({ key: core.key })
  await clone.ready()
  const { s1 } = pipeStores(e, a, b)
  await until(() => core.peers.length === 1, 5000, 'peer')
  const peer = core.peers[0]
  assert.equal(peer.stream, s1.noiseStream)
  assert.equal(peer.protomux, Protomux.from(s1.noiseStream))
  const ch = peer.protomux.getLastChannel({ protocol: 'hypercore/alpha', id: core.discoveryKey })
  assert.equal(await ch.fullyOpened(), true)
})

// corestore closes a core 6-8 s after its last session (gc strikes every 2 s); until then it
// is listed, replicates, and the next get takes it again
same('a core whose last session closed lingers in store.cores, then goes', async (C, dir) => {
  const store = new C(dir)
  const core = store.get({ name: 'a' })
  await core.append('x')
  const key = b4a.toString(core.discoveryKey, 'hex')
  const listed = () => [...store.cores].some((x) => b4a.toString(x.discoveryKey, 'hex') === key)
  await core.close()
  const out = { afterClose: listed() }
  await new Promise((resolve) => setTimeout(resolve, 3000))
  out.after3s = listed()
  const again = store.get({ name: 'a' })
  await again.ready()
  out.reopened = again.length
  await again.close()
  await new Promise((resolve) => setTimeout(resolve, 9000))
  out.after9s = listed()
  await store.close()
  return out
}, (r) => assert.deepEqual(r, { afterClose: true, after3s: true, reopened: 1, after9s: false }))

// Autobase's wakeup sets preupdate on the core a watcher gets and on a session's core.core;
// it runs when a peer's data grows the core
forEachPairing("core.preupdate runs when a peer's data grows the core", async (t, p, e) => {
  const a = e.store(p.Writer)
  const b = e.store(p.Reader)
  const core = a.get({ name: 'c' })
  await core.append('x')
  const seen = []
  b.watch((watched) => {
    if (!b4a.equals(watched.key, core.key)) return
    watched.preupdate = (batch, key) => seen.push([batch.length, b4a.equals(key, core.key)])
  })
  const clone = b.get({ key: core.key })
  await clone.ready()
  assert.equal(clone.core.preupdate !== null && clone.core.preupdate !== undefined, true)
  pipeStores(e, a, b)
  await within(5000, clone.get(0), 'block 0')
  await core.append('y')
  await until(() => seen.some(([length]) => length === 2), 5000, 'preupdate at length 2')
  assert.equal(seen.every(([, k]) => k), true)
})

