'use strict'
// Corestore / Hypercore API behaviour: every scenario runs on the implementation and on the
// JS corestore package; both must give the same observable result, and concrete values are
// asserted as well.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const cenc = require('compact-encoding')
const Corestore = require('./helpers/impl.js')
const { tmpdir, hex, plain, errInfo, outcome, collect, delay } = require('./helpers/util.js')

const PK = b4a.alloc(32, 0x11)
const PK2 = b4a.alloc(32, 0x22)
const OPTS = { primaryKey: PK, unsafe: true }

const buf = (s) => b4a.from(s)

// Runs scenario(C, dir) for the implementation and for JS; the results must be deepEqual.
const same = require('./helpers/same.js')

same(
  'primaryKey is refused without unsafe: true',
  async (C, dir) => {
    return outcome(() => new C(dir, { primaryKey: PK }))
  },
  (r) => {
    assert.deepEqual(r, {
      sync: true,
      isError: true,
      code: 'ERR_ASSERTION',
      message:
        'ERR_ASSERTION: Passing the primary key is unsafe unless you know what you are doing. Set unsafe: true to acknowledge that'
    })
  }
)

same(
  'primaryKey persists across reopen; another primary key is refused',
  async (C, dir) => {
    const out = {}
    const a = new C(dir, OPTS)
    await a.ready()
    out.first = hex(a.primaryKey)
    await a.close()

    const b = new C(dir)
    await b.ready()
    out.reopened = hex(b.primaryKey)
    out.namespacePk = hex(b.namespace('x').primaryKey)
    await b.close()

    const c = new C(dir, OPTS)
    await c.ready()
    out.samePk = hex(c.primaryKey)
    await c.close()

    const d = new C(dir, { primaryKey: PK2, unsafe: true })
    out.other = await outcome(() => d.ready())
    await d.close().catch(() => {})

    // a store without a primary key gets a random persisted one
    const dir2 = dir + '-random'
    const e = new C(dir2)
    await e.ready()
    const random = hex(e.primaryKey)
    await e.close()
    const f = new C(dir2)
    await f.ready()
    out.randomPersisted = random === hex(f.primaryKey) && random.length === 64
    await f.close()
    require('fs').rmSync(dir2, { recursive: true, force: true })
    return out
  },
  (r) => {
    assert.equal(r.first, hex(PK))
    assert.equal(r.reopened, hex(PK))
    assert.equal(r.namespacePk, hex(PK))
    assert.equal(r.samePk, hex(PK))
    assert.deepEqual(r.other, {
      sync: false,
      isError: true,
      code: undefined,
      message: 'Another corestore is stored here'
    })
    assert.equal(r.randomPersisted, true)
  }
)

same(
  'sessions of one core share state and events',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const a = store.get({ name: 'x' })
    const b = store.get({ name: 'x' })
    await Promise.all([a.ready(), b.ready()])
    const events = []
    a.on('append', () => events.push(['a', a.length, b.length]))
    b.on('append', () => events.push(['b', b.length, a.length]))
    const res = await a.append(buf('hello'))
    const out = {
      sameKey: b4a.equals(a.key, b.key),
      res,
      lengths: [a.length, b.length],
      eventsWhenAppendResolved: events.slice().sort(),
      fromB: hex(await b.get(0))
    }
    await delay(10)
    out.eventsLater = events.length
    await b.close()
    out.afterClose = { bClosed: b.closed, aClosed: a.closed }
    out.res2 = await a.append(buf('again'))
    const c = store.get({ name: 'x' })
    await c.ready()
    out.third = { length: c.length, block: hex(await c.get(1)) }
    await store.close()
    return out
  },
  (r) => {
    assert.equal(r.sameKey, true)
    assert.deepEqual(r.res, { length: 1, byteLength: 5 })
    assert.deepEqual(r.lengths, [1, 1])
    // 'append' is emitted on every session before append() resolves
    assert.deepEqual(r.eventsWhenAppendResolved, [
      ['a', 1, 1],
      ['b', 1, 1]
    ])
    assert.equal(r.eventsLater, 2)
    assert.equal(r.fromB, hex(buf('hello')))
    assert.deepEqual(r.afterClose, { bClosed: true, aClosed: false })
    assert.deepEqual(r.res2, { length: 2, byteLength: 10 })
    assert.deepEqual(r.third, { length: 2, block: hex(buf('again')) })
  }
)

same(
  'store.session() and store.namespace() chaining',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const root = store.get({ name: 'n' })
    const sess = store.session()
    const viaSession = sess.get({ name: 'n' })
    const nsA = store.namespace('a')
    const inA = nsA.get({ name: 'n' })
    const inAB = nsA.namespace('b').get({ name: 'n' })
    const inAviaSession = nsA.session().get({ name: 'n' })
    const inABuf = store.namespace(buf('a')).get({ name: 'n' })
    await Promise.all([root, viaSession, inA, inAB, inAviaSession, inABuf].map((c) => c.ready()))
    const out = {
      root: hex(root.key),
      viaSession: hex(viaSession.key),
      inA: hex(inA.key),
      inAB: hex(inAB.key),
      inAviaSession: hex(inAviaSession.key),
      inABuf: hex(inABuf.key)
    }
    // closing a session store closes its core sessions only
    const closes = []
    root.on('close', () => closes.push('root'))
    viaSession.on('close', () => closes.push('viaSession'))
    await sess.close()
    out.afterSessionClose = {
      sessClosed: sess.closed,
      viaSessionClosed: viaSession.closed,
      rootClosed: root.closed,
      closes: closes.slice()
    }
    await root.append(buf('still works'))
    out.rootLength = root.length
    out.sessionGetAfterClose = await outcome(() => sess.get({ name: 'n' }))
    await store.close()
    out.closes = closes
    return out
  },
  (r) => {
    assert.equal(r.viaSession, r.root)
    assert.notEqual(r.inA, r.root)
    assert.notEqual(r.inAB, r.inA)
    // JS quirk: session() does not carry the namespace over (it restarts at the default one)
    assert.equal(r.inAviaSession, r.root)
    assert.equal(r.inABuf, r.inA)
    assert.deepEqual(r.afterSessionClose, {
      sessClosed: true,
      viaSessionClosed: true,
      rootClosed: false,
      closes: ['viaSession']
    })
    assert.equal(r.rootLength, 1)
    assert.deepEqual(r.sessionGetAfterClose, {
      sync: true,
      isError: true,
      code: undefined,
      message: 'Corestore is closed'
    })
    assert.deepEqual(r.closes, ['viaSession', 'root'])
  }
)

same(
  'store.close() closes every session; flags',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const out = { before: { opened: store.opened, closed: store.closed, closing: !!store.closing } }
    const a = store.get({ name: 'a' })
    out.coreBefore = { opened: a.opened, closed: a.closed, closing: !!a.closing }
    await store.ready()
    await a.ready()
    out.after = { opened: store.opened, closed: store.closed, coreOpened: a.opened }
    const b = store.session().get({ name: 'b' })
    const c = store.namespace('x').get({ name: 'c' })
    await Promise.all([b.ready(), c.ready()])
    const events = []
    for (const [n, core] of Object.entries({ a, b, c })) core.on('close', () => events.push(n))
    store.on('close', () => events.push('store'))
    const p = store.close()
    out.during = { closing: !!store.closing }
    await p
    out.closed = {
      store: store.closed,
      a: [a.closed, a.opened, !!a.closing],
      b: b.closed,
      c: c.closed,
      events: events.sort()
    }
    out.getAfter = await outcome(() => store.get({ name: 'a' }))
    out.sessionAfter = await outcome(() => store.session())
    out.namespaceAfter = await outcome(() => store.namespace('y'))
    out.appendAfter = await outcome(() => a.append(buf('x')))
    out.getBlockAfter = await outcome(() => a.get(0))
    out.closeAgain = await outcome(() => store.close())
    return out
  },
  (r) => {
    assert.deepEqual(r.before, { opened: false, closed: false, closing: false })
    assert.deepEqual(r.coreBefore, { opened: false, closed: false, closing: false })
    assert.deepEqual(r.after, { opened: true, closed: false, coreOpened: true })
    assert.deepEqual(r.during, { closing: true })
    assert.deepEqual(r.closed, {
      store: true,
      a: [true, false, true],
      b: true,
      c: true,
      events: ['a', 'b', 'c', 'store']
    })
    const closed = { sync: true, isError: true, code: undefined, message: 'Corestore is closed' }
    assert.deepEqual(r.getAfter, closed)
    assert.deepEqual(r.sessionAfter, closed)
    assert.deepEqual(r.namespaceAfter, closed)
    assert.equal(r.appendAfter.code, 'SESSION_CLOSED')
    assert.equal(r.appendAfter.sync, false)
    assert.match(r.appendAfter.message, /^SESSION_CLOSED: Cannot append to a closed session/)
    assert.equal(r.getBlockAfter.code, 'SESSION_CLOSED')
    assert.match(r.getBlockAfter.message, /^SESSION_CLOSED: cannot get on a closed session/)
    assert.deepEqual(r.closeAgain, { ok: undefined })
  }
)

same(
  'writable: false and readOnly stores; get({ writable: false })',
  async (C, dir) => {
    const out = {}
    const w = new C(dir, OPTS)
    const core = w.get({ name: 'r' })
    await core.ready()
    await core.append([buf('a'), buf('b')])
    const ro = w.get({ name: 'r', writable: false })
    await ro.ready()
    out.getWritableFalse = {
      writable: ro.writable,
      readable: ro.readable,
      other: core.writable,
      append: await outcome(() => ro.append(buf('x'))),
      truncate: await outcome(() => ro.truncate(0)),
      block: hex(await ro.get(1))
    }
    await w.close()

    for (const opts of [{ writable: false }, { readOnly: true }]) {
      const s = new C(dir, opts)
      const c = s.get({ name: 'r' })
      await c.ready()
      out[JSON.stringify(opts)] = {
        writable: c.writable,
        length: c.length,
        block: hex(await c.get(0)),
        append: await outcome(() => c.append(buf('x'))),
        primaryKey: hex(s.primaryKey)
      }
      await s.close()
    }
    return out
  },
  (r) => {
    const notWritable = (m) => ({
      sync: false,
      isError: true,
      code: 'SESSION_NOT_WRITABLE',
      message: m
    })
    assert.equal(r.getWritableFalse.writable, false)
    assert.equal(r.getWritableFalse.readable, true)
    assert.equal(r.getWritableFalse.other, true)
    assert.equal(r.getWritableFalse.block, hex(buf('b')))
    assert.match(r.getWritableFalse.append.message, /^SESSION_NOT_WRITABLE: cannot append to a readonly core \(discovery key: [a-z0-9]{52}\)$/)
    assert.deepEqual(r.getWritableFalse.append, notWritable(r.getWritableFalse.append.message))
    assert.match(r.getWritableFalse.truncate.message, /^SESSION_NOT_WRITABLE: cannot append to a non-writable core/)
    assert.equal(r.getWritableFalse.truncate.code, 'SESSION_NOT_WRITABLE')
    for (const k of ['{"writable":false}', '{"readOnly":true}']) {
      assert.equal(r[k].writable, false)
      assert.equal(r[k].length, 2)
      assert.equal(r[k].block, hex(buf('a')))
      assert.equal(r[k].append.code, 'SESSION_NOT_WRITABLE')
      assert.equal(r[k].primaryKey, hex(PK))
    }
  }
)

same(
  'exclusive sessions wait for each other',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const e1 = store.get({ name: 'ex', exclusive: true })
    await e1.ready()
    const e2 = store.get({ name: 'ex', exclusive: true })
    let ready2 = false
    const p2 = e2.ready().then(() => {
      ready2 = true
    })
    const shared = store.get({ name: 'ex' })
    await shared.ready() // non-exclusive sessions are not blocked
    await delay(100)
    const out = { whileHeld: ready2 }
    await e1.append(buf('first'))
    await e1.close()
    await p2
    out.afterRelease = ready2
    out.length = e2.length
    await e2.append(buf('second'))
    out.sharedLength = shared.length
    await store.close()
    return out
  },
  (r) => assert.deepEqual(r, { whileHeld: false, afterRelease: true, length: 1, sharedLength: 2 })
)

same(
  'valueEncoding: utf-8, json, compact-encoding codec',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const u = store.get({ name: 'u', valueEncoding: 'utf-8' })
    const j = store.get({ name: 'j', valueEncoding: 'json' })
    const n = store.get({ name: 'n', valueEncoding: cenc.uint })
    const raw = store.get({ name: 'n' })
    await Promise.all([u, j, n, raw].map((c) => c.ready()))
    const out = {
      u: [await u.append('héllo'), await u.append(['a', 'bc']), await u.get(0), typeof (await u.get(0))],
      j: [await j.append({ a: [1, 'x'] }), await j.append([1, null, 'z']), await j.get(0), await j.get(2), await j.get(3)],
      n: [await n.append([1, 300, 70000]), await n.get(1), await n.get(2)],
      raw: hex(await raw.get(1)),
      override: await raw.get(2, { valueEncoding: cenc.uint }),
      stream: await collect(u.createReadStream())
    }
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.u, [{ length: 1, byteLength: 6 }, { length: 3, byteLength: 9 }, 'héllo', 'string'])
    assert.deepEqual(r.j, [
      { length: 1, byteLength: 13 },
      { length: 4, byteLength: 21 }, // an array is a batch: 3 blocks '1', 'null', '"z"'
      { a: [1, 'x'] },
      null,
      'z'
    ])
    assert.deepEqual(r.n, [{ length: 3, byteLength: 9 }, 300, 70000])
    assert.equal(r.raw, 'fd2c01')
    assert.equal(r.override, 70000)
    assert.deepEqual(r.stream, ['héllo', 'a', 'bc'])
  }
)

same(
  'append results, get, has, seek, missing blocks, bad indexes',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const c = store.get({ name: 'b' })
    await c.ready()
    const out = {
      empty: { length: c.length, byteLength: c.byteLength, fork: c.fork },
      a1: await c.append(buf('aa')),
      a2: await c.append([buf('bbb'), buf('c'), buf('dddd')]),
      aEmpty: await c.append([]),
      aString: await c.append('str')
    }
    out.get = [hex(await c.get(0)), hex(await c.get(4))]
    out.missing = await c.get(5, { wait: false })
    out.missingFar = await c.get(1000, { wait: false })
    out.has = [await c.has(0), await c.has(4), await c.has(5), await c.has(0, 5), await c.has(0, 6)]
    out.seek = [await c.seek(0), await c.seek(1), await c.seek(2), await c.seek(5), await c.seek(9), await c.seek(12)]
    out.seekEnd = await c.seek(13, { wait: false })
    out.getNegative = await outcome(() => c.get(-1))
    out.truncateBeyond = await outcome(() => c.truncate(6))
    out.appendNumber = (await outcome(() => c.append(123))).isError
    out.lengths = [c.length, c.byteLength, c.signedLength, c.contiguousLength]
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.empty, { length: 0, byteLength: 0, fork: 0 })
    assert.deepEqual(r.a1, { length: 1, byteLength: 2 })
    assert.deepEqual(r.a2, { length: 4, byteLength: 10 })
    assert.deepEqual(r.aEmpty, { length: 4, byteLength: 10 })
    assert.deepEqual(r.aString, { length: 5, byteLength: 13 })
    assert.deepEqual(r.get, [hex(buf('aa')), hex(buf('str'))])
    assert.equal(r.missing, null)
    assert.equal(r.missingFar, null)
    assert.deepEqual(r.has, [true, true, false, true, false])
    assert.deepEqual(r.seek, [
      [0, 0],
      [0, 1],
      [1, 0],
      [2, 0],
      [3, 3],
      [4, 2]
    ])
    assert.deepEqual(r.seekEnd, [5, 0])
    assert.equal(r.getNegative.code, 'ERR_ASSERTION')
    assert.equal(r.getNegative.sync, false)
    assert.match(r.getNegative.message, /^ERR_ASSERTION: block index is invalid \(discovery key: [a-z0-9]{52}\)$/)
    assert.equal(r.truncateBeyond.code, 'INVALID_OPERATION')
    assert.match(r.truncateBeyond.message, /^INVALID_OPERATION: Not a truncation, 6 must be less or equal to 5 \(discovery key: /)
    assert.equal(r.appendNumber, true)
    assert.deepEqual(r.lengths, [5, 13, 5, 5])
  }
)

same(
  'truncate: event, fork, lengths, other sessions',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const c = store.get({ name: 't' })
    const other = store.get({ name: 't' })
    await Promise.all([c.ready(), other.ready()])
    await c.append(['a', 'bb', 'ccc', 'dddd'].map(buf))
    // the order in which different sessions get the event is not specified: one list each
    const events = []
    const otherEvents = []
    c.on('truncate', (ancestors, fork) => events.push(['truncate', ancestors, fork, c.length]))
    other.on('truncate', (ancestors, fork) => otherEvents.push(['truncate', ancestors, fork, other.length]))
    c.on('append', () => events.push(['append', c.length]))
    await c.truncate(2)
    const out = {
      after: [c.length, c.byteLength, c.fork, other.length, other.fork],
      eventsWhenTruncateResolved: [events.slice(), otherEvents.slice()],
      gone: await c.get(2, { wait: false }),
      has: await c.has(2)
    }
    out.append = await c.append(buf('new'))
    out.block = hex(await other.get(2))
    await c.truncate(1, c.fork + 5)
    out.explicitFork = [c.length, c.fork]
    out.events = events
    out.otherEvents = otherEvents
    out.info = plain(await c.info())
    await store.close()

    const again = new C(dir)
    const r = again.get({ name: 't' })
    await r.ready()
    out.reopen = [r.length, r.byteLength, r.fork, hex(await r.get(0))]
    await again.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.after, [2, 3, 1, 2, 1])
    assert.deepEqual(r.gone, null)
    assert.equal(r.has, false)
    assert.deepEqual(r.append, { length: 3, byteLength: 6 })
    assert.equal(r.block, hex(buf('new')))
    assert.deepEqual(r.explicitFork, [1, 6])
    // 'truncate' (ancestors, fork) reaches every session before truncate() resolves
    assert.deepEqual(r.eventsWhenTruncateResolved, [[['truncate', 2, 1, 2]], [['truncate', 2, 1, 2]]])
    assert.deepEqual(r.events, [
      ['truncate', 2, 1, 2],
      ['append', 3],
      ['truncate', 1, 6, 1]
    ])
    assert.deepEqual(r.otherEvents, [
      ['truncate', 2, 1, 2],
      ['truncate', 1, 6, 1]
    ])
    assert.equal(r.info.fork, 6)
    assert.equal(r.info.length, 1)
    assert.deepEqual(r.reopen, [1, 1, 6, hex(buf('a'))])
  }
)

same(
  'clear()',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const c = store.get({ name: 'c' })
    await c.ready()
    await c.append(['a', 'b', 'c', 'd', 'e'].map(buf))
    const out = { ret: await c.clear(1, 3) }
    out.has = [await c.has(0), await c.has(1), await c.has(2), await c.has(3)]
    out.get = [hex(await c.get(0)), await c.get(1, { wait: false }), await c.get(2, { wait: false })]
    out.lengths = [c.length, c.byteLength, c.contiguousLength]
    out.single = await c.clear(4)
    out.has4 = await c.has(4)
    await store.close()
    const again = new C(dir)
    const r = again.get({ name: 'c' })
    await r.ready()
    out.reopen = [r.length, await r.has(1), await r.has(3), await r.get(4, { wait: false })]
    await again.close()
    return out
  },
  (r) => {
    assert.equal(r.ret, null)
    assert.deepEqual(r.has, [true, false, false, true])
    assert.deepEqual(r.get, [hex(buf('a')), null, null])
    assert.deepEqual(r.lengths, [5, 5, 1])
    assert.equal(r.single, null)
    assert.equal(r.has4, false)
    assert.deepEqual(r.reopen, [5, false, true, null])
  }
)

same(
  'snapshot(): length frozen while the original grows',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const c = store.get({ name: 's' })
    await c.ready()
    await c.append(['a', 'bb', 'ccc'].map(buf))
    const snap = c.snapshot()
    await snap.ready()
    await c.append(['dddd', 'eeeee'].map(buf))
    const out = {
      snap: [snap.length, snap.byteLength, snap.writable === c.writable || 'differs'],
      orig: [c.length, c.byteLength],
      snapBlocks: [hex(await snap.get(0)), hex(await snap.get(2))],
      snapMissing: await outcome(() => snap.get(3, { wait: false })),
      snapKey: b4a.equals(snap.key, c.key)
    }
    await snap.close()
    out.snapClosed = snap.closed
    out.origClosed = c.closed
    await c.append(buf('f'))
    out.origAfter = c.length
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.snap.slice(0, 2), [3, 6])
    assert.deepEqual(r.orig, [5, 15])
    assert.deepEqual(r.snapBlocks, [hex(buf('a')), hex(buf('ccc'))])
    assert.equal(r.snapMissing.code, 'SNAPSHOT_NOT_AVAILABLE')
    assert.match(
      r.snapMissing.message,
      /^SNAPSHOT_NOT_AVAILABLE: snapshot at index 3 not available \(max compat length 3\) \(discovery key: [a-z0-9]{52}\)$/
    )
    assert.equal(r.snapKey, true)
    assert.equal(r.snapClosed, true)
    assert.equal(r.origClosed, false)
    assert.equal(r.origAfter, 6)
  }
)

same(
  'createReadStream and createByteStream',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const c = store.get({ name: 'r' })
    await c.ready()
    await c.append(['a', 'bb', 'c', 'dd', 'e'].map(buf))
    const s = (arr) => arr.map((b) => b4a.toString(b))
    const out = {
      range: s(await collect(c.createReadStream({ start: 1, end: 4, live: false }))),
      all: s(await collect(c.createReadStream())),
      from: s(await collect(c.createReadStream({ start: 3 }))),
      bytes: b4a.toString(b4a.concat(await collect(c.createByteStream()))),
      byteRange: b4a.toString(b4a.concat(await collect(c.createByteStream({ byteOffset: 2, byteLength: 3 }))))
    }
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.range, ['bb', 'c', 'dd'])
    assert.deepEqual(r.all, ['a', 'bb', 'c', 'dd', 'e'])
    assert.deepEqual(r.from, ['dd', 'e'])
    assert.equal(r.bytes, 'abbcdde')
    assert.equal(r.byteRange, 'bcd')
  }
)

same(
  'info() and user data',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const c = store.get({ name: 'i' })
    await c.ready()
    await c.append([buf('xyz'), buf('w')])
    const info = await c.info()
    const out = {
      info: plain({
        key: info.key,
        discoveryKey: info.discoveryKey,
        length: info.length,
        contiguousLength: info.contiguousLength,
        byteLength: info.byteLength,
        fork: info.fork,
        padding: info.padding
      }),
      keyMatches: hex(info.key) === hex(c.key),
      missing: await c.getUserData('nope'),
      setRet: await c.setUserData('hello', 'world')
    }
    out.hello = hex(await c.getUserData('hello'))
    await c.setUserData('bin', b4a.from([1, 2, 3]))
    out.bin = hex(await c.getUserData('bin'))
    await c.setUserData('gone', buf('x'))
    await c.setUserData('gone', null)
    out.gone = await c.getUserData('gone')
    const other = store.get({ name: 'i' })
    await other.ready()
    out.fromOther = hex(await other.getUserData('hello'))
    await store.close()
    const again = new C(dir)
    const r = again.get({ name: 'i' })
    await r.ready()
    out.reopen = [hex(await r.getUserData('hello')), hex(await r.getUserData('bin')), await r.getUserData('gone')]
    await again.close()
    return out
  },
  (r) => {
    assert.equal(r.keyMatches, true)
    assert.deepEqual(
      { ...r.info, key: undefined, discoveryKey: undefined },
      { key: undefined, discoveryKey: undefined, length: 2, contiguousLength: 2, byteLength: 4, fork: 0, padding: 0 }
    )
    assert.equal(r.missing, null)
    assert.equal(r.setRet, undefined)
    assert.equal(r.hello, hex(buf('world')))
    assert.equal(r.bin, '010203')
    assert.equal(r.gone, null)
    assert.equal(r.fromOther, hex(buf('world')))
    assert.deepEqual(r.reopen, [hex(buf('world')), '010203', null])
  }
)

same(
  'watch / unwatch',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const seen = []
    const nsSeen = []
    const fn = (core) =>
      seen.push({ key: hex(core.key), discoveryKey: hex(core.discoveryKey), id: core.id })
    store.watch(fn)
    const ns = store.namespace('w')
    ns.watch((core) => nsSeen.push(hex(core.key)))

    const a = store.get({ name: 'a' })
    await a.ready()
    const out = { afterFirst: seen.length }
    const a2 = store.get({ name: 'a' }) // same open core: not reported again
    await a2.ready()
    out.afterSecondSession = seen.length
    const b = ns.get({ name: 'b' }) // a core opened through a namespace is seen by both
    await b.ready()
    out.afterNamespace = [seen.length, nsSeen.length]
    const k = store.get({ key: b4a.alloc(32, 9) })
    out.syncAfterGetByKey = seen.length // get(key) opens the core synchronously
    await k.ready()
    store.unwatch(fn)
    const c = store.get({ name: 'c' })
    await c.ready()
    out.afterUnwatch = [seen.length, nsSeen.length]
    store.unwatch(fn) // unwatching twice is harmless
    out.keys = {
      firstIsA: seen[0].key === hex(a.key) && seen[0].discoveryKey === hex(a.discoveryKey) && seen[0].id === a.id,
      secondIsB: seen[1].key === hex(b.key),
      thirdIsK: seen[2].key === hex(k.key)
    }
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r, {
      afterFirst: 1,
      afterSecondSession: 1,
      afterNamespace: [2, 2],
      syncAfterGetByKey: 3,
      afterUnwatch: [3, 4],
      keys: { firstIsA: true, secondIsB: true, thirdIsK: true }
    })
  }
)

same(
  'suspend() / resume()',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const c = store.get({ name: 'p' })
    await c.ready()
    await c.append(buf('before'))
    const out = { suspend: await store.suspend() }
    out.resume = await store.resume()
    out.append = await c.append(buf('after'))
    out.blocks = [hex(await c.get(0)), hex(await c.get(1))]
    await store.close()
    return out
  },
  (r) =>
    assert.deepEqual(r, {
      suspend: undefined,
      resume: undefined,
      append: { length: 2, byteLength: 11 },
      blocks: [hex(buf('before')), hex(buf('after'))]
    })
)

same(
  'createKeyPair is deterministic and matches the named core',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const kp1 = await store.createKeyPair('k')
    const kp2 = await store.createKeyPair('k')
    const kpNs = await store.namespace('z').createKeyPair('k')
    const core = store.get({ name: 'k' })
    await core.ready()
    const out = {
      kp1: plain(kp1),
      keys: Object.keys(kp1).sort(),
      same: hex(kp1.secretKey) === hex(kp2.secretKey),
      nsDiffers: hex(kpNs.publicKey) !== hex(kp1.publicKey),
      matchesCore: hex(core.manifest.signers[0].publicKey) === hex(kp1.publicKey),
      sizes: [kp1.publicKey.byteLength, kp1.secretKey.byteLength]
    }
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.keys, ['publicKey', 'secretKey'])
    assert.equal(r.same, true)
    assert.equal(r.nsDiffers, true)
    assert.equal(r.matchesCore, true)
    assert.deepEqual(r.sizes, [32, 64])
  }
)

same(
  'errors: closed sessions, non-writable cores, bad keys',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const c = store.get({ name: 'e' })
    await c.ready()
    await c.append(buf('x'))
    const out = {}
    const byKey = store.get({ key: b4a.alloc(32, 5) }) // a key we have no secret for
    await byKey.ready()
    out.appendNoSecret = await outcome(() => byKey.append(buf('x')))
    out.noSecretWritable = byKey.writable
    out.badKey31 = await outcome(() => store.get(b4a.alloc(31)))
    out.badKey33 = await outcome(() => store.get({ key: b4a.alloc(33) }))
    out.badKeyString = await outcome(() => store.get('abc'))
    out.noArgs = await outcome(() => store.get({}))
    const s = store.get({ name: 'e' })
    await s.ready()
    await s.close()
    out.closedAppend = await outcome(() => s.append(buf('y')))
    out.closedGet = await outcome(() => s.get(0))
    out.closedTruncate = await outcome(() => s.truncate(0))
    out.otherStillOpen = [c.closed, c.length]
    await store.close()
    return out
  },
  (r) => {
    assert.equal(r.appendNoSecret.code, 'SESSION_NOT_WRITABLE')
    assert.equal(r.noSecretWritable, false)
    assert.deepEqual(r.badKey31, { sync: true, isError: true, code: undefined, message: 'ID must be 32-bytes long' })
    assert.deepEqual(r.badKey33, { sync: true, isError: true, code: undefined, message: 'ID must be 32-bytes long' })
    assert.deepEqual(r.badKeyString, { sync: true, isError: true, code: undefined, message: 'Invalid Hypercore key' })
    assert.deepEqual(r.noArgs, {
      sync: true,
      isError: true,
      code: undefined,
      message: 'Could not derive discovery from input'
    })
    assert.equal(r.closedAppend.code, 'SESSION_CLOSED')
    assert.match(r.closedAppend.message, /^SESSION_CLOSED: Cannot append to a closed session \(discovery key: [a-z0-9]{52}\)$/)
    assert.equal(r.closedGet.code, 'SESSION_CLOSED')
    assert.match(r.closedGet.message, /^SESSION_CLOSED: cannot get on a closed session/)
    assert.equal(r.closedTruncate.code, 'SESSION_CLOSED')
    assert.deepEqual(r.otherStillOpen, [false, 1])
  }
)

test('errors thrown by the implementation are Error instances', async (t) => {
  const store = new Corestore(tmpdir(t))
  const c = store.get({ name: 'x' })
  await c.ready()
  await c.close()
  await assert.rejects(c.append(buf('x')), (err) => {
    assert.ok(err instanceof Error)
    assert.equal(errInfo(err).code, 'SESSION_CLOSED')
    return true
  })
  await store.close()
})
