'use strict'
// Relay: writer → middle → reader over two in-process pipes; the middle is the
// implementation and only relays: it opens the core by key and calls core.download() (the
// whole core, live: what JS corestore needs for a middle to fetch what it does not read
// itself; without it a JS middle fetches nothing and the reader gets nothing). Chains:
// JS → impl → JS and impl → impl → impl (all JS with CORESTORE_IMPL=corestore).
// Checks: the reader gets every block byte-exactly, the manifest and the tree hash; live
// appends flow through; a middle that has everything serves it after the writer is gone.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const { treeHashOf } = require('./helpers/util.js')
const {
  JSCorestore,
  Impl,
  within,
  until,
  closed,
  env,
  pipeStores,
  variedBlocks,
  appendAll,
  shuffled,
  readAll,
  sameBuffer,
  sameManifest
} = require('./helpers/replication.js')

const CHAINS = [
  { id: 'js-impl-js', name: 'JS→impl→JS', Writer: JSCorestore, Middle: Impl, Reader: JSCorestore },
  { id: 'impl-impl-impl', name: 'impl→impl→impl', Writer: Impl, Middle: Impl, Reader: Impl }
].filter((c) => !process.env.CSN_CHAINS || process.env.CSN_CHAINS.split(',').includes(c.id))

const N = 300

// Waits until the core knows `length`, calling update() (bounded) on the way.
function reachLength(core, length, ms, what) {
  return until(
    async () => {
      if (core.length < length) await within(ms, core.update({ wait: true }), `${what}: update()`)
      return core.length >= length
    },
    ms,
    `${what}: length ${length}`,
    20
  )
}

async function chain(e, c, blocks) {
  const ws = e.store(c.Writer)
  const w = ws.get({ name: 'relayed' })
  await w.ready()
  await appendAll(w, blocks)
  const ms = e.store(c.Middle)
  const m = ms.get({ key: w.key })
  await m.ready()
  const range = m.download() // the middle's only action: download everything, live
  const rs = e.store(c.Reader)
  const r = rs.get({ key: w.key })
  await r.ready()
  return { ws, w, ms, m, rs, r, range }
}

for (const c of CHAINS) {
  test(`relay: reader gets every block through the middle [${c.name}]`, { timeout: 30000 }, async (t) => {
    const e = env(t)
    const blocks = variedBlocks(N, 'relay')
    const { ws, w, ms, m, rs, r } = await chain(e, c, blocks)
    pipeStores(e, ws, ms) // writer ↔ middle
    pipeStores(e, ms, rs) // middle ↔ reader

    await reachLength(r, N, 10000, 'reader via middle')
    sameManifest(r.manifest, w.manifest, 'reader learned the manifest through the middle')
    await readAll(r, blocks, { order: shuffled(N, 21), what: 'reader via middle' })
    sameBuffer(await r.treeHash(), treeHashOf(blocks), 'reader treeHash')
    assert.equal(r.peers.length, 1, 'the reader only peers with the middle')
    assert.equal(w.peers.length, 1, 'the writer only peers with the middle')
    await until(() => m.peers.length === 2, 5000, 'the middle peers with both')

    // live appends flow writer → middle → reader
    const more = variedBlocks(10, 'relay-live', N)
    await w.append(more)
    await reachLength(r, N + 10, 10000, 'reader sees live appends via middle')
    await readAll(r, blocks.concat(more), { order: shuffled(N + 10, 4).slice(0, 50), what: 'after live append' })
    for (let i = N; i < N + 10; i++) sameBuffer(await within(5000, r.get(i), `get(${i})`), more[i - N], `live block ${i}`)

    // the middle holds the whole core (its download() did that)
    await until(() => m.contiguousLength === N + 10, 10000, `middle has everything (at ${m.contiguousLength})`)
  })

  test(`relay: a middle that has everything serves it after the writer is gone [${c.name}]`, { timeout: 30000 }, async (t) => {
    const e = env(t)
    const blocks = variedBlocks(N, 'store-forward')
    const { ws, w, ms, m, rs, r } = await chain(e, c, blocks)
    const up = pipeStores(e, ws, ms)
    await until(() => m.contiguousLength === N, 10000, `middle downloads all ${N} blocks (at ${m.contiguousLength})`)
    sameManifest(m.manifest, w.manifest, 'middle manifest')
    const writerManifest = w.manifest

    up.s1.destroy()
    await closed(up.s1)
    await closed(up.s2)
    await until(() => m.peers.length === 0, 5000, 'middle lost the writer')
    await ws.close() // the writer is gone for good

    pipeStores(e, ms, rs)
    await reachLength(r, N, 10000, 'reader from the middle alone')
    await readAll(r, blocks, { what: 'reader from the middle alone' })
    sameBuffer(await r.treeHash(), treeHashOf(blocks), 'reader treeHash')
    sameManifest(r.manifest, writerManifest, 'reader manifest')
  })
}
