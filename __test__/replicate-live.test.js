'use strict'
// Live replication, for every writer→reader pairing over an in-process pipe: appends made
// after connecting reach the reader ('append' events, no update() needed), a truncation plus
// different appends reach it ('truncate' event with (newLength, fork), fork increments, new
// blocks readable, kept blocks intact), a core opened on the writer after the stream is live
// replicates, get() of a block not yet appended waits for it, and get({timeout}) rejects with
// REQUEST_TIMEOUT when nobody has the block. Also what update()/get() do with no peers.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const { treeHashOf } = require('./helpers/util.js')
const {
  forEachPairing,
  within,
  until,
  eventOnce,
  rejectsWith,
  pipeStores,
  variedBlocks,
  readAll,
  sameBuffer,
  delay
} = require('./helpers/replication.js')

async function setup(e, p, initial) {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'live' })
  await w.ready()
  if (initial.length) await w.append(initial)
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  return { ws, w, rs, r }
}

forEachPairing('no peers: update({wait:true}) is false, get(wait:false) null, get({timeout}) REQUEST_TIMEOUT', async (t, p, e) => {
  const { w, r } = await setup(e, p, [b4a.from('x')])
  assert.equal(await within(2000, r.update({ wait: true }), 'update with no peers'), false, 'update with no peers')
  assert.equal(await within(2000, w.update({ wait: true }), 'writer update'), false, 'a writer has nothing to update')
  const snap = r.snapshot()
  assert.equal(await within(2000, snap.update({ wait: true }), 'snapshot update'), false, 'a snapshot does not update')
  await snap.close()
  assert.equal(r.length, 0, 'r.length')
  assert.equal(await within(2000, r.get(0, { wait: false }), 'get wait:false'), null, 'get wait:false')
  const start = Date.now()
  await rejectsWith(r.get(0, { timeout: 200 }), 'REQUEST_TIMEOUT', 3000, 'get({timeout:200}) with no peers')
  assert.ok(Date.now() - start >= 150, 'the timeout is honoured, not an immediate failure')
})

forEachPairing('findingPeers(): update() waits for the first peer, done() with none gives false; update() alone does not wait', async (t, p, e) => {
  const { ws, rs, r } = await setup(e, p, variedBlocks(3, 'finding'))
  const settled = (promise) => {
    const s = { done: false, value: undefined }
    promise.then((v) => Object.assign(s, { done: true, value: v }))
    return s
  }

  // no peer yet: the update waits while someone is finding peers, and is false once done
  const done = r.findingPeers()
  const first = settled(r.update())
  await delay(300)
  assert.equal(first.done, false, 'update() pending while finding peers with no peer')
  done()
  await until(() => first.done, 2000, 'update() settles after done()')
  assert.equal(first.value, false, 'update() after done() with no peer')

  // a peer that shows up while finding answers it
  const done2 = r.findingPeers()
  const second = r.update()
  await delay(100)
  pipeStores(e, ws, rs)
  assert.equal(await within(5000, second, 'update() once a peer connects'), true, 'update() once a peer connects')
  assert.equal(r.length, 3, 'r.length')
  done2()

  // without findingPeers and without { wait: true }, update() does not wait for anyone
  assert.equal(await within(2000, r.update(), 'update() with nothing newer'), false, 'update() with nothing newer')
})

forEachPairing('store.findingPeers(): sessions open now and opened meanwhile wait in update() until done', async (t, p, e) => {
  const { ws, rs, r } = await setup(e, p, variedBlocks(3, 'store-finding'))
  const pending = (promise) => {
    const s = { done: false, value: undefined }
    promise.then((v) => Object.assign(s, { done: true, value: v }))
    return s
  }
  const done = rs.findingPeers()
  const later = rs.get({ key: r.key }) // a session opened while the store is finding
  await later.ready()
  const a = pending(r.update())
  const b = pending(later.update())
  await delay(300)
  assert.deepEqual([a.done, b.done], [false, false], 'both updates wait while the store finds peers')
  done()
  await until(() => a.done && b.done, 2000, 'updates settle after done()')
  assert.deepEqual([a.value, b.value], [false, false], 'nothing newer without a peer')

  const done2 = rs.findingPeers()
  const c = r.update()
  await delay(100)
  pipeStores(e, ws, rs)
  assert.equal(await within(5000, c, 'update() once a peer connects'), true, 'update() once a peer connects')
  done2()
})

forEachPairing('appends after connecting reach the reader: append events, new length, readable', async (t, p, e) => {
  const initial = variedBlocks(5, 'live0')
  const { ws, w, rs, r } = await setup(e, p, initial)
  const lengths = []
  r.on('append', () => lengths.push(r.length))
  pipeStores(e, ws, rs)

  // the reader learns the length once connected, without calling update()
  await until(() => r.length === 5, 5000, 'reader learns length 5 without update()')
  assert.ok(lengths.includes(5), `append event at length 5 (${lengths})`)

  const more = variedBlocks(60, 'live1', 5)
  const appended = eventOnce(r, 'append', 5000, 'append event for a live append')
  await w.append(more[0])
  await appended
  await until(() => r.length === 6, 5000, 'reader length 6')
  for (let i = 1; i < 10; i++) await w.append(more[i]) // single appends
  await w.append(more.slice(10)) // one batch of 50
  await until(() => r.length === 65, 5000, `reader length 65 (at ${r.length})`)
  assert.ok(lengths.length >= 3, 'several append events')
  for (let i = 1; i < lengths.length; i++) assert.ok(lengths[i] > lengths[i - 1], `append lengths grow: ${lengths}`)
  assert.equal(lengths[lengths.length - 1], 65, 'lengths[lengths.length - 1]')

  const all = initial.concat(more)
  await readAll(r, all, { what: 'live-appended blocks' })
  sameBuffer(await r.treeHash(), treeHashOf(all), 'treeHash')
})

forEachPairing('truncation on the writer reaches the reader: truncate event, fork, new blocks', async (t, p, e) => {
  const initial = variedBlocks(10, 'old')
  const { ws, w, rs, r } = await setup(e, p, initial)
  pipeStores(e, ws, rs)
  await within(5000, r.update({ wait: true }), 'update')
  await readAll(r, initial, { what: 'before truncate' })
  assert.equal(r.fork, 0, 'r.fork')

  const events = []
  r.on('truncate', (ancestors, fork) => events.push(['truncate', ancestors, fork, r.length, r.fork]))
  r.on('append', () => events.push(['append', r.length, r.fork]))

  const truncated = eventOnce(r, 'truncate', 5000, "reader 'truncate' event")
  await w.truncate(6)
  assert.equal(w.fork, 1, 'w.fork')
  const [ancestors, fork] = await truncated
  assert.equal(ancestors, 6, 'truncate event: ancestors (new length)')
  assert.equal(fork, 1, 'truncate event: fork id')
  assert.equal(r.fork, 1, 'reader fork incremented')
  assert.equal(r.length, 6, 'reader length after truncate')

  const fresh = variedBlocks(4, 'new', 6)
  await w.append(fresh)
  await until(() => r.length === 10, 5000, `reader length 10 after re-append (at ${r.length})`)
  assert.equal(r.fork, 1, 'r.fork')
  const expected = initial.slice(0, 6).concat(fresh)
  await readAll(r, expected, { what: 'after truncate + append' })
  for (let i = 6; i < 10; i++) assert.ok(!b4a.equals(expected[i], initial[i]), 'the new data differs')
  sameBuffer(await r.treeHash(), treeHashOf(expected), 'treeHash after the fork')
  sameBuffer(await r.treeHash(), await w.treeHash(), 'treeHash reader vs writer')
  assert.deepEqual(events.map((x) => x[0]).slice(0, 2), ['truncate', 'append'], JSON.stringify(events))
})

forEachPairing('a core opened on the writer after the stream is live replicates', async (t, p, e) => {
  const { ws, w, rs, r } = await setup(e, p, [b4a.from('first')])
  pipeStores(e, ws, rs)
  await within(5000, r.update({ wait: true }), 'update of the first core')

  const late = ws.get({ name: 'late' })
  await late.ready()
  const lateBlocks = variedBlocks(30, 'late')
  await late.append(lateBlocks)

  const rl = rs.get({ key: late.key })
  await rl.ready()
  assert.equal(await within(5000, rl.update({ wait: true }), 'update of the late core'), true, 'update of the late core')
  assert.equal(rl.length, 30, 'rl.length')
  await readAll(rl, lateBlocks, { what: 'late core' })

  // and the first core still replicates on the same stream
  await w.append(b4a.from('second'))
  await until(() => r.length === 2, 5000, 'first core still live')
  sameBuffer(await within(5000, r.get(1), 'get(1)'), b4a.from('second'))
})

forEachPairing('get() of a block not yet appended waits and resolves once the writer appends it', async (t, p, e) => {
  const { ws, w, rs, r } = await setup(e, p, [b4a.from('b0'), b4a.from('b1')])
  pipeStores(e, ws, rs)
  await within(5000, r.update({ wait: true }), 'update')
  assert.equal(r.length, 2, 'r.length')

  let settled = false
  const pending = r.get(4).then(
    (v) => ((settled = true), v),
    (err) => ((settled = true), Promise.reject(err))
  )
  await delay(150)
  assert.equal(settled, false, 'get(4) waits while the block does not exist')
  await w.append([b4a.from('b2'), b4a.from('b3')])
  await delay(100)
  assert.equal(settled, false, 'still waiting at length 4')
  await w.append(b4a.from('b4'))
  sameBuffer(await within(5000, pending, 'get(4) resolves after the append'), b4a.from('b4'))
})

forEachPairing('get({timeout}) rejects with REQUEST_TIMEOUT when the peer does not have the block', async (t, p, e) => {
  const { ws, w, rs, r } = await setup(e, p, [b4a.from('b0')])
  const { s1, s2 } = pipeStores(e, ws, rs)
  await within(5000, r.update({ wait: true }), 'update')
  const start = Date.now()
  await rejectsWith(r.get(50, { timeout: 200 }), 'REQUEST_TIMEOUT', 3000, 'get(50, {timeout:200})')
  assert.ok(Date.now() - start >= 150, 'not before the timeout')
  // the stream is unaffected
  assert.equal(s1.destroyed, false, 's1.destroyed')
  assert.equal(s2.destroyed, false, 's2.destroyed')
  await w.append(b4a.from('b1'))
  sameBuffer(await within(5000, r.get(1), 'get(1) after the timeout'), b4a.from('b1'))
})
