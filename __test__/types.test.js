'use strict'

// Type-checks index.d.ts and __test__/types/usage.ts with the TypeScript compiler.

const test = require('node:test')
const assert = require('node:assert')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')

function runTsc(args) {
  const res = spawnSync(process.execPath, [tsc, ...args], { cwd: root, encoding: 'utf8' })
  if (res.error) throw res.error
  const output = `${res.stdout || ''}${res.stderr || ''}`
  if (res.status !== 0) console.log(`tsc ${args.join(' ')} failed:\n${output}`)
  return { status: res.status, output }
}

test('usage.ts type-checks against index.d.ts (strict)', () => {
  const { status, output } = runTsc(['-p', path.join('__test__', 'types', 'tsconfig.json')])
  assert.strictEqual(status, 0, output)
})

// @types/node 20.9 does not pass lib checking under TypeScript 5.9, so the tsconfig uses
// skipLibCheck, which also skips index.d.ts itself. Check the declarations on their own by
// compiling a copy as a .ts file.
test('index.d.ts declarations are valid on their own', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corestore-native-dts-'))
  try {
    const copy = path.join(dir, 'index.ts')
    fs.copyFileSync(path.join(root, 'index.d.ts'), copy)
    const { status, output } = runTsc([
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--module', 'node16',
      '--target', 'es2022',
      '--types', 'node',
      '--typeRoots', path.join(root, 'node_modules', '@types'),
      copy
    ])
    assert.strictEqual(status, 0, output)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
