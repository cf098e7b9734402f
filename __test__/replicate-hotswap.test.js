'use strict'
// hypercore's hotswap: a reader with a slow peer and a fast one does not wait for the slow
// one to send what it was asked for. The fast peer, once idle, asks for the blocks that are
// slow to come (its `stats.hotswaps`), the first copy to arrive is kept and the other
// request is cancelled (`wireCancel`). The fast peer is JS or corestore-native; the reader,
// whose scheduling this is, is corestore-native.
const assert = require('node:assert/strict')
const { Transform } = require('node:stream')
const b4a = require('b4a')
const { forEachPairing, within, until, pipeStores } = require('./helpers/replication.js')

const BLOCKS = 64
const BLOCK_SIZE = 32 * 1024
// the slow peer sends 8 blocks a second: 8 s for all of them alone
const SLOW_BYTES_PER_SECOND = 8 * BLOCK_SIZE

// Passes bytes on at `rate` bytes a second, in pieces of at most 16 KiB (a link, not a
// queue of whole writes: a peer that writes all its answers at once still trickles).
class Throttle extends Transform {
  constructor(rate) {
    super()
    this.rate = rate
  }

  _transform(chunk, encoding, cb) {
    const piece = chunk.subarray(0, 16 * 1024)
    setTimeout(() => {
      this.push(piece)
      if (piece.length === chunk.length) cb()
      else this._transform(chunk.subarray(piece.length), encoding, cb)
    }, (piece.length * 1000) / this.rate)
  }
}

forEachPairing(
  'a fast peer takes over the blocks a slow peer is slow to send, and the slow requests are cancelled',
  async (t, p, e) => {
    const ws = e.store(p.Writer)
    const w = ws.get({ name: 'w' })
    await w.ready()
    await w.append(Array.from({ length: BLOCKS }, (_, i) => b4a.alloc(BLOCK_SIZE, i)))

    // the slow peer: a full copy in corestore-native, which sends each answer as it is
    // ready (JS hypercore sends the answers to one batch of requests as one message, so
    // through a slow link they would all come at the end)
    const ss = e.store(p.Reader)
    const slow = ss.get({ key: w.key })
    await slow.ready()
    const copy = pipeStores(e, ws, ss)
    await within(10000, slow.download({ start: 0, end: BLOCKS }).done(), 'the slow copy')
    copy.s1.destroy()

    const rs = e.store(p.Reader)
    const r = rs.get({ key: w.key })
    await r.ready()

    // everything is asked of the slow peer first
    const s1 = e.stream(ss.replicate(true), 'slow')
    const s2 = e.stream(rs.replicate(false), 'reader (slow)')
    const throttle = e.stream(new Throttle(SLOW_BYTES_PER_SECOND), 'throttle')
    s1.pipe(throttle).pipe(s2).pipe(s1)
    const started = Date.now()
    const done = r.download({ start: 0, end: BLOCKS }).done()
    const askedAll = () => r.length === BLOCKS && r.replicator.peers[0].inflight >= BLOCKS - 2
    await until(() => r.replicator.peers.length === 1 && askedAll(), 5000, 'all asked of the slow peer')
    const slowPeer = r.replicator.peers[0]

    pipeStores(e, ws, rs)
    await within(6000, done, 'the download, with the fast peer helping')
    const elapsed = Date.now() - started

    const fastPeer = r.replicator.peers.find((peer) => peer !== slowPeer)
    assert.ok(fastPeer, 'the fast peer')
    assert.ok(fastPeer.stats.hotswaps > 0, 'the fast peer took over blocks')
    assert.equal(slowPeer.stats.hotswaps, 0, 'the slow peer took over nothing')
    assert.ok(slowPeer.stats.wireCancel.tx > 0, 'requests to the slow peer were cancelled')
    assert.ok(fastPeer.stats.wireData.rx > slowPeer.stats.wireData.rx, 'most blocks came from the fast peer')
    assert.equal(r.replicator.stats.hotswaps, fastPeer.stats.hotswaps, 'the core counts them too')
    assert.ok(elapsed < (BLOCKS * BLOCK_SIZE * 1000) / SLOW_BYTES_PER_SECOND, `done in ${elapsed} ms`)
    for (let i = 0; i < BLOCKS; i++) assert.ok(b4a.equals(await r.get(i), b4a.alloc(BLOCK_SIZE, i)), `block ${i}`)
  },
  ['js-impl', 'impl-impl']
)
