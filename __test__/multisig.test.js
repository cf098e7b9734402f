'use strict'
// Multisig cores as Autobase builds them, with hypercore's own helpers on our sessions:
// signers sign a multisig core's tree with `core.core.verifier.sign(state.createTreeBatch())`,
// hypercore's `partialSignature` reads our state (length, signature, storage.read()), the
// verifier assembles the parts, the multisig core appends with that signature and a store
// of the other implementation replicates it. Side by side with JS corestore.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const JSCorestore = require('corestore')
const { partialSignature, assemble } = require('hypercore/lib/multisig')
const Corestore = require('./helpers/impl.js')
const same = require('./helpers/same.js')
const { tmpdir } = require('./helpers/util.js')

const PRIMARY = b4a.alloc(32, 7)

function multiManifest(signers) {
  return {
    version: 1,
    allowPatch: true,
    quorum: 2,
    signers: signers.map((s) => ({ signature: 'ed25519', publicKey: s.keyPair.publicKey })),
    prologue: null
  }
}

// signer `s`'s part of a multisig over `core` at `length` (hypercore's test helper does the same)
async function part(core, s, length) {
  const sig = core.core.verifier.sign(s.state.createTreeBatch(), s.keyPair)
  const index = core.manifest.signers.findIndex((x) => b4a.equals(x.publicKey, s.keyPair.publicKey))
  return partialSignature(s.core, index, length, s.core.state.length, sig)
}

async function errorCode(promise) {
  try {
    await promise
    return null
  } catch (err) {
    return err.code || err.message
  }
}

// the multisig core of store `Impl`, read back through a store of `Other`
async function scenario(Impl, Other, dir, dir2) {
  const store = new Impl(dir, { primaryKey: PRIMARY, unsafe: true })
  const signers = ['s0', 's1', 's2'].map((name) => store.get({ name }))
  await Promise.all(signers.map((s) => s.ready()))
  const manifest = multiManifest(signers)
  const core = store.get({ manifest })
  await core.ready()

  for (let i = 0; i < 6; i++) await signers[0].append(b4a.from('block ' + i))
  for (let i = 0; i < 4; i++) await signers[1].append(b4a.from('block ' + i))

  // signer 0 is two blocks ahead: its part carries a patch
  const p0 = await part(core, signers[0], 4)
  const p1 = await part(core, signers[1], 4)
  const signature = core.core.verifier.assemble([p0, p1])

  const out = {
    key: b4a.toString(core.key, 'hex'),
    patch: [p0.patch, p1.patch],
    patchNodes: p0.nodes.map((n) => n.index),
    signature: b4a.toString(signature, 'hex'),
    sameAsHypercore: b4a.equals(signature, assemble([p0, p1])),
    verifier: {
      version: core.core.verifier.version,
      quorum: core.core.verifier.quorum,
      allowPatch: core.core.verifier.allowPatch,
      signers: core.core.verifier.signers.length
    }
  }

  const blocks = [0, 1, 2, 3].map((i) => b4a.from('block ' + i))
  // not the blocks the signers signed, or too few of them: refused, nothing written
  out.wrongBlocks = await errorCode(core.append([b4a.from('x'), ...blocks.slice(1)], { signature }))
  out.tooFew = await errorCode(core.append(blocks.slice(0, 2), { signature }))
  const tampered = b4a.from(signature)
  tampered[tampered.length - 1] ^= 1 // the last patch node's hash
  out.badPatch = await errorCode(core.append(blocks, { signature: tampered }))
  out.lengthAfterRefusals = core.length

  await core.append(blocks, { signature })
  out.length = core.length
  out.signedLength = core.signedLength
  const batch = core.state.createTreeBatch()
  out.verifies = core.core.verifier.verify(batch, core.state.signature)
  out.signatureStored = b4a.equals(core.state.signature, signature)

  // the other implementation replicates it and checks the signature itself
  const other = new Other(dir2)
  const replica = other.get({ manifest })
  await replica.ready()
  const s1 = store.replicate(true)
  const s2 = other.replicate(false)
  s1.pipe(s2).pipe(s1)
  if (replica.length < 4) await new Promise((resolve) => replica.on('append', resolve))
  out.replica = []
  for (let i = 0; i < replica.length; i++) out.replica.push(b4a.toString(await replica.get(i)))

  s1.destroy()
  s2.destroy()
  await other.close()
  await store.close()
  return out
}

test('a multisig core with a patched signer part, appended and replicated, as JS', async (t) => {
  const got = await scenario(Corestore, JSCorestore, tmpdir(t), tmpdir(t))
  const want = await scenario(JSCorestore, Corestore, tmpdir(t), tmpdir(t))
  assert.deepEqual(got, want)
  assert.deepEqual(got.patch, [2, 0])
  assert.equal(got.sameAsHypercore, true)
  assert.equal(got.wrongBlocks, 'INVALID_SIGNATURE')
  assert.equal(got.badPatch, 'INVALID_SIGNATURE')
  assert.equal(got.lengthAfterRefusals, 0)
  assert.equal(got.length, 4)
  assert.equal(got.signedLength, 4)
  assert.equal(got.verifies, true)
  assert.deepEqual(got.replica, ['block 0', 'block 1', 'block 2', 'block 3'])
})

same('verifier.sign of a one-signer core gives the signature the core stores', async (Impl, dir) => {
  const store = new Impl(dir, { primaryKey: PRIMARY, unsafe: true })
  const core = store.get({ name: 'single' })
  await core.append([b4a.from('a'), b4a.from('b')])
  const v = core.core.verifier
  const batch = core.state.createTreeBatch()
  const signature = v.sign(batch, core.keyPair)
  const out = {
    signature: b4a.toString(signature, 'hex'),
    stored: b4a.equals(signature, core.state.signature),
    verifies: v.verify(batch, signature),
    hash: b4a.toString(batch.hash(), 'hex'),
    treeHash: b4a.equals(batch.hash(), await core.treeHash()),
    roots: batch.roots.map((r) => [r.index, r.size]),
    notASigner: await errorCode((async () => v.sign(batch, { publicKey: b4a.alloc(32), secretKey: b4a.alloc(64) }))()),
    compat: v.compat,
    prologue: v.prologue
  }
  await store.close()
  return out
})
