'use strict'
// hypercore's push mode through corestore: get({ allowPush: true }) tells peers (their
// peer.remoteAllowPush) while the core has an active session; setActive(false) on the last
// one takes it back, setActive(true) gives it again; a block a peer pushes unasked is
// verified and kept, and its download event has no request. Side by side with JS corestore
// for every pairing. Pushing is hypercore's session.replicator.push(index); a pushOnly core
// asks for nothing but get({ force: true }); append's postappend hook runs before the
// session's 'append' event.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const {
  forEachPairing,
  within,
  until,
  eventOnce,
  rejectsWith,
  JSCorestore,
  IMPL_IS_JS
} = require('./helpers/replication.js')

async function pair(e, p) {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'w' })
  await w.ready()
  await w.append(['1', '2', '3'].map((s) => b4a.from(s)))
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key, allowPush: true })
  await r.ready()
  const s1 = e.stream(ws.replicate(true), 's1')
  const s2 = e.stream(rs.replicate(false), 's2')
  s1.pipe(s2).pipe(s1)
  return { ws, w, rs, r }
}

forEachPairing('allowPush is announced while the core has an active session', async (t, p, e) => {
  const { w, r } = await pair(e, p)
  await within(5000, r.get(0), 'r.get(0)')
  await until(() => w.peers.length === 1 && w.peers[0].remoteAllowPush === true, 5000, 'writer sees allowPush')
  assert.equal(r.peers[0].remoteAllowPush, false, 'the writer allows no push')

  r.setActive(false)
  await within(5000, r.get(1), 'r.get(1)') // a round trip
  await until(() => w.peers[0].remoteAllowPush === false, 5000, 'inactive: no push')

  r.setActive(true)
  await within(5000, r.get(2), 'r.get(2)')
  await until(() => w.peers[0].remoteAllowPush === true, 5000, 'active again')
})

forEachPairing('without allowPush, or with only inactive sessions, peers see no push', async (t, p, e) => {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'w' })
  await w.ready()
  await w.append(b4a.from('x'))
  const rs = e.store(p.Reader)
  const plain = rs.get({ key: w.key })
  await plain.ready()
  const s1 = e.stream(ws.replicate(true), 's1')
  const s2 = e.stream(rs.replicate(false), 's2')
  s1.pipe(s2).pipe(s1)
  await within(5000, plain.get(0), 'get(0)')
  await until(() => w.peers.length === 1, 5000, 'peer')
  assert.equal(w.peers[0].remoteAllowPush, false)
  // a second session's allowPush does not change a core opened without it (corestore)
  const again = rs.get({ key: w.key, allowPush: true })
  await again.ready()
  await within(5000, again.get(0), 'get(0) again')
  assert.equal(w.peers[0].remoteAllowPush, false)
})

forEachPairing(
  'a pushed block is verified and kept; its download event has no request',
  async (t, p, e) => {
    const { w, r } = await pair(e, p)
    await within(5000, r.get(0), 'r.get(0)')
    await until(() => w.peers.length === 1 && w.peers[0].remoteAllowPush === true, 5000, 'allowPush seen')
    const downloads = []
    r.on('download', (index, bytes, from, req) => downloads.push({ index, req: req || null }))
    await w.replicator.push(2)
    // (a JS reader may still raise block 0's download event after its get(0) resolved)
    const pushed = () => downloads.filter((d) => d.index !== 0)
    await until(() => pushed().length === 1, 5000, 'the pushed block arrives')
    assert.equal(pushed()[0].index, 2)
    assert.equal(pushed()[0].req, null, 'nobody asked for it')
    assert.equal(await r.has(2), true)
    assert.equal(await r.has(1), false, 'nothing else came')
    assert.equal(b4a.toString(await r.get(2, { wait: false })), '3')
  }
)

forEachPairing('pushOnly: nothing is asked for but get({ force: true }); pushes fill in the rest', async (t, p, e) => {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'w' })
  await w.ready()
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key, allowPush: true, pushOnly: true })
  await r.ready()
  const errors = []
  r.on('verification-error', (err) => errors.push(err.message))
  const s1 = e.stream(ws.replicate(true), 's1')
  const s2 = e.stream(rs.replicate(false), 's2')
  s1.pipe(s2).pipe(s1)
  await eventOnce(w, 'peer-add')
  for (let i = 0; i < 20; i++) await w.append(b4a.from('' + i))
  await rejectsWith(r.get(0, { timeout: 300 }), 'REQUEST_TIMEOUT', 5000, 'a pushOnly core asks for nothing')
  const full = new Promise((resolve) => r.on('append', () => r.length === 30 && resolve()))
  const appends = []
  for (let i = 20; i < 30; i++) appends.push(w.append(b4a.from('' + i)).then(() => w.replicator.push(i)))
  assert.equal(b4a.toString(await within(5000, r.get(10, { force: true }), 'forced get')), '10')
  await Promise.all(appends)
  await within(5000, full, 'pushed up to 30')
  await until(() => r.has(29), 5000, 'the last pushed block') // pushes may still be on their way
  assert.equal(await r.has(5), false, 'nothing else was asked for')
  // Ours drops an answer whose upgrade a push overtook and asks again; a JS reader may
  // report it as a verification-error (INVALID_OPERATION) before asking again, depending on
  // the order the answer and the pushes arrive in.
  if (p.Reader !== JSCorestore || IMPL_IS_JS) assert.deepEqual(errors, [])
  else for (const m of errors) assert.match(m, /^INVALID_OPERATION/)
})

forEachPairing("append's postappend runs once the blocks are stored, before 'append'", async (t, p, e) => {
  const store = e.store(p.Writer)
  const core = store.get({ name: 'w' })
  await core.ready()
  const order = []
  core.on('append', () => order.push('append event ' + core.length))
  await core.append([b4a.from('a'), b4a.from('b')], {
    async postappend(blocks) {
      order.push('postappend ' + blocks.length + ' ' + b4a.toString(await core.get(1)))
    }
  })
  assert.deepEqual(order, ['postappend 2 b', 'append event 2'])
}, ['impl-impl', 'js-impl'])
