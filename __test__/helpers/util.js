'use strict'
const fs = require('fs')
const os = require('os')
const path = require('path')
const b4a = require('b4a')
const crypto = require('hypercore-crypto')
const flat = require('flat-tree')
const c = require('compact-encoding')

const DEFAULT_NAMESPACE = b4a.alloc(32)

// A fresh temp dir, removed when the test ends.
// the longest time a 1 ms timer waited while fn ran, and how long fn ran
async function stalls(fn) {
  const started = performance.now()
  let last = started
  let worst = 0
  const timer = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last)
    last = now
  }, 1)
  await fn()
  clearInterval(timer)
  const end = performance.now()
  return { worst: Math.max(worst, end - last), total: end - started }
}

function tmpdir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-test-'))
  if (t) t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function hex(b) {
  return b ? b4a.toString(b, 'hex') : b
}

// Buffers -> hex, recursively, so results compare as plain data.
function plain(v) {
  if (v === null || v === undefined) return v
  if (b4a.isBuffer(v) || v instanceof Uint8Array) return b4a.toString(b4a.from(v), 'hex')
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === 'object') {
    const out = {}
    for (const k of Object.keys(v)) out[k] = plain(v[k])
    return out
  }
  return v
}

// What an error looks like from the outside.
function errInfo(err) {
  return { isError: err instanceof Error, code: err.code, message: err.message }
}

// Runs fn, returns { sync, ...errInfo } if it throws synchronously or rejects, else { ok: value }.
async function outcome(fn) {
  let p
  try {
    p = fn()
  } catch (err) {
    return { sync: true, ...errInfo(err) }
  }
  try {
    return { ok: plain(await p) }
  } catch (err) {
    return { sync: false, ...errInfo(err) }
  }
}

// The namespace corestore derives: blake2b-256(parentNamespace || name).
function namespaceOf(chain) {
  let ns = DEFAULT_NAMESPACE
  for (const name of chain) ns = crypto.hash([ns, b4a.from(name)])
  return ns
}

// Deterministic block content for block index i (sizes 1..~700 bytes, some larger).
function blockFor(i) {
  const size = i % 17 === 5 ? 5000 + (i % 3) : 1 + ((i * 131) % 700)
  const out = b4a.alloc(size)
  const tag = b4a.from('block-' + i + ';')
  for (let j = 0; j < size; j += tag.length) tag.copy(out, j, 0, Math.min(tag.length, size - j))
  return out
}

// Recompute the merkle tree hash of a list of blocks (what core.treeHash() returns).
function treeHashOf(blocks) {
  const nodes = new Map()
  for (let i = 0; i < blocks.length; i++) {
    nodes.set(2 * i, { index: 2 * i, size: blocks[i].byteLength, hash: crypto.data(blocks[i]) })
  }
  const get = (index) => {
    let n = nodes.get(index)
    if (n) return n
    const depth = flat.depth(index)
    if (depth === 0) throw new Error('missing leaf ' + index)
    const [l, r] = flat.children(index)
    const a = get(l)
    const b = get(r)
    n = { index, size: a.size + b.size, hash: crypto.parent(a, b) }
    nodes.set(index, n)
    return n
  }
  const roots = flat.fullRoots(2 * blocks.length).map(get)
  return crypto.tree(roots)
}

// The head signature if the session exposes it (JS: core.core.state.signature), else undefined.
function exposedSignature(core) {
  if (core.core && core.core.state && b4a.isBuffer(core.core.state.signature)) {
    return core.core.state.signature
  }
  if (b4a.isBuffer(core.signature)) return core.signature
  return undefined
}

// Verifies a hypercore 11 (manifest v1, single ed25519 signer) head signature.
function verifyHeadSignature({ signature, key, publicKey, treeHash, length, fork = 0 }) {
  const { multiSignature } = require('hypercore/messages')
  const caps = require('hypercore/lib/caps')
  let sig = signature
  if (sig.byteLength !== 64) sig = c.decode(multiSignature, sig).proofs[0].signature
  return crypto.verify(caps.treeSignable(key, treeHash, length, fork), sig, publicKey)
}

async function collect(stream) {
  const out = []
  for await (const d of stream) out.push(d)
  return out
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

module.exports = {
  stalls,
  DEFAULT_NAMESPACE,
  tmpdir,
  hex,
  plain,
  errInfo,
  outcome,
  namespaceOf,
  blockFor,
  treeHashOf,
  exposedSignature,
  verifyHeadSignature,
  collect,
  delay
}
