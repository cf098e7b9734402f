'use strict'

// hypercore-style errors: message `CODE: text (discovery key: <z32>)`, `code`, name HypercoreError

const ALPHABET = 'ybndrfg8ejkmcpqxot1uwisza345h769'
const REVERSE = new Int8Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) REVERSE[ALPHABET.charCodeAt(i)] = i

function z32Encode(buf) {
  let out = ''
  let acc = 0
  let bits = 0
  for (let i = 0; i < buf.length; i++) {
    acc = ((acc & 0xff) << 8) | buf[i]
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(acc >>> bits) & 31]
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31]
  return out
}

function z32Decode(s) {
  const out = Buffer.allocUnsafe(Math.floor((s.length * 5) / 8))
  let acc = 0
  let bits = 0
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const v = c < 128 ? REVERSE[c] : -1
    if (v === -1) throw new Error('Invalid character in base32 input: "' + s[i] + '" at position ' + i)
    acc = ((acc & 0xff) << 5) | v
    bits += 5
    if (bits >= 8) {
      bits -= 8
      if (n < out.length) out[n++] = (acc >>> bits) & 0xff
    }
  }
  return out
}

class HypercoreError extends Error {
  constructor(msg, code, fn = HypercoreError, discoveryKey = null) {
    if (discoveryKey) msg = `${msg} (discovery key: ${z32Encode(discoveryKey)})`
    super(`${code}: ${msg}`)
    this.code = code
    this.discoveryKey = discoveryKey
    if (Error.captureStackTrace) Error.captureStackTrace(this, fn)
  }

  get name() {
    return 'HypercoreError'
  }
}

// nanoassert's error, which hypercore throws where it asserts with nanoassert rather than
// hypercore-errors (writes on a snapshot, commit's checks): no code, name AssertionError
class AssertionError extends Error {
  get name() {
    return 'AssertionError'
  }
}

function def(code, defaultMessage) {
  const fn = function (msg = defaultMessage, discoveryKey = null) {
    return new HypercoreError(msg, code, fn, discoveryKey)
  }
  return fn
}

module.exports = {
  HypercoreError,
  AssertionError,
  z32Encode,
  z32Decode,
  // hypercore-errors uses ERR_ASSERTION as the code of ASSERTION
  ASSERTION: def('ERR_ASSERTION'),
  BAD_ARGUMENT: def('BAD_ARGUMENT'),
  STORAGE_EMPTY: def('STORAGE_EMPTY'),
  STORAGE_CONFLICT: def('STORAGE_CONFLICT'),
  INVALID_OPERATION: def('INVALID_OPERATION'),
  SNAPSHOT_NOT_AVAILABLE: def('SNAPSHOT_NOT_AVAILABLE', 'Snapshot is not available'),
  REQUEST_CANCELLED: def('REQUEST_CANCELLED', 'Request was cancelled'),
  REQUEST_TIMEOUT: def('REQUEST_TIMEOUT', 'Request timed out'),
  SESSION_NOT_WRITABLE: def('SESSION_NOT_WRITABLE', 'Session is not writable'),
  SESSION_CLOSED: def('SESSION_CLOSED', 'Session is closed'),
  DECODING_ERROR: def('DECODING_ERROR', 'Decoding error')
}
