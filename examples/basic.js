'use strict'
// The quick start: a store in a local directory, two named cores (one in a namespace),
// appends, a reopen, and everything read back.
const path = require('path')
const fs = require('fs')
const Corestore = require('..')

async function main () {
  const dir = path.join(__dirname, 'example-store')
  fs.rmSync(dir, { recursive: true, force: true })

  let store = new Corestore(dir)
  const notes = store.get({ name: 'notes', valueEncoding: 'utf-8' })
  const photos = store.namespace('album').get({ name: 'photos' })
  await Promise.all([notes.ready(), photos.ready()])

  await notes.append(['first note', 'second note'])
  await notes.append('third note')
  await photos.append(Buffer.alloc(5000, 1))

  console.log('store        ', dir)
  console.log('notes        ', notes.id, 'length', notes.length, 'bytes', notes.byteLength)
  console.log('album/photos ', photos.id, 'length', photos.length, 'bytes', photos.byteLength)
  const key = notes.key
  await store.close()

  store = new Corestore(dir)
  const reopened = store.get({ name: 'notes', valueEncoding: 'utf-8' })
  await reopened.ready()
  console.log('reopened     ', reopened.id, 'same key:', reopened.key.equals(key), 'length', reopened.length)
  for (let i = 0; i < reopened.length; i++) {
    console.log('  block', i, JSON.stringify(await reopened.get(i)))
  }
  const byKey = store.get(key)
  await byKey.ready()
  console.log('get(key) shares the core: length', byKey.length, 'writable', byKey.writable)
  console.log('tree hash    ', (await reopened.treeHash()).toString('hex'))
  await store.close()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
