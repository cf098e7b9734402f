'use strict'
// Two writers of one key that fork (the same key pair appending different blocks in two
// stores), as hypercore detects it: a reader that has one writer's tree gets data from the
// other that does not verify ('verification-error' INVALID_SIGNATURE; the stream stays, that
// peer is paused), asks that peer for its whole tree, finds two valid trees at one length and
// emits 'conflict' (length, fork, proof) on every session, which then close; it tells its
// peers, so the forked writer finds the conflict too. The first writer, which the reader
// agrees with, stays open. Every writer→reader pairing, side by side with JS corestore.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const hc = require('hypercore-crypto')
const { forEachPairing, within, eventOnce } = require('./helpers/replication.js')

function pipe(e, a, b, label) {
  const s1 = e.stream(a.replicate(true), label + '1')
  const s2 = e.stream(b.replicate(false), label + '2')
  s1.pipe(s2).pipe(s1)
}

forEachPairing('forked writers: verification-error, then conflict, and the sessions close', async (t, p, e) => {
  const keyPair = hc.keyPair()
  const as = e.store(p.Writer)
  const fs = e.store(p.Writer)
  const a = as.get({ keyPair })
  const forked = fs.get({ keyPair })
  await a.ready()
  await forked.ready()
  assert.deepEqual(a.key, forked.key, 'one key')
  await a.append(b4a.from('a0'))
  await forked.append([b4a.from('b0'), b4a.from('b1')])

  const rs = e.store(p.Reader)
  const r = rs.get({ key: a.key })
  await r.ready()
  const events = []
  r.on('verification-error', (err) => events.push('verification-error ' + err.code))
  forked.on('conflict', (length, fork) => events.push(`forked conflict ${length} ${fork}`))
  a.on('conflict', () => events.push('a conflict'))
  const conflict = eventOnce(r, 'conflict', 10000, "reader's conflict")
  const forkedClosed = eventOnce(forked, 'close', 10000, 'forked writer closes')

  pipe(e, as, rs, 'a')
  assert.equal(b4a.toString(await within(5000, r.get(0), 'r.get(0)')), 'a0')
  pipe(e, fs, rs, 'f')

  const [length, fork, proof] = await conflict
  assert.equal(length, 1)
  assert.equal(fork, 0)
  assert.equal(proof.fork, 0)
  assert.equal(proof.upgrade.length, 1)
  assert.ok(events.includes('verification-error INVALID_SIGNATURE'), events.join(', '))
  await forkedClosed
  assert.ok(events.includes('forked conflict 1 0'), events.join(', '))
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(r.closed, true, 'the reader session closed')
  assert.equal(forked.closed, true, 'the forked writer closed')
  assert.equal(a.closed, false, 'the writer the reader agrees with stays')
  assert.ok(!events.includes('a conflict'))
})

