'use strict'
// corestore's store.staticify(core): the core's data under a signer-less key whose prologue is
// the core's signed head. Side by side with JS corestore (same primary key, so the same keys):
// the static key, manifest, blocks and length; "Core must have data" for an empty core; a
// second call gives the same core; after a reopen the static core opens and the original key
// reads STORAGE_CONFLICT (its record now holds the static core), and either package opens a
// directory the other staticified. The static core replicates to a reader of its key.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const JSCorestore = require('corestore')
const Impl = require('./helpers/impl.js')
const same = require('./helpers/same.js')
const { tmpdir } = require('./helpers/util.js')

const PRIMARY = { primaryKey: b4a.alloc(32, 7), unsafe: true }

async function staticified(Corestore, dir) {
  const store = new Corestore(dir, PRIMARY)
  const core = store.get({ name: 'original' })
  await core.ready()
  let empty = null
  try {
    await store.staticify(core)
  } catch (err) {
    empty = err.message
  }
  await core.append(['a', 'b', 'c'].map((s) => b4a.from(s)))
  const st = await store.staticify(core)
  const again = await store.staticify(core)
  const out = {
    empty,
    originalKey: b4a.toString(core.key, 'hex'),
    key: b4a.toString(st.key, 'hex'),
    again: b4a.equals(again.key, st.key),
    length: st.length,
    writable: st.writable,
    blocks: [await st.get(0), await st.get(2)].map((b) => b4a.toString(b)),
    manifest: {
      quorum: st.manifest.quorum,
      signers: st.manifest.signers.length,
      prologueLength: st.manifest.prologue.length,
      prologueIsTreeHash: b4a.equals(st.manifest.prologue.hash, await core.treeHash())
    }
  }
  await store.close()
  return out
}

same('staticify: key, manifest, blocks; empty core refused; idempotent', staticified, (r) => {
  assert.equal(r.empty, 'Core must have data')
  assert.notEqual(r.key, r.originalKey)
  assert.equal(r.length, 3)
  assert.equal(r.writable, false)
  assert.deepEqual(r.blocks, ['a', 'c'])
  assert.deepEqual(r.manifest, { quorum: 0, signers: 0, prologueLength: 3, prologueIsTreeHash: true })
})

async function reopen(Writer, Reader, dir) {
  const w = await staticified(Writer, dir)
  const store = new Reader(dir, PRIMARY)
  const st = store.get({ key: b4a.from(w.key, 'hex') })
  await st.ready()
  const out = { length: st.length, block: b4a.toString(await st.get(1)) }
  const orig = store.get({ key: b4a.from(w.originalKey, 'hex') })
  out.original = await orig.ready().then(
    () => 'opened',
    (err) => err.code
  )
  await store.close().catch(() => {})
  return out
}

for (const [name, Writer, Reader] of [
  ['impl then JS', Impl, JSCorestore],
  ['JS then impl', JSCorestore, Impl],
  ['impl then impl', Impl, Impl]
]) {
  test(`staticify on disk: ${name}`, async (t) => {
    const r = await reopen(Writer, Reader, tmpdir(t))
    assert.deepEqual(r, { length: 3, block: 'b', original: 'STORAGE_CONFLICT' })
  })
}

test('a static core replicates to a reader of its key (impl → JS and JS → impl)', async (t) => {
  for (const [Writer, Reader] of [
    [Impl, JSCorestore],
    [JSCorestore, Impl]
  ]) {
    const ws = new Writer(tmpdir(t))
    const core = ws.get({ name: 'w' })
    await core.append(['x', 'y'].map((s) => b4a.from(s)))
    const st = await ws.staticify(core)
    const rs = new Reader(tmpdir(t))
    const r = rs.get({ key: st.key })
    await r.ready()
    const s1 = ws.replicate(true)
    const s2 = rs.replicate(false)
    s1.pipe(s2).pipe(s1)
    assert.equal(b4a.toString(await r.get(1)), 'y')
    assert.equal(r.length, 2)
    s1.destroy()
    s2.destroy()
    await ws.close()
    await rs.close()
  }
})
