'use strict'
// These are corestore-native's guarantees; JS corestore does not give all of them (it moves a
// foreign directory's files into db/, and accepts get('1')), so this file is not run against it.
// Bad input of every kind gives an Error with a code, never a crash, never a partial write,
// and leaves the store usable: a directory held by another process, foreign and corrupt
// directories, wrong argument types and ranges.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('fs')
const path = require('path')
const { spawn } = require('child_process')
const Corestore = require('./helpers/impl.js')
const { tmpdir } = require('./helpers/util.js')

function isCodedError(err) {
  return err instanceof Error && typeof err.code === 'string' && err.code.length > 0
}

async function rejects(p, what) {
  try {
    await p
  } catch (err) {
    assert.ok(isCodedError(err), `${what}: expected an Error with a code, got ${err && err.stack}`)
    return err
  }
  assert.fail(`${what}: expected an error`)
}

function fails(fn, what) {
  let r
  try {
    r = fn()
  } catch (err) {
    assert.ok(err instanceof Error, `${what}: expected an Error, got ${err}`)
    return Promise.resolve(err)
  }
  return rejects(r, what)
}

// A child process that opens the store, appends, and holds it open until stdin closes.
function holdInChild(dir) {
  const impl = require.resolve('./helpers/impl.js')
  const src = `
    const Corestore = require(${JSON.stringify(impl)})
    const store = new Corestore(${JSON.stringify(dir)})
    const core = store.get({ name: 'held' })
    core.ready().then(() => core.append('from-child')).then(() => {
      process.stdout.write('ready\\n')
      process.stdin.on('end', () => store.close().then(() => process.exit(0)))
      process.stdin.resume()
    }, (err) => { console.error(err); process.exit(1) })
  `
  const child = spawn(process.execPath, ['-e', src], { stdio: ['pipe', 'pipe', 'inherit'] })
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve())
    child.on('exit', (code) => reject(new Error('child exited ' + code)))
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  return { ready, release: () => (child.stdin.end(), exited) }
}

test('a store held by another process is refused with a code, then opens once released', async (t) => {
  const dir = tmpdir(t)
  const child = holdInChild(dir)
  await child.ready

  const store = new Corestore(dir)
  const err = await rejects(store.ready(), 'second process')
  assert.match(err.message, /lock|use|open/i)
  await store.close().catch(() => {})

  assert.equal(await child.release(), 0)
  const again = new Corestore(dir)
  const core = again.get({ name: 'held' })
  await core.ready()
  assert.equal(core.length, 1)
  assert.equal(String(await core.get(0)), 'from-child')
  await again.close()
})

test('the same directory opened twice in one process: the second open fails cleanly', async (t) => {
  const dir = tmpdir(t)
  const a = new Corestore(dir)
  await a.ready()
  const b = new Corestore(dir)
  await rejects(b.ready(), 'second open in process')
  await b.close().catch(() => {})
  const core = a.get({ name: 'still-usable' })
  await core.append('x')
  assert.equal(core.length, 1)
  await a.close()
})

test('a foreign directory is refused and left untouched', async (t) => {
  const dir = tmpdir(t)
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a corestore')
  fs.mkdirSync(path.join(dir, 'photos'))
  const store = new Corestore(dir)
  await rejects(store.ready(), 'foreign directory')
  await store.close().catch(() => {})
  assert.deepEqual(fs.readdirSync(dir).sort(), ['notes.txt', 'photos'])
  assert.equal(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8'), 'not a corestore')
})

test('corrupt store files give an error, and other stores in the process keep working', async (t) => {
  const good = tmpdir(t)
  const goodStore = new Corestore(good)
  const goodCore = goodStore.get({ name: 'fine' })
  await goodCore.append('ok')

  // A garbled device file.
  const a = tmpdir(t)
  const s1 = new Corestore(a)
  await s1.get({ name: 'x' }).append('data')
  await s1.close()
  fs.writeFileSync(path.join(a, 'CORESTORE'), 'garbage\x00\x01')
  const r1 = new Corestore(a)
  await rejects(r1.ready(), 'garbled CORESTORE')
  await r1.close().catch(() => {})

  // A garbled RocksDB manifest pointer.
  const b = tmpdir(t)
  const s2 = new Corestore(b)
  await s2.get({ name: 'x' }).append('data')
  await s2.close()
  fs.writeFileSync(path.join(b, 'db', 'CURRENT'), 'MANIFEST-999999\n')
  const r2 = new Corestore(b)
  await rejects(r2.ready(), 'garbled db/CURRENT')
  await r2.close().catch(() => {})

  await goodCore.append('still ok')
  assert.equal(goodCore.length, 2)
  await goodStore.close()
})

test('wrong argument types and ranges are errors and write nothing', async (t) => {
  const dir = tmpdir(t)
  const store = new Corestore(dir)
  const core = store.get({ name: 'args' })
  await core.append(['a', 'b', 'c'])
  const before = { length: core.length, byteLength: core.byteLength }

  await fails(() => core.append(123), 'append(number)')
  await fails(() => core.append([Buffer.from('ok'), 5]), 'append with one bad block in a batch')
  await fails(() => core.append({ not: 'a buffer' }), 'append(object)')
  assert.deepEqual({ length: core.length, byteLength: core.byteLength }, before, 'nothing of a bad batch is written')

  await fails(() => core.get(-1), 'get(-1)')
  await fails(() => core.get('1'), "get('1')")
  await fails(() => core.truncate(10), 'truncate beyond length')
  await fails(() => core.truncate(-1), 'truncate(-1)')
  await fails(() => core.seek(-5), 'seek(-5)')
  await fails(() => core.treeHash(99), 'treeHash beyond length')
  await fails(() => core.setUserData(5, Buffer.from('v')), 'setUserData(number key)')

  await fails(() => store.get(Buffer.alloc(31)), '31-byte key')
  await fails(() => store.get('not-a-key'), 'bad string key')
  await fails(() => store.get({}), 'no key, name or discovery key')
  await fails(() => store.get({ keyPair: { publicKey: Buffer.alloc(3) } }), 'short keyPair')
  await fails(() => store.get({ manifest: { signers: [{ publicKey: Buffer.alloc(8) }] } }), 'bad manifest')
  await fails(() => store.createKeyPair(42), 'createKeyPair(number)')

  // The store and the core are still fine, and so is the data.
  await core.append('d')
  assert.equal(core.length, 4)
  assert.equal(String(await core.get(2)), 'c')
  await store.close()

  const reopened = new Corestore(dir)
  const again = reopened.get({ name: 'args' })
  await again.ready()
  assert.equal(again.length, 4)
  await reopened.close()
})

test('operations on a closed store or session are errors, not crashes', async (t) => {
  const dir = tmpdir(t)
  const store = new Corestore(dir)
  const core = store.get({ name: 'closing' })
  await core.append('a')
  await store.close()
  await fails(() => core.append('b'), 'append after close')
  await fails(() => core.get(0), 'get after close')
  assert.throws(() => store.get({ name: 'x' }), /closed/)
})
