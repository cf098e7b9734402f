'use strict'
// Upgrades are asked only of a peer that can prove its tree from our length, as hypercore:
// a sync says canUpgrade only when the sender holds the roots of the receiver's tree, and
// a reader asks no upgrade of a peer that said it cannot. A sparse peer that learned a long
// tree from its roots alone (a fresh replica's first upgrade, Autobase's fast-forward)
// cannot prove it from a shorter length; asked anyway, it answers invalid-request, and at
// 64 of those it ends the connection (what hung Autobase's fast-forward tests).
const assert = require('node:assert/strict')
const b4a = require('b4a')
const { forEachPairing, within, until, pipeStores, delay } = require('./helpers/replication.js')

forEachPairing('no upgrade is asked of a peer that cannot prove it', async (t, p, e) => {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'w' })
  await w.ready()
  await w.append(b4a.from('block 0'))

  // the reader holds block 0 of the 1-block tree
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  const first = pipeStores(e, ws, rs)
  await within(5000, r.get(0), 'reader gets block 0')
  assert.equal(r.length, 1)
  first.s1.destroy()
  await until(() => r.replicator.peers.length === 0, 5000, 'reader disconnected')

  const more = []
  for (let i = 1; i < 200; i++) more.push(b4a.from('block ' + i))
  await w.append(more)

  // a sparse peer learns the 200-block tree from its roots only
  const ss = e.store(p.Writer)
  const s = ss.get({ key: w.key })
  await s.ready()
  const second = pipeStores(e, ws, ss)
  await within(5000, s.update({ wait: true }), 'sparse peer update')
  assert.equal(s.length, 200)
  assert.equal(await s.has(0), false, 'the sparse peer holds no block')
  second.s1.destroy()
  await until(() => s.replicator.peers.length === 0, 5000, 'sparse peer disconnected')

  pipeStores(e, rs, ss)
  await until(() => r.replicator.peers.length === 1 && s.replicator.peers.length === 1, 5000, 'peers')
  await delay(500)
  assert.equal(s.replicator.stats.invalidRequests, 0, 'the sparse peer was asked nothing it cannot prove')
  assert.equal(r.length, 1, 'the reader stays at its length')
  assert.equal(r.replicator.peers.length, 1, 'the connection is still up')
  assert.equal(r.replicator.peers[0].remoteLength, 200, 'the reader knows the longer tree')
})
