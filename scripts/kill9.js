'use strict'
// kill -9 loop: a child (scripts/kill9-writer.js) appends and truncates on three cores of a
// corestore-native store and reports each change it began and each it saw acknowledged; this
// script SIGKILLs it at random moments (opening included), then reopens the store in
// corestore-native *and* in JS corestore and checks every core: it is in its last
// acknowledged state, or in the state of the one change that was in flight; every block is
// there with its content; the tree hash is that of those blocks; the signed head verifies.
//
//   node scripts/kill9.js [--kills N] [--seed S]     (CI runs a bounded count; the closing
//                                                     notes' long run uses --kills 1000)
const { spawn } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('hypercore-crypto')
const c = require('compact-encoding')
const caps = require('hypercore/lib/caps')
const { multiSignature } = require('hypercore/messages')
const JSCorestore = require('corestore')
const Corestore = require('..')
const { block, random: xorshift, CORES } = require('./kill9-blocks.js')

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(name)
  return i === -1 ? def : Number(args[i + 1])
}
const KILLS = opt('--kills', 30)
const SEED = opt('--seed', Date.now() % 100000)

const random = xorshift(SEED >>> 0 || 7)

// What a core holds: its blocks and fork, as the writer's acknowledged changes made it.
function apply(state, op) {
  const next = { fork: state.fork, blocks: state.blocks.slice() }
  if (op.kind === 'truncate') {
    next.blocks.length = op.arg
    next.fork++
  } else {
    const at = next.blocks.length
    for (let i = 0; i < op.arg; i++) next.blocks.push(block(op.core, at + i, next.fork))
  }
  return next
}

// Runs the writer until it is killed; resolves with its acknowledged and in-flight changes.
function runWriter(dir, killAfter, seed) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'kill9-writer.js'), dir, String(seed)], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const acked = []
    let pending = null
    let buffered = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfter)
    child.stdout.on('data', (data) => {
      buffered += data
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const [what, core, kind, arg] = buffered.slice(0, nl).split(' ')
        buffered = buffered.slice(nl + 1)
        if (what === 'begin') pending = { core: Number(core), kind, arg: Number(arg) }
        else if (what === 'ack') {
          acked.push(pending)
          pending = null
        }
      }
    })
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (signal !== 'SIGKILL') reject(new Error(`writer exited (${code}): ${stderr}`))
      else resolve({ acked, pending })
    })
  })
}

function treeHashOf(blocks) {
  // the merkle roots of the blocks, hashed as hypercore does
  const flat = require('flat-tree')
  const nodes = new Map()
  const get = (i) => {
    if (nodes.has(i)) return nodes.get(i)
    const [l, r] = flat.children(i)
    const a = get(l)
    const b = get(r)
    const n = { index: i, size: a.size + b.size, hash: crypto.parent(a, b) }
    nodes.set(i, n)
    return n
  }
  blocks.forEach((b, i) => nodes.set(2 * i, { index: 2 * i, size: b.byteLength, hash: crypto.data(b) }))
  return crypto.tree(flat.fullRoots(2 * blocks.length).map(get))
}

async function headVerifies(impl, core, treeHash) {
  if (core.length === 0) return true
  if (impl === 'native') return core.signedLength === core.length // verified when it opened
  let sig = core.core.state.signature
  if (sig.byteLength !== 64) sig = c.decode(multiSignature, sig).proofs[0].signature
  const signable = caps.treeSignable(core.key, treeHash, core.length, core.fork)
  return crypto.verify(signable, sig, core.manifest.signers[0].publicKey)
}

// Checks the store against the candidate states of each core; returns the states found.
async function check(impl, dir, candidates) {
  const store = impl === 'native' ? new Corestore(dir) : new JSCorestore(dir)
  const found = []
  try {
    for (let i = 0; i < CORES.length; i++) {
      const core = store.get({ name: CORES[i] })
      await core.ready()
      const blocks = []
      for (let b = 0; b < core.length; b++) blocks.push(await core.get(b, { wait: false }))
      const hash = await core.treeHash()
      const match = candidates[i].find(
        (s) =>
          s.blocks.length === blocks.length &&
          s.fork === core.fork &&
          s.blocks.every((b, j) => blocks[j] !== null && b.equals(blocks[j]))
      )
      if (!match) {
        throw new Error(
          `${impl}: core ${CORES[i]} has length ${core.length} fork ${core.fork}, expected one of ` +
            candidates[i].map((s) => `${s.blocks.length}/${s.fork}`).join(', ')
        )
      }
      if (!hash.equals(treeHashOf(match.blocks))) throw new Error(`${impl}: ${CORES[i]}: tree hash differs`)
      if (!(await headVerifies(impl, core, hash))) throw new Error(`${impl}: ${CORES[i]}: signature does not verify`)
      found.push(match)
    }
  } finally {
    await store.close()
  }
  return found
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-kill9-'))
  let states = CORES.map(() => ({ fork: 0, blocks: [] }))
  const started = Date.now()
  let ops = 0
  let inFlightLanded = 0
  try {
    for (let k = 1; k <= KILLS; k++) {
      // mostly mid-run; one in five early, while the store opens
      const killAfter = random(5) === 0 ? random(120) : 80 + random(400)
      const { acked, pending } = await runWriter(dir, killAfter, SEED + k)
      for (const op of acked) states[op.core] = apply(states[op.core], op)
      ops += acked.length
      const candidates = states.map((s, i) => (pending && pending.core === i ? [s, apply(s, pending)] : [s]))
      const native = await check('native', dir, candidates)
      const js = await check('js', dir, candidates)
      for (let i = 0; i < CORES.length; i++) {
        if (native[i] !== js[i]) throw new Error(`native and JS see different states of ${CORES[i]}`)
        if (native[i] !== states[i]) inFlightLanded++
      }
      states = native
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1)
  console.log(
    `kill9: ${KILLS} kills survived, 0 failures (seed ${SEED}, ${ops} acknowledged changes, ` +
      `${inFlightLanded} in-flight changes found landed, ${secs} s); every core reopened in ` +
      'corestore-native and JS corestore in its acknowledged state'
  )
}

main().catch((err) => {
  console.error(`kill9: FAILED (seed ${SEED}): ${err.stack || err}`)
  process.exit(1)
})
