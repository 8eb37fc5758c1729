// `runway check --deploy`: what Django's `manage.py check --deploy` is to Django. Audits a
// production configuration without starting anything, on this machine or a target (every probe is
// a shell script through Target.sh, so local and SSH targets run the same checks). Each finding
// has an id (runway.E… = error, runway.W… = warning) and says how to fix it; ids listed in
// SILENCED_CHECKS (or --silence) are reported as silenced, on purpose, and do not count.
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { isAbsolute } from 'node:path'
import { ConfigError, EXAMPLE_SIGNING_KEY, loadConfig, parseEnvText } from '../../api/config.js'
import { corsFindings } from './audit-cors.js'
import { upstreamFindings } from './audit-upstream.js'
import { databaseCheck } from './fleet.js'
import { q, type Target } from './target.js'

export interface Finding {
  id: string
  level: 'error' | 'warning'
  message: string
  silenced?: boolean
}

export interface AuditInput {
  target: Target
  /** Directory the app's .env and relative DATA_DIR are resolved against (the app root, or <root>/shared). */
  base: string
  /** Extra environment the workers get (the real environment wins over .env). */
  env?: Record<string, string | undefined>
  nginxConf?: string
  /** Server names the certificate must cover (default: nginx's server_name lines). */
  serverNames?: string[]
  silence?: string[]
  now?: Date
  /** Deploy preflight probes the database itself (runway.E014 would repeat it). */
  skipDatabaseProbe?: boolean
}

export interface AuditResult {
  ok: boolean
  findings: Finding[]
}

const DAY = 86_400_000
const err = (id: string, message: string): Finding => ({ id, level: 'error', message })
const warn = (id: string, message: string): Finding => ({ id, level: 'warning', message })

/** True for keys an attacker can guess: few distinct characters, or one short pattern repeated. */
export function lowEntropy(key: string): boolean {
  if (new Set(key).size < 10) return true
  for (let n = 1; n <= 8; n++)
    if (
      key.length >= 2 * n &&
      key ===
        key
          .slice(0, n)
          .repeat(Math.ceil(key.length / n))
          .slice(0, key.length)
    )
      return true
  return false
}

async function sh(target: Target, script: string): Promise<{ code: number; out: string }> {
  const r = await target.sh(script)
  return { code: r.code, out: (r.stdout + r.stderr).trim() }
}

/** Durations in nginx syntax (60s, 1m, 75): milliseconds. */
function nginxMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text)
  if (!m) return NaN
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[m[2] ?? 's']!
}

export async function auditConfig(input: AuditInput): Promise<AuditResult> {
  const { target, base } = input
  const now = input.now ?? new Date()
  const findings: Finding[] = []
  const envFile = `${base}/.env`
  const envText = await sh(target, `cat -- ${q(envFile)}`)
  if (envText.code !== 0)
    findings.push(
      err('runway.E001', `${envFile} is missing: create it from .env.example (NODE_ENV=production, JWT_SIGNING_KEY from \`openssl rand -base64 48\`)`),
    )

  // 1. Every setting, through the loader the workers use.
  let raw: Record<string, string | undefined> = {}
  let config: ReturnType<typeof loadConfig> | undefined
  try {
    raw = {
      ...parseEnvText(envText.code === 0 ? envText.out : '', envFile),
      ...Object.fromEntries(Object.entries(input.env ?? {}).filter(([, v]) => v !== undefined)),
    }
    config = loadConfig({ ...raw, NODE_ENV: 'production' })
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    findings.push(err('runway.E002', e.message))
  }
  const silenced = new Set([
    ...(input.silence ?? []),
    ...(raw.SILENCED_CHECKS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ])

  if (raw.NODE_ENV && raw.NODE_ENV !== 'production')
    findings.push(err('runway.E003', `NODE_ENV=${raw.NODE_ENV} in ${envFile}: a deployed app runs with NODE_ENV=production (remove the line)`))
  const key = raw.JWT_SIGNING_KEY ?? ''
  if (key && key !== EXAMPLE_SIGNING_KEY && lowEntropy(key))
    findings.push(err('runway.E004', 'JWT_SIGNING_KEY is guessable (few distinct characters or a repeated pattern): use `openssl rand -base64 48`'))

  if (config) {
    if (config.openapiUi)
      findings.push(
        warn('runway.W001', 'the OpenAPI UI is served at /docs in production: set OPENAPI_UI=false unless the API documentation is meant to be public'),
      )
    if (config.trustProxy === true)
      findings.push(
        warn(
          'runway.W002',
          'TRUST_PROXY=true trusts X-Forwarded-For from anyone who can reach the app: set it to the proxy address (127.0.0.1) or a hop count',
        ),
      )
    if (config.trustProxy === false && input.nginxConf)
      findings.push(
        warn('runway.W003', 'TRUST_PROXY=false behind nginx: every client looks like nginx (one rate-limit bucket for all): set TRUST_PROXY=127.0.0.1'),
      )
    const m = config.metrics
    if (m && !/^(127\.|localhost$|::1$)/.test(m.host)) {
      findings.push(
        warn(
          'runway.W030',
          `METRICS_HOST=${m.host}: GET /metrics on port ${m.port} answers anyone who reaches it, without authentication: let only Prometheus reach that port (firewall), or keep METRICS_HOST=127.0.0.1`,
        ),
      )
    }

    // KEEP_ALIVE_TIMEOUT must outlive nginx's upstream keepalive_timeout, or nginx reuses sockets the app is closing.
    let upstreamMs = 60_000
    let nginxText = ''
    if (input.nginxConf) {
      const r = await sh(target, `cat -- ${q(input.nginxConf)}`)
      if (r.code !== 0) findings.push(err('runway.E005', `${input.nginxConf}: cannot read the nginx config`))
      else {
        nginxText = r.out
        const upstream = /upstream\s+[^{]+\{([^}]*)\}/.exec(nginxText)?.[1] ?? ''
        const m = /keepalive_timeout\s+([0-9a-z]+)\s*;/.exec(upstream)
        if (m) upstreamMs = nginxMs(m[1]!)
      }
    }
    findings.push(...corsFindings(config, input.nginxConf ? nginxText : undefined))
    findings.push(...(await upstreamFindings(target, config, input.nginxConf ? nginxText : undefined)))
    if (config.keepAliveTimeoutMs <= upstreamMs)
      findings.push(
        err(
          'runway.E006',
          `KEEP_ALIVE_TIMEOUT (${config.keepAliveTimeoutMs / 1000}s) is not above nginx's upstream keepalive_timeout (${upstreamMs / 1000}s): set it to ${upstreamMs / 1000 + 5}s`,
        ),
      )

    // Workers vs CPUs (and vs PostgreSQL connections).
    const cpus = Number((await sh(target, 'nproc')).out) || 1
    const workers = Number(input.env?.WEB_CONCURRENCY ?? raw.WEB_CONCURRENCY ?? cpus)
    if (workers > cpus)
      findings.push(
        warn('runway.W004', `${workers} workers on ${cpus} CPUs: more workers than cores only add memory and context switches (set WEB_CONCURRENCY=${cpus})`),
      )
    if (config.databaseUrl && !input.skipDatabaseProbe) {
      // Reached from the target with its credentials: through pg of the live release (a deploy
      // target) or of the app itself (`base` is the app root).
      const db = await databaseCheck(target, config.databaseUrl, [`${base}/../current`, base])
      if (db.level === 'error') findings.push(err('runway.E014', db.message))
    }
    if (config.databaseUrl)
      findings.push(
        warn(
          'runway.W005',
          `PostgreSQL: ${workers} workers each open a pool: make sure max_connections (or PgBouncer's pool) covers workers × pool size × hosts`,
        ),
      )

    // DATA_DIR: writable, local, room to grow.
    if (!config.databaseUrl) {
      const data = isAbsolute(raw.DATA_DIR ?? '') ? raw.DATA_DIR! : `${base}/${(raw.DATA_DIR || './data').replace(/^\.\//, '')}`
      const r = await sh(
        target,
        `d=${q(data)}; p="$d"; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; [ -d "$p" ] && [ -w "$p" ] || { echo "not a writable directory for $(id -un) ($p)"; exit 1; }; echo "$(df -Pk "$p" | awk 'NR==2 {print $4}') $(stat -f -c %T "$p")"`,
      )
      if (r.code !== 0) findings.push(err('runway.E007', `DATA_DIR ${data} is ${r.out}: fix its owner or permissions`))
      else {
        const [kb, fsType] = r.out.split(' ')
        if (Number(kb) < 200 * 1024)
          findings.push(
            warn('runway.W006', `DATA_DIR ${data} has ${(Number(kb) / 1024).toFixed(0)} MB free: SQLite needs room for the database, its WAL and backups`),
          )
        if (/nfs|cifs|smb|fuse/i.test(fsType ?? ''))
          findings.push(
            err('runway.E008', `DATA_DIR ${data} is on ${fsType}: SQLite's locking is unreliable on network filesystems; use a local disk or DATABASE_URL`),
          )
      }
    }

    // Certificates named by nginx: present, matching key, covering the server names, not expiring.
    const certs = [...nginxText.matchAll(/^\s*ssl_certificate\s+("?)([^";\s]+)\1\s*;/gm)].map((m) => m[2]!)
    const keys = [...nginxText.matchAll(/^\s*ssl_certificate_key\s+("?)([^";\s]+)\1\s*;/gm)].map((m) => m[2]!)
    const names = input.serverNames ?? [
      ...new Set([...nginxText.matchAll(/^\s*server_name\s+([^;]+);/gm)].flatMap((m) => m[1]!.trim().split(/\s+/)).filter((n) => n !== '_')),
    ]
    for (const [i, file] of certs.entries()) {
      const pem = await sh(target, `cat -- ${q(file)}`)
      if (pem.code !== 0) {
        findings.push(err('runway.E009', `${file} (ssl_certificate) is missing: create it (certbot, or \`runway tls self-signed\` as a placeholder)`))
        continue
      }
      let cert: X509Certificate
      try {
        cert = new X509Certificate(pem.out)
      } catch {
        findings.push(err('runway.E009', `${file} is not a PEM certificate`))
        continue
      }
      const expires = new Date(cert.validTo)
      if (expires <= now) findings.push(err('runway.E010', `${file} expired on ${expires.toISOString().slice(0, 10)}: renew it (certbot renew)`))
      else if (expires.getTime() - now.getTime() < 14 * DAY)
        findings.push(warn('runway.W007', `${file} expires on ${expires.toISOString().slice(0, 10)}: renew it soon`))
      const keyFile = keys[i]
      const keyPem = keyFile ? await sh(target, `cat -- ${q(keyFile)}`) : undefined
      if (keyPem && keyPem.code === 0) {
        try {
          if (!cert.checkPrivateKey(createPrivateKey(keyPem.out)))
            findings.push(err('runway.E011', `${keyFile} is not the private key of ${file}: nginx will refuse to start`))
        } catch {
          findings.push(err('runway.E011', `${keyFile} is not a PEM private key`))
        }
      } else if (keyFile) findings.push(err('runway.E011', `${keyFile} (ssl_certificate_key) is missing`))
      const sans = (cert.subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^(DNS|IP Address):/, ''))
      const uncovered = names.filter(
        (n) => !sans.some((s) => s === n || (s.startsWith('*.') && n.endsWith(s.slice(1)) && n.split('.').length === s.split('.').length)),
      )
      if (uncovered.length)
        findings.push(
          warn(
            'runway.W008',
            `${file} does not cover ${uncovered.join(', ')} (its names: ${sans.join(', ') || 'none'}): clients will refuse it for those names`,
          ),
        )
    }
  }

  // Process limits and logs.
  const fd = Number((await sh(target, 'ulimit -n')).out)
  if (Number.isFinite(fd) && fd < 4096)
    findings.push(warn('runway.W009', `open file limit is ${fd}: each connection is a file descriptor; raise it (LimitNOFILE=65536 in the systemd unit)`))
  const logDir = input.env?.RUNWAY_LOG_DIR ?? raw.RUNWAY_LOG_DIR ?? `${base}/logs`
  const logs = await sh(
    target,
    `d=${q(logDir)}; p="$d"; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; [ -d "$p" ] && [ -w "$p" ] || { echo "$p is not a writable directory for $(id -un)"; exit 1; }`,
  )
  if (logs.code !== 0) findings.push(err('runway.E012', `log directory ${logDir}: ${logs.out}`))

  // The pm2 daemon must not run from a release that pruning can remove (see deploy.ts pm2Runtime).
  // Its process title hides the path: the live release's remote.js asks the daemon itself.
  const pm2Home = input.env?.PM2_HOME
  if (pm2Home) {
    const r = await sh(
      target,
      `cd ${q(base)}/.. 2>/dev/null && [ -e current/dist/ops/deploy/remote.js ] || exit 3; PM2_HOME=${q(pm2Home)} node current/dist/ops/deploy/remote.js daemon --release "$(pwd -P)/current" | tail -1`,
    )
    let script = ''
    try {
      script = r.code === 0 ? ((JSON.parse(r.out.split('\n').pop() ?? '') as { script?: string }).script ?? '') : ''
    } catch {}
    const m = /\/releases\/[^/]+\/node_modules\/pm2/.exec(script)
    if (m)
      findings.push(
        err(
          'runway.E013',
          `the pm2 daemon runs from ${script.slice(0, m.index + m[0].length)}, inside a release that pruning can remove: restart it from shared/pm2 (\`pm2 kill\`, then \`runway restart\`), or deploy with this runway, which keeps that release`,
        ),
      )
  }

  for (const f of findings) if (silenced.has(f.id)) f.silenced = true
  return { ok: !findings.some((f) => f.level === 'error' && !f.silenced), findings }
}
