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
