'use strict'
// hypercore's session extensions (core.registerExtension) between every pairing, over a
// raw replication stream and over a secret-stream connection's Protomux: messages both
// ways with an encoding, send() to one peer, broadcast(), the default (compact-encoding
// buffer) encoding, and destroy() / closing the session stop delivery.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const { forEachPairing, until, pipeStores, secretStreamPair, delay } = require('./helpers/replication.js')

async function pair(e, p) {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'ext' })
  await w.ready()
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  return { ws, w, rs, r }
}

function connect(e, ws, rs, how) {
  if (how === 'pipe') return pipeStores(e, ws, rs)
  const [a, b] = secretStreamPair(e)
  ws.replicate(a)
  rs.replicate(b)
}

for (const how of ['pipe', 'secret-stream']) {
  forEachPairing(`extensions over a ${how}: both ways, send/broadcast, encodings, destroy`, async (t, p, e) => {
    const { ws, w, rs, r } = await pair(e, p)
    const got = { w: [], r: [], raw: [] }
    const we = w.registerExtension('chat', {
      encoding: 'json',
      onmessage: (m, peer) => {
        got.w.push(m)
        we.send({ re: m.n }, peer) // answer the peer it came from
      }
    })
    const re = r.registerExtension('chat', { encoding: 'json', onmessage: (m) => got.r.push(m) })
    w.registerExtension('raw', { onmessage: (m) => got.raw.push(b4a.toString(m)) })
    const rr = r.registerExtension('raw')

    const added = new Promise((resolve) => r.once('peer-add', resolve))
    connect(e, ws, rs, how)
    await added
    await until(() => w.peers.length === 1, 5000, 'writer sees the peer')

    re.broadcast({ n: 1 })
    re.broadcast({ n: 2 }) // hypercore sends the same name again as an empty name
    rr.send(b4a.from('bytes'), r.peers[0])
    await until(() => got.r.length === 2 && got.raw.length === 1, 5000, 'messages and answers arrive')
    assert.deepEqual(got.w, [{ n: 1 }, { n: 2 }])
    assert.deepEqual(got.r, [{ re: 1 }, { re: 2 }])
    assert.deepEqual(got.raw, ['bytes'], 'default encoding: a compact-encoding buffer')

    // destroyed on the receiver: nothing more arrives there
    we.destroy()
    re.broadcast({ n: 3 })
    rr.send(b4a.from('after'), r.peers[0])
    await until(() => got.raw.length === 2, 5000, 'the other extension still works')
    await delay(100)
    assert.deepEqual(got.w, [{ n: 1 }, { n: 2 }], 'a destroyed extension receives nothing')
  })
}

// hypercore's own extension test sends two messages and looks one event-loop turn later.
// JS processes both in that turn. A stream that gave the event loop a turn after the first
// write following a quiet spell delivered the second a turn late.
for (const how of ['pipe', 'secret-stream']) {
  forEachPairing(`extensions over a ${how}: two messages sent in one turn arrive by the next`, async (t, p, e) => {
    const { ws, w, rs, r } = await pair(e, p)
    const got = []
    w.registerExtension('turn', { encoding: 'utf-8', onmessage: (m) => got.push(m) })
    const re = r.registerExtension('turn', { encoding: 'utf-8' })
    const added = new Promise((resolve) => r.once('peer-add', resolve))
    connect(e, ws, rs, how)
    await added
    await until(() => w.peers.length === 1, 5000, 'writer sees the peer')
    for (let round = 0; round < 3; round++) {
      await delay(30) // a quiet spell, longer than a stream's 10 ms between yields
      re.send('hello', r.peers[0])
      re.send('world', r.peers[0])
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepEqual(got.splice(0), ['hello', 'world'], `round ${round}: both within the turn`)
    }
  })
}
