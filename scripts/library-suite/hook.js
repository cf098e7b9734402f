'use strict'
// Preload (node -r) of scripts/library-suite.js: every require('corestore') (or a path in
// it), from the tests and from any package, resolves to the checkout in
// LIBRARY_SUITE_CORESTORE (corestore-native) instead of the installed JS corestore.
const Module = require('module')
const path = require('path')

const root = process.env.LIBRARY_SUITE_CORESTORE
if (!root) throw new Error('library-suite hook: LIBRARY_SUITE_CORESTORE is not set')
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, parent, isMain, options) {
  if (request === 'corestore') return resolve.call(this, root, parent, isMain, options)
  if (request.startsWith('corestore/')) {
    return resolve.call(this, path.join(root, request.slice('corestore/'.length)), parent, isMain, options)
  }
  return resolve.call(this, request, parent, isMain, options)
}
