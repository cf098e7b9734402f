'use strict'

const { EventEmitter } = require('events')
const { ListStream } = require('./streams')

// store.notifyGroup(topic): 'update' ({ key, length, fork }) each time a core of the group
// changes its head while the handle is attached, and updates() streams the keys of the
// group's cores by their last head change, newest first, from the store's group index.
// `index` is the handle's slot in the store's list for the topic; -1 when detached.
class GroupNotifyHandle extends EventEmitter {
  constructor(store, topic) {
    super()
    this._store = store
    this._topic = topic
    this.index = -1
  }

  updates({ since = 0, reverse = true } = {}) {
    const store = this._store
    const root = store._root
    return new ListStream(
      () => store.ready(),
      () => root.native.groupUpdates(Buffer.from(this._topic), since, reverse) || []
    )
  }

  destroy() {
    this._store._removeGroupNotify(this)
  }
}

module.exports = GroupNotifyHandle
