'use strict'

const path = require('path')

// store.storage: what corestore users read of the hypercore-storage instance behind a store
// (its directory, the RocksDB path, read-only mode, the tree cache options). The storage
// itself is the Rust engine; this only describes it.
class Storage {
  constructor(directory, opts = {}) {
    this.path = path.resolve(directory)
    this.readOnly = !!opts.readOnly
    this.db = { path: path.join(this.path, 'db') }
    // hypercore-storage's tree node cache holds 8192 nodes unless told otherwise. Ours is
    // per core and sized by the engine (src/core/node_cache.rs); these are the options given.
    const treeCache = opts.treeCache || {}
    this.treeCache = {
      maxSize: typeof treeCache.maxSize === 'number' ? treeCache.maxSize : 8192,
      maxAge: typeof treeCache.maxAge === 'number' ? treeCache.maxAge : 0
    }
  }
}

module.exports = Storage
