'use strict'

// How long replication work has held the event loop in its current iteration. Work that
// comes once BUDGET ms are spent waits for the next iteration, whose timers phase runs
// first. In libuv's loop the poll phase (the replication worker's wakeups, sockets) and
// the check phase (setImmediate) come before the next timers phase, so work moved from
// one to the other still kept timers waiting: two stores' polls and the streams between
// them ran one after another for 79 ms at the start of a transfer (docs/DECISIONS.md §70).

const BUDGET = 4 // ms

let start = 0
let armed = false // a timer marks the next timers phase

function ontimers() {
  armed = false
}

// ms of replication work in this iteration (0: the first of it)
function elapsed() {
  const now = performance.now()
  if (!armed) {
    armed = true
    start = now
    setTimeout(ontimers, 0).unref()
    return 0
  }
  return now - start
}

// Runs fn in this iteration's check phase, or once timers have had their turn when the
// iteration has used its budget.
function next(fn) {
  if (elapsed() < BUDGET) setImmediate(fn)
  else setTimeout(fn, 0)
}

function spent() {
  return elapsed() >= BUDGET
}

module.exports = { next, spent }
