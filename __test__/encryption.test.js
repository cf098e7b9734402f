'use strict'
// Block encryption (get({ encryptionKey }) / { encryption }), against JS corestore: an
// encrypted core written by one implementation reads the same in the other (blocks, byte
// lengths, padding, seeks, the stored ciphertext), both directions on disk and over the
// wire, and the encryption options and session API behave as hypercore's.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const JSCorestore = require('corestore')
const Corestore = require('./helpers/impl.js')
const { tmpdir } = require('./helpers/util.js')
const { forEachPairing, within, pipeStores } = require('./helpers/replication.js')

const KEY = b4a.alloc(32, 7)
// the long ones span whole 1 KiB stretches of keystream (computed sixteen Salsa20 blocks at
// a time with AVX-512) and a rest
const BLOCKS = [
  'hello',
  'world',
  '',
  'a somewhat longer block of text',
  'z',
  'k'.repeat(1024),
  Array.from({ length: 2600 }, (_, i) => String.fromCharCode(33 + (i % 90))).join('')
]

// What a reader with the key sees, and the stored bytes.
async function view(core) {
  await core.ready()
  const out = { length: core.length, byteLength: core.byteLength, padding: core.padding }
  out.blocks = []
  out.raw = []
  for (let i = 0; i < core.length; i++) {
    out.blocks.push(b4a.toString(await core.get(i)))
    out.raw.push(b4a.toString(await core.get(i, { raw: true }), 'hex'))
  }
  out.seeks = []
  for (let bytes = 0; bytes <= out.byteLength + 1; bytes += 3) out.seeks.push(await core.seek(bytes, { wait: false }))
  out.info = { ...(await core.info()) }
  return out
}

for (const [Writer, Reader, title] of [
  [JSCorestore, Corestore, 'JS writes an encrypted core; the implementation reads it and appends; JS reads that'],
  [Corestore, JSCorestore, 'the implementation writes an encrypted core; JS reads it and appends; the implementation reads that']
]) {
  test(title, async (t) => {
    const dir = tmpdir(t)
    let store = new Writer(dir)
    let core = store.get({ name: 'secret', encryptionKey: KEY })
    await core.append(BLOCKS)
    const written = await view(core)
    await store.close()
    assert.equal(written.padding, 8, 'padding of an encrypted core')
    assert.equal(written.byteLength, BLOCKS.join('').length, 'byteLength counts the blocks, not the padding')
    assert.ok(written.raw.every((hex, i) => hex.length === 2 * (8 + BLOCKS[i].length)), 'stored blocks carry 8 bytes of padding')
    assert.ok(!written.raw[0].includes(b4a.toString(b4a.from('hello'), 'hex')), 'stored bytes are not the plaintext')

    store = new Reader(dir)
    core = store.get({ name: 'secret', encryptionKey: KEY })
    assert.deepEqual(await view(core), written, 'the other implementation sees the same')
    // without the key: the stored bytes, padding included
    const plain = store.get({ name: 'secret' })
    await plain.ready()
    assert.equal(plain.padding, 0)
    assert.equal(b4a.toString(await plain.get(0), 'hex'), written.raw[0], 'no key: the stored bytes')
    await core.append('appended by the other one')
    await store.close()

    store = new Writer(dir)
    core = store.get({ name: 'secret', encryptionKey: KEY })
    await core.ready()
    assert.equal(b4a.toString(await core.get(BLOCKS.length)), 'appended by the other one')
    await store.close()
  })
}

test('the same encrypted appends by JS and by the implementation store the same bytes', async (t) => {
  const primaryKey = b4a.alloc(32, 0x42)
  async function write(C) {
    const store = new C(tmpdir(t), { primaryKey, unsafe: true })
    const out = []
    for (const opts of [{ encryptionKey: KEY }, { encryption: KEY }, { encryption: { key: KEY } }]) {
      const core = store.get({ name: 'same', ...opts })
      await core.ready()
      if (core.length === 0) await core.append(BLOCKS)
      out.push((await view(core)).raw.join(','))
      await core.close()
    }
    const json = store.get({ name: 'json', encryptionKey: KEY, valueEncoding: 'json' })
    await json.append({ a: 1 })
    out.push(JSON.stringify(await json.get(0)), b4a.toString(await json.get(0, { raw: true }), 'hex'))
    await store.close()
    return out
  }
  assert.deepEqual(await write(Corestore), await write(JSCorestore))
})

forEachPairing('an encrypted core replicates; the reader decrypts with the key, sessions share it', async (t, p, e) => {
  const ws = e.store(p.Writer)
  const w = ws.get({ name: 'secret', encryptionKey: KEY })
  await w.append(BLOCKS)
  const rs = e.store(p.Reader)
  const r = rs.get({ key: w.key, encryptionKey: KEY })
  const bare = rs.get({ key: w.key }) // no key: sees what is stored
  await Promise.all([r.ready(), bare.ready()])
  pipeStores(e, ws, rs)
  await within(5000, r.update({ wait: true }), 'update')
  assert.equal(r.length, BLOCKS.length)
  for (let i = 0; i < BLOCKS.length; i++) {
    assert.equal(b4a.toString(await within(5000, r.get(i), `get(${i})`)), BLOCKS[i])
  }
  assert.equal(r.byteLength, w.byteLength, 'byteLength without padding')
  assert.equal(r.padding, 8)
  assert.deepEqual(await bare.get(1), await w.get(1, { raw: true }), 'a session without the key reads the stored bytes')

  const child = r.session()
  assert.equal(b4a.toString(await child.get(0)), 'hello', 'a session inherits the encryption')
  await bare.setEncryptionKey(KEY)
  assert.equal(b4a.toString(await bare.get(1)), 'world', 'setEncryptionKey')
  await w.append('live')
  assert.equal(b4a.toString(await within(5000, r.get(BLOCKS.length), 'live get')), 'live')
})

test('setEncryption rejects what is not a provider; a provider of the application is used', async (t) => {
  const store = new Corestore(tmpdir(t))
  const core = store.get({ name: 'custom' })
  await core.ready()
  await assert.rejects(core.setEncryption({ encrypt() {} }), (err) => err.code === 'ERR_ASSERTION')
  // a provider that XORs every byte after 4 bytes of padding with 0xff
  const xor = (block) => {
    for (let i = 4; i < block.length; i++) block[i] ^= 0xff
  }
  await core.setEncryption({ padding: () => 4, encrypt: (index, block) => xor(block), decrypt: (index, block) => xor(block) })
  await core.append('abc')
  assert.equal(b4a.toString(await core.get(0)), 'abc')
  const raw = await core.get(0, { raw: true })
  assert.equal(raw.length, 7)
  assert.deepEqual([...raw.subarray(4)], [0x9e, 0x9d, 0x9c])
  assert.equal(core.byteLength, 3)
  await store.close()
})

const same = require('./helpers/same.js')

// corestore merges an async `preload` into get()'s options, encryption included (Autobase
// hands its views their encryption that way)
same("a preload's encryption option encrypts the session", async (C, dir) => {
  const store = new C(dir, { primaryKey: b4a.alloc(32, 1), unsafe: true })
  const preload = (async () => ({ name: 'view', encryption: { key: KEY } }))()
  const core = store.get({ preload, valueEncoding: 'utf-8' })
  await core.append('you should not see me')
  const raw = await core.get(0, { raw: true })
  const direct = store.get({ name: 'view', encryption: { key: KEY }, valueEncoding: 'utf-8' })
  const out = {
    padding: core.padding,
    value: await core.get(0),
    raw: b4a.toString(raw, 'hex'),
    plaintextStored: b4a.toString(raw).includes('you should not see me'),
    direct: await direct.get(0)
  }
  await store.close()
  return out
}, (r) => {
  assert.equal(r.padding, 8)
  assert.equal(r.plaintextStored, false)
  assert.equal(r.direct, 'you should not see me')
})

// hypercore encrypts under the state's lock: with a provider that awaits (Autobase's),
// appends started together still encrypt each block at the index it lands at
same('an async encryption provider: concurrent appends encrypt at their own index', async (C, dir) => {
  const store = new C(dir)
  const core = store.get({ name: 'async', valueEncoding: 'utf-8' })
  await core.ready()
  const xor = (index, block) => {
    for (let i = 4; i < block.length; i++) block[i] ^= index + 1
  }
  await core.setEncryption({
    padding: () => 4,
    async encrypt(index, block) {
      await new Promise((resolve) => setImmediate(resolve))
      block.writeUInt32LE(index, 0)
      xor(index, block)
    },
    async decrypt(index, block) {
      await new Promise((resolve) => setImmediate(resolve))
      xor(index, block)
    }
  })
  const infos = await Promise.all([core.append('a'), core.append(['b', 'c']), core.append('d')])
  const out = { infos, values: [], written: [] }
  for (let i = 0; i < core.length; i++) {
    out.values.push(await core.get(i))
    out.written.push((await core.get(i, { raw: true })).readUInt32LE(0))
  }
  await store.close()
  return out
}, (r) => {
  assert.deepEqual(r.values, ['a', 'b', 'c', 'd'])
  assert.deepEqual(r.written, [0, 1, 2, 3])
})
