'use strict'
// Replication over a real TCP connection on 127.0.0.1 (net.createServer / net.connect,
// `socket.pipe(store.replicate(isInitiator)).pipe(socket)` on both ends), for every
// writer→reader pairing, with the writer as the TCP server (responder) and as the client
// (initiator). The reader learns length, manifest and tree hash and reads all 1000 blocks
// byte-exactly; closing a socket closes both replication streams and leaves no peers.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const { treeHashOf } = require('./helpers/util.js')
const {
  forEachPairing,
  within,
  until,
  closed,
  tcpStores,
  variedBlocks,
  appendAll,
  shuffled,
  readAll,
  sameBuffer,
  sameManifest,
  noUncaught
} = require('./helpers/replication.js')

const N = 1000

for (const writerRole of ['server', 'client']) {
  forEachPairing(`TCP, writer is the ${writerRole}: 1000 varied blocks`, async (t, p, e) => {
    const guard = noUncaught(t)
    const blocks = variedBlocks(N, 'tcp-' + writerRole)
    const ws = e.store(p.Writer)
    const w = ws.get({ name: 'tcp' })
    await w.ready()
    await appendAll(w, blocks)

    const rs = e.store(p.Reader)
    const r = rs.get({ key: w.key })
    await r.ready()

    const conn =
      writerRole === 'server' ? await tcpStores(e, ws, rs) : await tcpStores(e, rs, ws)

    assert.equal(await within(5000, r.update({ wait: true }), 'update over TCP'), true, 'update over TCP')
    assert.equal(r.length, N, 'r.length')
    sameManifest(r.manifest, w.manifest)
    assert.equal(await r.get(N - 2, { wait: false }), null, 'sparse before reads')

    await readAll(r, blocks, { order: shuffled(N, 11), what: 'random order over TCP' })
    sameBuffer(await r.treeHash(), treeHashOf(blocks), 'treeHash')
    assert.equal(r.contiguousLength, N, 'r.contiguousLength')
    assert.equal(r.peers.length, 1, 'r.peers.length')

    // a live append travels too
    await w.append(b4a.from('tail'))
    await until(() => r.length === N + 1, 5000, 'reader sees the live append over TCP')
    sameBuffer(await within(5000, r.get(N), 'get(N)'), b4a.from('tail'), 'appended block')

    // closing the client socket ends both replication streams
    conn.clientSock.destroy()
    await closed(conn.client, 5000, 'client replication stream closes')
    await closed(conn.server, 5000, 'server replication stream closes')
    await until(() => r.peers.length === 0 && w.peers.length === 0, 5000, 'no peers after close')

    // stores keep working
    await w.append(b4a.from('after'))
    sameBuffer(await r.get(N, { wait: false }), b4a.from('tail'), 'reader local read after close')
    guard.check()
  })
}
