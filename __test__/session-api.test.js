'use strict'
// hypercore 11 session behaviour: snapshots (read-only, keep their blocks), compat keys,
// signing by a session's key pair or a given signature, writable before ready. Every
// scenario runs on the implementation and on JS corestore; both must give the same result.
const assert = require('node:assert/strict')
const b4a = require('b4a')
const crypto = require('hypercore-crypto')
const JSCorestore = require('corestore')
const Corestore = require('./helpers/impl.js')
const { hex, plain, collect } = require('./helpers/util.js')

const PK = b4a.alloc(32, 0x11)
const OPTS = { primaryKey: PK, unsafe: true }
const SEED = b4a.alloc(32, 0x33)

const same = require('./helpers/same.js')

// how a call failed, without the message (its wording is the engine's own)
async function failure(fn) {
  try {
    await fn()
    return 'ok'
  } catch (err) {
    return { name: err.name, code: err.code }
  }
}

const strs = (bufs) => bufs.map((b) => b4a.toString(b))

same(
  'writes on a snapshot throw and leave the core as it was',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const core = store.get({ name: 'a' })
    await core.ready()
    await core.append(['a', 'b', 'c'])
    const snap = core.snapshot()
    await snap.ready()
    const out = {
      append: await failure(() => snap.append('x')),
      truncate: await failure(() => snap.truncate(1)),
      clear: await failure(() => snap.clear(0)),
      setUserData: await failure(() => snap.setUserData('k', 'v'))
    }
    const ws = snap.createWriteStream()
    out.stream = await new Promise((resolve) => {
      ws.on('error', (err) => resolve(err.name))
      ws.on('finish', () => resolve('finished'))
      ws.write(b4a.from('z'))
      ws.end()
    })
    out.length = core.length
    out.blocks = strs([await core.get(0), await core.get(1), await core.get(2)])
    out.userData = await core.getUserData('k')
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.append, { name: 'AssertionError', code: undefined })
    assert.equal(r.stream, 'AssertionError')
    assert.equal(r.length, 3)
    assert.equal(r.userData, null)
  }
)

same(
  'writable is false until the session is open',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const core = store.get({ name: 'a' })
    const before = core.writable
    await core.ready()
    const out = { before, after: core.writable }
    await store.close()
    return out
  },
  (r) => assert.deepEqual(r, { before: false, after: true })
)

same(
  'a snapshot keeps its blocks after the core is truncated below them',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const core = store.get({ name: 'a' })
    await core.ready()
    await core.append(['block0', 'block1', 'block2'])
    const snap = core.snapshot()
    await snap.ready()
    await core.truncate(1)
    await core.append(['new1', 'new2', 'new3'])
    const out = {
      snap: { length: snap.length, signedLength: snap.signedLength },
      got: strs([await snap.get(1), await snap.get(2)]),
      stream: strs(await collect(snap.createReadStream())),
      beyond: await failure(() => snap.get(3)),
      core: strs(await collect(core.createReadStream()))
    }
    // a session of the snapshot shares its view; closing the snapshot keeps it for it
    const child = snap.session()
    await child.ready()
    await snap.close()
    out.child = b4a.toString(await child.get(2))
    await child.close()
    await store.close()
    return out
  },
  (r) => {
    assert.deepEqual(r.got, ['block1', 'block2'])
    assert.deepEqual(r.snap, { length: 3, signedLength: 1 })
    assert.deepEqual(r.beyond, { name: 'HypercoreError', code: 'SNAPSHOT_NOT_AVAILABLE' })
    assert.equal(r.child, 'block2')
  }
)

same(
  'a get is snapshotted at call time: a truncation below it fails it',
  async (C, dir) => {
    const a = new C(dir + '/a', OPTS)
    const b = new C(dir + '/b', OPTS)
    const core = a.get({ name: 'a' })
    await core.ready()
    await core.append(['0', '1', '2'])
    const clone = b.get({ key: core.key })
    await clone.ready()
    let s1 = a.replicate(true)
    let s2 = b.replicate(false)
    s1.pipe(s2).pipe(s1)
    const first = b4a.toString(await clone.get(0))
    await clone.update({ wait: true })
    s1.destroy()
    s2.destroy()
    const pending = clone.get(2).then(
      (v) => b4a.toString(v),
      (err) => err.code
    )
    await core.truncate(2)
    await core.append(['2.1', '3.1'])
    s1 = a.replicate(true)
    s2 = b.replicate(false)
    s1.pipe(s2).pipe(s1)
    const out = { first, pending: await pending, after: b4a.toString(await clone.get(2)) }
    s1.destroy()
    s2.destroy()
    await a.close()
    await b.close()
    return out
  },
  (r) => assert.deepEqual(r, { first: '0', pending: 'SNAPSHOT_NOT_AVAILABLE', after: '2.1' })
)

same(
  'compat key: get({ key: publicKey, keyPair }) signs as hypercore compat cores; reopens both ways',
  async (C, dir) => {
    const kp = crypto.keyPair(SEED)
    const store = new C(dir, OPTS)
    const core = store.get({ key: kp.publicKey, keyPair: kp })
    await core.ready()
    await core.append(['a', 'b'])
    const out = {
      key: hex(core.key),
      writable: core.writable,
      length: core.length,
      auth: authOf(await store.getAuth(core.discoveryKey))
    }
    await store.close()
    // the other implementation opens the same directory and extends the core
    const Other = C === JSCorestore ? Corestore : JSCorestore
    const other = new Other(dir)
    const again = other.get({ key: kp.publicKey, keyPair: kp })
    await again.ready()
    await again.append('c')
    out.reopened = { length: again.length, blocks: strs(await collect(again.createReadStream())) }
    await other.close()
    const back = new C(dir)
    const last = back.get({ key: kp.publicKey })
    await last.ready()
    out.back = { length: last.length, block: b4a.toString(await last.get(2)) }
    await back.close()
    return out
  },
  (r) => {
    assert.equal(r.key, hex(crypto.keyPair(SEED).publicKey))
    assert.equal(r.writable, true)
    assert.deepEqual(r.back, { length: 3, block: 'c' })
  }
)

same(
  'a session key pair that is not a signer, and a bad signature, are refused',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const core = store.get({ name: 'a' })
    await core.ready()
    await core.append('hello')
    const other = core.session({ keyPair: crypto.keyPair(SEED) })
    await other.ready()
    const out = {
      writable: other.writable,
      notSigner: await failure(() => other.append('x')),
      badSignature: await failure(() => core.append('x', { signature: b4a.alloc(64) })),
      badTruncate: await failure(() => core.truncate(0, { signature: b4a.alloc(64) }))
    }
    core.setKeyPair(crypto.keyPair(SEED))
    out.setKeyPair = await failure(() => core.append('y'))
    out.length = core.length
    await store.close()
    return out
  },
  (r) => {
    assert.equal(r.writable, true)
    assert.equal(r.notSigner.code, 'BAD_ARGUMENT')
    assert.notEqual(r.badSignature, 'ok')
    assert.equal(r.length, 1)
  }
)

same(
  'a writable session of a core opened read-only by its public key',
  async (C, dir) => {
    const kp = crypto.keyPair(SEED)
    const store = new C(dir, OPTS)
    const core = store.get({ key: kp.publicKey, valueEncoding: 'utf-8' })
    await core.ready()
    const out = { core: core.writable }
    const session = core.session({ keyPair: kp })
    await session.ready()
    out.session = session.writable
    out.readOnlyAppend = await failure(() => core.append('hello'))
    await session.append('world')
    out.length = core.length
    out.block = await core.get(0)
    await store.close()
    // the manifest the first append stored opens in the other implementation
    const Other = C === JSCorestore ? Corestore : JSCorestore
    const other = new Other(dir)
    const again = other.get({ key: kp.publicKey, keyPair: kp, valueEncoding: 'utf-8' })
    await again.ready()
    await again.append('again')
    out.reopened = await collect(again.createReadStream())
    await other.close()
    return out
  },
  (r) => {
    assert.deepEqual(r, {
      core: false,
      session: true,
      readOnlyAppend: { name: 'HypercoreError', code: 'SESSION_NOT_WRITABLE' },
      length: 1,
      block: 'world',
      reopened: ['world', 'again']
    })
  }
)

function authOf(a) {
  if (!a) return a
  return {
    key: hex(a.key),
    discoveryKey: hex(a.discoveryKey),
    manifest: plain(a.manifest),
    keyPair: a.keyPair ? { publicKey: hex(a.keyPair.publicKey), secretKey: hex(a.keyPair.secretKey) } : null
  }
}

same(
  'manifests: raw encoded buffers, no signers, linked: [], default quorum; getManifest({ raw })',
  async (C, dir) => {
    const a = crypto.keyPair(b4a.alloc(32, 1))
    const b = crypto.keyPair(b4a.alloc(32, 2))
    const c = crypto.keyPair(b4a.alloc(32, 3))
    const store = new C(dir, OPTS)
    const out = {}
    const multi = store.get({ manifest: { version: 1, signers: [a, b, c].map((k) => ({ publicKey: k.publicKey })) } })
    await multi.ready()
    out.multi = { key: hex(multi.key), quorum: multi.manifest.quorum }
    const raw = multi.getManifest({ raw: true })
    out.raw = hex(raw)
    out.rawIsBuffer = b4a.isBuffer(raw)
    const fromRaw = store.get({ manifest: raw })
    await fromRaw.ready()
    out.fromRaw = hex(fromRaw.key)
    const linked = store.get({ manifest: { version: 2, signers: [{ publicKey: a.publicKey }], linked: [] } })
    await linked.ready()
    out.linked = { key: hex(linked.key), linked: linked.manifest.linked }
    const unsigned = store.get({ manifest: { prologue: { hash: b4a.alloc(32, 7), length: 1 } } })
    await unsigned.ready()
    out.unsigned = { key: hex(unsigned.key), signers: unsigned.manifest.signers.length, quorum: unsigned.manifest.quorum }
    out.none = store.get({ key: crypto.keyPair(SEED).publicKey })
    await out.none.ready()
    out.none = out.none.getManifest({ raw: true })
    await store.close()
    return out
  },
  (r) => {
    assert.equal(r.multi.quorum, 2)
    assert.equal(r.rawIsBuffer, true)
    assert.equal(r.fromRaw, r.multi.key)
    assert.equal(r.linked.linked, null)
    assert.equal(r.unsigned.signers, 0)
    assert.equal(r.none, null)
  }
)

same(
  'a manifest given to a session (or to get) of a core stored without one is stored',
  async (C, dir) => {
    const manifest = { version: 1, signers: [{ publicKey: crypto.keyPair(SEED).publicKey }] }
    const store = new C(dir + '/a', OPTS)
    const origin = store.get({ manifest })
    await origin.ready()
    const key = origin.key
    await store.close()

    const other = new C(dir + '/b', OPTS)
    const bare = other.get({ key })
    await bare.ready()
    const out = { before: bare.manifest }
    const s = bare.session({ manifest })
    await s.ready()
    out.session = plain(s.manifest)
    out.core = plain(bare.manifest)
    await other.close()
    const again = new C(dir + '/b')
    const reopened = again.get({ key })
    await reopened.ready()
    out.reopened = plain(reopened.manifest)
    await again.close()

    // a raw manifest given to get() for a core stored without one
    const third = new C(dir + '/c', OPTS)
    const c1 = third.get({ key })
    await c1.ready()
    await c1.close()
    const c2 = third.get({ key, manifest: origin.getManifest({ raw: true }) })
    await c2.ready()
    out.viaGet = plain(c2.manifest)
    await third.close()
    return out
  },
  (r) => {
    assert.equal(r.before, null)
    assert.deepEqual(r.session, r.reopened)
    assert.deepEqual(r.viaGet, r.reopened)
    assert.equal(r.reopened.signers.length, 1)
  }
)

same(
  'a get on a session closed right after it fails with SESSION_CLOSED; waiting ones are cancelled',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const core = store.get({ name: 'a' })
    await core.ready()
    const a = core.session()
    const closedRightAway = a.get(0, { timeout: 1000 }).catch((e) => e.code)
    a.close()
    const b = core.session()
    const waiting = b.get(0).catch((e) => e.code)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await b.close()
    const out = { closedRightAway: await closedRightAway, waiting: await waiting }
    await store.close()
    return out
  },
  (r) => assert.deepEqual(r, { closedRightAway: 'SESSION_CLOSED', waiting: 'REQUEST_CANCELLED' })
)

// Hyperbee and HyperDB hand get() an activeRequests array of their own and cancel what is
// in it with hypercore's static Hypercore.destroyRequests when they close.
same(
  'get with activeRequests: Hypercore.destroyRequests cancels them, and later ones',
  async (C, dir) => {
    const Hypercore = require('hypercore')
    const store = new C(dir, OPTS)
    const writer = store.get({ name: 'a' })
    await writer.append(['x', 'y'])
    const readerStore = new C(dir + '/r', OPTS)
    const reader = readerStore.get({ key: writer.key })
    await reader.ready()
    const requests = []
    const pending = [
      reader.get(5, { activeRequests: requests }).catch((e) => e.code),
      reader.get(6, { activeRequests: requests }).catch((e) => e.code)
    ]
    const other = reader.get(7, { timeout: 50 }).catch((e) => e.code) // the session's own list
    await new Promise((resolve) => setTimeout(resolve, 10))
    const out = { listed: requests.length, own: reader.activeRequests.length }
    Hypercore.destroyRequests(requests, null)
    out.cancelled = await Promise.all(pending)
    out.afterDestroy = await reader.get(8, { activeRequests: requests }).catch((e) => e.code)
    out.other = await other
    out.ownAfter = reader.activeRequests.length
    await readerStore.close()
    await store.close()
    return out
  },
  (r) =>
    assert.deepEqual(r, {
      listed: 2,
      own: 1,
      cancelled: ['REQUEST_CANCELLED', 'REQUEST_CANCELLED'],
      afterDestroy: 'REQUEST_CANCELLED',
      other: 'REQUEST_TIMEOUT',
      ownAfter: 0
    })
)

// corestore opens its storage on a thread: a session made while its store opens is still
// opening after the caller's next await (a 'ready' listener attached then fires; its lengths
// read 0 until then), and a second session made meanwhile is ready after it
same(
  'a session made while its store opens is still opening after the caller awaits',
  async (C, dir) => {
    const first = new C(dir, OPTS)
    const w = first.get({ name: 'a' })
    await w.append(['x', 'y'])
    const key = w.key
    await first.close()

    const out = {}
    for (const [what, opts] of [['key', { key }], ['name', { name: 'a' }]]) {
      const store = new C(dir, OPTS)
      const open = async () => store.get(opts)
      const core = await open()
      const second = store.get({ key })
      const order = []
      const lengths = (s) => [s.length, s.byteLength, s.signedLength, s.contiguousLength, s.remoteContiguousLength]
      const atReady = (s, who) =>
        new Promise((resolve) =>
          s.once('ready', () => {
            order.push(who)
            resolve(lengths(s))
          })
        )
      const before = { opened: core.opened, lengths: lengths(core), key: hex(core.key) === hex(key) }
      const ready = await Promise.all([atReady(core, 'first'), atReady(second, 'second')])
      // (corestore opens a named core only after looking its name up: a get by key made
      // meanwhile may be ready first there, so the order is compared for keys only)
      out[what] = what === 'key' ? { before, ready, order } : { before: before.lengths, ready }
      await store.close()
    }
    return out
  },
  (r) => {
    const ready = [
      [2, 2, 2, 2, 0],
      [2, 2, 2, 2, 0]
    ]
    assert.deepEqual(r.key, {
      before: { opened: false, lengths: [0, 0, 0, 0, 0], key: true },
      ready,
      order: ['first', 'second']
    })
    assert.deepEqual(r.name, { before: [0, 0, 0, 0, 0], ready })
  }
)

same(
  // corestore's get() passes no encodeBatch on (its sessions append one block per value);
  // hypercore's session() does
  'encodeBatch of a session turns an append\'s values into the blocks appended; get() ignores it',
  async (C, dir) => {
    const store = new C(dir, OPTS)
    const joined = (batch) => [b4a.from(batch.join('-'))]
    const core = store.get({ name: 'batch', valueEncoding: 'utf-8', encodeBatch: joined })
    await core.ready()
    await core.append(['a', 'b', 'c'])
    await core.append('d')
    const plainSession = core.session({ valueEncoding: 'utf-8' })
    await plainSession.append(['e', 'f'])
    const own = core.session({ valueEncoding: 'utf-8', encodeBatch: (batch) => batch.map((v) => b4a.from(v + '!')) })
    await own.append(['g', 'h'])
    const out = { length: core.length, blocks: [] }
    for (let i = 0; i < core.length; i++) out.blocks.push(await core.get(i))
    await store.close()
    return out
  },
  (r) => assert.deepEqual(r, { length: 8, blocks: ['a', 'b', 'c', 'd', 'e', 'f', 'g!', 'h!'] })
)
