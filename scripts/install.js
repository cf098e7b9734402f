'use strict'
// `npm install` hook: use the compiled addon when one loads, otherwise build it from
// source — after checking the prerequisites, so a missing one is named, not a wall of
// compiler output.
const { execFileSync, spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

const root = path.join(__dirname, '..')

function loads () {
  try {
    require(path.join(root, 'binding.js'))
    return true
  } catch {
    return false
  }
}

function has (cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function hasLibclang () {
  if (process.env.LIBCLANG_PATH) return true
  if (process.platform !== 'linux') return true // bindgen finds Xcode's / LLVM's clang
  try {
    // what bindgen (clang-sys) loads: libclang.so or libclang-<version>.so; a system with only
    // libclang-cpp.so cannot build
    return /libclang(-[0-9.]+)?\.so/.test(execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }))
  } catch {
    return true // cannot tell; let the build say
  }
}

function fail (msg) {
  console.error('\ncorestore-native: ' + msg + '\n')
  process.exit(1)
}

if (process.env.CORESTORE_NATIVE_SKIP_BUILD) process.exit(0)
if (loads() && !process.env.CORESTORE_NATIVE_FORCE_BUILD) process.exit(0)

if (!fs.existsSync(path.join(root, 'Cargo.toml'))) {
  fail('no prebuilt binary for ' + process.platform + '-' + process.arch + ' and no sources to build one.')
}
const major = Number(process.versions.node.split('.')[0])
if (major < 18) fail('Node.js >= 18 is required (this is ' + process.version + ').')
if (!has('cargo', ['--version'])) {
  fail('building from source needs the Rust toolchain (cargo): install it from https://rustup.rs, then run npm install again.')
}
if (!hasLibclang()) {
  fail('building RocksDB\'s bindings needs libclang: on Debian/Ubuntu `apt-get install -y libclang-dev` (or clang on other systems), then run npm install again.')
}

const r = spawnSync(process.execPath, [path.join(__dirname, 'build.js')], { stdio: 'inherit', cwd: root })
if (r.status !== 0) fail('the build failed (see above).')
