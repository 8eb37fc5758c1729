// `runway start` (npm start) and `runway reload` (npm run reload): the production cluster of this
// checkout or release under pm2, and a command that only says ✓ when every worker is ready.
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ConfigError, loadConfig, readEnv } from '../../api/config.js'
import { auditConfig } from '../../ops/deploy/audit-config.js'
import { Pm2ControlError, startOrRoll } from '../../ops/deploy/pm2-control.js'
import { LocalTarget } from '../../ops/deploy/target.js'
import { ROOT } from '../../lib/build.js'
import { CliError, note, parseFlags, print, type Command } from '../command.js'

/** The settings every worker will load: this app's .env under the environment, NODE_ENV=production (env_production). */
export function validateProductionConfig(root: string): string {
  try {
    const raw = readEnv({ cwd: root })
    const config = loadConfig({ ...raw, NODE_ENV: 'production', DATA_DIR: resolve(root, raw.DATA_DIR || './data') })
    return config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `SQLite in ${config.dataDir}`
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`configuration error: ${err.message}`, 78)
    throw err
  }
}

function preconditions(root: string): void {
  if (!existsSync(join(root, 'dist', 'api', 'server.js')))
    throw new CliError(`${join(root, 'dist', 'api', 'server.js')} is missing: run \`npm run build\` first`)
}

async function run(root: string, verb: 'start' | 'reload', json: boolean, timeoutS?: string): Promise<number> {
  const store = validateProductionConfig(root)
  preconditions(root)
  const readyTimeoutMs = timeoutS === undefined ? undefined : Number(timeoutS) * 1000
  if (readyTimeoutMs !== undefined && !(readyTimeoutMs > 0)) throw new CliError(`--timeout must be a number of seconds, not ${JSON.stringify(timeoutS)}`, 2)
  note(`runway ${verb}: settings valid (${store}); PM2_HOME=${process.env.PM2_HOME ?? '~/.pm2'}`)
  // `runway check --deploy` findings, shown as Django's runserver shows its system checks: the
  // settings themselves were validated above; these are advice and never stop the start.
  const audit = await auditConfig({ target: new LocalTarget(root), base: root, env: { ...process.env } })
  for (const f of audit.findings.filter((x) => !x.silenced && !['runway.E001', 'runway.E002', 'runway.E003'].includes(x.id))) note(`  ! ${f.id}: ${f.message}`)
  try {
    const r = await startOrRoll({ pm2Root: root, ecosystem: join(root, 'ecosystem.config.js'), readyTimeoutMs, progress: (l) => note(`  ${l}`) })
    print(json ? JSON.stringify({ ok: true, ...r }) : `runway ${verb}: ${r.action === 'started' ? `started ${r.workers} workers, all ready` : r.detail}`)
    return 0
  } catch (err) {
    if (err instanceof Pm2ControlError) {
      if (json) print(JSON.stringify({ ok: false, detail: err.message }))
      throw new CliError(`${verb} failed: ${err.message}`)
    }
    throw err
  }
}

const common = `Settings are validated first, exactly as each worker will load them (.env of this app under the
environment, NODE_ENV=production): an invalid one is refused in one line and nothing changes.

Options:
  --timeout SEC   how long one worker gets to send 'ready' (default: listen_timeout, 15)
  --json          the result as one JSON object on stdout`

export const startCommand: Command = {
  name: 'start',
  summary: 'start the production pm2 cluster (npm start); exits 0 only when every worker is ready',
  usage: `Usage: runway start [--timeout SEC] [--json]

Starts the compiled app (dist/) under pm2 in cluster mode from ecosystem.config.js --env
production, and waits until every worker says it is ready (listening, store migrated and
reachable). A worker that exits instead fails the command at once with the worker's own error
line, and the dead workers are removed. When the cluster already runs, this is \`runway reload\`.

${common}`,
  async run(argv) {
    const { values } = parseFlags(argv, { timeout: { type: 'string' }, json: { type: 'boolean' } })
    if (values.help) return (print(this.usage), 0)
    return run(ROOT, 'start', values.json ?? false, values.timeout)
  },
}

export const reloadCommand: Command = {
  name: 'reload',
  summary: 'zero-downtime reload (npm run reload): a worker is replaced only by a ready one',
  usage: `Usage: runway reload [--timeout SEC] [--json]

Replaces the running workers one at a time: a new worker is started next to the old one, and the
old one is stopped (gracefully) only after the new one said it is ready. A new worker that exits
or stays silent is removed, the remaining old workers keep serving, and the command exits 1
quoting the worker's error line. (\`pm2 reload\` itself stops old workers after listen_timeout
even when their successors never became ready: runway does not use it.) Starts the cluster when
pm2 does not run it.

${common}`,
  async run(argv) {
    const { values } = parseFlags(argv, { timeout: { type: 'string' }, json: { type: 'boolean' } })
    if (values.help) return (print(this.usage), 0)
    return run(ROOT, 'reload', values.json ?? false, values.timeout)
  },
}
