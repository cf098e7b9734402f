// A program written as corestore's README and the Hyperswarm examples write it: it must
// compile under --strict against this package's typings, unchanged.
import Corestore from 'corestore-native'

// hyperswarm ships no typings: the part of it this program uses
declare const swarm: {
  join(topic: Buffer, opts?: { server?: boolean; client?: boolean }): unknown
  on(event: 'connection', listener: (conn: import('stream').Duplex) => void): void
  flush(): Promise<void>
}

async function main(): Promise<void> {
  const store = new Corestore('./storage')
  swarm.on('connection', (conn) => store.replicate(conn))

  const core = store.get({ name: 'my-core', valueEncoding: 'utf-8' })
  await core.ready()
  swarm.join(core.discoveryKey)
  console.log('key', core.key.toString('hex'), core.id.length)

  const done = store.findingPeers()
  swarm.flush().then(done, done)

  await core.append(['hello', 'world'])
  const first: string | null = await core.get(0)
  console.log(first)

  // named and atomic sessions
  const draft = core.session({ name: 'draft' })
  await draft.append('more')
  const committed = await core.commit(draft)
  console.log(committed && committed.length)
  const atom = store.storage.createAtom()
  const atomic = core.session({ atom })
  await atomic.append('at once')
  await atom.flush()
  console.log(core.state.length, atomic.state.isDefault(), core.replicator && core.replicator.inflightRange)

  await store.close()
}

main().catch(console.error)
