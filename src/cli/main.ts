// `runway <command>`: the one CLI for ops tasks. Each command lives in commands/ and has --help.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../lib/build.js'
import { CliError, flagError, print, type Command } from './command.js'
import { redactSecrets } from '../api/redact.js'
import { userCommand } from './commands/user.js'
import { migrateCommand } from './commands/migrate.js'
import { tokensCommand } from './commands/tokens.js'
import { keysCommand } from './commands/keys.js'
import { nginxCommand } from './commands/nginx.js'
import { tlsCommand } from './commands/tls.js'
import { deployCommand } from './commands/deploy.js'
import { rollbackCommand } from './commands/rollback.js'
import { releasesCommand } from './commands/releases.js'
import { statusCommand } from './commands/status.js'
import { compareCommand } from './commands/compare.js'
import { drillCommand } from './commands/drill.js'
import { loadtestCommand } from './commands/loadtest.js'
import { reloadCommand, startCommand } from './commands/start.js'
import { checkCommand } from './commands/check.js'
import { restartCommand } from './commands/restart.js'
import { hostCommand } from './commands/host.js'
import { settingsCommand } from './commands/settings.js'

export const commands: Command[] = [
  userCommand,
  migrateCommand,
  tokensCommand,
  keysCommand,
  nginxCommand,
  tlsCommand,
  deployCommand,
  rollbackCommand,
  restartCommand,
  releasesCommand,
  settingsCommand,
  hostCommand,
  statusCommand,
  startCommand,
  reloadCommand,
  checkCommand,
  compareCommand,
  drillCommand,
  loadtestCommand,
]

/** `runway 0.1.0`, plus the commit a deployed release was built from (its REVISION file). */
function version(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  let rev = ''
  try {
    const r = JSON.parse(readFileSync(join(ROOT, 'REVISION'), 'utf8')) as { sha: string; builtAt: string }
    rev = ` (release ${r.sha}, built ${r.builtAt})`
  } catch {}
  return `runway ${pkg.version}${rev}, node ${process.version}`
}

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length))
  return [
    'Usage: runway <command> [options]      runway --version',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `runway <command> --help` for the options of one command.',
    'Settings come from the environment and .env (see .env.example).',
  ].join('\n')
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') return (print(help()), name ? 0 : 2)
  if (name === '--version' || name === '-V' || name === 'version') return (print(version()), 0)
  const command = commands.find((c) => c.name === name)
  try {
    if (!command) throw new CliError(`unknown command ${JSON.stringify(name)}: run \`runway --help\` for the list`, 2)
    return await command.run(rest)
  } catch (caught) {
    const err = flagError(caught)
    if (err instanceof CliError) {
      process.stderr.write(`runway ${command?.name ?? ''}: ${redactSecrets(err.message)}\n`.replace('runway : ', 'runway: '))
      return err.exitCode
    }
    throw err
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(
      `runway: unexpected error: ${redactSecrets(err instanceof Error ? err.message : String(err))} (run with NODE_DEBUG=runway for details)\n`,
    )
    if (process.env.NODE_DEBUG?.includes('runway')) console.error(err)
    process.exitCode = 1
  },
)
