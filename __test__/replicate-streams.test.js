'use strict'
// The other ways into replicate(): a @hyperswarm/secret-stream pair or a Protomux passed in
// directly, an idle raw stream that must survive the JS side's 5 s keep-alives, and
// hypercore's core.replicate() (one core per stream, more added by passing the stream on).
const assert = require('node:assert/strict')
const b4a = require('b4a')
const Protomux = require('protomux')
const { forEachPairing, within, until, pipeStores, secretStreamPair, delay } = require('./helpers/replication.js')

async function writerAndReader(e, p, blocks) {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'streams' })
  await w.append(blocks)
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  return { ws, w, rs, r }
}

forEachPairing('replicate(secretStream) and replicate(protomux) return what they were given and replicate', async (t, p, e) => {
  const blocks = [b4a.from('one'), b4a.from('two'), b4a.from('three')]
  const { ws, w, rs, r } = await writerAndReader(e, p, blocks)
  const [a, b] = secretStreamPair(e)
  assert.equal(ws.replicate(a), a, 'replicate(conn) returns conn')
  const mux = Protomux.from(b)
  assert.equal(rs.replicate(mux), b, 'replicate(protomux) returns its stream, as corestore does')
  assert.equal(b.userData, mux, 'the connection keeps its Protomux')
  await within(5000, r.update({ wait: true }), 'update')
  assert.equal(r.length, 3)
  assert.equal(b4a.toString(await within(5000, r.get(2), 'get(2)')), 'three')
  await w.append('four')
  await until(() => r.length === 4, 5000, 'live append over the secret-stream')
})

forEachPairing('an idle raw stream outlives the 5 s keep-alive and then replicates a new append', { timeout: 20000 }, async (t, p, e) => {
  const { ws, w, rs, r } = await writerAndReader(e, p, [b4a.from('first')])
  const { s1, s2 } = pipeStores(e, ws, rs)
  await within(5000, r.update({ wait: true }), 'update')
  await delay(6500) // both sides send an empty keep-alive message in this time
  assert.equal(s1.destroyed || s2.destroyed, false, 'neither stream ended while idle')
  assert.deepEqual([s1.__errors.length, s2.__errors.length], [0, 0], 'no stream errors')
  await w.append('after idle')
  await until(() => r.length === 2, 5000, 'append after the idle period')
  assert.equal(b4a.toString(await within(5000, r.get(1), 'get(1)')), 'after idle')
})

// Two cores on the writer; the reader has opened both by key.
async function twoCores(e, p) {
  const ws = e.store(p.Writer)
  const a = ws.get({ name: 'core-a' })
  const b = ws.get({ name: 'core-b' })
  await a.append([b4a.from('a0'), b4a.from('a1')])
  await b.append(b4a.from('b0'))
  const rs = e.store(p.Reader)
  const ra = rs.get({ key: a.key })
  const rb = rs.get({ key: b.key })
  await Promise.all([ra.ready(), rb.ready()])
  return { ws, rs, a, b, ra, rb }
}

async function getOrCode(core, index, timeout) {
  try {
    return b4a.toString(await core.get(index, { timeout }))
  } catch (err) {
    return err.code
  }
}

forEachPairing('core.replicate(true/false): only that core replicates; core.replicate(stream) adds another', async (t, p, e) => {
  const { ws, rs, a, b, ra, rb } = await twoCores(e, p)
  const s1 = e.stream(a.replicate(true), 's1')
  const s2 = e.stream(ra.replicate(false), 's2')
  s1.pipe(s2).pipe(s1)
  assert.equal(await within(5000, getOrCode(ra, 1, 4000), 'get a1'), 'a1', 'the replicated core')
  assert.equal(await within(5000, getOrCode(rb, 0, 300), 'get b0'), 'REQUEST_TIMEOUT', 'the other core is not on the stream')
  assert.equal(b.replicate(s1), s1, 'core.replicate(stream) returns the stream')
  assert.equal(rb.replicate(s2), s2, 'core.replicate(stream) returns the stream')
  assert.equal(await within(5000, getOrCode(rb, 0, 4000), 'get b0 after adding'), 'b0', 'added to the stream')
  await a.append('a2')
  await until(() => ra.length === 3, 5000, 'live append on the first core')

  // store.replicate(stream) on both ends: every core replicates on it from now on
  const c = ws.get({ name: 'core-c' })
  await c.append('c0')
  const rc = rs.get({ key: c.key })
  await rc.ready()
  assert.equal(await within(5000, getOrCode(rc, 0, 300), 'get c0'), 'REQUEST_TIMEOUT', 'not on the stream yet')
  assert.equal(ws.replicate(s1), s1, 'store.replicate(stream) returns the stream')
  rs.replicate(s2)
  assert.equal(await within(5000, getOrCode(rc, 0, 4000), 'get c0 after store.replicate'), 'c0', 'every core now')
})

forEachPairing('core.replicate(conn) and core.replicate(protomux) on a secret-stream; store.replicate(conn) again attaches nothing twice', async (t, p, e) => {
  const { ws, a, b, ra, rb } = await twoCores(e, p)
  const [c1, c2] = secretStreamPair(e)
  const mux = Protomux.from(c1)
  assert.equal(a.replicate(mux), mux, 'core.replicate(protomux) returns the Protomux, as hypercore')
  assert.equal(ra.replicate(c2), c2, 'core.replicate(conn) returns the connection')
  assert.equal(await within(5000, getOrCode(ra, 1, 4000), 'get a1'), 'a1', 'the replicated core')
  assert.equal(await within(5000, getOrCode(rb, 0, 300), 'get b0'), 'REQUEST_TIMEOUT', 'the other core is not on the connection')
  b.replicate(c1)
  rb.replicate(c2)
  assert.equal(await within(5000, getOrCode(rb, 0, 4000), 'get b0 after adding'), 'b0', 'added to the connection')
  assert.equal(ws.replicate(c1), c1, 'store.replicate(conn) on a replicating connection')
  await a.append('a2')
  await until(() => ra.length === 3, 5000, 'still replicating, once')
  assert.equal(b4a.toString(await within(5000, ra.get(2), 'get a2')), 'a2')
})

forEachPairing('two peers downloading big blocks from each other at once on one stream both finish', async (t, p, e) => {
  // Each side owes the other ~20 MB of 64 KiB blocks: more than a raw stream holds before
  // it stops taking input, so asking for all of it at once stalls both ends.
  const as = e.store(p.Writer)
  const bs = e.store(p.Reader)
  const a = as.get({ name: 'a' })
  const b = bs.get({ name: 'b' })
  const blocks = new Array(300).fill(b4a.alloc(64 * 1024, 1))
  await a.append(blocks)
  await b.append(blocks)
  const ra = bs.get({ key: a.key })
  const rb = as.get({ key: b.key })
  await Promise.all([ra.ready(), rb.ready()])
  pipeStores(e, as, bs)
  await within(10000, Promise.all([ra.update({ wait: true }), rb.update({ wait: true })]), 'updates')
  await within(
    20000,
    Promise.all([ra.download({ start: 0, end: 300 }).done(), rb.download({ start: 0, end: 300 }).done()]),
    'both downloads'
  )
  assert.deepEqual([ra.contiguousLength, rb.contiguousLength], [300, 300])
})

// A handshake that completes in a busy turn starts the store's session a turn later
// (lib/replication.js, begin()). The peer's channel open for a core the store has on disk
// but not loaded comes before that, and must wait for the session instead of being refused.
forEachPairing('a channel the peer opens before a busy turn lets the session start is answered from disk', async (t, p, e) => {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'early-open' })
  await w.append([b4a.from('e0'), b4a.from('e1')])
  const key = w.key
  await w.close() // stored, not loaded: only the pairing answers for it
  const rs = e.store(p.Reader)
  const r = rs.get({ key })
  await r.ready()
  const [a, b] = secretStreamPair(e)
  ws.replicate(a)
  rs.replicate(b)
  const busyUntil = performance.now() + 8 // past the 4 ms a turn may spend on replication
  while (performance.now() < busyUntil);
  await within(5000, r.update({ wait: true }), 'update')
  assert.equal(r.length, 2)
  assert.equal(b4a.toString(await within(5000, r.get(1), 'get(1)')), 'e1')
})

// core.replicate(conn) has no pair handler on the connection's Protomux, so its channel
// must open as soon as the handshake completes, busy turn or not: an open the peer sent
// first would otherwise be refused.
forEachPairing('core.replicate(conn) in a busy turn opens its channel at once', async (t, p, e) => {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'scoped-busy' })
  await w.append([b4a.from('s0'), b4a.from('s1')])
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  const [a, b] = secretStreamPair(e)
  w.replicate(a)
  r.replicate(b)
  const busyUntil = performance.now() + 8
  while (performance.now() < busyUntil);
  await within(5000, r.update({ wait: true }), 'update')
  assert.equal(b4a.toString(await within(5000, r.get(1), 'get(1)')), 's1')
})
