'use strict'
// Libraries built on corestore, run unchanged on the implementation: a Hyperdrive written
// on one side and read on the other, in every pairing with JS corestore.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const JSCorestore = require('corestore')
const Hyperdrive = require('hyperdrive')
const Corestore = require('./helpers/impl.js')
const { tmpdir } = require('./helpers/util.js')

const FILES = {
  '/hello.txt': 'world',
  '/dir/a.txt': 'A'.repeat(70000), // more than one blob block
  '/dir/sub/b.bin': 'binary\x00data'
}

async function entries(drive) {
  const out = {}
  for await (const e of drive.list('/', { recursive: true })) {
    if (e.value.linkname) continue
    out[e.key] = b4a.toString(await drive.get(e.key), 'latin1')
  }
  return out
}

const pairs = [
  ['the implementation', Corestore, 'JS', JSCorestore],
  ['JS', JSCorestore, 'the implementation', Corestore],
  ['the implementation', Corestore, 'the implementation', Corestore]
]

for (const [wName, W, rName, R] of pairs) {
  test(`Hyperdrive written by ${wName} is read by ${rName} over a replication stream`, async (t) => {
    const a = new W(tmpdir(t))
    const b = new R(tmpdir(t))
    const drive = new Hyperdrive(a)
    for (const [path, data] of Object.entries(FILES)) await drive.put(path, b4a.from(data, 'latin1'))
    await drive.symlink('/link', '/hello.txt')

    const s1 = a.replicate(true)
    const s2 = b.replicate(false)
    s1.pipe(s2).pipe(s1)

    const clone = new Hyperdrive(b, drive.key)
    await clone.ready()
    const done = clone.findingPeers()
    done()
    await clone.update({ wait: true })

    assert.equal(clone.version, drive.version)
    assert.deepEqual(await entries(clone), FILES)
    assert.equal((await clone.entry('/link')).value.linkname, '/hello.txt')
    assert.equal(clone.writable, false)

    // the writer goes on; the reader follows (update() answers at once when the writer's
    // announcement has not reached it yet, on JS too: wait for the reader's core to grow)
    const grown = new Promise((resolve) => clone.core.once('append', resolve))
    await drive.put('/later.txt', b4a.from('later'))
    await grown
    await clone.update({ wait: true })
    assert.equal(b4a.toString(await clone.get('/later.txt')), 'later')

    s1.destroy()
    s2.destroy()
    await Promise.all([drive.close(), clone.close()])
    await Promise.all([a.close(), b.close()])
  })
}

// Autobase: two indexers, one on each side, append concurrently over one replication
// stream and converge on the same view, signed by both (a multisig over the view).
const Autobase = require('autobase')

function autobase(store, bootstrap) {
  return new Autobase(store, bootstrap, {
    valueEncoding: 'json',
    open: (s) => s.get('view', { valueEncoding: 'json' }),
    apply: async (nodes, view, host) => {
      for (const { value } of nodes) {
        if (value.add) await host.addWriter(b4a.from(value.add, 'hex'), { indexer: true })
        else await view.append(value)
      }
    }
  })
}

async function viewOf(base) {
  const out = []
  for (let i = 0; i < base.view.length; i++) out.push(await base.view.get(i))
  return out
}

// until both views are whole and signed by both indexers. As autobase's own tests confirm:
// once both see the same heads, one writer at a time acks (appends null) what it has seen.
async function converged(bases, ms) {
  const deadline = Date.now() + ms
  const heads = (b) => b.heads().map((h) => b4a.toString(h.key, 'hex') + ':' + h.length).sort().join()
  let turn = 0
  while (Date.now() < deadline) {
    for (const b of bases) await b.update()
    const [x, y] = bases
    if (heads(x) !== heads(y)) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      continue
    }
    const signed = (b) => b.view.signedLength === b.view.length
    if (x.view.length === y.view.length && signed(x) && signed(y) && b4a.equals(await x.hash(), await y.hash())) return
    await bases[turn++ % bases.length].append(null)
  }
  const state = (b) => `view ${b.view.length}/${b.view.signedLength} system ${b.system.core.length}/${b.system.core.signedLength} indexer ${b.isIndexer} heads ${heads(b)}`
  throw new Error(`the two bases did not converge in ${ms} ms: ${bases.map(state).join(' | ')}`)
}

const basePairs = [
  ['the implementation', Corestore, 'JS', JSCorestore],
  ['JS', JSCorestore, 'the implementation', Corestore],
  ['the implementation', Corestore, 'the implementation', Corestore]
]

for (const [aName, A, bName, B] of basePairs) {
  test(`Autobase: a writer on ${aName} and one on ${bName} converge`, async (t) => {
    const sa = new A(tmpdir(t))
    const sb = new B(tmpdir(t))
    const a = autobase(sa, null)
    await a.ready()
    const b = autobase(sb, a.key)
    await b.ready()

    const s1 = a.replicate(true)
    const s2 = b.replicate(false)
    s1.pipe(s2).pipe(s1)

    await a.append({ add: b4a.toString(b.local.key, 'hex') })
    const deadline = Date.now() + 10000
    while (!b.writable && Date.now() < deadline) await b.update().then(() => new Promise((resolve) => setTimeout(resolve, 20)))
    assert.equal(b.writable, true, 'the second writer was added')

    for (let i = 0; i < 10; i++) {
      await Promise.all([a.append({ from: 'a', i }), b.append({ from: 'b', i })])
    }
    await converged([a, b], 20000)

    const va = await viewOf(a)
    assert.deepEqual(await viewOf(b), va)
    assert.equal(va.length, 20)
    assert.deepEqual(va.filter((v) => v.from === 'a').map((v) => v.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert.deepEqual(va.filter((v) => v.from === 'b').map((v) => v.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert.equal(a.isIndexer && b.isIndexer, true)

    s1.destroy()
    s2.destroy()
    await Promise.all([a.close(), b.close()])
    await Promise.all([sa.close(), sb.close()])
  })
}
