'use strict'
// The engine's channel messages for a Hyperswarm connection's Protomux, framed by
// lib/mux-frames.js: the same bytes Protomux writes for them, in order, split past
// 256 KiB, without the messages of a closed channel, and through Protomux while it is
// corked with messages waiting.
const assert = require('node:assert/strict')
const test = require('node:test')
const crypto = require('crypto')
const { sendCommands, FRAME_MAX } = require('../lib/mux-frames.js')
const { openedPair, channelPair } = require('./helpers/mux.js')

const TYPES = 10

// Two connected secret-streams; `frames` records what a's Protomux hands its stream.
async function connected(t) {
  const { a, b, muxA, muxB } = await openedPair(t)
  const frames = []
  const write = a.write
  a.write = function (buf) {
    frames.push(Buffer.from(buf))
    return write.call(this, buf)
  }
  return { a, b, frames, muxA, muxB }
}

// Channel `name` on both muxes; what b receives goes to `got` as [name, type, bytes].
async function channel(muxA, muxB, name, got) {
  const onmessage = (type, m) => got.push([name, type, Buffer.from(m)])
  return (await channelPair(muxA, muxB, { protocol: 'test/frames', name, types: TYPES, onmessage })).chA
}

// The engine's packed commands (src/napi/mod.rs CommandsOut) for sends [channel, type, bytes].
function pack(sends) {
  const meta = Buffer.alloc(16 * sends.length)
  sends.forEach(([channel, type, bytes], i) => {
    meta.writeUInt32LE(1, 16 * i)
    meta.writeUInt32LE(channel, 16 * i + 4)
    meta.writeUInt32LE(type, 16 * i + 8)
    meta.writeUInt32LE(bytes.byteLength, 16 * i + 12)
  })
  return { meta, data: Buffer.concat(sends.map((s) => s[2])) }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50))
const noOpen = () => assert.fail('no open expected')

test('a run of messages is framed as Protomux frames them while corked, byte for byte', async (t) => {
  const { a, frames, muxA, muxB } = await connected(t)
  const got = []
  const one = await channel(muxA, muxB, 'one', got)
  const two = await channel(muxA, muxB, 'two', got)
  const channels = new Map([
    [7, one],
    [9, two]
  ])
  // lengths on each side of compact-encoding's 1-, 3- and 5-byte uints
  const sends = [
    [7, 0, Buffer.alloc(0)],
    [7, 3, crypto.randomBytes(251)],
    [7, 9, crypto.randomBytes(252)],
    [9, 2, crypto.randomBytes(300)],
    [9, 2, crypto.randomBytes(65534)],
    [7, 5, crypto.randomBytes(70000)]
  ]
  frames.length = 0
  muxA.cork()
  for (const [ch, type, bytes] of sends) channels.get(ch).messages[type].send(bytes)
  muxA.uncork()
  const byProtomux = frames.splice(0)
  const { meta, data } = pack(sends)
  sendCommands(muxA, a, channels, noOpen, meta, data, 0, sends.length, 0)
  assert.equal(byProtomux.length, 1)
  assert.deepEqual(frames, byProtomux)
  await settle()
  const expected = sends.map(([ch, type, bytes]) => [ch === 7 ? 'one' : 'two', type, bytes])
  assert.deepEqual(got, [...expected, ...expected])
})

test('a long run goes out in frames of about 256 KiB, in order; a closed channel gets nothing', async (t) => {
  const { a, frames, muxA, muxB } = await connected(t)
  const got = []
  const one = await channel(muxA, muxB, 'one', got)
  const two = await channel(muxA, muxB, 'two', got)
  const channels = new Map([
    [1, one],
    [2, two]
  ])
  const sends = []
  for (let i = 0; i < 700; i++) sends.push([i % 3 === 0 ? 2 : 1, i % TYPES, crypto.randomBytes(1024)])
  frames.length = 0
  let { meta, data } = pack(sends)
  sendCommands(muxA, a, channels, noOpen, meta, data, 0, sends.length, 0)
  assert.equal(frames.length, Math.ceil((700 * 1030) / FRAME_MAX))
  for (const f of frames) assert.ok(f.byteLength < FRAME_MAX + 1100, `frame of ${f.byteLength} bytes`)
  await settle()
  assert.deepEqual(
    got,
    sends.map(([ch, type, bytes]) => [ch === 1 ? 'one' : 'two', type, bytes])
  )

  got.length = 0
  two.close()
  await settle()
  ;({ meta, data } = pack(sends))
  sendCommands(muxA, a, channels, noOpen, meta, data, 0, sends.length, 0)
  await settle()
  assert.deepEqual(
    got,
    sends.filter(([ch]) => ch === 1).map(([, type, bytes]) => ['one', type, bytes])
  )
})

test('while the Protomux is corked the messages go through it, after what it holds', async (t) => {
  const { a, frames, muxA, muxB } = await connected(t)
  const got = []
  const one = await channel(muxA, muxB, 'one', got)
  const channels = new Map([[1, one]])
  const first = crypto.randomBytes(100)
  const sends = [
    [1, 4, crypto.randomBytes(10)],
    [1, 6, crypto.randomBytes(2000)]
  ]
  frames.length = 0
  muxA.cork()
  one.messages[1].send(first)
  const { meta, data } = pack(sends)
  sendCommands(muxA, a, channels, noOpen, meta, data, 0, sends.length, 0)
  assert.equal(frames.length, 0)
  muxA.uncork()
  assert.equal(frames.length, 1)
  await settle()
  assert.deepEqual(got, [['one', 1, first], ...sends.map(([, type, bytes]) => ['one', type, bytes])])
})

test('corked with nothing waiting, the messages are framed at once; later sends follow them', async (t) => {
  const { a, frames, muxA, muxB } = await connected(t)
  const got = []
  const one = await channel(muxA, muxB, 'one', got)
  const channels = new Map([[1, one]])
  const after = crypto.randomBytes(100)
  const sends = [
    [1, 4, crypto.randomBytes(10)],
    [1, 6, crypto.randomBytes(2000)]
  ]
  frames.length = 0
  // as while Protomux raises a received batch's messages and the engine answers them
  muxA.cork()
  const { meta, data } = pack(sends)
  sendCommands(muxA, a, channels, noOpen, meta, data, 0, sends.length, 0)
  assert.equal(frames.length, 1, 'written without waiting for the uncork')
  one.messages[1].send(after)
  muxA.uncork()
  assert.equal(frames.length, 2)
  await settle()
  assert.deepEqual(got, [...sends.map(([, type, bytes]) => ['one', type, bytes]), ['one', 1, after]])
})

test('an open among the sends is carried out in its place', async (t) => {
  const { a, muxA, muxB } = await connected(t)
  const got = []
  const one = await channel(muxA, muxB, 'one', got)
  const channels = new Map([[1, one]])
  const before = crypto.randomBytes(50)
  const after = crypto.randomBytes(60)
  const key = crypto.randomBytes(32)
  const handshake = crypto.randomBytes(5)
  const order = []
  a.write = ((write) =>
    function (buf) {
      order.push('write')
      return write.call(this, buf)
    })(a.write)
  // a send on channel 1, an open of channel 5 (its discovery key, then our handshake), a send
  const { meta, data } = pack([
    [1, 2, before],
    [5, 0xffffffff, Buffer.concat([key, handshake])],
    [1, 3, after]
  ])
  let opened = null
  const open = (cmd) => {
    order.push('open')
    opened = cmd
  }
  sendCommands(muxA, a, channels, open, meta, data, 0, 3, 0)
  assert.deepEqual(order, ['write', 'open', 'write'])
  assert.deepEqual(opened, { channel: 5, discoveryKey: key, data: handshake })
  await settle()
  assert.deepEqual(got, [
    ['one', 2, before],
    ['one', 3, after]
  ])
})
