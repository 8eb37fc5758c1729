// Makes the store available as app.store, migrates it before the app is ready and closes it last.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Store } from '../store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

export default fp(
  async function store(app: FastifyInstance, opts: { store: Store; closeStore: boolean }) {
    await opts.store.migrate()
    app.decorate('store', opts.store)
    if (opts.closeStore) app.addHook('onClose', () => opts.store.close())
  },
  { name: 'runway-store' },
)
