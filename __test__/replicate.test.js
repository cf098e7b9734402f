'use strict'
// Replication over an in-process pipe: a.replicate(true) <-> b.replicate(false), for every
// writer→reader pairing (impl→JS, JS→impl, impl→impl; see helpers/replication.js).
// Checks: a reader that opens a core by key learns its length (update), manifest and tree
// hash, reads every block byte-exactly in order and in random order, stays sparse until it
// reads, downloads exact ranges, sees peer-add / peer-remove, and that destroying either
// stream ends replication cleanly on both sides with both stores still usable.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const { treeHashOf } = require('./helpers/util.js')
const {
  forEachPairing,
  within,
  until,
  closed,
  pipeStores,
  variedBlocks,
  appendAll,
  shuffled,
  readAll,
  sameBuffer,
  sameManifest,
  noUncaught
} = require('./helpers/replication.js')

const N = 1000

async function writerWith(e, Writer, blocks, name = 'data') {
  const store = e.store(Writer)
  const core = store.get({ name })
  await core.ready()
  await appendAll(core, blocks)
  assert.equal(core.length, blocks.length, 'core.length')
  return { store, core }
}

forEachPairing('1000 varied blocks: update, manifest, treeHash, sparse reads in order and random order, peers', async (t, p, e) => {
  const blocks = variedBlocks(N, 'r1')
  assert.ok(blocks.some((b) => b.byteLength === 0) && blocks.some((b) => b.byteLength === 65536), 'blocks.some((b) => b.byteLength === 0) && blocks.some((b) => b.byteLength === 65536)')
  const { store: ws, core: w } = await writerWith(e, p.Writer, blocks)

  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  assert.equal(r.length, 0, 'r.length')
  assert.equal(r.writable, false, 'r.writable')
  sameBuffer(r.discoveryKey, w.discoveryKey, 'discoveryKey from key')

  const events = { r: [], w: [] }
  const downloaded = new Map() // index -> byte length, as the events report them
  const uploaded = new Map()
  for (const [side, core] of [['r', r], ['w', w]]) {
    core.on('peer-add', (peer) => events[side].push(['peer-add', peer]))
    core.on('peer-remove', (peer) => events[side].push(['peer-remove', peer]))
    core.on('append', () => events[side].push(['append']))
  }
  // the third argument names the peer the block came from (went to), one of core.peers
  const strangers = []
  r.on('download', (index, bytes, from) => {
    downloaded.set(index, bytes)
    if (!r.peers.includes(from)) strangers.push(['download', index])
  })
  w.on('upload', (index, bytes, to) => {
    uploaded.set(index, bytes)
    if (!w.peers.includes(to)) strangers.push(['upload', index])
  })

  const { s1, s2 } = pipeStores(e, ws, rs)

  assert.equal(await within(5000, r.update({ wait: true }), 'reader update({wait:true})'), true, 'reader update({wait:true})')
  assert.equal(r.length, N, 'reader length after update')
  assert.equal(r.byteLength, w.byteLength, 'byteLength')
  assert.equal(r.fork, 0, 'r.fork')
  sameManifest(r.manifest, w.manifest, 'reader learned the writer manifest')

  // sparse: nothing downloaded yet; wait:false does not fetch
  assert.equal(r.contiguousLength, 0, 'contiguousLength before reads')
  assert.equal(await r.get(N - 2, { wait: false }), null, 'get(wait:false) of an un-downloaded block')
  assert.equal(await r.has(N - 2), false, 'has() of an un-downloaded block')
  assert.equal(await r.has(N - 1), false, 'has() of the last block before treeHash()')

  // treeHash(): as in JS hypercore, a sparse reader first fetches block length-1 (get), then
  // hashes the roots
  sameBuffer(await within(5000, r.treeHash(), 'reader treeHash()'), await w.treeHash(), 'treeHash reader vs writer')
  sameBuffer(await r.treeHash(), treeHashOf(blocks), 'treeHash vs recomputed')
  assert.equal(await r.has(N - 1), true, 'treeHash() fetched the last block')
  assert.equal(await r.has(N - 2), false, 'and only that one')

  // peers: one each, seen through peer-add, before the reader's append (length change)
  await until(() => w.peers.length === 1, 5000, 'writer sees 1 peer')
  assert.equal(r.peers.length, 1, 'r.peers.length')
  const rAdds = events.r.filter((x) => x[0] === 'peer-add')
  const wAdds = events.w.filter((x) => x[0] === 'peer-add')
  assert.equal(rAdds.length, 1, 'one peer-add on reader')
  assert.equal(wAdds.length, 1, 'one peer-add on writer')
  assert.equal(rAdds[0][1], r.peers[0], 'peer-add argument is the entry of core.peers')
  const rKinds = events.r.map((x) => x[0])
  assert.ok(rKinds.indexOf('peer-add') < rKinds.indexOf('append'), `reader events: ${rKinds}`)
  assert.equal(events.w.filter((x) => x[0] === 'append').length, 0, 'no append event on the writer from replication')
  for (const peer of [r.peers[0], w.peers[0]]) {
    assert.ok(b4a.isBuffer(peer.remotePublicKey) && peer.remotePublicKey.byteLength === 32, 'peer.remotePublicKey')
  }
  assert.ok(!b4a.equals(r.peers[0].remotePublicKey, w.peers[0].remotePublicKey), 'each side sees the other side key')

  // in order: first half
  const half = N / 2
  await readAll(r, blocks, { order: [...Array(half).keys()], concurrency: 1, what: 'in order' })
  assert.ok(r.contiguousLength >= half, `contiguousLength ${r.contiguousLength} >= ${half}`)
  assert.ok(r.contiguousLength < N, `contiguousLength ${r.contiguousLength} < ${N} while sparse`)
  assert.equal(await r.has(N - 2), false, 'block N-2 still not downloaded')

  // random order: second half
  const rest = shuffled(Array.from({ length: N - half }, (_, i) => half + i), 7)
  await readAll(r, blocks, { order: rest, concurrency: 16, what: 'random order' })
  await until(() => r.contiguousLength === N, 5000, 'contiguousLength reaches length')
  assert.equal(await r.has(0, N), true, 'await r.has(0, N)')

  // every block once: download events on the reader, upload events on the writer
  await until(() => downloaded.size === N, 5000, `download events for all blocks (got ${downloaded.size})`)
  await until(() => uploaded.size === N, 5000, `upload events for all blocks (got ${uploaded.size})`)
  assert.deepEqual(strangers.slice(0, 5), [], 'download/upload events name a peer of the core')
  for (const [name, events] of [['download', downloaded], ['upload', uploaded]]) {
    for (const [index, bytes] of events) {
      assert.equal(bytes, blocks[index].byteLength, `${name} event: byte length of block ${index}`)
    }
  }

  // re-reading is local and exact, also with wait:false
  for (const i of shuffled(N, 3).slice(0, 100)) {
    const b = await r.get(i, { wait: false })
    assert.ok(b && b4a.equals(b, blocks[i]), `local block ${i}`)
  }
  assert.deepEqual(s1.__errors, [], 's1.__errors')
  assert.deepEqual(s2.__errors, [], 's2.__errors')
})

forEachPairing('download({start, end}).done() fetches exactly that range', async (t, p, e) => {
  const blocks = variedBlocks(300, 'dl')
  const { store: ws, core: w } = await writerWith(e, p.Writer, blocks)
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  pipeStores(e, ws, rs)
  await within(5000, r.update({ wait: true }), 'update')
  assert.equal(r.length, 300, 'r.length')

  const range = r.download({ start: 100, end: 200 })
  await within(10000, range.done(), 'download(100..200).done()')
  assert.equal(await r.has(100, 200), true, 'range downloaded')
  for (let i = 100; i < 200; i++) {
    const b = await r.get(i, { wait: false })
    assert.ok(b !== null && b4a.equals(b, blocks[i]), `block ${i} local after download`)
  }
  for (const i of [0, 50, 99, 200, 250, 299]) {
    assert.equal(await r.get(i, { wait: false }), null, `block ${i} outside the range not fetched`)
  }
  assert.ok(r.contiguousLength < 100, `contiguousLength ${r.contiguousLength}`)

  // a second range, then everything
  await within(10000, r.download({ start: 0, end: 300 }).done(), 'download(0..300).done()')
  await until(() => r.contiguousLength === 300, 5000, 'contiguousLength 300')
  await readAll(r, blocks, { what: 'after full download' })
})

for (const which of ['initiator', 'responder']) {
  forEachPairing(`destroying the ${which} stream ends replication on both sides, stores stay usable`, async (t, p, e) => {
    const guard = noUncaught(t)
    const blocks = variedBlocks(20, 'dst')
    const { store: ws, core: w } = await writerWith(e, p.Writer, blocks)
    const rs = e.store(p.Reader)
    const r = rs.get({ key: w.key })
    await r.ready()

    const removed = { r: 0, w: 0 }
    r.on('peer-remove', () => removed.r++)
    w.on('peer-remove', () => removed.w++)

    const { s1, s2 } = pipeStores(e, ws, rs)
    await within(5000, r.update({ wait: true }), 'update')
    await readAll(r, blocks.slice(0, 10), { what: 'first reads' })
    await until(() => w.peers.length === 1 && r.peers.length === 1, 5000, 'peers connected')

    const victim = which === 'initiator' ? s1 : s2
    victim.destroy()
    await closed(s1, 5000, 's1 closes')
    await closed(s2, 5000, 's2 closes')
    await until(() => r.peers.length === 0 && w.peers.length === 0, 5000, 'peers gone on both sides')
    assert.equal(removed.r, 1, 'one peer-remove on the reader')
    assert.equal(removed.w, 1, 'one peer-remove on the writer')
    // the destroyed side closes without an error of its own (the other may see PREMATURE_CLOSE)
    assert.deepEqual(victim.__errors, [], 'the destroyed stream emits no error')
    for (const err of [...s1.__errors, ...s2.__errors]) assert.ok(err instanceof Error)

    // both stores usable: local append / local reads / reader has no peer for missing blocks
    await w.append(b4a.from('after-destroy'))
    assert.equal(w.length, 21, 'w.length')
    sameBuffer(await w.get(20), b4a.from('after-destroy'), 'writer local get')
    sameBuffer(await r.get(5), blocks[5], 'reader local get of a downloaded block')
    assert.equal(await r.get(15, { wait: false }), null, 'await r.get(15, { wait: false })')
    const other = ws.get({ name: 'other' })
    await other.ready()
    await other.append('x')

    // a new stream between the same stores replicates again
    pipeStores(e, ws, rs)
    assert.equal(await within(5000, r.update({ wait: true }), 'update over the new stream'), true, 'update over the new stream')
    assert.equal(r.length, 21, 'r.length')
    sameBuffer(await within(5000, r.get(20), 'get(20) over the new stream'), b4a.from('after-destroy'), 'new block')
    sameBuffer(await within(5000, r.get(15), 'get(15) over the new stream'), blocks[15], 'old block')
    guard.check()
  })
}

// download().done() resolves after the 'download' event of every block it waited for, as
// hypercore's (its events come before the range resolves). With the replication worker,
// has() sees a block as soon as the worker stored it, maybe before its event reached the
// session: in some rounds done() resolved with up to 140 of 1000 events still to come
// (hypercore's replicate.js "large linear download" counts them right after done()).
forEachPairing('download().done() comes after the download event of every block', async (t, p, e) => {
  const blocks = Array.from({ length: N }, (_, i) => b4a.from(String(i)))
  for (let round = 0; round < 10; round++) {
    const { store: ws, core: w } = await writerWith(e, p.Writer, blocks, 'linear' + round)
    const rs = e.store(p.Reader)
    const r = rs.get({ key: w.key })
    await r.ready()
    let downloads = 0
    r.on('download', () => downloads++)
    pipeStores(e, ws, rs)
    await within(10000, r.download({ start: 0, end: N, linear: true }).done(), 'download')
    assert.equal(downloads, N, `round ${round}: every download event before done()`)
  }
})

// A linear download of a core the reader has not seen grows from its start: requests wait
// for the upgrade that brings the length, and the passes made while it is on its way must
// not move where the next one starts (each moved it 4096 blocks: 100,000 blocks came from
// 12,288 on, and 1-12,287 last).
forEachPairing('a linear download of a new core starts at its first blocks', async (t, p, e) => {
  const blocks = Array.from({ length: 20000 }, (_, i) => b4a.from(String(i)))
  const { store: ws, core: w } = await writerWith(e, p.Writer, blocks, 'first-blocks')
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  const order = []
  r.on('download', (i) => order.push(i))
  pipeStores(e, ws, rs)
  await within(20000, r.download({ start: 0, end: blocks.length, linear: true }).done(), 'download')
  const early = order.slice(0, 100)
  assert.ok(early.every((i) => i < 4096), `the first downloads: ${early.slice(0, 12).join(', ')}, ...`)
})
