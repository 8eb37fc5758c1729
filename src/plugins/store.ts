// Makes the store available as app.store (and its health as app.storeHealth), migrates and
// probes it before the app is ready, and closes it last.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { StoreHealth } from '../store/faults.js'
import type { Store } from '../store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
    storeHealth: StoreHealth
  }
}

export default fp(
  async function store(app: FastifyInstance, opts: { store: Store; closeStore: boolean }) {
    // A store that cannot take a write at start (read-only or corrupt file, full disk) stops the
    // start here: server.ts turns a StoreNeedsOperatorError into one line and exit code 78.
    await opts.store.migrate()
    await opts.store.ping()
    app.decorate('store', opts.store)
    app.decorate('storeHealth', new StoreHealth(app.log, () => opts.store.ping()))
    if (opts.closeStore) app.addHook('onClose', () => opts.store.close())
  },
  { name: 'runway-store' },
)
