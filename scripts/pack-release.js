'use strict'
// Packs what a release publishes, the napi-rs way: the main package (JavaScript only, with
// one optionalDependency per platform package) and the platform package of every addon
// built here (npm/<platform>/ with its .node). npm installs the one platform package that
// matches the machine, so users need no compiler.
//
//   node scripts/pack-release.js [--out DIR]
//
// Prints the tarballs it wrote, one per line (the last line: JSON { main, platforms }).
// The repo's own package.json lists no optionalDependencies: they are unpublished here, and
// `npm ci` would refuse a lock file without them; the packed package.json gets them.
const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const root = path.join(__dirname, '..')
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const args = process.argv.slice(2)
const outIndex = args.indexOf('--out')
const out = path.resolve(outIndex === -1 ? path.join(root, 'dist') : args[outIndex + 1])

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const name = pkg.napi.binaryName

// npm/<dir> for each napi target, as the napi CLI names them
function platforms() {
  return fs
    .readdirSync(path.join(root, 'npm'))
    .filter((d) => fs.existsSync(path.join(root, 'npm', d, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(fs.readFileSync(path.join(root, 'npm', dir, 'package.json'), 'utf8')) }))
}

function pack(dir) {
  const res = JSON.parse(
    execFileSync(NPM, ['pack', '--json', '--pack-destination', out], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, npm_config_update_notifier: 'false' }
    })
  )
  return path.join(out, res[0].filename)
}

function copy(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true })
  fs.cpSync(from, to, { recursive: true })
}

function main() {
  fs.mkdirSync(out, { recursive: true })
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-release-'))
  try {
    // the main package: its `files` (without addons), and optionalDependencies
    const main = path.join(stage, 'main')
    for (const f of pkg.files) {
      if (f.includes('*')) continue
      const from = path.join(root, f)
      if (fs.existsSync(from)) copy(from, path.join(main, f))
    }
    for (const f of ['README.md', 'LICENSE']) {
      if (fs.existsSync(path.join(root, f))) copy(path.join(root, f), path.join(main, f))
    }
    const published = { ...pkg, optionalDependencies: {} }
    for (const p of platforms()) published.optionalDependencies[p.pkg.name] = pkg.version
    delete published.devDependencies
    fs.writeFileSync(path.join(main, 'package.json'), JSON.stringify(published, null, 2) + '\n')
    const tarballs = { main: pack(main), platforms: [] }

    // a platform package for every addon built here
    for (const p of platforms()) {
      const file = p.pkg.main
      if (!fs.existsSync(path.join(root, file))) continue
      const dir = path.join(stage, p.dir)
      copy(path.join(root, 'npm', p.dir), dir)
      copy(path.join(root, file), path.join(dir, file))
      if (p.pkg.version !== pkg.version) throw new Error(`npm/${p.dir} is at ${p.pkg.version}, the package at ${pkg.version}`)
      tarballs.platforms.push(pack(dir))
    }
    if (tarballs.platforms.length === 0) {
      throw new Error(`no ${name}.*.node built here: run npm run build first`)
    }
    for (const t of [tarballs.main, ...tarballs.platforms]) console.log(t)
    console.log(JSON.stringify(tarballs))
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

main()
