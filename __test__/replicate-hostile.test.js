'use strict'
// Hostile peers against the implementation's replication (JS's own with
// CORESTORE_IMPL=corestore). The hostile side is built from the JS packages:
// @hyperswarm/secret-stream for a valid Noise handshake, protomux + hypercore's wire
// encodings (hypercore/lib/messages.js) for frames, and a JS corestore whose replicator
// answers are tampered with. Every case is bounded; afterwards the process is alive and the
// victim store still appends, reads and replicates honestly.
//
// "strict" cases: JS closes the stream, so the implementation must close it too.
// "weak" cases (JS ignores the input; noted per case): the stream may stay open, but then
//   the victim must still answer a protocol probe, and nothing invalid is ever stored.
// Tampered data (d): JS does NOT end the connection on invalid data; it pauses that peer
//   (a 'verification-error' on monitor sessions) and a pending update() stays pending while
//   the bad peer is connected. So (d) asserts the common property: nothing of it is stored
//   (length, manifest, blocks unchanged, also after reopening the store), later honest
//   replication works.
//
// Transports: every case after the Noise handshake runs twice, on the victim's raw stream
// (store.replicate(false): the engine runs Noise and Protomux itself) and on a
// @hyperswarm/secret-stream connection handed to store.replicate(conn), as Hyperswarm does
// (the engine's external-mux mode: Noise and Protomux are JS's, the engine sees channel events).
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const hc = require('hypercore-crypto')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const Protomux = require('protomux')
const c = require('compact-encoding')
const messages = require('hypercore/lib/messages.js')
const caps = require('hypercore/lib/caps')
const {
  JSCorestore,
  Impl,
  IMPL_NAME,
  IMPL_IS_JS,
  within,
  until,
  closed,
  env,
  pipeStores,
  secretStreamPair,
  readAll,
  sameBuffer,
  sameManifest,
  noUncaught,
  delay
} = require('./helpers/replication.js')

const noop = () => {}
const WIRE = ['sync', 'request', 'cancel', 'data', 'noData', 'want', 'unwant', 'bitfield', 'range', 'extension']

// ---- harness ----

async function victimStore(e) {
  const store = e.store(Impl)
  const core = store.get({ name: 'victim' })
  await core.ready()
  const blocks = [0, 1, 2, 3, 4].map((i) => b4a.from('victim-block-' + i))
  await core.append(blocks)
  return { store, core, blocks }
}

function victimStream(e, store, label = 'victim stream') {
  return e.stream(store.replicate(false), label)
}

// Wires a hostile NoiseSecretStream initiator to the victim's raw stream by hand, so raw
// bytes can be injected (victim.write) and the hostile's own output cut off (cut()).
async function hostileNoise(e, victim) {
  const h = new NoiseSecretStream(true)
  h.on('error', noop)
  e.defer(() => h.destroy(), 'hostile.destroy()')
  const raw = h.rawStream
  let cut = false
  raw.on('data', (d) => {
    if (!cut && !victim.destroyed) victim.write(d)
  })
  victim.on('data', (d) => {
    if (!raw.destroyed) raw.write(d)
  })
  victim.on('close', () => h.destroy())
  await within(5000, h.opened, 'Noise handshake with the victim')
  const mux = Protomux.from(h)
  await probe(mux, 'victim is open after the handshake')
  return { h, mux, cut: () => (cut = true) }
}

const TRANSPORTS = ['raw stream', 'secret-stream']

// The victim's side of a connection from a hostile peer, on `transport`: `vs` is what the victim
// store replicates on (its raw stream, or the secret-stream connection), `h` the hostile's
// NoiseSecretStream, `mux` its Protomux, `inject(bytes)` writes raw bytes to the victim and
// `cut()` stops the hostile's own output from reaching it.
async function hostile(e, store, transport, label) {
  if (transport === 'raw stream') {
    const vs = victimStream(e, store, label)
    return { vs, inject: (b) => vs.write(b), ...(await hostileNoise(e, vs)) }
  }
  const h = new NoiseSecretStream(true)
  const conn = new NoiseSecretStream(false)
  h.on('error', noop)
  conn.on('error', noop) // as Hyperswarm does on its connections
  e.defer(() => h.destroy(), 'hostile.destroy()')
  e.stream(conn, label)
  let cut = false
  h.rawStream.on('data', (d) => {
    if (!cut && !conn.rawStream.destroyed) conn.rawStream.write(d)
  })
  conn.rawStream.on('data', (d) => {
    if (!h.rawStream.destroyed) h.rawStream.write(d)
  })
  conn.on('close', () => h.destroy()) // (not the reverse: the victim must hang up by itself)
  store.replicate(conn)
  await within(5000, h.opened, 'Noise handshake with the victim')
  const mux = Protomux.from(h)
  await probe(mux, 'victim is open after the handshake')
  return { vs: conn, h, mux, inject: (b) => conn.rawStream.write(b), cut: () => (cut = true) }
}

// Opens a channel for a protocol the victim does not speak: a live victim rejects it
// (Protomux reject), which closes our channel. Proves the victim still processes frames.
function probe(mux, what) {
  return within(
    3000,
    new Promise((resolve) => {
      const ch = mux.createChannel({ protocol: 'csn-test/probe', id: hc.randomBytes(8), onclose: resolve })
      ch.open()
    }),
    `probe answered (${what})`
  )
}

// After abuse: the victim store still appends and reads locally, and replicates to an
// honest JS reader.
async function storeStillWorks(e, v, what) {
  const n = v.core.length
  await within(5000, v.core.append(b4a.from('after-' + what)), `${what}: local append`)
  sameBuffer(await within(5000, v.core.get(n), `${what}: local get`), b4a.from('after-' + what))
  v.blocks.push(b4a.from('after-' + what))
  const honest = e.store(JSCorestore)
  const r = honest.get({ key: v.core.key })
  await r.ready()
  pipeStores(e, v.store, honest)
  await within(5000, r.update({ wait: true }), `${what}: honest reader update`)
  assert.equal(r.length, v.core.length, `${what}: honest reader length`)
  await readAll(r, v.blocks, { what: `${what}: honest reader`, ms: 5000 })
}

function frameOf(payload) {
  const len = payload.byteLength
  return b4a.concat([b4a.from([len & 255, (len >>> 8) & 255, (len >>> 16) & 255]), payload])
}

// ---- (a) garbage on the raw stream ----

test(`(a) garbage bytes on the raw stream [victim: ${IMPL_NAME}]`, { timeout: 30000 }, async (t) => {
  const e = env(t)
  const guard = noUncaught(t)
  const v = await victimStore(e)
  const notes = []

  // strict: complete frames that are not a Noise handshake message
  const strict = {
    'a 40-byte garbage handshake frame': frameOf(hc.hash(b4a.from('garbage-1')).subarray(0, 32)),
    'empty frames, then a garbage frame': b4a.concat([b4a.from([0, 0, 0, 0, 0, 0]), frameOf(b4a.alloc(100, 0xab))]),
    'a 0xFFFFFF length prefix and 16 MiB of garbage': frameOf(b4a.alloc(0xffffff, 0x5a))
  }
  for (const [name, bytes] of Object.entries(strict)) {
    const vs = victimStream(e, v.store, name)
    vs.on('data', noop)
    vs.write(bytes)
    await closed(vs, 5000, `victim closes on ${name}`)
  }

  // weak (JS keeps a pre-handshake stream with an incomplete frame open, even after end())
  {
    const vs = victimStream(e, v.store, 'random 4 KiB')
    vs.on('data', noop)
    const bytes = b4a.alloc(4096)
    for (let i = 0; i < 4096; i += 32) hc.hash(b4a.from('r' + i)).copy(bytes, i)
    bytes[0] = 0xff // the length prefix announces more than is sent: an incomplete frame
    bytes[1] = 0xff
    bytes[2] = 0x7f
    vs.write(bytes)
    vs.end()
    await delay(300)
    notes.push(`random 4 KiB + end: victim ${vs.destroyed ? 'closed' : 'kept the stream open (JS does)'}`)
    vs.destroy()
    await closed(vs, 5000, 'destroying the victim stream works')
  }

  await storeStillWorks(e, v, 'raw garbage')
  for (const n of notes) t.diagnostic(n)
  guard.check()
})

// ---- (b) valid handshake, then bad frames ----

for (const transport of TRANSPORTS) test(`(b) valid Noise handshake, then garbage / truncated / oversized frames [victim: ${IMPL_NAME}, ${transport}]`, { timeout: 30000 }, async (t) => {
  const e = env(t)
  const guard = noUncaught(t)
  const v = await victimStore(e)
  const notes = []

  // protomux frames inside valid encrypted messages. strict: JS destroys the stream.
  const strict = {
    'garbage: open with a skipped channel id': b4a.from([0, 1, 5, 3, 97, 98, 99, 0]),
    'garbage: reject of an unknown channel': b4a.from([0, 2, 77]),
    'truncated: open with no fields': b4a.from([0, 1]),
    'truncated: open with a cut protocol string': b4a.from([0, 1, 1, 10, 97]),
    'oversized: protocol string length 2^31': b4a.from([0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x7f, 97]),
    'oversized: varint above 2^53': b4a.from([0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 97])
  }
  for (const [name, frame] of Object.entries(strict)) {
    const { vs, h } = await hostile(e, v.store, transport, name)
    h.write(frame)
    await closed(vs, 5000, `victim closes on ${name}`)
  }

  // weak: JS ignores these (unknown control type, frames for channels that do not exist)
  const weak = {
    'garbage: unknown control message type': b4a.from([0, 9, 1, 2, 3]),
    'garbage: message for a channel that is not open': b4a.from([7, 1, 2, 3, 4]),
    'garbage: batch with a bad inner length': b4a.from([0, 0, 1, 50, 1, 2]),
    'garbage: 64 pseudo-random bytes': b4a.concat([b4a.from([3]), hc.hash(b4a.from('g1')), hc.hash(b4a.from('g2')).subarray(0, 31)])
  }
  for (const [name, frame] of Object.entries(weak)) {
    const { vs, h, mux } = await hostile(e, v.store, transport, name)
    h.write(frame)
    await delay(50)
    if (vs.destroyed) {
      notes.push(`${name}: victim closed (JS ignores it)`)
    } else {
      await probe(mux, `victim alive after ${name}`)
      notes.push(`${name}: victim ignored it and stayed responsive (as JS)`)
    }
    vs.destroy()
  }

  // raw secretstream frames after the handshake
  {
    // a truncated frame: JS waits for the rest, then closes when the remote ends
    const name = 'raw: a truncated encrypted frame, then end'
    const { vs, cut, inject } = await hostile(e, v.store, transport, name)
    cut()
    inject(b4a.concat([b4a.from([100, 0, 0]), hc.randomBytes(50)]))
    if (transport === 'raw stream') vs.end()
    else vs.rawStream.end() // the remote ends the connection
    await closed(vs, 5000, `victim closes on ${name}`)
  }
  {
    const name = 'raw: a complete frame that does not decrypt'
    const { vs, cut, inject } = await hostile(e, v.store, transport, name)
    cut()
    inject(frameOf(hc.randomBytes(100)))
    await closed(vs, 5000, `victim closes on ${name}`)
  }
  {
    const name = 'raw: 0xFFFFFF length prefix and 16 MiB that does not decrypt'
    const { vs, cut, inject } = await hostile(e, v.store, transport, name)
    cut()
    inject(frameOf(b4a.alloc(0xffffff, 7)))
    await closed(vs, 10000, `victim closes on ${name}`)
  }

  await storeStillWorks(e, v, `bad frames (${transport})`)
  for (const n of notes) t.diagnostic(n)
  guard.check()
})

// ---- (c) hypercore/alpha with a wrong capability ----

// A raw hypercore/alpha channel on the hostile's Protomux; records what the victim sends.
function alphaChannel(mux, discoveryKey, handlers = {}) {
  const got = []
  const ch = mux.createChannel({
    protocol: 'hypercore/alpha',
    id: discoveryKey,
    handshake: messages.wire.handshake,
    messages: WIRE.map((name) => ({
      encoding: messages.wire[name],
      onmessage: (msg) => {
        got.push(name)
        if (handlers[name]) handlers[name](msg)
      }
    })),
    onopen: () => {
      got.push('open')
      if (handlers.open) handlers.open()
    },
    onclose: () => got.push('close')
  })
  const send = {}
  WIRE.forEach((name, i) => (send[name] = (m) => ch.messages[i].send(m)))
  return { ch, got, send }
}

const REQUEST_ALL = { id: 1, fork: 0, block: { index: 0, nodes: 0 }, hash: null, seek: null, upgrade: { start: 0, length: 5 }, manifest: true, priority: 0 }

for (const transport of TRANSPORTS) test(`(c) hypercore/alpha channel with a wrong capability [victim: ${IMPL_NAME}, ${transport}]`, { timeout: 30000 }, async (t) => {
  const e = env(t)
  const guard = noUncaught(t)
  const v = await victimStore(e)
  let uploads = 0
  v.core.on('upload', () => uploads++)

  const capabilities = {
    random: () => hc.randomBytes(32),
    'mirrored (the one the victim itself sends)': (h) => caps.replicate(false, v.core.key, h.handshakeHash),
    'for another key': (h) => caps.replicate(true, hc.keyPair().publicKey, h.handshakeHash),
    'for another handshake': () => caps.replicate(true, v.core.key, hc.randomBytes(64))
  }
  for (const [name, capOf] of Object.entries(capabilities)) {
    const { vs, h, mux } = await hostile(e, v.store, transport, name)
    const { ch, got, send } = alphaChannel(mux, v.core.discoveryKey)
    ch.open({ seeks: true, capability: capOf(h) })
    send.request(REQUEST_ALL)
    await closed(vs, 5000, `victim rejects a ${name} capability`)
    const served = got.filter((x) => x !== 'open' && x !== 'close')
    assert.deepEqual(served, [], `${name}: nothing sent on the channel`)
  }
  assert.equal(uploads, 0, 'no block served to a wrong capability')

  // control: the same harness with the right capability is served (the checks above are not vacuous)
  {
    const { vs, h, mux } = await hostile(e, v.store, transport, 'right capability')
    let data = null
    const { ch, send } = alphaChannel(mux, v.core.discoveryKey, { data: (m) => (data = m) })
    ch.open({ seeks: true, capability: caps.replicate(true, v.core.key, h.handshakeHash) })
    send.request(REQUEST_ALL)
    await until(() => data, 5000, 'right capability: data answered')
    assert.equal(data.request, 1, 'data.request')
    sameBuffer(data.block.value, v.blocks[0], 'served block 0')
    assert.equal(data.upgrade.length, 5, 'data.upgrade.length')
    vs.destroy()
  }

  await storeStillWorks(e, v, `wrong capability (${transport})`)
  guard.check()
})

// ---- (d) answers whose proof / signature is wrong ----

function flip(buf, at = 0) {
  const copy = b4a.from(buf)
  copy[at % copy.length] ^= 1
  return copy
}

// How a hostile JS writer corrupts its wire.data answers.
const TAMPER = {
  manifest: (m) => m.manifest && { ...m, manifest: { ...m.manifest, signers: m.manifest.signers.map((s) => ({ ...s, publicKey: flip(s.publicKey) })) } },
  signature: (m) => m.upgrade && { ...m, upgrade: { ...m.upgrade, signature: flip(m.upgrade.signature, 5) } },
  'upgrade length': (m) => m.upgrade && { ...m, upgrade: { ...m.upgrade, length: m.upgrade.length + 5 } },
  'block value': (m) => m.block && { ...m, block: { ...m.block, value: flip(m.block.value, 3) } },
  'merkle nodes': (m) => m.block && m.block.nodes.length > 0 && { ...m, block: { ...m.block, nodes: m.block.nodes.map((n, i) => (i === 0 ? { ...n, hash: flip(n.hash) } : n)) } }
}

// hostile store `hs` -> victim store `rs` on `transport`: [hostile side, victim side]
function connectStores(e, hs, rs, transport, name) {
  if (transport === 'raw stream') {
    const a = e.stream(hs.replicate(true), `hostile (${name})`)
    const b = e.stream(rs.replicate(false), `victim (${name})`)
    a.pipe(b).pipe(a)
    return [a, b]
  }
  const [a, b] = secretStreamPair(e)
  e.stream(a, `hostile (${name})`)
  e.stream(b, `victim (${name})`)
  hs.replicate(a)
  rs.replicate(b)
  return [a, b]
}

// What the reader holds, as plain data, for before/after comparisons.
async function holdings(r, n) {
  const blocks = []
  for (let i = 0; i < n; i++) {
    const b = await r.get(i, { wait: false })
    blocks.push(b === null ? null : b4a.toString(b, 'hex'))
  }
  return { length: r.length, contiguousLength: r.contiguousLength, manifest: r.manifest ? 'present' : null, blocks }
}

for (const transport of TRANSPORTS) test(`(d) a peer answering with wrong proofs / signatures [hostile JS writer → reader ${IMPL_NAME}, ${transport}]`, { timeout: 30000 }, async (t) => {
  const e = env(t)
  const guard = noUncaught(t)
  const N = 20
  const hs = e.store(JSCorestore)
  const w = hs.get({ name: 'honest-key-hostile-peer' })
  await w.ready()
  const blocks = Array.from({ length: N }, (_, i) => b4a.from('genuine-' + i))
  await w.append(blocks)

  let mode = null
  const tampered = []
  w.on('peer-add', (peer) => {
    const wire = peer.wireData // the hypercore replicator's wire.data message
    const send = wire.send
    wire.send = (m, session) => {
      const bad = mode && TAMPER[mode](m)
      if (bad) tampered.push(mode)
      return send.call(wire, bad || m, session)
    }
  })

  const rdir = e.dir()
  const rs = e.store(Impl, rdir)
  let r = rs.get({ key: w.key })
  await r.ready()
  const notes = []

  // upgrade-level tampering first (the reader knows nothing), then block-level
  for (const name of Object.keys(TAMPER)) {
    mode = name
    tampered.length = 0
    const before = await holdings(r, N)
    const [a, b] = connectStores(e, hs, rs, transport, name)

    // update() may resolve, reject, or (JS) stay pending while the bad peer is connected
    const upd = r.update({ wait: true }).then((v) => 'resolved ' + v, (err) => 'rejected ' + err.code)
    const updated = await Promise.race([upd, delay(500).then(() => 'pending')])
    let got
    try {
      got = await within(3000, r.get(7, { timeout: 500 }), `${name}: get(7)`)
    } catch (err) {
      got = err.code
    }
    await until(() => tampered.length > 0 || b.destroyed, 5000, `${name}: the hostile answered with tampered data`)
    const after = await holdings(r, N)
    notes.push(`${name}: update ${updated}, get(7) -> ${b4a.isBuffer(got) ? 'a block' : got}, stream ${b.destroyed ? 'closed' : 'open (JS keeps it, peer paused)'}`)

    assert.ok(!b4a.isBuffer(got), `${name}: tampered block not returned`)
    assert.deepEqual(after.blocks, before.blocks, `${name}: no block stored`)
    if (name === 'manifest' || name === 'signature' || name === 'upgrade length') {
      assert.deepEqual(after, before, `${name}: nothing stored (length, manifest, blocks)`)
      assert.equal(r.length, 0, 'r.length')
    } else {
      // the upgrade was genuine, only blocks were tampered
      assert.ok(r.length === 0 || r.length === N, `${name}: length ${r.length}`)
    }
    a.destroy()
    await closed(a, 5000, `${name}: hostile stream closes`)
    await closed(b, 5000, `${name}: victim stream closes`)
    await within(3000, upd, `${name}: update settles once the bad peer is gone`)
  }

  // nothing tampered survived on disk: reopen the reader store
  const lengthBefore = r.length
  await within(10000, rs.close(), 'close the reader store')
  const rs2 = e.store(Impl, rdir)
  r = rs2.get({ key: w.key })
  await r.ready()
  assert.equal(r.length, lengthBefore, 'length after reopening')
  for (let i = 0; i < N; i++) assert.equal(await r.get(i, { wait: false }), null, `block ${i} not stored`)

  // honest replication afterwards works
  mode = null
  pipeStores(e, hs, rs2)
  await until(async () => {
    if (r.length < N) await within(3000, r.update({ wait: true }), 'honest update')
    return r.length === N
  }, 5000, 'honest length')
  await readAll(r, blocks, { what: 'honest replication after the hostile peer' })
  sameBuffer(await r.treeHash(), await w.treeHash(), 'treeHash')
  for (const n of notes) t.diagnostic(n)
  guard.check()
})

for (const transport of TRANSPORTS) test(`(d) a raw protomux peer without the key fabricates data [victim reader: ${IMPL_NAME}, ${transport}]`, { timeout: 30000 }, async (t) => {
  const e = env(t)
  const guard = noUncaught(t)
  // the genuine writer exists elsewhere; the hostile knows its key and public manifest only
  const ws = e.store(JSCorestore)
  const w = ws.get({ name: 'genuine' })
  await w.ready()
  await w.append([b4a.from('g0'), b4a.from('g1')])
  const manifest = w.manifest

  const rs = e.store(Impl)
  const r = rs.get({ key: w.key })
  await r.ready()
  const { vs, h, mux } = await hostile(e, rs, transport, 'victim reader stream')

  const L = 10
  const fakeNode = (index, size) => ({ index, size, hash: hc.randomBytes(32) })
  const requests = []
  let send = null
  const answer = (req) => {
    requests.push(req)
    send.data({
      request: req.id,
      fork: 0,
      block: req.block ? { index: req.block.index, value: b4a.from('evil-' + req.block.index), nodes: [fakeNode(2, 10), fakeNode(5, 20)] } : null,
      hash: null,
      seek: null,
      upgrade: req.upgrade ? { start: req.upgrade.start, length: L, nodes: [fakeNode(7, 80), fakeNode(17, 20)], additionalNodes: [], signature: hc.randomBytes(64) } : null,
      manifest: req.manifest ? manifest : null
    })
  }
  const alpha = alphaChannel(mux, r.discoveryKey, {
    request: answer,
    open: () => {
      send.sync({ fork: 0, length: L, remoteLength: 0, canUpgrade: true, uploading: true, downloading: true, hasManifest: true, allowPush: false })
      send.range({ drop: false, start: 0, length: L })
      // and an unsolicited block push
      send.data({ request: 0, fork: 0, block: { index: 3, value: b4a.from('pushed'), nodes: [] }, hash: null, seek: null, upgrade: null, manifest: null })
    }
  })
  send = alpha.send
  alpha.ch.open({ seeks: true, capability: caps.replicate(true, w.key, h.handshakeHash) })

  const upd = r.update({ wait: true }).then((v) => 'resolved ' + v, (err) => 'rejected ' + err.code)
  const updated = await Promise.race([upd, delay(500).then(() => 'pending')])
  let got
  try {
    got = await within(3000, r.get(3, { timeout: 500 }), 'get(3) from the fabricating peer')
  } catch (err) {
    got = err.code
  }
  t.diagnostic(`fabricating peer: update ${updated}, get(3) -> ${b4a.isBuffer(got) ? 'a block' : got}, requests seen ${requests.length}, stream ${vs.destroyed ? 'closed' : 'open'}`)
  assert.ok(alpha.got.includes('open') || vs.destroyed, 'the hostile channel was accepted (right capability) or the victim hung up')
  assert.ok(!b4a.isBuffer(got), 'no fabricated block returned')
  assert.equal(r.length, 0, 'no fabricated length')
  // the hostile sent the genuine (public, verifiable) manifest: learning it is allowed
  if (r.manifest) sameManifest(r.manifest, manifest, 'only the genuine manifest')
  for (let i = 0; i < L; i++) assert.equal(await r.get(i, { wait: false }), null, `block ${i} not stored`)
  vs.destroy()
  await closed(vs)
  await within(3000, upd, 'update settles once the hostile is gone')

  // honest peer afterwards
  pipeStores(e, ws, rs)
  assert.equal(await within(5000, r.update({ wait: true }), 'honest update'), true, 'honest update')
  assert.equal(r.length, 2, 'r.length')
  sameBuffer(await within(5000, r.get(1), 'honest get'), b4a.from('g1'))
  guard.check()
})

// ---- (e) hypercore/alpha messages with absurd values, bad lengths, cut short, in floods ----

// A hypercore/alpha channel whose messages are raw bytes, so anything can be sent; what the
// victim answers is decoded with hypercore's wire encodings.
function rawAlphaChannel(mux, discoveryKey, { unique = true } = {}) {
  const got = []
  let closedCh = false
  const ch = mux.createChannel({
    protocol: 'hypercore/alpha',
    id: discoveryKey,
    unique,
    handshake: messages.wire.handshake,
    messages: WIRE.map((name) => ({
      encoding: c.raw,
      onmessage: (buf) => got.push({ name, buf })
    })),
    onclose: () => (closedCh = true)
  })
  return {
    ch,
    got,
    closed: () => closedCh,
    send: (name, buf) => ch.messages[WIRE.indexOf(name)].send(buf),
    encode: (name, m) => c.encode(messages.wire[name], m)
  }
}

const BIG = 2 ** 52
const varint31 = [0xfe, 0xff, 0xff, 0xff, 0x7f] // a compact-encoding uint of 2^31 - 1
const request = (id, block) => ({ id, fork: 0, block, hash: null, seek: null, upgrade: null, manifest: false, priority: 0 })

// [message name, bytes or (enc) => bytes, why JS is spared it], sent on a channel for the victim's own (writer) core
const TO_WRITER = {
  'request for block 2^52': ['request', (enc) => enc('request', request(1, { index: BIG, nodes: 0 }))],
  'request with 2^52 nodes': ['request', (enc) => enc('request', request(1, { index: 0, nodes: BIG }))],
  'request for hash 2^52': ['request', (enc) => enc('request', { ...request(1, null), hash: { index: BIG, nodes: 0 } })],
  'request seeking byte 2^52': ['request', (enc) => enc('request', { ...request(1, null), seek: { bytes: BIG, padding: 0 } })],
  'request upgrading to length 2^52': ['request', (enc) => enc('request', { ...request(1, null), upgrade: { start: 0, length: BIG } })],
  'request upgrading from 2^52': ['request', (enc) => enc('request', { ...request(1, null), upgrade: { start: BIG, length: 1 } })],
  'cancel of request 2^52': ['cancel', (enc) => enc('cancel', { request: BIG })],
  // JS hypercore marks the 2^52 blocks in its remote bitfield one page at a time: it runs for
  // minutes and grows past 14 GB, so this one is not sent to JS
  'range 2^52 long from 2^52': ['range', (enc) => enc('range', { drop: false, start: BIG, length: BIG }), 'JS never finishes'],
  'range dropping 2^52 blocks': ['range', (enc) => enc('range', { drop: true, start: 0, length: BIG })],
  'bitfield at block 2^52': ['bitfield', (enc) => enc('bitfield', { start: BIG, bitfield: new Uint32Array(16).fill(0xffffffff) })],
  'want of 2^52 blocks': ['want', (enc) => enc('want', { start: 0, length: BIG })],
  'unwant from 2^52': ['unwant', (enc) => enc('unwant', { start: BIG, length: BIG })],
  'sync with fork and length 2^52': ['sync', (enc) => enc('sync', { fork: BIG, length: BIG, remoteLength: BIG, canUpgrade: true, uploading: true, downloading: true, hasManifest: true, allowPush: true })],
  'noData for request 2^52': ['noData', (enc) => enc('noData', { request: BIG, reason: 0 })],
  'bitfield announcing 2^31 words': ['bitfield', () => b4a.from([0, ...varint31, 1, 2, 3, 4])],
  'request cut short': ['request', (enc) => enc('request', request(1, { index: 3, nodes: 2 })).subarray(0, 3)],
  'sync cut short': ['sync', () => b4a.from([7])],
  'range cut short': ['range', () => b4a.from([0])],
  'empty request': ['request', () => b4a.alloc(0)],
  'extension with a 2^31 name length': ['extension', () => b4a.from([...varint31, 97])],
  // hypercore ends the connection of a peer at its 64th request it cannot build a proof for
  '63 requests that cannot be proven': ['request', (enc) => unprovable(enc, 63)],
  '64 requests that cannot be proven': ['request', (enc) => unprovable(enc, 64)]
}

// n requests for an upgrade from past the core's end (no proof exists)
function unprovable(enc, n) {
  return Array.from({ length: n }, (_, i) => enc('request', { ...request(10 + i, null), upgrade: { start: 10, length: 1 } }))
}

// Where JS ends the connection, the implementation must too.
const MUST_CLOSE = new Set([
  'bitfield announcing 2^31 words',
  'request cut short',
  'sync cut short',
  'range cut short',
  'empty request',
  'extension with a 2^31 name length',
  '64 requests that cannot be proven',
  'data with a 2^31-byte block',
  'data with 2^31 upgrade nodes',
  'data cut short'
])

// sent on a channel for a core the victim only reads (the hostile claims to have it)
const TO_READER = {
  'data for block 2^52': ['data', (enc) => enc('data', { request: 0, fork: 0, block: { index: BIG, value: b4a.from('x'), nodes: [] }, hash: null, seek: null, upgrade: null, manifest: null })],
  'data upgrading to length 2^52': ['data', (enc) => enc('data', { request: 0, fork: 0, block: null, hash: null, seek: null, upgrade: { start: 0, length: BIG, nodes: [], additionalNodes: [], signature: b4a.alloc(64) }, manifest: null })],
  'data with a 2^31-byte block': ['data', () => b4a.from([1, 0, 0, 3, ...varint31, 97, 98])],
  'data with 2^31 upgrade nodes': ['data', () => b4a.from([8, 0, 0, 0, 5, ...varint31, 1, 2])],
  'data cut short': ['data', (enc) => enc('data', { request: 0, fork: 0, block: { index: 1, value: b4a.from('evil'), nodes: [] }, hash: null, seek: null, upgrade: null, manifest: null }).subarray(0, 5)],
  'sync claiming length 2^52': ['sync', (enc) => enc('sync', { fork: 0, length: BIG, remoteLength: 0, canUpgrade: true, uploading: true, downloading: true, hasManifest: true, allowPush: true })],
  'range claiming 2^52 blocks': ['range', (enc) => enc('range', { drop: false, start: 0, length: BIG })]
}

// What the victim did with one message: hung up the connection, closed the channel, or ignored
// it. `alive()` proves the engine still answers on this channel when it stayed open.
async function outcome(vs, alpha, alive) {
  await delay(100)
  if (vs.destroyed) return 'connection closed'
  if (alpha.closed()) return 'channel closed'
  await alive()
  return 'ignored (still serving)'
}

for (const transport of TRANSPORTS) {
  test(`(e) absurd indexes, bad lengths, cut-short messages and floods on hypercore/alpha [victim: ${IMPL_NAME}, ${transport}]`, { timeout: 60000 }, async (t) => {
    const e = env(t)
    const guard = noUncaught(t)
    const v = await victimStore(e)
    // a core the victim only reads; its genuine writer is elsewhere
    const ws = e.store(JSCorestore)
    const w = ws.get({ name: 'elsewhere' })
    await w.ready()
    await w.append([b4a.from('w0'), b4a.from('w1')])
    const r = v.store.get({ key: w.key })
    await r.ready()
    const notes = []

    // the writer core: after each message, a genuine request for block 0 must still be served.
    // The victim's own open was rejected by the hostile's Protomux (it had no channel yet), so
    // ours pairs on demand and must send its sync at once: the hostile sends nothing until then.
    let id = 100
    for (const [name, [type, bytesOf, spareJS]] of Object.entries(TO_WRITER)) {
      if (spareJS && IMPL_IS_JS) {
        notes.push(`writer, ${name}: not sent (${spareJS})`)
        continue
      }
      const { vs, h, mux } = await hostile(e, v.store, transport, name)
      const alpha = rawAlphaChannel(mux, v.core.discoveryKey)
      alpha.ch.open({ seeks: true, capability: caps.replicate(true, v.core.key, h.handshakeHash) })
      await until(() => alpha.got.some((m) => m.name === 'sync') || vs.destroyed, 3000, `${name}: victim's sync`)
      for (const bytes of [].concat(bytesOf(alpha.encode))) alpha.send(type, bytes)
      const alive = async () => {
        const rid = ++id
        alpha.send('request', alpha.encode('request', request(rid, { index: 0, nodes: 0 })))
        const served = () => alpha.got.find((m) => m.name === 'data' && c.decode(messages.wire.data, m.buf).request === rid)
        const m = await until(served, 3000, `${name}: block 0 still served on the channel`)
        sameBuffer(c.decode(messages.wire.data, m.buf).block.value, v.blocks[0], `${name}: block 0`)
      }
      const what = await outcome(vs, alpha, alive)
      notes.push(`writer, ${name}: ${what}`)
      if (MUST_CLOSE.has(name)) assert.equal(what, 'connection closed', `${name}: JS ends the connection`)
      vs.destroy()
      await closed(vs)
    }
    assert.equal(v.core.length, v.blocks.length, 'the victim core kept its length')

    // the reader core: nothing the hostile sends is stored or believed
    for (const [name, [type, bytesOf]] of Object.entries(TO_READER)) {
      const { vs, h, mux } = await hostile(e, v.store, transport, name)
      const alpha = rawAlphaChannel(mux, r.discoveryKey)
      alpha.ch.open({ seeks: true, capability: caps.replicate(true, w.key, h.handshakeHash) })
      await until(() => alpha.got.some((m) => m.name === 'sync') || vs.destroyed, 3000, `${name}: victim's sync`)
      for (const bytes of [].concat(bytesOf(alpha.encode))) alpha.send(type, bytes)
      const alive = () => probe(mux, `${name}: victim still reads frames`)
      const what = await outcome(vs, alpha, alive)
      notes.push(`reader, ${name}: ${what}`)
      if (MUST_CLOSE.has(name)) assert.equal(what, 'connection closed', `${name}: JS ends the connection`)
      assert.equal(r.length, 0, `${name}: no length learnt`)
      for (let i = 0; i < 2; i++) assert.equal(await r.get(i, { wait: false }), null, `${name}: block ${i} not stored`)
      vs.destroy()
      await closed(vs)
    }

    // floods: 20,000 requests, then 20,000 ranges and wants, in one burst each, then 16 MiB of
    // bitfields; the victim serves a genuine request afterwards within a bound
    {
      const { vs, h, mux } = await hostile(e, v.store, transport, 'flood')
      const alpha = rawAlphaChannel(mux, v.core.discoveryKey)
      alpha.ch.open({ seeks: true, capability: caps.replicate(true, v.core.key, h.handshakeHash) })
      await until(() => alpha.got.some((m) => m.name === 'sync'), 3000, "flood: victim's sync")
      const started = Date.now()
      mux.cork()
      for (let i = 0; i < 20000; i++) alpha.send('request', alpha.encode('request', request(1000 + i, { index: i % 5, nodes: 0 })))
      mux.uncork()
      mux.cork()
      for (let i = 0; i < 20000; i++) {
        alpha.send('range', alpha.encode('range', { drop: false, start: i, length: 1 }))
        alpha.send('want', alpha.encode('want', { start: i * 1024, length: 1024 }))
      }
      mux.uncork()
      // and 4 bitfield messages of 4 MiB each, all ones (134 million blocks claimed)
      for (let k = 0; k < 4; k++) alpha.send('bitfield', alpha.encode('bitfield', { start: k * 2 ** 25, bitfield: new Uint32Array(2 ** 20).fill(0xffffffff) }))
      const rid = 99999
      alpha.send('request', alpha.encode('request', request(rid, { index: 4, nodes: 0 })))
      let answered = false
      try {
        await until(() => vs.destroyed || alpha.closed() || alpha.got.some((m) => m.name === 'data' && c.decode(messages.wire.data, m.buf).request === rid), 20000, 'flood: the last request answered')
        answered = !vs.destroyed && !alpha.closed()
      } catch (err) {
        assert.fail(`flood: the victim neither answered nor hung up: ${err.message}`)
      }
      const datas = alpha.got.filter((m) => m.name === 'data').length
      notes.push(`flood: ${answered ? `served, ${datas} answers in ${Date.now() - started} ms` : vs.destroyed ? 'connection closed' : 'channel closed'}`)
      vs.destroy()
      await closed(vs)
    }

    // 20,000 ranges of one block each, 2^30 blocks apart: each one a new page of the victim's
    // picture of what the peer holds (80 MB in all). JS keeps them all (200,000 of them: 4 GB,
    // 80 s); ours ends the connection at 64 MB.
    if (IMPL_IS_JS) notes.push('scattered ranges: not sent (JS keeps every page)')
    else {
      const { vs, h, mux } = await hostile(e, v.store, transport, 'scattered ranges')
      const alpha = rawAlphaChannel(mux, v.core.discoveryKey)
      alpha.ch.open({ seeks: true, capability: caps.replicate(true, v.core.key, h.handshakeHash) })
      await until(() => alpha.got.some((m) => m.name === 'sync'), 3000, "scattered ranges: victim's sync")
      for (let k = 0; k < 20 && !vs.destroyed; k++) {
        mux.cork()
        for (let i = 0; i < 1000; i++) alpha.send('range', alpha.encode('range', { drop: false, start: (k * 1000 + i + 1) * 2 ** 30, length: 1 }))
        mux.uncork()
        await delay(10)
      }
      await closed(vs, 5000, 'scattered ranges: the victim ends the connection')
      notes.push('scattered ranges: connection closed')
    }

    // a second channel for a core whose channel is open: rejected (as protomux does), what is
    // sent on it is dropped, and the first one keeps being served
    {
      const { vs, h, mux } = await hostile(e, v.store, transport, 'second channel')
      const capability = caps.replicate(true, v.core.key, h.handshakeHash)
      const first = rawAlphaChannel(mux, v.core.discoveryKey)
      first.ch.open({ seeks: true, capability })
      await until(() => first.got.some((m) => m.name === 'sync'), 3000, "second channel: victim's sync on the first")
      const second = rawAlphaChannel(mux, v.core.discoveryKey, { unique: false })
      second.ch.open({ seeks: true, capability })
      await until(() => second.closed() || vs.destroyed, 3000, 'second channel: rejected')
      const junk = b4a.alloc(60000, 1)
      for (let i = 0; i < 300; i++) second.ch.messages[9].send(junk) // 18 MB, sent after the reject: dropped
      const rid = 424242
      first.send('request', first.encode('request', request(rid, { index: 2, nodes: 0 })))
      await until(() => first.got.some((m) => m.name === 'data' && c.decode(messages.wire.data, m.buf).request === rid), 5000, 'second channel: the first one still served')
      notes.push(`second channel for the same core: ${second.closed() ? 'rejected' : 'kept'}, the first served on`)
      vs.destroy()
      await closed(vs)
    }

    // floods on the reader's channel: 5,000 answers to requests never made, with made-up
    // blocks and proofs, and 5,000 syncs; then 2,000 channels opened for cores the victim has
    // not (each is rejected). Nothing is stored, the victim still reads frames.
    {
      const { vs, h, mux } = await hostile(e, v.store, transport, 'reader flood')
      const alpha = rawAlphaChannel(mux, r.discoveryKey)
      alpha.ch.open({ seeks: true, capability: caps.replicate(true, w.key, h.handshakeHash) })
      await until(() => alpha.got.some((m) => m.name === 'sync'), 3000, "reader flood: victim's sync")
      const started = Date.now()
      mux.cork()
      for (let i = 0; i < 5000; i++) {
        const node = { index: 0, size: 5, hash: hc.randomBytes(32) }
        const block = { index: i % 2, value: b4a.from('evil-' + i), nodes: [node] }
        const upgrade = { start: 0, length: 2, nodes: [node], additionalNodes: [], signature: hc.randomBytes(64) }
        alpha.send('data', alpha.encode('data', { request: 5000 + i, fork: 0, block, hash: null, seek: null, upgrade, manifest: null }))
        alpha.send('sync', alpha.encode('sync', { fork: 0, length: 2 + i, remoteLength: 0, canUpgrade: true, uploading: true, downloading: true, hasManifest: true, allowPush: true }))
      }
      mux.uncork()
      mux.cork()
      for (let i = 0; i < 2000; i++) mux.createChannel({ protocol: 'hypercore/alpha', id: hc.randomBytes(32), handshake: messages.wire.handshake }).open({ seeks: true, capability: hc.randomBytes(32) })
      mux.uncork()
      // (ended or answering: a victim that neither hangs up nor answers fails here)
      await until(() => vs.destroyed || probe(mux, 'reader flood').then(() => true, () => vs.destroyed), 20000, 'reader flood: victim answers or hangs up')
      notes.push(`reader flood: ${vs.destroyed ? 'connection closed' : `victim responsive after ${Date.now() - started} ms`}`)
      assert.equal(r.length, 0, 'reader flood: no length learnt')
      for (let i = 0; i < 2; i++) assert.equal(await r.get(i, { wait: false }), null, `reader flood: block ${i} not stored`)
      vs.destroy()
      await closed(vs)
    }

    await storeStillWorks(e, v, `absurd messages (${transport})`)
    for (const n of notes) t.diagnostic(n)
    guard.check()
  })
}
