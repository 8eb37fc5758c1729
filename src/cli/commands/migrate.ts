import { parseFlags, print, type Command } from '../command.js'
import { withStore } from '../context.js'

const usage = `Usage: runway migrate

Applies pending schema migrations to the configured store (DATA_DIR). Safe to run while the API
is up and from several processes at once; the API also migrates on start.`

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending schema migrations',
  usage,
  async run(argv) {
    if (parseFlags(argv, {}).values.help) return (print(usage), 0)
    await withStore(async (store, config) => print(`${store.kind} store ${config.databaseUrl ? '' : `at ${config.dataDir} `}is up to date`))
    return 0
  },
}
