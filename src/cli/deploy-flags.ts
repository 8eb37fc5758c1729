// What deploy, rollback, releases and status share on the command line: which target(s), how to
// reach them, the per-target settings, and how progress is printed (stderr; stdout stays for the
// result line or --json).
import { CliError, note } from './command.js'
import { StepError, type Reporter } from '../ops/deploy/deploy.js'
import type { TargetSettings } from '../ops/deploy/layout.js'
import type { Check } from '../ops/deploy/preflight.js'
import { LocalTarget, SshTarget, type Target, TargetError } from '../ops/deploy/target.js'

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
} as const

export const TARGET_USAGE = `Target:
  --path DIR              deploy root on the target (absolute for --host)
  --host [USER@]HOST[:PORT]  a remote host over ssh (repeat for a rolling deploy, one at a time);
                          without --host the target is DIR on this machine
  --ssh-config FILE       ssh -F FILE (default: your ~/.ssh/config); BatchMode=yes, never prompts
  --ssh-option KEY=VALUE  extra ssh -o option (repeatable)
  --json                  machine-readable result on stdout`

export const SETTINGS_USAGE = `Target settings (saved in DIR/.runway/target.json on deploy, reused by later commands):
  --pm2-home DIR          pm2's home on the target (default DIR/.pm2)
  --workers N             WEB_CONCURRENCY for the cluster (default: one per CPU)
  --health-url URL        what the health gate polls, e.g. https://api.example.com/readyz through
                          nginx (default http://127.0.0.1:PORT/readyz, PORT from shared/.env)
  --health-ca FILE        CA (on the target) to trust for an https health URL`

interface TargetValues {
  path?: string
  host?: string[]
  'ssh-config'?: string
  'ssh-option'?: string[]
}

export function openTargets(v: TargetValues, o: { single?: boolean } = {}): Target[] {
  if (!v.path) throw new CliError('--path is required: the deploy root on the target, e.g. --path /srv/runway', 2)
  const hosts = v.host ?? []
  if (o.single && hosts.length > 1) throw new CliError('give one --host for this command', 2)
  try {
    if (!hosts.length) return [new LocalTarget(v.path)]
    return hosts.map((host) => new SshTarget({ host, path: v.path!, configFile: v['ssh-config'], options: v['ssh-option'] }))
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
  if (str('nginx-conf')) out.nginxConf = str('nginx-conf')
  if (str('nginx-prefix')) out.nginxPrefix = str('nginx-prefix')
  if (Array.isArray(v['tls-cert'])) out.tlsCerts = v['tls-cert'] as string[]
  const keep = positiveInt('keep', str('keep'))
  if (keep) out.keep = keep
  if (str('deps-cache')) out.depsCache = str('deps-cache')
  return out
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
