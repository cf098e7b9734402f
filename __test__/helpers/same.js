'use strict'
// same(name, scenario, expect?): a test that runs scenario(Corestore, dir) on the
// implementation and on JS corestore, each in a fresh directory; the results must be
// deepEqual, and expect(result), when given, checks concrete values as well.
const test = require('node:test')
const assert = require('node:assert/strict')
const JSCorestore = require('corestore')
const Corestore = require('./impl.js')
const { tmpdir } = require('./util.js')

module.exports = function same(name, scenario, expect) {
  test(name, async (t) => {
    const got = await scenario(Corestore, tmpdir(t))
    const want = await scenario(JSCorestore, tmpdir(t))
    assert.deepEqual(got, want)
    if (expect) await expect(got)
  })
}
