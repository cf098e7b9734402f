'use strict'
// The other ways into replicate(): a @hyperswarm/secret-stream pair or a Protomux passed in
// directly, and an idle raw stream that must survive the JS side's 5 s keep-alives.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const Protomux = require('protomux')
const { forEachPairing, within, until, pipeStores, delay } = require('./helpers/replication.js')

async function writerAndReader(e, p, blocks) {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'streams' })
  await w.append(blocks)
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  return { ws, w, rs, r }
}

// Two connected secret-streams, as Hyperswarm hands them out.
function secretStreamPair(e) {
  const a = new NoiseSecretStream(true)
  const b = new NoiseSecretStream(false)
  a.rawStream.pipe(b.rawStream).pipe(a.rawStream)
  for (const s of [a, b]) {
    s.on('error', () => {})
    e.defer(() => s.destroy(), 'secret-stream destroy')
  }
  return [a, b]
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
