'use strict'
// Packaging: `npm pack` the repo, install the tarball into an empty project, and use it from
// CommonJS and ESM. Slow and needs the npm registry (for streamx): only with PACK_TEST=1.
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

const CJS = `
const Corestore = require('corestore-native')
const fs = require('fs'), os = require('os'), path = require('path')
;(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-pack-'))
  const store = new Corestore(dir)
  const core = store.get({ name: 'packed' })
  await core.ready()
  const res = await core.append([Buffer.from('hello'), Buffer.from('world')])
  const block = (await core.get(1)).toString()
  const key = core.key.toString('hex')
  await store.close()
  const again = new Corestore(dir)
  const c2 = again.get({ name: 'packed' })
  await c2.ready()
  const out = { res, block, sameKey: c2.key.toString('hex') === key, length: c2.length,
    resolved: require.resolve('corestore-native'), type: typeof Corestore }
  await again.close()
  fs.rmSync(dir, { recursive: true, force: true })
  console.log(JSON.stringify(out))
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

test('npm pack, install into an empty project, require and import', { skip, timeout: 600000 }, async (t) => {
  const packDir = tmpdir(t)
  const projDir = tmpdir(t)

  const packed = JSON.parse(run(NPM, ['pack', '--json', '--pack-destination', packDir], ROOT))
  const tarball = path.join(packDir, packed[0].filename)
  assert.ok(fs.existsSync(tarball), 'tarball written')
  const files = packed[0].files.map((f) => f.path)
  assert.ok(files.includes('index.js'), 'index.js is packed')
  assert.ok(files.includes('package.json'))
  assert.ok(!files.some((f) => f.startsWith('__test__/')), 'tests are not packed')
  assert.ok(!files.some((f) => f.startsWith('src/')), 'Rust sources are not packed')

  run(NPM, ['init', '-y'], projDir)
  run(NPM, ['install', tarball, '--ignore-scripts=false', '--no-audit', '--no-fund'], projDir)
  const installed = path.join(projDir, 'node_modules', 'corestore-native')
  assert.ok(fs.existsSync(path.join(installed, 'package.json')))
  const deps = Object.keys(JSON.parse(fs.readFileSync(path.join(installed, 'package.json'))).dependencies || {})
  // streamx for the streams, protomux to share a Hyperswarm connection's multiplexer,
  // compact-encoding for extension messages (as hypercore encodes them)
  assert.deepEqual(deps.sort(), ['compact-encoding', 'protomux', 'streamx'], 'runtime dependencies')

  const cjs = JSON.parse(run(process.execPath, ['-e', CJS], projDir).trim().split('\n').pop())
  assert.deepEqual(cjs.res, { length: 2, byteLength: 10 })
  assert.equal(cjs.block, 'world')
  assert.equal(cjs.sameKey, true)
  assert.equal(cjs.length, 2)
  assert.equal(cjs.type, 'function')
  assert.ok(cjs.resolved.startsWith(installed), 'resolved from the installed package: ' + cjs.resolved)

  const esmFile = path.join(projDir, 'check.mjs')
  fs.writeFileSync(esmFile, ESM)
  const esm = JSON.parse(run(process.execPath, [esmFile], projDir).trim().split('\n').pop())
  assert.deepEqual(esm, { res: { length: 1, byteLength: 3 }, block: 'esm', type: 'function' })
})
