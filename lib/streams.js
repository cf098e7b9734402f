'use strict'

const { Readable, Writable } = require('streamx')

// Blocks [start, end) of a session; `live` keeps reading as the core grows (get waits for appends).
class ReadStream extends Readable {
  constructor(core, opts = {}) {
    super()
    this.core = core
    this.start = opts.start || 0
    this.end = typeof opts.end === 'number' ? opts.end : -1
    this.snapshot = !opts.live && opts.snapshot !== false
    this.live = this.end === -1 ? !!opts.live : false
    this.wait = typeof opts.wait === 'boolean' ? opts.wait : core.wait
    this.timeout = opts.timeout || core.timeout
    this._getOpts = { wait: this.wait, timeout: this.timeout }
  }

  _open(cb) {
    const core = this.core
    const p = this.end === -1 ? core.update() : core.ready()
    p.then(() => {
      if (this.snapshot && this.end === -1) this.end = core.length
      cb(null)
    }, cb)
  }

  _read(cb) {
    const end = this.live ? -1 : this.end === -1 ? this.core.length : this.end
    if (end >= 0 && this.start >= end) {
      this.push(null)
      return cb(null)
    }
    this.core.get(this.start++, this._getOpts).then((block) => {
      this.push(block)
      cb(null)
    }, cb)
  }
}

// The bytes [byteOffset, byteOffset + byteLength) of a session, as raw block slices.
class ByteStream extends Readable {
  constructor(core, opts = {}) {
    super()
    this.core = core
    this._index = 0
    this._byteOffset = opts.byteOffset || 0
    this._byteLength = typeof opts.byteLength === 'number' ? opts.byteLength : -1
    this._seek = this._byteOffset > 0
  }

  _open(cb) {
    if (this._byteLength !== -1) return cb(null)
    this.core.update().then(() => {
      this._byteLength = Math.max(this.core.byteLength - this._byteOffset, 0)
      cb(null)
    }, cb)
  }

  _read(cb) {
    this._readp().then(cb, cb)
  }

  async _readp() {
    if (this._byteLength === 0) {
      this.push(null)
      return
    }

    let rel = 0
    if (this._seek) {
      this._seek = false
      const [index, offset] = await this.core.seek(this._byteOffset)
      this._index = index
      rel = offset
    }

    let data = await this.core.get(this._index++, BINARY)
    if (rel > 0) data = data.subarray(rel)
    if (data.byteLength > this._byteLength) data = data.subarray(0, this._byteLength)
    this._byteLength -= data.byteLength

    this.push(data)
    if (this._byteLength === 0) this.push(null)
  }
}

const BINARY = { valueEncoding: 'binary' }

class WriteStream extends Writable {
  constructor(core) {
    super()
    this.core = core
  }

  _writev(batch, cb) {
    this.core.append(batch).then(() => cb(null), cb)
  }
}

// store.list(): the discovery keys returned by one native call
class ListStream extends Readable {
  constructor(ready, load) {
    super()
    this._ready = ready
    this._load = load
  }

  _open(cb) {
    this._ready().then(() => cb(null), cb)
  }

  _read(cb) {
    let keys
    try {
      keys = this._load()
    } catch (err) {
      return cb(err)
    }
    for (const key of keys) this.push(key)
    this.push(null)
    cb(null)
  }
}

module.exports = { ReadStream, ByteStream, WriteStream, ListStream }
