// Shared helpers for commands that need the configured store.
import { ConfigError, loadConfig, readEnv, type Config } from '../config.js'
import { openStore } from '../store/open.js'
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
    store = await openStore(config)
    await store.migrate()
  } catch (err) {
    const where = config.databaseUrl ? 'DATABASE_URL' : 'DATA_DIR'
    throw new CliError(`cannot open the store (${(err as Error).message}): check ${where} and its permissions`)
  }
  try {
    return await fn(store, config)
  } finally {
    await store.close()
  }
}
