'use strict'
// Keys contract: same primary key + namespace chain + name => byte-identical key pairs,
// manifests, keys, discovery keys, ids, tree hashes and head signatures as JS corestore.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('path')
const b4a = require('b4a')
const z32 = require('z32')
const crypto = require('hypercore-crypto')
const JSCorestore = require('corestore')
const Corestore = require('./helpers/impl.js')
const {
  tmpdir,
  hex,
  plain,
  namespaceOf,
  treeHashOf,
  exposedSignature,
  verifyHeadSignature
} = require('./helpers/util.js')

const VECTORS = require(path.join(__dirname, 'fixtures', 'corestore-keys.json'))

function withNamespaces(store, chain) {
  let s = store
  for (const n of chain) s = s.namespace(n)
  return s
}

// The vector files list only these manifest fields.
function vectorManifest(m) {
  return {
    version: m.version,
    hash: m.hash,
    quorum: m.quorum,
    allowPatch: m.allowPatch,
    signers: m.signers.map((s) => ({
      signature: s.signature,
      namespace: hex(s.namespace),
      publicKey: hex(s.publicKey)
    }))
  }
}

test('vectors: cores derived from primary key + namespaces + name', async (t) => {
  const byPrimaryKey = new Map()
  for (const v of VECTORS.cores) {
    if (!byPrimaryKey.has(v.primaryKey)) byPrimaryKey.set(v.primaryKey, [])
    byPrimaryKey.get(v.primaryKey).push(v)
  }
  assert.ok(byPrimaryKey.size >= 1)

  for (const [primaryKey, vectors] of byPrimaryKey) {
    const store = new Corestore(tmpdir(t), { primaryKey: b4a.from(primaryKey, 'hex'), unsafe: true })
    await store.ready()
    assert.equal(hex(store.primaryKey), primaryKey)

    for (const v of vectors) {
      const what = `pk=${primaryKey.slice(0, 8)} ns=${JSON.stringify(v.namespaces)} name=${v.name}`
      assert.equal(hex(namespaceOf(v.namespaces)), v.namespace, 'test helper namespace ' + what)

      const ns = withNamespaces(store, v.namespaces)
      const core = ns.get({ name: v.name })
      await core.ready()

      assert.equal(hex(core.key), v.key, 'key ' + what)
      assert.equal(hex(core.discoveryKey), v.discoveryKey, 'discoveryKey ' + what)
      assert.equal(core.id, v.z32Key, 'id ' + what)
      assert.equal(z32.encode(core.key), v.z32Key)
      assert.deepEqual(vectorManifest(core.manifest), v.manifest, 'manifest ' + what)
      assert.equal(hex(core.manifest.signers[0].publicKey), v.signerPublicKey)
      assert.equal(core.writable, true, 'named core is writable ' + what)

      const kp = await ns.createKeyPair(v.name)
      assert.equal(hex(kp.publicKey), v.signerPublicKey, 'createKeyPair ' + what)
      assert.equal(kp.secretKey.byteLength, 64)
      // ed25519 secret key = seed || publicKey
      assert.equal(hex(kp.secretKey.subarray(32)), v.signerPublicKey)
    }
    await store.close()
  }
})

test('vectors: discovery key of the all-zero key', async (t) => {
  const store = new Corestore(tmpdir(t))
  const core = store.get(b4a.alloc(32))
  await core.ready()
  assert.equal(hex(core.discoveryKey), VECTORS.discoveryKeyOfZeroKey)
  assert.equal(hex(crypto.discoveryKey(b4a.alloc(32))), VECTORS.discoveryKeyOfZeroKey)
  await store.close()
})

test('vectors: tree hashes and head signatures after appends', async (t) => {
  for (const tree of VECTORS.trees) {
    const dir = tmpdir(t)
    const store = new Corestore(dir, { primaryKey: b4a.from(tree.primaryKey, 'hex'), unsafe: true })
    const core = store.get({ name: tree.name })
    await core.ready()
    assert.equal(hex(core.key), tree.key)
    const publicKey = core.manifest.signers[0].publicKey

    const blocks = []
    for (const step of tree.steps) {
      const block = b4a.from(step.appended, 'hex')
      blocks.push(block)
      const res = await core.append(block)
      assert.deepEqual(res, { length: step.length, byteLength: step.byteLength })
      assert.equal(core.length, step.length)
      assert.equal(core.byteLength, step.byteLength)
      assert.equal(hex(await core.treeHash()), step.treeHash, 'treeHash at length ' + step.length)
      assert.equal(hex(treeHashOf(blocks)), step.treeHash)
      // the vector itself is a valid signature of that tree
      assert.ok(
        verifyHeadSignature({
          signature: b4a.from(step.signature, 'hex'),
          key: core.key,
          publicKey,
          treeHash: b4a.from(step.treeHash, 'hex'),
          length: step.length
        })
      )
      const sig = exposedSignature(core)
      if (sig !== undefined) assert.equal(hex(sig), step.signature, 'signature at ' + step.length)
    }
    await store.close()

    // the head the implementation stored, as the JS package reads it
    const last = tree.steps[tree.steps.length - 1]
    const js = new JSCorestore(dir)
    const jcore = js.get({ name: tree.name })
    await jcore.ready()
    assert.equal(jcore.length, last.length)
    assert.equal(hex(await jcore.treeHash()), last.treeHash)
    assert.equal(hex(exposedSignature(jcore)), last.signature, 'stored head signature')
    await js.close()
  }
})

function randomName() {
  const pool = ['', 'é', 'ü', '日本', '-', '_', '/', ' ']
  const n = 1 + Math.floor(Math.random() * 12)
  let s = crypto.randomBytes(n).toString('base64').replace(/=+$/, '')
  s += pool[Math.floor(Math.random() * pool.length)]
  return s
}

const SIZES = [1, 3, 64, 1000, 4096, 5000, 65537]

test('live: random primary keys, namespaces and names match the JS package', async (t) => {
  for (let round = 0; round < 3; round++) {
    const primaryKey = crypto.randomBytes(32)
    const chain = []
    const depth = round // 0, 1, 2 nested namespaces
    for (let i = 0; i < depth; i++) chain.push(randomName())
    const names = [randomName(), randomName(), 'main']
    const what = `pk=${hex(primaryKey)} ns=${JSON.stringify(chain)}`

    const implDir = tmpdir(t)
    const impl = new Corestore(implDir, { primaryKey, unsafe: true })
    const js = new JSCorestore(tmpdir(t), { primaryKey, unsafe: true })
    const ins = withNamespaces(impl, chain)
    const jns = withNamespaces(js, chain)

    const finals = []
    for (const name of names) {
      const w = what + ' name=' + JSON.stringify(name)
      const ikp = await ins.createKeyPair(name)
      const jkp = await jns.createKeyPair(name)
      assert.equal(hex(ikp.publicKey), hex(jkp.publicKey), 'createKeyPair.publicKey ' + w)
      assert.equal(hex(ikp.secretKey), hex(jkp.secretKey), 'createKeyPair.secretKey ' + w)

      const ic = ins.get({ name })
      const jc = jns.get({ name })
      await Promise.all([ic.ready(), jc.ready()])
      assert.equal(hex(ic.key), hex(jc.key), 'key ' + w)
      assert.equal(hex(ic.discoveryKey), hex(jc.discoveryKey), 'discoveryKey ' + w)
      assert.equal(ic.id, jc.id, 'id ' + w)
      assert.deepEqual(plain(ic.manifest), plain(jc.manifest), 'manifest ' + w)
      assert.equal(hex(ic.manifest.signers[0].publicKey), hex(jkp.publicKey))

      // appends of varied sizes, single and batched
      const plan = [[SIZES[0]], [SIZES[1], SIZES[2]], [SIZES[3]], [SIZES[4], SIZES[5], SIZES[6]], [7]]
      let n = 0
      for (const sizes of plan) {
        const batch = sizes.map((s) => crypto.randomBytes(s))
        n += batch.length
        const arg = batch.length === 1 ? batch[0] : batch
        const [ir, jr] = await Promise.all([ic.append(arg), jc.append(arg)])
        assert.deepEqual(ir, jr, 'append result ' + w)
        assert.equal(ir.length, n)
        assert.equal(ic.length, jc.length)
        assert.equal(ic.byteLength, jc.byteLength)
        assert.equal(ic.signedLength, jc.signedLength)
        assert.equal(hex(await ic.treeHash()), hex(await jc.treeHash()), 'treeHash ' + w)
        const isig = exposedSignature(ic)
        if (isig !== undefined) {
          assert.equal(hex(isig), hex(exposedSignature(jc)), 'signature ' + w)
        }
      }
      finals.push({
        name,
        length: jc.length,
        treeHash: hex(await jc.treeHash()),
        signature: hex(exposedSignature(jc))
      })
    }
    await Promise.all([impl.close(), js.close()])

    // the signed heads the implementation stored equal the ones JS computed
    const check = new JSCorestore(implDir)
    const cns = withNamespaces(check, chain)
    for (const f of finals) {
      const core = cns.get({ name: f.name })
      await core.ready()
      assert.equal(core.length, f.length)
      assert.equal(hex(await core.treeHash()), f.treeHash)
      assert.equal(hex(exposedSignature(core)), f.signature, 'stored signature ' + what)
    }
    await check.close()
  }
})

test('get(key) as Buffer, hex and z32; get({ keyPair }), get({ manifest }), get({ discoveryKey })', async (t) => {
  const primaryKey = crypto.randomBytes(32)
  const dir = tmpdir(t)
  const jsDir = tmpdir(t)
  const keyPair = crypto.keyPair()

  async function scenario(C, dir) {
    const store = new C(dir, { primaryKey, unsafe: true })
    const named = store.get({ name: 'named' })
    await named.ready()
    await named.append([b4a.from('one'), b4a.from('two')])

    const out = { named: { key: hex(named.key), id: named.id } }
    const namedDk = named.discoveryKey
    for (const [label, k] of [
      ['buffer', named.key],
      ['hex', hex(named.key)],
      ['z32', z32.encode(named.key)]
    ]) {
      const s = store.get(k)
      await s.ready()
      out[label] = {
        key: hex(s.key),
        discoveryKey: hex(s.discoveryKey),
        id: s.id,
        length: s.length,
        writable: s.writable,
        block: hex(await s.get(1))
      }
      const s2 = store.get({ key: k })
      await s2.ready()
      out[label].objKey = hex(s2.key)
    }

    const kp = store.get({ keyPair })
    // key is known synchronously when derivable from the arguments
    out.keyPairSync = hex(kp.key)
    await kp.ready()
    await kp.append(b4a.from('kp'))
    out.keyPair = { key: hex(kp.key), manifest: plain(kp.manifest), writable: kp.writable }

    const manifest = { version: 1, signers: [{ publicKey: keyPair.publicKey }] }
    const m = store.get({ manifest })
    out.manifestSync = hex(m.key)
    await m.ready()
    out.manifest = { key: hex(m.key), length: m.length, block: hex(await m.get(0)) }

    const dk = store.get({ discoveryKey: named.discoveryKey })
    // a discovery key (or a name) needs a storage lookup: no key until ready
    out.syncKeys = { discoveryKey: dk.key, name: store.get({ name: 'other' }).key }
    await dk.ready()
    out.discoveryKey = { key: hex(dk.key), id: dk.id, length: dk.length, writable: dk.writable }

    const missing = store.get({ discoveryKey: crypto.randomBytes(32) })
    out.missingReady = await missing.ready().then(
      () => 'resolved',
      (err) => ({ code: err.code, message: err.message })
    )
    const missing2 = store.get({ discoveryKey: crypto.randomBytes(32) })
    out.missingAppend = await missing2.append(b4a.from('x')).then(
      () => 'resolved',
      (err) => ({ code: err.code, message: err.message })
    )
    await store.close()

    // after reopen: cores not in memory any more
    const again = new C(dir)
    const byDk = again.get({ discoveryKey: namedDk })
    await byDk.ready()
    const byKey = again.get(b4a.from(out.named.key, 'hex'))
    await byKey.ready()
    out.reopen = {
      dkKey: hex(byDk.key),
      dkLength: byDk.length,
      keyWritable: byKey.writable,
      keyLength: byKey.length,
      block: hex(await byKey.get(0))
    }
    const miss = again.get({ discoveryKey: crypto.randomBytes(32) })
    out.reopenMissing = await miss.ready().then(
      () => 'resolved',
      (err) => err.code
    )
    await again.close()
    return out
  }

  const got = await scenario(Corestore, dir)
  const want = await scenario(JSCorestore, jsDir)
  assert.deepEqual(got, want)

  // concrete expectations
  for (const label of ['buffer', 'hex', 'z32']) {
    assert.equal(got[label].key, got.named.key)
    assert.equal(got[label].objKey, got.named.key)
    assert.equal(got[label].id, got.named.id)
    assert.equal(got[label].length, 2)
    assert.equal(got[label].writable, true)
    assert.equal(got[label].block, hex(b4a.from('two')))
  }
  assert.equal(got.keyPairSync, got.keyPair.key)
  assert.equal(got.keyPair.writable, true)
  assert.equal(got.manifestSync, got.keyPair.key)
  assert.equal(got.manifest.key, got.keyPair.key)
  assert.equal(got.manifest.length, 1)
  assert.deepEqual(got.syncKeys, { discoveryKey: null, name: null })
  assert.equal(got.discoveryKey.key, got.named.key)
  assert.equal(got.discoveryKey.length, 2)
  assert.deepEqual(got.missingReady, {
    code: 'STORAGE_EMPTY',
    message: 'STORAGE_EMPTY: No Hypercore is stored here'
  })
  assert.deepEqual(got.missingAppend, got.missingReady)
  assert.equal(got.reopen.dkKey, got.named.key)
  assert.equal(got.reopen.dkLength, 2)
  assert.equal(got.reopen.keyWritable, true)
  assert.equal(got.reopen.keyLength, 2)
  assert.equal(got.reopenMissing, 'STORAGE_EMPTY')
})
