'use strict'

// Lines of waiting callers, kept as a promise on their holder (a core or a session state).

// The last place in a line kept at `holder[key]` (a promise that settles when its holder is
// done): `after` settles when the place before is done (null when there is none), `done()`
// lets the next one in.
function takePlace(holder, key) {
  const after = holder[key] || null
  let release
  const mine = new Promise((resolve) => (release = resolve))
  holder[key] = mine
  return {
    after,
    done() {
      if (holder[key] === mine) holder[key] = null
      release()
    },
    // someone took a place after this one
    followed() {
      return holder[key] !== mine
    }
  }
}

// One writer at a time per state (a CoreState or SessionState), in call order; resolves to
// the function that lets the next one in.
function lockState(holder) {
  const place = takePlace(holder, '_appends')
  return place.after === null ? Promise.resolve(place.done) : place.after.then(() => place.done)
}

// hypercore's `state.mutex`, which tests and tools hold (with `state._unlock()` to let go)
// while they write to a state's storage themselves: appends and truncations of the state
// wait while it is held. Unlocks go to the holders in the order they locked.
class StateMutex {
  constructor(holder) {
    this.holder = holder
    this._releases = []
  }

  async lock() {
    this._releases.push(await lockState(this.holder))
  }

  unlock() {
    const release = this._releases.shift()
    if (release !== undefined) release()
  }
}

module.exports = { takePlace, lockState, StateMutex }
