// Type definitions for corestore-native, a drop-in replacement for corestore 7
// (with hypercore 11 sessions).
//
// CommonJS shape (`export =`), so all of these work:
//   const Corestore = require('corestore-native')          // JS / checkJs
//   import Corestore = require('corestore-native')         // TS, CommonJS
//   import Corestore from 'corestore-native'               // TS with esModuleInterop, or ESM (node16/nodenext)
// Option and result types are named members of the merged `Corestore` namespace:
//   import type { GetOptions, Hypercore } from 'corestore-native'   (or Corestore.Hypercore)

/// <reference types="node" />

import { EventEmitter } from 'events'

declare class Corestore extends EventEmitter {
  /**
   * Open (or create) a store in the directory `storage`.
   * Passing `primaryKey` requires `unsafe: true`, as in corestore.
   */
  constructor(storage: string, opts?: Corestore.CorestoreOptions)

  /** The 32-byte primary key all named keypairs derive from. `null` until the store is ready (unless passed in). */
  readonly primaryKey: Buffer | null
  /** True once `ready()` has resolved. */
  readonly opened: boolean
  /** The close promise once `close()` has been called, else `null`. */
  readonly closing: Promise<void> | null
  /** True once fully closed. */
  readonly closed: boolean
  /** The open promise once opening has started, else `null`. */
  readonly opening: Promise<void> | null
  /** True if the store was opened with `writable: false` or `readOnly: true`. */
  readonly readOnly: boolean
  /** The manifest version used for cores created by name (default 1). */
  readonly manifestVersion: number
  /** The 32-byte namespace of this store session (32 zero bytes for the default namespace). */
  readonly ns: Buffer
  /** What the store's storage is: its directory, RocksDB path, read-only mode, tree cache options. */
  readonly storage: Corestore.StorageInfo
  /** The `globalCache` option, passed down to every core (`core.globalCache`). */
  readonly globalCache: unknown
  /** The open cores of the store tree, by discovery key (hex). */
  readonly cores: Corestore.CoreList
  /** This store session's core sessions. */
  readonly sessions: Corestore.SessionList

  ready(): Promise<void>
  /** Close this store session and every core session opened from it (the root closes everything). */
  close(): Promise<void>

  /** Open a core session by key (Buffer, hex or z32 string). */
  get(key: Buffer | string): Corestore.Hypercore<Buffer>
  /**
   * Open a core session by `name` (a writable core derived from the primary key and namespace),
   * `key`, `keyPair`, `manifest` or `discoveryKey`. The session's value type follows `valueEncoding`:
   * none/'binary' → Buffer, 'utf-8' (and other string encodings) → string, 'json' → any,
   * a compact-encoding codec → its decoded type.
   */
  get<E extends Corestore.ValueEncoding | undefined = undefined>(
    opts: Corestore.GetOptions<E>
  ): Corestore.Hypercore<Corestore.EncodingValue<E>>

  /** A new store session sharing the same storage and cores. Closing it closes the cores opened through it. */
  session(opts?: Corestore.SessionOptions): Corestore
  /** A session in the sub-namespace `name` of this store's namespace. Namespaces can be chained. */
  namespace(name: string | Buffer, opts?: Corestore.SessionOptions): Corestore

  /** Derive the keypair for `name` in namespace `ns` (default: this session's namespace). */
  createKeyPair(name: string | Buffer, ns?: Buffer): Promise<Corestore.KeyPair>

  /** Stream the discovery keys of all stored cores, or only those created by name in `namespace`. */
  list(namespace?: Buffer): Corestore.ReadStream<Buffer>

  /**
   * Call `fn` with every core opened in the store from now on (the shared core, as corestore
   * hands out its internal core): open weak sessions on it with
   * `new Corestore.Hypercore({ core, weak: true })`.
   */
  watch(fn: Corestore.WatchCallback): void
  unwatch(fn: Corestore.WatchCallback): void

  /** Suspend the underlying storage (e.g. when the app goes to the background). */
  suspend(opts?: Corestore.SuspendOptions): Promise<void>
  resume(): Promise<void>

  /** Signal that peers are being looked for; call the returned function when the discovery round is done. */
  findingPeers(): () => void

  /** A handle that reports head changes of the cores in the group of `topic`. */
  notifyGroup(topic: Buffer): Corestore.GroupNotifyHandle

  /** hypercore's audit of every stored core (tree, blocks, bitfield), repaired unless `dryRun`. */
  audit(opts?: { dryRun?: boolean }): AsyncIterable<Corestore.AuditEntry>

  /** The stored identity of a core, or null when this store does not have it. */
  getAuth(discoveryKey: Buffer): Promise<Corestore.CoreAuth | null>

  /**
   * The core's data under a new key with no signers, whose prologue is the core's signed
   * head: a core that can never change. Returns a session on it. The original key's record
   * then holds the static core (reopening the original gives STORAGE_CONFLICT).
   */
  staticify(core: Corestore.Hypercore<any>, opts?: Corestore.GetOptions): Promise<Corestore.Hypercore>

  /**
   * Replicate every core of the store over a stream. Pass `true`/`false` (initiator or not)
   * to get a new replication stream, or an existing stream (e.g. a Hyperswarm connection),
   * which is returned.
   */
  replicate<S extends Corestore.StreamLike>(stream: S, opts?: Corestore.ReplicateOptions): S
  replicate(isInitiator: boolean, opts?: Corestore.ReplicateOptions): Corestore.ReplicationStream

  on<K extends keyof Corestore.CorestoreEvents>(event: K, listener: Corestore.CorestoreEvents[K]): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once<K extends keyof Corestore.CorestoreEvents>(event: K, listener: Corestore.CorestoreEvents[K]): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
  off<K extends keyof Corestore.CorestoreEvents>(event: K, listener: Corestore.CorestoreEvents[K]): this
  off(event: string | symbol, listener: (...args: any[]) => void): this
  addListener<K extends keyof Corestore.CorestoreEvents>(event: K, listener: Corestore.CorestoreEvents[K]): this
  addListener(event: string | symbol, listener: (...args: any[]) => void): this
  removeListener<K extends keyof Corestore.CorestoreEvents>(event: K, listener: Corestore.CorestoreEvents[K]): this
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this
}

declare namespace Corestore {
  // ---------------------------------------------------------------------------
  // Store options

  interface CorestoreOptions {
    /** 32-byte primary key to use instead of the stored/generated one. Requires `unsafe: true`. */
    primaryKey?: Buffer | null
    /** Acknowledge that passing `primaryKey` is unsafe. */
    unsafe?: boolean
    /** `false` opens every core read-only (same as `readOnly: true`). Default true. */
    writable?: boolean
    /** Open the storage read-only. */
    readOnly?: boolean
    /** Manifest version for cores created by name. Default 1. */
    manifestVersion?: number
    /** 32-byte namespace for this store (default: 32 zero bytes). */
    namespace?: Buffer
    /** Attach downloading cores to replication streams. Default true. */
    active?: boolean
    /** Whether `suspend()` suspends the storage. Default true (false on Android in corestore). */
    suspend?: boolean
    /** Wait for the storage lock instead of failing if another process holds it. */
    wait?: boolean
    /** Open a copy of a store (a backup, a fixture) for writing: the `CORESTORE` device file is neither checked nor locked (hypercore-storage's `allowBackup`). */
    allowBackup?: boolean
    /** hypercore-storage's tree cache options, reported in `store.storage.treeCache`. */
    treeCache?: { maxSize?: number; maxAge?: number }
    /** An object passed down to every core as `core.globalCache` (hypercore keeps it for its users). */
    globalCache?: unknown
  }

  /** Options of `store.session()` / `store.namespace()`. */
  interface SessionOptions {
    namespace?: Buffer
    manifestVersion?: number
    writable?: boolean
    readOnly?: boolean
    active?: boolean
    suspend?: boolean
  }

  interface SuspendOptions {
    /** Progress logger, awaited between steps. */
    log?: (message: string) => unknown
  }

  interface CorestoreEvents {
    ready: () => void
    close: () => void
    /** A core of group `topic` changed its head (append, truncate, an upgrade from a peer). */
    'group-active': (topic: Buffer, update: GroupUpdate) => void
  }

  type WatchCallback = (core: WatchedCore) => void

  /** What store.watch() hands out and store.cores lists: the core shared by its sessions. */
  interface WatchedCore {
    readonly key: Buffer
    readonly discoveryKey: Buffer
    readonly id: string
    readonly manifest: Manifest | null
    readonly length: number
    readonly byteLength: number
    readonly fork: number
    /** Every session open on the core. */
    readonly sessions: Hypercore<unknown>[]
    readonly header: {
      key: Buffer
      manifest: Manifest | null
      keyPair: KeyPairLike | null
      group: { key: Buffer } | null
      tree: { fork: number; length: number; signature: null }
      hints: { contiguousLength: number; remoteContiguousLength: number; recovering: number }
    }
    readonly replicator: ReplicatorState
    /** The default state's hypercore-storage view. */
    readonly storage: StateStorage
    /** The default state, then the named, atomic and snapshot states open on the core. */
    readonly sessionStates: SessionState[]
    readonly globalCache: unknown
    /** Set once the core closes (its last strong session did). */
    readonly closing: Promise<void> | null
    readonly closed: boolean
    hasSession(): boolean
    addMonitor(session: object): void
    removeMonitor(session: object): void
    setGroup(topic: Buffer): Promise<void>
    audit(opts?: { dryRun?: boolean }): Promise<AuditResult>
  }

  interface HypercoreConstructor {
    /** A session on a watched core; `weak` sessions do not keep it open. */
    new <T = Buffer>(opts: { core: WatchedCore; weak?: boolean; valueEncoding?: ValueEncoding }): Hypercore<T>
  }

  /** The package's Hypercore session class, for sessions on watched cores. */
  const Hypercore: HypercoreConstructor

  interface ReplicatorState {
    /** hypercore's push-only mode: the core answers peers but requests nothing. */
    readonly pushOnly: boolean
    setPushOnly(pushOnly: boolean): void
    readonly peers: HypercorePeer[]
    readonly inflightRange: [number, number]
    /** Block requests each channel of this core keeps in flight: at least min, at most max. */
    setInflightRange(min: number | [number, number], max?: number): void
    /** Messages of every channel this core had, by kind (live: the numbers grow). */
    readonly stats: ReplicationStats
  }

  interface WireCount {
    /** Messages sent. */
    readonly tx: number
    /** Messages received. */
    readonly rx: number
  }

  /** hypercore's replication stats; each number is read when it is read. */
  interface ReplicationStats {
    readonly wireSync: WireCount
    readonly wireRequest: WireCount
    readonly wireCancel: WireCount
    readonly wireData: WireCount
    readonly wireWant: WireCount
    readonly wireUnwant: WireCount
    readonly wireBitfield: WireCount
    readonly wireRange: WireCount
    readonly wireExtension: WireCount
    /** Always 0: the engine does not race a block to a second peer. */
    readonly hotswaps: number
    readonly invalidData: number
    readonly invalidRequests: number
    /** No-data answers to our requests, reason INVALID_REQUEST. */
    readonly backoffs: number
    /** No-data answers to our requests, reason NOT_AVAILABLE. */
    readonly notAvailableBackoffs: number
  }

  interface StorageInfo {
    /** The store directory. */
    readonly path: string
    readonly readOnly: boolean
    readonly db: { readonly path: string }
    /** The `treeCache` options (default maxSize 8192); the engine sizes its own per-core node cache. */
    readonly treeCache: { readonly maxSize: number; readonly maxAge: number }
    /** An atom: writes of several cores' sessions ({ atom }) that land as one on flush(). */
    createAtom(): Atom
    getAuth(discoveryKey: Buffer): Promise<CoreAuth | null>
  }

  interface CoreList extends Iterable<WatchedCore> {
    readonly map: Map<string, WatchedCore>
    readonly size: number
    get(id: string | Buffer): WatchedCore | null
  }

  interface SessionList extends Iterable<Hypercore<unknown>> {
    readonly size: number
    list(id?: string): Hypercore<unknown>[]
  }

  interface GroupUpdate {
    key: Buffer
    length: number
    fork: number
  }

  /** store.notifyGroup(topic): 'update' events while attached (index !== -1). */
  class GroupNotifyHandle extends EventEmitter {
    constructor(store: Corestore, topic: Buffer)
    /** The handle's place in the store's list; -1 when not attached. */
    index: number
    /** The keys of the group's cores by their last head change, newest first unless `reverse: false`. */
    updates(opts?: { since?: number; reverse?: boolean }): ReadStream<Buffer>
    destroy(): void
    on(event: 'update', listener: (update: GroupUpdate) => void): this
    on(event: string | symbol, listener: (...args: any[]) => void): this
  }

  /** hypercore's audit result for one core. */
  interface AuditResult {
    treeNodes: number
    blocks: number
    bits: number
    droppedTreeNodes: number
    droppedBlocks: number
    droppedBits: number
    /** A root of the tree is missing (hypercore deletes such a core; we report it). */
    corrupt: boolean
  }

  interface AuditEntry {
    discoveryKey: Buffer
    key: Buffer
    audit: AuditResult
  }

  // ---------------------------------------------------------------------------
  // Keys and manifests

  interface KeyPair {
    publicKey: Buffer
    secretKey: Buffer
  }

  /** A keypair as accepted in options and exposed on sessions: the secret key may be absent. */
  interface KeyPairLike {
    publicKey: Buffer
    secretKey?: Buffer | null
  }

  interface ManifestSigner {
    signature: 'ed25519'
    namespace: Buffer
    publicKey: Buffer
  }

  interface Prologue {
    hash: Buffer
    length: number
  }

  /** A parsed manifest, as returned by `core.manifest`. */
  interface Manifest {
    version: number
    hash: 'blake2b'
    allowPatch: boolean
    quorum: number
    signers: ManifestSigner[]
    prologue: Prologue | null
    linked: Buffer[] | null
    userData: Buffer | null
  }

  /** A manifest as accepted by `get({ manifest })`: everything but the signers' public keys is optional. */
  interface ManifestInput {
    version?: number
    hash?: 'blake2b'
    allowPatch?: boolean
    quorum?: number
    /** None: a core no one signs (a prologue core). */
    signers?: Array<{ publicKey: Buffer; namespace?: Buffer; signature?: 'ed25519' }>
    prologue?: Prologue | null
    linked?: Buffer[] | null
    userData?: Buffer | null
  }

  // ---------------------------------------------------------------------------
  // Value encodings

  /** compact-encoding style state. */
  interface EncodingState {
    start: number
    end: number
    buffer: Uint8Array | null
  }

  /** A compact-encoding codec (e.g. `c.uint`, `c.string`, `c.json`, or your own). */
  interface Codec<I = any, O = I> {
    preencode(state: EncodingState, value: I): void
    encode(state: EncodingState, value: I): void
    decode(state: EncodingState): O
  }

  type StringEncodingName =
    | 'utf-8'
    | 'utf8'
    | 'ascii'
    | 'hex'
    | 'base64'
    | 'utf16le'
    | 'utf-16le'
    | 'ucs2'
    | 'ucs-2'

  type ValueEncoding = 'binary' | 'json' | 'ndjson' | StringEncodingName | Codec<any, any>

  /** The block type of a session opened with valueEncoding `E`. */
  type EncodingValue<E> = [E] extends [undefined | null | 'binary']
    ? Buffer
    : [E] extends ['json' | 'ndjson']
      ? any
      : [E] extends [StringEncodingName]
        ? string
        : [E] extends [{ decode(state: EncodingState): infer O }]
          ? O
          : any

  /**
   * What `append` accepts on a `Hypercore<T>`: values of `T` (encoded with the session's
   * encoding) or raw Buffers (stored as is); binary sessions also take strings and Uint8Arrays.
   */
  type AppendValue<T> = T | Buffer | (T extends Buffer ? string | Uint8Array : never)

  // ---------------------------------------------------------------------------
  // store.get()

  interface CoreAuth {
    key: Buffer
    discoveryKey: Buffer
    manifest: Manifest | null
    keyPair: { publicKey: Buffer; secretKey: Buffer | null } | null
    encryptionKey: Buffer | null
  }

  interface EncryptionOptions {
    key: Buffer
    block?: boolean
  }

  interface ExtensionHandlers<M> {
    /** compact-encoding codec or name ('json', 'utf-8', 'binary', ...); default: buffer */
    encoding?: ValueEncoding
    onmessage?: (message: M, peer: HypercorePeer) => void
  }

  interface Extension<M> {
    readonly name: string
    send(message: M, peer: HypercorePeer): void
    broadcast(message: M): void
    destroy(): void
  }

  /** hypercore's encryption provider interface (the default is XSalsa20 with 8 bytes of padding). */
  interface EncryptionProvider {
    padding(core: unknown, index: number): number
    encrypt(index: number, block: Buffer, fork: number, core: unknown): void | Promise<void>
    decrypt(index: number, block: Buffer, core: unknown): void | Promise<void>
  }

  interface GetOptions<E extends ValueEncoding | undefined = ValueEncoding | undefined> {
    /** Public key of the core (Buffer, hex or z32 string). */
    key?: Buffer | string | null
    /** Name of a writable core, keypair derived from the primary key and the store's namespace. */
    name?: string
    keyPair?: KeyPairLike | null
    /** A manifest object, or its encoding (`getManifest({ raw: true })`). */
    manifest?: ManifestInput | Buffer | null
    /** Open an existing core by discovery key (fails with STORAGE_EMPTY if it is not stored). */
    discoveryKey?: Buffer | string | null
    valueEncoding?: E
    /** `false` opens a read-only session. */
    writable?: boolean
    /** Wait until no other exclusive session of the core is open. */
    exclusive?: boolean
    /** Wait for blocks from peers in `get`/`seek` (default true). */
    wait?: boolean
    /** Milliseconds to wait for blocks from peers, 0 = forever (default 0). */
    timeout?: number
    /** Create the core if it is not stored (default true). */
    createIfMissing?: boolean
    /** Overwrite an existing core stored under the same discovery key. */
    overwrite?: boolean
    force?: boolean
    /** Keep replication active for this session (default true). */
    active?: boolean
    /** The core's `globalCache` when this get opens it (default: the store's). */
    globalCache?: unknown
    encryption?: Buffer | EncryptionOptions | EncryptionProvider | null
    /** Legacy form of `encryption`. */
    encryptionKey?: Buffer | null
    isBlockKey?: boolean
    /** Called when a `get` has to wait for a block from peers. */
    onwait?: ((index: number, core: Hypercore<any>) => void) | null
    pushOnly?: boolean
    draft?: boolean
    /** 32-byte group topic. */
    group?: Buffer | null
    /** Promise of options merged in before the core is opened. */
    preload?: Promise<Partial<GetOptions>> | null
    notDownloadingLinger?: number
    allowFork?: boolean
    allowPush?: boolean
    allowLatestBlock?: boolean
    inflightRange?: [number, number] | null
    legacy?: boolean
  }

  // ---------------------------------------------------------------------------
  // Hypercore sessions

  interface HypercoreSessionOptions<E extends ValueEncoding | undefined = ValueEncoding | undefined> {
    /** Not inherited from the parent session: omit it for a binary session. */
    valueEncoding?: E
    writable?: boolean
    wait?: boolean
    timeout?: number
    onwait?: ((index: number, core: Hypercore<any>) => void) | null
    /** Close automatically when all non-weak sessions are closed. */
    weak?: boolean
    exclusive?: boolean
    /** Pin length/byteLength/fork at the time of opening. */
    snapshot?: boolean
    /** Named (persisted) branch of the core. */
    name?: string
    /** Length to check out a named or atomic session at. */
    checkout?: number
    /** An atom (`state.storage.createAtom()`): this session's writes wait in it until atom.flush(). */
    atom?: Atom
    overwrite?: boolean
    /** The blocks an append of these values adds, instead of one encoded block per value (not inherited). */
    encodeBatch?: ((values: any[]) => Array<Buffer | Uint8Array | string>) | null
    keyPair?: KeyPairLike | null
    /** Stored for a core that has no manifest yet (it must hash to the key). */
    manifest?: ManifestInput | Buffer | null
    encryption?: Buffer | EncryptionOptions | EncryptionProvider | null
    active?: boolean
  }

  interface AppendOptions {
    /** Ignore the session's writable check (does not make a read-only core writable). */
    writable?: boolean
    /** Fail if the resulting length would exceed this. */
    maxLength?: number
    keyPair?: KeyPairLike | null
    signature?: Buffer | null
  }

  interface AppendResult {
    length: number
    byteLength: number
  }

  interface GetBlockOptions<E extends ValueEncoding | undefined = ValueEncoding | undefined> {
    /** Wait for the block to be downloaded (default: the session's `wait`). */
    wait?: boolean
    onwait?: ((index: number, core: Hypercore<any>) => void) | null
    timeout?: number
    /** Decode with this encoding instead of the session's. */
    valueEncoding?: E
    decrypt?: boolean
    /** Return the stored bytes without decoding. */
    raw?: boolean
    force?: boolean
    /** The request is listed here while it waits; `Hypercore.destroyRequests(list)` cancels it (REQUEST_CANCELLED). */
    activeRequests?: unknown[]
  }

  interface SeekOptions {
    wait?: boolean
    timeout?: number
    activeRequests?: unknown[]
  }

  interface TruncateOptions {
    /** New fork id (default fork + 1). */
    fork?: number
    keyPair?: KeyPairLike | null
    signature?: Buffer | null
  }

  interface ClearOptions {
    /** Return `{ blocks }` instead of null. */
    diff?: boolean
  }

  interface ClearResult {
    blocks: number
  }

  interface UpdateOptions {
    wait?: boolean
    /** Update even if the core is writable. */
    force?: boolean
  }

  interface InfoOptions {
    /** Include storage estimates (always null with RocksDB storage, as in hypercore 11). */
    storage?: boolean
  }

  interface HypercoreInfo {
    key: Buffer
    discoveryKey: Buffer
    length: number
    contiguousLength: number
    byteLength: number
    fork: number
    padding: number
    storage: { oplog: number; tree: number; blocks: number; bitfield: number } | null
  }

  interface ReadStreamOptions {
    start?: number
    /** Exclusive end (default: the length when the stream opens). */
    end?: number
    wait?: boolean
    timeout?: number
    /** Keep the stream open and emit new blocks as they are appended. */
    live?: boolean
    snapshot?: boolean
  }

  interface ByteStreamOptions {
    byteOffset?: number
    byteLength?: number
    prefetch?: number
  }

  interface DownloadRange {
    start?: number
    /** Exclusive; -1 = keep downloading new blocks. */
    end?: number
    blocks?: number[]
    linear?: boolean
  }

  interface Download {
    ready(): Promise<void>
    done(): Promise<void>
    destroy(): void
  }

  /** A replication peer of a core. */
  interface HypercorePeer {
    remotePublicKey: Buffer
    paused: boolean
    removed: boolean
    /** The connection's noise stream (a raw replication stream's `noiseStream`). */
    stream: unknown
    /** The Protomux of that stream (its `userData`). */
    readonly protomux: any
    /** What the peer told us about the core (its last values once removed). */
    readonly remoteLength: number
    readonly remoteFork: number
    readonly remoteContiguousLength: number
    readonly remoteCanUpgrade: boolean
    readonly remoteAllowPush: boolean
    /** Our requests to the peer that it has not answered yet. */
    readonly inflight: number
    /** The [min, max] block requests kept in flight with this peer (the core's inflightRange). */
    readonly inflightRange: [number, number]
    /** Messages on this peer's channel for the core, by kind (its last counts once removed). */
    readonly stats: ReplicationStats
  }

  /** The request a downloaded block answered: when it was sent and how long it took (ms). */
  interface DownloadRequest {
    index: number
    timestamp: number
    elapsed: number
  }

  interface HypercoreEvents {
    ready: () => void
    close: () => void
    /** The length or byteLength grew (local append or download). */
    append: () => void
    /** The core was truncated to `ancestors` blocks and is now at fork `forkId`. */
    truncate: (ancestors: number, forkId: number) => void
    'peer-add': (peer: HypercorePeer) => void
    'peer-remove': (peer: HypercorePeer) => void
    upload: (index: number, byteLength: number, peer: HypercorePeer) => void
    download: (
      index: number,
      byteLength: number,
      peer: HypercorePeer,
      req: DownloadRequest | null
    ) => void
    'remote-contiguous-length': (length: number) => void
    manifest: () => void
    /** Data from `peer` did not verify (err.code, e.g. INVALID_SIGNATURE); that peer is paused. */
    'verification-error': (err: Error & { code?: string }, req: null, res: null, peer: HypercorePeer | null) => void
    /** Two valid trees exist at `length` (forked writers of one key); the sessions close next. */
    conflict: (length: number, fork: number, proof: { fork: number; upgrade: { start: number; length: number } }) => void
  }

  /**
   * A session on a core (what `store.get()` returns). `T` is the block type given by the
   * session's valueEncoding.
   */
  interface Hypercore<T = Buffer> extends EventEmitter {
    /**
     * The core's public key. Typed as always present, as applications use it after
     * `ready()`; before that it is null for a core opened by name or discovery key.
     */
    readonly key: Buffer
    /** The discovery key (null before `ready()` like `key`). */
    readonly discoveryKey: Buffer
    /** z32 encoding of the key (null before `ready()` like `key`). */
    readonly id: string
    /** hypercore's contiguousByteLength (0, as in hypercore 11). */
    readonly contiguousByteLength: number
    /** hypercore's `recovering` hint (0). */
    readonly recovering: number
    /**
     * The session's state: the core's default one, or the named/atomic one this session was
     * made with (`session({ name })`, `session({ atom })`).
     */
    readonly state: SessionState
    /** This session's waiting get/seek requests, as hypercore lists them (`Hypercore.destroyRequests` takes it). */
    readonly activeRequests: unknown[]
    readonly length: number
    readonly contiguousLength: number
    /** The longest prefix a peer on this fork said it holds in full (kept in the hints). */
    readonly remoteContiguousLength: number
    /** Bytes in blocks 0..length (excluding padding). */
    readonly byteLength: number
    readonly fork: number
    /** Bytes in front of every stored block: 8 on an encrypted core once its manifest is known. */
    readonly padding: number
    /** The session's block encryption, if any. */
    encryption: EncryptionProvider | null
    /** The `encodeBatch` this session was made with (`session({ encodeBatch })`), or null. */
    encodeBatch: ((values: any[]) => Array<Buffer | Uint8Array | string>) | null
    setEncryptionKey(key: Buffer, opts?: { block?: boolean }): Promise<void>
    setEncryption(provider: EncryptionProvider | null): Promise<void>
    /** Blocks signed by a quorum of the manifest's signers (= length for single-signer cores). */
    readonly signedLength: number
    readonly writable: boolean
    readonly readable: boolean
    readonly opened: boolean
    readonly closed: boolean
    readonly closing: Promise<void> | null
    readonly manifest: Manifest | null
    readonly keyPair: KeyPairLike | null
    readonly peers: HypercorePeer[]
    /** The core's replication state (pushOnly). */
    readonly replicator: ReplicatorState | null
    /** The core's `globalCache` once the session is open (the option of the get that opened it, else the store's), else null. */
    readonly globalCache: unknown
    /** The core joins the group of the 32-byte `topic` (STORAGE_CONFLICT when in another one). */
    setGroup(topic: Buffer): Promise<void>

    /** The manifest, or with `raw` its encoding; null while the core has none. */
    getManifest(opts: { raw: true }): Buffer | null
    getManifest(opts?: { raw?: false }): Manifest | null

    ready(): Promise<void>
    close(opts?: { error?: Error }): Promise<void>

    append(block: AppendValue<T> | AppendValue<T>[], opts?: AppendOptions): Promise<AppendResult>

    get(index: number, opts: GetBlockOptions & { raw: true }): Promise<Buffer | null>
    get<E extends ValueEncoding>(
      index: number,
      opts: GetBlockOptions<E> & { valueEncoding: E }
    ): Promise<EncodingValue<E> | null>
    /** Resolves null only when the block is missing and `wait` is false. */
    get(index: number, opts?: GetBlockOptions<undefined>): Promise<T | null>
    /** Options whose encoding is not known statically. */
    get(index: number, opts?: GetBlockOptions): Promise<any>

    /** Whether all blocks in [start, end) are stored locally (end defaults to start + 1). */
    has(start: number, end?: number): Promise<boolean>

    /** `[blockIndex, offsetInBlock]` of a byte offset; null if not available and `wait` is false. */
    seek(byteOffset: number, opts: SeekOptions & { wait: false }): Promise<[index: number, relativeOffset: number] | null>
    seek(byteOffset: number, opts?: SeekOptions): Promise<[index: number, relativeOffset: number]>

    /** Truncate to `newLength` (default 0). A number as `opts` is the new fork id. */
    truncate(newLength?: number, opts?: TruncateOptions | number): Promise<void>

    /** Clear locally stored blocks in [start, end) (end defaults to start + 1). */
    clear(start: number, end?: number, opts?: ClearOptions): Promise<ClearResult | null>
    clear(start: number, opts: ClearOptions): Promise<ClearResult | null>

    /** Merkle tree hash at `length` (default: current length). */
    treeHash(length?: number): Promise<Buffer>

    info(opts?: InfoOptions): Promise<HypercoreInfo>

    /**
     * Ask peers for a longer tree; true if the core was updated. Waits with `{ wait: true }`,
     * or by default while a `findingPeers()` call is outstanding (then also for the first
     * peer to show up); otherwise resolves false at once, as in hypercore 11.
     */
    update(opts?: UpdateOptions): Promise<boolean>

    session<E extends ValueEncoding | undefined = undefined>(
      opts?: HypercoreSessionOptions<E>
    ): Hypercore<EncodingValue<E>>
    snapshot<E extends ValueEncoding | undefined = undefined>(
      opts?: HypercoreSessionOptions<E>
    ): Hypercore<EncodingValue<E>>

    createReadStream(opts?: ReadStreamOptions): ReadStream<T>
    createByteStream(opts?: ByteStreamOptions): ReadStream<Buffer>

    /** Local (not replicated) key/value data. `null` deletes the key. */
    setUserData(key: string, value: Buffer | string | null): Promise<void>
    getUserData(key: string): Promise<Buffer | null>

    /** Mark and sweep: from now on get() marks the blocks it reads. */
    startMarking(): Promise<void>
    /** Keep blocks [start, end) through the next sweep(). */
    markBlock(start: number, end?: number): Promise<void>
    clearMarkings(): Promise<void>
    /** Clear every block that no mark covers, and the marks. */
    sweep(opts?: { batchSize?: number }): Promise<void>

    /**
     * hypercore's commit: what the named session `session` added (up to `opts.length`)
     * becomes this core's signed state. Resolves null when the core moved on in a way the
     * session does not contain.
     */
    commit(session: Hypercore<any>, opts?: CommitOptions): Promise<AppendResult | null>
    /** Compacts this core's records in RocksDB. */
    compact(): Promise<void>

    getManifest(opts?: { raw?: boolean }): Manifest | Buffer | null
    setKeyPair(keyPair: KeyPairLike | null): void
    setActive(active: boolean): void
    /** A writable stream of blocks, appended as they come. */
    createWriteStream(): WriteStream<T>
    /** Stops a download() (as download.destroy()). */
    undownload(range: Download): void
    /** hypercore's cancel(request): does nothing. */
    cancel(request?: unknown): void

    /** The bytes the core's signers sign for the tree at `length` (default: current), `fork`. */
    signable(length?: number, fork?: number): Promise<Buffer>

    /** Until the returned function is called, update() waits for peers (see update). */
    findingPeers(): () => void

    /**
     * An extension of the application's own protocol, carried on this core's channels as
     * hypercore's: messages go to the last session that registered `name` on the other side.
     */
    registerExtension<M = Buffer>(name: string, handlers?: ExtensionHandlers<M>): Extension<M>
    readonly extensions: Map<string, Extension<any>>

    /**
     * Replicate this core only, as hypercore: `true`/`false` gives a new replication stream;
     * a stream or Hyperswarm connection that replicates already gets this core added and is
     * returned (a Protomux is returned as given).
     */
    replicate<S extends StreamLike>(stream: S, opts?: ReplicateOptions): S
    replicate(isInitiator: boolean, opts?: ReplicateOptions): ReplicationStream
    download(range?: DownloadRange): Download

    on<K extends keyof HypercoreEvents>(event: K, listener: HypercoreEvents[K]): this
    on(event: string | symbol, listener: (...args: any[]) => void): this
    once<K extends keyof HypercoreEvents>(event: K, listener: HypercoreEvents[K]): this
    once(event: string | symbol, listener: (...args: any[]) => void): this
    off<K extends keyof HypercoreEvents>(event: K, listener: HypercoreEvents[K]): this
    off(event: string | symbol, listener: (...args: any[]) => void): this
    addListener<K extends keyof HypercoreEvents>(event: K, listener: HypercoreEvents[K]): this
    addListener(event: string | symbol, listener: (...args: any[]) => void): this
    prependListener<K extends keyof HypercoreEvents>(event: K, listener: HypercoreEvents[K]): this
    prependListener(event: string | symbol, listener: (...args: any[]) => void): this
    prependOnceListener<K extends keyof HypercoreEvents>(event: K, listener: HypercoreEvents[K]): this
    prependOnceListener(event: string | symbol, listener: (...args: any[]) => void): this
    removeListener<K extends keyof HypercoreEvents>(event: K, listener: HypercoreEvents[K]): this
    removeListener(event: string | symbol, listener: (...args: any[]) => void): this
  }

  interface CommitOptions {
    length?: number
    treeLength?: number
    /** A signature made elsewhere (verified against the manifest) instead of signing here. */
    signature?: Buffer
  }

  /** hypercore-storage's Atom: writes of several cores' sessions that land as one. */
  interface Atom {
    flush(): Promise<void>
    flushed(): Promise<void>
    preflush(fn: () => void): void
    onflush(fn: () => Promise<void> | void): void
    readonly flushing: boolean
  }

  interface StorageTx {
    putLocal(key: Buffer, value: Buffer): void
    deleteLocal(key: Buffer): void
    deleteLocalRange(start: Buffer, end: Buffer | null): void
    putUserData(key: string, value: Buffer | string): void
    deleteUserData(key: string): void
    /** Below `length`, this data is read from `dataPointer`'s (the record only; open states keep what they read). */
    setDependency(dep: { dataPointer: number; length: number }): void
    /** true when written to RocksDB, false when it went into the state's atom. */
    flush(): Promise<boolean>
  }

  interface StorageRx {
    getBlock(index: number): Promise<Buffer | null>
    getTreeNode(index: number): Promise<{ index: number; size: number; hash: Buffer } | null>
    getHead(): Promise<{ fork: number; length: number; rootHash: Buffer; signature: Buffer | null } | null>
    getHints(): Promise<{ contiguousLength: number; remoteContiguousLength: number; recovering: number } | null>
    getBitfieldPage(index: number): Promise<Buffer | null>
    getUserData(key: string): Promise<Buffer | null>
    tryFlush(): void
    destroy(): void
  }

  /** A state's hypercore-storage view (`session.state.storage`). */
  interface StateStorage {
    readonly atom: Atom | null
    readonly dependencies: { dataPointer: number; length: number }[]
    createAtom(): Atom
    write(): StorageTx
    read(): StorageRx
    createLocalStream(range?: { gte?: Buffer; lt?: Buffer | null; reverse?: boolean }): ReadStream<{ key: Buffer; value: Buffer }>
    createBlockStream(range?: { gt?: number; gte?: number; lt?: number; lte?: number; reverse?: boolean }): ReadStream<{ index: number; value: Buffer }>
    createMarkStream(range?: { reverse?: boolean }): ReadStream<{ index: number; page: Buffer }>
    deleteSessions(): Promise<void>
    /**
     * hypercore-storage's createSession: the named session `name` made anew from this data at
     * `head.length` blocks (null: all), its own blocks and tree dropped. The returned storage
     * holds an engine state until close() or the store closes.
     */
    createSession(name: string, head: { length: number } | null): Promise<StateStorage>
    close(): Promise<void>
  }

  /** hypercore's state lock: appends and truncations of the state wait while it is held. */
  interface StateMutex {
    lock(): Promise<void>
    unlock(): void
  }

  /** hypercore's session state: the core's default one, or a named or atomic one. */
  interface TreeNode {
    index: number
    size: number
    hash: Buffer
  }

  /** hypercore's MerkleTreeBatch as signers use it: a tree detached from its state. */
  interface TreeBatch {
    readonly fork: number
    readonly length: number
    readonly byteLength: number
    readonly roots: TreeNode[]
    readonly signature: Buffer | null
    readonly prologue: { hash: Buffer; length: number } | null
    /** The tree hash (hypercore-crypto `tree(roots)`). */
    hash(): Buffer
    /** What a signer signs under `ctx` (the manifest hash; a namespace for version 0). */
    signable(ctx: Buffer): Buffer
    signableCompat(noHeader?: boolean): Buffer
    clone(): TreeBatch
  }

  interface SessionState {
    readonly name: string | null
    readonly atom: Atom | null
    /** The atomic state made from this one, while it is open. */
    readonly atomized: SessionState | null
    readonly mutex: StateMutex
    /** Lets go of `mutex` (hypercore's name for it). */
    _unlock(): void
    readonly length: number
    readonly byteLength: number
    readonly fork: number
    readonly signedLength: number
    readonly storage: StateStorage
    isDefault(): boolean
    /** The tree hash at this state's length. */
    hash(): Buffer
    /** The full roots of this state's tree. */
    readonly roots: TreeNode[]
    /** The signature of the state's signed head (null when unsigned, as a named session's appends). */
    readonly signature: Buffer | null
    /** The core's manifest prologue, if it has one. */
    readonly prologue: { hash: Buffer; length: number } | null
    /** hypercore's createTreeBatch(): this state's tree, to sign (`core.core.verifier.sign`) or check. */
    createTreeBatch(): TreeBatch
    /** A named session: drop its own blocks and take the core's tree at `length`. */
    catchup?(length: number): Promise<void>
    /** A named session: continue on the core of `session` (after its copyPrologue). */
    moveTo?(session: Hypercore<any>, length: number): Promise<void>
  }

  interface WriteStream<T> extends EventEmitter {
    write(block: AppendValue<T>): boolean
    end(cb?: () => void): this
    destroy(err?: Error | null): void
  }

  // ---------------------------------------------------------------------------
  // Streams (streamx at runtime)

  interface ReadStreamEvents<T> {
    data: (data: T) => void
    end: () => void
    close: () => void
    error: (err: Error) => void
    readable: () => void
  }

  /** A streamx Readable yielding `T`s; consume with `for await`, 'data' events or `pipe`. */
  interface ReadStream<T> extends EventEmitter, AsyncIterable<T> {
    readonly readable: boolean
    readonly destroyed: boolean
    readonly destroying: boolean
    read(): T | null
    pause(): this
    resume(): this
    pipe<S>(dest: S, cb?: (err: Error | null) => void): S
    destroy(err?: Error | null): void
    [Symbol.asyncIterator](): AsyncIterator<T>

    on<K extends keyof ReadStreamEvents<T>>(event: K, listener: ReadStreamEvents<T>[K]): this
    on(event: string | symbol, listener: (...args: any[]) => void): this
    once<K extends keyof ReadStreamEvents<T>>(event: K, listener: ReadStreamEvents<T>[K]): this
    once(event: string | symbol, listener: (...args: any[]) => void): this
  }

  // ---------------------------------------------------------------------------
  // Replication

  /** Anything with a `pipe` method is treated as an existing stream to replicate over. */
  interface StreamLike {
    pipe(...args: any[]): unknown
  }

  interface ReplicateOptions {
    /** Send keep-alives every 5s (default true). */
    keepAlive?: boolean
    /** Noise keypair for a new replication stream. */
    keyPair?: KeyPair
    [option: string]: unknown
  }

  /** A framed Noise stream carrying the hypercore protocol (streamx Duplex at runtime). */
  interface ReplicationStream extends EventEmitter {
    /** Our Noise public key, and the peer's once the handshake is done (as noiseStream's). */
    readonly publicKey: Buffer | null
    readonly remotePublicKey: Buffer | null
    readonly readable: boolean
    readonly writable: boolean
    readonly destroyed: boolean
    /**
     * hypercore's noise stream of a replication stream: the handshake's facts ('open' is
     * emitted once it is done, 'close' when the stream ends) and, as `userData`, the stream's
     * Protomux (`Hypercore.getProtocolMuxer(stream)`, `Protomux.from(stream.noiseStream)`):
     * application protocols run on it next to hypercore's.
     */
    readonly noiseStream: EventEmitter & {
      readonly isInitiator: boolean
      readonly connected: boolean
      readonly publicKey: Buffer | null
      readonly remotePublicKey: Buffer | null
      readonly handshakeHash: Buffer | null
      readonly opened: Promise<boolean>
      readonly rawStream: ReplicationStream
      userData: any
    }
    write(data: Buffer | Uint8Array): boolean
    end(data?: Buffer | Uint8Array): this
    pipe<S>(dest: S, cb?: (err: Error | null) => void): S
    destroy(err?: Error | null): void
  }
}

export = Corestore
