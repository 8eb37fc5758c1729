// Configuration: defaults, one-line errors, production refusals — in-process and through a real
// `server.ts` start, which must exit with the one line and not a stack trace.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EXAMPLE_SIGNING_KEY, loadConfig, readEnv } from '../../src/api/config.js'
import { loadKeyRing } from '../../src/api/auth/keys.js'

t.test('defaults follow simplejwt and the issue', async (t) => {
  const c = loadConfig({})
  t.equal(c.host, '127.0.0.1')
  t.equal(c.port, 3000)
  t.equal(c.unixSocket, '', 'no Unix socket unless asked')
  t.match(c.dataDir, /\/data$/)
  t.equal(c.jwt.algorithm, 'HS256')
  t.equal(c.jwt.accessLifetime, 300)
  t.equal(c.jwt.refreshLifetime, 86400)
  t.equal(c.jwt.rotateRefreshTokens, true)
  t.equal(c.jwt.blacklistAfterRotation, true)
  t.equal(c.jwt.userIdClaim, 'user_id')
  t.strictSame(c.jwt.authHeaderTypes, ['Bearer'])
  t.equal(c.logRequests, true, 'request logs on in development')
  t.equal(c.trustProxy, false, 'forwarded headers not trusted by default')
})

t.test('values are converted and validated', async (t) => {
  const c = loadConfig({
    PORT: '8080',
    ACCESS_TOKEN_LIFETIME: '90s',
    REFRESH_TOKEN_LIFETIME: '2h',
    ROTATE_REFRESH_TOKENS: 'false',
    TRUST_PROXY: '1',
    AUTH_HEADER_TYPES: 'Bearer,JWT',
  })
  t.equal(c.port, 8080)
  t.equal(c.jwt.accessLifetime, 90)
  t.equal(c.jwt.refreshLifetime, 7200)
  t.equal(c.jwt.rotateRefreshTokens, false)
  t.equal(c.trustProxy, 1)
  t.strictSame(c.jwt.authHeaderTypes, ['Bearer', 'JWT'])
  t.strictSame(loadConfig({ TRUST_PROXY: '10.0.0.1, 127.0.0.1' }).trustProxy, ['10.0.0.1', '127.0.0.1'])
})

t.test('malformed values: one line naming the variable and what it expects', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: '80x' }, /^PORT="80x" is invalid: expected an integer from 0 to 65535$/],
    [{ PORT: '70000' }, /^PORT="70000" is invalid/],
    [{ JWT_ALGORITHM: 'none' }, /^JWT_ALGORITHM="none" is invalid: expected one of HS256, HS384, HS512, RS256, ES256, EdDSA$/],
    [{ ACCESS_TOKEN_LIFETIME: '5 minutes' }, /^ACCESS_TOKEN_LIFETIME="5 minutes" is invalid: expected a duration/],
    [{ ROTATE_REFRESH_TOKENS: 'maybe' }, /^ROTATE_REFRESH_TOKENS="maybe" is invalid: expected true or false$/],
    [{ NODE_ENV: 'prod' }, /^NODE_ENV="prod" is invalid/],
    [{ JWT_ALGORITHM: 'RS256' }, /^JWT_PRIVATE_KEY_FILE is missing/],
    [{ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: '/nonexistent.pem' }, /JWT_PRIVATE_KEY_FILE=\/nonexistent.pem cannot be read/],
    [{ UNIX_SOCKET: 'run/app.sock' }, /^UNIX_SOCKET=run\/app.sock is relative: give an absolute path/],
    [{ UNIX_SOCKET: `/${'d/'.repeat(53)}a.sock` }, /^UNIX_SOCKET is 113 bytes long as a path: a Unix socket path holds at most 107$/],
  ]
  for (const [env, message] of cases) {
    // Key files are read when the key ring loads, still before the server listens.
    t.throws(() => loadKeyRing(loadConfig(env).jwt), { message }, JSON.stringify(env))
  }
})

t.test('production refuses weak signing keys', async (t) => {
  const prod = (key?: string) => () => loadConfig({ NODE_ENV: 'production', ...(key === undefined ? {} : { JWT_SIGNING_KEY: key }) })
  t.throws(prod(), { message: /^JWT_SIGNING_KEY is missing/ })
  t.throws(prod('short-key'), { message: /^JWT_SIGNING_KEY is 9 bytes: production needs at least 32/ })
  t.throws(prod(EXAMPLE_SIGNING_KEY), { message: /^JWT_SIGNING_KEY is the example value from \.env\.example/ })
  t.doesNotThrow(prod('k'.repeat(32)))
  t.doesNotThrow(() => loadConfig({ JWT_SIGNING_KEY: 'short' }), 'development accepts a short key')
  t.equal(loadConfig({ NODE_ENV: 'production', JWT_SIGNING_KEY: 'k'.repeat(32) }).logRequests, false, 'no per-request logs in production')
})

t.test('.env is read under the real environment; typos in it are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-env-'))
  writeFileSync(join(dir, '.env'), 'PORT=4000\nLOG_LEVEL=warn\n')
  const raw = readEnv({ cwd: dir, env: { LOG_LEVEL: 'error' } })
  t.equal(raw.PORT, '4000')
  t.equal(raw.LOG_LEVEL, 'error', 'the environment wins')
  writeFileSync(join(dir, '.env'), 'ACCES_TOKEN_LIFETIME=1h\n')
  t.throws(() => readEnv({ cwd: dir, env: {} }), { message: /^ACCES_TOKEN_LIFETIME in .* is not a runway setting/ })
})

t.test('the server process stops with the one line and exit code 78', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'runway-start-'))
  const server = join(import.meta.dirname, '..', '..', 'src', 'api', 'server.ts')
  const start = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), server], {
      cwd,
      env: { PATH: process.env.PATH!, ...env },
      encoding: 'utf8',
      timeout: 20_000,
    })
  for (const [env, line] of [
    [{ NODE_ENV: 'production', JWT_SIGNING_KEY: EXAMPLE_SIGNING_KEY }, /^runway: configuration error: JWT_SIGNING_KEY is the example value/],
    [{ NODE_ENV: 'production' }, /^runway: configuration error: JWT_SIGNING_KEY is missing/],
    [{ PORT: 'eighty' }, /^runway: configuration error: PORT="eighty" is invalid/],
  ] as const) {
    const r = start(env)
    t.equal(r.status, 78, JSON.stringify(env))
    t.match(r.stderr, line)
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace')
  }
})
