'use strict'
// Shared by scripts/kill9.js and its writer: the blocks the writer appends (a function of
// the core, the index and the core's fork at the time, so the parent can tell exactly what
// each acknowledged block holds) and the seeded random choices both make.

const CORES = ['k9-a', 'k9-b', 'k9-c']

function block(core, index, fork) {
  const tag = Buffer.from(`${CORES[core]}:${index}:${fork};`)
  const size = 1 + ((index * 131 + core * 17 + fork * 7) % 600)
  const out = Buffer.alloc(size)
  for (let i = 0; i < size; i += tag.length) tag.copy(out, i, 0, Math.min(tag.length, size - i))
  return out
}

// xorshift32: the same choices for the same seed (the loop's runs can be replayed)
function random(seed) {
  let x = seed >>> 0 || 1
  return function below(n) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x % n
  }
}

module.exports = { block, random, CORES }
