'use strict'

// A caller's manifest as the native binding takes it (NativeManifestInput: plain Buffers,
// napi wants Buffer, not any Uint8Array), as hypercore's createManifest reads it: an object,
// or its encoding (a Buffer); signers may be left out (none).

const binding = require('./native.js')
const { toBuffer } = require('./encodings')
const { BAD_ARGUMENT } = require('./errors')

function manifestInput(m) {
  if (m instanceof Uint8Array) m = binding.decodeManifest(toBuffer(m))
  if (typeof m !== 'object' || m === null || (m.signers !== undefined && m.signers !== null && !Array.isArray(m.signers))) {
    throw BAD_ARGUMENT('manifest must be an object or an encoded manifest')
  }
  const out = { signers: (m.signers || []).map(signerInput) }
  if (m.version !== undefined) out.version = m.version
  if (m.hash !== undefined) out.hash = m.hash
  if (m.allowPatch !== undefined) out.allowPatch = !!m.allowPatch
  if (typeof m.quorum === 'number') out.quorum = m.quorum
  if (m.prologue) out.prologue = { hash: toBuffer(m.prologue.hash), length: m.prologue.length }
  if (m.linked) out.linked = m.linked.map(toBuffer)
  if (m.userData) out.userData = toBuffer(m.userData)
  return out
}

function signerInput(s) {
  if (!s || !isKey(s.publicKey)) throw BAD_ARGUMENT('manifest signer publicKey must be 32 bytes')
  const out = { publicKey: toBuffer(s.publicKey) }
  if (s.signature) out.signature = s.signature
  if (s.namespace) out.namespace = toBuffer(s.namespace)
  return out
}

function isKey(b) {
  return b instanceof Uint8Array && b.byteLength === 32
}

// hypercore's getManifest({ raw: true }): the manifest's encoding
function encodeManifest(m) {
  return binding.encodeManifest(manifestInput(m))
}

module.exports = { manifestInput, encodeManifest }
