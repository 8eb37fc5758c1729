// What any reverse proxy in front of the app needs, validated once: the names it answers for, the
// app servers, TLS files, the body limit and token-endpoint rate limit that match the app's, upstream
// keep-alive and timeout, the CORS origins for the proxy's own errors. Values are strict (no spaces,
// quotes, semicolons or braces) because templates insert them verbatim. A proxy adds its own
// settings on top (see nginx/options.ts); a bad value is an InvalidSetting naming the option.
import { isIPv4, isIPv6 } from 'node:net'
import { isAbsolute } from 'node:path'
import { ConfigError, durationMs, parseCors, type CorsSettings } from '../../api/config.js'
import { InvalidSetting } from '../../lib/errors.js'

/** What a caller may set; strings are accepted wherever a flag or env value could arrive. */
export interface SiteInput {
  serverNames?: string[]
  /** HOST:PORT, [IPv6]:PORT or unix:/path. */
  upstreams?: string[]
  tls?: boolean
  cert?: string
  key?: string
  /** Addresses/CIDRs of a load balancer in front of the proxy whose X-Forwarded-For it believes. */
  realIpFrom?: string[]
  /** Bytes (65536) or a size (64k, 1m); the app's BODY_LIMIT. */
  bodyLimit?: number | string
  /** Rate on the token endpoints, e.g. 5r/s or 30r/m; `off` disables it. */
  rate?: string
  burst?: number | string
  /** Idle keep-alive connections kept open to the app servers. */
  keepalive?: number | string
  proxyTimeout?: number | string
  /**
   * The app's CORS_ALLOWED_ORIGINS / _REGEXES / CORS_ALLOW_CREDENTIALS, so the errors the proxy
   * answers itself (429, 413, 502, 504…) are readable by the same browser origins as the app's.
   */
  corsOrigins?: string[]
  corsOriginRegexes?: string[]
  corsCredentials?: boolean
}

export interface SiteSettings {
  serverNames: string[]
  upstreams: string[]
  tls: boolean
  cert: string
  key: string
  realIpFrom: string[]
  bodyLimit: number
  rateLimit: { rate: string; burst: number } | false
  keepalive: number
  proxyTimeoutS: number
  /** Empty origins and regexes: no CORS headers on the proxy's own errors (as the app: closed). */
  cors: CorsSettings
}

export const NO_CERT_WITHOUT_TLS = 'no certificate options without TLS (drop --no-tls or the certificate)'

export const DEFAULT_BODY_LIMIT = 65536
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const HOSTNAME = new RegExp(`^(?:${LABEL}\\.)*${LABEL}$`, 'i')
const SERVER_NAME = new RegExp(`^(?:\\*\\.)?(?:${LABEL}\\.)*${LABEL}$`, 'i')
const SAFE_PATH = /^\/[A-Za-z0-9._@%+=:,/-]*$/

/** Refuses a value: `setting` is the option's name (the CLI's flag without its dashes). */
export const fail = (setting: string, value: unknown, expected: string): never => {
  throw new InvalidSetting(setting, value, expected)
}

export function integer(flag: string, value: number | string | undefined, def: number, min: number, max: number): number {
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

export function path(flag: string, value: string | undefined, whenMissing = 'an absolute path'): string {
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

export function validateSite(input: SiteInput, o: { defaultServerNames?: string[] } = {}): SiteSettings {
  const serverNames = input.serverNames?.length ? input.serverNames : (o.defaultServerNames ?? [])
  if (!serverNames.length) fail('server-name', '', 'at least one host name, e.g. --server-name api.example.com')
  for (const s of serverNames) if (!isServerName(s)) fail('server-name', s, 'a host name (api.example.com, *.example.com) or an IP address')
  if (new Set(serverNames.map((s) => s.toLowerCase())).size !== serverNames.length) fail('server-name', serverNames.join(','), 'each name once')

  const upstreams = (input.upstreams ?? []).map(
    (u) => parseUpstream(u) ?? fail('upstream', u, 'HOST:PORT such as 127.0.0.1:3000, [::1]:3000 or unix:/run/runway.sock'),
  )
  if (!upstreams.length) fail('upstream', '', 'at least one app server, e.g. --upstream 127.0.0.1:3000')
  if (new Set(upstreams).size !== upstreams.length) fail('upstream', upstreams.join(','), 'each app server once')

  const tls = input.tls ?? true
  let cert = ''
  let key = ''
  if (tls) {
    cert = path('cert', input.cert, 'the certificate chain file, e.g. /etc/letsencrypt/live/NAME/fullchain.pem (or --no-tls)')
    key = path('key', input.key, 'the private key file, e.g. /etc/letsencrypt/live/NAME/privkey.pem (or --no-tls)')
  } else if (input.cert || input.key) {
    fail('cert', input.cert ?? input.key, NO_CERT_WITHOUT_TLS)
  }

  const realIpFrom = input.realIpFrom ?? []
  for (const r of realIpFrom) if (!isCidr(r)) fail('real-ip-from', r, 'an IP address or CIDR such as 10.0.0.0/8 (the load balancer in front of nginx)')

  const bodyLimit = parseSize(input.bodyLimit ?? DEFAULT_BODY_LIMIT)
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024 || bodyLimit > 10485760)
    fail('body-limit', input.bodyLimit, "bytes from 1024 to 10485760 (the app's BODY_LIMIT range), e.g. 65536 or 64k")

  let rateLimit: SiteSettings['rateLimit'] = false
  const rate = input.rate ?? '5r/s'
  if (rate !== 'off') {
    const m = /^([0-9]{1,6})r\/(s|m)$/.exec(rate)
    if (!m || Number(m[1]) < 1) fail('rate', rate, 'requests per second or minute such as 5r/s or 30r/m, or off')
    rateLimit = { rate, burst: integer('burst', input.burst, 10, 0, 100000) }
  }

  const keepalive = integer('keepalive', input.keepalive, 128, 1, 4096)
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
  for (const o of corsOrigins)
    corsCheck('cors-origin', o, o, '', 'an origin as browsers send it, such as https://app.example.com (no path or trailing slash), null or *')
  if (corsOrigins.includes('*') && corsOrigins.length > 1) fail('cors-origin', corsOrigins.join(','), '* alone (any origin) or a list of origins')
  if (corsOrigins.includes('*') && input.corsCredentials)
    fail('cors-credentials', 'true', 'no credentials with --cors-origin * (any web site could act as the user)')
  // Regexes go into the config inside double quotes: no quote, space or control character, and no
  // trailing backslash (it would escape the closing quote).
  for (const r of corsRegexes) {
    corsCheck('cors-origin-regex', r, '', r, 'a regular expression')
    if (!/^[\x21-\x7e]+$/.test(r) || r.includes('"') || /(^|[^\\])(\\\\)*\\$/.test(r))
      fail('cors-origin-regex', r, 'a regular expression without quotes, spaces or a trailing backslash')
  }
  let cors: CorsSettings
  try {
    cors = parseCors(corsOrigins.join(','), corsRegexes.join(' '), input.corsCredentials ?? false, 0)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    // What is left: a regex that takes any origin, with credentials.
    return fail('cors-credentials', 'true', 'no credentials with a --cors-origin-regex that matches any origin')
  }

  return { serverNames, upstreams, tls, cert, key, realIpFrom, bodyLimit, rateLimit, keepalive, proxyTimeoutS, cors }
}
