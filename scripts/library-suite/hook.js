'use strict'
// Preload (node -r) of scripts/library-suite.js: every require('corestore') (or a path in
// it), from the tests and from any package, resolves to the checkout in
// LIBRARY_SUITE_CORESTORE (corestore-native) instead of the installed JS corestore. With
// LIBRARY_SUITE_HYPERCORE_SHIM, require('hypercore') from the library and its tests (not
// from packages in node_modules, nor from the shim) resolves to that shim.
const Module = require('module')
const path = require('path')

const root = process.env.LIBRARY_SUITE_CORESTORE || null
const shim = process.env.LIBRARY_SUITE_HYPERCORE_SHIM || null
if (root === null && shim === null) {
  throw new Error('library-suite hook: set LIBRARY_SUITE_CORESTORE or LIBRARY_SUITE_HYPERCORE_SHIM')
}
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, parent, isMain, options) {
  if (root !== null) {
    if (request === 'corestore') return resolve.call(this, root, parent, isMain, options)
    if (request.startsWith('corestore/')) {
      return resolve.call(this, path.join(root, request.slice('corestore/'.length)), parent, isMain, options)
    }
  }
  if (shim !== null && request === 'hypercore' && fromLibrary(parent)) return shim
  return resolve.call(this, request, parent, isMain, options)
}

function fromLibrary(parent) {
  const file = (parent && parent.filename) || ''
  return file !== shim && !file.includes(path.sep + 'node_modules' + path.sep)
}
