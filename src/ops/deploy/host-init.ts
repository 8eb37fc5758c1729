// `runway host init`: prepares a fresh server from the operator's checkout, before anything of
// runway is on it. Everything is rendered here and written over the Target (local or SSH):
//
//   <root>/releases, shared/{data,logs,run}, .runway         the deploy layout (run: the app's socket)
//   <root>/shared/.env                                      production settings with a generated key
//                                                           (never overwritten once it exists)
//   <root>/shared/host/runway.service                       the systemd unit, rendered
//   <root>/shared/host/logrotate.conf                       logrotate, rendered
//   <root>/shared/host/nginx-site.conf                      nginx site config (TLS with a placeholder
//   <root>/shared/nginx/tls/placeholder.{crt,key}           self-signed certificate until certbot)
//
// Idempotent: files with the same content are left alone ("unchanged"), and the printed next
// steps (root-only installs) are the same every time. --dry-run writes nothing.
import { randomBytes } from 'node:crypto'
import { parse as parseDotenv } from 'dotenv'
import { readFileSync, rmSync } from 'node:fs'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { renderNginx } from '../proxy/nginx/render.js'
import { MAX_UNIX_SOCKET_BYTES } from '../../api/config.js'
import { ROOT } from '../../lib/build.js'
import { createSelfSigned } from '../tls/self-signed.js'
import { q, reasonLine, type Target, TargetError } from './target.js'

export interface HostInitOptions {
  target: Target
  serverNames: string[]
  /** The app's port (PORT in the generated .env, nginx's upstream). */
  port: number
  dryRun: boolean
  /** How the operator named the host (--host), for the printed deploy command; none = local. */
  hostSpec?: string
}

export interface HostAction {
  path: string
  status: 'created' | 'updated' | 'unchanged' | 'kept' | 'would create' | 'would update'
}

export interface HostInitReport {
  target: string
  actions: HostAction[]
  /** Commands that need root, to run once on the host. */
  next: string[]
}

const SAFE = /^[A-Za-z0-9_./-]+$/

/** Fills @NAME@ placeholders like deploy/render.sh, with the same rule for values. */
export function renderTemplateFile(file: string, values: Record<string, string>): string {
  let text = readFileSync(join(ROOT, 'deploy', file), 'utf8')
  for (const [name, value] of Object.entries(values)) {
    if (!SAFE.test(value)) throw new TargetError(`${name}=${value}: only letters, digits and _ . / - are allowed in paths and user names`)
    text = text.replaceAll(`@${name}@`, value)
  }
  const left = text.match(/@[A-Z0-9_]+@/g)
  if (left) throw new TargetError(`deploy/${file} still needs ${[...new Set(left)].join(' ')}`)
  return text
}

export function productionEnv(port: number, root: string): string {
  // Where the app listens for the nginx on its host (the site's upstream follows it: upstreamOf).
  const socket = `${root}/shared/run/app.sock`
  return [
    '# Written by `runway host init`: the production settings of this host (see .env.example).',
    'NODE_ENV=production',
    `PORT=${port}`,
    // Under a root too long for a socket path nginx keeps loopback TCP.
    ...(Buffer.byteLength(socket) <= MAX_UNIX_SOCKET_BYTES
      ? ['# nginx reaches the app over this socket (cheaper than loopback TCP); PORT is for health checks.', `UNIX_SOCKET=${socket}`]
      : []),
    `JWT_SIGNING_KEY=${randomBytes(48).toString('base64')}`,
    '# nginx on this host is the only proxy.',
    'TRUST_PROXY=127.0.0.1',
    'OPENAPI_UI=false',
    '',
  ].join('\n')
}

async function put(target: Target, path: string, content: string, o: { dryRun: boolean; keep?: boolean; mode?: string }): Promise<HostAction> {
  const now = await target.sh(`cat -- ${q(path)}`)
  const exists = now.code === 0
  if (exists && (o.keep || now.stdout === content)) return { path, status: o.keep && now.stdout !== content ? 'kept' : 'unchanged' }
  if (o.dryRun) return { path, status: exists ? 'would update' : 'would create' }
  const r = await target.sh(
    `mkdir -p "$(dirname ${q(path)})" && umask 077 && cat > ${q(`${path}.tmp`)} && ${o.mode ? `chmod ${o.mode} ${q(`${path}.tmp`)} && ` : ''}mv -f ${q(`${path}.tmp`)} ${q(path)}`,
    { input: content },
  )
  if (r.code !== 0) throw new TargetError(`cannot write ${path}: ${reasonLine(r.stderr)}`)
  return { path, status: exists ? 'updated' : 'created' }
}

/**
 * nginx's upstream as the host's .env has the app listen: its UNIX_SOCKET, else 127.0.0.1:PORT.
 * An .env written before UNIX_SOCKET existed is kept, so the site must follow it, not the default.
 */
export function upstreamOf(envText: string, defaultPort: number): string {
  const env = parseDotenv(envText)
  if (env.UNIX_SOCKET) return `unix:${env.UNIX_SOCKET}`
  return `127.0.0.1:${env.PORT || defaultPort}`
}

export async function hostInit(o: HostInitOptions): Promise<HostInitReport> {
  const { target, dryRun } = o
  const root = target.root
  const actions: HostAction[] = []
  const who = await target.sh('id -un && command -v node && node --version')
  if (who.code !== 0) throw new TargetError(`${target.label}: Node.js is not installed on the host (runway needs node ≥ 20 there): ${reasonLine(who.stderr)}`)
  const [user] = who.stdout.trim().split('\n')

  const dirs = ['releases', 'shared/data', 'shared/logs', 'shared/run', 'shared/host', 'shared/nginx/tls', 'shared/nginx/logs', '.runway'].map(
    (d) => `${root}/${d}`,
  )
  const missing = (await target.sh(dirs.map((d) => `[ -d ${q(d)} ] || echo ${q(d)}`).join('; '))).stdout.split('\n').filter(Boolean)
  if (missing.length && !dryRun) {
    const r = await target.sh(`mkdir -p ${missing.map(q).join(' ')}`)
    if (r.code !== 0) throw new TargetError(`cannot create ${missing[0]}: ${reasonLine(r.stderr)}`)
  }
  for (const d of dirs) actions.push({ path: `${d}/`, status: missing.includes(d) ? (dryRun ? 'would create' : 'created') : 'unchanged' })

  // nginx's workers run as another user: they pass through to the app's socket (traverse only).
  if (!dryRun) {
    const r = await target.sh(`chmod 711 ${q(`${root}/shared/run`)}`)
    if (r.code !== 0) throw new TargetError(`cannot open ${root}/shared/run to nginx: ${reasonLine(r.stderr)}`)
  }

  // The .env is the operator's once it exists: never regenerated (a new key would log everyone out).
  const generated = productionEnv(o.port, root)
  actions.push(await put(target, `${root}/shared/.env`, generated, { dryRun, keep: true, mode: '600' }))
  const existing = await target.sh(`cat -- ${q(`${root}/shared/.env`)}`)
  const upstream = upstreamOf(existing.code === 0 ? existing.stdout : generated, o.port)

  const values = {
    USER: user!,
    ROOT: root,
    PM2_HOME: `${root}/.pm2`,
    NGINX_LOGS: `${root}/shared/nginx/logs`,
    NGINX_PID: `${root}/shared/nginx/logs/nginx.pid`,
  }
  actions.push(await put(target, `${root}/shared/host/runway.service`, renderTemplateFile('runway.service', values), { dryRun }))
  actions.push(await put(target, `${root}/shared/host/logrotate.conf`, renderTemplateFile('logrotate.conf', values), { dryRun }))

  // A placeholder certificate so nginx starts (and serves certbot's challenge) before the real one.
  const crt = `${root}/shared/nginx/tls/placeholder.crt`
  const key = `${root}/shared/nginx/tls/placeholder.key`
  const haveCert = (await target.sh(`[ -s ${q(crt)} ] && [ -s ${q(key)} ]`)).code === 0
  if (haveCert) actions.push({ path: crt, status: 'unchanged' })
  else if (dryRun) actions.push({ path: crt, status: 'would create' })
  else {
    const tmp = mkdtempSync(join(tmpdir(), 'runway-host-tls-'))
    try {
      const files = await createSelfSigned({ out: tmp, names: o.serverNames, days: 30 })
      actions.push(await put(target, key, readFileSync(files.key, 'utf8'), { dryRun, mode: '600' }))
      actions.push(await put(target, crt, readFileSync(files.cert, 'utf8'), { dryRun, mode: '644' }))
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  }
  const site = renderNginx({
    variant: 'site',
    serverNames: o.serverNames,
    upstreams: [upstream],
    tls: true,
    cert: crt,
    key,
    accessLog: `${root}/shared/nginx/logs/access.log`,
  }).text
  actions.push(await put(target, `${root}/shared/host/nginx-site.conf`, site, { dryRun }))

  const name = o.serverNames[0]!
  const next = [
    `sudo install -m 644 ${root}/shared/host/runway.service /etc/systemd/system/runway.service && sudo systemctl daemon-reload && sudo systemctl enable runway`,
    `sudo install -m 644 ${root}/shared/host/logrotate.conf /etc/logrotate.d/runway`,
    `sudo mkdir -p /var/www/letsencrypt && sudo ln -sfn ${root}/shared/host/nginx-site.conf /etc/nginx/sites-enabled/runway && sudo nginx -t && sudo systemctl reload nginx`,
    `sudo certbot certonly --webroot -w /var/www/letsencrypt ${o.serverNames.map((n) => `-d ${n}`).join(' ')}, then point ssl_certificate/_key at /etc/letsencrypt/live/${name}/ (runway nginx render --cert … --key …) and reload nginx`,
    `runway deploy${o.hostSpec ? ` --host ${o.hostSpec}` : ''} --path ${root} --nginx-conf /etc/nginx/nginx.conf`,
  ]
  return { target: target.label, actions, next }
}
