'use strict'
// hypercore's replication stats (`core.replicator.stats`, `peer.stats`), read by
// hypercore-stats and by applications that watch their peers: the same keys as hypercore,
// counts that grow while a holder keeps the object, and what one side sent is what the
// other received, in every writer→reader pairing. Also the messages those counts made
// visible: a clear tells peers the blocks are gone (a range with drop), and a want for
// blocks a peer lacks is answered with its bitfield even when empty, as hypercore does.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const { forEachPairing, within, until, pipeStores, delay } = require('./helpers/replication.js')

const KEYS = [
  'wireSync',
  'wireRequest',
  'wireCancel',
  'wireData',
  'wireWant',
  'wireUnwant',
  'wireBitfield',
  'wireRange',
  'wireExtension',
  'hotswaps',
  'invalidData',
  'invalidRequests',
  'backoffs',
  'notAvailableBackoffs'
]

function plain(stats) {
  return JSON.parse(JSON.stringify(stats))
}

async function pair(e, p, blocks) {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'w' })
  await w.ready()
  if (blocks > 0) await w.append(Array.from({ length: blocks }, (_, i) => b4a.from('b' + i)))
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  return { ws, w, rs, r }
}

forEachPairing('replicator and peer stats count the messages each way', async (t, p, e) => {
  const { ws, w, rs, r } = await pair(e, p, 3)
  const wStats = w.replicator.stats
  const rStats = r.replicator.stats
  assert.deepEqual(Object.keys(rStats), KEYS, 'the keys of hypercore, in its order')
  for (const key of KEYS.slice(0, 9)) assert.deepEqual(plain(rStats[key]), { tx: 0, rx: 0 }, key)

  const { s1 } = pipeStores(e, ws, rs)
  await within(5000, r.download({ start: 0, end: 3 }).done(), 'download')
  await until(() => w.replicator.peers.length === 1, 5000, 'writer sees the peer')

  // the objects held from before the transfer show its counts
  assert.ok(rStats.wireData.rx >= 3, 'reader received the blocks')
  assert.ok(rStats.wireRequest.tx >= 3, 'reader requested them')
  await until(
    () =>
      wStats.wireSync.tx === rStats.wireSync.rx &&
      wStats.wireData.tx === rStats.wireData.rx &&
      rStats.wireRequest.tx === wStats.wireRequest.rx,
    5000,
    'what one side sent, the other received'
  )
  assert.equal(wStats.wireData.tx, rStats.wireData.rx)
  assert.equal(wStats.wireRange.tx, rStats.wireRange.rx)
  assert.deepEqual(
    plain(r.replicator.peers[0].stats),
    plain(rStats),
    'one peer: its stats are the core stats'
  )

  // stats outlive the peer they came from
  const before = plain(rStats)
  s1.destroy()
  await until(() => r.replicator.peers.length === 0, 5000, 'peer removed')
  assert.deepEqual(plain(rStats), before, 'core stats keep the counts of a peer gone')
})

// A writer of `blocks` blocks and a reader that downloaded them all and heard the writer
// hold them all: the writer, and the writer as the reader's peer.
async function heldInFull(e, p, blocks) {
  const { ws, w, rs, r } = await pair(e, p, blocks)
  pipeStores(e, ws, rs)
  await within(5000, r.download({ start: 0, end: blocks }).done(), 'download')
  await until(() => r.replicator.peers.length === 1, 5000, 'reader sees the peer')
  const peer = r.replicator.peers[0]
  await until(() => peer.remoteContiguousLength === blocks, 5000, `writer announced ${blocks} contiguous`)
  return { w, peer }
}

forEachPairing('a clear tells peers the blocks are gone', async (t, p, e) => {
  const { w, peer } = await heldInFull(e, p, 3)
  const sent = w.replicator.stats.wireRange.tx

  await w.clear(1, 2)
  await until(() => peer.remoteContiguousLength === 1, 5000, 'reader hears of the clear')
  assert.equal(w.replicator.stats.wireRange.tx, sent + 1, 'one range (drop) sent')
})

forEachPairing('a sweep tells peers the blocks it cleared', async (t, p, e) => {
  const { w, peer } = await heldInFull(e, p, 4)

  await w.startMarking()
  await w.markBlock(0, 2) // blocks 2 and 3 are not marked: the sweep clears them
  await w.sweep()
  assert.deepEqual([await w.has(1), await w.has(2)], [true, false], 'swept')
  await until(() => peer.remoteContiguousLength === 2, 5000, 'reader hears of the sweep')
})

forEachPairing('a want for blocks the peer lacks is answered with its bitfield', async (t, p, e) => {
  // the writer has 5 blocks; a middle peer knows the length but holds none; the reader asks it
  const { ws, w, rs: ms, r: m } = await pair(e, p, 5)
  pipeStores(e, ws, ms)
  await within(5000, m.update({ wait: true }), 'middle update')
  assert.equal(m.length, 5)
  const rs = e.store(p.Writer) // a third store, of the writer's implementation
  const r = rs.get({ key: w.key })
  await r.ready()
  pipeStores(e, ms, rs)
  await until(() => r.replicator.peers.length === 1 && r.length === 5, 5000, 'reader synced')
  await delay(100)
  const stats = r.replicator.peers[0].stats
  assert.equal(stats.wireBitfield.rx, 0, 'nothing asked yet')
  await assert.rejects(r.get(1, { timeout: 200 }), /REQUEST_TIMEOUT/)
  await until(() => stats.wireBitfield.rx === 1, 5000, 'the bitfield came back')
})

// An empty reader without the manifest, facing a longer peer, asks once: the eager upgrade
// brings the manifest with it (hypercore asks for the manifest alone only from an empty
// peer). It asked twice (manifest, then upgrade): hypercore's replicate.js "messages
// exchanged when empty core connects to non-sparse" / "... to sparse" count one request
// and one data. The peer is the writer, then a sparse replica holding blocks 1 and 3.
forEachPairing('an empty reader asks a longer peer once: the upgrade brings the manifest', async (t, p, e) => {
  const { ws, w, rs: ss, r: sparse } = await pair(e, p, 5)
  const r1 = e.store(p.Reader)
  const reader = r1.get({ key: w.key })
  await reader.ready()
  const { s1 } = pipeStores(e, ws, r1)
  await until(() => reader.length === 5 && reader.manifest !== null, 5000, 'reader upgraded')
  await delay(300)
  const stats = reader.replicator.peers[0].stats
  assert.deepEqual([stats.wireRequest.tx, stats.wireData.rx], [1, 1], 'one request, one data (writer)')
  // and three syncs each way, as hypercore's: the reader syncs when it opens, when the
  // manifest arrives (length still 0) and after the upgrade; the writer answers each
  assert.deepEqual([stats.wireSync.tx, stats.wireSync.rx], [3, 3], 'three syncs each way (writer)')
  s1.destroy()

  // a sparse replica of the writer's implementation: blocks 1 and 3
  const { s1: s2 } = pipeStores(e, ws, ss)
  await within(5000, Promise.all([sparse.get(1), sparse.get(3)]), 'sparse gets')
  s2.destroy()
  await until(() => sparse.replicator.peers.length === 0, 5000, 'sparse unreplicated')
  const r2 = e.store(p.Reader)
  const fresh = r2.get({ key: w.key })
  await fresh.ready()
  pipeStores(e, ss, r2)
  await until(() => fresh.length === 5 && fresh.manifest !== null, 5000, 'fresh reader upgraded')
  await delay(300)
  const st = fresh.replicator.peers[0].stats
  assert.deepEqual([st.wireRequest.tx, st.wireData.rx], [1, 1], 'one request, one data (sparse peer)')
  assert.equal(sparse.contiguousLength, 0)
})

// A get of a block past every peer's length asks the peers with a want, as hypercore's
// _maybeWant (hypercore's replicate.js "basic replication stats" counts it). We sent wants
// only for blocks below both our length and the peer's.
forEachPairing('a get past the peer’s length asks it with a want', async (t, p, e) => {
  const { ws, w, rs, r } = await pair(e, p, 5)
  pipeStores(e, ws, rs)
  await within(5000, r.download({ start: 0, end: 5 }).done(), 'download')
  await until(() => w.replicator.peers.length === 1, 5000, 'writer sees the peer')
  const wStats = w.replicator.peers[0].stats
  assert.equal(wStats.wireWant.rx, 0, 'nothing wanted yet')
  await assert.rejects(r.get(10, { timeout: 300 }), /REQUEST_TIMEOUT/)
  await until(() => wStats.wireWant.rx > 0, 5000, 'the writer got a want')
  assert.equal(r.replicator.peers[0].stats.wireWant.tx, wStats.wireWant.rx)
})

// The want goes out as soon as the get is made, with the requests of a download made at
// the same time, as hypercore's get asks before it awaits anything: the writer has it once
// the download is done. Ours waited for an event-loop turn first, so the want went out only
// after the download. hypercore-storage's db.idle() (which hypercore's stats test awaits
// before reading the counts) resolves once what peers sent so far is processed.
forEachPairing('a get past the end made with a download wants at once', async (t, p, e) => {
  const { ws, w, rs, r } = await pair(e, p, 5)
  const wStats = w.replicator.stats
  pipeStores(e, ws, rs)
  const waiting = r.get(10).catch((err) => err.code)
  await within(5000, r.download({ start: 0, end: 5 }).done(), 'download')
  await within(5000, r.state.storage.db.idle(), 'idle')
  assert.ok(wStats.wireWant.rx > 0, 'the writer had the want when the download was done')
  await r.close()
  assert.equal(await waiting, 'REQUEST_CANCELLED')
})

// The same when the request slots are full: hypercore asks about a block no peer holds as
// soon as it tries to request it, whatever else is in flight. Ours took a request slot for
// the block past the end, which it cannot request before the upgrade: with one slot, the
// download stalled one block short (impl→impl), and the want waited for the scan.
forEachPairing('a get past the end wants at once while the request slots are full', async (t, p, e) => {
  const { ws, w, rs, r } = await pair(e, p, 64)
  r.replicator.setInflightRange([1, 1])
  const wStats = w.replicator.stats
  let first = null
  const downloaded = new Promise((resolve) => r.once('download', resolve))
  pipeStores(e, ws, rs)
  const waiting = r.get(100).catch((err) => err.code)
  const range = r.download({ start: 0, end: 64 })
  await within(5000, downloaded, 'first block')
  first = wStats.wireWant.rx
  await within(10000, range.done(), 'download')
  assert.ok(first > 0, 'the writer had the want when the first block came')
  await r.close()
  assert.equal(await waiting, 'REQUEST_CANCELLED')
})
