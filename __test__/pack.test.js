'use strict'
// Packaging, as a release publishes it: the main package and the linux-x64-gnu package
// (scripts/pack-release.js), installed into an empty project with no Rust toolchain on PATH,
// then used from CommonJS and ESM and replicated with JS corestore. Needs the npm registry
// (for streamx): only with PACK_TEST=1 (.ci/run sets it).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('fs')
const path = require('path')
const { execFileSync } = require('child_process')
const { tmpdir } = require('./helpers/util.js')

const ROOT = process.env.PACK_ROOT || path.join(__dirname, '..') // PACK_ROOT: for checking this test itself
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

const skip =
  process.env.PACK_TEST !== '1'
    ? 'set PACK_TEST=1 to run (npm pack + npm install into a temp project)'
    : process.env.CORESTORE_IMPL
      ? 'packs the repo itself: not meaningful with CORESTORE_IMPL'
      : false

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300000,
    env: { ...process.env, npm_config_update_notifier: 'false' }
  })
}

// Run in the installed project: corestore-native from its node_modules, JS corestore from
// this repo's (REF_CORESTORE), replicating to each other.
const CJS = `
const Corestore = require('corestore-native')
const JSCorestore = require(process.env.REF_CORESTORE)
const fs = require('fs'), os = require('os'), path = require('path')
;(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-pack-'))
  const store = new Corestore(dir)
  const core = store.get({ name: 'packed' })
  await core.ready()
  const res = await core.append([Buffer.from('hello'), Buffer.from('world')])
  const js = new JSCorestore(fs.mkdtempSync(path.join(os.tmpdir(), 'csn-pack-js-')))
  const replica = js.get({ key: core.key })
  const a = store.replicate(true), b = js.replicate(false)
  a.pipe(b).pipe(a)
  const fromJs = (await replica.get(1)).toString()
  a.destroy(); b.destroy()
  await js.close()
  await store.close()
  fs.rmSync(dir, { recursive: true, force: true })
  const pkg = require('corestore-native/package.json')
  console.log(JSON.stringify({ res, fromJs, version: pkg.version, type: typeof Corestore,
    resolved: require.resolve('corestore-native'), addon: require.resolve('corestore-native-linux-x64-gnu') }))
})().catch((err) => { console.error(err); process.exit(1) })
`

const ESM = `
import Corestore from 'corestore-native'
import fs from 'fs'
import os from 'os'
import path from 'path'
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-pack-'))
const store = new Corestore(dir)
const core = store.get({ name: 'esm' })
await core.ready()
const res = await core.append(Buffer.from('esm'))
const block = (await core.get(0)).toString()
await store.close()
fs.rmSync(dir, { recursive: true, force: true })
console.log(JSON.stringify({ res, block, type: typeof Corestore }))
`

// a PATH with node and the system tools, but not cargo (~/.cargo/bin)
function cleanEnv() {
  const env = { ...process.env, npm_config_update_notifier: 'false' }
  delete env.CORESTORE_NATIVE_FORCE_BUILD
  env.PATH = [path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter)
  return env
}

test('the release tarballs install in seconds without a toolchain, and work from require and import', { skip, timeout: 600000 }, async (t) => {
  const packDir = tmpdir(t)
  const projDir = tmpdir(t)

  const out = run(process.execPath, [path.join(ROOT, 'scripts', 'pack-release.js'), '--out', packDir], ROOT)
  const { main, platforms } = JSON.parse(out.trim().split('\n').pop())
  const host = platforms.find((p) => path.basename(p).startsWith('corestore-native-linux-x64-gnu-'))
  assert.ok(host, 'the linux-x64-gnu package is packed: ' + platforms.join(', '))
  const mainFiles = run('tar', ['tzf', main], packDir).split('\n')
  assert.ok(mainFiles.includes('package/index.js'), 'index.js is packed')
  assert.ok(!mainFiles.some((f) => f.endsWith('.node')), 'the main package has no addon')
  assert.ok(!mainFiles.some((f) => f.startsWith('package/src/') || f.startsWith('package/__test__/')))
  assert.ok(run('tar', ['tzf', host], packDir).includes('corestore-native.linux-x64-gnu.node'))

  run(NPM, ['init', '-y'], projDir)
  const env = cleanEnv()
  assert.throws(() => execFileSync('cargo', ['--version'], { env, stdio: 'ignore' }), 'no cargo on this PATH')
  const started = Date.now()
  execFileSync(NPM, ['install', main, host, '--no-audit', '--no-fund'], { cwd: projDir, env, stdio: 'pipe', timeout: 300000 })
  const seconds = (Date.now() - started) / 1000
  console.log(`# install of the release tarballs, no toolchain on PATH: ${seconds.toFixed(1)} s`)
  assert.ok(seconds < 30, `install took ${seconds} s`)

  const installed = path.join(projDir, 'node_modules', 'corestore-native')
  const deps = Object.keys(JSON.parse(fs.readFileSync(path.join(installed, 'package.json'))).dependencies || {})
  assert.deepEqual(deps.sort(), ['compact-encoding', 'protomux', 'streamx'], 'runtime dependencies')

  const ref = require.resolve('corestore')
  const cjs = JSON.parse(
    execFileSync(process.execPath, ['-e', CJS], { cwd: projDir, env: { ...env, REF_CORESTORE: ref }, encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()
  )
  assert.deepEqual(cjs.res, { length: 2, byteLength: 10 })
  assert.equal(cjs.fromJs, 'world', 'JS corestore replicated from the installed package')
  assert.equal(cjs.type, 'function')
  assert.ok(cjs.resolved.startsWith(installed), 'resolved from the installed package: ' + cjs.resolved)
  assert.ok(cjs.addon.includes('corestore-native-linux-x64-gnu'), 'the addon came from the platform package')

  const esmFile = path.join(projDir, 'check.mjs')
  fs.writeFileSync(esmFile, ESM)
  const esm = JSON.parse(run(process.execPath, [esmFile], projDir).trim().split('\n').pop())
  assert.deepEqual(esm, { res: { length: 1, byteLength: 3 }, block: 'esm', type: 'function' })
})
