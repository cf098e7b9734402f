'use strict'
// Child of bad-input.test.js: a store on a locked directory or on damaged files, on the
// implementation named by argv[2] ('native' or 'js'). Prints one JSON line:
//   open      'ok', or the error's code / message when opening the store (or its core) failed
//   length    what the reopened core holds when the open succeeded
//   verified  every block it holds reads back as written
//   intact    the data survived: once the damage is undone (the lock released, the damaged
//             file put back), the store opens with every committed block, also in the other
//             implementation
//   after     what each implementation reads then ({ self, other }): where the damage itself
//             lost data (a damaged log: RocksDB recovers up to the damage and moves on), what
//             is left must still verify
// A case runs in its own process because a bad store could abort it.
const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawn } = require('child_process')
const b4a = require('b4a')

const impl = process.argv[2]
const name = process.argv[3]
const JS = require('corestore')
const Native = require('../..')
const C = impl === 'js' ? JS : Native
const Other = impl === 'js' ? Native : JS

const BLOCKS = Array.from({ length: 40 }, (_, i) => b4a.from(`block-${i}-`.repeat(50)))

function within(ms, p, what) {
  let timer
  const t = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('hang: ' + what), { code: 'HANG' })), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

async function write(dir) {
  const store = new C(dir)
  const core = store.get({ name: 'kept' })
  await core.append(BLOCKS.slice(0, 20))
  await store.close()
  // a second session, so that the first one's log was flushed to a table file on reopening
  const again = new C(dir)
  const c2 = again.get({ name: 'kept' })
  await c2.append(BLOCKS.slice(20))
  await again.close()
}

function dbFile(dir, re) {
  const f = fs.readdirSync(path.join(dir, 'db')).filter((n) => re.test(n)).sort()
  if (f.length === 0) throw new Error('no db file matching ' + re)
  return path.join(dir, 'db', f[f.length - 1])
}

// Each damage returns an undo function.
function replaceFile(file, bytes) {
  const saved = fs.readFileSync(file)
  fs.writeFileSync(file, bytes)
  return () => fs.writeFileSync(file, saved)
}

function truncateFile(file, size) {
  const saved = fs.readFileSync(file)
  fs.truncateSync(file, size(saved.byteLength))
  return () => fs.writeFileSync(file, saved)
}

function garbleFile(file) {
  const saved = fs.readFileSync(file)
  const bad = b4a.from(saved)
  for (let i = Math.floor(bad.length / 3); i < Math.floor((2 * bad.length) / 3); i++) bad[i] ^= 0x5a
  fs.writeFileSync(file, bad)
  return () => fs.writeFileSync(file, saved)
}

function removeFile(file) {
  const saved = fs.readFileSync(file)
  fs.unlinkSync(file)
  return () => fs.writeFileSync(file, saved)
}

// another process holds the store open until its stdin ends
async function holdInChild(dir) {
  const src = `
    const C = require(${JSON.stringify(impl === 'js' ? require.resolve('corestore') : path.join(__dirname, '..', '..'))})
    const store = new C(${JSON.stringify(dir)})
    store.get({ name: 'kept' }).ready().then(() => {
      process.stdout.write('ready\\n')
      process.stdin.on('end', () => store.close().then(() => process.exit(0)))
      process.stdin.resume()
    }, (err) => { console.error(err); process.exit(1) })
  `
  const child = spawn(process.execPath, ['-e', src], { stdio: ['pipe', 'pipe', 'inherit'] })
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve())
    child.on('exit', (code) => reject(new Error('holder exited ' + code)))
  })
  return () => {
    child.stdin.end()
    return new Promise((resolve) => child.on('exit', resolve))
  }
}

const CASES = {
  'held by another process': (dir) => holdInChild(dir),
  'opened twice in one process': async (dir) => {
    const first = new C(dir)
    await first.ready()
    return () => first.close()
  },
  'CORESTORE garbled': (dir) => garbleFile(path.join(dir, 'CORESTORE')),
  'CORESTORE truncated to half': (dir) => truncateFile(path.join(dir, 'CORESTORE'), (n) => n >> 1),
  'CORESTORE empty': (dir) => truncateFile(path.join(dir, 'CORESTORE'), () => 0),
  'db/CURRENT names a missing MANIFEST': (dir) => replaceFile(path.join(dir, 'db', 'CURRENT'), 'MANIFEST-999999\n'),
  'db/CURRENT empty': (dir) => truncateFile(path.join(dir, 'db', 'CURRENT'), () => 0),
  'db MANIFEST truncated to half': (dir) => truncateFile(dbFile(dir, /^MANIFEST-/), (n) => n >> 1),
  'db MANIFEST garbled': (dir) => garbleFile(dbFile(dir, /^MANIFEST-/)),
  'db MANIFEST removed': (dir) => removeFile(dbFile(dir, /^MANIFEST-/)),
  'db table file truncated to half': (dir) => truncateFile(dbFile(dir, /\.sst$/), (n) => n >> 1),
  'db table file garbled': (dir) => garbleFile(dbFile(dir, /\.sst$/)),
  'db table file removed': (dir) => removeFile(dbFile(dir, /\.sst$/)),
  'db log truncated to half': (dir) => truncateFile(dbFile(dir, /\.log$/), (n) => n >> 1),
  'db log garbled': (dir) => garbleFile(dbFile(dir, /\.log$/))
}

// Opens dir with Impl and reads the core: { open, length, verified }.
async function readBack(Impl, dir) {
  const out = {}
  let store = null
  try {
    store = new Impl(dir)
    const core = store.get({ name: 'kept' })
    await within(10000, core.ready(), 'open')
    out.open = 'ok'
    out.length = core.length
    let verified = true
    for (let i = 0; i < core.length; i++) {
      const b = await within(10000, core.get(i, { wait: false }), 'get')
      if (b === null || !b4a.equals(b, BLOCKS[i])) verified = false
    }
    out.verified = verified
  } catch (err) {
    out.open = err.code || err.message
    out.isError = err instanceof Error
  }
  if (store) await within(10000, store.close(), 'close').catch(() => {})
  return out
}

async function main() {
  if (name === '--list') return console.log(JSON.stringify(Object.keys(CASES)))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-bad-disk-'))
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  await write(dir)
  const undo = await CASES[name](dir)
  const result = await readBack(C, dir)
  await undo()
  const after = await readBack(C, dir)
  const other = await readBack(Other, dir)
  result.intact = [after, other].every((r) => r.open === 'ok' && r.length === BLOCKS.length && r.verified)
  result.after = { self: after, other }
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ fatal: String(err && err.stack) }) + '\n')
  process.exit(2)
})
