'use strict'
// The implementation under test: corestore-native (the repo root) by default, or any module
// named by CORESTORE_IMPL (e.g. CORESTORE_IMPL=corestore runs the suite against the JS reference).
const path = require('path')

const spec = process.env.CORESTORE_IMPL
module.exports = spec ? require(spec) : require(path.join(__dirname, '..', '..'))
