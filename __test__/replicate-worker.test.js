'use strict'
// Replication runs on a worker thread per store (docs/DECISIONS.md §23): the JS thread only
// hands bytes over and takes the output. What a user sees must not change: a process whose
// only pending work is a transfer between two stores finishes it and then exits by itself,
// as with JS corestore, and timers keep firing while it runs. Run against JS corestore too
// (CORESTORE_IMPL=corestore).
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('path')
const { spawnSync } = require('child_process')
const b4a = require('b4a')
const Corestore = require('./helpers/impl.js')
const { tmpdir, stalls } = require('./helpers/util.js')

const IMPL = process.env.CORESTORE_IMPL || path.join(__dirname, '..')
// these tests are about the worker (docs/DECISIONS.md §23): on, whatever npm test's second
// pass of the replication files says
process.env.CORESTORE_NATIVE_REPLICATION_THREAD = '1'

test('a process whose only work is a transfer finishes it, then exits by itself', (t) => {
  const dir = tmpdir(t)
  // nothing but the two streams' promise chain keeps this process busy: the worker's
  // pending jobs must keep it alive, and nothing may keep it alive once they are done
  const script = `
    const Corestore = require(${JSON.stringify(IMPL)})
    const path = require('path')
    ;(async () => {
      const a = new Corestore(path.join(${JSON.stringify(dir)}, 'a'))
      const b = new Corestore(path.join(${JSON.stringify(dir)}, 'b'))
      const w = a.get({ name: 'w' })
      await w.ready()
      const blocks = []
      for (let i = 0; i < 3000; i++) blocks.push(Buffer.alloc(1024, i))
      await w.append(blocks)
      const r = b.get({ key: w.key })
      await r.ready()
      const s1 = a.replicate(true)
      const s2 = b.replicate(false)
      s1.pipe(s2).pipe(s1)
      await r.download({ start: 0, end: 3000 }).done()
      const last = await r.get(2999)
      console.log('done', r.contiguousLength, last[0])
    })()
  `
  const res = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.equal(res.error, undefined, 'exited by itself within 60 s')
  assert.equal(res.status, 0, res.stderr)
  assert.equal(res.stdout.trim(), `done 3000 ${2999 % 256}`)
})

test('timers keep firing while two stores replicate', async (t) => {
  const a = new Corestore(tmpdir(t))
  const b = new Corestore(tmpdir(t))
  const w = a.get({ name: 'w' })
  await w.ready()
  const batch = []
  for (let i = 0; i < 1000; i++) batch.push(b4a.alloc(1024, i))
  for (let i = 0; i < 20; i++) await w.append(batch)
  const r = b.get({ key: w.key })
  await r.ready()

  const s1 = a.replicate(true)
  const s2 = b.replicate(false)
  const { worst, total } = await stalls(async () => {
    s1.pipe(s2).pipe(s1)
    await r.download({ start: 0, end: w.length }).done()
  })
  assert.equal(r.contiguousLength, 20000)
  s1.destroy()
  s2.destroy()
  await a.close()
  await b.close()
  // a transfer that never yields stalls timers for all of its run; here they ran throughout
  // (a single stall is a small part of the run, even on a loaded machine)
  assert.ok(worst < total / 3, `${worst} ms stall in ${total} ms`)
})

// The worker's output carries each core's state with its events, taken without the engine
// (docs/DECISIONS.md §29). A listener of an earlier event may change the core before a later
// event of the same output is routed: that event's state is older and must not put the
// core back. Routed here by hand, with the state the engine had before the listener acted.
test('an event routed after a listener changed the core does not put the core back', { skip: !!process.env.CORESTORE_IMPL }, async (t) => {
  const store = new Corestore(tmpdir(t))
  const core = store.get({ name: 'w' })
  await core.ready()
  await core.append(['a', 'b'])
  const cs = core.core
  const before = cs.native.state(cs.handle)
  let appended = false
  core.on('append', () => {
    if (appended) return
    appended = true
    core.append('c') // runs to the engine before it yields
  })
  const event = () => ({ type: 'append', handle: cs.handle, state: { ...before } })
  // appends give the event loop a turn now and then (lib/turn.js): take it now, so the
  // listener's append reaches the engine while the first event is routed
  const turn = require('../lib/turn.js')()
  if (turn !== null) await turn
  store._pump({ consumed: [], sends: [], commands: [], events: [event(), event()] })
  assert.equal(appended, true)
  assert.equal(core.length, 3)
  assert.equal(cs.native.state(cs.handle).length, 3)
  // a later output's events carry a state taken after the append: they are used as given
  store._pump({ consumed: [], sends: [], commands: [], events: [{ ...event(), state: { ...before, length: 3 } }] })
  assert.equal(core.length, 3)
  await store.close()
})
