'use strict'
// Connects the native replication engine to JS streams. The engine is sans-IO: each call
// returns the bytes to write per stream and the events for the cores; `pump` routes both.

const { Duplex } = require('streamx')

// replicate(true|false): a duplex carrying the raw Noise + secretstream bytes, which the
// engine encrypts and decrypts itself.
class ReplicationStream extends Duplex {
  constructor(root, isInitiator) {
    super({ mapWritable: toBuffer })
    this.root = root
    this.isInitiator = isInitiator
    this.session = 0
    this.noiseStream = this
    this.userData = null
  }

  _open(cb) {
    const out = this.root.native.replicationOpen(this.isInitiator, undefined)
    this.session = out.session
    this.root._replication.add(this.session, this)
    this.root._pump(out)
    cb(null)
  }

  _write(data, cb) {
    if (this.session !== 0) this.root._pump(this.root.native.replicationRecv(this.session, data))
    cb(null)
  }

  _final(cb) {
    this._end()
    cb(null)
  }

  _destroy(cb) {
    this._end()
    cb(null)
  }

  _end() {
    if (this.session === 0) return
    const session = this.session
    this.session = 0
    if (this.root._replication.remove(session)) {
      this.root._pump(this.root.native.replicationClose(session))
    }
    this.push(null)
  }

  // engine output for this stream
  _send(data) {
    this.push(data)
  }

  _closed(err) {
    this.session = 0
    if (err) this.destroy(err)
    else this.push(null)
  }
}

// A Hyperswarm connection (@hyperswarm/secret-stream): it runs Noise and hands us whole
// decrypted messages; we hand it whole protomux frames.
function attachSecretStream(root, conn) {
  const target = {
    session: 0,
    _send(data) {
      if (!conn.destroyed) conn.write(data)
    },
    _closed(err) {
      target.session = 0
      if (err) conn.destroy(err)
    }
  }
  const start = () => {
    if (conn.destroyed || root.closing) return
    const out = root.native.replicationOpen(conn.isInitiator, conn.handshakeHash)
    target.session = out.session
    root._replication.add(target.session, target)
    conn.on('data', (msg) => {
      if (target.session !== 0) root._pump(root.native.replicationRecv(target.session, msg))
    })
    root._pump(out)
  }
  const end = () => {
    if (target.session === 0) return
    const session = target.session
    target.session = 0
    if (root._replication.remove(session)) root._pump(root.native.replicationClose(session))
  }
  conn.on('close', end)
  conn.on('error', noop)
  if (conn.handshakeHash) start()
  else conn.opened.then((ok) => ok !== false && start(), noop)
  return conn
}

class Replication {
  constructor() {
    this.targets = new Map()
  }

  get active() {
    return this.targets.size > 0
  }

  add(session, target) {
    this.targets.set(session, target)
  }

  remove(session) {
    return this.targets.delete(session)
  }

  destroyAll() {
    for (const t of [...this.targets.values()]) t._closed(null)
    this.targets.clear()
  }
}

function isSecretStream(s) {
  return typeof s === 'object' && s !== null && typeof s.pipe === 'function' && 'handshakeHash' in s
}

function toBuffer(data) {
  return typeof data === 'string' ? Buffer.from(data) : data
}

function noop() {}

module.exports = { ReplicationStream, Replication, attachSecretStream, isSecretStream }
