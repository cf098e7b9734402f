'use strict'
// `npm test`: the Rust unit tests, then every node test (which use the real JS packages).
const { spawnSync } = require('child_process')
const path = require('path')

const root = path.join(__dirname, '..')

function run (cmd, args, env) {
  console.log('\n$ ' + [cmd, ...args].join(' '))
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, env: { ...process.env, ...env } })
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status)
}

run(process.execPath, [path.join(__dirname, 'cargo.js'), 'test', '--release', '--no-default-features'])
run(process.execPath, ['--test', '--test-concurrency=1', '__test__/'])
// the replication tests again without the replication thread (docs/DECISIONS.md §23)
const replicationTests = require('fs')
  .readdirSync(path.join(root, '__test__'))
  .filter((f) => /^replicate.*\.test\.js$/.test(f))
  .map((f) => path.join('__test__', f))
run(process.execPath, ['--test', '--test-concurrency=1', ...replicationTests], { CORESTORE_NATIVE_REPLICATION_THREAD: '0' })
