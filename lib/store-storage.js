'use strict'

const { Atom } = require('./session-state')

// What corestore users reach as `store.storage` (JS corestore's hypercore-storage): the
// directory, and the atoms that make writes to several cores land as one.
class StoreStorage {
  constructor(root, dir) {
    this.root = root
    this.path = dir
  }

  createAtom() {
    return new Atom(this.root)
  }

  getAuth(discoveryKey) {
    return this.root.getAuth(discoveryKey)
  }
}

module.exports = StoreStorage
