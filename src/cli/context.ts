// Shared helpers for commands that need the configured store.
import { ConfigError, loadConfig, readEnv, type Config } from '../config.js'
import { SqliteStore } from '../store/sqlite.js'
import type { Store } from '../store/store.js'
import { CliError } from './command.js'

export function cliConfig(): Config {
  try {
    return loadConfig(readEnv())
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`configuration error: ${err.message}`, 78)
    throw err
  }
}

export async function withStore<T>(fn: (store: Store, config: Config) => Promise<T>): Promise<T> {
  const config = cliConfig()
  let store: Store
  try {
    store = SqliteStore.open(config.dataDir)
    await store.migrate()
  } catch (err) {
    throw new CliError(`cannot open the store in ${config.dataDir} (${(err as Error).message}): check DATA_DIR and its permissions`)
  }
  try {
    return await fn(store, config)
  } finally {
    await store.close()
  }
}
