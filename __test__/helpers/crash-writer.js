'use strict'
// Child process for crash.test.js: opens the implementation on argv[2], opens the core named
// 'crash' and appends deterministic blocks (blockFor(index)) forever, mixing single and
// batched appends. After each awaited append it prints the committed length on stdout.
// The parent SIGKILLs it at random moments. It stops growing at CRASH_MAX_BLOCKS blocks.
const Corestore = require('./impl.js')
const { blockFor } = require('./util.js')

const dir = process.argv[2]
// keeps the parent's per-round full verification cheap with a fast implementation
const MAX_BLOCKS = Number(process.env.CRASH_MAX_BLOCKS || 25000)
if (!dir) {
  console.error('usage: crash-writer.js STORE_DIR')
  process.exit(2)
}

async function main() {
  const store = new Corestore(dir)
  const core = store.get({ name: 'crash' })
  await core.ready()
  process.stdout.write('ready ' + core.length + '\n')
  let n = 0
  while (true) {
    const length = core.length
    if (length >= MAX_BLOCKS) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      continue
    }
    const batch = n++ % 3 === 0 ? 1 + (n % 7) : 1
    if (batch === 1) {
      await core.append(blockFor(length))
    } else {
      const blocks = []
      for (let i = 0; i < batch; i++) blocks.push(blockFor(length + i))
      await core.append(blocks)
    }
    process.stdout.write('committed ' + core.length + '\n')
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
