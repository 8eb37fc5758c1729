// Configuration is read once, from the environment plus an optional .env file, validated
// against one schema and handed to the app as a typed value. Nothing else reads process.env.
import { readFileSync, existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { parse as parseDotenv } from 'dotenv'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { meetsOwaspMinimum, OWASP_ARGON2, OWASP_ARGON2_MINIMUMS, type Argon2Params } from './auth/passwords.js'
import { isSecretSetting, redactSecrets } from './redact.js'

/** The value shipped in .env.example; production refuses to start with it. */
export const EXAMPLE_SIGNING_KEY = 'change-me-to-a-random-string-of-at-least-32-bytes'

const Duration = (def: string, description: string) =>
  Type.String({ pattern: '^[0-9]+(ms|s|m|h|d)?$', default: def, description, expected: 'a duration such as 300, 90s, 5m, 12h or 1d' })
const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description, expected: 'true or false' })
const Int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description, expected: `an integer from ${min} to ${max}` })
const Enum = <T extends string>(values: readonly T[], def: T, description: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { default: def, description, expected: `one of ${values.join(', ')}` },
  )
const Str = (def: string, description: string) => Type.String({ default: def, description, expected: 'a string' })

export const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'ES256', 'EdDSA'] as const
export type Algorithm = (typeof ALGORITHMS)[number]

/** sockaddr_un holds 108 bytes with the terminating NUL: a longer UNIX_SOCKET cannot be listened on. */
export const MAX_UNIX_SOCKET_BYTES = 107

/** PORT's default (also what a health URL or an upstream with no .env to read assumes). */
export const DEFAULT_PORT = 3000

export const EnvSchema = Type.Object({
  NODE_ENV: Enum(['development', 'production', 'test'], 'development', 'Runtime mode; production enforces strong keys and JSON logs'),
  HOST: Str('127.0.0.1', 'Address to listen on'),
  PORT: Int(DEFAULT_PORT, 0, 65535, 'Port to listen on (0 picks a free one)'),
  UNIX_SOCKET: Str(
    '',
    'Also listen on this Unix socket, for an nginx on the same host (upstream unix:PATH): cheaper per request than loopback TCP. HOST:PORT stays open (health checks, deploy gates). Empty = off',
  ),
  DATA_DIR: Str('./data', 'Directory of the embedded SQLite database'),
  DATABASE_URL: Type.String({
    default: '',
    pattern: '^(postgres(ql)?://.*)?$',
    description: 'PostgreSQL URL; empty = embedded SQLite in DATA_DIR',
    expected: 'empty, or a postgres:// URL',
  }),
  DB_POOL_SIZE: Int(
    10,
    1,
    1000,
    'PostgreSQL connections each process may open (see "Connections" in docs/operations.md: hosts x workers x pool must stay under max_connections)',
  ),
  DB_IDLE_TIMEOUT: Duration('30s', 'A PostgreSQL connection idle this long is closed (0 = never)'),
  DB_CONNECT_TIMEOUT: Duration('3s', 'Longest wait for a PostgreSQL connection (connect, or a free one from the pool); then 503'),
  DB_STATEMENT_TIMEOUT: Duration('5s', 'PostgreSQL cancels a statement running longer (sent at connect; 0 = not sent, e.g. through PgBouncer)'),
  DB_QUERY_TIMEOUT: Duration('6s', 'Longest wait for a PostgreSQL answer, even from a hung server; then 503 (0 = none)'),
  JWT_ALGORITHM: Enum(ALGORITHMS, 'HS256', 'Signing algorithm'),
  JWT_SIGNING_KEY: Str('', 'HMAC secret for HS* algorithms (at least 32 bytes in production)'),
  JWT_PRIVATE_KEY_FILE: Str('', 'PEM private key for RS256/ES256/EdDSA'),
  JWT_PUBLIC_KEY_FILE: Str('', 'Comma-separated PEM public keys also accepted for verification (previous keys during a rotation)'),
  ACCESS_TOKEN_LIFETIME: Duration('5m', 'Access token lifetime'),
  REFRESH_TOKEN_LIFETIME: Duration('1d', 'Refresh token lifetime'),
  ROTATE_REFRESH_TOKENS: Bool(true, 'Refresh returns a new refresh token'),
  BLACKLIST_AFTER_ROTATION: Bool(true, 'A rotated refresh token is blacklisted'),
  REFRESH_REUSE_GRACE: Duration(
    '2s',
    'Reuse of a just-rotated refresh token within this window is refused without revoking the session (concurrent refreshes)',
  ),
  JWT_LEEWAY: Duration('0', 'Clock skew tolerated when checking exp'),
  JWT_ISSUER: Str('', 'iss claim set and required when not empty'),
  JWT_AUDIENCE: Str('', 'aud claim set and required when not empty'),
  USER_ID_CLAIM: Type.String({ default: 'user_id', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Claim holding the user id', expected: 'a claim name' }),
  AUTH_HEADER_TYPES: Type.String({
    default: 'Bearer',
    pattern: '^[A-Za-z][A-Za-z0-9]*(,[A-Za-z][A-Za-z0-9]*)*$',
    description: 'Accepted Authorization schemes, comma-separated',
    expected: 'comma-separated words such as Bearer,JWT',
  }),
  LOG_LEVEL: Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level'),
  LOG_REQUESTS: Enum(['auto', 'true', 'false'], 'auto', 'Per-request log lines; auto = on in development, off in production (nginx keeps the access log)'),
  TRUST_PROXY: Type.String({
    default: 'false',
    description: 'Trust X-Forwarded-* from: false, true, a hop count, or comma-separated addresses/CIDRs',
    expected: 'false, true, a number, or addresses',
  }),
  BODY_LIMIT: Int(65536, 1024, 10485760, 'Largest request body in bytes (keep nginx client_max_body_size equal)'),
  LOGIN_RATE_LIMIT_IP: Int(20, 0, 1000000, 'Login attempts per client IP per window (0 disables)'),
  LOGIN_RATE_LIMIT_USER: Int(10, 0, 1000000, 'Login attempts per username per window (0 disables)'),
  LOGIN_RATE_LIMIT_WINDOW: Duration('1m', 'Login rate limit window'),
  REVOCATION_POLL_INTERVAL: Duration('250ms', 'How often each process checks the store for new revocations when they are not pushed'),
  REVOCATION_PUSH: Enum(
    ['listen', 'off'],
    'listen',
    'PostgreSQL: learn of revocations by LISTEN/NOTIFY (polling only as a safety net every 5 s); off = poll every REVOCATION_POLL_INTERVAL',
  ),
  REVOCATION_LISTEN_URL: Type.String({
    default: '',
    pattern: '^(postgres(ql)?://.*)?$',
    description: 'Direct PostgreSQL connection for LISTEN when DATABASE_URL goes through a transaction-pooling PgBouncer; empty = DATABASE_URL',
    expected: 'empty, or a postgres:// URL',
  }),
  AUTH_USER_CACHE_TTL: Duration(
    '5s',
    'How long each process reuses the user behind a token without reading the store (0 disables); any revocation drops it at once',
  ),
  AUTH_USER_CACHE_MAX_STALE: Duration('60s', 'During a store fault, authenticated requests of users seen this recently are still served from the cache'),
  WORKER_HEADER: Enum(['auto', 'true', 'false'], 'auto', 'Send x-runway-worker with the pm2 instance id; auto = on outside production'),
  KEEP_ALIVE_TIMEOUT: Duration('65s', 'Idle keep-alive socket timeout; keep it above nginx upstream keepalive_timeout (60s)'),
  REQUEST_TIMEOUT: Duration('30s', 'Longest time to receive a whole request'),
  HEADERS_TIMEOUT: Duration('20s', 'Longest time to receive request headers'),
  SHUTDOWN_GRACE: Duration('10s', 'Time in-flight requests get on shutdown; pm2 kill_timeout must be longer'),
  MAX_EVENT_LOOP_DELAY: Duration('1s', 'Answer 503 while the event loop lags more than this (0 disables)'),
  OPENAPI_UI: Enum(
    ['auto', 'true', 'false'],
    'auto',
    'Serve the OpenAPI document (/docs/json) and UI (/docs); auto = on outside production; off = no /docs, and neither plugin is loaded',
  ),
  // Read by ecosystem.config.js (pm2) and `runway check --deploy`, not by the app; listed here so
  // that .env may hold them and a bad value is refused in one line.
  WEB_CONCURRENCY: Type.String({
    default: '',
    pattern: '^([1-9][0-9]*)?$',
    description: 'pm2 worker count; empty = one per CPU',
    expected: 'a whole number of workers, 1 or more (empty = one per CPU)',
  }),
  RUNWAY_LOG_DIR: Str('', 'Directory of the pm2 log files; empty = ./logs'),
  RUNWAY_MAX_MEMORY: Type.String({
    default: '512M',
    pattern: '^[1-9][0-9]*[KMG]?$',
    description: 'pm2 max_memory_restart per worker',
    expected: 'a size such as 512M or 1G',
  }),
  SILENCED_CHECKS: Type.String({
    default: '',
    pattern: '^(runway\\.[EW][0-9]{3})?(,\\s*runway\\.[EW][0-9]{3})*$',
    description: '`runway check --deploy` ids silenced on purpose',
    expected: 'comma-separated ids such as runway.W001',
  }),
  SLIDING_TOKENS: Bool(false, "simplejwt's sliding tokens: /api/token/sliding/ and /api/token/sliding/refresh/"),
  SLIDING_TOKEN_LIFETIME: Duration('5m', 'Sliding token lifetime (exp), renewed by each sliding refresh'),
  SLIDING_TOKEN_REFRESH_LIFETIME: Duration('1d', 'How long after login a sliding token can still be refreshed (refresh_exp)'),
  CORS_ALLOWED_ORIGINS: Type.String({
    default: '',
    description: 'Origins browsers may call the API from, exact (https://app.example.com), comma-separated; * = any, without credentials',
    expected: 'comma-separated origins such as https://app.example.com',
  }),
  CORS_ALLOWED_ORIGIN_REGEXES: Type.String({
    default: '',
    description: 'Regular expressions an origin may match in full instead, separated by spaces',
    expected: 'space-separated regular expressions',
  }),
  CORS_ALLOW_CREDENTIALS: Bool(false, 'Let browsers send cookies/HTTP auth cross-origin (Access-Control-Allow-Credentials)'),
  CORS_PREFLIGHT_MAX_AGE: Int(86400, 0, 86400 * 7, 'Seconds browsers may cache a preflight answer (Access-Control-Max-Age)'),
  REGISTRATION_ENABLED: Bool(false, 'Open sign-up: POST /api/register/'),
  ARGON2_MEMORY_COST: Int(
    OWASP_ARGON2.memoryKiB,
    8,
    4194304,
    "argon2id memory per password hash, in KiB (production: at least OWASP's minimum, 19456 with ARGON2_TIME_COST=2)",
  ),
  ARGON2_TIME_COST: Int(OWASP_ARGON2.iterations, 1, 100, 'argon2id passes over that memory'),
  ARGON2_PARALLELISM: Int(OWASP_ARGON2.parallelism, 1, 64, 'argon2id lanes per hash'),
  PASSWORD_HASH_CONCURRENCY: Type.String({
    default: 'auto',
    pattern: '^(auto|[1-9][0-9]{0,2})$',
    description: 'Password hashes run at once per process; auto = the CPUs per worker, at most UV_THREADPOOL_SIZE',
    expected: 'auto or a number from 1 to 999',
  }),
  PASSWORD_HASH_QUEUE: Type.String({
    default: 'auto',
    pattern: '^(auto|[0-9]{1,5})$',
    description: 'Password hashes that may wait per process; beyond that logins get 503 + Retry-After at once. auto = 64 x PASSWORD_HASH_CONCURRENCY',
    expected: 'auto or a number from 0 to 99999',
  }),
  PASSWORD_HASH_MAX_WAIT_MS: Int(
    1500,
    0,
    60_000,
    'The longest a login may wait for a password hash slot, in ms, estimated from the recent time per hash; a login expected to wait longer gets 503 + Retry-After at once (0 = only PASSWORD_HASH_QUEUE bounds it)',
  ),
  METRICS_PORT: Type.String({
    default: '',
    pattern: '^([1-9][0-9]{0,4})?$',
    description: 'Port of the Prometheus endpoint (GET /metrics) for the whole pm2 cluster; empty = off',
    expected: 'empty (off) or a port from 1 to 65535',
  }),
  METRICS_HOST: Str('127.0.0.1', 'Address of the metrics listener; keep it private (loopback, or an internal interface Prometheus reaches)'),
  METRICS_SOCKET_DIR: Str('', 'Directory of the per-worker metrics sockets; empty = DATA_DIR/metrics'),
})
type Env = Static<typeof EnvSchema>

export interface Config {
  env: Env['NODE_ENV']
  production: boolean
  host: string
  port: number
  /** Absolute path of the Unix socket also listened on, or '' (off). */
  unixSocket: string
  dataDir: string
  /** PostgreSQL connection URL, or '' for the embedded SQLite store. */
  databaseUrl: string
  /** PostgreSQL pool and timeouts (milliseconds); unused with SQLite. */
  db: { poolSize: number; idleTimeoutMs: number; connectTimeoutMs: number; statementTimeoutMs: number; queryTimeoutMs: number; listenUrl: string | null }
  jwt: {
    algorithm: Algorithm
    signingKey: string
    privateKeyFile: string
    publicKeyFiles: string[]
    accessLifetime: number // seconds
    refreshLifetime: number // seconds
    rotateRefreshTokens: boolean
    blacklistAfterRotation: boolean
    reuseGrace: number // seconds
    leeway: number // seconds
    issuer: string
    audience: string
    userIdClaim: string
    authHeaderTypes: string[]
  }
  logLevel: Env['LOG_LEVEL']
  logRequests: boolean
  trustProxy: boolean | number | string[]
  bodyLimit: number
  loginRateLimit: { perIp: number; perUser: number; windowMs: number }
  revocationPollMs: number
  authUserCache: { ttlMs: number; maxStaleMs: number }
  workerHeader: boolean
  workerId: string
  keepAliveTimeoutMs: number
  requestTimeoutMs: number
  headersTimeoutMs: number
  shutdownGraceMs: number
  maxEventLoopDelayMs: number
  openapiUi: boolean
  /** simplejwt's SlidingToken: off unless SLIDING_TOKENS=true. */
  sliding: { enabled: boolean; lifetime: number; refreshLifetime: number } // seconds
  cors: CorsSettings
  registration: boolean
  /** threadPool: the libuv pool the hashes run on (UV_THREADPOOL_SIZE, else libuv's 4). */
  passwordHash: { argon2: Argon2Params; concurrency: number; queueLimit: number; maxWaitMs: number; threadPool: number }
  /** The Prometheus endpoint; null = off (METRICS_PORT empty). */
  metrics: { host: string; port: number; socketDir: string } | null
}

export interface CorsSettings {
  /** Exact origins (scheme://host[:port], or the literal `null` when listed); `*` = any. */
  origins: string[]
  /** Each must match the whole origin. */
  originRegexes: RegExp[]
  credentials: boolean
  maxAgeSeconds: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor(message: string) {
    // The one choke point for every configuration message: nothing secret-looking gets out.
    super(redactSecrets(message))
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
/** "90s" → 90000. A bare number means seconds, as simplejwt's timedelta settings do. */
export function durationMs(text: string): number {
  const m = /^([0-9]+)(ms|s|m|h|d)?$/.exec(text)
  if (!m) throw new ConfigError(`not a duration: ${text}`)
  return Number(m[1]) * UNITS[m[2] ?? 's']!
}

function parseTrustProxy(text: string): boolean | number | string[] {
  if (text === 'true') return true
  if (text === 'false' || text === '') return false
  if (/^[0-9]+$/.test(text)) return Number(text)
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

/**
 * The one parser for .env text, wherever it was read (this host's .env, a target's shared/.env
 * over ssh): dotenv's rules, and every name must be a runway setting. `source` names the file in
 * the error.
 */
export function parseEnvText(text: string | Buffer, source: string): Record<string, string> {
  const fromFile = parseDotenv(text)
  const known = new Set(Object.keys(EnvSchema.properties))
  // A typo in .env (ACCES_TOKEN_LIFETIME=...) would otherwise be silently ignored.
  const unknown = Object.keys(fromFile).filter((k) => !known.has(k) && k !== 'ENV_FILE')
  if (unknown.length) throw new ConfigError(`${unknown[0]} in ${source} is not a runway setting; see .env.example for the names`)
  return fromFile
}

/** Reads .env (if present) under the real environment, which wins, as dotenv does. */
export function readEnv(opts: { cwd?: string; env?: NodeJS.ProcessEnv; envFile?: string | false } = {}): Record<string, string | undefined> {
  const env = opts.env ?? process.env
  const file = opts.envFile === false ? undefined : resolve(opts.cwd ?? process.cwd(), opts.envFile ?? env.ENV_FILE ?? '.env')
  const fromFile = file && existsSync(file) ? parseEnvText(readFileSync(file), file) : {}
  return { ...fromFile, ...env }
}

/** Validates raw settings; throws ConfigError with one line naming the variable and what it expects. */
export function loadConfig(raw: Record<string, string | undefined> = readEnv()): Config {
  const input: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const v = raw[key]
    if (v !== undefined && v !== '') input[key] = v.trim()
  }
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, input)) as Record<string, unknown>
  for (const error of Value.Errors(EnvSchema, converted)) {
    const key = error.instancePath.split('/')[1] ?? '?'
    const schema = (EnvSchema.properties as Record<string, { expected?: string }>)[key]
    // The value is echoed to help, but never a secret's: a key is hidden whole, a URL's password part.
    const shown = isSecretSetting(key) ? '(value hidden)' : redactSecrets(JSON.stringify(raw[key] ?? ''))
    throw new ConfigError(`${key}=${shown} is invalid: expected ${schema?.expected ?? error.message}`)
  }
  const e = converted as Env
  const auto = (v: 'auto' | 'true' | 'false', whenAuto: boolean) => (v === 'auto' ? whenAuto : v === 'true')
  const production = e.NODE_ENV === 'production'
  const config: Config = {
    env: e.NODE_ENV,
    production,
    host: e.HOST,
    port: e.PORT,
    unixSocket: e.UNIX_SOCKET,
    dataDir: resolve(e.DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    db: {
      poolSize: e.DB_POOL_SIZE,
      idleTimeoutMs: durationMs(e.DB_IDLE_TIMEOUT),
      connectTimeoutMs: durationMs(e.DB_CONNECT_TIMEOUT),
      statementTimeoutMs: durationMs(e.DB_STATEMENT_TIMEOUT),
      queryTimeoutMs: durationMs(e.DB_QUERY_TIMEOUT),
      listenUrl: e.REVOCATION_PUSH === 'off' ? null : e.REVOCATION_LISTEN_URL,
    },
    jwt: {
      algorithm: e.JWT_ALGORITHM,
      signingKey: e.JWT_SIGNING_KEY,
      privateKeyFile: e.JWT_PRIVATE_KEY_FILE,
      publicKeyFiles: e.JWT_PUBLIC_KEY_FILE.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      accessLifetime: durationMs(e.ACCESS_TOKEN_LIFETIME) / 1000,
      refreshLifetime: durationMs(e.REFRESH_TOKEN_LIFETIME) / 1000,
      rotateRefreshTokens: e.ROTATE_REFRESH_TOKENS,
      blacklistAfterRotation: e.BLACKLIST_AFTER_ROTATION,
      reuseGrace: durationMs(e.REFRESH_REUSE_GRACE) / 1000,
      leeway: durationMs(e.JWT_LEEWAY) / 1000,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      userIdClaim: e.USER_ID_CLAIM,
      authHeaderTypes: e.AUTH_HEADER_TYPES.split(','),
    },
    logLevel: e.LOG_LEVEL,
    logRequests: auto(e.LOG_REQUESTS, !production),
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    bodyLimit: e.BODY_LIMIT,
    loginRateLimit: { perIp: e.LOGIN_RATE_LIMIT_IP, perUser: e.LOGIN_RATE_LIMIT_USER, windowMs: durationMs(e.LOGIN_RATE_LIMIT_WINDOW) },
    revocationPollMs: Math.max(10, durationMs(e.REVOCATION_POLL_INTERVAL)),
    authUserCache: { ttlMs: durationMs(e.AUTH_USER_CACHE_TTL), maxStaleMs: durationMs(e.AUTH_USER_CACHE_MAX_STALE) },
    workerHeader: auto(e.WORKER_HEADER, !production),
    workerId: raw.NODE_APP_INSTANCE ?? String(process.pid),
    keepAliveTimeoutMs: durationMs(e.KEEP_ALIVE_TIMEOUT),
    requestTimeoutMs: durationMs(e.REQUEST_TIMEOUT),
    headersTimeoutMs: durationMs(e.HEADERS_TIMEOUT),
    shutdownGraceMs: durationMs(e.SHUTDOWN_GRACE),
    maxEventLoopDelayMs: durationMs(e.MAX_EVENT_LOOP_DELAY),
    openapiUi: auto(e.OPENAPI_UI, !production),
    sliding: {
      enabled: e.SLIDING_TOKENS,
      lifetime: durationMs(e.SLIDING_TOKEN_LIFETIME) / 1000,
      refreshLifetime: durationMs(e.SLIDING_TOKEN_REFRESH_LIFETIME) / 1000,
    },
    cors: parseCors(e.CORS_ALLOWED_ORIGINS, e.CORS_ALLOWED_ORIGIN_REGEXES, e.CORS_ALLOW_CREDENTIALS, e.CORS_PREFLIGHT_MAX_AGE),
    registration: e.REGISTRATION_ENABLED,
    passwordHash: passwordHashSettings(e, raw),
    metrics: e.METRICS_PORT
      ? { host: e.METRICS_HOST, port: Number(e.METRICS_PORT), socketDir: resolve(e.METRICS_SOCKET_DIR || join(e.DATA_DIR, 'metrics')) }
      : null,
  }
  checkConsistency(config)
  return config
}

/**
 * django-cors-headers' settings. Origins are compared exactly, so each must be written as browsers
 * send it: scheme, host, optional port, no path or trailing slash, lowercase.
 */
export function parseCors(originsText: string, regexesText: string, credentials: boolean, maxAgeSeconds: number): CorsSettings {
  const origins = originsText.split(/[\s,]+/).filter(Boolean)
  for (const o of origins) {
    if (o === '*' || o === 'null') continue
    let url: URL | undefined
    try {
      url = new URL(o)
    } catch {}
    // WHATWG URLs allow quotes and semicolons in host names; origins here must be plain host names
    // (they also go into nginx's config).
    if (!url || !/^https?:$/.test(url.protocol) || url.origin !== o || !/^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?$/.test(o)) {
      const hint = url && /^https?:$/.test(url.protocol) ? `; write it as ${url.origin}` : ''
      throw new ConfigError(
        `CORS_ALLOWED_ORIGINS has ${JSON.stringify(o)}: expected an origin such as https://app.example.com (scheme and host, optional port, no path)${hint}`,
      )
    }
  }
  if (origins.includes('*') && origins.length > 1)
    throw new ConfigError('CORS_ALLOWED_ORIGINS mixes * with origins: use * alone (any origin) or list the origins')
  if (origins.includes('*') && credentials) {
    // django-cors-headers reflects any origin here, which lets every web site act as the user.
    throw new ConfigError(
      'CORS_ALLOWED_ORIGINS=* cannot be combined with CORS_ALLOW_CREDENTIALS=true: any web site could make credentialed calls; list the origins instead',
    )
  }
  const originRegexes = regexesText
    .split(/\s+/)
    .filter(Boolean)
    .map((text) => {
      try {
        // Anchored: a regex must match the whole origin, not a piece of it (https://app.example.com.evil.test).
        return new RegExp(`^(?:${text})$`)
      } catch (err) {
        throw new ConfigError(`CORS_ALLOWED_ORIGIN_REGEXES has ${JSON.stringify(text)}: not a regular expression (${(err as Error).message})`)
      }
    })
  // A regex that takes any origin (`.*`, `https?://.*`) with credentials is `*` with credentials.
  const probe = 'https://cors-probe.invalid'
  const anyOrigin = originRegexes.findIndex((re) => re.test(probe))
  if (anyOrigin >= 0 && credentials) {
    const text = regexesText.split(/\s+/).filter(Boolean)[anyOrigin]
    throw new ConfigError(
      `CORS_ALLOWED_ORIGIN_REGEXES has ${JSON.stringify(text)}, which matches any origin (${probe}), and CORS_ALLOW_CREDENTIALS=true: any web site could make credentialed calls; match your own domains only`,
    )
  }
  return { origins, originRegexes, credentials, maxAgeSeconds }
}

/**
 * Hashing concurrency: a hash keeps a CPU busy for its whole run, so more at once than this
 * worker's share of the CPUs only adds waiting and memory (argon2id holds ARGON2_MEMORY_COST per
 * hash). Under pm2 (NODE_APP_INSTANCE set) the CPUs are shared by WEB_CONCURRENCY workers (default
 * one per CPU, as ecosystem.config.js does); and never more than libuv's thread pool can run.
 */
function passwordHashSettings(e: Env, raw: Record<string, string | undefined>): Config['passwordHash'] {
  const cpus = availableParallelism()
  const workers = raw.NODE_APP_INSTANCE === undefined ? 1 : Number(raw.WEB_CONCURRENCY) || cpus
  const threadPool = Number(raw.UV_THREADPOOL_SIZE) || 4
  const concurrency =
    e.PASSWORD_HASH_CONCURRENCY === 'auto' ? Math.max(1, Math.min(threadPool, Math.floor(cpus / workers))) : Number(e.PASSWORD_HASH_CONCURRENCY)
  const queueLimit = e.PASSWORD_HASH_QUEUE === 'auto' ? 64 * concurrency : Number(e.PASSWORD_HASH_QUEUE)
  const argon2 = { memoryKiB: e.ARGON2_MEMORY_COST, iterations: e.ARGON2_TIME_COST, parallelism: e.ARGON2_PARALLELISM }
  return { argon2, concurrency, queueLimit, maxWaitMs: e.PASSWORD_HASH_MAX_WAIT_MS, threadPool }
}

function checkConsistency(c: Config): void {
  const { argon2 } = c.passwordHash
  if (c.production && !meetsOwaspMinimum(argon2)) {
    const floors = OWASP_ARGON2_MINIMUMS.map((m) => `${m.memoryKiB}/${m.iterations}`).join(', ')
    throw new ConfigError(
      `ARGON2_MEMORY_COST=${argon2.memoryKiB} with ARGON2_TIME_COST=${argon2.iterations} is weaker than OWASP's argon2id minimum (memory KiB/passes: ${floors}): production refuses it`,
    )
  }
  if (argon2.memoryKiB < 8 * argon2.parallelism)
    throw new ConfigError(`ARGON2_MEMORY_COST must be at least 8 KiB per lane (ARGON2_PARALLELISM=${argon2.parallelism})`)
  const { jwt } = c
  const hmac = jwt.algorithm.startsWith('HS')
  if (hmac) {
    if (!jwt.signingKey) {
      if (c.production) throw new ConfigError('JWT_SIGNING_KEY is missing: production needs a random key of at least 32 bytes (e.g. `openssl rand -base64 48`)')
      // Outside production a missing key gets a per-process random one: tokens do not survive restarts.
    } else if (c.production && jwt.signingKey === EXAMPLE_SIGNING_KEY) {
      throw new ConfigError('JWT_SIGNING_KEY is the example value from .env.example: set a random key (e.g. `openssl rand -base64 48`)')
    } else if (c.production && Buffer.byteLength(jwt.signingKey) < 32) {
      throw new ConfigError(`JWT_SIGNING_KEY is ${Buffer.byteLength(jwt.signingKey)} bytes: production needs at least 32 (e.g. \`openssl rand -base64 48\`)`)
    }
  } else if (!jwt.privateKeyFile) {
    throw new ConfigError(`JWT_PRIVATE_KEY_FILE is missing: ${jwt.algorithm} signs with a PEM private key (see \`runway keys generate --help\`)`)
  }
  if (jwt.accessLifetime <= 0) throw new ConfigError('ACCESS_TOKEN_LIFETIME must be longer than 0')
  if (jwt.refreshLifetime <= 0) throw new ConfigError('REFRESH_TOKEN_LIFETIME must be longer than 0')
  if (c.sliding.lifetime <= 0) throw new ConfigError('SLIDING_TOKEN_LIFETIME must be longer than 0')
  if (c.sliding.refreshLifetime <= 0) throw new ConfigError('SLIDING_TOKEN_REFRESH_LIFETIME must be longer than 0')
  if (c.db.connectTimeoutMs === 0) throw new ConfigError('DB_CONNECT_TIMEOUT must be longer than 0: without it a hung PostgreSQL holds every request')
  if (c.headersTimeoutMs > c.requestTimeoutMs) throw new ConfigError('HEADERS_TIMEOUT must not exceed REQUEST_TIMEOUT')
  // nginx's upstream names the path, and pm2 starts each release in its own directory.
  if (c.unixSocket && !isAbsolute(c.unixSocket))
    throw new ConfigError(
      `UNIX_SOCKET=${c.unixSocket} is relative: give an absolute path (nginx's upstream names it, and a relative one would move with each release)`,
    )
  if (Buffer.byteLength(c.unixSocket) > MAX_UNIX_SOCKET_BYTES)
    throw new ConfigError(`UNIX_SOCKET is ${Buffer.byteLength(c.unixSocket)} bytes long as a path: a Unix socket path holds at most ${MAX_UNIX_SOCKET_BYTES}`)
  if (c.metrics && c.metrics.port > 65535) throw new ConfigError(`METRICS_PORT=${c.metrics.port} is invalid: expected empty (off) or a port from 1 to 65535`)
  if (c.metrics && c.metrics.port === c.port)
    throw new ConfigError(`METRICS_PORT=${c.metrics.port} is the API's PORT: the metrics listener needs a port of its own`)
}
