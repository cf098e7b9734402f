'use strict'
// Core groups: get({ group }), core.setGroup(), store.notifyGroup() handles ('update' events,
// updates() streams) and the store's 'group-active' event, side by side with JS corestore,
// and the group records on disk (GROUP_BY_TOPIC, GROUP, CORE/GROUP, HEAD.groups) read
// across implementations both ways.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const JSCorestore = require('corestore')
const Corestore = require('./helpers/impl.js')
const { tmpdir, hex, errInfo, collect, delay } = require('./helpers/util.js')

const OPTS = { primaryKey: b4a.alloc(32, 0x33), unsafe: true }
const T1 = b4a.alloc(32, 1)
const T2 = b4a.alloc(32, 2)
const T3 = b4a.alloc(32, 3)

const same = require('./helpers/same.js')

const keysOf = async (store, topic, opts) => (await collect(store.notifyGroup(topic).updates(opts))).map(hex)

// appends far enough apart that head timestamps (ms) order the group index
async function append(core, value) {
  await delay(3)
  await core.append(b4a.from(value))
}

same(
  'groups: update events, group-active, updates() newest first, setGroup conflicts',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const out = { active: [], updates: [] }
    store.on('group-active', (topic, u) =>
      out.active.push([hex(topic), hex(u.key), u.length, u.fork, topic === T1])
    )
    const a = store.get({ name: 'a', group: T1 })
    const b = store.get({ name: 'b', group: T1 })
    const c = store.get({ name: 'c' })
    await Promise.all([a.ready(), b.ready(), c.ready()])
    const names = { [hex(a.key)]: 'a', [hex(b.key)]: 'b', [hex(c.key)]: 'c' }
    const named = (keys) => keys.map((k) => names[k])

    const handle = store.notifyGroup(T1)
    const other = store.notifyGroup(T1)
    out.attached = [handle.index !== -1, store._groupNotifiers.get(hex(T1)).length]
    handle.on('update', (u) => out.updates.push([names[hex(u.key)], u.length, u.fork]))

    out.emptyBefore = await keysOf(store, T1) // joined, but no head change yet
    await append(a, 'a0')
    await append(b, 'b0')
    await append(a, 'a1')
    await a.truncate(1)
    out.t1 = named(await keysOf(store, T1))
    out.t1Oldest = named(await keysOf(store, T1, { reverse: false }))
    out.unknown = await keysOf(store, T3)

    await c.setGroup(T2) // joins without a head change: not listed yet
    out.t2Joined = named(await keysOf(store, T2))
    await append(c, 'c0')
    out.t2 = named(await keysOf(store, T2))
    out.conflict = await c.setGroup(T1).then(() => 'ok', errInfo)
    await c.setGroup(T2) // the same group again is fine
    out.sameAgain = true

    handle.destroy()
    handle.destroy()
    out.detached = [handle.index, store._groupNotifiers.get(hex(T1)).length]
    other.destroy()
    out.mapCleared = store._groupNotifiers.has(hex(T1))
    await append(b, 'b1')
    out.updatesAfterDestroy = out.updates.length
    out.active = out.active.map(([topic, key, length, fork, identical]) => [topic, names[key], length, fork, identical])
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.t1, ['a', 'b'])
    assert.deepEqual(r.t1Oldest, ['b', 'a'])
    assert.deepEqual(r.t2Joined, [])
    assert.deepEqual(r.t2, ['c'])
    assert.equal(r.conflict.code, 'STORAGE_CONFLICT')
    assert.deepEqual(r.updates, [['a', 1, 0], ['b', 1, 0], ['a', 2, 0], ['a', 1, 1]])
    assert.equal(r.updatesAfterDestroy, 4)
  }
)

same(
  'groups: a replicated core updates the reader group index and fires group-active',
  async (C, dir) => {
    const writer = new C(dir + '-w', OPTS)
    const reader = new C(dir, OPTS)
    const a = writer.get({ name: 'a' })
    await a.append(b4a.from('hello'))
    const clone = reader.get({ key: a.key, group: T1 })
    await clone.ready()
    const active = new Promise((resolve) => reader.once('group-active', (topic, u) => resolve([hex(topic), u.length])))
    const s1 = reader.replicate(true)
    const s2 = writer.replicate(false)
    s1.pipe(s2).pipe(s1)
    const out = { active: await active }
    out.keys = (await keysOf(reader, T1)).map((k) => k === hex(a.key))
    s1.destroy()
    s2.destroy()
    await reader.close()
    await writer.close()
    require('fs').rmSync(dir + '-w', { recursive: true, force: true })
    return out
  },
  (r) => assert.deepEqual(r, { active: [hex(T1), 1], keys: [true] })
)

// a directory goes from one implementation to the other and back: each reads the groups
// the other wrote and adds its own (a new group pointer each time, from HEAD.groups)
async function groupsAcross(First, Second, dir) {
  const out = {}
  const s1 = new First(dir, OPTS)
  const a = s1.get({ name: 'a', group: T1 })
  const b = s1.get({ name: 'b', group: T1 })
  await append(a, 'a0')
  await append(b, 'b0')
  const keys = { [hex(a.key)]: 'a', [hex(b.key)]: 'b' }
  await s1.close()

  const s2 = new Second(dir, OPTS)
  out.secondReads = (await keysOf(s2, T1)).map((k) => keys[k])
  const a2 = s2.get({ name: 'a' }) // the group is remembered
  const c = s2.get({ name: 'c', group: T2 })
  await c.ready()
  keys[hex(c.key)] = 'c'
  await append(a2, 'a1')
  await append(c, 'c0')
  out.secondWrote = (await keysOf(s2, T1)).map((k) => keys[k])
  await s2.close()

  const s3 = new First(dir, OPTS)
  out.firstReads = [(await keysOf(s3, T1)).map((k) => keys[k]), (await keysOf(s3, T2)).map((k) => keys[k])]
  const d = s3.get({ name: 'd', group: T3 })
  await d.ready()
  keys[hex(d.key)] = 'd'
  await append(d, 'd0')
  out.thirdGroup = (await keysOf(s3, T3)).map((k) => keys[k])
  await s3.close()

  const s4 = new Second(dir, OPTS)
  out.all = await Promise.all([T1, T2, T3].map(async (t) => (await keysOf(s4, t)).map((k) => keys[k])))
  await s4.close()
  return out
}

const ACROSS = {
  secondReads: ['b', 'a'],
  secondWrote: ['a', 'b'],
  firstReads: [['a', 'b'], ['c']],
  thirdGroup: ['d'],
  all: [['a', 'b'], ['c'], ['d']]
}

test('groups on disk: written by JS corestore, read and extended by the implementation', async (t) => {
  assert.deepEqual(await groupsAcross(JSCorestore, Corestore, tmpdir(t)), ACROSS)
})

test('groups on disk: written by the implementation, read and extended by JS corestore', async (t) => {
  assert.deepEqual(await groupsAcross(Corestore, JSCorestore, tmpdir(t)), ACROSS)
})
