'use strict'
// Many cores over one replication stream, for every writer→reader pairing:
// - a writer with 1000 named cores (1-3 small blocks each), one live stream, the reader opens
//   all 1000 by key and reads every block;
// - on demand: the writer store is reopened fresh (cores only on disk, none opened), then
//   replicated; the reader opens some keys and gets their blocks, so the writer must open
//   cores when the remote asks for their discovery key;
// - a discovery key the writer does not have gets nothing (get with timeout ->
//   REQUEST_TIMEOUT) and the connection stays up for other cores.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const crypto = require('hypercore-crypto')
const {
  forEachPairing,
  within,
  rejectsWith,
  pipeStores,
  shuffled,
  sameBuffer
} = require('./helpers/replication.js')

const blockOf = (k, i) => b4a.from(`core-${k}-block-${i}`)
const countOf = (k) => 1 + (k % 3)

async function makeWriter(e, Writer, n, dir) {
  const ws = e.store(Writer, dir)
  const keys = []
  const cores = []
  for (let k = 0; k < n; k++) cores.push(ws.get({ name: 'many-' + k }))
  await within(20000, Promise.all(cores.map((c) => c.ready())), `open ${n} cores`)
  await within(
    20000,
    Promise.all(
      cores.map((c, k) => {
        const blocks = []
        for (let i = 0; i < countOf(k); i++) blocks.push(blockOf(k, i))
        return c.append(blocks)
      })
    ),
    `append to ${n} cores`
  )
  for (const c of cores) keys.push(c.key)
  return { ws, cores, keys }
}

// Opens each key on the reader and reads all its blocks, `concurrency` cores at a time.
async function readCores(rs, keys, indices, concurrency = 50) {
  let next = 0
  const opened = []
  async function worker() {
    while (next < indices.length) {
      const k = indices[next++]
      const core = rs.get({ key: keys[k] })
      opened.push(core)
      await core.ready()
      if (core.length < countOf(k)) {
        const ok = await core.update({ wait: true })
        assert.equal(ok, true, `update of core ${k}`)
      }
      assert.equal(core.length, countOf(k), `length of core ${k}`)
      for (let i = 0; i < countOf(k); i++) {
        sameBuffer(await core.get(i), blockOf(k, i), `core ${k} block ${i}`)
      }
    }
  }
  const workers = []
  for (let w = 0; w < concurrency; w++) workers.push(worker())
  await Promise.all(workers)
  return opened
}

forEachPairing('1000 named cores over one live stream: the reader opens and reads them all', { timeout: 60000 }, async (t, p, e) => {
  const N = 1000
  const { ws, keys } = await makeWriter(e, p.Writer, N)
  const rs = e.store(p.Reader)
  const { s1, s2 } = pipeStores(e, ws, rs)
  await within(30000, readCores(rs, keys, shuffled(N, 5)), `reader reads ${N} cores`)
  assert.equal(s1.destroyed, false, 's1.destroyed')
  assert.equal(s2.destroyed, false, 's2.destroyed')
  assert.deepEqual(s1.__errors.concat(s2.__errors), [], 's1.__errors.concat(s2.__errors)')
})

forEachPairing('on demand: a reopened writer opens cores from disk when the reader asks', async (t, p, e) => {
  const N = 60
  const dir = e.dir()
  // a writer that creates the cores, then closes
  const ws0 = e.store(p.Writer, dir)
  const cores = []
  for (let k = 0; k < N; k++) cores.push(ws0.get({ name: 'many-' + k }))
  await Promise.all(cores.map((c) => c.ready()))
  await Promise.all(cores.map((c, k) => c.append(Array.from({ length: countOf(k) }, (_, i) => blockOf(k, i)))))
  const keys = cores.map((c) => c.key)
  await within(10000, ws0.close(), 'close the first writer')

  const ws = e.store(p.Writer, dir) // fresh: no core opened
  await ws.ready()
  const rs = e.store(p.Reader)
  pipeStores(e, ws, rs)

  const wanted = shuffled(N, 9).slice(0, 15)
  await within(15000, readCores(rs, keys, wanted, 5), 'reader reads cores the writer has only on disk')

  // the writer's store can still open them itself, with the data intact
  const again = ws.get({ key: keys[wanted[0]] })
  await again.ready()
  assert.equal(again.length, countOf(wanted[0]), 'again.length')
})

forEachPairing('a discovery key the writer does not have: nothing served, the connection stays up', async (t, p, e) => {
  const { ws, keys } = await makeWriter(e, p.Writer, 3)
  const rs = e.store(p.Reader)
  const { s1, s2 } = pipeStores(e, ws, rs)

  const unknown = rs.get({ key: crypto.keyPair().publicKey })
  await unknown.ready()
  // JS: the writer rejects the hypercore/alpha channel for a discovery key it lacks (a
  // Protomux reject), so the reader's pending peer goes away and update() says false
  assert.equal(await within(3000, unknown.update({ wait: true }), 'update of an unknown core'), false, 'update of an unknown core')
  await rejectsWith(unknown.get(0, { timeout: 500 }), 'REQUEST_TIMEOUT', 5000, 'get of a core the writer does not have')
  assert.equal(unknown.length, 0, 'unknown.length')
  assert.equal(unknown.peers.length, 0, 'no peer for an unknown core')

  assert.equal(s1.destroyed, false, 'stream still up')
  assert.equal(s2.destroyed, false, 'stream still up')
  await within(10000, readCores(rs, keys, [0, 1, 2], 1), 'known cores still replicate on the same stream')

  // and again, after the known cores are active
  const unknown2 = rs.get({ key: crypto.keyPair().publicKey })
  await rejectsWith(unknown2.get(0, { timeout: 300 }), 'REQUEST_TIMEOUT', 5000, 'second unknown core')
  assert.equal(s1.destroyed, false, 's1.destroyed')
  assert.deepEqual(s1.__errors.concat(s2.__errors), [], 's1.__errors.concat(s2.__errors)')
})
