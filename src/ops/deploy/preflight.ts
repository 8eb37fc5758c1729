// Preflight: everything that can be known to be wrong before anything on the target changes.
// Each check yields one line (ok / warning / error); any error refuses the deploy, so a bad
// setting, a full disk or an expired certificate is found before the live release is touched.
import { X509Certificate } from 'node:crypto'
import { isAbsolute } from 'node:path'
import { ConfigError, loadConfig, parseEnvText } from '../../api/config.js'
import { auditConfig } from './audit-config.js'
import { databaseCheck, fleetFacts, proxyTrustCheck, type FleetFacts } from './fleet.js'
import type { TargetSettings } from './layout.js'
import { reasonLine, q, type Target } from './target.js'

export type Level = 'ok' | 'warn' | 'error'
export interface Check {
  name: string
  level: Level
  message: string
}

export interface PreflightInput {
  target: Target
  settings: TargetSettings
  /** Bytes the new release needs on the target. */
  artifactBytes: number
  /** `git status --porcelain` lines of the source (empty = clean). */
  gitChanges: string[]
  allowDirty: boolean
  now?: Date
}

const WARN_DAYS = 14
const DAY = 86_400_000

export function gitCheck(changes: string[], allowDirty: boolean): Check {
  if (!changes.length) return { name: 'git', level: 'ok', message: 'working tree clean' }
  const first = changes[0]!.trim()
  const what = `${changes.length} uncommitted change${changes.length > 1 ? 's' : ''} (${first}${changes.length > 1 ? ', …' : ''})`
  return allowDirty
    ? { name: 'git', level: 'warn', message: `${what}: deploying anyway (--allow-dirty); the release is not reproducible from its sha` }
    : { name: 'git', level: 'error', message: `${what}: commit or stash them, or pass --allow-dirty` }
}

/** shared/.env validated exactly as a production worker will validate it. */
export function configCheck(envText: string | null): { check: Check; dataDir?: string; port?: number; config?: ReturnType<typeof loadConfig> } {
  if (envText === null)
    return {
      check: {
        name: 'config',
        level: 'error',
        message: 'shared/.env is missing on the target: create it with NODE_ENV=production and a strong JWT_SIGNING_KEY (see docs/deploying.md)',
      },
    }
  try {
    const raw = parseEnvText(envText, 'shared/.env')
    if (raw.NODE_ENV && raw.NODE_ENV !== 'production')
      return {
        check: { name: 'config', level: 'error', message: `shared/.env sets NODE_ENV=${raw.NODE_ENV}: a deployed release runs with NODE_ENV=production` },
      }
    const config = loadConfig({ ...raw, NODE_ENV: 'production' })
    const key = config.jwt.algorithm.startsWith('HS')
      ? `${Buffer.byteLength(config.jwt.signingKey)}-byte ${config.jwt.algorithm} key`
      : `${config.jwt.algorithm} key ${config.jwt.privateKeyFile}`
    return {
      check: { name: 'config', level: 'ok', message: `production settings valid (${key})` },
      dataDir: raw.DATA_DIR || './data',
      port: config.port,
      config,
    }
  } catch (err) {
    if (err instanceof ConfigError) return { check: { name: 'config', level: 'error', message: `shared/.env: ${err.message.replace(' in shared/.env', '')}` } }
    throw err
  }
}

export function certificateCheck(file: string, pem: string | null, now: Date): Check {
  if (pem === null) return { name: 'tls', level: 'error', message: `${file}: cannot read the certificate on the target` }
  let cert: X509Certificate
  try {
    cert = new X509Certificate(pem)
  } catch {
    return { name: 'tls', level: 'error', message: `${file} is not a PEM certificate` }
  }
  const expires = new Date(cert.validTo)
  const days = Math.floor((expires.getTime() - now.getTime()) / DAY)
  if (expires <= now)
    return { name: 'tls', level: 'error', message: `${file} expired on ${expires.toISOString().slice(0, 10)}: renew it (certbot renew) before deploying` }
  if (days < WARN_DAYS)
    return {
      name: 'tls',
      level: 'warn',
      message: `${file} expires in ${days} day${days === 1 ? '' : 's'} (${expires.toISOString().slice(0, 10)}): renew it soon`,
    }
  return { name: 'tls', level: 'ok', message: `${file} valid for ${days} more days` }
}

export function diskCheck(freeBytes: number | null, needBytes: number): Check {
  if (freeBytes === null) return { name: 'disk', level: 'error', message: 'cannot read free disk space on the target (df failed)' }
  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`
  if (freeBytes < needBytes)
    return {
      name: 'disk',
      level: 'error',
      message: `${mb(freeBytes)} free on the target, the release needs ${mb(needBytes)}: free some space (fewer --keep releases, old logs)`,
    }
  return { name: 'disk', level: 'ok', message: `${mb(freeBytes)} free, release needs ${mb(needBytes)}` }
}

/** ssl_certificate paths named in an nginx config file (not following includes). */
export function certificatesIn(nginxConf: string): string[] {
  return [...nginxConf.matchAll(/^\s*ssl_certificate\s+("?)([^";\s]+)\1\s*;/gm)].map((m) => m[2]!)
}

async function readOnTarget(target: Target, file: string): Promise<string | null> {
  const r = await target.sh(`cat -- ${q(file)}`)
  return r.code === 0 ? r.stdout : null
}

export interface PreflightResult {
  checks: Check[]
  /** The app's PORT from shared/.env (for the default health URL). */
  port?: number
  /** The app's HOST from shared/.env. */
  appHost?: string
  /** What a deploy to several hosts compares (absent when the settings are invalid). */
  fleet?: FleetFacts
}

export async function preflight(input: PreflightInput): Promise<PreflightResult> {
  const { target, settings } = input
  const now = input.now ?? new Date()
  const checks: Check[] = [gitCheck(input.gitChanges, input.allowDirty)]

  const envText = await readOnTarget(target, `${target.root}/shared/.env`)
  const { check, dataDir, port, config } = configCheck(envText)
  checks.push(check)
  let fleet: FleetFacts | undefined
  if (config) {
    const facts = await fleetFacts(target, config)
    if ('error' in facts) checks.push({ name: 'keys', level: 'error', message: facts.error })
    else fleet = facts
    const proxy = proxyTrustCheck(config, Boolean(settings.nginxConf))
    if (proxy) checks.push(proxy)
  }

  // The store: PostgreSQL reached from the target with the configured credentials; SQLite lives in
  // DATA_DIR, resolved from the release directory, where ./data is the link to shared/data. It
  // must exist (or be creatable) and be writable by the deploying user.
  if (config?.databaseUrl) checks.push(await databaseCheck(target, config.databaseUrl))
  else if (dataDir) {
    const dir = isAbsolute(dataDir) ? dataDir : `${target.root}/shared/${dataDir.replace(/^\.\//, '')}`
    const r = await target.sh(
      // Read-only: a missing directory is fine when its nearest existing parent is writable (the
      // deploy creates it).
      `d=${q(dir)}; p="$d"; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; ` +
        `[ -d "$p" ] || { echo "$p is not a directory"; exit 1; }; ` +
        `[ -w "$p" ] || { echo "$p is not writable by $(id -un)"; exit 1; }; ` +
        `for f in "$d"/runway.sqlite3*; do [ -e "$f" ] || continue; [ -r "$f" ] && [ -w "$f" ] || { echo "$f is not readable and writable by $(id -un)"; exit 1; }; done`,
    )
    checks.push(
      r.code === 0
        ? { name: 'store', level: 'ok', message: `SQLite directory ${dir} writable` }
        : { name: 'store', level: 'error', message: `store unreachable: ${reasonLine(r.stdout + r.stderr)}` },
    )
  }

  const certs = [...(settings.tlsCerts ?? [])]
  if (settings.nginxConf) {
    const prefix = settings.nginxPrefix ? ` -p ${q(settings.nginxPrefix)}` : ''
    const r = await target.sh(
      `PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"; command -v nginx >/dev/null || { echo 'nginx is not installed on the target'; exit 1; }; nginx -t -q -c ${q(settings.nginxConf)}${prefix} 2>&1`,
    )
    const why = reasonLine(
      (r.stdout + r.stderr)
        .split('\n')
        .filter((l) => /emerg|alert|crit|error|not installed/.test(l))
        .join('\n') || r.stdout + r.stderr,
    )
    checks.push(
      r.code === 0
        ? { name: 'nginx', level: 'ok', message: `nginx -t passed for ${settings.nginxConf}` }
        : { name: 'nginx', level: 'error', message: `nginx -t failed: ${why.replace(/^nginx: /, '')}` },
    )
    const conf = await readOnTarget(target, settings.nginxConf)
    if (conf) certs.push(...certificatesIn(conf).map((c) => (isAbsolute(c) ? c : `${settings.nginxPrefix ?? '/etc/nginx'}/${c}`)))
  }
  for (const file of [...new Set(certs)]) checks.push(certificateCheck(file, await readOnTarget(target, file), now))

  // Free space where the release will be written (the root, or its nearest existing parent).
  const df = await target.sh(`d=${q(target.root)}; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d" | awk 'NR==2 {print $4}'`)
  const freeKb = Number(df.stdout.trim())
  checks.push(diskCheck(df.code === 0 && df.stdout.trim() && Number.isFinite(freeKb) ? freeKb * 1024 : null, input.artifactBytes))

  // `runway check --deploy` on the target. What the checks above already decide (settings, the
  // store, certificates) is theirs; the rest is listed as warnings, except a guessable key.
  if (envText !== null && check.level !== 'error') {
    const audit = await auditConfig({
      target,
      base: `${target.root}/shared`,
      env: {
        PM2_HOME: settings.pm2Home,
        RUNWAY_LOG_DIR: `${target.root}/shared/logs`,
        ...(settings.workers ? { WEB_CONCURRENCY: String(settings.workers) } : {}),
      },
      nginxConf: settings.nginxConf,
      now,
      skipDatabaseProbe: true,
    })
    const own = new Set(['runway.E001', 'runway.E002', 'runway.E003', 'runway.E007', 'runway.E009', 'runway.E010', 'runway.W007'])
    for (const f of audit.findings.filter((x) => !x.silenced && !own.has(x.id)))
      checks.push({ name: f.id, level: f.id === 'runway.E004' ? 'error' : 'warn', message: f.message })
  }
  return { checks, port, appHost: config?.host, fleet }
}

export const failed = (checks: Check[]) => checks.filter((c) => c.level === 'error')
