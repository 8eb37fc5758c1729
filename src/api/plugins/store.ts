// Makes the store available as app.store (and its health as app.storeHealth), migrates and
// probes it before the app is ready, and closes it last.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { StoreHealth } from '../store/faults.js'
import { StoreNeedsOperatorError, StoreUnavailableError, type Store } from '../store/store.js'

const MAINTAIN_EVERY_MS = 5_000

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
    storeHealth: StoreHealth
  }
}

/** Backoff between attempts at start: 0.5 s, 1 s, 2 s, ... up to 10 s. */
const retryDelayMs = (attempt: number) => Math.min(10_000, 500 * 2 ** (attempt - 1))

export default fp(
  async function store(app: FastifyInstance, opts: { store: Store; closeStore: boolean; waitAtStart: boolean }) {
    // A store that cannot take a write at start (read-only or corrupt file, full disk) stops the
    // start here: server.ts turns a StoreNeedsOperatorError into one line and exit code 78.
    // A store that cannot answer yet (PostgreSQL restarting, at max_connections) is waited for,
    // with one log line per attempt, instead of exiting: under pm2 an exit would become a crash
    // loop. The process listens (and tells pm2 it is ready) only once the store answered.
    for (let attempt = 1; ; attempt++) {
      try {
        await opts.store.migrate()
        await opts.store.ping()
        break
      } catch (err) {
        if (!opts.waitAtStart || !(err instanceof StoreUnavailableError) || err instanceof StoreNeedsOperatorError) throw err
        const delay = retryDelayMs(attempt)
        app.log.warn({ attempt, retryInMs: delay }, `store unavailable at start, retrying in ${delay / 1000} s: ${err.message}`)
        await sleep(delay)
      }
    }
    if (opts.waitAtStart) app.log.info({ store: opts.store.kind }, 'store ready')
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
