'use strict'
// The native binding (docs/native-binding.md); CORESTORE_NATIVE_BINDING loads another
// implementation of it (tests). The napi loader (binding.js) takes the addon built here, or
// the platform package npm installed (corestore-native-<platform>); when neither loads, the
// error names the package it looked for and what to do.

function platformPackage() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = process.report && process.report.getReport().header.glibcVersionRuntime
    return `corestore-native-linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `corestore-native-win32-${arch}-msvc`
  return `corestore-native-${platform}-${arch}`
}

function load() {
  if (process.env.CORESTORE_NATIVE_BINDING) return require(process.env.CORESTORE_NATIVE_BINDING)
  try {
    return require('../binding.js')
  } catch (err) {
    const wanted = platformPackage()
    const e = new Error(
      `corestore-native: no native addon loads on ${process.platform}-${process.arch}. It looked for ` +
        `the prebuilt package ${wanted} (an optional dependency: reinstall without --no-optional / ` +
        `--omit=optional) and for an addon built from source (in a clone: npm run build; needs ` +
        `Rust and libclang). Cause: ${err.message.split('\n')[0]}`
    )
    e.code = 'MODULE_NOT_FOUND'
    e.cause = err
    throw e
  }
}

module.exports = load()
