'use strict'
// Disk contract: a directory written by JS corestore opens in the implementation and the
// reverse, with the same keys, blocks, tree hashes, user data, aliases and listings.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const JSCorestore = require('corestore')
const Corestore = require('./helpers/impl.js')
const {
  tmpdir,
  hex,
  namespaceOf,
  treeHashOf,
  exposedSignature,
  verifyHeadSignature,
  collect,
  DEFAULT_NAMESPACE
} = require('./helpers/util.js')

const CORES = [
  { label: 'alpha', chain: [], name: 'alpha' },
  { label: 'beta', chain: [], name: 'beta' },
  { label: 'my-ns/alpha', chain: ['my-ns'], name: 'alpha' },
  { label: 'my-ns/deep/alpha', chain: ['my-ns', 'deep'], name: 'alpha' }
]

function blocksFor(label) {
  // varied sizes incl. a 5000-byte block; content depends on the core
  const sizes = [1, 17, 5000, 300, 2, 1024, 64]
  return sizes.map((s, i) => {
    const b = b4a.alloc(s)
    const tag = b4a.from(`${label}#${i}|`)
    for (let j = 0; j < s; j += tag.length) tag.copy(b, j, 0, Math.min(tag.length, s - j))
    return b
  })
}

function ns(store, chain) {
  let s = store
  for (const n of chain) s = s.namespace(n)
  return s
}

// Writes the standard store with C; returns what was written.
async function writeStore(C, dir) {
  const store = new C(dir)
  await store.ready()
  const written = { primaryKey: hex(store.primaryKey), cores: {} }
  for (const spec of CORES) {
    const core = ns(store, spec.chain).get({ name: spec.name })
    await core.ready()
    const blocks = blocksFor(spec.label)
    await core.append(blocks[0]) // single
    await core.append(blocks.slice(1, 4)) // batch incl. the 5000-byte block
    for (const b of blocks.slice(4)) await core.append(b)
    await core.setUserData('hello', 'world')
    await core.setUserData('bin', b4a.from([0, 1, 2, 255]))
    written.cores[spec.label] = {
      key: hex(core.key),
      discoveryKey: hex(core.discoveryKey),
      length: core.length,
      byteLength: core.byteLength,
      treeHash: hex(await core.treeHash()),
      blocks: blocks.map(hex)
    }
  }
  await store.close()
  return written
}

// Reads everything back with C, the way a user would.
async function readStore(C, dir) {
  const store = new C(dir)
  await store.ready()
  const seen = { primaryKey: hex(store.primaryKey), cores: {} }
  for (const spec of CORES) {
    const core = ns(store, spec.chain).get({ name: spec.name })
    await core.ready()
    const blocks = []
    for (let i = 0; i < core.length; i++) blocks.push(hex(await core.get(i, { wait: false })))
    const info = await core.info()
    seen.cores[spec.label] = {
      key: hex(core.key),
      discoveryKey: hex(core.discoveryKey),
      length: core.length,
      byteLength: core.byteLength,
      infoByteLength: info.byteLength,
      contiguousLength: core.contiguousLength,
      treeHash: hex(await core.treeHash()),
      blocks,
      hello: hex(await core.getUserData('hello')),
      bin: hex(await core.getUserData('bin')),
      writable: core.writable
    }
    // the same core opened by key
    const byKey = store.get(core.key)
    await byKey.ready()
    seen.cores[spec.label].byKey = { length: byKey.length, id: byKey.id }
  }
  await store.close()
  return seen
}

function assertMatchesWritten(seen, written, who) {
  assert.equal(seen.primaryKey, written.primaryKey, who + ': primaryKey')
  for (const spec of CORES) {
    const s = seen.cores[spec.label]
    const w = written.cores[spec.label]
    const at = `${who}: ${spec.label}`
    assert.equal(s.key, w.key, at + ' key')
    assert.equal(s.discoveryKey, w.discoveryKey, at + ' discoveryKey')
    assert.equal(s.length, w.length, at + ' length')
    assert.equal(s.byteLength, w.byteLength, at + ' byteLength')
    assert.equal(s.infoByteLength, w.byteLength, at + ' info().byteLength')
    assert.equal(s.contiguousLength, w.length, at + ' contiguousLength')
    assert.equal(s.treeHash, w.treeHash, at + ' treeHash')
    assert.deepEqual(s.blocks, w.blocks, at + ' blocks')
    assert.equal(s.hello, hex(b4a.from('world')), at + ' user data')
    assert.equal(s.bin, '000102ff', at + ' user data (binary)')
    assert.equal(s.writable, true, at + ' writable')
    assert.equal(s.byKey.length, w.length, at + ' get(key)')
  }
  // distinct cores
  assert.equal(new Set(CORES.map((c) => written.cores[c.label].key)).size, CORES.length)
}

const EXTRA = [b4a.from('appended-1'), b4a.alloc(5000, 'x'), b4a.from('appended-3')]

// Appends EXTRA to two cores with C; returns their new heads.
async function appendExtra(C, dir) {
  const store = new C(dir)
  const heads = {}
  for (const spec of [CORES[0], CORES[3]]) {
    const core = ns(store, spec.chain).get({ name: spec.name })
    await core.ready()
    await core.append(EXTRA[0])
    await core.append(EXTRA.slice(1))
    heads[spec.label] = {
      length: core.length,
      byteLength: core.byteLength,
      treeHash: hex(await core.treeHash())
    }
  }
  await store.close()
  return heads
}

// Opens with C and checks the appended blocks + the stored signed head.
async function checkExtra(C, dir, written, heads, who) {
  const store = new C(dir)
  for (const spec of [CORES[0], CORES[3]]) {
    const at = `${who}: ${spec.label}`
    const core = ns(store, spec.chain).get({ name: spec.name })
    await core.ready()
    const w = written.cores[spec.label]
    assert.equal(core.length, w.length + EXTRA.length, at + ' length')
    assert.equal(core.length, heads[spec.label].length)
    assert.equal(core.byteLength, heads[spec.label].byteLength, at + ' byteLength')
    for (let i = 0; i < EXTRA.length; i++) {
      assert.equal(hex(await core.get(w.length + i, { wait: false })), hex(EXTRA[i]), at + ' block')
    }
    assert.equal(hex(await core.get(0, { wait: false })), w.blocks[0])
    const all = w.blocks.map((b) => b4a.from(b, 'hex')).concat(EXTRA)
    const th = await core.treeHash()
    assert.equal(hex(th), heads[spec.label].treeHash, at + ' treeHash')
    assert.equal(hex(th), hex(treeHashOf(all)), at + ' treeHash recomputed')
    const sig = exposedSignature(core)
    if (sig !== undefined) {
      assert.ok(
        verifyHeadSignature({
          signature: sig,
          key: core.key,
          publicKey: core.manifest.signers[0].publicKey,
          treeHash: th,
          length: core.length,
          fork: core.fork
        }),
        at + ' stored head signature verifies'
      )
    }
    // and it is still writable
    await core.append(b4a.from('one more'))
  }
  await store.close()
}

test('JS writes, the implementation reads, appends; JS reads the appends', async (t) => {
  const dir = tmpdir(t)
  const written = await writeStore(JSCorestore, dir)
  const seen = await readStore(Corestore, dir)
  assertMatchesWritten(seen, written, 'impl reading JS')
  // get({ name }) in the implementation resolves to the same cores JS resolves to
  assert.deepEqual(seen, await readStore(JSCorestore, dir))

  const heads = await appendExtra(Corestore, dir)
  await checkExtra(JSCorestore, dir, written, heads, 'JS reading impl appends')
})

test('the implementation writes, JS reads and appends; the implementation reads the appends', async (t) => {
  const dir = tmpdir(t)
  const written = await writeStore(Corestore, dir)
  const seen = await readStore(JSCorestore, dir)
  assertMatchesWritten(seen, written, 'JS reading impl')
  assert.deepEqual(await readStore(Corestore, dir), seen)

  const heads = await appendExtra(JSCorestore, dir)
  await checkExtra(Corestore, dir, written, heads, 'impl reading JS appends')
})

test('the same data written by JS and by the implementation is identical', async (t) => {
  // same primary key => same keys; same blocks => same tree hashes
  const primaryKey = b4a.alloc(32, 0x42)
  async function write(C, dir) {
    const store = new C(dir, { primaryKey, unsafe: true })
    const out = []
    for (const spec of CORES) {
      const core = ns(store, spec.chain).get({ name: spec.name })
      await core.ready()
      await core.append(blocksFor(spec.label))
      out.push([hex(core.key), core.length, core.byteLength, hex(await core.treeHash())])
      out.push([hex(await core.signable()), hex(await core.signable(1, 0))])
    }
    await store.close()
    return out
  }
  const a = await write(Corestore, tmpdir(t))
  const b = await write(JSCorestore, tmpdir(t))
  assert.deepEqual(a, b)
})

async function listings(C, dir) {
  const store = new C(dir)
  await store.ready()
  const asSet = async (stream) => (await collect(stream)).map(hex).sort()
  const out = {
    all: await asSet(store.list()),
    default: await asSet(store.list(DEFAULT_NAMESPACE)),
    myNs: await asSet(store.list(namespaceOf(['my-ns']))),
    deep: await asSet(store.list(namespaceOf(['my-ns', 'deep']))),
    unused: await asSet(store.list(namespaceOf(['nothing-here'])))
  }
  await store.close()
  return out
}

test('store.list() and list(namespace) agree with JS on the same directory', async (t) => {
  for (const writer of [JSCorestore, Corestore]) {
    const dir = tmpdir(t)
    const written = await writeStore(writer, dir)
    // plus a core opened by key only: listed in list(), in no namespace listing
    const s = new writer(dir)
    const extra = s.get({ key: b4a.alloc(32, 7) })
    await extra.ready()
    const extraDk = hex(extra.discoveryKey)
    await s.close()

    const got = await listings(Corestore, dir)
    const want = await listings(JSCorestore, dir)
    assert.deepEqual(got, want)

    const dk = (label) => written.cores[label].discoveryKey
    assert.deepEqual(got.all, [...CORES.map((c) => dk(c.label)), extraDk].sort())
    assert.deepEqual(got.default, [dk('alpha'), dk('beta')].sort())
    assert.deepEqual(got.myNs, [dk('my-ns/alpha')])
    assert.deepEqual(got.deep, [dk('my-ns/deep/alpha')])
    assert.deepEqual(got.unused, [])
  }
})

// hypercore 11's mark and sweep: get() while marking and markBlock() record DATA/MARK pages;
// sweep() clears every other block. Marks written by one implementation, swept by the other.
async function held(core) {
  const out = []
  for (let i = 0; i < core.length; i++) if (await core.has(i)) out.push(i)
  return out
}

for (const [Marker, Sweeper, who] of [
  [JSCorestore, Corestore, 'JS marks, the implementation sweeps'],
  [Corestore, JSCorestore, 'the implementation marks, JS sweeps']
]) {
  test(`mark and sweep: ${who}`, async (t) => {
    const dir = tmpdir(t)
    let store = new Marker(dir)
    let core = store.get({ name: 'marked' })
    await core.append(Array.from({ length: 40 }, (_, i) => `block ${i}`))
    await core.startMarking()
    await assert.rejects(core.startMarking(), (err) => err.code === 'ERR_ASSERTION', 'already marking')
    await core.get(3)
    await core.get(17)
    await core.markBlock(20, 25)
    await core.markBlock(39)
    await store.close()

    store = new Sweeper(dir)
    core = store.get({ name: 'marked' })
    await core.ready()
    await core.sweep()
    assert.deepEqual(await held(core), [3, 17, 20, 21, 22, 23, 24, 39])
    assert.equal(core.length, 40, 'the tree stays')
    assert.equal(core.contiguousLength, 0)
    assert.equal(b4a.toString(await core.get(21)), 'block 21')
    // the marks went with the sweep: a second sweep clears everything
    await core.sweep()
    assert.deepEqual(await held(core), [])
    await store.close()
  })
}

test('store.getAuth(discoveryKey) reads what JS reads from the same directory', async (t) => {
  const dir = tmpdir(t)
  const js = new JSCorestore(dir)
  const named = js.get({ name: 'auth' })
  const byKey = js.get({ key: b4a.alloc(32, 3) }) // a reader: no manifest, no key pair yet
  await Promise.all([named.ready(), byKey.ready()])
  const dkeys = [named.discoveryKey, byKey.discoveryKey, b4a.alloc(32)]
  const expected = []
  for (const dk of dkeys) expected.push(await js.getAuth(dk))
  await js.close()
  assert.equal(expected[2], null, 'JS: an unknown core has no auth')

  const store = new Corestore(dir)
  for (let i = 0; i < dkeys.length; i++) assert.deepEqual(await store.getAuth(dkeys[i]), expected[i], `getAuth #${i}`)
  await store.close()
})

// corestore's allowBackup (Autobase's fixtures are copied stores): a copy opens for writing
// without the device file being checked or locked; without it the copy is refused
const same = require('./helpers/same.js')
same('allowBackup: a copied store opens and writes; without it the copy is refused', async (C, dir) => {
  const fs = require('fs')
  const path = require('path')
  const opts = { primaryKey: b4a.alloc(32, 9), unsafe: true }
  let store = new C(path.join(dir, 'orig'), opts)
  const core = store.get({ name: 'kept', valueEncoding: 'utf-8' })
  await core.append(['one', 'two'])
  await store.close()
  fs.cpSync(path.join(dir, 'orig'), path.join(dir, 'copy'), { recursive: true })

  const out = {}
  store = new C(path.join(dir, 'copy'), opts)
  try {
    await store.ready()
    out.plain = 'opened'
  } catch (err) {
    out.plain = 'refused'
  }
  await store.close().catch(() => {})

  store = new C(path.join(dir, 'copy'), { ...opts, allowBackup: true })
  const copy = store.get({ name: 'kept', valueEncoding: 'utf-8' })
  await copy.append('three')
  out.copy = [copy.length, await copy.get(0), await copy.get(2), hex(copy.key)]
  await store.close()
  store = new C(path.join(dir, 'copy'), { ...opts, allowBackup: true })
  const again = store.get({ name: 'kept', valueEncoding: 'utf-8' })
  await again.ready()
  out.reopened = again.length
  await store.close()
  return out
}, (r) => {
  assert.equal(r.plain, 'refused')
  assert.deepEqual(r.copy.slice(0, 3), [3, 'one', 'three'])
  assert.equal(r.reopened, 3)
})
