'use strict'
// Child of bad-input.test.js: runs one call with bad input on a fresh store of the
// implementation named by argv[2] ('native' or 'js') and prints what happened as JSON.
// A case runs in its own process because some calls abort or never settle in JS corestore.
const fs = require('fs')
const os = require('os')
const path = require('path')
const b4a = require('b4a')
const { errInfo } = require('./util.js')

const impl = process.argv[2]
const name = process.argv[3]
const C = impl === 'js' ? require('corestore') : require('../..')

const CASES = {
  'get(-1)': (core) => core.get(-1),
  'get(1.5)': (core) => core.get(1.5),
  "get('a')": (core) => core.get('a'),
  'get(NaN)': (core) => core.get(NaN),
  'has(-1)': (core) => core.has(-1),
  'has(0, -1)': (core) => core.has(0, -1),
  'seek(-1)': (core) => core.seek(-1),
  "seek('x')": (core) => core.seek('x'),
  'truncate(-1)': (core) => core.truncate(-1),
  'truncate(5) past the end': (core) => core.truncate(5),
  'clear(-1)': (core) => core.clear(-1),
  'append(5)': (core) => core.append(5),
  'append(null)': (core) => core.append(null),
  'treeHash(-2)': (core) => core.treeHash(-2),
  'treeHash(9) past the end': (core) => core.treeHash(9),
  'setUserData(1, x)': (core) => core.setUserData(1, 'x'),
  'markBlock(-1)': (core) => core.markBlock(-1),
  'session({ checkout }) unnamed': (core) => core.session({ checkout: 1 }).ready(),
  'store.get({ key: 5 bytes })': (core, store) => store.get({ key: b4a.alloc(5) }).ready(),
  "store.get('zzz')": (core, store) => store.get('zzz').ready(),
  'store.get({})': (core, store) => store.get({}).ready(),
  'store.namespace(5)': (core, store) => store.namespace(5),
  'store.replicate({})': (core, store) => store.replicate({}),
  'get after close': async (core) => {
    await core.close()
    return core.get(0)
  },
  'append after close': async (core) => {
    await core.close()
    return core.append('x')
  },
  'store.get after store.close': async (core, store) => {
    await store.close()
    return store.get({ name: 'other' }).ready()
  }
}

async function main() {
  if (name === '--list') return console.log(JSON.stringify(Object.keys(CASES)))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-bad-'))
  const store = new C(dir)
  const core = store.get({ name: 'bad-input' })
  await core.append(['a', 'b'])
  let result
  try {
    await CASES[name](core, store)
    result = { ok: true }
  } catch (err) {
    result = errInfo(err)
  }
  // the store still works after it, and what was committed is there
  const check = store.closing ? new C(dir) : store
  const again = check.get({ name: 'bad-input' })
  await again.ready()
  result.intact = again.length === 2 && b4a.toString(await again.get(1)) === 'b'
  await check.close()
  if (check !== store) await store.close()
  fs.rmSync(dir, { recursive: true, force: true })
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ failed: String(err && err.stack) }) + '\n')
})
