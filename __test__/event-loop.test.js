'use strict'
// Local calls answer at once in the engine, but a loop of awaited appends or gets must still
// let the event loop run (timers, I/O), as it does with JS corestore, whose storage calls
// are asynchronous. A 1 ms timer must keep firing while such a loop runs.
const test = require('node:test')
const assert = require('node:assert/strict')
const b4a = require('b4a')
const Corestore = require('./helpers/impl.js')
const { tmpdir, stalls } = require('./helpers/util.js')

test('loops of awaited appends and gets let the event loop run', async (t) => {
  const store = new Corestore(tmpdir(t))
  const core = store.get({ name: 'loop' })
  await core.ready()
  const batch = []
  for (let i = 0; i < 200; i++) batch.push(b4a.alloc(1024, i))
  const appends = await stalls(async () => {
    for (let i = 0; i < 300; i++) await core.append(batch)
  })
  const gets = await stalls(async () => {
    for (let i = 0; i < 60000; i++) await core.get(i)
  })
  await store.close()
  // a loop that never yields stalls timers for all of its run; here they ran throughout
  // (a single stall is a small part of the run, even on a loaded machine)
  assert.ok(appends.worst < appends.total / 3, `appending: ${appends.worst} ms stall in ${appends.total} ms`)
  assert.ok(gets.worst < gets.total / 3, `getting: ${gets.worst} ms stall in ${gets.total} ms`)
})
