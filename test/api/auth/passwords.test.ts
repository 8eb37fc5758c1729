// Password hashing: argon2id by default, legacy scrypt hashes still log in and are upgraded on
// login, production refuses parameters below OWASP's floor, unknown users cost a verification,
// and the hash queue is bounded.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashPassword, hashPasswordScrypt, needsRehash, OWASP_ARGON2, PasswordHasher, verifyPassword } from '../../../src/api/auth/passwords.js'
import { ConfigError, loadConfig } from '../../../src/api/config.js'
import { call, FIXTURE_ARGON2, FIXTURE_ARGON2_ENV, FIXTURE_SCRYPT, login, PASSWORD, SIGNING_KEY, startApp } from '../../helpers/app.js'

const NO_LIMITS = { LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0' }

t.test('new hashes are argon2id at OWASP strength by default, and verify', async (t) => {
  const hash = await hashPassword(PASSWORD)
  t.match(hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
  t.ok(await verifyPassword(PASSWORD, hash))
  t.notOk(await verifyPassword('wrong', hash))
  t.notOk(await verifyPassword(PASSWORD, '$argon2id$garbage'), 'a malformed hash never matches')
  t.notOk(needsRehash(hash, OWASP_ARGON2))
  t.ok(needsRehash(hash, { ...OWASP_ARGON2, iterations: 3 }), 'another cost needs a rehash')
  t.ok(needsRehash(await hashPasswordScrypt(PASSWORD, FIXTURE_SCRYPT), OWASP_ARGON2), 'scrypt needs a rehash')
  t.same(loadConfig({ NODE_ENV: 'test' }).passwordHash.argon2, OWASP_ARGON2, 'the settings default to OWASP')
})

t.test('a legacy scrypt hash still logs in and is replaced by argon2id in the store', async (t) => {
  const { url, store, app } = await startApp(t, NO_LIMITS)
  const scrypt = await hashPasswordScrypt(PASSWORD, FIXTURE_SCRYPT)
  await store.createUser('alice', scrypt)

  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: 'wrong' } })).status, 401)
  t.equal((await store.findUserByUsername('alice'))!.passwordHash, scrypt, 'a failed login changes nothing')

  const first = await login(url)
  const { id, passwordHash } = (await store.findUserByUsername('alice'))!
  t.match(passwordHash, /^\$argon2id\$v=19\$m=256,p=1,t=1\$/, 'upgraded to argon2id at the configured parameters')
  t.ok(await verifyPassword(PASSWORD, passwordHash), 'the new hash is of the same password')
  t.equal((await call(url, '/api/me/', { token: first.access })).body.id, id, 'the session of the upgrading login works')

  const hashed = app.passwords.stats.hashed
  await login(url)
  t.equal((await store.findUserByUsername('alice'))!.passwordHash, passwordHash, 'a current hash is kept')
  t.equal(app.passwords.stats.hashed, hashed, 'and not rehashed')
})

t.test('an argon2id hash made at another cost is brought to the current one', async (t) => {
  const { url, store } = await startApp(t, NO_LIMITS)
  await store.createUser('alice', await hashPassword(PASSWORD, { ...FIXTURE_ARGON2, memoryKiB: 128 }))
  await login(url)
  t.match((await store.findUserByUsername('alice'))!.passwordHash, /^\$argon2id\$v=19\$m=256,p=1,t=1\$/)
})

t.test('unknown and inactive users cost one verification, like a wrong password', async (t) => {
  const { url, store, app } = await startApp(t, NO_LIMITS)
  await store.createUser('alice', await hashPassword(PASSWORD, FIXTURE_ARGON2))
  const bob = await store.createUser('bob', await hashPassword(PASSWORD, FIXTURE_ARGON2))
  await store.setActive(bob.id, false)
  const attempt = async (username: string, password: string) => {
    const before = app.passwords.stats.verified
    const r = await call(url, '/api/token/', { json: { username, password } })
    t.equal(r.status, 401, `${username}: 401`)
    t.strictSame(r.body, { detail: 'No active account found with the given credentials' })
    return app.passwords.stats.verified - before
  }
  t.equal(await attempt('alice', 'wrong'), 1, 'wrong password: one verification')
  t.equal(await attempt('nobody', 'wrong'), 1, 'unknown user: one verification too')
  t.equal(await attempt('nobody', PASSWORD), 1, 'unknown user with a valid-looking password: same')
  t.equal(await attempt('bob', PASSWORD), 1, 'inactive user: one verification')
})

t.test("production refuses argon2id parameters below OWASP's minimum, with one line", async (t) => {
  const prod = (env: Record<string, string>) => () => loadConfig({ NODE_ENV: 'production', JWT_SIGNING_KEY: SIGNING_KEY, ...env })
  t.throws(
    prod({ ARGON2_MEMORY_COST: '4096' }),
    new ConfigError(
      "ARGON2_MEMORY_COST=4096 with ARGON2_TIME_COST=2 is weaker than OWASP's argon2id minimum (memory KiB/passes: 47104/1, 19456/2, 12288/3, 9216/4, 7168/5): production refuses it",
    ),
  )
  t.throws(prod({ ARGON2_TIME_COST: '1' }), { name: 'ConfigError' }, '19 MiB needs two passes')
  t.throws(prod({ ARGON2_MEMORY_COST: '7168', ARGON2_TIME_COST: '4' }), { name: 'ConfigError' })
  t.same(prod({})().passwordHash.argon2, OWASP_ARGON2, 'the default passes')
  t.same(prod({ ARGON2_MEMORY_COST: '47104', ARGON2_TIME_COST: '1' })().passwordHash.argon2.memoryKiB, 47104, "OWASP's other rows pass")
  t.same(prod({ ARGON2_MEMORY_COST: '65536', ARGON2_TIME_COST: '3', ARGON2_PARALLELISM: '4' })().passwordHash.argon2.iterations, 3, 'stronger passes')
  t.equal(loadConfig({ NODE_ENV: 'test', ...FIXTURE_ARGON2_ENV }).passwordHash.argon2.memoryKiB, 256, 'tests may go below the floor')

  const cwd = mkdtempSync(join(tmpdir(), 'runway-weak-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const server = join(import.meta.dirname, '..', '..', '..', 'src', 'api', 'server.ts')
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), server], {
    cwd,
    env: { PATH: process.env.PATH!, NODE_ENV: 'production', JWT_SIGNING_KEY: SIGNING_KEY, ARGON2_MEMORY_COST: '1024', ARGON2_TIME_COST: '1' },
    encoding: 'utf8',
    timeout: 20_000,
  })
  t.equal(r.status, 78, 'exit code 78: pm2 does not restart it')
  t.match(r.stderr, /^runway: configuration error: ARGON2_MEMORY_COST=1024 with ARGON2_TIME_COST=1 is weaker than OWASP's/)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
})

t.test('hash concurrency defaults to the CPUs of one worker', async (t) => {
  const cfg = (env: Record<string, string>) => loadConfig({ NODE_ENV: 'test', ...env }).passwordHash
  const cpus = availableParallelism()
  t.equal(cfg({}).concurrency, Math.min(4, cpus), 'one process: its CPUs, at most the thread pool')
  t.equal(cfg({ UV_THREADPOOL_SIZE: '1' }).concurrency, 1, 'never more than the thread pool')
  t.equal(cfg({ NODE_APP_INSTANCE: '0' }).concurrency, 1, 'pm2, one worker per CPU: one each')
  t.equal(cfg({ NODE_APP_INSTANCE: '0', WEB_CONCURRENCY: '1' }).concurrency, Math.min(4, cpus), 'one pm2 worker: all CPUs')
  t.equal(cfg({}).queueLimit, 64 * cfg({}).concurrency, 'queue: 64 per slot')
  t.equal(cfg({}).maxWaitMs, 1500, 'no login waits more than 1.5 s for its hash')
  t.same(cfg({ PASSWORD_HASH_CONCURRENCY: '3', PASSWORD_HASH_QUEUE: '0', PASSWORD_HASH_MAX_WAIT_MS: '0' }), {
    argon2: OWASP_ARGON2,
    concurrency: 3,
    queueLimit: 0,
    maxWaitMs: 0,
    threadPool: 4,
  })
  t.equal(cfg({ UV_THREADPOOL_SIZE: '2' }).threadPool, 2, 'the libuv pool it runs on, as libuv reads it')
  t.throws(() => cfg({ PASSWORD_HASH_QUEUE: 'lots' }), { message: /^PASSWORD_HASH_QUEUE="lots" is invalid: expected auto or a number/ })
})

t.test('the hasher runs at most `concurrency` hashes, queues `queueLimit`, refuses the rest at once', async (t) => {
  class Full extends Error {}
  const hasher = new PasswordHasher({ params: FIXTURE_ARGON2, concurrency: 2, queueLimit: 3, maxWaitMs: 0, overloaded: () => new Full('full') })
  const hash = await hashPassword(PASSWORD, FIXTURE_ARGON2)
  let peak = 0
  const probe = setInterval(() => (peak = Math.max(peak, hasher.load.running)), 0)
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => hasher.verify(PASSWORD, hash)))
  clearInterval(probe)
  t.equal(results.filter((r) => r.status === 'fulfilled' && r.value === true).length, 5, '2 running + 3 queued verified')
  t.equal(results.filter((r) => r.status === 'rejected' && r.reason instanceof Full).length, 3, 'the other 3 refused')
  t.ok(peak <= 2, `never more than 2 at once (saw ${peak})`)
  t.same(hasher.load, { running: 0, waiting: 0 }, 'all slots free again')
  t.same(hasher.stats, { hashed: 0, verified: 5, refused: 3 })
  t.ok(await hasher.verify(PASSWORD, hash), 'serves again once the storm is over')
})

t.test('the hasher refuses a hash that would wait longer than maxWaitMs, judged by the measured time per hash', async (t) => {
  class Full extends Error {}
  const MAX_WAIT = 150
  // The real cost: a queue of 60 would wait for seconds; the bound lets in only what fits in 150 ms.
  const hasher = new PasswordHasher({ params: OWASP_ARGON2, concurrency: 1, queueLimit: 1000, maxWaitMs: MAX_WAIT, overloaded: () => new Full('full') })
  const hash = await hashPassword(PASSWORD)
  t.equal(hasher.expectedWaitMs, 0, 'no estimate before a hash has run: only the queue limit applies')
  t.ok(await hasher.verify(PASSWORD, hash))
  const msPerHash = hasher.expectedWaitMs // one slot, nobody waiting: the time of one hash
  t.ok(msPerHash > 0, `one hash took ${msPerHash.toFixed(1)} ms`)

  // All 60 arrive before any finishes: the first runs, the n-th waiter is expected to wait n hashes.
  const pending = Array.from({ length: 60 }, () => hasher.verify(PASSWORD, hash))
  const queued = Math.min(59, Math.floor(MAX_WAIT / msPerHash))
  t.same(hasher.load, { running: 1, waiting: queued }, `one running, only the ${queued} expected to wait ≤ ${MAX_WAIT} ms queued`)
  t.equal(hasher.stats.refused, 59 - queued, 'the rest refused at once')
  const results = await Promise.allSettled(pending)
  const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof Full).length
  const verified = results.filter((r) => r.status === 'fulfilled' && r.value === true).length
  // A queued hash can still time out if the machine got busier since the estimate.
  t.equal(verified + refused, 60, `${verified} verified, ${refused} refused`)
  t.same(hasher.load, { running: 0, waiting: 0 })
  t.ok(await hasher.verify(PASSWORD, hash), 'serves again once the storm is over')
})

t.test('a hash that has waited maxWaitMs leaves the queue refused, even when the estimate let it in', async (t) => {
  class Full extends Error {}
  const MAX_WAIT = 100
  const hasher = new PasswordHasher({ params: OWASP_ARGON2, concurrency: 1, queueLimit: 1000, maxWaitMs: MAX_WAIT, overloaded: () => new Full('full') })
  const hash = await hashPassword(PASSWORD)
  // No hash timed yet, so no estimate: all 20 are queued; 20 real hashes take far more than 100 ms.
  const started = performance.now()
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, () =>
      hasher.verify(PASSWORD, hash).catch((err: unknown) => {
        throw Object.assign(err as Full, { afterMs: performance.now() - started })
      }),
    ),
  )
  const refused = results.flatMap((r) => (r.status === 'rejected' && r.reason instanceof Full ? [r.reason as Full & { afterMs: number }] : []))
  const verified = results.filter((r) => r.status === 'fulfilled' && r.value === true).length
  t.ok(refused.length > 0, `${refused.length} refused after waiting their ${MAX_WAIT} ms`)
  t.equal(verified + refused.length, 20, `the other ${verified} verified`)
  t.ok(
    refused.every((r) => r.afterMs >= MAX_WAIT - 1),
    `refused only once they had waited (${refused.map((r) => r.afterMs.toFixed(0)).join(', ')} ms)`,
  )
  t.equal(hasher.stats.refused, refused.length)
  t.same(hasher.load, { running: 0, waiting: 0 }, 'nothing left queued, no slot lost')
  t.ok(await hasher.verify(PASSWORD, hash), 'serves again once the storm is over')
})
