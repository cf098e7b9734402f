'use strict'
// Crash contract: a writer SIGKILLed at random moments leaves a store that reopens with every
// acknowledged append, every block intact, a consistent merkle tree and a valid signed head.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('path')
const { spawn } = require('child_process')
const b4a = require('b4a')
const JSCorestore = require('corestore')
const Corestore = require('./helpers/impl.js')
const {
  tmpdir,
  hex,
  blockFor,
  treeHashOf,
  exposedSignature,
  verifyHeadSignature,
  delay
} = require('./helpers/util.js')

const WRITER = path.join(__dirname, 'helpers', 'crash-writer.js')
const ROUNDS = 15

// Spawns the writer, kills it with SIGKILL after killAfter ms (counted from spawn, or from its
// 'ready' line when fromReady), resolves with the last committed length it reported.
function runWriter(dir, killAfter, fromReady) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env
    })
    let committed = -1
    let ready = false
    let buffered = ''
    let stderr = ''
    let timer = null
    const kill = () => child.kill('SIGKILL')
    if (!fromReady) timer = setTimeout(kill, killAfter)
    const fallback = setTimeout(kill, 20000) // never hang the suite

    child.stdout.on('data', (data) => {
      buffered += data
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        const [what, n] = line.split(' ')
        if (what === 'ready') {
          ready = true
          committed = Math.max(committed, Number(n))
          if (fromReady) timer = setTimeout(kill, killAfter)
        } else if (what === 'committed') {
          committed = Number(n)
        }
      }
    })
    child.stderr.on('data', (data) => {
      stderr += data
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(fallback)
      if (signal !== 'SIGKILL') {
        reject(new Error(`writer exited by itself (code ${code}, signal ${signal}): ${stderr}`))
        return
      }
      resolve({ committed, ready })
    })
  })
}

async function checkStore(C, dir, committed, round) {
  const store = new C(dir)
  const core = store.get({ name: 'crash' })
  await core.ready()
  const at = `round ${round}`
  assert.ok(
    core.length >= committed,
    `${at}: length ${core.length} < last committed length ${committed}`
  )
  const blocks = []
  let byteLength = 0
  for (let i = 0; i < core.length; i++) {
    const block = await core.get(i, { wait: false })
    assert.ok(block, `${at}: block ${i} of ${core.length} is missing`)
    assert.equal(hex(block), hex(blockFor(i)), `${at}: block ${i} content`)
    blocks.push(block)
    byteLength += block.byteLength
  }
  assert.equal(core.byteLength, byteLength, `${at}: byteLength`)
  const treeHash = await core.treeHash()
  assert.equal(hex(treeHash), hex(treeHashOf(blocks)), `${at}: treeHash vs recomputed tree`)
  const sig = exposedSignature(core)
  if (sig !== undefined && core.length > 0) {
    assert.ok(
      verifyHeadSignature({
        signature: sig,
        key: core.key,
        publicKey: core.manifest.signers[0].publicKey,
        treeHash,
        length: core.length,
        fork: core.fork
      }),
      `${at}: head signature`
    )
  }
  const result = { length: core.length, treeHash: hex(treeHash), key: hex(core.key) }
  await store.close()
  return result
}

test('SIGKILLed writer: every committed append survives, tree and head stay valid', { timeout: 110000 }, async (t) => {
  const dir = tmpdir(t)
  let lastCommitted = 0
  let lastLength = 0
  let readyRounds = 0
  for (let round = 0; round < ROUNDS; round++) {
    const killAfter = 50 + Math.floor(Math.random() * 351)
    const fromReady = round % 4 !== 3 // every 4th round may die while opening
    const { committed, ready } = await runWriter(dir, killAfter, fromReady)
    if (ready) readyRounds++
    lastCommitted = Math.max(lastCommitted, committed)
    const state = await checkStore(Corestore, dir, lastCommitted, round)
    assert.ok(state.length >= lastLength, `round ${round}: length went backwards`)
    lastLength = state.length
  }
  t.diagnostic(`final length ${lastLength}, last committed ${lastCommitted}, rounds that reached ready: ${readyRounds}/${ROUNDS}`)
  assert.ok(readyRounds > 0, 'the writer never got to append')
  assert.ok(lastLength > 0, 'nothing was ever appended')

  // the stored signed head, as the JS package reads it
  const mine = await checkStore(Corestore, dir, lastCommitted, 'final (impl)')
  const js = await checkStore(JSCorestore, dir, lastCommitted, 'final (JS)')
  assert.deepEqual(js, mine)
  const store = new JSCorestore(dir)
  const core = store.get({ name: 'crash' })
  await core.ready()
  const signature = exposedSignature(core)
  assert.ok(signature, 'JS finds a signed head')
  assert.ok(
    verifyHeadSignature({
      signature,
      key: core.key,
      publicKey: core.manifest.signers[0].publicKey,
      treeHash: await core.treeHash(),
      length: core.length,
      fork: core.fork
    }),
    'stored head signature verifies'
  )
  // and the store is still writable after all the crashes
  await core.append(blockFor(core.length))
  await store.close()
  await delay(0)
})
