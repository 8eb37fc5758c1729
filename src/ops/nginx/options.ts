// Every value that goes into a rendered nginx config is validated here first, so a bad value is
// one clear error naming the flag, never a broken file. Values are strict (no spaces, quotes,
// semicolons or braces) because the templates insert them verbatim.
import { isIPv4, isIPv6 } from 'node:net'
import { isAbsolute } from 'node:path'
import { InvalidSetting } from '../../lib/errors.js'
import { ConfigError, durationMs, parseCors, type CorsSettings } from '../../api/config.js'
import type { TemplateValues } from './template.js'

export type Variant = 'site' | 'standalone'

/** What a caller may set; strings are accepted wherever a flag or env value could arrive. */
export interface NginxInput {
  variant?: string
  /** Prefix of the upstream, zone, log format and map names (several sites in one nginx). */
  name?: string
  serverNames?: string[]
  /** HOST:PORT, [IPv6]:PORT or unix:/path. */
  upstreams?: string[]
  tls?: boolean
  httpPort?: number | string
  httpsPort?: number | string
  /** Address to listen on; the site variant listens on all addresses by default. */
  listen?: string
  ipv6?: boolean
  /** Addresses/CIDRs of a load balancer in front of nginx whose X-Forwarded-For nginx believes. */
  realIpFrom?: string[]
  /** Add the default servers that drop unknown Host headers (one per port in the whole nginx). */
  defaultServer?: boolean
  cert?: string
  key?: string
  /** CA chain of the certificate's issuer: turns on OCSP stapling (needs a resolver). */
  trustedChain?: string
  resolver?: string
  acmeWebroot?: string
  /** Bytes (65536) or an nginx size (64k, 1m); the app's BODY_LIMIT. */
  bodyLimit?: number | string
  /** limit_req rate on the token endpoints, e.g. 5r/s or 30r/m; `off` disables it. */
  rate?: string
  burst?: number | string
  keepalive?: number | string
  /** Requests a client may send on one keep-alive connection before nginx closes it (1000). */
  clientKeepaliveRequests?: number | string
  proxyTimeout?: number | string
  /** standalone: the directory that holds everything (conf, logs, temp, pid). */
  prefix?: string
  workers?: number | string
  accessLog?: string
  /** Version of the nginx that will load the file (decides the http2 syntax). */
  nginxVersion?: string
  /**
   * The app's CORS_ALLOWED_ORIGINS / _REGEXES / CORS_ALLOW_CREDENTIALS, so the errors nginx answers
   * itself (429, 413, 502, 504…) are readable by the same browser origins as the app's answers.
   */
  corsOrigins?: string[]
  corsOriginRegexes?: string[]
  corsCredentials?: boolean
}

export interface NginxSettings {
  variant: Variant
  name: string
  serverNames: string[]
  upstreams: string[]
  tls: boolean
  httpPort: number
  httpsPort: number
  listen: string
  ipv6: boolean
  defaultServer: boolean
  realIpFrom: string[]
  cert: string
  key: string
  trustedChain: string
  resolver: string
  acmeWebroot: string
  bodyLimit: number
  rateLimit: { rate: string; burst: number } | false
  keepalive: number
  clientKeepaliveRequests: number
  proxyTimeoutS: number
  prefix: string
  workers: string
  accessLog: string
  http2Directive: boolean
  /** Empty origins and regexes: no CORS headers on nginx's own errors (as the app: closed). */
  cors: CorsSettings
}

/** A value that cannot go into the config: `setting` is the option's name (the CLI's flag). */
export class NginxOptionError extends InvalidSetting {
  override name = 'NginxOptionError'
}

export const DEFAULT_BODY_LIMIT = 65536
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const HOSTNAME = new RegExp(`^(?:${LABEL}\\.)*${LABEL}$`, 'i')
const SERVER_NAME = new RegExp(`^(?:\\*\\.)?(?:${LABEL}\\.)*${LABEL}$`, 'i')
const SAFE_PATH = /^\/[A-Za-z0-9._@%+=:,/-]*$/
const NAME = /^[a-z][a-z0-9_]{0,30}$/

const fail = (flag: string, value: unknown, expected: string): never => {
  throw new NginxOptionError(flag, value, expected)
}

function integer(flag: string, value: number | string | undefined, def: number, min: number, max: number): number {
  if (value === undefined || value === '') return def
  const n = typeof value === 'number' ? value : /^[0-9]+$/.test(value.trim()) ? Number(value) : NaN
  if (!Number.isInteger(n) || n < min || n > max) fail(flag, value, `an integer from ${min} to ${max}`)
  return n
}

export function isServerName(text: string): boolean {
  if (isIPv4(text)) return true
  if (text.startsWith('[') && text.endsWith(']')) return isIPv6(text.slice(1, -1))
  return text.length <= 253 && SERVER_NAME.test(text)
}

/** 10.0.0.1, 10.0.0.0/8, fd00::/8 */
export function isCidr(text: string): boolean {
  const [addr, bits, ...rest] = text.split('/')
  if (rest.length || !addr) return false
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0
  if (!family) return false
  if (bits === undefined) return true
  return /^[0-9]{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
}

/** `host:port` → the nginx `server` address, or an error message. */
export function parseUpstream(text: string): string | undefined {
  if (text.startsWith('unix:')) return SAFE_PATH.test(text.slice(5)) ? text : undefined
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s]+):([0-9]{1,5})$/.exec(text)
  if (!m) return undefined
  const [, host, port] = m as unknown as [string, string, string]
  const portOk = Number(port) >= 1 && Number(port) <= 65535
  const hostOk = host.startsWith('[') ? isIPv6(host.slice(1, -1)) : isIPv4(host) || (host.length <= 253 && HOSTNAME.test(host))
  return portOk && hostOk ? `${host}:${Number(port)}` : undefined
}

function path(flag: string, value: string | undefined, whenMissing = 'an absolute path'): string {
  if (value === undefined || value === '') return fail(flag, value, whenMissing)
  if (!isAbsolute(value) || !SAFE_PATH.test(value)) fail(flag, value, 'an absolute path of letters, digits and ._-/@%+=:, (no spaces or quotes)')
  return value.length > 1 ? value.replace(/\/+$/, '') : value
}

/** 65536, "65536", "64k", "1m" → bytes. */
export function parseSize(value: number | string): number {
  if (typeof value === 'number') return value
  const m = /^([0-9]+)([kKmM]?)$/.exec(value.trim())
  if (!m) return NaN
  return Number(m[1]) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1024 : 1048576)
}

/** Bytes as nginx writes sizes: 65536 → 64k, 1048576 → 1m. */
export function nginxSize(bytes: number): string {
  if (bytes % 1048576 === 0) return `${bytes / 1048576}m`
  if (bytes % 1024 === 0) return `${bytes / 1024}k`
  return String(bytes)
}

/** "1.25.1" ≥ "1.25.1"? */
function versionAtLeast(version: string, min: [number, number, number]): boolean {
  const parts = version.split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    const a = parts[i] ?? 0
    if (a !== min[i]) return a > min[i]!
  }
  return true
}

export function validate(input: NginxInput): NginxSettings {
  const variant = (input.variant ?? 'site') as Variant
  if (variant !== 'site' && variant !== 'standalone') fail('variant', input.variant, 'site or standalone')
  const standalone = variant === 'standalone'

  const name = input.name ?? 'runway'
  if (!NAME.test(name)) fail('name', name, 'a lowercase identifier such as runway (letters, digits, _)')

  const serverNames = input.serverNames?.length ? input.serverNames : standalone ? ['localhost', '127.0.0.1'] : []
  if (!serverNames.length) fail('server-name', '', 'at least one host name, e.g. --server-name api.example.com')
  for (const s of serverNames) if (!isServerName(s)) fail('server-name', s, 'a host name (api.example.com, *.example.com) or an IP address')
  if (new Set(serverNames.map((s) => s.toLowerCase())).size !== serverNames.length) fail('server-name', serverNames.join(','), 'each name once')

  const upstreams = (input.upstreams ?? []).map((u) => parseUpstream(u) ?? fail('upstream', u, 'HOST:PORT such as 127.0.0.1:3000, [::1]:3000 or unix:/run/runway.sock'))
  if (!upstreams.length) fail('upstream', '', 'at least one app server, e.g. --upstream 127.0.0.1:3000')
  if (new Set(upstreams).size !== upstreams.length) fail('upstream', upstreams.join(','), 'each app server once')

  const tls = input.tls ?? true
  const httpPort = integer('http-port', input.httpPort, standalone ? 8080 : 80, 1, 65535)
  const httpsPort = integer('https-port', input.httpsPort, standalone ? 8443 : 443, 1, 65535)
  if (tls && httpPort === httpsPort) fail('https-port', httpsPort, `a port other than --http-port ${httpPort}`)

  let listen = input.listen ?? (standalone ? '127.0.0.1' : '')
  if (listen && !(isIPv4(listen) || (listen.startsWith('[') && isIPv6(listen.slice(1, -1))) || listen === '*'))
    fail('listen', listen, 'an IPv4 address, [IPv6] address or *')
  if (listen === '*') listen = ''
  const ipv6 = input.ipv6 ?? (!standalone && listen === '')

  const realIpFrom = input.realIpFrom ?? []
  for (const r of realIpFrom) if (!isCidr(r)) fail('real-ip-from', r, 'an IP address or CIDR such as 10.0.0.0/8 (the load balancer in front of nginx)')

  let cert = ''
  let key = ''
  let trustedChain = ''
  let resolver = ''
  if (tls) {
    cert = path('cert', input.cert, 'the certificate chain file, e.g. /etc/letsencrypt/live/NAME/fullchain.pem (or --no-tls)')
    key = path('key', input.key, 'the private key file, e.g. /etc/letsencrypt/live/NAME/privkey.pem (or --no-tls)')
    if (input.trustedChain) {
      trustedChain = path('trusted-chain', input.trustedChain)
      const resolvers = (input.resolver ?? '').split(/[\s,]+/).filter(Boolean)
      if (!resolvers.length) fail('resolver', '', 'the DNS resolver nginx asks for the OCSP responder (e.g. 127.0.0.53) when --trusted-chain is set')
      for (const r of resolvers) if (!isIPv4(r) && !(r.startsWith('[') && isIPv6(r.slice(1, -1)))) fail('resolver', r, 'IP addresses (IPv6 in brackets)')
      resolver = resolvers.join(' ')
    }
  } else if (input.cert || input.key || input.trustedChain) {
    fail('cert', input.cert ?? input.key ?? input.trustedChain, 'no certificate options without TLS (drop --no-tls or the certificate)')
  }

  let prefix = ''
  if (standalone) prefix = path('prefix', input.prefix)
  else if (input.prefix) fail('prefix', input.prefix, 'no --prefix for the site variant (it is for --variant standalone)')

  const acmeWebroot = path('acme-webroot', input.acmeWebroot ?? (standalone ? `${prefix}/acme` : '/var/www/letsencrypt'))
  const accessLog = path('access-log', input.accessLog ?? (standalone ? `${prefix}/logs/access.log` : `/var/log/nginx/${name}.access.log`))

  const bodyLimit = parseSize(input.bodyLimit ?? DEFAULT_BODY_LIMIT)
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024 || bodyLimit > 10485760)
    fail('body-limit', input.bodyLimit, 'bytes from 1024 to 10485760 (the app\'s BODY_LIMIT range), e.g. 65536 or 64k')

  let rateLimit: NginxSettings['rateLimit'] = false
  const rate = input.rate ?? '5r/s'
  if (rate !== 'off') {
    const m = /^([0-9]{1,6})r\/(s|m)$/.exec(rate)
    if (!m || Number(m[1]) < 1) fail('rate', rate, 'requests per second or minute such as 5r/s or 30r/m, or off')
    rateLimit = { rate, burst: integer('burst', input.burst, 10, 0, 100000) }
  }

  const keepalive = integer('keepalive', input.keepalive, 128, 1, 4096)
  const clientKeepaliveRequests = integer('client-keepalive-requests', input.clientKeepaliveRequests, 1000, 1, 10_000_000)
  let proxyTimeoutS = 30
  if (input.proxyTimeout !== undefined && input.proxyTimeout !== '') {
    const text = String(input.proxyTimeout)
    let ms = NaN
    try {
      ms = durationMs(text)
    } catch {}
    if (!(ms >= 1000 && ms <= 3_600_000 && ms % 1000 === 0)) fail('proxy-timeout', text, 'whole seconds from 1s to 1h, e.g. 30s')
    proxyTimeoutS = ms / 1000
  }

  const workers = String(input.workers ?? 'auto')
  if (workers !== 'auto') integer('workers', workers, 1, 1, 256)

  // The app's own rules (parseCors), each value checked on its own so the error names it.
  const corsOrigins = input.corsOrigins ?? []
  const corsRegexes = input.corsOriginRegexes ?? []
  const corsCheck = (flag: string, value: string, origins: string, regexes: string, expected: string) => {
    try {
      parseCors(origins, regexes, false, 0)
    } catch (err) {
      if (err instanceof ConfigError) fail(flag, value, expected)
      throw err
    }
  }
  for (const o of corsOrigins) corsCheck('cors-origin', o, o, '', 'an origin as browsers send it, such as https://app.example.com (no path or trailing slash), null or *')
  if (corsOrigins.includes('*') && corsOrigins.length > 1) fail('cors-origin', corsOrigins.join(','), '* alone (any origin) or a list of origins')
  if (corsOrigins.includes('*') && input.corsCredentials) fail('cors-credentials', 'true', 'no credentials with --cors-origin * (any web site could act as the user)')
  // Regexes go into the config inside double quotes: no quote, space or control character, and no
  // trailing backslash (it would escape the closing quote).
  for (const r of corsRegexes) {
    corsCheck('cors-origin-regex', r, '', r, 'a regular expression')
    if (!/^[\x21-\x7e]+$/.test(r) || r.includes('"') || /(^|[^\\])(\\\\)*\\$/.test(r)) fail('cors-origin-regex', r, 'a regular expression without quotes, spaces or a trailing backslash')
  }
  let cors: CorsSettings
  try {
    cors = parseCors(corsOrigins.join(','), corsRegexes.join(' '), input.corsCredentials ?? false, 0)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    // What is left: a regex that takes any origin, with credentials.
    return fail('cors-credentials', 'true', 'no credentials with a --cors-origin-regex that matches any origin')
  }

  const version = input.nginxVersion ?? '1.22.0'
  if (!/^[0-9]+\.[0-9]+(\.[0-9]+)?$/.test(version)) fail('nginx-version', version, 'a version such as 1.22.1')

  return {
    variant,
    name,
    serverNames,
    upstreams,
    tls,
    httpPort,
    httpsPort,
    listen,
    ipv6,
    defaultServer: input.defaultServer ?? true,
    realIpFrom,
    cert,
    key,
    trustedChain,
    resolver,
    acmeWebroot,
    bodyLimit,
    rateLimit,
    keepalive,
    clientKeepaliveRequests,
    proxyTimeoutS,
    prefix,
    workers,
    accessLog,
    // `listen … http2` is deprecated from 1.25.1 on, where `http2 on;` replaces it.
    http2Directive: versionAtLeast(version, [1, 25, 1]),
    cors,
  }
}

/** Seconds until nginx lets a throttled client through again: 1 for N r/s, ceil(60/N) for N r/m. */
function retryAfter(s: NginxSettings): number {
  if (!s.rateLimit) return 1
  const [n, unit] = s.rateLimit.rate.split(/r\//) as [string, string]
  return unit === 'm' ? Math.max(1, Math.ceil(60 / Number(n))) : 1
}

/** The names the templates use. */
export function templateValues(s: NginxSettings): TemplateValues {
  const retrySeconds = retryAfter(s)
  const addr = (port: number) => (s.listen ? `${s.listen}:${port}` : String(port))
  return {
    name: s.name,
    server_names: s.serverNames.join(' '),
    upstream_list: s.upstreams.join(', '),
    upstream_servers: s.upstreams.map((u) => `server ${u} max_fails=1 fail_timeout=10s;`).join('\n'),
    keepalive: s.keepalive,
    client_keepalive_requests: s.clientKeepaliveRequests,
    tls: s.tls,
    ipv6: s.ipv6,
    default_server: s.defaultServer,
    real_ip: s.realIpFrom.length > 0,
    real_ip_from: s.realIpFrom.map((r) => `set_real_ip_from ${r};`).join('\n'),
    tls_default_server: s.defaultServer && s.tls,
    http_port: s.httpPort,
    https_port: s.httpsPort,
    http_listen: addr(s.httpPort),
    https_listen: addr(s.httpsPort),
    http_listen6: `[::]:${s.httpPort}`,
    https_listen6: `[::]:${s.httpsPort}`,
    https_listen_params: s.http2Directive ? 'ssl' : 'ssl http2',
    http2_directive: s.tls && s.http2Directive,
    https_port_suffix: s.httpsPort === 443 ? '' : `:${s.httpsPort}`,
    cert: s.cert,
    key: s.key,
    stapling: s.trustedChain !== '',
    trusted_chain: s.trustedChain,
    resolver: s.resolver,
    acme_webroot: s.acmeWebroot,
    access_log: s.accessLog,
    body_size: nginxSize(s.bodyLimit),
    body_limit_bytes: s.bodyLimit,
    rate_limit: s.rateLimit !== false,
    rate: s.rateLimit ? s.rateLimit.rate : '',
    // When the next request is allowed again: one request's share of the rate.
    retry_after: retrySeconds,
    retry_after_text: `${retrySeconds} second${retrySeconds === 1 ? '' : 's'}`,
    burst: s.rateLimit ? s.rateLimit.burst : 0,
    proxy_timeout: `${s.proxyTimeoutS}s`,
    prefix: s.prefix,
    conf_file: `${s.prefix}/conf/nginx.conf`,
    workers: s.workers,
    cors: s.cors.origins.length > 0 || s.cors.originRegexes.length > 0,
    cors_credentials: s.cors.credentials,
    cors_map: corsMap(s.cors),
  }
}

/**
 * The map from the request's Origin to the Access-Control-Allow-Origin nginx sends on its own
 * errors: the same decision as the app's (src/api/plugins/cors.ts allowOrigin): exact origins, `null`
 * only when listed, `*` for any other origin, regexes matching the whole origin.
 */
function corsMap(c: CorsSettings): string {
  const lines = [`default ${c.origins.includes('*') ? '"*"' : '""'};`]
  if (!c.origins.includes('null')) lines.push('"null" "";')
  for (const o of c.origins) if (o !== '*') lines.push(`"${o}" "${o}";`)
  // RegExp.source writes / as \/; both mean / to PCRE, the plain one reads better.
  for (const re of c.originRegexes) lines.push(`"~${re.source.replaceAll('\\/', '/')}" $http_origin;`)
  return lines.join('\n')
}
