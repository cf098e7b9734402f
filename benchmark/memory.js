'use strict'

// Memory under a fast sender: 200 MB of 64 KiB blocks replicated over TCP between two
// processes, while one side stops reading its socket for 10 s. Peak RSS of each process is
// printed for JS corestore and corestore-native side by side: it must stay bounded
// (back-pressure), not grow with what the other side could send.
//
//   node benchmark/memory.js                    full size (200 MB, a 10 s stall)
//   BENCH_SCALE=0.1 node benchmark/memory.js    10% of the data and of the stall
//
// Cases: "reader stalls" (the downloading process stops reading while the server has data
// to send) and "server stalls" (the serving process stops reading while the downloader's
// requests keep coming).

const { spawn } = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')

const SCALE = Math.max(0.01, Number(process.env.BENCH_SCALE || '1') || 1)
const BLOCK = 64 * 1024
const BLOCKS = Math.max(16, Math.round((200 * 1024 * 1024 * SCALE) / BLOCK))
const STALL_MS = Math.round(10000 * Math.min(1, SCALE * 2))
const MB = 1024 * 1024

function load(impl) {
  return impl === 'js' ? require('corestore') : require('..')
}

function watchRss() {
  let peak = process.memoryUsage().rss
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
  return () => {
    clearInterval(t)
    return Math.max(peak, process.memoryUsage().rss)
  }
}

function stall(socket, ms) {
  socket.pause()
  return new Promise((resolve) => setTimeout(() => { socket.resume(); resolve() }, ms))
}

// child: serve a core of BLOCKS blocks on a TCP port; report the port, then the peak RSS
async function server(impl, stalls) {
  const Corestore = load(impl)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-mem-s-'))
  const store = new Corestore(dir)
  const core = store.get({ name: 'big' })
  await core.ready()
  const block = Buffer.alloc(BLOCK, 7)
  for (let i = 0; i < BLOCKS; i += 64) {
    const batch = []
    for (let j = i; j < Math.min(BLOCKS, i + 64); j++) batch.push(block)
    await core.append(batch)
  }
  const peak = watchRss()
  const srv = net.createServer((socket) => {
    const s = store.replicate(false)
    socket.pipe(s).pipe(socket)
    s.on('error', () => {})
    socket.on('error', () => {})
    // stall once the downloader has asked for a while
    if (stalls) setTimeout(() => stall(socket, STALL_MS), 300)
    socket.on('close', async () => {
      process.send({ peak: peak() })
      await store.close()
      fs.rmSync(dir, { recursive: true, force: true })
      process.exit(0)
    })
  })
  srv.listen(0, '127.0.0.1', () => process.send({ port: srv.address().port, key: core.key.toString('hex') }))
}

// child: download everything from the server; report peak RSS and the time
async function client(impl, port, key, stalls) {
  const Corestore = load(impl)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csn-mem-c-'))
  const store = new Corestore(dir)
  const core = store.get({ key: Buffer.from(key, 'hex') })
  await core.ready()
  const peak = watchRss()
  const socket = net.connect(port, '127.0.0.1')
  const s = store.replicate(true)
  socket.pipe(s).pipe(socket)
  s.on('error', () => {})
  socket.on('error', () => {})
  const started = Date.now()
  const dl = core.download({ start: 0, end: BLOCKS })
  if (stalls) {
    // stall once some blocks are in
    await new Promise((resolve) => {
      const onblock = () => {
        if (core.contiguousLength < BLOCKS / 10) return
        core.off('download', onblock)
        resolve()
      }
      core.on('download', onblock)
    })
    await stall(socket, STALL_MS)
  }
  await dl.done()
  const ms = Date.now() - started
  process.send({ peak: peak(), ms })
  socket.destroy()
  await store.close()
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}

function child(args) {
  const p = spawn(process.execPath, [__filename, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const messages = []
  let wake = null
  p.on('message', (m) => {
    messages.push(m)
    if (wake) wake()
  })
  return {
    next: () =>
      new Promise((resolve) => {
        if (messages.length) return resolve(messages.shift())
        wake = () => {
          wake = null
          resolve(messages.shift())
        }
      }),
    exited: new Promise((resolve) => p.on('exit', resolve))
  }
}

async function measure(impl, who) {
  const s = child(['--server', impl, who === 'server' ? '1' : '0'])
  const { port, key } = await s.next()
  const c = child(['--client', impl, String(port), key, who === 'reader' ? '1' : '0'])
  const cm = await c.next()
  const sm = await s.next()
  await Promise.all([s.exited, c.exited])
  return { server: sm.peak, client: cm.peak, ms: cm.ms }
}

async function main() {
  if (process.argv[2] === '--server') return server(process.argv[3], process.argv[4] === '1')
  if (process.argv[2] === '--client') {
    return client(process.argv[3], Number(process.argv[4]), process.argv[5], process.argv[6] === '1')
  }
  const mb = ((BLOCKS * BLOCK) / MB).toFixed(0)
  console.log(`memory: ${mb} MB of 64 KiB blocks over TCP, one side stops reading for ${STALL_MS / 1000} s`)
  console.log('')
  console.log('| case | JS corestore: server / reader peak RSS | corestore-native: server / reader peak RSS |')
  console.log('| --- | --- | --- |')
  for (const who of ['reader', 'server']) {
    const js = await measure('js', who)
    const native = await measure('native', who)
    const cell = (r) => `${(r.server / MB).toFixed(0)} MB / ${(r.client / MB).toFixed(0)} MB (${(r.ms / 1000).toFixed(1)} s)`
    console.log(`| ${who} stalls | ${cell(js)} | ${cell(native)} |`)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
