import { auditConfig } from '../../ops/deploy/audit-config.js'
import { closeAll, openTargets, targetFlags, TARGET_USAGE } from '../deploy-flags.js'
import { hostInit } from '../../ops/deploy/host-init.js'
import { TargetError } from '../../ops/deploy/target.js'
import { TlsError } from '../../ops/tls/self-signed.js'
import { CliError, flagError, note, parseFlags, print, type Command } from '../command.js'

const usage = `Usage: runway host init --path DIR [--host [USER@]HOST[:PORT]] --server-name NAME [options]

Prepares a fresh host from this checkout (nothing of runway needs to be on it yet, only Node.js):
the deploy layout (releases/, shared/data, shared/logs, .runway/), shared/.env with NODE_ENV=
production and a generated signing key (kept as it is once it exists), and, rendered into
shared/host/: the systemd unit, the logrotate config and an nginx site config with TLS on a
placeholder self-signed certificate (shared/nginx/tls/) until certbot has issued the real one.
Then it runs \`runway check --deploy\` on the result and prints the few commands that need root.
Idempotent: run it again any time; --dry-run shows what it would do and writes nothing.

${TARGET_USAGE}

Host:
  --server-name NAME      the host name(s) nginx serves and the certificate covers (repeatable)
  --port N                the app's port behind nginx (default 3000)
  --dry-run               show what would be created or updated; change nothing

Exit status: 0 prepared (warnings listed); 1 failed; 2 usage.`

export const hostCommand: Command = {
  name: 'host',
  summary: 'host init: prepare a fresh server (layout, .env with a key, systemd, logrotate, nginx)',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      { ...targetFlags, 'server-name': { type: 'string', multiple: true }, port: { type: 'string' }, 'dry-run': { type: 'boolean' } },
      true,
    )
    if (values.help) return (print(usage), 0)
    if (positionals[0] !== 'init' || positionals.length > 1) throw new CliError('the only subcommand is `runway host init` (see --help)', 2)
    if (!values['server-name']?.length) throw new CliError('--server-name is required: the name nginx serves, e.g. --server-name api.example.com', 2)
    const port = Number(values.port ?? 3000)
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliError(`--port must be 1 to 65535, not ${JSON.stringify(values.port)}`, 2)
    const targets = openTargets(values, { single: true })
    const target = targets[0]!
    try {
      const dryRun = values['dry-run'] ?? false
      note(`runway host init → ${target.label}${dryRun ? ' (dry run)' : ''}`)
      const r = await hostInit({ target, serverNames: values['server-name'], port, dryRun, hostSpec: values.host?.[0] })
      const audit = dryRun
        ? undefined
        : await auditConfig({ target, base: `${target.root}/shared`, env: { PM2_HOME: `${target.root}/.pm2`, RUNWAY_LOG_DIR: `${target.root}/shared/logs` } })
      if (values.json) print(JSON.stringify({ ok: audit?.ok ?? true, ...r, check: audit?.findings }))
      else {
        for (const a of r.actions) print(`  ${a.status.padEnd(12)} ${a.path}`)
        if (audit) for (const f of audit.findings) print(`  ${f.level === 'error' ? '✗' : '!'} ${f.id}: ${f.message}`)
        print(`${dryRun ? 'dry run: nothing was changed. ' : ''}Next, as root on the host:\n${r.next.map((n) => `  ${n}`).join('\n')}`)
      }
      if (audit && !audit.ok) throw new CliError(`the host is prepared but \`runway check --deploy\` found errors (above)`)
      return 0
    } catch (err) {
      if (err instanceof TargetError || err instanceof TlsError) throw new CliError(err.message)
      throw flagError(err)
    } finally {
      await closeAll(targets)
    }
  },
}
