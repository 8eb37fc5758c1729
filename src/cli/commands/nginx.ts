// `runway nginx render` writes the nginx config from validated values; `runway nginx serve` runs
// the standalone variant in the foreground in front of app servers that are already running.
import { X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { ConfigError, loadConfig, readEnv } from '../../api/config.js'
import { findNginx, nginxVersion, NginxTestError, testRendered } from '../../ops/proxy/nginx/binary.js'
import type { NginxInput } from '../../ops/proxy/nginx/options.js'
import { InvalidSetting } from '../../lib/errors.js'
import { renderNginx } from '../../ops/proxy/nginx/render.js'
import { startNginx } from '../../bench/stacks/nginx.js'
import { CliError, flagError, note, parseFlags, print, type Command } from '../command.js'

const usage = `Usage: runway nginx render [options] [--out FILE] [--check]
       runway nginx serve --upstream HOST:PORT [--upstream …] [--tls] [--prefix DIR]

render: writes an nginx config for the API to stdout or FILE. Every value is validated first; a
bad one is a one-line error and nothing is written. --check also runs \`nginx -t\` on the result.
  --variant site|standalone  site (default): for /etc/nginx/sites-available/, inside nginx's http
                          block; standalone: a whole nginx.conf under --prefix (no root needed)
  --server-name NAME      host name(s) served, repeatable (standalone: localhost 127.0.0.1)
  --upstream HOST:PORT    app server(s), repeatable: HOST:PORT or unix:PATH (default: the app
                          config's unix:$UNIX_SOCKET when set, else 127.0.0.1:$PORT)
  --no-tls                plain HTTP only (TLS terminated elsewhere, or before certbot's first run)
  --cert FILE --key FILE  certificate chain and key (e.g. /etc/letsencrypt/live/NAME/fullchain.pem
                          and privkey.pem)
  --trusted-chain FILE    issuer chain: turns on OCSP stapling (needs --resolver IP)
  --acme-webroot DIR      certbot's webroot for /.well-known/acme-challenge/ (/var/www/letsencrypt)
  --http-port N --https-port N   (80/443; standalone 8080/8443)
  --listen ADDR           bind address (default all; standalone 127.0.0.1); --ipv4-only: no [::]
  --real-ip-from CIDR     a load balancer in front of nginx whose X-Forwarded-For is believed
  --body-limit BYTES      client_max_body_size, = the app's BODY_LIMIT (default from the app config)
  --rate R --burst N      limit_req on /api/token* and /api/register per client address (5r/s,
                          10); --rate off
  --keepalive N           idle upstream connections kept per worker (128)
  --client-keepalive-requests N   requests per client keep-alive connection (1000)
  --proxy-timeout T       upstream read/send timeout (30s)
  --access-log FILE       JSON access log (/var/log/nginx/NAME.access.log; standalone PREFIX/logs)
  --access-log-buffer SIZE  its memory buffer, flushed at least every second (64k); off writes
                          each line at once (a write per request: ~15% of nginx's throughput)
  --prefix DIR --workers N|auto   standalone only
  --name ID               prefix of upstream/zone/log names (runway)
  --no-default-server     leave out the servers that drop unknown Host headers (when another
                          site in the same nginx already has them)
  --nginx-version V       target nginx version (default: the installed one, else 1.22)
  --cors-from-app         the app's CORS_ALLOWED_ORIGINS, CORS_ALLOWED_ORIGIN_REGEXES and
                          CORS_ALLOW_CREDENTIALS (from its environment/.env), so nginx's own errors
                          (429, 413, 502, 504) are readable by the same browser origins
  --cors-origin ORIGIN    or name them: an origin (repeatable); --cors-origin-regex RE (repeatable,
                          whole-origin match, PCRE/JS common syntax); --cors-credentials
Preflights (OPTIONS) always pass through to the app, never counted by --rate.
Each option may also come from the environment as NGINX_<OPTION> (e.g. NGINX_SERVER_NAME,
NGINX_UPSTREAM=host1:3000,host2:3000); flags win.

serve: starts the standalone nginx on free 127.0.0.1 ports in front of running app servers and
stays in the foreground until Ctrl-C. --tls makes a local CA and certificate (PREFIX/tls/ca.crt).`

const options = {
  variant: { type: 'string' },
  'server-name': { type: 'string', multiple: true },
  upstream: { type: 'string', multiple: true },
  'no-tls': { type: 'boolean' },
  tls: { type: 'boolean' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'trusted-chain': { type: 'string' },
  resolver: { type: 'string' },
  'acme-webroot': { type: 'string' },
  'http-port': { type: 'string' },
  'https-port': { type: 'string' },
  listen: { type: 'string' },
  'ipv4-only': { type: 'boolean' },
  'no-default-server': { type: 'boolean' },
  'real-ip-from': { type: 'string', multiple: true },
  'body-limit': { type: 'string' },
  rate: { type: 'string' },
  burst: { type: 'string' },
  keepalive: { type: 'string' },
  'client-keepalive-requests': { type: 'string' },
  'proxy-timeout': { type: 'string' },
  'access-log': { type: 'string' },
  'access-log-buffer': { type: 'string' },
  prefix: { type: 'string' },
  workers: { type: 'string' },
  name: { type: 'string' },
  'nginx-version': { type: 'string' },
  'cors-from-app': { type: 'boolean' },
  'cors-origin': { type: 'string', multiple: true },
  'cors-origin-regex': { type: 'string', multiple: true },
  'cors-credentials': { type: 'boolean' },
  out: { type: 'string' },
  check: { type: 'boolean' },
} as const

type Values = ReturnType<typeof parseFlags<typeof options>>['values']

/** A flag, else NGINX_<FLAG> from the environment (lists comma-separated). */
function pick(values: Values, flag: keyof typeof options): string | undefined {
  const v = values[flag]
  if (Array.isArray(v)) return v.join(',')
  if (typeof v === 'string') return v
  if (v === true) return 'true'
  const env = process.env[`NGINX_${flag.toUpperCase().replace(/-/g, '_')}`]
  return env === '' ? undefined : env
}
const list = (text: string | undefined) =>
  text
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)

/** The app's own settings that the proxy must match: its port and BODY_LIMIT. */
function appDefaults(): { upstream: string; bodyLimit: number } {
  try {
    const raw = readEnv()
    const c = loadConfig({ PORT: raw.PORT, UNIX_SOCKET: raw.UNIX_SOCKET, BODY_LIMIT: raw.BODY_LIMIT })
    return { upstream: c.unixSocket ? `unix:${c.unixSocket}` : `127.0.0.1:${c.port}`, bodyLimit: c.bodyLimit }
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`configuration error: ${err.message}`, 78)
    throw err
  }
}

/** The app's CORS settings, validated by the app's own rules, as nginx options. */
function appCors(): Pick<NginxInput, 'corsOrigins' | 'corsOriginRegexes' | 'corsCredentials'> {
  try {
    const raw = readEnv()
    const c = loadConfig({
      CORS_ALLOWED_ORIGINS: raw.CORS_ALLOWED_ORIGINS,
      CORS_ALLOWED_ORIGIN_REGEXES: raw.CORS_ALLOWED_ORIGIN_REGEXES,
      CORS_ALLOW_CREDENTIALS: raw.CORS_ALLOW_CREDENTIALS,
    }).cors
    if (!c.origins.length && !c.originRegexes.length)
      note('--cors-from-app: the app allows no browser origin (CORS_ALLOWED_ORIGINS is empty); nginx adds no CORS headers')
    return { corsOrigins: c.origins, corsOriginRegexes: (raw.CORS_ALLOWED_ORIGIN_REGEXES ?? '').split(/\s+/).filter(Boolean), corsCredentials: c.credentials }
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`configuration error: ${err.message}`, 78)
    throw err
  }
}

function input(values: Values, nginxVersionText: string | undefined): NginxInput {
  const app = appDefaults()
  const flagTrue = (f: keyof typeof options) => /^(1|true|yes)$/i.test(pick(values, f) ?? '')
  const named = list(pick(values, 'cors-origin'))
  const regexes = values['cors-origin-regex'] ?? process.env.NGINX_CORS_ORIGIN_REGEX?.split(/\s+/).filter(Boolean)
  if (flagTrue('cors-from-app') && (named || regexes))
    throw new CliError('--cors-from-app takes the origins from the app: drop --cors-origin/--cors-origin-regex, or --cors-from-app', 2)
  const cors = flagTrue('cors-from-app') ? appCors() : { corsOrigins: named, corsOriginRegexes: regexes, corsCredentials: flagTrue('cors-credentials') }
  return {
    ...cors,
    variant: pick(values, 'variant'),
    name: pick(values, 'name'),
    serverNames: list(pick(values, 'server-name')),
    upstreams: list(pick(values, 'upstream')) ?? [app.upstream],
    tls: !flagTrue('no-tls'),
    cert: pick(values, 'cert'),
    key: pick(values, 'key'),
    trustedChain: pick(values, 'trusted-chain'),
    resolver: pick(values, 'resolver'),
    acmeWebroot: pick(values, 'acme-webroot'),
    httpPort: pick(values, 'http-port'),
    httpsPort: pick(values, 'https-port'),
    listen: pick(values, 'listen'),
    ipv6: flagTrue('ipv4-only') ? false : undefined,
    defaultServer: !flagTrue('no-default-server'),
    realIpFrom: list(pick(values, 'real-ip-from')),
    bodyLimit: pick(values, 'body-limit') ?? app.bodyLimit,
    rate: pick(values, 'rate'),
    burst: pick(values, 'burst'),
    keepalive: pick(values, 'keepalive'),
    clientKeepaliveRequests: pick(values, 'client-keepalive-requests'),
    proxyTimeout: pick(values, 'proxy-timeout'),
    accessLog: pick(values, 'access-log'),
    accessLogBuffer: pick(values, 'access-log-buffer'),
    prefix: pick(values, 'prefix'),
    workers: pick(values, 'workers'),
    nginxVersion: pick(values, 'nginx-version') ?? nginxVersionText,
  }
}

/** Server names a certificate's subjectAltNames do not cover (an unreadable file: none reported). */
export function namesNotCovered(certFile: string, names: string[]): string[] {
  let sans: string[]
  try {
    sans = (new X509Certificate(readFileSync(certFile)).subjectAltName ?? '').split(',').map((x) => x.trim().replace(/^(DNS|IP Address):/, ''))
  } catch {
    return []
  }
  return names.filter(
    (n) => n !== '_' && !sans.some((s) => s === n || (s.startsWith('*.') && n.endsWith(s.slice(1)) && n.split('.').length === s.split('.').length)),
  )
}

/** Writes next to the target and renames, so FILE is never half-written. */
function writeAtomically(file: string, text: string) {
  const dir = dirname(file)
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`--out ${file}: directory ${dir} does not exist; create it first`)
  const tmp = join(dir, `.${Date.now()}-${process.pid}.runway-tmp`)
  try {
    writeFileSync(tmp, text)
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw new CliError(`cannot write ${file}: ${(err as Error).message}`)
  }
}

async function render(values: Values): Promise<number> {
  const bin = findNginx()
  if (values.check && !bin) throw new CliError('--check needs nginx: apt-get install -y nginx (or drop --check)')
  const version = bin ? await nginxVersion(bin).catch(() => undefined) : undefined
  let rendered: ReturnType<typeof renderNginx>
  try {
    rendered = renderNginx(input(values, version))
  } catch (err) {
    throw flagError(err)
  }
  const { settings } = rendered
  // The standalone nginx needs PREFIX/logs and PREFIX/temp before it starts: make them now.
  if (settings.variant === 'standalone' && settings.prefix) {
    for (const d of ['logs', 'temp', 'conf']) mkdirSync(join(settings.prefix, d), { recursive: true })
    note(`created ${settings.prefix}/{conf,logs,temp} for the standalone nginx`)
  }
  const uncovered = settings.tls && settings.cert ? namesNotCovered(settings.cert, settings.serverNames) : []
  if (uncovered.length)
    note(
      `warning: ${settings.cert} does not cover ${uncovered.join(', ')}: clients will refuse TLS for those names (add them to the certificate, e.g. runway tls self-signed --name …)`,
    )
  if (values.check) {
    try {
      await testRendered(bin!, rendered.text, rendered.settings.variant, rendered.settings.prefix || undefined)
    } catch (err) {
      if (err instanceof NginxTestError) throw new CliError(`nginx -t rejected the config: ${err.message} (nothing written)`)
      throw err
    }
    note('nginx -t: the configuration is valid')
  }
  if (values.out) {
    const out = resolve(values.out)
    writeAtomically(out, rendered.text)
    note(`wrote ${out}`)
  } else {
    process.stdout.write(rendered.text)
  }
  return 0
}

async function serve(values: Values): Promise<number> {
  const upstreams = list(pick(values, 'upstream'))
  if (!upstreams?.length) throw new CliError('--upstream HOST:PORT is required: the app server(s) to proxy to', 2)
  // A private prefix per run unless one is given: two `serve` runs never share a pid file.
  const prefix = resolve(pick(values, 'prefix') ?? mkdtempSync(join(tmpdir(), 'runway-nginx-serve-')))
  const rate = pick(values, 'rate')
  let stack: Awaited<ReturnType<typeof startNginx>>
  try {
    stack = await startNginx({
      upstreams,
      tls: values.tls ?? false,
      prefix,
      rateLimit: rate === 'off' ? false : rate ? { rate, burst: Number(pick(values, 'burst') ?? 10) } : undefined,
      bodyLimit: pick(values, 'body-limit') ?? appDefaults().bodyLimit,
      workers: pick(values, 'workers') === 'auto' ? 'auto' : Number(pick(values, 'workers') ?? 1),
    })
  } catch (err) {
    if (err instanceof InvalidSetting) throw flagError(err)
    if (err instanceof NginxTestError) throw new CliError(`nginx -t rejected the config: ${err.message}`)
    throw new CliError((err as Error).message)
  }
  print(`nginx ${stack.url} (http ${stack.httpUrl}${stack.httpsUrl ? `, https ${stack.httpsUrl}, CA ${stack.caFile}` : ''})`)
  note(`logs: ${stack.accessLog}, ${stack.errorLog}; Ctrl-C stops nginx`)
  const code = await stack.exited
  throw new CliError(`nginx exited (code ${code}); see ${stack.errorLog}`)
}

export const nginxCommand: Command = {
  name: 'nginx',
  summary: 'render the nginx reverse-proxy config (or serve it standalone)',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, options, true)
    if (values.help) return (print(usage), 0)
    const action = positionals[0]
    if (positionals.length > 1) throw new CliError(`unexpected argument ${JSON.stringify(positionals[1])} (see --help)`, 2)
    if (action === 'render') return render(values)
    if (action === 'serve') return serve(values)
    throw new CliError('unknown action: use `runway nginx render` or `runway nginx serve` (see --help)', 2)
  },
}
