// The rate-limit seam: limiters are owned by one plugin (app.limits) and count in a
// RateLimitStore given to buildApp (deps.rateLimits; the app's store by default). Here a second
// implementation, in memory, stands in for a Redis one: every limited route (pair login, sliding
// login, sign-up) counts in it, sign-up and logins share the per-address budget, and the app's
// own store holds no counter.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../../src/api/app.js'
import { SqliteStore } from '../../../src/api/store/sqlite.js'
import type { RateLimitStore } from '../../../src/api/store/store.js'
import { call, createUser, PASSWORD, testConfig } from '../../helpers/app.js'

/** Fixed windows in a Map: what a minimal second backing looks like. */
class MemoryRateLimits implements RateLimitStore {
  readonly windows = new Map<string, { count: number; resetAt: number }>()
  readonly keys: string[] = []
  async hit(key: string, windowMs: number, now: number) {
    this.keys.push(key)
    const w = this.windows.get(key)
    const next = w && w.resetAt > now ? { count: w.count + 1, resetAt: w.resetAt } : { count: 1, resetAt: now + windowMs }
    this.windows.set(key, next)
    return { ...next }
  }
  async flushRateLimits(now: number) {
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k)
  }
}

t.test('every limited route counts in the RateLimitStore given to buildApp', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-ratelimit-'))
  const store = SqliteStore.open(dir)
  const limits = new MemoryRateLimits()
  const config = testConfig(
    { LOG_LEVEL: 'silent', REGISTRATION_ENABLED: 'true', SLIDING_TOKENS: 'true', LOGIN_RATE_LIMIT_IP: '4', LOGIN_RATE_LIMIT_USER: '3' },
    dir,
  )
  const app = await buildApp(config, { store, rateLimits: limits })
  t.teardown(async () => {
    await app.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  await createUser(store)

  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: PASSWORD } })).status, 200, 'pair login')
  t.equal((await call(url, '/api/token/sliding/', { json: { username: 'Alice', password: 'wrong' } })).status, 401, 'sliding login')
  t.equal((await call(url, '/api/register/', { json: { username: 'bob', password: PASSWORD } })).status, 201, 'sign-up')
  t.same(
    limits.keys,
    ['login-ip:127.0.0.1', 'login-user:alice', 'login-ip:127.0.0.1', 'login-user:alice', 'login-ip:127.0.0.1'],
    'each route counted in it, by address and by username',
  )
  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: 'wrong' } })).status, 401, 'the 4th attempt from this address')
  const refused = await call(url, '/api/register/', { json: { username: 'carol', password: PASSWORD } })
  t.equal(refused.status, 429, 'sign-up shares the per-address budget with logins')
  t.ok(Number(refused.headers.get('retry-after')) >= 1, 'with Retry-After')
  t.equal(limits.windows.get('login-user:alice')?.count, 3, 'the per-username counter')
  t.same(store.db.prepare('SELECT count(*) AS n FROM rate_limits').get(), { n: 0 }, "the app's store holds no counter")
})
