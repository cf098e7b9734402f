'use strict'
// Store-level API beyond cores: store.storage, globalCache, findingPeers state, watch() and
// weak sessions on the watched core, store.cores / store.sessions, audit(), pushOnly, and
// manifests/key pairs taught by a later get(); each scenario runs on the implementation
// and on JS corestore and must give the same result.
const assert = require('node:assert/strict')
const path = require('path')
const b4a = require('b4a')
const crypto = require('hypercore-crypto')
const JSHypercore = require('hypercore')
const Corestore = require('./helpers/impl.js')
const { hex, errInfo, delay } = require('./helpers/util.js')

const OPTS = { primaryKey: b4a.alloc(32, 0x44), unsafe: true }

const same = require('./helpers/same.js')

same(
  'store.storage, globalCache and the findingPeers state',
  async (C, dir) => {
    const cache = { any: 'object' }
    const store = new C(dir, { ...OPTS, treeCache: { maxSize: 128, maxAge: 1337 }, globalCache: cache })
    await store.ready()
    const ro = new C(dir, { readOnly: true })
    await ro.ready()
    const out = {
      treeCache: [store.storage.treeCache.maxSize, store.storage.treeCache.maxAge],
      readOnly: [!!store.storage.readOnly, !!ro.storage.readOnly, ro.readOnly],
      dbPath: [ro.storage.db.path === store.storage.db.path, store.storage.db.path === path.join(dir, 'db')],
      sessionStorage: store.session().storage === store.storage,
      globalCache: [store.globalCache === cache, store.namespace('x').globalCache === cache]
    }
    const core = store.get({ name: 'a' })
    out.cacheBeforeReady = core.globalCache
    await core.ready()
    out.cacheOnCore = core.globalCache === cache
    // as corestore: the get that opens a core may give it a cache of its own (Hyperbee
    // subs its node cache from core.globalCache); later gets share the core's
    const own = { own: true }
    const b = store.get({ name: 'b', globalCache: own })
    await b.ready()
    const b2 = store.get({ name: 'b' })
    await b2.ready()
    const c = store.get({ name: 'a', globalCache: own })
    await c.ready()
    out.cacheOfGet = [b.globalCache === own, b2.globalCache === own, c.globalCache === cache]
    out.findingBefore = store._findingPeers
    const done = store.findingPeers()
    out.finding = store._findingPeers.count
    await ro.close()
    await store.close()
    const left = store._findingPeers
    out.findingAfterClose = left === null || (left.count === 0 && left.pending.length === 0)
    done()
    return out
  },
  (r) => {
    assert.deepEqual(r.treeCache, [128, 1337])
    assert.deepEqual(r.readOnly, [false, true, true])
    assert.equal(r.finding, 1)
    assert.deepEqual(r.cacheOfGet, [true, true, true])
  }
)

// the watched core takes weak sessions: the JS hypercore package's, and ours
// (Corestore.Hypercore) on the implementation
for (const which of ['hypercore package', 'Corestore.Hypercore']) {
  same(
    `watch(): new Hypercore({ core, weak: true }) on the watched core (${which})`,
    async (C, dir) => {
      const Hypercore = which === 'Corestore.Hypercore' && C.Hypercore ? C.Hypercore : JSHypercore
      const store = new C(dir, OPTS)
      const out = { events: [] }
      let weak = null
      store.watch((core) => {
        out.watched = [hex(core.key), hex(core.discoveryKey), core.id]
        weak = new Hypercore({ core, weak: true })
        weak.on('append', () => out.events.push(['append', weak.length]))
        weak.on('close', () => out.events.push(['close']))
      })
      const core = store.get({ name: 'w' })
      await core.ready()
      await weak.ready()
      out.weak = [hex(weak.key), weak.weak, weak.length, weak.writable]
      out.inCores = store.cores.map.has(hex(core.discoveryKey))
      await core.append(b4a.from('x'))
      out.weakLength = weak.length
      out.sessions = store.sessions.size
      await core.close()
      // corestore closes an idle core (and its weak sessions) on a gc timer; we close at once
      for (let i = 0; i < 150 && !weak.closed; i++) await delay(100)
      out.weakClosed = weak.closed
      out.coresAfter = store.cores.map.has(hex(core.discoveryKey))
      await store.close()
      out.watched[0] = out.watched[0] === hex(core.key)
      out.weak[0] = out.weak[0] === hex(core.key)
      return out
    },
    (r) => {
      assert.deepEqual(r.events, [['append', 1], ['close']])
      assert.equal(r.weakClosed, true)
    }
  )
}

same(
  'audit(): every stored core, its tree, blocks and bits',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const cores = [store.get({ name: 'a' }), store.get({ name: 'b' }), store.get({ name: 'c' })]
    for (let i = 0; i < 30; i++) {
      for (const [n, core] of cores.entries()) if (i < (n + 1) * 10) await core.append(b4a.from('block-' + i))
    }
    await cores[1].clear(2, 5)
    const out = []
    for await (const { discoveryKey, key, audit } of store.audit()) {
      out.push({ discoveryKeyOfKey: hex(discoveryKey) === hex(crypto.discoveryKey(key)), audit })
    }
    out.sort((x, y) => x.audit.blocks - y.audit.blocks)
    for (const core of cores) await core.close()
    await store.close()
    return out
  },
  (r) => {
    assert.equal(r.length, 3)
    assert.deepEqual(
      r.map((x) => x.audit.blocks),
      [10, 17, 30]
    )
    for (const x of r) assert.equal(x.audit.corrupt, false)
  }
)

same(
  'pushOnly: the core asks peers for nothing',
  async (C, dir) => {
    const writer = new C(dir + '-w', OPTS)
    const reader = new C(dir, OPTS)
    const a = writer.get({ name: 'a' })
    await a.append([b4a.from('one'), b4a.from('two')])
    const off = reader.get({ key: a.key })
    await off.ready()
    const out = { before: off.replicator.pushOnly }
    const s1 = reader.replicate(true)
    const s2 = writer.replicate(false)
    s1.pipe(s2).pipe(s1)
    const on = reader.get({ key: a.key, pushOnly: true }) // one session sets it for the core
    await on.ready()
    out.after = [off.replicator.pushOnly, on.replicator.pushOnly]
    out.get = await on.get(0, { timeout: 500 }).then((b) => b.toString(), (e) => e.code)
    out.length = on.length
    on.replicator.setPushOnly(false)
    out.getAfter = await on.get(0, { timeout: 5000 }).then((b) => b.toString(), (e) => e.code)
    s1.destroy()
    s2.destroy()
    await reader.close()
    await writer.close()
    require('fs').rmSync(dir + '-w', { recursive: true, force: true })
    return out
  },
  (r) => assert.deepEqual(r, { before: false, after: [true, true], get: 'REQUEST_TIMEOUT', length: 0, getAfter: 'one' })
)

same(
  'a later get() teaches an open core its manifest (persisted) and key pair',
  async (C, dir) => {
    const keyPair = crypto.keyPair(b4a.alloc(32, 7))
    const manifest = { quorum: 1, signers: [{ publicKey: keyPair.publicKey }] }
    const key = JSHypercore.key(manifest)
    const out = {}
    {
      const store = new C(dir, OPTS)
      const a = store.get({ key })
      await a.ready()
      out.first = [a.manifest === null, a.writable]
      const b = store.get({ key, manifest, keyPair })
      await b.ready()
      out.taught = [a.manifest !== null, b.manifest !== null, b.writable]
      out.append = await b.append(b4a.from('x')).then((r) => r.length, errInfo)
      await store.close()
    }
    {
      const store = new C(dir, OPTS)
      const a = store.get({ key })
      await a.ready()
      out.reopened = [a.manifest !== null && a.manifest.signers.length, a.length, a.writable]
      await store.close()
    }
    return out
  },
  (r) => assert.deepEqual(r.taught, [true, true, true])
)

same(
  'store.close() leaves replication streams open until the application ends them',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const other = new C(dir + '-o', OPTS)
    await store.ready()
    await other.ready()
    const s1 = store.replicate(true)
    const s2 = other.replicate(false)
    s1.pipe(s2).pipe(s1)
    const closed = new Promise((resolve) => s1.once('close', resolve))
    await delay(50)
    await store.close()
    await delay(50)
    const out = { openAfterStoreClose: !s1.destroyed }
    s1.destroy()
    s2.destroy()
    await closed
    out.closedWhenDestroyed = true
    await other.close()
    require('fs').rmSync(dir + '-o', { recursive: true, force: true })
    return out
  },
  (r) => assert.deepEqual(r, { openAfterStoreClose: true, closedWhenDestroyed: true })
)

// corestore opens a stored core on demand when a peer opens a channel for it, and its
// watchers are told as of any core newly opened: they get the core (Autobase's wakeup sets
// `core.preupdate` on it and hears the writer's appends through it)
same(
  'watch(): a stored core a peer opens a channel for is announced, and hears its preupdate',
  async (C, dir) => {
    const a = new C(path.join(dir, 'a'), OPTS)
    const w = a.get({ name: 'w' })
    await w.append([b4a.from('one'), b4a.from('two')])
    const dk = hex(w.discoveryKey)
    const pipe = (x, y) => {
      const s1 = x.replicate(true)
      const s2 = y.replicate(false)
      s1.pipe(s2).pipe(s1)
      return () => {
        s1.destroy()
        s2.destroy()
      }
    }
    {
      // b stores the core, then closes
      const b = new C(path.join(dir, 'b'), OPTS)
      const r = b.get({ key: w.key })
      await r.ready()
      const end = pipe(a, b)
      await r.get(1, { timeout: 10000 })
      end()
      await r.close()
      await b.close()
    }
    const b = new C(path.join(dir, 'b'), OPTS)
    const out = { watched: [], preupdate: [] }
    let got = null
    b.watch((core) => {
      out.watched.push(hex(core.discoveryKey))
      if (hex(core.discoveryKey) !== dk) return
      got = core
      core.preupdate = async (batch, key) => {
        out.preupdate.push([batch.length, hex(key) === hex(w.key)])
      }
    })
    await b.ready()
    out.before = [b.cores.map.has(dk), out.watched.length]
    const end = pipe(a, b)
    for (let i = 0; i < 200 && got === null; i++) await delay(25)
    if (got !== null && got.opened === false) await got.ready()
    out.opened = got !== null && [hex(got.key) === hex(w.key), b.cores.map.has(dk)]
    await w.append(b4a.from('three'))
    for (let i = 0; i < 200 && out.preupdate.length === 0; i++) await delay(25)
    end()
    await b.close()
    await a.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.before, [false, 0])
    assert.deepEqual(r.opened, [true, true])
    assert.deepEqual(r.preupdate, [[3, true]])
  }
)

// hypercore members Autobase's tests read: replicator._blocks.has(index) (a block asked for
// by a download or a get) and peer.inflight (requests to the peer not yet answered)
same(
  'replicator._blocks.has() and peer.inflight',
  async (C, dir) => {
    const a = new C(dir + '-w', OPTS)
    const w = a.get({ name: 'w' })
    for (let i = 0; i < 8; i++) await w.append(b4a.from('block-' + i))
    const b = new C(dir, OPTS)
    const r = b.get({ key: w.key })
    await r.ready()
    const out = {}
    // a get's block is asked for at once (hypercore counts a download's block once a peer
    // is asked for it, we as soon as it is wanted)
    const get = r.get(5, { timeout: 10000 })
    const dl = r.download({ blocks: [6] })
    await delay(100)
    out.asked = [r.replicator._blocks.has(5), r.replicator._blocks.has(4)]
    const s1 = a.replicate(true)
    const s2 = b.replicate(false)
    s1.pipe(s2).pipe(s1)
    out.got = (await get).toString()
    await dl.done()
    out.done = [await r.has(5), await r.has(6), r.replicator._blocks.has(5), r.replicator._blocks.has(6)]
    await r.get(7, { timeout: 10000 })
    out.inflight = r.peers.map((p) => p.inflight)
    s1.destroy()
    s2.destroy()
    await b.close()
    await a.close()
    require('fs').rmSync(dir + '-w', { recursive: true, force: true })
    return out
  },
  (r) =>
    assert.deepEqual(r, {
      asked: [true, false],
      got: 'block-5',
      done: [true, true, false, false],
      inflight: [0]
    })
)
