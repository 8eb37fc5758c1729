// `runway check --deploy`: audits a production configuration without starting anything.
import { auditConfig, type Finding } from '../../ops/deploy/audit-config.js'
import { closeAll, openTargets, targetFlags } from '../deploy-flags.js'
import { LocalTarget } from '../../ops/deploy/target.js'
import { ROOT } from '../../lib/build.js'
import { CliError, parseFlags, print, type Command } from '../command.js'

const usage = `Usage: runway check --deploy [--path DIR [--host [USER@]HOST[:PORT]]] [options]

Audits the production configuration without starting anything (Django's \`check --deploy\`):
every setting through the loader the workers use, the signing key (present, 32+ bytes, not the
example, not guessable), NODE_ENV, /docs in production, TRUST_PROXY behind nginx,
KEEP_ALIVE_TIMEOUT vs nginx's upstream keepalive_timeout, workers vs CPUs (and PostgreSQL
connections), DATA_DIR (writable, local disk, free space), certificates (present, matching key,
names covered, expiry), the open file limit, the log directory, a pm2 daemon running from a
release that pruning can remove, and the browser origins CORS allows (any, plain HTTP, null, and
whether nginx's own errors carry them).

Without --path: this app (its .env under the environment). With --path: a deploy target
(DIR/shared/.env, DIR/.pm2, DIR/shared/logs), on this machine or over SSH with --host.

Each finding has an id; list ids in SILENCED_CHECKS (.env) or --silence to accept them on purpose.

Options:
  --deploy                the production audit (required; the only check for now)
  --nginx-conf FILE       nginx config to check against (keepalive_timeout, certificates, names)
  --server-name NAME      a name the certificate must cover (repeatable; default: nginx server_name)
  --silence ID            silence one finding id (repeatable)
  --path, --host, --ssh-config, --ssh-option, --json   as for \`runway deploy\`

Exit status: 0 no errors (warnings are listed); 1 errors; 2 usage.`

const line = (f: Finding) => `${f.silenced ? '(silenced) ' : ''}${f.level === 'error' ? '✗' : '!'} ${f.id}: ${f.message}`

export const checkCommand: Command = {
  name: 'check',
  summary: 'audit a production configuration (check --deploy) without starting anything',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      ...targetFlags,
      deploy: { type: 'boolean' },
      'nginx-conf': { type: 'string' },
      'server-name': { type: 'string', multiple: true },
      silence: { type: 'string', multiple: true },
    })
    if (values.help) return (print(usage), 0)
    if (!values.deploy) throw new CliError('give --deploy (the production audit)', 2)
    const targets = values.path ? openTargets(values, { single: true }) : [new LocalTarget(ROOT)]
    const target = targets[0]!
    try {
      const onTarget = Boolean(values.path)
      const base = onTarget ? `${target.root}/shared` : target.root
      const env = onTarget
        ? { PM2_HOME: `${target.root}/.pm2`, RUNWAY_LOG_DIR: `${target.root}/shared/logs` }
        : { ...process.env, PM2_HOME: process.env.PM2_HOME ?? `${process.env.HOME}/.pm2` }
      const r = await auditConfig({ target, base, env, nginxConf: values['nginx-conf'], serverNames: values['server-name'], silence: values.silence })
      if (values.json) print(JSON.stringify({ target: target.label, ...r }))
      else {
        for (const f of r.findings) print(line(f))
        const errors = r.findings.filter((f) => f.level === 'error' && !f.silenced).length
        const warnings = r.findings.filter((f) => f.level === 'warning' && !f.silenced).length
        const silenced = r.findings.filter((f) => f.silenced).length
        print(
          `${target.label}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}${silenced ? `, ${silenced} silenced` : ''}`,
        )
      }
      return r.ok ? 0 : 1
    } finally {
      await closeAll(targets)
    }
  },
}
