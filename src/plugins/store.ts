// Makes the store available as app.store (and its health as app.storeHealth), migrates and
// probes it before the app is ready, and closes it last.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { StoreHealth } from '../store/faults.js'
import { StoreUnavailableError, type Store } from '../store/store.js'

const MAINTAIN_EVERY_MS = 5_000

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
    // Housekeeping (SQLite: prune expired rate-limit counters, checkpoint the WAL) every few
    // seconds; a fault here is the store's fault like any other (logged once per burst).
    const { store } = opts
    if (store.maintain) {
      const timer = setInterval(() => {
        store.maintain!(Date.now()).catch((err: unknown) =>
          err instanceof StoreUnavailableError ? app.storeHealth.report(err) : app.log.error({ err }, 'store maintenance failed'),
        )
      }, MAINTAIN_EVERY_MS)
      timer.unref()
      app.addHook('onClose', async () => clearInterval(timer))
    }
    if (opts.closeStore) app.addHook('onClose', () => opts.store.close())
  },
  { name: 'runway-store' },
)
