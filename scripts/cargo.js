'use strict'
// Runs cargo for the host target triple explicitly, as `napi build --platform` does, so
// `cargo test` / `cargo clippy` reuse the addon build's RocksDB instead of compiling the
// C++ again into another directory.
const { spawnSync, execFileSync } = require('child_process')
const path = require('path')

const host = /host: (\S+)/.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))[1]
const [cmd, ...rest] = process.argv.slice(2)
const args = [cmd, '--target', host, ...rest]
console.log('$ cargo ' + args.join(' '))
const r = spawnSync('cargo', args, { stdio: 'inherit', cwd: path.join(__dirname, '..') })
process.exit(r.status === null ? 1 : r.status)
