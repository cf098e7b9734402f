'use strict'
// The child of scripts/kill9.js: opens a store on argv[2] with corestore-native, then appends
// and truncates on three cores in random batches forever. Before each change it prints
// `begin ...`, after it `ack ...`, so the parent knows what was acknowledged and what may
// have been in flight when it SIGKILLs this process.
const Corestore = require('..')
const { block, random: xorshift, CORES } = require('./kill9-blocks.js')

const dir = process.argv[2]
const seed = Number(process.argv[3] || 1)
const MAX_LENGTH = 1500 // per core, so the parent's full check stays cheap

const random = xorshift(seed >>> 0 || 1)

async function main() {
  const store = new Corestore(dir)
  const cores = CORES.map((name) => store.get({ name }))
  await Promise.all(cores.map((c) => c.ready()))
  process.stdout.write('ready\n')
  while (true) {
    const c = random(cores.length)
    const core = cores[c]
    const truncate = core.length > 0 && (random(5) === 0 || core.length >= MAX_LENGTH)
    if (truncate) {
      const to = Math.max(0, core.length - 1 - random(Math.min(core.length, 40)))
      process.stdout.write(`begin ${c} truncate ${to}\n`)
      await core.truncate(to)
      process.stdout.write(`ack ${c} truncate ${to}\n`)
      continue
    }
    const n = random(4) === 0 ? 1 : 1 + random(30)
    const blocks = []
    for (let i = 0; i < n; i++) blocks.push(block(c, core.length + i, core.fork))
    process.stdout.write(`begin ${c} append ${n}\n`)
    await core.append(blocks)
    process.stdout.write(`ack ${c} append ${n}\n`)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
