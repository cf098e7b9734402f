'use strict'

// Replication benchmark: the same workloads replicated JS corestore → JS corestore and
// corestore-native → corestore-native (same store kind on both ends), in one run, printed as a
// markdown table; plus an interop row (JS writer → native reader) for information.
//
//   npm run bench:replication                          full size (100 MB, 1000 cores)
//   BENCH_SCALE=0.05 npm run bench:replication         5% of every workload size (quick run)
//   BENCH_RUNS=1 npm run bench:replication             measured runs per cell, median reported (default 3)
//   BENCH_NATIVE=corestore npm run bench:replication   load the "native" side from another module
//                                                      (e.g. JS vs JS, to calibrate the harness)
//   BENCH_ONLY=pipe,tcp npm run bench:replication      only workloads whose name contains one of these
//                                                      (pipe, tcp, secret-stream, cores, interop)
//   BENCH_TIMEOUT=300 npm run bench:replication        hard timeout per run in seconds (default 300);
//                                                      a run that exceeds it prints 'timeout' in its cell
//   BENCH_TRACE=1 npm run bench:replication            print per-second progress (MB/s or cores/s) and
//                                                      process CPU % to stderr during timed parts
//   node --expose-gc benchmark/replication.js          collect garbage between runs
//
// Both ends run in this one process, so CPU figures cover writer + reader together.

const fs = require('fs')
const os = require('os')
const net = require('net')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const path = require('path')
const crypto = require('crypto')
const {
  SCALE,
  RUNS,
  scaled,
  JSCorestore,
  NativeCorestore,
  nativeSpec,
  now,
  msSince,
  rmdir,
  median,
  fmtInt
} = require('./harness.js')

const TIMEOUT_MS = Math.max(1, Number(process.env.BENCH_TIMEOUT || '300') || 300) * 1000
const TRACE = !!process.env.BENCH_TRACE && process.env.BENCH_TRACE !== '0'
const BLOCK_SIZE = 1024
const MB = 1024 * 1024



// ---------------------------------------------------------------------------
// Implementations



const JS = { name: 'JS corestore', Corestore: JSCorestore }
const NATIVE = { name: 'corestore-native', Corestore: NativeCorestore }

// The two compared cells of every row, and the informational interop pairing.
const SAME_KIND = [
  { name: 'JS → JS', writer: JS, reader: JS },
  { name: 'native → native', writer: NATIVE, reader: NATIVE }
]
const INTEROP = { name: 'JS → native', writer: JS, reader: NATIVE }

// ---------------------------------------------------------------------------
// Helpers



function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

class TimeoutError extends Error {
  constructor(ms, what) {
    super(`timed out after ${ms / 1000} s: ${what}`)
    this.code = 'BENCH_TIMEOUT'
  }
}

// Resolves/rejects like `promise`, or rejects with a TimeoutError after `ms`.
function within(ms, promise, what) {
  let timer = null
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms, what)), ms)
  })
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer))
}

// Unique, reproducible 1 KiB blocks: random bytes from a 1 MiB pool, stamped with the
// block index (and a salt, so different cores get different blocks).
const POOL = crypto.randomBytes(1024 * BLOCK_SIZE)

function blockOf(i, salt = 0) {
  const b = Buffer.allocUnsafe(BLOCK_SIZE)
  POOL.copy(b, 0, (i % 1024) * BLOCK_SIZE, (i % 1024) * BLOCK_SIZE + BLOCK_SIZE)
  b.writeUInt32LE(i >>> 0, 0)
  b.writeUInt32LE(salt >>> 0, 4)
  return b
}

async function appendBatches(core, total, batchSize, salt = 0) {
  for (let i = 0; i < total; i += batchSize) {
    const batch = []
    for (let j = i; j < Math.min(total, i + batchSize); j++) batch.push(blockOf(j, salt))
    await core.append(batch)
  }
}

async function spotCheck(core, n, salt = 0, what = 'block') {
  const indices = new Set([0, n - 1, n >> 1, (n / 3) | 0, ((2 * n) / 3) | 0])
  for (let k = 0; k < 3; k++) indices.add(crypto.randomInt(n))
  for (const i of indices) {
    const got = await core.get(i, { wait: false })
    if (!got || !Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(blockOf(i, salt))) {
      throw new Error(`${what} ${i} differs from what the writer appended`)
    }
  }
}

// `await core.update({ wait: true })` until the core has length n. JS corestore's update waits
// for a replication handshake still in progress; when an implementation's update resolves
// early (false, no peer yet), wait for the next 'peer-add'/'append' (or 5 ms) and ask again.
// Early returns are counted and reported on stderr.
let earlyUpdates = 0
async function updateTo(core, n) {
  while (true) {
    await core.update({ wait: true })
    if (core.length >= n) return
    earlyUpdates++
    await new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        core.removeListener('peer-add', done)
        core.removeListener('append', done)
        resolve()
      }
      const timer = setTimeout(done, 5)
      core.on('peer-add', done)
      core.on('append', done)
    })
  }
}

// BENCH_TRACE=1: per-second samples of progress and process CPU during a timed part, and at
// its end a summary: CPU per thread (Linux, /proc/self/task), max event-loop delay (a loop
// kept busy by synchronous work shows as a large delay and missing per-second samples).
// Progress is counted from the reader's 'download' events (JS downloads a range in random
// order, so contiguousLength would stay low until the end).
function threadTimes() {
  const out = new Map()
  let tids = []
  try {
    tids = fs.readdirSync('/proc/self/task')
  } catch {
    return out
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const ticks = Number(rest[11]) + Number(rest[12])
      const name = tid === String(process.pid) ? 'main' : fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
      out.set(tid, { name, ms: ticks * 10 })
    } catch {
      // thread exited
    }
  }
  return out
}

function tracer(label, cores, unit, scale) {
  if (!TRACE) return { stop() {} }
  const { monitorEventLoopDelay } = require('perf_hooks')
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  let progress = 0
  const ondownload = (index, bytes) => {
    progress += unit === 'MB' ? bytes : 0
  }
  for (const c of cores()) c.on('download', ondownload)
  const t0 = Date.now()
  const threads0 = threadTimes()
  let last = { t: t0, p: 0, cpu: process.cpuUsage() }
  const timer = setInterval(() => {
    const t = Date.now()
    const p = unit === 'MB' ? progress : scale()
    const cpu = process.cpuUsage()
    const dt = (t - last.t) / 1000
    const rate = (p - last.p) / (unit === 'MB' ? MB : 1) / dt
    const cpuPct = ((cpu.user - last.cpu.user + cpu.system - last.cpu.system) / 1e4 / dt).toFixed(0)
    process.stderr.write(`\n  [trace ${label}] t=${((t - t0) / 1000).toFixed(1)}s ${rate.toFixed(1)} ${unit}/s, cpu ${cpuPct}%`)
    last = { t, p, cpu }
  }, 1000)
  return {
    stop() {
      clearInterval(timer)
      loop.disable()
      for (const c of cores()) c.removeListener('download', ondownload)
      const byName = new Map()
      for (const [tid, { name, ms }] of threadTimes()) {
        const before = threads0.get(tid)
        const d = ms - (before ? before.ms : 0)
        if (d > 0) byName.set(name, (byName.get(name) || 0) + d)
      }
      const threads = [...byName].sort((a, b) => b[1] - a[1]).map(([n, ms]) => `${n} ${(ms / 1000).toFixed(2)}s`)
      process.stderr.write(
        `\n  [trace ${label}] wall ${((Date.now() - t0) / 1000).toFixed(2)}s, thread cpu: ${threads.join(', ') || 'n/a'}; ` +
          `event loop delay max ${(loop.max / 1e6).toFixed(0)} ms, mean ${(loop.mean / 1e6).toFixed(1)} ms\n`
      )
    }
  }
}

// ---------------------------------------------------------------------------
// Resources: everything a run opens is registered here and torn down (bounded) at its end,
// also after a timeout or an error.

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'corestore-bench-repl-'))
}


function resources() {
  const stack = []
  return {
    dir() {
      const d = tmpdir()
      stack.push({ what: 'rm dir', fn: () => rmdir(d) })
      return d
    },
    store(Corestore) {
      const s = new Corestore(this.dir())
      stack.push({ what: 'store.close()', fn: () => s.close() })
      return s
    },
    stream(s) {
      s.on('error', () => {}) // destroy on teardown may error; not part of the measurement
      stack.push({
        what: 'stream.destroy()',
        fn: () => {
          if (s.destroyed) return
          const closed = new Promise((resolve) => s.once('close', resolve))
          s.destroy()
          return closed
        }
      })
      return s
    },
    defer(what, fn) {
      stack.push({ what, fn })
    },
    async close() {
      while (stack.length) {
        const { what, fn } = stack.pop()
        try {
          await within(15000, fn(), what)
        } catch (err) {
          process.stderr.write(`\n  teardown: ${what}: ${err.message}\n`)
        }
      }
    }
  }
}

function pipeStores(r, writer, reader) {
  const s1 = r.stream(writer.replicate(true))
  const s2 = r.stream(reader.replicate(false))
  s1.pipe(s2).pipe(s1)
}

// The writer is the TCP server (replication responder), the reader the client (initiator).
// Resolves with a function that starts replication (after the connection is up).
async function tcpConnect(r) {
  const srv = net.createServer()
  r.defer('server.close()', () => new Promise((resolve) => srv.close(() => resolve())))
  const track = (sock) => {
    sock.on('error', () => {}) // ECONNRESET on teardown is expected
    r.defer('socket.destroy()', () => {
      if (sock.destroyed) return
      const closed = new Promise((resolve) => sock.once('close', resolve))
      sock.destroy()
      return closed
    })
    return sock
  }
  const accepted = new Promise((resolve) => srv.once('connection', resolve))
  await within(5000, new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve)), 'listen')
  const clientSock = track(net.connect(srv.address().port, '127.0.0.1'))
  await within(5000, new Promise((resolve) => clientSock.once('connect', resolve)), 'connect')
  const serverSock = track(await within(5000, accepted, 'accept'))
  return function replicate(writer, reader) {
    serverSock.pipe(r.stream(writer.replicate(false))).pipe(serverSock)
    clientSock.pipe(r.stream(reader.replicate(true))).pipe(clientSock)
  }
}

// Two @hyperswarm/secret-stream ends piped in-process, as Hyperswarm hands out connections:
// Noise runs in JS for both implementations and replication runs on each end's Protomux.
function secretStreamConnect(r) {
  return function replicate(writer, reader) {
    const a = r.stream(new NoiseSecretStream(true))
    const b = r.stream(new NoiseSecretStream(false))
    a.rawStream.pipe(b.rawStream).pipe(a.rawStream)
    writer.replicate(a)
    reader.replicate(b)
  }
}

// ---------------------------------------------------------------------------
// Workloads. run(pair, n, r) returns { ops, bytes, ms, cpuMs } for the timed part.

// One core of n 1 KiB blocks: writer appends (untimed), reader opens it by key; timed from
// starting replication until the reader has every block locally.
async function oneCore(pair, n, r, transport) {
  const ws = r.store(pair.writer.Corestore)
  const w = ws.get({ name: 'bench' })
  await w.ready()
  await appendBatches(w, n, 1000)
  if (w.length !== n) throw new Error(`writer length ${w.length}, expected ${n}`)

  const rs = r.store(pair.reader.Corestore)
  const reader = rs.get({ key: w.key })
  await reader.ready()

  const connect =
    transport === 'tcp' ? await tcpConnect(r) : transport === 'secret-stream' ? secretStreamConnect(r) : null

  const trace = tracer(pair.name, () => [reader], 'MB')
  const cpu0 = process.cpuUsage()
  const start = now()
  try {
    if (connect) connect(ws, rs)
    else pipeStores(r, ws, rs)
    await updateTo(reader, n)
    if (reader.length !== n) throw new Error(`reader length ${reader.length}, expected ${n}`)
    await reader.download({ start: 0, end: reader.length }).done()
  } finally {
    trace.stop()
  }
  const ms = msSince(start)
  const cpu = process.cpuUsage(cpu0)

  if (reader.contiguousLength !== n) throw new Error(`reader contiguousLength ${reader.contiguousLength}, expected ${n}`)
  await spotCheck(reader, n)
  return { ops: n, bytes: n * BLOCK_SIZE, ms, cpuMs: (cpu.user + cpu.system) / 1000 }
}

const CORE_BLOCKS = 3

const WORKLOADS = [
  {
    name: '100 MB of 1 KiB blocks, in-process pipe',
    short: 'pipe',
    size: scaled(100 * 1024, 100),
    unit: 'blocks',
    interop: true,
    run: (pair, n, r) => oneCore(pair, n, r, 'pipe')
  },
  {
    name: '100 MB of 1 KiB blocks, TCP 127.0.0.1',
    short: 'tcp',
    size: scaled(100 * 1024, 100),
    unit: 'blocks',
    run: (pair, n, r) => oneCore(pair, n, r, 'tcp')
  },
  {
    name: '100 MB of 1 KiB blocks, Hyperswarm-style secret-stream pair (Noise in JS)',
    short: 'secret-stream',
    size: scaled(100 * 1024, 100),
    unit: 'blocks',
    run: (pair, n, r) => oneCore(pair, n, r, 'secret-stream')
  },
  {
    name: `small cores (${CORE_BLOCKS} x 1 KiB) opened by key on one live stream, in-process pipe`,
    short: 'cores',
    size: scaled(1000, 10),
    unit: 'cores',
    perCore: true,
    async run(pair, n, r) {
      const ws = r.store(pair.writer.Corestore)
      const wcores = []
      for (let k = 0; k < n; k++) wcores.push(ws.get({ name: 'core-' + k }))
      await Promise.all(wcores.map((c) => c.ready()))
      await Promise.all(
        wcores.map((c, k) => {
          const blocks = []
          for (let i = 0; i < CORE_BLOCKS; i++) blocks.push(blockOf(i, k + 1))
          return c.append(blocks)
        })
      )
      const keys = wcores.map((c) => c.key)

      const rs = r.store(pair.reader.Corestore)
      await rs.ready()

      let done = 0
      const trace = tracer(pair.name, () => [], 'cores', () => done)
      const cpu0 = process.cpuUsage()
      const start = now()
      let rcores
      try {
        pipeStores(r, ws, rs)
        rcores = keys.map((key) => rs.get({ key }))
        await Promise.all(
          rcores.map(async (c, k) => {
            await c.ready()
            await updateTo(c, CORE_BLOCKS)
            if (c.length !== CORE_BLOCKS) throw new Error(`core ${k}: length ${c.length}, expected ${CORE_BLOCKS}`)
            await c.download({ start: 0, end: c.length }).done()
            done++
          })
        )
      } finally {
        trace.stop()
      }
      const ms = msSince(start)
      const cpu = process.cpuUsage(cpu0)

      for (let k = 0; k < n; k++) {
        if (rcores[k].contiguousLength !== CORE_BLOCKS) {
          throw new Error(`core ${k}: contiguousLength ${rcores[k].contiguousLength}, expected ${CORE_BLOCKS}`)
        }
      }
      for (const k of new Set([0, n - 1, n >> 1, crypto.randomInt(n)])) {
        await spotCheck(rcores[k], CORE_BLOCKS, k + 1, `core ${k} block`)
      }
      return { ops: n, bytes: n * CORE_BLOCKS * BLOCK_SIZE, ms, cpuMs: (cpu.user + cpu.system) / 1000 }
    }
  }
]

// ---------------------------------------------------------------------------
// Runner

async function runOnce(workload, pair, n) {
  if (typeof global.gc === 'function') global.gc()
  const r = resources()
  try {
    return await within(TIMEOUT_MS, workload.run(pair, n, r), `${workload.short} on ${pair.name}`)
  } finally {
    await r.close()
    // let background storage work (flushes, compactions) of the finished run settle
    await sleep(100)
  }
}


async function measure(workload, pair) {
  // Warmup at 10% size, then RUNS measured runs, every run in fresh directories.
  await runOnce(workload, pair, Math.max(1, Math.round(workload.size / 10)))
  const results = []
  for (let i = 0; i < RUNS; i++) results.push(await runOnce(workload, pair, workload.size))
  const ms = median(results.map((x) => x.ms))
  const cpuMs = median(results.map((x) => x.cpuMs))
  const { ops, bytes } = results[0]
  return { ops, bytes, ms, cpuMs, opsPerSec: (ops * 1000) / ms, mbPerSec: bytes / MB / (ms / 1000) }
}


function fmtCell(workload, x) {
  if (x.timeout) return 'timeout'
  if (x.error) return `error: ${x.error}`
  if (workload.perCore) return `${fmtInt(x.opsPerSec)} cores/s (${x.mbPerSec.toFixed(1)} MB/s)`
  return `${x.mbPerSec.toFixed(1)} MB/s (${fmtInt(x.opsPerSec)} blocks/s)`
}

function fmtRatio(js, native) {
  if (js.error || native.error || js.timeout || native.timeout) return 'n/a'
  return `${(native.opsPerSec / js.opsPerSec).toFixed(2)}x`
}

function fmtSize(workload) {
  if (workload.perCore) return `${fmtInt(workload.size)} cores`
  return `${((workload.size * BLOCK_SIZE) / MB).toFixed(1)} MB = ${fmtInt(workload.size)} blocks`
}

async function cell(workload, pair) {
  process.stderr.write(`running: ${workload.name} (${fmtSize(workload)}) ${pair.name}... `)
  earlyUpdates = 0
  try {
    const x = await measure(workload, pair)
    const early = earlyUpdates ? `, ${earlyUpdates} update({ wait: true }) call(s) resolved before the reader had the length` : ''
    process.stderr.write(`${(x.ms / 1000).toFixed(2)}s, cpu ${((100 * x.cpuMs) / x.ms).toFixed(0)}%${early}\n`)
    return x
  } catch (err) {
    if (err && err.code === 'BENCH_TIMEOUT') {
      process.stderr.write(`TIMEOUT (${err.message})\n`)
      return { timeout: true }
    }
    process.stderr.write(`FAILED\n${err && err.stack ? err.stack : err}\n`)
    return { error: err && err.message ? err.message : String(err), failed: true }
  }
}

async function main() {
  const cpus = os.cpus()
  const started = Date.now()
  console.log('# corestore-native replication benchmark\n')
  console.log(`- node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} x ${cpus[0] ? cpus[0].model : 'unknown CPU'}`)
  console.log(`- scale ${SCALE}, ${RUNS} measured run(s) per cell (median), 1 warmup run at 10% size, timeout ${TIMEOUT_MS / 1000} s per run`)
  console.log(`- native side: require(${JSON.stringify(nativeSpec)})${process.env.BENCH_NATIVE ? ' (BENCH_NATIVE override)' : ''}`)
  console.log('- writer and reader stores in this one process; timed from starting replication until the reader has every block')
  if (typeof global.gc !== 'function') console.log('- run with node --expose-gc to collect garbage between runs')
  console.log('')

  const only = (process.env.BENCH_ONLY || '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean)
  const matches = (w) => only.length === 0 || only.some((o) => w.name.toLowerCase().includes(o) || w.short === o)
  const selected = WORKLOADS.filter(matches)
  const interopWanted = only.length === 0 || only.includes('interop')
  const interopWorkloads = WORKLOADS.filter((w) => w.interop && (interopWanted || selected.includes(w)))
  if (selected.length === 0 && interopWorkloads.length === 0) {
    console.error(`BENCH_ONLY=${process.env.BENCH_ONLY} matches no workload`)
    return 1
  }

  const rows = []
  for (const workload of selected) {
    const cells = []
    for (const pair of SAME_KIND) cells.push(await cell(workload, pair))
    rows.push({ workload, js: cells[0], native: cells[1] })
  }
  const interopRows = []
  for (const workload of interopWorkloads) interopRows.push({ workload, x: await cell(workload, INTEROP) })

  let failed = false
  if (rows.length) {
    console.log('| workload | JS → JS | native → native | ratio (native/JS) |')
    console.log('| --- | --- | --- | --- |')
    for (const { workload, js, native } of rows) {
      failed = failed || !!js.failed || !!native.failed
      const name = `${workload.name} (${fmtSize(workload)})`
      console.log(`| ${name} | ${fmtCell(workload, js)} | ${fmtCell(workload, native)} | ${fmtRatio(js, native)} |`)
    }
    console.log('\nratio > 1 means corestore-native is faster.')
  }
  if (interopRows.length) {
    console.log('\n| interop (information, no ratio) | JS writer → native reader |')
    console.log('| --- | --- |')
    for (const { workload, x } of interopRows) {
      failed = failed || !!x.failed
      console.log(`| ${workload.name} (${fmtSize(workload)}) | ${fmtCell(workload, x)} |`)
    }
  }
  console.log(`\ntotal runtime ${((Date.now() - started) / 1000).toFixed(1)} s`)

  return failed ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    process.exit(1)
  }
)
