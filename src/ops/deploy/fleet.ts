// What a deploy to several hosts must agree on, and what one host must reach. Hosts behind one
// load balancer share tokens and users: a different signing key makes tokens from A fail on B, a
// different database splits users and revocations. Only fingerprints and password-free URLs are
// ever compared or printed, never a key or a password.
import { createHash } from 'node:crypto'
import proxyAddr from '@fastify/proxy-addr'
import type { loadConfig } from '../../api/config.js'
import { redactSecrets, urlPassword } from '../../api/redact.js'
import { POSTGRES_MIGRATIONS } from '../../api/store/migrations.js'
import type { Check } from './preflight.js'
import { q, reasonLine, type Target } from './target.js'

type Config = ReturnType<typeof loadConfig>

export interface FleetFacts {
  /** sha256 of the algorithm and the signing key (or the key files' contents): short, one-way. */
  keyFingerprint: string
  /** DATABASE_URL without its password, or null for SQLite. */
  database: string | null
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex')

/** DATABASE_URL with the password removed (what may be printed and compared). */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url)
    u.password = ''
    return u.toString()
  } catch {
    return redactSecrets(url)
  }
}

/** The facts of one host; asymmetric keys are hashed on the target (the key never leaves it). */
export async function fleetFacts(target: Target, config: Config): Promise<FleetFacts | { error: string }> {
  const { jwt } = config
  let key: string
  if (jwt.algorithm.startsWith('HS')) key = sha(`${jwt.algorithm}\n${jwt.signingKey}`)
  else {
    const files = [jwt.privateKeyFile, ...jwt.publicKeyFiles]
    const r = await target.sh(`cd ${q(target.root)}/shared 2>/dev/null; sha256sum -- ${files.map(q).join(' ')} | cut -d' ' -f1`)
    if (r.code !== 0) return { error: `cannot read the JWT key files on the target: ${reasonLine(r.stderr || r.stdout)}` }
    key = sha(`${jwt.algorithm}\n${r.stdout}`)
  }
  return { keyFingerprint: `sha256:${key.slice(0, 12)}`, database: config.databaseUrl ? withoutPassword(config.databaseUrl) : null }
}

/** Errors (and the SQLite warning) for a deploy to several hosts; nothing for one host. */
export function fleetChecks(hosts: Array<{ label: string; facts: FleetFacts }>): Check[] {
  if (hosts.length < 2) return []
  const checks: Check[] = []
  const differing = (pick: (f: FleetFacts) => string) => {
    const groups = new Map<string, string[]>()
    for (const h of hosts) groups.set(pick(h.facts), [...(groups.get(pick(h.facts)) ?? []), h.label])
    return groups.size > 1 ? [...groups].map(([value, labels]) => `${labels.join(', ')} (${value})`).join(' vs ') : null
  }
  const keys = differing((f) => f.keyFingerprint)
  checks.push(
    keys
      ? {
          name: 'fleet keys',
          level: 'error',
          message: `signing keys differ: ${keys}: tokens issued by one host are refused by the others; copy one JWT_SIGNING_KEY (or key files) to every host`,
        }
      : { name: 'fleet keys', level: 'ok', message: `one signing key on ${hosts.length} hosts (${hosts[0]!.facts.keyFingerprint})` },
  )
  const dbs = differing((f) => f.database ?? 'SQLite')
  if (dbs)
    checks.push({
      name: 'fleet database',
      level: 'error',
      message: `DATABASE_URL differs: ${dbs}: users, sessions and revocations would be split between hosts; set the same DATABASE_URL on every host`,
    })
  else if (hosts[0]!.facts.database === null)
    checks.push({
      name: 'fleet database',
      level: 'warn',
      message: `${hosts.length} hosts each keep their own SQLite database: users and logouts are not shared; set one DATABASE_URL (PostgreSQL) on every host`,
    })
  else checks.push({ name: 'fleet database', level: 'ok', message: `one database on ${hosts.length} hosts (${hosts[0]!.facts.database})` })
  return checks
}

const LOOPBACK = /^(127\.|::1$|localhost$)/

/**
 * Does TRUST_PROXY trust the proxy that will connect? With nginx on this host (or the app bound to
 * loopback) the proxy is 127.0.0.1; an app listening on another address without a local nginx is
 * reached by a proxy elsewhere, which a loopback-only TRUST_PROXY does not trust: every client
 * would then share that proxy's login-limit bucket. true/false are check --deploy's W002/W003.
 */
export function proxyTrustCheck(config: Config, localNginx: boolean): Check | null {
  const trust = config.trustProxy
  if (typeof trust !== 'object') return null
  const trusts = proxyAddr.compile(trust)
  const shown = `TRUST_PROXY=${trust.join(',')}`
  if (localNginx || LOOPBACK.test(config.host)) {
    if (trusts('127.0.0.1', 0)) return { name: 'proxy trust', level: 'ok', message: `${shown} trusts the local proxy (127.0.0.1)` }
    return {
      name: 'proxy trust',
      level: 'warn',
      message: `${shown} does not trust the local proxy 127.0.0.1: every client looks like nginx (one login-limit bucket for all); add 127.0.0.1`,
    }
  }
  if (trust.every((a) => LOOPBACK.test(a) || a === 'loopback'))
    return {
      name: 'proxy trust',
      level: 'warn',
      message: `HOST=${config.host} without nginx on this host, but ${shown} trusts only this machine: a proxy on another host is not trusted, so every client behind it shares one login-limit bucket; set TRUST_PROXY to that proxy's address`,
    }
  return { name: 'proxy trust', level: 'ok', message: `${shown} (HOST=${config.host}, proxy on another host)` }
}

// Runs on the target with its node: through the pg of an installed release when there is one (login
// with the configured credentials, schema version), else a TCP connect (reachability only).
const PROBE = `
import { createRequire } from 'node:module'
import net from 'node:net'
const out = (o) => { console.log(JSON.stringify(o)); process.exit(0) }
let pg
for (const dir of dirs) { try { pg = createRequire(dir + '/package.json')('pg'); break } catch {} }
if (pg) {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  c.on('error', () => {})
  try {
    await c.connect()
    const t = await c.query("SELECT to_regclass('runway_schema') IS NOT NULL AS t")
    const v = t.rows[0].t ? (await c.query('SELECT version FROM runway_schema')).rows[0]?.version ?? 0 : 0
    await c.end()
    out({ ok: true, login: true, version: v })
  } catch (e) { out({ ok: false, error: String(e.message || e.code || e) }) }
} else {
  let u
  try { u = new URL(url) } catch { out({ ok: false, error: 'not a URL' }) }
  const host = u.hostname || 'localhost', port = Number(u.port || 5432)
  const s = net.connect({ host: host.replace(/^\\[|\\]$/g, ''), port, timeout: 5000 })
  s.on('connect', () => { s.destroy(); out({ ok: true, login: false }) })
  s.on('timeout', () => { s.destroy(); out({ ok: false, error: 'connect timed out after 5 s' }) })
  s.on('error', (e) => out({ ok: false, error: e.code ? e.code + ' ' + host + ':' + port : e.message }))
}
`

/**
 * PostgreSQL reached from the target with the configured URL; never prints the password.
 * `releases`: directories on the target whose node_modules may hold pg (default: the live release).
 */
export async function databaseCheck(target: Target, url: string, releases = [`${target.root}/current`]): Promise<Check> {
  const shown = withoutPassword(url)
  const secret = urlPassword(url)
  const scrub = (s: string) => redactSecrets(s, secret ? [secret] : [])
  // The URL travels inside the script on stdin: never on a command line (ps, ssh logs).
  const r = await target.sh('node --input-type=module -', { input: `const [url, dirs] = ${JSON.stringify([url, releases])}\n${PROBE}`, timeoutMs: 20_000 })
  let res: { ok: boolean; login?: boolean; version?: number; error?: string }
  try {
    res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '')
  } catch {
    return { name: 'database', level: 'error', message: `cannot probe PostgreSQL ${shown} from the target: ${scrub(reasonLine(r.stderr || r.stdout))}` }
  }
  if (!res.ok) return { name: 'database', level: 'error', message: `PostgreSQL ${shown} unreachable from the target: ${scrub(res.error ?? 'unknown error')}` }
  if (!res.login)
    return {
      name: 'database',
      level: 'warn',
      message: `PostgreSQL ${shown} accepts connections; credentials and schema are checked by the migrate step (no live release on the target to log in with)`,
    }
  const want = POSTGRES_MIGRATIONS.length
  const v = res.version ?? 0
  if (v > want)
    return {
      name: 'database',
      level: 'warn',
      message: `PostgreSQL ${shown}: schema version ${v} is newer than this release's ${want}: an older release against a newer schema`,
    }
  return {
    name: 'database',
    level: 'ok',
    message: `PostgreSQL ${shown} reachable, logged in; schema ${v === want ? `migrated (version ${v})` : `at version ${v} of ${want}: the migrate step brings it up`}`,
  }
}
