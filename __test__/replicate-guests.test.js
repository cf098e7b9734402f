'use strict'
// Several Corestores on one replication stream, as hypercore's and corestore's users do:
// `a.replicate(b.replicate(true))` (a store, or a core with core.replicate, joins a stream
// another store made) and several stores on one secret-stream's Protomux. Every writer→reader
// pairing (impl→JS, JS→impl, impl→impl); on corestore-native the second store is a guest on
// the first's raw stream (lib/relay.js).
const assert = require('node:assert/strict')
const b4a = require('b4a')
const { forEachPairing, within, until, eventOnce, secretStreamPair } = require('./helpers/replication.js')

async function writerCore(e, Ctor, name, blocks, dir) {
  const store = e.store(Ctor, dir)
  const core = store.get({ name })
  await core.ready()
  if (blocks.length > 0) await core.append(blocks.map((b) => b4a.from(b)))
  return { store, core }
}

async function readerCore(e, Ctor, key) {
  const store = e.store(Ctor)
  const core = store.get({ key })
  await core.ready()
  return { store, core }
}

forEachPairing('two stores on one stream: store.replicate(otherStore.replicate(true))', async (t, p, e) => {
  const { store: a1, core: w1 } = await writerCore(e, p.Writer, 'one', ['hi'])
  const { store: a2, core: w2 } = await writerCore(e, p.Writer, 'two', ['ho'])
  const { store: b1, core: r1 } = await readerCore(e, p.Reader, w1.key)
  const { store: b2, core: r2 } = await readerCore(e, p.Reader, w2.key)

  const sa = a2.replicate(true)
  assert.equal(a1.replicate(sa), sa, 'the stream given is the stream returned')
  const sb = b2.replicate(false)
  assert.equal(b1.replicate(sb), sb)
  e.stream(sa, 'a')
  e.stream(sb, 'b')
  sa.pipe(sb).pipe(sa)

  assert.equal(b4a.toString(await within(5000, r1.get(0), 'r1.get(0)')), 'hi')
  assert.equal(b4a.toString(await within(5000, r2.get(0), 'r2.get(0)')), 'ho')
  // live: appends on both stores flow on the one stream
  await w1.append(b4a.from('a1'))
  await w2.append(b4a.from('a2'))
  assert.equal(b4a.toString(await within(5000, r1.get(1), 'r1.get(1)')), 'a1')
  assert.equal(b4a.toString(await within(5000, r2.get(1), 'r2.get(1)')), 'a2')
  assert.equal(r1.peers.length, 1, 'one peer for the guest core')
  assert.equal(r2.peers.length, 1, 'one peer for the host core')

  // the stream ends: every core on it loses its peer, the guest's too
  const removed = eventOnce(w1, 'peer-remove', 5000, 'guest core peer-remove')
  sa.destroy()
  await removed
  assert.equal(w1.peers.length, 0)
})

forEachPairing('core.replicate(stream of another store), joined after data flowed', async (t, p, e) => {
  const { store: a1, core: w1 } = await writerCore(e, p.Writer, 'one', ['x'])
  const { store: b1, core: r1 } = await readerCore(e, p.Reader, w1.key)
  const sa = e.stream(a1.replicate(true), 'a')
  const sb = e.stream(b1.replicate(false), 'b')
  sa.pipe(sb).pipe(sa)
  assert.equal(b4a.toString(await within(5000, r1.get(0), 'r1.get(0)')), 'x')

  // two more stores join the running stream, one core each
  const { core: w2 } = await writerCore(e, p.Writer, 'two', ['late'])
  const { core: r2 } = await readerCore(e, p.Reader, w2.key)
  assert.equal(w2.replicate(sa), sa)
  await new Promise((resolve) => setImmediate(resolve))
  const added = eventOnce(r2, 'peer-add', 5000, 'late core peer-add')
  r2.replicate(sb)
  await added
  assert.equal(r2.peers.length, 1)
  assert.equal(b4a.toString(await within(5000, r2.get(0), 'r2.get(0)')), 'late')
})

forEachPairing('a guest store opens a stored core when the peer asks for it', async (t, p, e) => {
  const dir = e.dir()
  const first = await writerCore(e, p.Writer, 'stored', ['on disk'], dir)
  const key = first.core.key
  await first.store.close()

  const { store: host } = await writerCore(e, p.Writer, 'host core', ['h'])
  const guest = e.store(p.Writer, dir) // holds the core on disk, not loaded
  const { core: r } = await readerCore(e, p.Reader, key)
  const rs = r.replicate(false) // the reader's side asks for just that core
  const sa = host.replicate(true)
  guest.replicate(sa)
  e.stream(sa, 'a')
  e.stream(rs, 'r')
  sa.pipe(rs).pipe(sa)
  assert.equal(b4a.toString(await within(5000, r.get(0), 'r.get(0)')), 'on disk')
})

forEachPairing('two stores on one secret-stream connection, cores added with core.replicate', async (t, p, e) => {
  const [n1, n2] = secretStreamPair(e)
  const { core: w1 } = await writerCore(e, p.Writer, 'one', ['n1'])
  const { core: w2 } = await writerCore(e, p.Writer, 'two', ['n2'])
  const { core: r1 } = await readerCore(e, p.Reader, w1.key)
  const { core: r2 } = await readerCore(e, p.Reader, w2.key)
  w1.replicate(n1)
  w2.replicate(n1)
  r1.replicate(n2)
  r2.replicate(n2)
  assert.equal(b4a.toString(await within(5000, r1.get(0), 'r1.get(0)')), 'n1')
  assert.equal(b4a.toString(await within(5000, r2.get(0), 'r2.get(0)')), 'n2')
  await until(() => w1.peers.length === 1 && w2.peers.length === 1, 5000, 'writers see their peer')
})

forEachPairing('stream.publicKey and remotePublicKey, as a peer reports them', async (t, p, e) => {
  const { store: ws, core: w } = await writerCore(e, p.Writer, 'k', ['x'])
  const { store: rs, core: r } = await readerCore(e, p.Reader, w.key)
  const s1 = e.stream(ws.replicate(true), 's1')
  const s2 = e.stream(rs.replicate(false), 's2')
  assert.equal(s1.publicKey.byteLength, 32, 'our key from the start')
  s1.pipe(s2).pipe(s1)
  await within(5000, r.get(0), 'r.get(0)')
  assert.deepEqual(s1.remotePublicKey, s2.publicKey)
  assert.deepEqual(s2.remotePublicKey, s1.publicKey)
  // a peer's `stream` is the stream it came on
  await until(() => w.peers.length === 1, 5000, 'writer peer')
  assert.deepEqual(w.peers[0].stream.remotePublicKey, s2.publicKey)
  assert.deepEqual(r.peers[0].stream.remotePublicKey, s1.publicKey)
})

forEachPairing('a guest store that closes leaves the stream to the others', async (t, p, e) => {
  const { store: a1, core: w1 } = await writerCore(e, p.Writer, 'one', ['g'])
  const { store: a2, core: w2 } = await writerCore(e, p.Writer, 'two', ['h'])
  const { store: b1, core: r1 } = await readerCore(e, p.Reader, w1.key)
  const { core: r2 } = await readerCore(e, p.Reader, w2.key)
  const sa = e.stream(a2.replicate(true), 'a')
  a1.replicate(sa) // a1 is the guest on a2's stream
  const sb = e.stream(b1.replicate(false), 'b')
  r2.replicate(sb)
  sa.pipe(sb).pipe(sa)
  assert.equal(b4a.toString(await within(5000, r1.get(0), 'r1.get(0)')), 'g')
  assert.equal(b4a.toString(await within(5000, r2.get(0), 'r2.get(0)')), 'h')

  const removed = eventOnce(r1, 'peer-remove', 5000, "the guest's core leaves")
  await a1.close()
  await removed
  await w2.append(b4a.from('h1'))
  assert.equal(b4a.toString(await within(5000, r2.get(1), 'r2.get(1)')), 'h1', 'the host core still replicates')
  assert.equal(sa.destroyed, false)
})
