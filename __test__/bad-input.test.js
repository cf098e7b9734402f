'use strict'
// Bad API input: each call runs in its own process on the implementation and on JS corestore
// (some of them abort or never settle in JS). The implementation must always answer with an
// Error (with hypercore's code wherever JS gives one, the same code), never crash or hang,
// and leave what was committed intact and the store usable.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('path')
const { execFileSync, spawnSync } = require('child_process')

const CASE = path.join(__dirname, 'helpers', 'bad-input-case.js')
const DISK_CASE = path.join(__dirname, 'helpers', 'bad-disk-case.js')
const IMPL = process.env.CORESTORE_IMPL === 'corestore' ? 'js' : 'native'

function run(impl, name, script = CASE, timeout = 15000) {
  const r = spawnSync(process.execPath, [script, impl, name], { encoding: 'utf8', timeout })
  if (r.error && r.error.code === 'ETIMEDOUT') return { hang: true }
  if (r.signal || r.status !== 0) return { crash: r.signal || r.status }
  const last = r.stdout.trim().split('\n').pop()
  return last ? JSON.parse(last) : { crash: 'no output' }
}

const names = JSON.parse(execFileSync(process.execPath, [CASE, 'native', '--list'], { encoding: 'utf8' }))

test('every bad call gives an Error, never a crash or a hang, and loses nothing', () => {
  const report = []
  const wrong = []
  for (const name of names) {
    const ours = run(IMPL, name)
    const js = IMPL === 'js' ? ours : run('js', name)
    report.push(`${name}: ${ours.code || (ours.isError ? 'Error' : JSON.stringify(ours))} (JS: ${js.code || (js.isError ? 'Error' : JSON.stringify(js))})`)
    if (IMPL === 'js' && (js.crash || js.hang)) continue // JS's own failures are what this guards against
    // JS takes a few of these (get(1.5), markBlock(-1)); accepting them too is fine
    const answered = ours.isError === true || (ours.ok === true && js.ok === true)
    if (!answered) wrong.push(`${name}: ${JSON.stringify(ours)}`)
    else if (ours.intact !== true) wrong.push(`${name}: committed data or the store was lost`)
    else if (js.code && js.isError && ours.code !== js.code) wrong.push(`${name}: ${ours.code}, JS says ${js.code}`)
  }
  console.log(report.join('\n'))
  assert.deepEqual(wrong, [])
})

// A locked directory and damaged store files (helpers/bad-disk-case.js): opening gives an Error
// with JS's code where JS has one (JS's RocksDB binding says EIO for a corruption, ENOENT for a
// missing file; JS's lock error has no code, ours is STORAGE_CONFLICT), or opens what verifies;
// once the damage is undone nothing committed is missing, in either implementation. Where the
// damage itself loses data (a damaged log), both implementations must recover the same blocks.
const diskNames = JSON.parse(execFileSync(process.execPath, [DISK_CASE, 'native', '--list'], { encoding: 'utf8' }))

test('a locked directory and damaged CORESTORE / RocksDB files: an Error with JS code, no crash, nothing committed lost', () => {
  const report = []
  const wrong = []
  const opened = (r) => r.open === 'ok' && r.verified === true
  for (const name of diskNames) {
    const ours = run(IMPL, name, DISK_CASE, 60000)
    const js = IMPL === 'js' ? ours : run('js', name, DISK_CASE, 60000)
    const show = (r) => (r.open ? (r.open === 'ok' ? `opened, length ${r.length}` : r.open) : JSON.stringify(r))
    report.push(`${name}: ${show(ours)}${ours.intact ? '' : ' (not intact)'} (JS: ${show(js)}${js.intact ? '' : ' (not intact)'})`)
    if (IMPL === 'js' && (js.crash || js.hang || js.fatal)) continue
    if (!ours.open) {
      wrong.push(`${name}: ${JSON.stringify(ours)}`)
      continue
    }
    if (ours.open !== 'ok' && ours.isError !== true) wrong.push(`${name}: not an Error`)
    if (ours.open === 'ok' && !opened(ours)) wrong.push(`${name}: opened, but blocks do not verify`)
    const jsCode = js.open && js.open !== 'ok' && /^[A-Z_]+$/.test(js.open) ? js.open : null
    if (jsCode && ours.open !== jsCode) wrong.push(`${name}: ${ours.open}, JS says ${jsCode}`)
    if (js.open === 'ok' && ours.open === 'ok' && ours.length !== js.length) wrong.push(`${name}: length ${ours.length}, JS ${js.length}`)
    if (IMPL === 'js' && !ours.intact && !(ours.after && ours.after.self.open === 'ok')) continue // JS keeps its lock after some failed opens
    if (!ours.intact) {
      // only where the damage itself lost data as it did for JS: what is left verifies, same length
      const a = ours.after
      const b = js.after
      const same = a && b && opened(a.self) && opened(a.other) && opened(b.self) && a.self.length === b.self.length && !js.intact
      if (!same) wrong.push(`${name}: committed data lost: ${JSON.stringify(ours.after)} (JS: ${JSON.stringify(js.after)})`)
    }
  }
  console.log(report.join('\n'))
  assert.deepEqual(wrong, [])
})
