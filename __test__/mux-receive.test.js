'use strict'
// A batch frame a JS Protomux receives whose messages are all for the engine's channels
// goes to the engine whole (lib/mux-receive.js): the rows name each message's channel, type
// and bytes in the frame, and Protomux raises none of them. Any other frame goes through
// Protomux as before. packChannelEvents turns a taken frame into message rows with the
// framing between them skipped.
const assert = require('node:assert/strict')
const test = require('node:test')
const crypto = require('crypto')
const { receiver } = require('../lib/mux-receive.js')
const { packChannelEvents, BATCH } = require('../lib/targets.js')
const { openedPair, channelPair } = require('./helpers/mux.js')

const TYPES = 10

// channel `name` open on both; what b's Protomux raises on it goes to `raised`
function channel(muxA, muxB, name, raised, types = TYPES) {
  const onmessage = (type, m) => raised.push([name, type, Buffer.from(m)])
  return channelPair(muxA, muxB, { protocol: 'test/receive', name, types, onmessage })
}

function sendBatch(mux, sends) {
  mux.cork()
  for (const [ch, type, bytes] of sends) ch.messages[type].send(bytes)
  mux.uncork()
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50))

// what a sink got, as [channel, type, bytes] per message
function messagesOf(taken) {
  const out = []
  for (const [frame, rows] of taken) {
    for (let k = 0; k < rows.length; k += 4) out.push([rows[k], rows[k + 1], Buffer.from(frame.subarray(rows[k + 2], rows[k + 3]))])
  }
  return out
}

test('a frame of only our channels is taken whole; Protomux raises none of it', async (t) => {
  const { muxA, muxB } = await openedPair(t)
  const raised = []
  const one = await channel(muxA, muxB, 'one', raised)
  const two = await channel(muxA, muxB, 'two', raised)
  const taken = []
  const sink = { types: TYPES, take: (frame, rows) => taken.push([frame, rows]) }
  const owners = receiver(muxB)
  owners.set(one.chB, { sink, channel: 11 })
  owners.set(two.chB, { sink, channel: 12 })
  // lengths on each side of compact-encoding's 1- and 3-byte uints
  const sends = [
    [one.chA, 0, Buffer.alloc(0)],
    [one.chA, 3, crypto.randomBytes(251)],
    [two.chA, 9, crypto.randomBytes(252)],
    [two.chA, 2, crypto.randomBytes(3000)],
    [one.chA, 5, crypto.randomBytes(70000)]
  ]
  sendBatch(muxA, sends)
  await settle()
  assert.deepEqual(raised, [])
  assert.equal(taken.length, 1, 'one frame')
  assert.deepEqual(
    messagesOf(taken),
    sends.map(([ch, type, bytes]) => [ch === one.chA ? 11 : 12, type, bytes])
  )

  // as the engine gets them: message rows, the framing between them skipped
  const { meta, data } = packChannelEvents([BATCH, 0, taken[0][1], taken[0][0]])
  const got = []
  for (let at = 0, p = 0; at < meta.length; at += 10) {
    const len = meta.readUInt32LE(at + 6)
    if (meta[at] === 2) got.push([meta.readUInt32LE(at + 2), meta[at + 1], Buffer.from(data.subarray(p, p + len))])
    else assert.equal(meta[at], 4, 'a skip row')
    p += len
    if (at + 10 === meta.length) assert.equal(p, data.length, 'rows cover the data')
  }
  assert.deepEqual(got, messagesOf(taken))
})

test('frames with another channel, an unknown type, or channels no longer ours go through Protomux', async (t) => {
  const { muxA, muxB } = await openedPair(t)
  const raised = []
  const ours = await channel(muxA, muxB, 'ours', raised)
  const theirs = await channel(muxA, muxB, 'theirs', raised)
  const wide = await channel(muxA, muxB, 'wide', raised, 12)
  const taken = []
  const sink = { types: TYPES, take: (frame, rows) => taken.push([frame, rows]) }
  const owners = receiver(muxB)
  owners.set(ours.chB, { sink, channel: 1 })
  owners.set(wide.chB, { sink, channel: 2 })
  const a = crypto.randomBytes(20)
  const b = crypto.randomBytes(30)
  sendBatch(muxA, [
    [ours.chA, 1, a],
    [theirs.chA, 1, b]
  ])
  await settle()
  sendBatch(muxA, [
    [wide.chA, 1, a],
    [wide.chA, 11, b]
  ])
  await settle()
  owners.delete(ours.chB)
  owners.delete(wide.chB)
  sendBatch(muxA, [
    [ours.chA, 2, a],
    [ours.chA, 3, b]
  ])
  await settle()
  assert.deepEqual(taken, [])
  assert.deepEqual(raised, [
    ['ours', 1, a],
    ['theirs', 1, b],
    ['wide', 1, a],
    ['wide', 11, b],
    ['ours', 2, a],
    ['ours', 3, b]
  ])
})
