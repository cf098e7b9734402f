'use strict'
// Large appends run on the thread pool (docs/DECISIONS.md §30). What a caller sees must be
// what JS corestore gives, whose appends are asynchronous too: appends and truncations
// called without awaiting take effect in call order, encrypted blocks are encrypted at the
// index they land at, and the event loop runs while a large append is stored. Run against
// JS corestore too (CORESTORE_IMPL=corestore).
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const Corestore = require('./helpers/impl.js')
const { tmpdir } = require('./helpers/util.js')

// 1000 blocks of 1 KiB: well past the size that goes to the thread pool
function big(tag) {
  const blocks = []
  for (let i = 0; i < 1000; i++) blocks.push(b4a.from(`${tag}-${i}`.padEnd(1024, '.')))
  return blocks
}

for (const encrypted of [false, true]) {
  test(`appends called without awaiting land in call order, large and small${encrypted ? ', encrypted' : ''}`, async (t) => {
    const dir = tmpdir(t)
    const store = new Corestore(dir)
    const opts = { name: 'w' }
    if (encrypted) opts.encryptionKey = b4a.alloc(32, 7)
    const core = store.get(opts)
    await core.ready()
    const results = await Promise.all([core.append(big('a')), core.append('small'), core.append(big('b')), core.append(['x', 'y'])])
    assert.deepEqual(
      results.map((r) => r.length),
      [1000, 1001, 2001, 2003]
    )
    assert.equal(core.length, 2003)
    assert.equal(b4a.toString(await core.get(999)).split('.')[0], 'a-999')
    assert.equal(b4a.toString(await core.get(1000)), 'small')
    assert.equal(b4a.toString(await core.get(1001)).split('.')[0], 'b-0')
    assert.equal(b4a.toString(await core.get(2002)), 'y')
    await store.close()

    // and so they were stored
    const reopened = new Corestore(dir)
    const stored = reopened.get(opts)
    await stored.ready()
    assert.equal(stored.length, 2003)
    assert.equal(b4a.toString(await stored.get(1500)).split('.')[0], 'b-499')
    await reopened.close()
  })
}

test('a truncate called while a large append is stored applies after it', async (t) => {
  const store = new Corestore(tmpdir(t))
  const core = store.get({ name: 'w' })
  await core.ready()
  const appended = core.append(big('a'))
  const truncated = core.truncate(10)
  await Promise.all([appended, truncated])
  assert.equal(core.length, 10)
  assert.equal(core.fork, 1)
  await store.close()
})

test('timers run while a large append is stored, and its append event follows', async (t) => {
  const store = new Corestore(tmpdir(t))
  const core = store.get({ name: 'w' })
  await core.ready()
  const order = []
  core.on('append', () => order.push('append'))
  const blocks = []
  for (let i = 0; i < 4; i++) blocks.push(...big(String(i)))
  setTimeout(() => order.push('timer'), 1)
  const before = Date.now()
  while (Date.now() - before < 3); // the timer is due before the append starts
  await core.append(blocks)
  order.push('resolved')
  assert.deepEqual(order, ['timer', 'append', 'resolved'])
  assert.equal(core.length, 4000)
  await store.close()
})

// hypercore's appends each wait for their storage write, so appends called without awaiting
// land one per turn of the event loop: an append's callers run before the next append lands
// and see its length (hypercore's "push and pull concurrently" pushes block i from append
// i's `.then` and needs that push's upgrade to end at i + 1). Side by side with JS corestore.
test('appends called without awaiting: each one\'s callers see its length', async (t) => {
  const JSCorestore = require('corestore')
  for (const [name, Impl] of [['JS', JSCorestore], ['implementation', Corestore]]) {
    const store = new Impl(tmpdir(t))
    const core = store.get({ name: 'w' })
    await core.ready()
    await core.append(b4a.from('first'))
    const seen = []
    const appends = []
    for (let i = 0; i < 10; i++) appends.push(core.append(b4a.from('b' + i)).then(({ length }) => seen.push([length, core.length])))
    await Promise.all(appends)
    const want = Array.from({ length: 10 }, (_, i) => [i + 2, i + 2])
    assert.deepEqual(seen, want, name)
    // awaited appends, and one batch, are unchanged
    await core.append([b4a.from('x'), b4a.from('y')])
    assert.equal(core.length, 13, name)
    await store.close()
  }
})
