'use strict'

// Local (no replication) benchmark: the same workloads on JS corestore and corestore-native,
// in one run, printed as a markdown table.
//
//   npm run bench                          full size
//   BENCH_SCALE=0.1 npm run bench          10% of every workload size (quick run)
//   BENCH_RUNS=1 npm run bench             measured runs per cell, median reported (default 3)
//   BENCH_NATIVE=corestore npm run bench   load the "native" side from another module
//                                          (e.g. JS vs JS, to calibrate the harness)
//   BENCH_ONLY=get,keypair npm run bench   only workloads whose name contains one of these
//   node --expose-gc benchmark/local.js    collect garbage between runs

const fs = require('fs')
const os = require('os')
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

const BLOCK_SIZE = 1024



// ---------------------------------------------------------------------------
// Implementations



const IMPLS = [
  { name: 'JS corestore', Corestore: JSCorestore },
  { name: 'corestore-native', Corestore: NativeCorestore }
]

// ---------------------------------------------------------------------------
// Workloads. Each gets a fresh, empty directory and returns { ops, bytes, ms } for its timed part.

function randomBlocks(n) {
  const blocks = new Array(n)
  for (let i = 0; i < n; i++) blocks[i] = crypto.randomBytes(BLOCK_SIZE)
  return blocks
}



async function appendBatches(core, total, batchSize) {
  const batch = randomBlocks(Math.min(batchSize, total))
  let left = total
  while (left > 0) {
    const n = Math.min(batchSize, left)
    await core.append(n === batch.length ? batch : batch.slice(0, n))
    left -= n
  }
}

// Block encryption as hypercore does it: 8 bytes of padding, XSalsa20 per block.
const ENCRYPTED = { encryptionKey: Buffer.alloc(32, 1) }

// Opens the store in `dir` and its core 'bench', runs fn(core), closes the store.
async function withCore(Corestore, dir, coreOpts, fn) {
  const store = new Corestore(dir)
  try {
    const core = store.get({ name: 'bench', ...coreOpts })
    await core.ready()
    return await fn(core)
  } finally {
    await store.close()
  }
}

function batchedAppend(name, coreOpts) {
  return {
    name,
    size: scaled(100000, 1000),
    unit: 'blocks',
    throughput: true,
    run: (Corestore, dir, n) =>
      withCore(Corestore, dir, coreOpts, async (core) => {
        const start = now()
        await appendBatches(core, n, 1000)
        const ms = msSince(start)
        if (core.length !== n) throw new Error(`expected length ${n}, got ${core.length}`)
        return { ops: n, bytes: n * BLOCK_SIZE, ms }
      })
  }
}

function sequentialGet(name, coreOpts) {
  return {
    name,
    size: scaled(100000, 1000),
    unit: 'blocks',
    throughput: true,
    async run(Corestore, dir, n) {
      // Setup (untimed): write the blocks, then reopen the store so reads start from storage.
      await withCore(Corestore, dir, coreOpts, (core) => appendBatches(core, n, 1000))

      return withCore(Corestore, dir, coreOpts, async (core) => {
        if (core.length !== n) throw new Error(`expected length ${n}, got ${core.length}`)
        let bytes = 0
        const start = now()
        for (let i = 0; i < n; i++) {
          const block = await core.get(i)
          bytes += block.byteLength
        }
        const ms = msSince(start)
        if (bytes !== n * BLOCK_SIZE) throw new Error(`read ${bytes} bytes, expected ${n * BLOCK_SIZE}`)
        return { ops: n, bytes, ms }
      })
    }
  }
}

const WORKLOADS = [
  {
    name: 'append 1 KiB, one awaited append at a time',
    size: scaled(5000),
    unit: 'blocks',
    throughput: true,
    run: (Corestore, dir, n) =>
      withCore(Corestore, dir, {}, async (core) => {
        const blocks = randomBlocks(Math.min(n, 1000))
        const start = now()
        for (let i = 0; i < n; i++) await core.append(blocks[i % blocks.length])
        const ms = msSince(start)
        if (core.length !== n) throw new Error(`expected length ${n}, got ${core.length}`)
        return { ops: n, bytes: n * BLOCK_SIZE, ms }
      })
  },
  batchedAppend('append 1 KiB in batches of 1000', {}),
  batchedAppend('append 1 KiB in batches of 1000, encrypted (encryptionKey)', ENCRYPTED),
  sequentialGet('get 1 KiB blocks sequentially, one awaited get at a time', {}),
  sequentialGet('get 1 KiB blocks sequentially, encrypted (encryptionKey)', ENCRYPTED),
  {
    name: 'open named cores (get({ name }) + ready)',
    size: scaled(10000),
    unit: 'cores',
    throughput: false,
    async run(Corestore, dir, n) {
      const store = new Corestore(dir)
      try {
        await store.ready()
        const start = now()
        for (let i = 0; i < n; i++) {
          const core = store.get({ name: 'core-' + i })
          await core.ready()
        }
        return { ops: n, bytes: 0, ms: msSince(start) }
      } finally {
        await store.close()
      }
    }
  },
  {
    name: 'createKeyPair',
    size: scaled(20000),
    unit: 'keypairs',
    throughput: false,
    async run(Corestore, dir, n) {
      const store = new Corestore(dir)
      try {
        await store.ready()
        const start = now()
        for (let i = 0; i < n; i++) await store.createKeyPair('key-' + i)
        return { ops: n, bytes: 0, ms: msSince(start) }
      } finally {
        await store.close()
      }
    }
  }
]

// ---------------------------------------------------------------------------
// Runner

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'corestore-bench-'))
}


async function runOnce(workload, Corestore, n) {
  if (typeof global.gc === 'function') global.gc()
  const dir = tmpdir()
  try {
    return await workload.run(Corestore, dir, n)
  } finally {
    rmdir(dir)
    // let background storage work (flushes, compactions) of the finished run settle
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}


async function measure(workload, impl) {
  // Warmup at 10% size in its own directory, then RUNS measured runs in fresh directories.
  await runOnce(workload, impl.Corestore, Math.max(1, Math.round(workload.size / 10)))
  const results = []
  for (let i = 0; i < RUNS; i++) results.push(await runOnce(workload, impl.Corestore, workload.size))
  const ms = median(results.map((r) => r.ms))
  const { ops, bytes } = results[0]
  return { ops, bytes, ms, opsPerSec: (ops * 1000) / ms, mbPerSec: (bytes / (1024 * 1024)) / (ms / 1000) }
}


function fmtCell(workload, r) {
  if (r.error) return `error: ${r.error}`
  let s = `${fmtInt(r.opsPerSec)} ops/s`
  if (workload.throughput) s += `, ${r.mbPerSec.toFixed(1)} MB/s`
  return s
}

function fmtRatio(js, native) {
  if (js.error || native.error) return 'n/a'
  return `${(native.opsPerSec / js.opsPerSec).toFixed(2)}x`
}

async function main() {
  const cpus = os.cpus()
  console.log('# corestore-native local benchmark\n')
  console.log(`- node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} x ${cpus[0] ? cpus[0].model : 'unknown CPU'}`)
  console.log(`- scale ${SCALE}, ${RUNS} measured run(s) per cell (median), 1 warmup run at 10% size`)
  console.log(`- native side: require(${JSON.stringify(nativeSpec)})${process.env.BENCH_NATIVE ? ' (BENCH_NATIVE override)' : ''}`)
  if (typeof global.gc !== 'function') console.log('- run with node --expose-gc to collect garbage between runs')
  console.log('')

  const only = (process.env.BENCH_ONLY || '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean)
  const selected = WORKLOADS.filter((w) => only.length === 0 || only.some((o) => w.name.toLowerCase().includes(o)))
  if (selected.length === 0) {
    console.error(`BENCH_ONLY=${process.env.BENCH_ONLY} matches no workload`)
    return 1
  }

  const rows = []
  let failed = false

  for (const workload of selected) {
    const cells = []
    for (const impl of IMPLS) {
      process.stderr.write(`running: ${workload.name} (${fmtInt(workload.size)} ${workload.unit}) on ${impl.name}... `)
      try {
        const r = await measure(workload, impl)
        process.stderr.write(`${(r.ms / 1000).toFixed(2)}s\n`)
        cells.push(r)
      } catch (err) {
        failed = true
        process.stderr.write(`FAILED\n${err && err.stack ? err.stack : err}\n`)
        cells.push({ error: err && err.message ? err.message : String(err) })
      }
    }
    rows.push({ workload, js: cells[0], native: cells[1] })
  }

  console.log('| workload | JS corestore | corestore-native | ratio (native/JS) |')
  console.log('| --- | --- | --- | --- |')
  for (const { workload, js, native } of rows) {
    const name = `${workload.name} (${fmtInt(workload.size)} ${workload.unit})`
    console.log(`| ${name} | ${fmtCell(workload, js)} | ${fmtCell(workload, native)} | ${fmtRatio(js, native)} |`)
  }
  console.log('\nratio > 1 means corestore-native is faster.')

  return failed ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    process.exit(1)
  }
)
