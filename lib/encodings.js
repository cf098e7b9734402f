'use strict'

// Value encodings with the compact-encoding codec shape ({ preencode, encode, decode } over a
// state { start, end, buffer }). Built-in codecs also carry `_enc`/`_dec` fast paths that skip
// the state machine on the append/get hot paths.

function stringCodec(encoding) {
  return {
    preencode(state, s) {
      state.end += Buffer.byteLength(s, encoding)
    },
    encode(state, s) {
      state.start += state.buffer.write(s, state.start, encoding)
    },
    decode(state) {
      const s = state.buffer.toString(encoding, state.start, state.end)
      state.start = state.end
      return s
    },
    _enc(s) {
      return Buffer.from(s, encoding)
    },
    _dec(b) {
      return b.toString(encoding)
    }
  }
}

function jsonCodec(nl) {
  return {
    preencode(state, v) {
      state.end += Buffer.byteLength(JSON.stringify(v) + nl)
    },
    encode(state, v) {
      state.start += state.buffer.write(JSON.stringify(v) + nl, state.start)
    },
    decode(state) {
      const s = state.buffer.toString('utf8', state.start, state.end)
      state.start = state.end
      return JSON.parse(s)
    },
    _enc(v) {
      return Buffer.from(JSON.stringify(v) + nl)
    },
    _dec(b) {
      return JSON.parse(b.toString())
    }
  }
}

const binary = {
  preencode(state, b) {
    state.end += typeof b === 'string' ? Buffer.byteLength(b) : b.byteLength
  },
  encode(state, b) {
    if (typeof b === 'string') {
      state.start += state.buffer.write(b, state.start)
    } else {
      state.buffer.set(b, state.start)
      state.start += b.byteLength
    }
  },
  decode(state) {
    const b = state.buffer.subarray(state.start, state.end)
    state.start = state.end
    return b
  },
  _enc(b) {
    return typeof b === 'string' ? Buffer.from(b) : toBuffer(b)
  },
  _dec(b) {
    return b
  }
}

const utf8 = stringCodec('utf8')
const NAMED = {
  binary,
  'utf-8': utf8,
  utf8,
  ascii: stringCodec('ascii'),
  hex: stringCodec('hex'),
  base64: stringCodec('base64'),
  'utf16-le': stringCodec('utf16le'),
  utf16le: stringCodec('utf16le'),
  'ucs-2': stringCodec('utf16le'),
  ucs2: stringCodec('utf16le'),
  json: jsonCodec(''),
  ndjson: jsonCodec('\n')
}

// compact-encoding's c.from(): a name, a codec, an abstract-encoding or an { encode, decode } codec
function from(enc) {
  if (typeof enc === 'string') return NAMED[enc] || binary
  if (typeof enc.preencode === 'function') return enc
  if (typeof enc.encodingLength === 'function') {
    return {
      preencode(state, m) {
        state.end += enc.encodingLength(m)
      },
      encode(state, m) {
        enc.encode(m, state.buffer, state.start)
        state.start += enc.encode.bytes
      },
      decode(state) {
        const m = enc.decode(state.buffer, state.start, state.end)
        state.start += enc.decode.bytes
        return m
      }
    }
  }
  return {
    preencode(state, m) {
      state.end += toBuffer(enc.encode(m)).byteLength
    },
    encode(state, m) {
      const b = enc.encode(m)
      state.buffer.set(b, state.start)
      state.start += b.byteLength
    },
    decode(state) {
      const b = state.buffer.subarray(state.start, state.end)
      state.start = state.end
      return enc.decode(b)
    },
    _enc(m) {
      return toBuffer(enc.encode(m))
    },
    _dec(b) {
      return enc.decode(b)
    }
  }
}

function toBuffer(b) {
  if (Buffer.isBuffer(b)) return b
  if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  return Buffer.from(b) // throws the usual TypeError on bad input, as hypercore does
}

// hypercore's _encode: buffers pass through untouched whatever the encoding
function encode(enc, val) {
  if (Buffer.isBuffer(val)) return val
  if (val instanceof Uint8Array) return Buffer.from(val.buffer, val.byteOffset, val.byteLength)
  if (enc === null) return Buffer.from(val)
  if (enc._enc !== undefined) return enc._enc(val)
  const state = { start: 0, end: 0, buffer: null }
  enc.preencode(state, val)
  state.buffer = Buffer.allocUnsafe(state.end)
  enc.encode(state, val)
  return state.buffer
}

function decode(enc, block) {
  if (enc._dec !== undefined) return enc._dec(block)
  return enc.decode({ start: 0, end: block.byteLength, buffer: block })
}

module.exports = { from, encode, decode, toBuffer, binary }
