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

// Every public member of the runtime classes is declared: a program touching each one
// compiles against index.d.ts.
test('everything public at runtime is declared', () => {
  const Hypercore = require('../lib/hypercore.js')
  const Corestore = require('../index.js')
  const members = (C) =>
    Object.getOwnPropertyNames(C.prototype).filter((n) => !n.startsWith('_') && n !== 'constructor')
  let src = "import Corestore from 'corestore-native'\ndeclare const store: Corestore\n"
  src += 'declare const core: Corestore.Hypercore<Buffer>\n'
  for (const n of members(Hypercore)) src += `void core.${n}\n`
  for (const n of members(Corestore)) src += `void store.${n}\n`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corestore-native-members-'))
  try {
    fs.writeFileSync(path.join(dir, 'members.ts'), src)
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: path.join(root, '__test__', 'types', 'tsconfig.json'),
        compilerOptions: {
          paths: { 'corestore-native': [path.join(root, 'index.d.ts')] },
          typeRoots: [path.join(root, 'node_modules', '@types')]
        },
        files: ['members.ts']
      })
    )
    const { status, output } = runTsc(['-p', path.join(dir, 'tsconfig.json')])
    assert.strictEqual(status, 0, output)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
