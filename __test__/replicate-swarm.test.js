'use strict'
// Replication over Hyperswarm connections (hyperdht testnet of 3 nodes, two swarms), for
// every writer→reader pairing: `swarm.on('connection', (conn) => store.replicate(conn))`,
// writer joins the core's discovery key as a server, reader as a client, reader reads all
// blocks and sees live appends. Then the same with a second protocol on the connection's
// Protomux ('csn-test/echo', c.string messages both ways while replication runs), with the
// echo channel created before store.replicate(conn), after it, and mixed: the store must
// share the connection's Protomux (conn.userData), and both protocols must keep working.
//
// The DHT needs a private network namespace on this machine (outside one it reaches for the
// non-loopback address and stalls): unless CSN_IN_NETNS is set, this file re-executes itself
// as `unshare -n sh -c 'ip link set lo up; CSN_IN_NETNS=1 node --test <this file>'` and
// asserts that the child passed, forwarding its output; if unshare -n is not permitted
// the test is skipped.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync } = require('child_process')

if (!process.env.CSN_IN_NETNS) {
  test('replicate-swarm: runs inside a private network namespace (unshare -n)', { timeout: 120000 }, async (t) => {
    const probe = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { encoding: 'utf8' })
    if (probe.error || probe.status !== 0) {
      const why = probe.error ? probe.error.message : (probe.stderr || '').trim() || `exit ${probe.status}`
      t.skip(`unshare -n (private network namespace) not permitted here: ${why}`)
      return
    }
    const script = 'ip link set lo up && CSN_IN_NETNS=1 exec "$0" --test --test-reporter=spec "$1"'
    const env = { ...process.env }
    delete env.NODE_TEST_CONTEXT // else the nested `node --test` thinks it is recursive and runs nothing
    const child = spawn('unshare', ['-n', 'sh', '-c', script, process.execPath, __filename], {
      env,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 100000)
    const [code, signal] = await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])))
    clearTimeout(timer)
    for (const line of out.split('\n')) if (line.trim()) t.diagnostic(line)
    assert.equal(signal, null, `netns child killed by ${signal} (timeout?)\n${out}`)
    assert.equal(code, 0, `netns child failed:\n${out}`)
    assert.match(out, /pass \d+/, 'child ran its tests')
    assert.doesNotMatch(out, /fail [1-9]/, 'no failures in the child')
  })
} else {
  inNamespace()
}

function inNamespace() {
  const c = require('compact-encoding')
  const b4a = require('b4a')
  const Hyperswarm = require('hyperswarm')
  const Protomux = require('protomux')
  const createTestnet = require('hyperdht/testnet')
  const { treeHashOf } = require('./helpers/util.js')
  const {
    forEachPairing,
    within,
    until,
    variedBlocks,
    appendAll,
    shuffled,
    readAll,
    sameBuffer
  } = require('./helpers/replication.js')

  let testnet = null
  test.before(async () => {
    testnet = await within(20000, createTestnet(3), 'createTestnet(3)')
  })
  test.after(async () => {
    if (testnet) await within(10000, testnet.destroy(), 'testnet.destroy()')
  })

  const noop = () => {}

  function swarm(e) {
    const s = new Hyperswarm({ bootstrap: testnet.bootstrap })
    e.defer(() => s.destroy(), 'swarm.destroy()')
    return s
  }

  // The small custom protocol: every 'ping:x' is answered with 'pong:ping:x'.
  function echo(conn, label) {
    const mux = Protomux.from(conn)
    const state = { mux, label, got: [], sent: [], opened: false, closed: false }
    let resolveOpen
    state.openedPromise = new Promise((resolve) => (resolveOpen = resolve))
    const ch = mux.createChannel({
      protocol: 'csn-test/echo',
      onopen() {
        state.opened = true
        resolveOpen()
      },
      onclose() {
        state.closed = true
      }
    })
    assert.ok(ch, `${label}: echo channel created`)
    const msg = ch.addMessage({
      encoding: c.string,
      onmessage(m) {
        state.got.push(m)
        if (m.startsWith('ping:')) msg.send('pong:' + m)
      }
    })
    ch.open()
    state.ping = (text) => {
      const m = `ping:${label}:${text}`
      state.sent.push(m)
      msg.send(m)
    }
    return state
  }

  async function connect(e, p, blocks, order) {
    const ws = e.store(p.Writer)
    const w = ws.get({ name: 'swarmed' })
    await w.ready()
    await appendAll(w, blocks)
    const rs = e.store(p.Reader)
    const r = rs.get({ key: w.key })
    await r.ready()

    const conns = { w: [], r: [] }
    const echoes = { w: [], r: [] }
    const attach = (side, store) => (conn) => {
      conn.on('error', noop)
      conns[side].push(conn)
      const when = order ? order[side] : null
      if (when === 'before') echoes[side].push(echo(conn, side))
      const ret = store.replicate(conn)
      assert.equal(ret, conn, 'store.replicate(conn) returns conn (as JS corestore does)')
      if (when === 'after') echoes[side].push(echo(conn, side))
      if (when) {
        assert.ok(Protomux.isProtomux(conn.userData), `${side}: conn.userData is the Protomux`)
        assert.equal(conn.userData, echoes[side][echoes[side].length - 1].mux, `${side}: one shared Protomux per connection`)
      }
    }

    const sw = swarm(e)
    sw.on('connection', attach('w', ws))
    const discovery = sw.join(w.discoveryKey, { server: true, client: false })
    await within(15000, discovery.flushed(), 'writer announce flushed')

    const sr = swarm(e)
    sr.on('connection', attach('r', rs))
    sr.join(w.discoveryKey, { server: false, client: true })
    await within(15000, sr.flush(), 'reader swarm flush')
    await until(() => conns.w.length > 0 && conns.r.length > 0, 10000, 'a connection on both sides')
    return { ws, w, rs, r, conns, echoes }
  }

  const N = 500

  forEachPairing('Hyperswarm: reader finds the writer through the DHT and reads all blocks', { timeout: 60000 }, async (t, p, e) => {
    const blocks = variedBlocks(N, 'swarm')
    const { w, r } = await connect(e, p, blocks, null)
    await until(async () => {
      if (r.length < N) await within(5000, r.update({ wait: true }), 'update')
      return r.length === N
    }, 10000, 'reader length')
    await readAll(r, blocks, { order: shuffled(N, 2), what: 'over hyperswarm' })
    sameBuffer(await r.treeHash(), treeHashOf(blocks), 'treeHash')
    await w.append(b4a.from('live over swarm'))
    await until(() => r.length === N + 1, 5000, 'live append over hyperswarm')
    sameBuffer(await within(5000, r.get(N), 'get(N)'), b4a.from('live over swarm'))
  })

  const ORDERS = {
    'before store.replicate(conn)': { w: 'before', r: 'before' },
    'after store.replicate(conn)': { w: 'after', r: 'after' },
    'before on the writer, after on the reader': { w: 'before', r: 'after' }
  }

  for (const [name, order] of Object.entries(ORDERS)) {
    forEachPairing(`Hyperswarm + a second Protomux protocol, echo channel made ${name}`, { timeout: 60000 }, async (t, p, e) => {
      const blocks = variedBlocks(N, 'mux-' + order.w + order.r)
      const { w, r, echoes } = await connect(e, p, blocks, order)
      const ew = echoes.w[0]
      const er = echoes.r[0]
      await within(5000, Promise.all([ew.openedPromise, er.openedPromise]), 'echo channel open on both sides')

      // messages both ways while blocks replicate
      ew.ping('start')
      er.ping('start')
      const reading = (async () => {
        await until(async () => {
          if (r.length < N) await within(5000, r.update({ wait: true }), 'update')
          return r.length === N
        }, 10000, 'reader length')
        const order2 = shuffled(N, 8)
        for (let k = 0; k < order2.length; k += 50) {
          await readAll(r, blocks, { order: order2.slice(k, k + 50), what: `batch ${k}` })
          ew.ping('during-' + k)
          er.ping('during-' + k)
        }
      })()
      await within(30000, reading, 'replication with the echo protocol alongside')
      await w.append(b4a.from('after echo'))
      await until(() => r.length === N + 1, 5000, 'live append still flows')
      sameBuffer(await within(5000, r.get(N), 'get(N)'), b4a.from('after echo'))
      ew.ping('end')
      er.ping('end')

      const complete = (me, other) =>
        me.sent.every((m) => me.got.includes('pong:' + m)) && other.sent.every((m) => me.got.includes(m))
      await until(() => complete(ew, er) && complete(er, ew), 5000, 'all pings answered both ways')
      assert.equal(ew.sent.length, 12, 'ew.sent.length')
      assert.equal(er.got.filter((m) => m.startsWith('ping:w:')).length, 12, 'reader got every writer ping')
      assert.equal(ew.got.filter((m) => m.startsWith('ping:r:')).length, 12, 'writer got every reader ping')
      assert.equal(ew.closed || er.closed, false, 'echo channels still open')
    })
  }
}
