'use strict'
// Two connected secret-streams with their Protomuxes, and channels open on both, for the
// tests of lib/mux-frames.js and lib/mux-receive.js.
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const Protomux = require('protomux')
const c = require('compact-encoding')

// a and b, their handshake done; destroyed when test `t` ends
async function openedPair(t) {
  const a = new NoiseSecretStream(true)
  const b = new NoiseSecretStream(false)
  a.rawStream.pipe(b.rawStream).pipe(a.rawStream)
  t.after(() => {
    a.destroy()
    b.destroy()
  })
  await Promise.all([a.opened, b.opened])
  return { a, b, muxA: Protomux.from(a), muxB: Protomux.from(b) }
}

// Channel `name` of `protocol` with `types` raw message types, open on both muxes: what b
// receives goes to onmessage(type, bytes). Resolves once a's end is open.
async function channelPair(muxA, muxB, { protocol, name, types, onmessage }) {
  const id = Buffer.from(name)
  const messages = (onmessage) =>
    Array.from({ length: types }, (_, type) => ({ encoding: c.raw, onmessage: (m) => onmessage(type, m) }))
  const chB = muxB.createChannel({ protocol, id, messages: messages(onmessage) })
  chB.open()
  const chA = await new Promise((resolve) => {
    const ch = muxA.createChannel({ protocol, id, messages: messages(() => {}), onopen: () => resolve(ch) })
    ch.open()
  })
  return { chA, chB }
}

module.exports = { openedPair, channelPair }
