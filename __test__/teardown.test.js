'use strict'
// Stream teardown in every pairing, side by side with JS corestore (issue 11). Each case runs in
// its own process (helpers/teardown-case.js) on the implementation and on JS corestore: a
// replication stream destroyed from either end, before any byte, after the first Noise message
// only, after the first two (one side done with its handshake), after the channel opened, and in the middle of a large download (also synchronously
// from inside a 'download' event); over a TCP socket (the
// stream or the socket destroyed), piped to another stream of the implementation, piped to a JS
// corestore stream, on @hyperswarm/secret-stream connections linked in process, and on real
// Hyperswarm connections (inside `unshare -n`, skipped where that is not permitted).
//
// Every case, for the implementation:
// - the process exits normally with nothing on stderr (an uncaught exception or an unhandled
//   'error' event would end it);
// - both streams emit 'close', and the destroyed one emits no 'error';
// - the other stream emits an 'error' only as JS's does: in process pairings the same codes as
//   JS in the same case; over sockets (where which of ECONNRESET, EPIPE or PREMATURE_CLOSE comes
//   first depends on timing, for JS too) only those transport codes;
// - no peers are left, both stores append and read, and a new stream between them replicates;
// - the stores close.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('path')
const { spawn, spawnSync } = require('child_process')

const CASE = path.join(__dirname, 'helpers', 'teardown-case.js')
const IMPL = process.env.CORESTORE_IMPL === 'corestore' ? 'js' : 'native'
const PHASES = ['before', 'handshake', 'handshake2', 'opened', 'transfer', 'in-event']
const TRANSPORT_ERRORS = ['ECONNRESET', 'EPIPE', 'PREMATURE_CLOSE']

function cases() {
  const out = []
  for (const phase of PHASES) {
    for (const end of ['near', 'far', 'near-socket', 'far-socket']) out.push(['tcp', 'writer', end, phase])
    for (const end of ['near', 'far']) {
      out.push(['pipe', 'writer', end, phase])
      out.push(['js', 'writer', end, phase])
      out.push(['js', 'reader', end, phase])
      out.push(['secret', 'writer', end, phase])
      // a Hyperswarm connection is handed out once its handshake is done
      if (['before', 'opened', 'transfer'].includes(phase)) out.push(['swarm', 'writer', end, phase])
    }
  }
  return out
}

const netns = (() => {
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { encoding: 'utf8' })
  return !probe.error && probe.status === 0
})()

function run(impl, c) {
  const args = [CASE, impl, ...c]
  const [cmd, argv] =
    c[0] === 'swarm'
      ? ['unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, ...args]]
      : [process.execPath, args]
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 90000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const last = stdout.trim().split('\n').pop()
      let result = null
      try {
        result = JSON.parse(last)
      } catch {}
      resolve({ code, signal, stderr: stderr.trim(), result })
    })
  })
}

function errorsOf(r, side) {
  return r.result && r.result[side] ? r.result[side].errors : null
}

function problems(c, ours, js) {
  const [pairing, , end] = c
  const bad = []
  if (ours.signal || ours.code !== 0) bad.push(`exit ${ours.signal || ours.code}`)
  if (ours.stderr) bad.push(`stderr: ${ours.stderr.slice(0, 400)}`)
  const r = ours.result
  if (!r || r.fatal) return bad.concat(r ? [`fatal: ${r.fatal}`] : ['no result'])
  for (const side of ['near', 'far']) if (!r[side].closed) bad.push(`${side} stream did not close`)
  const destroyed = end.startsWith('near') ? 'near' : 'far'
  if (!end.endsWith('socket') && r[destroyed].errors.length > 0) {
    bad.push(`the destroyed ${destroyed} stream emitted ${r[destroyed].errors}`)
  }
  // our streams: the near one always, the far one unless it is JS's
  const ourSides = pairing === 'js' ? ['near'] : ['near', 'far']
  for (const side of ourSides) {
    const got = r[side].errors
    if (pairing === 'tcp' || pairing === 'swarm') {
      const odd = got.filter((code) => !TRANSPORT_ERRORS.includes(code))
      if (odd.length) bad.push(`${side} emitted ${odd} (JS: ${errorsOf(js, side)})`)
    } else if (js && js.result && !js.result.fatal) {
      const want = errorsOf(js, side)
      if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`${side} emitted [${got}], JS [${want}]`)
    }
  }
  if (r.peers.writer !== 0 || r.peers.reader !== 0) bad.push(`peers left: ${JSON.stringify(r.peers)}`)
  if (r.coreWorks !== true) bad.push('the cores stopped working')
  if (r.replicatesAgain !== true) bad.push('a new stream did not replicate')
  for (const n of r.notes) if (/^(core|new stream|close):/.test(n)) bad.push(n)
  return bad
}

function summary(r) {
  if (!r.result || r.result.fatal) return `exit ${r.signal || r.code}`
  const e = (side) => r.result[side].errors.join('+') || '-'
  return `near ${e('near')}, far ${e('far')}`
}

test('teardown in every pairing and phase: no uncaught error, close on both ends, cores keep working, a new stream replicates', { timeout: 1200000 }, async (t) => {
  const all = cases().filter((c) => c[0] !== 'swarm' || netns)
  if (!netns) t.diagnostic('unshare -n not permitted: the Hyperswarm cases are skipped')
  const wrong = []
  for (const c of all) {
    const ours = await run(IMPL, c)
    const js = IMPL === 'js' ? ours : await run('js', c)
    const name = c.join(' ')
    t.diagnostic(`${name}: ${summary(ours)}  (JS: ${summary(js)})`)
    if (IMPL === 'js' && (js.signal || js.code !== 0)) continue // JS's own behaviour is the reference
    const bad = problems(c, ours, js)
    if (bad.length) wrong.push(`${name}: ${bad.join('; ')}`)
  }
  assert.deepEqual(wrong, [])
})
