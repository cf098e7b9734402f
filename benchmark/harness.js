'use strict'
// What both benchmarks share: the size and run settings (BENCH_SCALE, BENCH_RUNS), loading
// the two implementations (BENCH_NATIVE), timing and formatting helpers.
const fs = require('fs')
const path = require('path')

const SCALE = parseScale(process.env.BENCH_SCALE)
const RUNS = Math.max(1, parseInt(process.env.BENCH_RUNS || '3', 10) || 3)

function parseScale(value) {
  if (value === undefined || value === '') return 1
  const n = Number(value)
  if (!(n > 0)) {
    console.error(`BENCH_SCALE must be a positive number, got ${JSON.stringify(value)}`)
    process.exit(1)
  }
  return n
}

function scaled(n, min = 1) {
  return Math.max(min, Math.round(n * SCALE))
}

function resolveModule(spec) {
  // Paths given on the command line are relative to the working directory.
  if (spec.startsWith('.') || path.isAbsolute(spec)) return path.resolve(process.cwd(), spec)
  return spec
}

function load(label, spec, hint) {
  try {
    return require(resolveModule(spec))
  } catch (err) {
    console.error(`Could not load ${label} (require(${JSON.stringify(spec)})): ${err.message}`)
    if (hint) console.error(hint)
    process.exit(1)
  }
}

const nativeSpec = process.env.BENCH_NATIVE || path.join(__dirname, '..')
const JSCorestore = load('JS corestore', 'corestore', 'Install the dev dependencies first: npm install')
const NativeCorestore = load(
  'corestore-native',
  nativeSpec,
  process.env.BENCH_NATIVE
    ? null
    : 'Build the native addon first (npm run build), or set BENCH_NATIVE=corestore to run the harness JS vs JS.'
)

function now() {
  return process.hrtime.bigint()
}

function msSince(start) {
  return Number(now() - start) / 1e6
}

function rmdir(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  } catch {
    // best effort
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function fmtInt(n) {
  return Math.round(n).toLocaleString('en-US')
}

module.exports = {
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
}
