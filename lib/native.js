'use strict'
// The native binding (docs/native-binding.md); CORESTORE_NATIVE_BINDING loads another
// implementation of it (tests).
module.exports = require(process.env.CORESTORE_NATIVE_BINDING || '../binding.js')
