// Shared helpers for commands that need the configured store. The CLI reads the app's own .env and
// resolves a relative DATA_DIR against the app root (the checkout or release bin/runway.js belongs
// to), whatever the current directory: `runway user list` from elsewhere must not open (and
// create) another, empty database.
import { resolve } from 'node:path'
import { ConfigError, loadConfig, readEnv, type Config } from '../api/config.js'
import { ROOT } from '../lib/build.js'
import { openStore } from '../api/store/open.js'
import { StoreNeedsOperatorError, type Store } from '../api/store/store.js'
import { CliError, note } from './command.js'

export function cliConfig(): Config {
  try {
    const raw = readEnv({ cwd: ROOT })
    return loadConfig({ ...raw, DATA_DIR: resolve(ROOT, raw.DATA_DIR || './data') })
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
    // A corrupt or read-only file: the same line (and exit code 78) as the server's refusal.
    if (err instanceof StoreNeedsOperatorError) throw new CliError(`${err.message}; fix: ${err.fix}`, 78)
    const where = config.databaseUrl ? 'DATABASE_URL' : 'DATA_DIR'
    throw new CliError(`cannot open the store (${(err as Error).message}): check ${where} and its permissions`)
  }
  try {
    const value = await fn(store, config)
    // Which store this was, so a command run against the wrong one is noticed.
    note(
      config.databaseUrl
        ? `(PostgreSQL store: ${new URL(config.databaseUrl).host}${new URL(config.databaseUrl).pathname})`
        : `(SQLite store: ${config.dataDir})`,
    )
    return value
  } finally {
    await store.close()
  }
}
