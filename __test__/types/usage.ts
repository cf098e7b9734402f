// Type-level usage of corestore-native, checked with `tsc -p __test__/types` (never executed).
// "corestore-native" is mapped to ../../index.d.ts in tsconfig.json paths, as if installed.

import Corestore = require('corestore-native') // CommonJS style
import CorestoreDefault from 'corestore-native' // esModuleInterop default import
import type { GetOptions, Hypercore, KeyPair } from 'corestore-native' // named types
import c = require('compact-encoding')
import { once } from 'events'
import { pipeline, Writable } from 'stream'

// Exact type equality: assertType<Equal<A, B>>(true) fails to compile unless A and B are identical.
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
function assertType<T extends true>(ok: T): T {
  return ok
}

export async function usage(): Promise<void> {
  // Both import styles refer to the same class.
  const sameClass: typeof Corestore = CorestoreDefault
  void sameClass

  const store = new Corestore('./storage')
  const store2 = new CorestoreDefault('./storage2', {
    primaryKey: Buffer.alloc(32),
    unsafe: true,
    writable: true,
    readOnly: false,
    manifestVersion: 1,
    namespace: Buffer.alloc(32)
  })
  await store.ready()
  await store2.close()

  const pk: Buffer | null = store.primaryKey
  const flags: boolean[] = [store.opened, store.closed]
  const closing: Promise<void> | null = store.closing
  void pk
  void flags
  void closing

  // ---- get(): value type follows valueEncoding
  const bin = store.get({ name: 'bin' })
  assertType<Equal<typeof bin, Hypercore<Buffer>>>(true)
  const byKey = store.get(Buffer.alloc(32))
  const byKeyString = store.get('a'.repeat(64))
  assertType<Equal<typeof byKeyString, Hypercore<Buffer>>>(true)
  const byOpts = store.get({
    key: Buffer.alloc(32),
    valueEncoding: 'binary',
    writable: false,
    exclusive: false,
    wait: false,
    timeout: 1000,
    createIfMissing: false
  })
  assertType<Equal<typeof byOpts, Hypercore<Buffer>>>(true)
  const kp: KeyPair = await store.createKeyPair('writer')
  const byKeyPair = store.get({ keyPair: kp, manifest: { version: 1, signers: [{ publicKey: kp.publicKey }] } })
  const byDiscoveryKey = store.get({ discoveryKey: Buffer.alloc(32) })
  void byKey
  void byKeyPair
  void byDiscoveryKey

  const text = store.get({ name: 'text', valueEncoding: 'utf-8' })
  assertType<Equal<typeof text, Hypercore<string>>>(true)
  const json = store.get({ name: 'json', valueEncoding: 'json' })
  assertType<Equal<typeof json, Hypercore<any>>>(true)
  const nums = store.get({ name: 'nums', valueEncoding: c.uint })
  assertType<Equal<typeof nums, Hypercore<number>>>(true)

  const opts: GetOptions = { name: 'dynamic' }
  const dynamic = store.get(opts)
  void dynamic

  // ---- Hypercore properties
  await bin.ready()
  const key: Buffer | null = bin.key
  const dkey: Buffer | null = bin.discoveryKey
  const id: string | null = bin.id
  const lengths: number[] = [bin.length, bin.contiguousLength, bin.byteLength, bin.fork, bin.signedLength]
  const bools: boolean[] = [bin.writable, bin.readable, bin.opened, bin.closed]
  const manifestVersion: number | undefined = bin.manifest?.version
  const secretKey: Buffer | null | undefined = bin.keyPair?.secretKey
  const peerCount: number = bin.peers.length
  void [key, dkey, id, lengths, bools, manifestVersion, secretKey, peerCount]
  const rawManifest: Buffer | null = bin.getManifest({ raw: true })
  const manifestObject = bin.getManifest()
  void manifestObject?.signers
  if (rawManifest !== null) void store.get({ manifest: rawManifest })
  void bin.session({ manifest: { prologue: { hash: Buffer.alloc(32), length: 1 } } })

  // ---- append / get
  const { length, byteLength } = await bin.append(Buffer.from('a'))
  assertType<Equal<typeof length | typeof byteLength, number>>(true)
  await bin.append([Buffer.from('b'), Buffer.from('c')])
  await bin.append('strings are fine on binary cores')
  const block = await bin.get(0)
  assertType<Equal<typeof block, Buffer | null>>(true)
  const local = await bin.get(0, { wait: false, timeout: 10 })
  assertType<Equal<typeof local, Buffer | null>>(true)
  const asText = await bin.get(0, { valueEncoding: 'utf-8' })
  assertType<Equal<typeof asText, string | null>>(true)
  const raw = await json.get(0, { raw: true })
  assertType<Equal<typeof raw, Buffer | null>>(true)

  await text.append('hello')
  await text.append(['a', 'b'])
  const s = await text.get(0)
  assertType<Equal<typeof s, string | null>>(true)

  await json.append({ any: ['thing'] })
  await nums.append([1, 2, 3])
  const n = await nums.get(1)
  assertType<Equal<typeof n, number | null>>(true)

  // ---- the rest of the session API
  const has: boolean = await bin.has(0)
  const hasRange: boolean = await bin.has(0, 2)
  const [index, relativeOffset] = await bin.seek(3)
  const maybeSeek = await bin.seek(3, { wait: false })
  assertType<Equal<typeof maybeSeek, [index: number, relativeOffset: number] | null>>(true)
  await bin.truncate(1)
  await bin.truncate(1, { fork: 5 })
  await bin.truncate(1, 6)
  const cleared = await bin.clear(0, 1, { diff: true })
  const blocks: number | undefined = cleared?.blocks
  await bin.clear(0)
  await bin.clear(0, { diff: false })
  const hash: Buffer = await bin.treeHash()
  const hashAt: Buffer = await bin.treeHash(1)
  const info = await bin.info({ storage: false })
  const infoNums: number[] = [info.length, info.contiguousLength, info.byteLength, info.fork, info.padding]
  const updated: boolean = await bin.update({ wait: true })
  void [has, hasRange, index, relativeOffset, blocks, hash, hashAt, infoNums, updated]

  const sess = text.session()
  assertType<Equal<typeof sess, Hypercore<Buffer>>>(true) // valueEncoding is not inherited
  const sessText = bin.session({ valueEncoding: 'utf-8', writable: false })
  assertType<Equal<typeof sessText, Hypercore<string>>>(true)
  const snap = bin.snapshot()
  const snapJson = bin.snapshot({ valueEncoding: 'json' })
  assertType<Equal<typeof snapJson, Hypercore<any>>>(true)
  await Promise.all([sess.close(), sessText.close(), snap.close(), snapJson.close()])

  for await (const value of text.createReadStream({ start: 0, end: 2, live: false })) {
    assertType<Equal<typeof value, string>>(true)
  }
  for await (const chunk of bin.createByteStream({ byteOffset: 1, byteLength: 2 })) {
    assertType<Equal<typeof chunk, Buffer>>(true)
  }
  const rs = bin.createReadStream()
  rs.on('data', (data) => {
    assertType<Equal<typeof data, Buffer>>(true)
  })
  pipeline(rs, new Writable(), () => {})

  await bin.setUserData('k', Buffer.from('v'))
  await bin.setUserData('k', 'v')
  const ud: Buffer | null = await bin.getUserData('k')
  void ud

  // ---- events
  bin.on('append', () => {})
  bin.once('ready', () => {})
  bin.on('truncate', (ancestors, forkId) => {
    assertType<Equal<typeof ancestors | typeof forkId, number>>(true)
  })
  bin.on('peer-add', (peer) => {
    const remote: Buffer = peer.remotePublicKey
    void remote
    const sent: number = peer.stats.wireData.tx
    void sent
  })
  bin.on('peer-remove', () => {})
  bin.off('append', () => {})
  bin.on('close', () => {})
  bin.on('some-other-event', (...args: any[]) => void args)
  await once(bin, 'append') // works with events.once (still a NodeJS EventEmitter)

  await bin.close()

  // ---- store API
  const sessionStore: Corestore = store.session({ writable: false })
  const ns: Corestore = store.namespace('app').namespace(Buffer.from('sub'))
  const nsKeyPair = await ns.createKeyPair('x', Buffer.alloc(32))
  const nsPub: Buffer = nsKeyPair.publicKey
  void nsPub

  for await (const discoveryKey of store.list()) {
    assertType<Equal<typeof discoveryKey, Buffer>>(true)
  }
  const listed = store.list(Buffer.alloc(32))
  listed.on('data', (dk) => {
    assertType<Equal<typeof dk, Buffer>>(true)
  })

  const onCore = (core: Corestore.WatchedCore): void => {
    const weak: Hypercore<Buffer> = new Corestore.Hypercore({ core, weak: true })
    weak.on('append', () => void weak.length)
    void core.key
    void core.replicator.pushOnly
    const received: number = core.replicator.stats.wireRequest.rx + core.replicator.stats.backoffs
    void received
    const batchState = core.sessionStates.find((s) => s.name === 'batch' && s.atomized === null)
    if (batchState) {
      void batchState.mutex.lock().then(() => batchState._unlock())
      const rx = batchState.storage.read()
      void rx.getTreeNode(1).then((n) => n === null || n.size)
    }
    void core.storage.createSession('batch', null).then((s) => {
      const tx = s.write()
      tx.setDependency({ dataPointer: 1, length: 3 })
      return tx.flush().then(() => s.close())
    })
  }
  store.watch(onCore)
  store.unwatch(onCore)

  const topic = Buffer.alloc(32, 1)
  const handle: Corestore.GroupNotifyHandle = store.notifyGroup(topic)
  handle.on('update', (u) => assertType<Equal<typeof u, Corestore.GroupUpdate>>(true))
  for await (const key of handle.updates({ reverse: false })) assertType<Equal<typeof key, Buffer>>(true)
  handle.destroy()
  store.on('group-active', (t, u) => void [t.byteLength, u.length])
  await store.get({ name: 'g', group: topic }).setGroup(topic)
  for await (const { key, audit } of store.audit({ dryRun: true })) void [key, audit.droppedBlocks, audit.corrupt]
  void [store.storage.db.path, store.storage.treeCache.maxSize, store.cores.map.size, store.sessions.size]

  await store.suspend()
  await store.resume()

  const replStream = store.replicate(true)
  replStream.pipe(store2.replicate(false)).pipe(replStream)
  const secret = store.get({ name: 'secret', encryptionKey: Buffer.alloc(32) })
  await secret.setEncryptionKey(Buffer.alloc(32), { block: true })
  await secret.setEncryption(secret.encryption)
  const pad: number = secret.padding
  void pad
  const chat = json.registerExtension<{ text: string }>('chat', {
    encoding: 'json',
    onmessage: (m, peer) => void [m.text, peer]
  })
  chat.broadcast({ text: 'hi' })
  chat.destroy()
  const auth = await store.getAuth(Buffer.alloc(32))
  if (auth !== null) void [auth.key, auth.manifest, auth.keyPair?.secretKey]
  const oneCore: Corestore.ReplicationStream = json.replicate(true)
  const added = nums.replicate(oneCore)
  assertType<Equal<typeof added, Corestore.ReplicationStream>>(true)
  const conn = new Writable() as unknown as NodeJS.ReadWriteStream
  const same = store.replicate(conn, { keepAlive: false })
  assertType<Equal<typeof same, NodeJS.ReadWriteStream>>(true)

  store.on('close', () => {})
  await sessionStore.close()
  await ns.close()
  await store.close()
}

// ---- wrong usage is rejected
export async function misuse(store: Corestore, core: Hypercore, text: Hypercore<string>): Promise<void> {
  // @ts-expect-error storage path is required
  new Corestore()
  // @ts-expect-error primaryKey must be a Buffer
  new Corestore('./s', { primaryKey: 'abc' })
  // @ts-expect-error name must be a string
  store.get({ name: 5 })
  // @ts-expect-error unknown value encoding
  store.get({ name: 'x', valueEncoding: 'utf-9' })
  // @ts-expect-error unknown option
  store.get({ name: 'x', nmae: 'typo' })
  // @ts-expect-error blocks are Buffers/strings, not numbers
  await core.append(123)
  // @ts-expect-error utf-8 cores take strings
  await text.append({ not: 'a string' })
  // @ts-expect-error block index must be a number
  await core.get('0')
  // @ts-expect-error the result is Buffer | null, not string
  const str: string = await core.get(0)
  void str
  // @ts-expect-error seek resolves to a tuple
  const offset: number = await core.seek(10)
  void offset
  // @ts-expect-error length is read-only
  core.length = 10
  // @ts-expect-error user data keys are strings
  await core.setUserData(1, 'v')
  // @ts-expect-error namespace needs a name
  store.namespace()
  // @ts-expect-error list() takes a namespace Buffer
  store.list('ns')
}
