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
  store._pump({ consumed: [], sends: [], commands: null, events: [event(), event()] })
  assert.equal(appended, true)
  assert.equal(core.length, 3)
  assert.equal(cs.native.state(cs.handle).length, 3)
  // a later output's events carry a state taken after the append: they are used as given
  store._pump({ consumed: [], sends: [], commands: null, events: [{ ...event(), state: { ...before, length: 3 } }] })
  assert.equal(core.length, 3)
  await store.close()
})

// A writer with `blocks` and a reader that knows its length, replicating over a pipe that
// passes the writer's bytes on until `holdAnswers(ask)`: that runs `ask` (a read on the
// reader), keeps what the writer sends for it from the reader until it stops coming, and
// returns those bytes with what `ask` returned.
async function withHeldAnswers(t, blocks) {
  const a = new Corestore(tmpdir(t))
  const b = new Corestore(tmpdir(t))
  const w = a.get({ name: 'w' })
  await w.ready()
  await w.append(blocks)
  const r = b.get({ key: w.key })
  await r.ready()
  const s1 = a.replicate(true)
  const s2 = b.replicate(false)
  s2.pipe(s1)
  let forward = true
  const held = []
  s1.on('data', (d) => (forward ? s2.write(d) : held.push(d)))
  await r.update({ wait: true })
  assert.equal(r.length, blocks.length)
  return {
    r,
    s2,
    async holdAnswers(ask) {
      forward = false
      const asked = ask()
      let size = -1
      while (size !== held.length) {
        size = held.length
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      return { answers: b4a.concat(held.splice(0)), asked }
    },
    async close() {
      s1.destroy()
      s2.destroy()
      await a.close()
      await b.close()
    }
  }
}

// A store whose JS thread is busy elsewhere (another store's Autobase apply, say) still
// processes what its peers sent: its worker goes on from job to job while the output JS has
// not taken is small, rather than waiting for JS after each (docs/DECISIONS.md §36).
test('the worker processes input handed over while the JS thread is busy', { skip: !!process.env.CORESTORE_IMPL }, async (t) => {
  const N = 16
  const blocks = []
  for (let i = 0; i < N; i++) blocks.push(b4a.alloc(64 * 1024, i))
  const { r, s2, holdAnswers, close } = await withHeldAnswers(t, blocks)
  // the writer answers the reader's requests; hold the answers
  const { answers } = await holdAnswers(() => {
    r.download({ start: 0, end: N })
  })
  assert.ok(answers.byteLength > 4 * 256 * 1024, `${answers.byteLength} bytes: several jobs`)
  // one write: handed to the worker as several jobs. Then keep the JS thread busy
  s2.write(answers)
  // streamx hands it to _write in a microtask; the worker's wakeups need a turn of the loop
  for (let i = 0; i < 10 && s2._unconsumed === 0; i++) await null
  assert.equal(s2._unconsumed, answers.byteLength, 'handed to the worker')
  const until = performance.now() + 500
  while (performance.now() < until) {}
  let stored = 0
  for (let i = 0; i < N; i++) if (await r.has(i)) stored++
  // what was stored by the time the JS thread came back, against all those answers held
  await new Promise((resolve) => setTimeout(resolve, 300))
  let later = 0
  for (let i = 0; i < N; i++) if (await r.has(i)) later++
  assert.ok(later >= 5, `the answers held ${later} blocks`)
  assert.equal(stored, later, 'every answer handed over was stored while JS was busy')
  await close()
})

// A few KiB that arrive while the worker has been idle for a while are processed in the
// receiving call, in the order JS hands them over, as in JS (docs/DECISIONS.md §56): two
// stores that receive the same blocks in one turn then act on them in that turn, not in
// whichever order the scheduler runs their workers.
test('a small answer after a quiet spell is stored within the write that hands it over', { skip: !!process.env.CORESTORE_IMPL }, async (t) => {
  const { r, s2, holdAnswers, close } = await withHeldAnswers(t, [b4a.alloc(2048, 7)])
  const { answers: answer, asked: got } = await holdAnswers(() => r.get(0))
  assert.ok(answer.byteLength > 512 && answer.byteLength <= 4096, `${answer.byteLength} bytes`)
  s2.write(answer)
  for (let i = 0; i < 10; i++) await null
  // handed to the worker, the bytes would count as unconsumed until a poll in a later turn
  assert.equal(s2._unconsumed, 0, 'processed in the write')
  assert.ok(b4a.equals(await got, b4a.alloc(2048, 7)))
  await close()
})

// A pump tells a stream its input was consumed after it sent what the same output holds for
// it: that stream may take its next chunk at once, and with the worker idle the engine
// processes it in that call and pumps again; those bytes must follow these on the wire.
test('a pump nested in a consumed notification sends after the outer pump', { skip: !!process.env.CORESTORE_IMPL }, async (t) => {
  const store = new Corestore(tmpdir(t))
  await store.ready()
  const s = store.replicate(true)
  s.resume()
  await new Promise((resolve) => setImmediate(resolve))
  const session = s.session
  assert.ok(session > 0)
  const order = []
  const send = s._send.bind(s)
  s._send = (data) => {
    order.push(b4a.toString(data))
    send(data)
  }
  s._consumed = () => {
    store._pump({ consumed: [], sends: [{ session, data: b4a.from('second') }], commands: null, events: [] })
  }
  store._pump({ consumed: [{ session, bytes: 1 }], sends: [{ session, data: b4a.from('first') }], commands: null, events: [] })
  assert.deepEqual(order, ['first', 'second'])
  s.destroy()
  await store.close()
})

// The output pumped inside that notification is newer than the rest of the one around it:
// a core's lengths from the inner one stay, the outer one's older event states do not put
// them back (a download's done() saw contiguousLength a few blocks short that way).
test('a core keeps the newer lengths of an output pumped while an older one is routed', { skip: !!process.env.CORESTORE_IMPL }, async (t) => {
  const store = new Corestore(tmpdir(t))
  const core = store.get({ name: 'lengths' })
  await core.append([b4a.from('a'), b4a.from('b'), b4a.from('c')])
  const s = store.replicate(true)
  s.resume()
  await new Promise((resolve) => setImmediate(resolve))
  const session = s.session
  const handle = core.core.handle
  const at = (contiguousLength) => ({ length: 3, contiguousLength, byteLength: 3, fork: 0, signedLength: 3, remoteContiguousLength: 0 })
  const download = (contiguousLength) => ({ type: 'download', handle, state: at(contiguousLength), blocks: b4a.alloc(0), session: 0 })
  s._consumed = () => {
    store._pump({ consumed: [], sends: [], commands: null, events: [download(3)] })
  }
  store._pump({ consumed: [{ session, bytes: 1 }], sends: [], commands: null, events: [download(1)] })
  assert.equal(core.contiguousLength, 3)
  s.destroy()
  await store.close()
})
