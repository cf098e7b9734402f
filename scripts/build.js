'use strict'
// Builds the addon in release mode with the napi CLI: the .node file for this platform,
// plus the loader binding.js and its types binding.d.ts (index.js is the public facade).
const { spawnSync } = require('child_process')
const path = require('path')

const root = path.join(__dirname, '..')
const cli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
const args = [cli, 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts', ...process.argv.slice(2)]
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root })
process.exit(r.status === null ? 1 : r.status)
