// Picks the store from the config: PostgreSQL when DATABASE_URL is set, else SQLite in DATA_DIR.
// Each is loaded only when chosen: a worker on SQLite never loads pg (nor PostgreSQL workers
// better-sqlite3), which keeps its start-up and memory down.
import type { Config } from '../config.js'
import type { Store } from './store.js'

export async function openStore(config: Config): Promise<Store> {
  if (config.databaseUrl) {
    const { PostgresStore } = await import('./postgres.js')
    return new PostgresStore(config.databaseUrl, config.db)
  }
  const { SqliteStore } = await import('./sqlite.js')
  return SqliteStore.open(config.dataDir)
}
