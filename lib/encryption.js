'use strict'
// Block encryption as hypercore 11 does it: the session encrypts blocks before it appends
// them and decrypts them after it reads them; the engine stores and replicates the
// encrypted bytes like any others. DefaultEncryption is hypercore's default provider, with
// the cipher (XSalsa20, keys derived with BLAKE2b) in Rust.

const { BlockCipher } = require('./native.js')

class DefaultEncryption {
  static PADDING = 8

  constructor(encryptionKey, hypercoreKey, { block = false, compat = false } = {}) {
    this.key = encryptionKey
    this.block = block
    this.compat = compat
    this._cipher = new BlockCipher(encryptionKey, hypercoreKey, block, compat)
  }

  get blockKey() {
    return this._cipher.blockKey
  }

  encrypt(index, block, fork, core) {
    if (core.compat !== this.compat) this._reload(core)
    this._cipher.encrypt(index, fork, block)
  }

  // blocks `start`, `start + 1`, ... of one append, in one call into Rust
  encryptBatch(start, blocks, fork, core) {
    if (core.compat !== this.compat) this._reload(core)
    this._cipher.encryptBatch(start, fork, blocks)
  }

  decrypt(index, block, core) {
    if (core.compat !== this.compat) this._reload(core)
    this._cipher.decrypt(index, block)
  }

  padding() {
    return DefaultEncryption.PADDING
  }

  // the core learned its manifest, which decides the key derivation
  _reload(core) {
    this.compat = core.compat
    this._cipher = new BlockCipher(this.key, core.key, this.block, this.compat)
  }
}

// hypercore's get() options: { encryptionKey, isBlockKey } (older) or { encryption }, which
// is a key, { key, block } or a provider
function encryptionOption(opts) {
  if (opts.encryptionKey) return { key: opts.encryptionKey, block: !!opts.isBlockKey }
  if (!opts.encryption) return null
  return Buffer.isBuffer(opts.encryption) ? { key: opts.encryption } : opts.encryption
}

function isProvider(e) {
  return !!e && typeof e.padding === 'function' && typeof e.encrypt === 'function' && typeof e.decrypt === 'function'
}

// a provider for the core: the option itself when it is one, else the default one
function provider(e, core) {
  if (isProvider(e)) return e
  if (!e || !e.key) return null
  return new DefaultEncryption(e.key, core.key, { block: !!e.block, compat: core.compat })
}

module.exports = { DefaultEncryption, encryptionOption, isProvider, provider }
