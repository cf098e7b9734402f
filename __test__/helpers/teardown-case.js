'use strict'
// Child of teardown.test.js: one replication stream torn down in one way, in its own process,
// so an uncaught exception or an unhandled 'error' event shows as a failed exit (this script
// installs no process-wide handlers, and never listens for 'error' on the streams it checks:
// it records their 'error' events by wrapping emit, which still throws when nobody listens).
//
//   node teardown-case.js <impl> <pairing> <role> <end> <phase>
//   impl     native | js           the "near" store (the one under test)
//   pairing  tcp     near stream <-> TCP socket <-> TCP socket <-> far stream (same impl)
//            pipe    near.pipe(far).pipe(near), both of impl
//            js      near.pipe(far).pipe(near), far is JS corestore
//            secret  store.replicate(conn) on two @hyperswarm/secret-stream connections
//                    whose raw streams are linked in process (the engine's external mux)
//            swarm   store.replicate(conn) on real Hyperswarm connections (hyperdht testnet;
//                    run inside `unshare -n`)
//   role     writer | reader        what the near store is
//   end      near | far             which stream (or connection) is destroyed;
//            near-socket | far-socket (tcp) the socket under it is destroyed instead
//   phase    before     destroyed before any byte was exchanged
//            handshake  after the first Noise message only (the bytes are forwarded by hand)
//            handshake2 after the first two: the initiator has finished its handshake, the
//                       responder has not
//            opened     after the core's channel opened and a block was read
//            transfer   in the middle of downloading a large core
//            in-event   the same, but synchronously inside the reader's 'download' event (while
//                       the engine's output for a received chunk is being delivered)
// Prints one JSON line: what each side emitted, and whether the cores kept working and a new
// stream replicated.
const net = require('net')
const b4a = require('b4a')
const { Transform } = require('streamx')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const fs = require('fs')
const os = require('os')
const path = require('path')

const [impl, pairing, role, end, phase] = process.argv.slice(2)
const JSCorestore = require('corestore')
const Near = impl === 'js' ? JSCorestore : require('../..')
const Far = pairing === 'js' ? JSCorestore : Near

const LARGE = phase === 'transfer' || phase === 'in-event'
const N = LARGE ? 300 : 20
const BLOCK = LARGE ? 64 * 1024 : 100
const noop = () => {}

function within(ms, p, what) {
  let timer
  const t = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('timeout: ' + what)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

async function until(fn, ms, what) {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('timeout: ' + what)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

// Records 'error' and 'close' without adding an 'error' listener.
function watch(s) {
  const rec = { closed: false, errors: [] }
  const emit = s.emit
  s.emit = function (name, ...args) {
    if (name === 'error') rec.errors.push((args[0] && (args[0].code || args[0].message)) || String(args[0]))
    if (name === 'close') rec.closed = true
    return emit.call(this, name, ...args)
  }
  rec.closedPromise = new Promise((resolve) => s.once('close', resolve))
  return rec
}

// Forwards chunks until `limit` have passed, holds the rest: the handshake phase lets the
// initiator's first Noise message through and nothing else.
function gate(limit) {
  const g = new Transform({
    transform(chunk, cb) {
      if (g.passed < g.limit) {
        g.passed++
        this.push(chunk)
      } else g.held++
      cb(null)
    }
  })
  g.passed = 0
  g.held = 0
  g.limit = limit
  g.on('error', noop) // test plumbing: its partner's PREMATURE_CLOSE is expected
  return g
}

function link(a, b, limits) {
  if (limits === null) {
    a.pipe(b).pipe(a)
    return null
  }
  const ga = gate(limits[0])
  const gb = gate(limits[1])
  a.pipe(ga).pipe(b).pipe(gb).pipe(a)
  return [ga, gb]
}

// every store directory this case made goes when the process ends, however it ends
const made = []
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

function tmp() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-teardown-'))
  made.push(dir)
  return dir
}

async function connectTcp(ns, fs2, limits) {
  const srv = net.createServer()
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const accepted = new Promise((resolve) => srv.once('connection', resolve))
  const clientSock = net.connect(srv.address().port, '127.0.0.1')
  await new Promise((resolve) => clientSock.once('connect', resolve))
  const serverSock = await accepted
  srv.close()
  // an application piping into a socket handles the socket's own errors (ECONNRESET)
  clientSock.on('error', noop)
  serverSock.on('error', noop)
  const near = ns.replicate(true)
  const far = fs2.replicate(false)
  let gates = null
  clientSock.pipe(near)
  serverSock.pipe(far)
  if (limits === null) {
    near.pipe(clientSock)
    far.pipe(serverSock)
  } else {
    gates = [gate(limits[0]), gate(limits[1])]
    near.pipe(gates[0]).pipe(clientSock)
    far.pipe(gates[1]).pipe(serverSock)
  }
  return { near, far, nearSock: clientSock, farSock: serverSock, gates }
}

function connectSecret(ns, fs2, limits) {
  const a = new NoiseSecretStream(true)
  const b = new NoiseSecretStream(false)
  a.on('error', noop) // as Hyperswarm does on its connections
  b.on('error', noop)
  const gates = link(a.rawStream, b.rawStream, limits)
  ns.replicate(a)
  fs2.replicate(b)
  return { near: a, far: b, gates }
}

async function connectSwarm(ns, fs2, discoveryKey, onconn) {
  const Hyperswarm = require('hyperswarm')
  const createTestnet = require('hyperdht/testnet')
  const testnet = await within(20000, createTestnet(3), 'testnet')
  const sn = new Hyperswarm({ bootstrap: testnet.bootstrap })
  const sf = new Hyperswarm({ bootstrap: testnet.bootstrap })
  const conns = {}
  const got = new Promise((resolve) => {
    const on = (side, store) => (conn) => {
      if (conns[side]) return conn.destroy() // one connection per side is enough
      conns[side] = conn
      store.replicate(conn)
      onconn(side, conn)
      if (conns.near && conns.far) resolve()
    }
    sn.on('connection', on('near', ns))
    sf.on('connection', on('far', fs2))
  })
  const d = sf.join(discoveryKey, { server: true, client: false })
  await within(15000, d.flushed(), 'announce')
  sn.join(discoveryKey, { server: false, client: true })
  await within(20000, got, 'swarm connection')
  return {
    conns,
    destroy: async () => {
      await sn.destroy()
      await sf.destroy()
      await testnet.destroy()
    }
  }
}

async function main() {
  const out = { impl, pairing, role, end, phase, near: null, far: null, notes: [] }
  const ns = new Near(tmp())
  const fs2 = new Far(tmp())
  const ws = role === 'writer' ? ns : fs2
  const rs = role === 'writer' ? fs2 : ns
  const w = ws.get({ name: 'teardown' })
  await w.ready()
  const blocks = []
  for (let i = 0; i < N; i++) blocks.push(b4a.alloc(BLOCK, i & 255))
  for (let i = 0; i < N; i += 50) await w.append(blocks.slice(i, i + 50))
  const r = rs.get({ key: w.key })
  await r.ready()

  const limits = phase === 'handshake' ? [1, 0] : phase === 'handshake2' ? [1, 1] : null
  let c
  let swarm = null
  let downloads = 0
  let destroyNow = null
  const target = () => {
    if (end === 'near') return c.near
    if (end === 'far') return c.far
    if (end === 'near-socket') return c.nearSock
    if (end === 'far-socket') return c.farSock
    throw new Error('bad end ' + end)
  }
  if (LARGE) {
    r.on('download', () => {
      if (++downloads !== 30 || !destroyNow) return
      if (phase === 'in-event') target().destroy()
      destroyNow()
    })
  }

  if (pairing === 'swarm') {
    c = {}
    swarm = await connectSwarm(ns, fs2, w.discoveryKey, (side, conn) => {
      conn.on('error', noop)
      c[side] = conn
      out[side] = watch(conn)
      if (phase === 'before' && side === (end === 'near' ? 'near' : 'far')) conn.destroy()
    })
  } else {
    if (pairing === 'tcp') c = await connectTcp(ns, fs2, limits)
    else if (pairing === 'secret') c = connectSecret(ns, fs2, limits)
    else {
      c = { near: ns.replicate(true), far: fs2.replicate(false) }
      c.gates = link(c.near, c.far, limits)
    }
    out.near = watch(c.near)
    out.far = watch(c.far)
    if (phase === 'before') target().destroy()
  }

  if (phase === 'handshake' || phase === 'handshake2') {
    // the initiator's first message went through; the responder answered (held back, or
    // through too, and then the initiator's next bytes are held)
    const want = (g) => (phase === 'handshake' ? g[1].held + g[1].passed >= 1 : g[1].passed === 1 && g[0].held >= 1)
    await until(() => c.gates[0].passed === 1 && want(c.gates), 5000, 'Noise messages')
    await new Promise((resolve) => setTimeout(resolve, 50))
    out.notes.push(`held: ${c.gates[0].held} from the initiator, ${c.gates[1].held} from the responder`)
    target().destroy()
  } else if (phase === 'opened') {
    await within(10000, r.update({ wait: true }), 'update')
    await within(10000, r.get(0), 'get(0)')
    await until(() => w.peers.length === 1 && r.peers.length === 1, 5000, 'peers')
    target().destroy()
  } else if (LARGE) {
    await within(10000, r.update({ wait: true }), 'update')
    const done = new Promise((resolve) => (destroyNow = resolve))
    r.download({ start: 0, end: N }).done().catch(noop)
    await within(20000, done, '30 blocks downloaded')
    if (phase === 'transfer') target().destroy()
    out.notes.push(`destroyed after ${downloads} of ${N} blocks`)
  }

  // both sides close, with or without an error
  for (const side of ['near', 'far']) {
    try {
      await within(5000, out[side].closedPromise, side + ' close')
    } catch {}
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  out.peers = { writer: w.peers.length, reader: r.peers.length }
  if (LARGE) out.notes.push(`reader held ${r.contiguousLength} of ${N} when closed`)

  // the cores keep working
  try {
    await within(5000, w.append(b4a.from('after')), 'append after teardown')
    const got = await within(5000, w.get(w.length - 1), 'writer get after teardown')
    const other = rs.get({ name: 'other-' + phase })
    await within(5000, other.append(b4a.from('x')), 'reader store append')
    if (phase === 'opened') {
      const b0 = await within(5000, r.get(0, { wait: false }), 'reader local get')
      if (!b4a.equals(b0, blocks[0])) throw new Error('reader lost block 0')
    }
    out.coreWorks = b4a.equals(got, b4a.from('after'))
  } catch (err) {
    out.coreWorks = false
    out.notes.push('core: ' + err.message)
  }

  // a new stream between the same stores replicates
  try {
    const a = ns.replicate(true)
    const b = fs2.replicate(false)
    a.pipe(b).pipe(a)
    await until(async () => {
      if (r.length < w.length) await within(5000, r.update({ wait: true }), 'update')
      return r.length === w.length
    }, 10000, 'new stream: reader length')
    const last = await within(5000, r.get(w.length - 1), 'new stream: get last')
    const mid = await within(10000, r.get(N - 1), 'new stream: get N-1')
    out.replicatesAgain = b4a.equals(last, b4a.from('after')) && b4a.equals(mid, blocks[N - 1])
    a.destroy()
    b.destroy()
  } catch (err) {
    out.replicatesAgain = false
    out.notes.push('new stream: ' + err.message)
  }

  for (const side of ['near', 'far']) delete out[side].closedPromise
  if (swarm) await within(15000, swarm.destroy(), 'swarm destroy').catch(noop)
  await within(10000, Promise.all([ns.close(), fs2.close()]), 'close stores').catch((err) => out.notes.push('close: ' + err.message))
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ fatal: String(err && err.stack) }) + '\n')
  process.exit(2)
})
