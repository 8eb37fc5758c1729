// Picks the store from the config: PostgreSQL when DATABASE_URL is set, else SQLite in DATA_DIR.
import type { Config } from '../config.js'
import { PostgresStore } from './postgres.js'
import { SqliteStore } from './sqlite.js'
import type { Store } from './store.js'

export function openStore(config: Config): Store {
  return config.databaseUrl ? new PostgresStore(config.databaseUrl, config.db) : SqliteStore.open(config.dataDir)
}
