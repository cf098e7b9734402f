'use strict'
// Shared machinery for the replication suites (__test__/replicate*.test.js).
//
// - The pairing matrix: every scenario runs writer→reader as impl→JS, JS→impl and impl→impl,
//   where "impl" is ./impl.js (corestore-native, or CORESTORE_IMPL) and "JS" is the corestore
//   package. With CORESTORE_IMPL=corestore all pairings are JS↔JS (validation of the suite).
//   CSN_PAIRINGS=impl-js,js-impl,impl-impl (comma list of ids) restricts the matrix.
// - Bounded waits: every wait goes through within()/until()/eventOnce() so a broken
//   implementation fails fast with a message naming what was awaited.
// - Resources: env(t) collects stores/streams/sockets/servers and closes them in reverse order
//   when the test ends (before the temp dirs from tmpdir(t) are removed).
const net = require('net')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const JSCorestore = require('corestore')
const Impl = require('./impl.js')
const { tmpdir, plain } = require('./util.js')

const IMPL_IS_JS = Impl === JSCorestore
const IMPL_NAME = IMPL_IS_JS ? 'impl(=JS)' : 'impl'

// ---- the pairing matrix ----

const ALL_PAIRINGS = [
  { id: 'impl-js', name: 'impl→JS', Writer: Impl, Reader: JSCorestore },
  { id: 'js-impl', name: 'JS→impl', Writer: JSCorestore, Reader: Impl },
  { id: 'impl-impl', name: 'impl→impl', Writer: Impl, Reader: Impl }
]

function selected(ids) {
  const only = process.env.CSN_PAIRINGS
  if (!only) return ids
  const want = only.split(',').map((s) => s.trim())
  return ids.filter((id) => want.includes(id))
}

function pairings(ids = ALL_PAIRINGS.map((p) => p.id)) {
  const keep = selected(ids)
  return ALL_PAIRINGS.filter((p) => keep.includes(p.id))
}

// Registers `title [writer→reader]` once per pairing. fn(t, pairing, env).
function forEachPairing(title, opts, fn, ids) {
  if (typeof opts === 'function') {
    ids = fn
    fn = opts
    opts = {}
  }
  for (const p of pairings(ids)) {
    test(`${title} [${p.name}]`, { timeout: 30000, ...opts }, async (t) => {
      const e = env(t)
      await fn(t, p, e)
    })
  }
}

// ---- bounded waits ----

class TimeoutError extends Error {
  constructor(ms, what) {
    super(`timed out after ${ms} ms: ${what}`)
    this.code = 'TEST_TIMEOUT'
  }
}

// Resolves/rejects like `promise`, or rejects after `ms` naming `what`.
function within(ms, promise, what = 'operation') {
  let timer = null
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms, what)), ms)
  })
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer))
}

// Polls fn() (sync or async) until truthy; returns its value.
async function until(fn, ms = 5000, what = 'condition', interval = 10) {
  const deadline = Date.now() + ms
  while (true) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new TimeoutError(ms, what)
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

// Resolves with the args array of the next `name` event.
function eventOnce(emitter, name, ms = 5000, what = `'${name}' event`) {
  let handler = null
  const p = new Promise((resolve) => {
    handler = (...args) => resolve(args)
    emitter.once(name, handler)
  })
  return within(ms, p, what).finally(() => emitter.removeListener(name, handler))
}

// Expects `promise` to reject with `code` within ms; returns the error.
async function rejectsWith(promise, code, ms, what) {
  let err = null
  try {
    await within(ms, promise, what)
  } catch (e) {
    err = e
  }
  assert.ok(err, `${what}: expected rejection with ${code}, it resolved`)
  assert.equal(err.code, code, `${what}: expected ${code}, got ${err && err.stack}`)
  return err
}

// Resolves once `stream` has emitted 'close' (immediately if it already did).
function closed(stream, ms = 5000, what = 'stream close') {
  if (stream.destroyed) return Promise.resolve()
  return within(ms, new Promise((resolve) => stream.once('close', resolve)), what)
}

// ---- resources ----

// One per test: register teardown in reverse order, all bounded.
function env(t) {
  const stack = []
  const e = {
    t,
    defer(fn, what = 'cleanup') {
      stack.push({ fn, what })
      return fn
    },
    dir() {
      return tmpdir(t)
    },
    // A store of class Ctor in a fresh dir (or `dir`), closed at the end.
    store(Ctor, dir = tmpdir(t), opts) {
      const s = new Ctor(dir, opts)
      s.__dir = dir
      e.defer(() => s.close(), 'store.close()')
      return s
    },
    // Tracks a stream: records 'error's (never uncaught), destroyed at the end.
    stream(s, label = 'stream') {
      s.__errors = []
      s.__label = label
      s.on('error', (err) => s.__errors.push(err))
      e.defer(() => {
        if (s.destroyed) return
        const done = new Promise((resolve) => s.once('close', resolve))
        s.destroy()
        return done
      }, `${label}.destroy()`)
      return s
    }
  }
  // Registered before any tmpdir(t) hook, so it runs first (node:test runs after-hooks FIFO).
  t.after(async () => {
    const errors = []
    while (stack.length) {
      const { fn, what } = stack.pop()
      try {
        await within(10000, fn(), `teardown: ${what}`)
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length) throw errors[0]
  })
  return e
}

// Two connected secret-streams, as Hyperswarm hands them out; destroyed at the end.
function secretStreamPair(e) {
  const a = new NoiseSecretStream(true)
  const b = new NoiseSecretStream(false)
  a.rawStream.pipe(b.rawStream).pipe(a.rawStream)
  for (const s of [a, b]) {
    s.on('error', () => {})
    e.defer(() => s.destroy(), 'secret-stream destroy')
  }
  return [a, b]
}

// a.replicate(true) <-> b.replicate(false) over an in-process pipe.
function pipeStores(e, a, b) {
  const s1 = e.stream(a.replicate(true), 's1(initiator)')
  const s2 = e.stream(b.replicate(false), 's2(responder)')
  s1.pipe(s2).pipe(s1)
  return { s1, s2 }
}

// Replication over a real TCP socket on 127.0.0.1. `server` replicates as the responder
// (replicate(false)), `client` as the initiator. Returns the streams and sockets.
async function tcpStores(e, server, client) {
  const srv = net.createServer()
  const sockets = []
  const track = (sock, label) => {
    sockets.push(sock)
    sock.on('error', () => {}) // ECONNRESET on teardown is expected
    e.defer(() => {
      if (sock.destroyed) return
      const done = new Promise((resolve) => sock.once('close', resolve))
      sock.destroy()
      return done
    }, `${label}.destroy()`)
  }
  e.defer(() => new Promise((resolve) => srv.close(() => resolve())), 'server.close()')
  const accepted = new Promise((resolve) => srv.once('connection', resolve))
  await within(5000, new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve)), 'listen')
  const { port } = srv.address()
  const clientSock = net.connect(port, '127.0.0.1')
  track(clientSock, 'client socket')
  await within(5000, new Promise((resolve) => clientSock.once('connect', resolve)), 'connect')
  const serverSock = await within(5000, accepted, 'accept')
  track(serverSock, 'server socket')
  const sServer = e.stream(server.replicate(false), 'server stream')
  const sClient = e.stream(client.replicate(true), 'client stream')
  serverSock.pipe(sServer).pipe(serverSock)
  clientSock.pipe(sClient).pipe(clientSock)
  return { server: sServer, client: sClient, serverSock, clientSock }
}

// ---- data ----

// Deterministic blocks of varied sizes: empty blocks, 1..2000 bytes, and 64 KiB blocks.
function variedBlock(i, salt = '') {
  let size
  if (i % 97 === 3) size = 0
  else if (i % 251 === 7) size = 65536
  else size = 1 + ((i * 7919) % 2000)
  const out = b4a.alloc(size)
  const tag = b4a.from(`${salt}#${i};`)
  for (let j = 0; j < size; j += tag.length) tag.copy(out, j, 0, Math.min(tag.length, size - j))
  return out
}

function variedBlocks(n, salt = '', from = 0) {
  const out = []
  for (let i = from; i < from + n; i++) out.push(variedBlock(i, salt))
  return out
}

async function appendAll(core, blocks, batch = 100) {
  for (let i = 0; i < blocks.length; i += batch) await core.append(blocks.slice(i, i + batch))
}

// Deterministic shuffle (LCG) of 0..n-1 or of the given array.
function shuffled(arr, seed = 1) {
  const a = typeof arr === 'number' ? Array.from({ length: arr }, (_, i) => i) : arr.slice()
  let s = seed >>> 0
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    const j = s % (i + 1)
    const tmp = a[i]
    a[i] = a[j]
    a[j] = tmp
  }
  return a
}

// get(i) of every index in `order`, asserting the exact bytes. `concurrency` gets in flight.
// Bounded by `ms` (default 3 s + 5 ms a block; JS needs well under 1 s for 1000 blocks).
async function readAll(core, expected, { order, ms, what = 'read', concurrency = 16 } = {}) {
  const indices = order || expected.map((_, i) => i)
  if (ms === undefined) ms = 3000 + 5 * indices.length
  let next = 0
  async function worker() {
    while (next < indices.length) {
      const i = indices[next++]
      const block = await core.get(i)
      assert.ok(block !== null, `${what}: block ${i} is null`)
      assert.ok(b4a.equals(block, expected[i]), `${what}: block ${i} differs (${block.byteLength} vs ${expected[i].byteLength} bytes)`)
    }
  }
  const workers = []
  for (let k = 0; k < concurrency; k++) workers.push(worker())
  await within(ms, Promise.all(workers), `${what}: get() of ${indices.length} blocks`)
}

function sameBuffer(a, b, msg) {
  assert.ok(b4a.isBuffer(a) || a instanceof Uint8Array, `${msg}: not a buffer: ${a}`)
  assert.equal(b4a.toString(a, 'hex'), b4a.toString(b, 'hex'), msg)
}

function sameManifest(a, b, msg = 'manifest') {
  assert.deepEqual(plain(a), plain(b), msg)
}

// Fails the test on any uncaught exception / unhandled rejection while it runs.
function noUncaught(t) {
  const seen = []
  const on = (err) => seen.push(err)
  process.on('uncaughtException', on)
  process.on('unhandledRejection', on)
  t.after(() => {
    process.removeListener('uncaughtException', on)
    process.removeListener('unhandledRejection', on)
  })
  return {
    check(what = 'uncaught errors') {
      assert.deepEqual(seen.map((e) => String(e && e.stack)), [], what)
    }
  }
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

module.exports = {
  JSCorestore,
  Impl,
  IMPL_IS_JS,
  IMPL_NAME,
  ALL_PAIRINGS,
  pairings,
  forEachPairing,
  within,
  until,
  eventOnce,
  rejectsWith,
  closed,
  env,
  pipeStores,
  secretStreamPair,
  tcpStores,
  variedBlock,
  variedBlocks,
  appendAll,
  shuffled,
  readAll,
  sameBuffer,
  sameManifest,
  noUncaught,
  delay
}
