// What deploy, rollback, releases and status share on the command line: which target(s), how to
// reach them, the per-target settings, and how progress is printed (stderr; stdout stays for the
// result line or --json).
import { CliError, note } from './command.js'
import { StepError, type Reporter } from '../ops/deploy/deploy.js'
import type { TargetSettings } from '../ops/deploy/layout.js'
import type { Check } from '../ops/deploy/preflight.js'
import type { FleetSummary, RollingPlan } from '../ops/deploy/rolling.js'
import { LocalTarget, parseHost, splitHostPath, SshTarget, type Target, TargetError } from '../ops/deploy/target.js'

export const targetFlags = {
  path: { type: 'string' },
  host: { type: 'string', multiple: true },
  'ssh-config': { type: 'string' },
  'ssh-option': { type: 'string', multiple: true },
  json: { type: 'boolean' },
} as const

export const settingsFlags = {
  'pm2-home': { type: 'string' },
  workers: { type: 'string' },
  'health-url': { type: 'string' },
  'health-ca': { type: 'string' },
  proxy: { type: 'string' },
  'proxy-conf': { type: 'string' },
  'proxy-prefix': { type: 'string' },
  upstream: { type: 'string' },
} as const

export const rollingFlags = {
  canary: { type: 'string' },
  batch: { type: 'string' },
  'on-failure': { type: 'string' },
  'pause-between': { type: 'string' },
} as const

export const ROLLING_USAGE = `Fleet (several --host; see docs/deploying.md "Running a fleet"):
  --canary N              change N hosts first and gate them; the rest only if they pass
  --batch N|P%            hosts changed at once after the canaries (default 1)
  --on-failure rollback-fleet|stop
                          on the first failed host: put every host this run changed back to what
                          it ran before (default), or stop and leave them as they are
  --pause-between SEC     wait between batches (default 0)`

export const TARGET_USAGE = `Target:
  --path DIR              deploy root on the target (absolute for --host)
  --host [USER@]HOST[:PORT][:/DIR]  a remote host over ssh (repeat for a fleet: a rolling deploy,
                          see --canary/--batch); :/DIR gives that host its own deploy root instead
                          of --path; without --host the target is DIR on this machine
  --ssh-config FILE       ssh -F FILE (default: your ~/.ssh/config); BatchMode=yes, never prompts
  --ssh-option KEY=VALUE  extra ssh -o option (repeatable)
  --json                  machine-readable result on stdout`

export const SETTINGS_USAGE = `Target settings (saved in DIR/.runway/target.json on deploy, reused by later commands):
  --pm2-home DIR          pm2's home on the target (default DIR/.pm2)
  --workers N             WEB_CONCURRENCY for the cluster (default: one per CPU)
  --health-url URL        what the health gate polls, e.g. https://api.example.com/readyz through
                          nginx (default http://127.0.0.1:PORT/readyz, PORT from shared/.env)
  --health-ca FILE        CA (on the target) to trust for an https health URL
  --proxy local|[USER@]HOST[:PORT]
                          the nginx shared by a fleet's hosts, on this machine or over ssh: each
                          host leaves its upstream ("down", nginx -t, nginx -s reload, in-flight
                          requests finish) while it changes, and comes back once healthy
  --proxy-conf FILE       that nginx's rendered config (runway nginx render --upstream ... per host)
  --proxy-prefix DIR      its -p prefix, for nginx -t and -s reload
  --upstream HOST:PORT    how that nginx reaches this host's app (one --host only; default: the
                          --host name, or HOST from shared/.env, and PORT)`

interface TargetValues {
  path?: string
  host?: string[]
  'ssh-config'?: string
  'ssh-option'?: string[]
}

export function openTargets(v: TargetValues, o: { single?: boolean } = {}): Target[] {
  const hosts = (v.host ?? []).map(splitHostPath)
  if (!v.path && (!hosts.length || hosts.some((h) => !h.path)))
    throw new CliError(
      `--path is required: the deploy root on the target, e.g. --path /srv/runway${hosts.length ? ' (or --host HOST:/PATH for each host)' : ''}`,
      2,
    )
  if (o.single && hosts.length > 1) throw new CliError('give one --host for this command', 2)
  try {
    if (!hosts.length) return [new LocalTarget(v.path!)]
    const targets = hosts.map((h) => new SshTarget({ host: h.host, path: h.path ?? v.path!, configFile: v['ssh-config'], options: v['ssh-option'] }))
    const labels = targets.map((t) => t.label)
    const twice = labels.find((l, i) => labels.indexOf(l) !== i)
    if (twice) {
      void closeAll(targets)
      throw new TargetError(`${twice} is given twice`)
    }
    return targets
  } catch (err) {
    if (err instanceof TargetError) throw new CliError(err.message, 2)
    throw err
  }
}

export async function closeAll(targets: Target[]): Promise<void> {
  await Promise.all(targets.map((t) => t.close().catch(() => {})))
}

function positiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  if (!/^[1-9][0-9]*$/.test(text)) throw new CliError(`--${name} must be a whole number of 1 or more, not ${JSON.stringify(text)}`, 2)
  return Number(text)
}

export function settingsOverrides(v: Record<string, unknown>): Partial<TargetSettings> {
  const out: Partial<TargetSettings> = {}
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined)
  if (str('pm2-home')) out.pm2Home = str('pm2-home')
  const workers = positiveInt('workers', str('workers'))
  if (workers) out.workers = workers
  if (str('health-url')) {
    try {
      const u = new URL(str('health-url')!)
      if (!/^https?:$/.test(u.protocol)) throw new Error()
    } catch {
      throw new CliError(`--health-url ${JSON.stringify(str('health-url'))} is not an http(s) URL`, 2)
    }
    out.healthUrl = str('health-url')
  }
  if (str('health-ca')) out.healthCa = str('health-ca')
  if (str('proxy') || str('proxy-conf') || str('proxy-prefix')) {
    if (!str('proxy') || !str('proxy-conf')) throw new CliError('--proxy and --proxy-conf go together: where the shared nginx runs and its config file', 2)
    if (str('proxy') !== 'local') {
      try {
        parseHost(str('proxy')!)
      } catch {
        throw new CliError(`--proxy ${JSON.stringify(str('proxy'))} is not local or [user@]host[:port]`, 2)
      }
    }
    out.proxy = { host: str('proxy')!, conf: str('proxy-conf')!, ...(str('proxy-prefix') ? { prefix: str('proxy-prefix') } : {}) }
  }
  if (str('upstream')) {
    if (Array.isArray(v.host) && v.host.length > 1)
      throw new CliError("--upstream is one host's address: give it with one --host (it is saved in that host's settings)", 2)
    if (!/^(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$/.test(str('upstream')!))
      throw new CliError(`--upstream ${JSON.stringify(str('upstream'))} is not HOST:PORT`, 2)
    out.upstream = str('upstream')
  }
  if (str('nginx-conf')) out.nginxConf = str('nginx-conf')
  if (str('nginx-prefix')) out.nginxPrefix = str('nginx-prefix')
  if (Array.isArray(v['tls-cert'])) out.tlsCerts = v['tls-cert'] as string[]
  const keep = positiveInt('keep', str('keep'))
  if (keep) out.keep = keep
  if (str('deps-cache')) out.depsCache = str('deps-cache')
  return out
}

export function rollingPlan(v: Record<string, unknown>): RollingPlan {
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined)
  const canaryText = str('canary')
  const canary = canaryText === undefined ? 0 : /^[0-9]+$/.test(canaryText) ? Number(canaryText) : Number.NaN
  if (!Number.isFinite(canary)) throw new CliError(`--canary must be a whole number of hosts, not ${JSON.stringify(canaryText)}`, 2)
  const b = str('batch') ?? '1'
  const pct = /^([1-9][0-9]?|100)%$/.exec(b)
  if (!pct && !/^[1-9][0-9]*$/.test(b)) throw new CliError(`--batch must be a number of hosts or a percentage (1%-100%), not ${JSON.stringify(b)}`, 2)
  const onFailure = str('on-failure') ?? 'rollback-fleet'
  if (onFailure !== 'rollback-fleet' && onFailure !== 'stop')
    throw new CliError(`--on-failure must be rollback-fleet or stop, not ${JSON.stringify(onFailure)}`, 2)
  const pause = str('pause-between')
  return { canary, batch: pct ? { percent: Number(pct[1]) } : Number(b), onFailure, pauseMs: pause === undefined ? 0 : seconds('pause-between', pause, 0) }
}

/** Opens a proxy host the way --host targets are opened (same ssh config and options). */
export const targetOpener =
  (v: TargetValues) =>
  (host: string, path: string): Target =>
    host === 'local' ? new LocalTarget(path) : new SshTarget({ host, path, configFile: v['ssh-config'], options: v['ssh-option'] })

/** The fleet's end state in the terminal: one line per host, the failure, the fleet rollback. */
export function fleetText(f: FleetSummary): string {
  const width = Math.max(...f.hosts.map((h) => h.target.length))
  const lines = [`fleet (${f.plan}; batches ${f.batches.map((b) => b.length).join('+')}):`]
  for (const h of f.hosts) {
    const what = {
      updated: `updated from ${h.before ?? 'nothing'}`,
      unchanged: 'unchanged',
      failed: 'FAILED',
      reverted: 'put back by the fleet rollback',
      'revert failed': 'FLEET ROLLBACK FAILED',
    }[h.outcome]
    lines.push(`  ${h.target.padEnd(width)}  on ${h.live ?? 'nothing'}  ${what}${h.reason ? `: ${h.reason}` : ''}`)
  }
  if (f.failure) lines.push(`stopped: ${f.failure.stage === 'canary' ? 'canary check on ' : ''}${f.failure.target}: ${f.failure.reason}`)
  if (f.rollback)
    lines.push(
      `fleet rollback: ${f.rollback.ok ? 'every host this run changed is back on what it ran' : 'NOT every host could be put back (see above)'} (${(f.rollback.ms / 1000).toFixed(1)}s)`,
    )
  else if (f.failure && f.hosts.some((h) => h.outcome === 'updated'))
    lines.push(
      `no fleet rollback (--on-failure stop): ${f.hosts
        .filter((h) => h.outcome === 'updated')
        .map((h) => h.target)
        .join(', ')} keep the new release`,
    )
  return lines.join('\n')
}

export const seconds = (name: string, text: string | undefined, def: number): number => {
  if (text === undefined) return def * 1000
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || Number(text) <= 0) throw new CliError(`--${name} must be a number of seconds, not ${JSON.stringify(text)}`, 2)
  return Math.round(Number(text) * 1000)
}

const mark = { ok: '✓', warn: '!', error: '✗' } as const

/** Progress on stderr: one line per preflight check and per step, with its duration. */
export function stderrReporter(multi: boolean): Reporter {
  const prefix = (t: Target) => (multi ? `[${t.label}] ` : '')
  return {
    check: (t, c: Check) => note(`  ${prefix(t)}  ${mark[c.level]} ${c.name}: ${c.message}`),
    step: (t, s) => note(`  ${prefix(t)}${s.ok ? '✓' : '✗'} ${s.name.padEnd(18)} ${(s.ms / 1000).toFixed(1).padStart(5)}s${s.detail ? `  ${s.detail}` : ''}`),
    info: (text) => note(text),
  }
}

export const quietReporter: Reporter = { check() {}, step() {}, info() {} }

/** TargetError and friends are the operator's problem to fix: one line, exit 1. */
export function asCliError(err: unknown): never {
  if (err instanceof TargetError || err instanceof StepError) throw new CliError(err.message)
  throw err
}
