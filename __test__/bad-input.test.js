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
const IMPL = process.env.CORESTORE_IMPL === 'corestore' ? 'js' : 'native'

function run(impl, name) {
  const r = spawnSync(process.execPath, [CASE, impl, name], { encoding: 'utf8', timeout: 15000 })
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
