'use strict'
// Preload (node -r) of scripts/library-suite.js: LIBRARY_SUITE_ONE=N runs only the Nth
// top-level brittle test of a file (from 1) and registers the others as skipped;
// LIBRARY_SUITE_ONE=0 registers all as skipped, which lists the file's tests (brittle
// prints each as `ok N - name # SKIP`) without running any. `solo` tests count as tests.
const Module = require('module')

const want = Number(process.env.LIBRARY_SUITE_ONE || 0)
const load = Module._load
let wrapped = null
Module._load = function (request, parent, isMain) {
  const m = load.apply(this, arguments)
  if (request !== 'brittle') return m
  if (wrapped) return wrapped
  let n = 0
  const pick = (run) =>
    function (...args) {
      n++
      return n === want ? run(...args) : m.skip(...args)
    }
  wrapped = pick(m)
  for (const k of Object.keys(m)) wrapped[k] = m[k]
  wrapped.test = wrapped
  wrapped.solo = pick(m)
  wrapped.skip = function (...args) {
    n++
    return m.skip(...args)
  }
  if (m.todo) {
    wrapped.todo = function (...args) {
      n++
      return m.todo(...args)
    }
  }
  wrapped.default = wrapped
  return wrapped
}
