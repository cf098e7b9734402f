'use strict'

const path = require('path')
const { Atom } = require('./session-state')

// store.storage: what corestore users read of and call on the hypercore-storage instance
// behind a store: its directory, the RocksDB path, read-only mode, the tree cache options,
// and the atoms that make writes to several cores land as one (createAtom). The storage
// itself is the Rust engine; this describes it and reaches it through the root store.
class Storage {
  constructor(root, directory, opts = {}) {
    this.root = root
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

  createAtom() {
    return new Atom(this.root)
  }

  getAuth(discoveryKey) {
    return this.root.getAuth(discoveryKey)
  }
}

module.exports = Storage
