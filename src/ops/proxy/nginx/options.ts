// nginx's own settings on top of what any proxy needs (../site.ts): the variant (a site for an
// existing nginx, or a standalone nginx under its own prefix), listen addresses and ports, OCSP
// stapling, logs, workers, the version that decides the http2 syntax, and the names the templates
// in nginx/ use. Every value is validated before it reaches a template.
import { isIPv4, isIPv6 } from 'node:net'
import type { CorsSettings } from '../../../api/config.js'
import { fail, integer, NO_CERT_WITHOUT_TLS, parseSize, path, validateSite, type SiteInput, type SiteSettings } from '../site.js'
import type { TemplateValues } from '../template.js'

export type Variant = 'site' | 'standalone'

/** What a caller may set; strings are accepted wherever a flag or env value could arrive. */
export interface NginxInput extends SiteInput {
  variant?: string
  /** Prefix of the upstream, zone, log format and map names (several sites in one nginx). */
  name?: string
  httpPort?: number | string
  httpsPort?: number | string
  /** Address to listen on; the site variant listens on all addresses by default. */
  listen?: string
  ipv6?: boolean
  /** Add the default servers that drop unknown Host headers (one per port in the whole nginx). */
  defaultServer?: boolean
  /** CA chain of the certificate's issuer: turns on OCSP stapling (needs a resolver). */
  trustedChain?: string
  resolver?: string
  acmeWebroot?: string
  /** Requests a client may send on one keep-alive connection before nginx closes it (1000). */
  clientKeepaliveRequests?: number | string
  /** standalone: the directory that holds everything (conf, logs, temp, pid). */
  prefix?: string
  workers?: number | string
  accessLog?: string
  /**
   * Memory buffer of the access log (64k) flushed at least every second, or `off` for a write per
   * request. One write(2) per request cost nginx ~15% of its throughput on a 2-core machine.
   */
  accessLogBuffer?: string
  /** Version of the nginx that will load the file (decides the http2 syntax). */
  nginxVersion?: string
}

export interface NginxSettings extends SiteSettings {
  variant: Variant
  name: string
  httpPort: number
  httpsPort: number
  listen: string
  ipv6: boolean
  defaultServer: boolean
  trustedChain: string
  resolver: string
  acmeWebroot: string
  clientKeepaliveRequests: number
  prefix: string
  workers: string
  accessLog: string
  /** nginx size of the access log's buffer (flush=1s), or '' for unbuffered. */
  accessLogBuffer: string
  http2Directive: boolean
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

const NAME = /^[a-z][a-z0-9_]{0,30}$/

export function validate(input: NginxInput): NginxSettings {
  const variant = (input.variant ?? 'site') as Variant
  if (variant !== 'site' && variant !== 'standalone') fail('variant', input.variant, 'site or standalone')
  const standalone = variant === 'standalone'

  const name = input.name ?? 'runway'
  if (!NAME.test(name)) fail('name', name, 'a lowercase identifier such as runway (letters, digits, _)')

  const site = validateSite(input, { defaultServerNames: standalone ? ['localhost', '127.0.0.1'] : [] })
  const { tls } = site
  const httpPort = integer('http-port', input.httpPort, standalone ? 8080 : 80, 1, 65535)
  const httpsPort = integer('https-port', input.httpsPort, standalone ? 8443 : 443, 1, 65535)
  if (tls && httpPort === httpsPort) fail('https-port', httpsPort, `a port other than --http-port ${httpPort}`)

  let listen = input.listen ?? (standalone ? '127.0.0.1' : '')
  if (listen && !(isIPv4(listen) || (listen.startsWith('[') && isIPv6(listen.slice(1, -1))) || listen === '*'))
    fail('listen', listen, 'an IPv4 address, [IPv6] address or *')
  if (listen === '*') listen = ''
  const ipv6 = input.ipv6 ?? (!standalone && listen === '')

  let trustedChain = ''
  let resolver = ''
  if (tls && input.trustedChain) {
    trustedChain = path('trusted-chain', input.trustedChain)
    const resolvers = (input.resolver ?? '').split(/[\s,]+/).filter(Boolean)
    if (!resolvers.length) fail('resolver', '', 'the DNS resolver nginx asks for the OCSP responder (e.g. 127.0.0.53) when --trusted-chain is set')
    for (const r of resolvers) if (!isIPv4(r) && !(r.startsWith('[') && isIPv6(r.slice(1, -1)))) fail('resolver', r, 'IP addresses (IPv6 in brackets)')
    resolver = resolvers.join(' ')
  } else if (input.trustedChain) {
    fail('cert', input.trustedChain, NO_CERT_WITHOUT_TLS)
  }

  let prefix = ''
  if (standalone) prefix = path('prefix', input.prefix)
  else if (input.prefix) fail('prefix', input.prefix, 'no --prefix for the site variant (it is for --variant standalone)')

  const acmeWebroot = path('acme-webroot', input.acmeWebroot ?? (standalone ? `${prefix}/acme` : '/var/www/letsencrypt'))
  const accessLog = path('access-log', input.accessLog ?? (standalone ? `${prefix}/logs/access.log` : `/var/log/nginx/${name}.access.log`))
  const bufferText = String(input.accessLogBuffer ?? '64k')
  let accessLogBuffer = ''
  if (bufferText !== 'off') {
    const bytes = /^[0-9]{1,7}[kKmM]?$/.test(bufferText) ? parseSize(bufferText) : NaN
    if (!(bytes >= 4096 && bytes <= 16 * 1048576)) fail('access-log-buffer', bufferText, 'an nginx size from 4k to 16m, e.g. 64k, or off')
    accessLogBuffer = nginxSize(bytes)
  }

  const clientKeepaliveRequests = integer('client-keepalive-requests', input.clientKeepaliveRequests, 1000, 1, 10_000_000)
  const workers = String(input.workers ?? 'auto')
  if (workers !== 'auto') integer('workers', workers, 1, 1, 256)

  const version = input.nginxVersion ?? '1.22.0'
  if (!/^[0-9]+\.[0-9]+(\.[0-9]+)?$/.test(version)) fail('nginx-version', version, 'a version such as 1.22.1')

  return {
    ...site,
    variant,
    name,
    httpPort,
    httpsPort,
    listen,
    ipv6,
    defaultServer: input.defaultServer ?? true,
    trustedChain,
    resolver,
    acmeWebroot,
    clientKeepaliveRequests,
    prefix,
    workers,
    accessLog,
    accessLogBuffer,
    // `listen … http2` is deprecated from 1.25.1 on, where `http2 on;` replaces it.
    http2Directive: versionAtLeast(version, [1, 25, 1]),
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
    // Lines reach the file within a second, and on reload or stop; a crash of nginx loses at most the buffer.
    access_log_params: s.accessLogBuffer ? ` buffer=${s.accessLogBuffer} flush=1s` : '',
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
