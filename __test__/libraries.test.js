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

    // the writer goes on; the reader follows
    await drive.put('/later.txt', b4a.from('later'))
    await clone.update({ wait: true })
    assert.equal(b4a.toString(await clone.get('/later.txt')), 'later')

    s1.destroy()
    s2.destroy()
    await Promise.all([drive.close(), clone.close()])
    await Promise.all([a.close(), b.close()])
  })
}
