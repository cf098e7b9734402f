'use strict'

// hypercore's `core.core.verifier` and the tree batches it signs (`state.createTreeBatch()`),
// for code that builds multisig signatures on our cores: Autobase's indexers, and
// hypercore's `lib/multisig.js` (partialSignature reads `state.length`, `signature`,
// `storage.read().getTreeNode()`; assemble is ours here). The hashing, ed25519 and the
// signature rules (quorum, prologue, patches) run in the engine (src/napi/verifier.rs over
// src/core/signature.rs), the same code that checks appends and replicated upgrades.

const binding = require('./native.js')
const { manifestInput } = require('./manifest')
const { toBuffer } = require('./encodings')
const { BAD_ARGUMENT, INVALID_OPERATION } = require('./errors')

// The flat-tree indexes of the full roots of a tree of `length` blocks, left to right.
function fullRoots(length) {
  const roots = []
  let start = 0 // first block under the next root
  while (length > 0) {
    let size = 1
    while (size * 2 <= length) size *= 2
    roots.push(2 * start + size - 1)
    start += size
    length -= size
  }
  return roots
}

// The roots of the tree of `length` blocks that `handle` (a core or a session state) holds.
function readRoots(native, handle, length) {
  return fullRoots(length).map((index) => {
    const node = native.storageTreeNode(handle, index)
    if (node === null) throw INVALID_OPERATION('Expected tree node ' + index + ' from storage, got (nil)')
    return node
  })
}

// hypercore's MerkleTreeBatch as a signer sees it: a tree (roots, length, fork) to sign or
// check, detached from the state it was made from.
class TreeBatch {
  constructor({ fork, length, byteLength, roots, signature, prologue }) {
    this.fork = fork
    this.length = length
    this.byteLength = byteLength
    this.roots = roots
    this.signature = signature || null
    this.prologue = prologue || null
    this.hashCached = null
  }

  hash() {
    if (this.hashCached === null) this.hashCached = binding.treeHashOfRoots(this.roots.map(nodeIn))
    return this.hashCached
  }

  // what a signer with signing context `ctx` (the manifest hash; a namespace in version 0) signs
  signable(ctx) {
    return binding.treeSignable(toBuffer(ctx), this.hash(), this.length, this.fork)
  }

  signableCompat(noHeader) {
    return binding.treeSignableCompat(this.hash(), this.length, this.fork, !!noHeader)
  }

  clone() {
    const b = new TreeBatch(this)
    b.roots = this.roots.slice()
    b.hashCached = this.hashCached
    return b
  }
}

// One signer of a manifest (hypercore's Signer / CompatSigner).
class Signer {
  constructor(verifier, index, { publicKey, namespace, signature }) {
    this.manifestHash = verifier.manifestHash
    this.version = verifier.version
    this.signer = index
    this.signature = signature || 'ed25519'
    this.publicKey = publicKey
    this.namespace = namespace
    this._compat = verifier.compat
  }

  _signable(batch) {
    if (this._compat) return batch.signableCompat(false)
    return batch.signable(this.version === 0 ? this.namespace : this.manifestHash)
  }

  sign(batch, keyPair) {
    return binding.signMessage(toBuffer(this._signable(batch)), toBuffer(keyPair.secretKey))
  }

  verify(batch, signature) {
    if (!signature) return false
    return binding.verifyMessage(toBuffer(this._signable(batch)), toBuffer(signature), this.publicKey)
  }
}

// hypercore's Verifier for a core `key` with `manifest` (as hypercore makes it: the key
// stands in for the manifest hash).
class Verifier {
  constructor(key, manifest) {
    const compat =
      manifest.signers.length === 1 && Buffer.from(manifest.signers[0].publicKey).equals(key)
    this.manifestHash = key
    this.manifest = manifest
    this.compat = compat
    this.version = compat ? 0 : typeof manifest.version === 'number' ? manifest.version : 1
    this.hash = manifest.hash || 'blake2b'
    this.allowPatch = !compat && !!manifest.allowPatch
    this.quorum = compat ? 1 : manifest.quorum
    this.signers = manifest.signers.map((s, i) => new Signer(this, i, s))
    this.prologue = compat ? null : manifest.prologue || null
    this._input = manifestInput(manifest)
  }

  // whether `signature` signs `batch` (a quorum of signers, patched proofs grown from the
  // batch's roots; a prologue's tree needs none)
  verify(batch, signature) {
    if (!signature) return false
    const roots = Array.isArray(batch.roots) ? batch.roots.map(nodeIn) : undefined
    return binding.verifyTreeSignature(
      this._input,
      this.compat,
      toBuffer(batch.hash()),
      roots,
      batch.length,
      batch.fork,
      toBuffer(signature)
    )
  }

  // the signature of `keyPair` over `batch`, as hypercore stores it for this manifest: raw
  // for version 0 and several signers (assemble them), a one-proof multisig otherwise
  sign(batch, keyPair) {
    if (!keyPair || !keyPair.secretKey) throw BAD_ARGUMENT('No key pair was passed')
    const publicKey = toBuffer(keyPair.publicKey)
    for (const s of this.signers) {
      if (!publicKey.equals(s.publicKey)) continue
      const signature = s.sign(batch, keyPair)
      if (this.signers.length !== 1 || this.version === 0) return signature
      return this.assemble([{ signer: 0, signature, patch: 0, nodes: null }])
    }
    throw BAD_ARGUMENT('Public key is not a declared signer')
  }

  // hypercore's multisig.assemble / assemblev0 over partialSignature()s
  assemble(inputs) {
    return binding.assembleSignature(
      this.version,
      inputs.map((u) => ({
        signer: u.signer,
        signature: toBuffer(u.signature),
        patch: u.patch || 0,
        nodes: u.nodes ? u.nodes.map(nodeIn) : undefined
      }))
    )
  }
}

function nodeIn(n) {
  return { index: n.index, size: n.size, hash: toBuffer(n.hash) }
}

module.exports = { Verifier, TreeBatch, fullRoots, readRoots }
