'use strict'

// Memory per open core and event-loop delay, JS corestore beside corestore-native in one run.
// Each cell runs in its own process, so RSS and the event loop are that workload's alone.
//
//   node benchmark/responsiveness.js                 full size
//   BENCH_SCALE=0.1 node benchmark/responsiveness.js 10% of every size
//
// Rows: RSS per open core (10,000 named cores, after GC), and the event loop's delay
// (a 1 ms timer's lateness: p99 and max) while appending 100,000
// 1 KiB blocks in batches of 1000 and while replicating 100 MB of 1 KiB blocks between two
// stores of the same kind over an in-process pipe, and over a pair of @hyperswarm/secret-stream
// ends (Noise and Protomux in JS, as Hyperswarm connections are).

const { spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { performance } = require('perf_hooks')
const NoiseSecretStream = require('@hyperswarm/secret-stream')

const SCALE = Math.max(0.01, Number(process.env.BENCH_SCALE || '1') || 1)
const CORES = Math.round(10000 * SCALE)
const APPENDS = Math.round(100000 * SCALE)
const REPLICATED = Math.round(102400 * SCALE)
const MB = 1024 * 1024

function load(impl) {
  return impl === 'js' ? require('corestore') : require('..')
}

function tmp() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'csn-resp-'))
}

// The event loop's delay while `fn` runs: a 1 ms timer records how late each of its ticks
// comes, and the time from its last tick to the end counts too (a loop that never yields to
// timers would otherwise record nothing). perf_hooks' monitorEventLoopDelay misses that case.
async function withDelay(fn) {
  const delays = []
  let last = performance.now()
  const timer = setInterval(() => {
    const t = performance.now()
    delays.push(Math.max(0, t - last - 1))
    last = t
  }, 1)
  const started = performance.now()
  await fn()
  const end = performance.now()
  clearInterval(timer)
  delays.push(Math.max(0, end - last - 1))
  delays.sort((a, b) => a - b)
  const p99 = delays[Math.min(delays.length - 1, Math.floor(delays.length * 0.99))]
  return { p99, max: delays[delays.length - 1], ms: end - started }
}

const WORKLOADS = {
  async rssPerCore(Corestore) {
    const dir = tmp()
    const store = new Corestore(dir)
    await store.ready()
    const warm = store.get({ name: 'warm' })
    await warm.ready()
    global.gc()
    const before = process.memoryUsage().rss
    const cores = []
    for (let i = 0; i < CORES; i++) cores.push(store.get({ name: 'core-' + i }))
    await Promise.all(cores.map((c) => c.ready()))
    global.gc()
    const after = process.memoryUsage().rss
    await store.close()
    fs.rmSync(dir, { recursive: true, force: true })
    return { bytesPerCore: (after - before) / CORES }
  },

  async appendDelay(Corestore) {
    const dir = tmp()
    const store = new Corestore(dir)
    const core = store.get({ name: 'appends' })
    await core.ready()
    const batch = []
    for (let i = 0; i < 1000; i++) batch.push(Buffer.alloc(1024, i % 256))
    const r = await withDelay(async () => {
      for (let n = 0; n < APPENDS; n += 1000) await core.append(batch)
    })
    await store.close()
    fs.rmSync(dir, { recursive: true, force: true })
    return r
  },

  replicateDelay(Corestore) {
    return replicated(Corestore, (a, b) => {
      const s1 = a.replicate(true)
      const s2 = b.replicate(false)
      s1.pipe(s2).pipe(s1)
      return [s1, s2]
    })
  },

  // the Hyperswarm path: Noise and Protomux in JS, for both ends
  replicateSecretStreamDelay(Corestore) {
    return replicated(Corestore, (a, b) => {
      const n1 = new NoiseSecretStream(true)
      const n2 = new NoiseSecretStream(false)
      n1.rawStream.pipe(n2.rawStream).pipe(n1.rawStream)
      a.replicate(n1)
      b.replicate(n2)
      return [n1, n2]
    })
  }
}

// Event-loop delay while `connect(a, b)` replicates REPLICATED blocks from store a to b;
// it returns the streams to destroy afterwards.
async function replicated(Corestore, connect) {
  const dirs = [tmp(), tmp()]
  const a = new Corestore(dirs[0])
  const b = new Corestore(dirs[1])
  const core = a.get({ name: 'source' })
  await core.ready()
  const batch = []
  for (let i = 0; i < 1000; i++) batch.push(Buffer.alloc(1024, i % 256))
  for (let n = 0; n < REPLICATED; n += 1000) await core.append(batch)
  const replica = b.get({ key: core.key })
  await replica.ready()
  const r = await withDelay(async () => {
    const streams = connect(a, b)
    await replica.download({ start: 0, end: core.length }).done()
    for (const s of streams) s.destroy()
  })
  await a.close()
  await b.close()
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  return r
}

function cell(impl, workload) {
  const r = spawnSync(process.execPath, ['--expose-gc', __filename, '--child', impl, workload], {
    encoding: 'utf8',
    timeout: 600000,
    env: { ...process.env }
  })
  if (r.status !== 0) return { error: (r.stderr || r.error || 'failed').toString().split('\n')[0] }
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

async function main() {
  if (process.argv[2] === '--child') {
    const out = await WORKLOADS[process.argv[4]](load(process.argv[3]))
    console.log(JSON.stringify(out))
    return
  }
  const ms = (x) => `${x.toFixed(1)} ms`
  console.log('| workload | JS corestore | corestore-native | ratio (native/JS) |')
  console.log('| --- | --- | --- | --- |')
  {
    const js = cell('js', 'rssPerCore')
    const na = cell('native', 'rssPerCore')
    const kb = (r) => (r.error ? r.error : `${(r.bytesPerCore / 1024).toFixed(1)} KB`)
    const ratio = js.error || na.error ? '' : (na.bytesPerCore / js.bytesPerCore).toFixed(2)
    console.log(`| RSS per open core (${CORES} named cores, after GC) | ${kb(js)} | ${kb(na)} | ${ratio} |`)
  }
  for (const [workload, label] of [
    ['appendDelay', `event-loop delay appending ${APPENDS} x 1 KiB in batches of 1000`],
    ['replicateDelay', `event-loop delay replicating ${((REPLICATED * 1024) / MB).toFixed(0)} MB of 1 KiB blocks (pipe)`],
    [
      'replicateSecretStreamDelay',
      `event-loop delay replicating ${((REPLICATED * 1024) / MB).toFixed(0)} MB of 1 KiB blocks (secret-stream pair)`
    ]
  ]) {
    const js = cell('js', workload)
    const na = cell('native', workload)
    const show = (r) => (r.error ? r.error : `p99 ${ms(r.p99)}, max ${ms(r.max)} (${(r.ms / 1000).toFixed(1)} s)`)
    const ratio = js.error || na.error ? '' : `p99 ${(na.p99 / js.p99).toFixed(2)}, max ${(na.max / js.max).toFixed(2)}`
    console.log(`| ${label} | ${show(js)} | ${show(na)} | ${ratio} |`)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
