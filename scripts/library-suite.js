#!/usr/bin/env node
'use strict'

// Runs a library's own test suite (Autobase, Hyperdrive, HyperDB, ...) with `corestore`
// resolving to this checkout (corestore-native), or with --js to JS corestore 7.12.5 (the
// baseline), and prints passed/total per test file and in all.
//
//   node scripts/library-suite.js <name> --mirror <git dir> [--rev REV] [--js]
//        [--files a.js,b.js] [--timeout SECONDS] [--isolate] [--only REGEX] [--verbose]
//        [--json OUT] [--keep] [--hypercore-shim SHIM]
//
// - The library's repository (its code, test/ and fixtures) comes from the mirror with
//   `git archive` into a temp dir, deleted on exit: upstream's tests are never copied into
//   the project.
// - Its dependencies and devDependencies are installed once per package.json into
//   ${LIBRARY_SUITES_HOME:-~/.cache/corestore-native-library-suites}/<name>-<hash>, with
//   hypercore pinned to 11.37.1 and corestore to 7.12.5 (npm overrides), and linked as the
//   temp dir's node_modules.
// - corestore-native stands in for corestore through a preload (scripts/library-suite/
//   hook.js) that resolves every `require('corestore')`, from the tests and from any
//   package, to this checkout. --js runs without it.
// - Files: those test/all.js imports (else test/*.js, else a root test.js), plus test/fixtures/tests/*.js when
//   present; --files picks some (paths under test/). Each file runs in its own process;
//   a file's tests are listed first (scripts/library-suite/select.js registers them all as
//   skipped), so tests a crash or timeout never reached count as failed. --isolate runs
//   every test in a process of its own (slower; one crash costs one test).
// - --hypercore-shim: for libraries whose tests make cores with `new Hypercore(dir)`
//   (Hyperbee): the tests' and the library's `require('hypercore')` resolves to SHIM, the
//   reference suites' stand-in (../shared/tools/reference-suites/shim.js) that makes each
//   core a session of a Corestore in that directory: corestore-native's, or with --js, JS
//   corestore's. Packages in node_modules keep the real hypercore.
// Exit status: 0 when every test passed, 1 when some failed, 2 when the suite could not run.

const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')
const { spawnSync, spawn } = require('child_process')

const ROOT = path.join(__dirname, '..')
const HOOKS = path.join(__dirname, 'library-suite')
const PINS = { hypercore: '11.37.1', corestore: '7.12.5' }

function usage(msg) {
  if (msg) console.error('library-suite: ' + msg)
  console.error(
    'usage: node scripts/library-suite.js <name> --mirror <git dir> [--rev REV] [--js] [--files a.js,b.js] [--timeout s] [--isolate] [--only REGEX] [--verbose] [--json out] [--keep] [--hypercore-shim shim.js]'
  )
  process.exit(2)
}

function parseArgs(argv) {
  const o = { name: null, mirror: null, rev: 'HEAD', js: false, shim: null, modules: null, files: null, timeout: 300, isolate: false, json: null, keep: false, only: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => (i + 1 < argv.length ? argv[++i] : usage(a + ' needs a value'))
    if (a === '--mirror') o.mirror = next()
    else if (a === '--rev') o.rev = next()
    else if (a === '--js') o.js = true
    else if (a === '--files') o.files = next().split(',').filter(Boolean)
    else if (a === '--timeout') o.timeout = Number(next())
    else if (a === '--isolate') o.isolate = true
    else if (a === '--verbose') o.verbose = true
    else if (a === '--json') o.json = next()
    else if (a === '--keep') o.keep = true
    else if (a === '--hypercore-shim') o.shim = path.resolve(next())
    else if (a === '--only') o.only = new RegExp(next())
    else if (a.startsWith('--')) usage('unknown option ' + a)
    else if (o.name === null) o.name = a
    else usage('unexpected argument ' + a)
  }
  if (!o.name) usage('the library name is required')
  if (!o.mirror) usage('--mirror is required')
  if (!(o.timeout > 0)) usage('--timeout must be a positive number of seconds')
  return o
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr || '').slice(-2000)}`)
  }
  return r.stdout
}

// the library's repository at `rev`, unpacked into `dir`
function unpack(mirror, rev, dir) {
  const tar = path.join(dir, '..', 'pkg.tar')
  run('git', ['--git-dir', mirror, 'archive', '--format=tar', '-o', tar, rev])
  run('tar', ['-xf', tar, '-C', dir])
  fs.rmSync(tar)
}

// node_modules for the library's package.json, installed once per its dependencies
function install(name, pkg) {
  const home = process.env.LIBRARY_SUITES_HOME || path.join(os.homedir(), '.cache', 'corestore-native-library-suites')
  const deps = { ...(pkg.dependencies || {}), ...(pkg.devDependencies || {}) }
  for (const [k, v] of Object.entries(PINS)) if (k in deps || k === 'corestore') deps[k] = v
  const manifest = { name: name + '-suite', private: true, dependencies: deps, overrides: { ...PINS } }
  const text = JSON.stringify(manifest, null, 2) + '\n'
  const hash = crypto.createHash('sha256').update(text).digest('hex').slice(0, 16)
  const dir = path.join(home, `${name}-${hash}`)
  const done = path.join(dir, '.installed')
  if (fs.existsSync(done)) return dir
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), text)
  console.error(`library-suite: installing ${name}'s dependencies into ${dir} (once) ...`)
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 2, 2] })
  if (r.status !== 0) throw new Error('npm install failed in ' + dir)
  for (const k of Object.keys(PINS)) {
    const v = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', k, 'package.json'))).version
    if (v !== PINS[k]) throw new Error(`${k} installed as ${v}, not ${PINS[k]}`)
  }
  fs.writeFileSync(done, new Date().toISOString() + '\n')
  return dir
}

// test files, as paths under the repository (test/x.js, or a root test.js as Hyperdrive has)
function testFiles(pkgDir, only) {
  const testDir = path.join(pkgDir, 'test')
  if (only) return only.map((f) => (fs.existsSync(path.join(pkgDir, f)) ? f : path.join('test', f)))
  if (!fs.existsSync(testDir)) return fs.existsSync(path.join(pkgDir, 'test.js')) ? ['test.js'] : []
  let files
  const all = path.join(testDir, 'all.js')
  if (fs.existsSync(all)) {
    const src = fs.readFileSync(all, 'utf8')
    files = [...src.matchAll(/(?:import|require)\(\s*['"]\.\/([^'"]+)['"]\s*\)/g)].map((m) => m[1])
  } else {
    files = fs.readdirSync(testDir).filter((f) => f.endsWith('.js') || f.endsWith('.mjs'))
  }
  const fixtures = path.join(testDir, 'fixtures', 'tests')
  if (fs.existsSync(fixtures)) {
    for (const f of fs.readdirSync(fixtures).sort()) if (f.endsWith('.js')) files.push('fixtures/tests/' + f)
  }
  return files.map((f) => path.join('test', f))
}

function nodeArgs(opts, file, extra = []) {
  const args = []
  if (!opts.js || opts.shim) args.push('-r', path.join(HOOKS, 'hook.js'))
  for (const e of extra) args.push('-r', e)
  args.push(file)
  return args
}

function env(opts, more) {
  const e = { ...process.env, ...more }
  if (!opts.js) e.LIBRARY_SUITE_CORESTORE = ROOT
  if (opts.shim) {
    e.LIBRARY_SUITE_HYPERCORE_SHIM = opts.shim
    e.HC_SHIM_IMPL = opts.js ? path.join(opts.modules, 'corestore') : ROOT
    e.HC_SHIM_MODULES = opts.modules
  }
  return e
}

// the names of a file's top-level tests, in order, without running them (all skipped)
function listTests(opts, cwd, file) {
  const r = spawnSync(process.execPath, nodeArgs(opts, file, [path.join(HOOKS, 'select.js')]), {
    cwd,
    env: env(opts, { LIBRARY_SUITE_ONE: '0' }),
    encoding: 'utf8',
    timeout: 120000
  })
  const results = parseTap(r.stdout || '')
  if (results.size === 0) return { names: null, error: lastLines(r.stderr || r.stdout || '') }
  const names = []
  for (const [n, v] of results) names[n - 1] = v.name
  return { names, error: null }
}

// runs node on `file`; resolves with its TAP output (and whether it timed out)
function runFile(opts, cwd, file, one) {
  return new Promise((resolve) => {
    const extra = one ? [path.join(HOOKS, 'select.js')] : []
    const child = spawn(process.execPath, nodeArgs(opts, file, extra), {
      cwd,
      env: env(opts, one ? { LIBRARY_SUITE_ONE: String(one) } : {}),
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeout * 1000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ out, err, code, timedOut })
    })
  })
}

// top-level TAP results: n -> { ok, skip, name }
function parseTap(out) {
  const results = new Map()
  for (const line of out.split('\n')) {
    const m = /^(not ok|ok) (\d+) - (.*?)(?: # (SKIP|TODO)\b.*| # time = .*)?$/.exec(line)
    if (m) results.set(Number(m[2]), { ok: m[1] === 'ok', skip: !!m[4], name: m[3] })
  }
  return results
}

async function runSuite(opts) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'library-suite-'))
  const cleanup = () => (opts.keep ? console.error('library-suite: kept ' + tmp) : fs.rmSync(tmp, { recursive: true, force: true }))
  process.on('exit', cleanup)
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130))
  const pkgDir = path.join(tmp, 'pkg')
  fs.mkdirSync(pkgDir)
  unpack(path.resolve(opts.mirror), opts.rev, pkgDir)
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
  const deps = install(opts.name, pkg)
  fs.symlinkSync(path.join(deps, 'node_modules'), path.join(pkgDir, 'node_modules'))
  opts.modules = path.join(deps, 'node_modules')

  const label = (opts.js ? 'js corestore ' + PINS.corestore : 'corestore-native ' + ROOT) + (opts.shim ? ', cores made through ' + opts.shim : '')
  console.log(`library-suite ${opts.name} ${pkg.version} (${opts.rev}) against ${label}`)
  const report = { library: opts.name, version: pkg.version, impl: opts.js ? 'js' : 'native', files: [] }
  let passed = 0
  let total = 0
  const started = Date.now()
  for (const rel of testFiles(pkgDir, opts.files)) {
    const file = rel.replace(/^test\//, '')
    const { names, error } = listTests(opts, pkgDir, rel)
    const entry = { file, total: 0, passed: 0, skipped: 0, failed: [], note: null }
    if (names === null) {
      entry.note = 'could not load: ' + error
      entry.total = 1
      entry.failed.push('(file did not load)')
    } else {
      if (opts.only) opts.isolate = true // a selection runs test by test
      entry.total = opts.only ? names.filter((x) => opts.only.test(x)).length : names.length
      const results = new Map()
      let note = null
      if (opts.isolate) {
        for (let n = 1; n <= names.length; n++) {
          if (opts.only && !opts.only.test(names[n - 1])) continue
          const r = await runFile(opts, pkgDir, rel, n)
          if (opts.verbose) console.log(r.out + r.err)
          const got = parseTap(r.out).get(n)
          const why = r.timedOut ? `timed out after ${opts.timeout} s` : failure(r)
          results.set(n, got && got.ok ? got : { ok: false, name: names[n - 1], why })
        }
      } else {
        const r = await runFile(opts, pkgDir, rel, 0)
        for (const [n, v] of parseTap(r.out)) results.set(n, v)
        if (r.timedOut) note = `timed out after ${opts.timeout} s`
        else if (r.code !== 0 && results.size < names.length) note = 'crashed: ' + lastLines(r.err)
      }
      for (let n = 1; n <= names.length; n++) {
        if (opts.only && !opts.only.test(names[n - 1])) continue
        const v = results.get(n)
        if (v && v.ok && v.skip) entry.skipped++
        else if (v && v.ok) entry.passed++
        else entry.failed.push(names[n - 1] + (v ? (v.why ? ' -- ' + v.why : '') : ' (not reached)'))
      }
      entry.note = note
    }
    passed += entry.passed
    total += entry.total - entry.skipped
    report.files.push(entry)
    const counts = `${entry.passed}/${entry.total - entry.skipped}`
    console.log(`${file.padEnd(40)} ${counts.padStart(9)}${entry.skipped ? `  (${entry.skipped} skipped)` : ''}${entry.note ? '  ' + entry.note : ''}`)
    for (const f of entry.failed) console.log(`    FAIL ${f}`)
  }
  report.passed = passed
  report.total = total
  const secs = Math.round((Date.now() - started) / 1000)
  console.log(`library-suite ${opts.name} ${report.impl}: ${passed}/${total} passed in ${secs} s`)
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n')
  return passed === total ? 0 : 1
}

// why a test failed: its first failed assertion, else the error its process died of
function failure(r) {
  const lines = r.out.split('\n')
  const at = lines.findIndex((l) => /^\s+not ok \d+/.test(l))
  if (at !== -1) {
    const detail = lines.slice(at + 1, at + 8).filter((l) => /^\s+(actual|expected|operator|at|message|code):/.test(l))
    return [lines[at].trim(), ...detail.map((l) => l.trim())].join(' | ').slice(0, 400)
  }
  if (/Test did not end/.test(r.err)) return 'test did not end (the event loop ran dry: a wait that never resolved)'
  return lastLines(r.err) || 'exit ' + r.code
}

// the first lines of the error a crashed process printed (skipping node's source excerpt)
function lastLines(s) {
  const lines = s.trim().split('\n')
  const at = lines.findIndex((l) => /^\w*(Error|Exception)\b|^Error:|^\s+at /.test(l))
  return lines.slice(at === -1 ? -3 : Math.max(0, at - 1), at === -1 ? undefined : at + 3).join(' | ').slice(0, 500)
}

if (require.main === module) {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    usage(err.message)
  }
  runSuite(opts).then(
    (code) => process.exit(code),
    (err) => {
      console.error('library-suite: ' + err.message)
      process.exit(2)
    }
  )
}

module.exports = { parseTap, testFiles, parseArgs }
