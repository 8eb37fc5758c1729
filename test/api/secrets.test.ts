// No configuration error, log line or CLI output contains a secret: URL passwords, signing keys,
// tokens, private keys. Real processes (server, CLI) and the app's real logger.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../src/api/config.js'
import { redactSecrets } from '../../src/api/redact.js'
import { StoreUnavailableError } from '../../src/api/store/store.js'
import { call, startApp } from '../helpers/app.js'
import { freePort } from '../../src/lib/process.js'

const PW = 'S3cretPW-do-not-print'
const KEY = 'an-hmac-signing-key-that-must-never-be-printed-0123456789'
const ROOT = join(import.meta.dirname, '..', '..')

t.test('configuration errors never echo a secret', async (t) => {
  const cases: Record<string, string>[] = [
    { DATABASE_URL: `mysql://runway:${PW}@db/runway` },
    { DATABASE_URL: `mysql://db/runway?password=${PW}` },
    { DATABASE_URL: `http://runway:${PW}@db:5432/x` },
    { NODE_ENV: 'production', JWT_SIGNING_KEY: 'short', DATABASE_URL: `postgres://u:${PW}@db/x` },
  ]
  for (const env of cases) {
    let message = ''
    try {
      loadConfig({ JWT_SIGNING_KEY: KEY, ...env })
    } catch (err) {
      t.type(err, ConfigError)
      message = (err as Error).message
    }
    t.ok(message, `refused: ${message}`)
    t.notOk(message.includes(PW), 'no password in the message')
    t.notOk(message.includes(KEY), 'no signing key in the message')
  }
  // Still says which setting and what it expects.
  try {
    loadConfig({ DATABASE_URL: `mysql://runway:${PW}@db/runway` })
  } catch (err) {
    t.match((err as Error).message, /^DATABASE_URL="mysql:\/\/runway:\[redacted\]@db\/runway" is invalid: expected empty, or a postgres:\/\/ URL/)
  }
})

t.test('the server and the CLI print no secret on a configuration error or a store failure', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'runway-secrets-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const closed = await freePort()
  const run = (args: string[], env: Record<string, string>) =>
    spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, ...args], {
      cwd,
      env: { PATH: process.env.PATH!, ENV_FILE: '/nonexistent', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    })
  const server = ['--import', import.meta.resolve('tsx'), join(ROOT, 'src', 'api', 'server.ts')]
  const cli = [join(ROOT, 'bin', 'runway.js')]
  const runs = {
    'server, bad DATABASE_URL': run(server, { DATABASE_URL: `mysql://runway:${PW}@db/runway`, JWT_SIGNING_KEY: KEY }),
    'server, unreachable PostgreSQL': run(server, { DATABASE_URL: `postgres://runway:${PW}@127.0.0.1:${closed}/runway`, JWT_SIGNING_KEY: KEY }),
    'CLI migrate, bad DATABASE_URL': run([...cli, 'migrate'], { DATABASE_URL: `mysql://runway:${PW}@db/runway` }),
    'CLI migrate, unreachable PostgreSQL': run([...cli, 'migrate'], { DATABASE_URL: `postgres://runway:${PW}@127.0.0.1:${closed}/runway?sslpassword=${PW}` }),
    'CLI user list, unreachable PostgreSQL': run([...cli, 'user', 'list'], {
      DATABASE_URL: `postgres://runway:${PW}@127.0.0.1:${closed}/runway`,
      JWT_SIGNING_KEY: KEY,
    }),
  }
  for (const [name, r] of Object.entries(runs)) {
    const out = r.stdout + r.stderr
    t.not(r.status, 0, `${name}: fails (${r.status}): ${out.trim().split('\n')[0]}`)
    t.ok(out.trim().length > 0, `${name}: says why`)
    t.notOk(out.includes(PW), `${name}: no password`)
    t.notOk(out.includes(KEY), `${name}: no signing key`)
  }
})

t.test('log lines never carry the configured secrets, whatever logs them', async (t) => {
  const dbUrl = `postgres://runway:${PW}@db.internal/runway`
  const { app, url, logs } = await startApp(t, { JWT_SIGNING_KEY: KEY })
  // What a careless driver or a future code path might log: the connection string, the key, a
  // token, a private key, in messages, errors, causes and fields.
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxLCJleHAiOjk5OTk5OTk5OTl9.c2lnbmF0dXJlLWJ5dGVz'
  app.log.error(`cannot connect to ${dbUrl} with key ${KEY}`)
  app.log.error({ err: new Error(`connect failed for ${dbUrl}`, { cause: new Error(`key ${KEY}`) }) }, 'driver error')
  app.log.warn({ config: { databaseUrl: dbUrl, signingKey: KEY } }, 'settings')
  app.log.info({ err: new StoreUnavailableError(`PostgreSQL at ${dbUrl} is unreachable`) }, `token ${token}`)
  app.log.info(`-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END PRIVATE KEY-----`)
  await call(url, '/api/me/', { token })
  const text = logs.join('')
  t.ok(text.includes('driver error'), 'the lines were written')
  for (const secret of [PW, KEY, token, 'MIIEvQIBADANBgkq']) t.notOk(text.includes(secret), `no ${secret.slice(0, 10)}… in the log`)
  t.ok(text.includes('postgres://runway:[redacted]@db.internal/runway'), 'what is not secret stays readable')
})

t.test('redactSecrets: patterns', async (t) => {
  t.equal(redactSecrets('postgresql://u:p%40ss@h:5432/d'), 'postgresql://u:[redacted]@h:5432/d')
  t.equal(redactSecrets('postgres://h/d?user=u&password=x&sslmode=require'), 'postgres://h/d?user=u&password=[redacted]&sslmode=require')
  t.equal(redactSecrets('plain text, no secrets: http://host/path'), 'plain text, no secrets: http://host/path')
})
