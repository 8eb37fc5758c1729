// Beyond simplejwt: brute-force limits, login timing, concurrent rotation, password change and
// what the logs must never contain.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { hashPassword } from '../../../src/api/auth/passwords.js'
import { call, createUser, login, PASSWORD, startApp, testConfig } from '../../helpers/app.js'
import Fastify from 'fastify'
import passwordsPlugin from '../../../src/api/plugins/passwords.js'
import securityPlugin from '../../../src/api/plugins/security.js'

t.test('logins are rate-limited per client IP, with Retry-After', async (t) => {
  const { url, store } = await startApp(t, { LOGIN_RATE_LIMIT_IP: '3', LOGIN_RATE_LIMIT_USER: '0' })
  await createUser(store)
  for (let i = 0; i < 3; i++) t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: 'wrong' } })).status, 401)
  const r = await call(url, '/api/token/', { json: { username: 'alice', password: PASSWORD } })
  t.equal(r.status, 429, 'even the right password is refused while limited')
  t.match(r.body.detail, /^Request was throttled\. Expected available in \d+ seconds?\.$/)
  t.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After in seconds')
  // Other endpoints are not affected.
  t.equal((await call(url, '/healthz')).status, 200)
})

t.test('logins are rate-limited per username, whatever the IP', async (t) => {
  const { url, store } = await startApp(t, { LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '2' })
  await createUser(store)
  await createUser(store, 'bob')
  for (let i = 0; i < 2; i++) t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: 'wrong' } })).status, 401)
  const blocked = await call(url, '/api/token/', { json: { username: 'ALICE', password: PASSWORD } })
  t.equal(blocked.status, 429, 'the username counts case-insensitively')
  t.ok(blocked.headers.get('retry-after'))
  t.equal((await call(url, '/api/token/', { json: { username: 'bob', password: PASSWORD } })).status, 200, 'other users unaffected')
})

t.test('load shedding: 503 with Retry-After while the event loop lags; liveness still answers', async (t) => {
  const { url, app, logs } = await startApp(t, { MAX_EVENT_LOOP_DELAY: '50ms' })
  t.equal((await call(url, '/api/me/')).status, 401, 'at rest, requests are served (401: no token)')
  // Hold the event loop for 1.5 s, as a CPU-bound bug would; the next sample (once a second)
  // sees the lag, and until the following one requests are refused at once.
  const until = Date.now() + 1500
  while (Date.now() < until);
  let shed: Awaited<ReturnType<typeof call>> | undefined
  for (let i = 0; i < 40 && !shed; i++) {
    const r = await call(url, '/api/me/')
    if (r.status === 503) shed = r
    else await sleep(25)
  }
  const live = await call(url, '/healthz')
  t.ok(shed, 'a request was shed while the loop lagged')
  t.strictSame(shed?.body, { detail: 'Service temporarily unavailable, try again later.' })
  t.equal(shed?.headers.get('retry-after'), '1')
  t.equal(live.status, 200, '/healthz answers while shedding: the process is alive')
  t.ok(app.metrics.loadShed.event_loop >= 1, 'counted as event_loop shedding')
  t.match(logs.join(''), /"level":40[^\n]*"refused":\{"password_hash":0,"event_loop":1\}[^\n]*load shedding/, 'and logged as a warning')
  let recovered = false
  for (let i = 0; i < 40 && !recovered; i++) {
    recovered = (await call(url, '/api/me/')).status === 401
    if (!recovered) await sleep(100)
  }
  t.ok(recovered, 'served again once the lag is gone')
})

t.test('login timing does not reveal whether a username exists', async (t) => {
  // The real cost here (the test apps hash cheaply): this is what an attacker would time.
  const { url, store } = await startApp(t, { LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0', ARGON2_MEMORY_COST: '19456', ARGON2_TIME_COST: '2' })
  await store.createUser('alice', await hashPassword(PASSWORD))
  const time = async (username: string) => {
    const start = process.hrtime.bigint()
    const r = await call(url, '/api/token/', { json: { username, password: 'wrong-password' } })
    t.equal(r.status, 401)
    return Number(process.hrtime.bigint() - start) / 1e6
  }
  await time('alice')
  await time('nobody') // warm both paths (the dummy hash is computed once)
  const known: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < 7; i++) {
    known.push(await time('alice'))
    unknown.push(await time(`nobody-${i}`))
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const ratio = median(unknown) / median(known)
  t.comment(`median login: existing user ${median(known).toFixed(1)} ms, unknown user ${median(unknown).toFixed(1)} ms`)
  t.ok(ratio > 0.6 && ratio < 1.6, `unknown/known login time ratio ${ratio.toFixed(2)} is close to 1`)
  t.ok(median(known) > 10, 'a real password hash is computed')
})

t.test('the same refresh token sent concurrently yields exactly one new pair', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const pair = await login(url)
  const results = await Promise.all(Array.from({ length: 12 }, () => call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })))
  const ok = results.filter((r) => r.status === 200)
  t.equal(ok.length, 1, 'one success')
  t.ok(
    results.every((r) => r.status === 200 || (r.status === 401 && r.body.detail === 'Token is blacklisted')),
    'the rest are refused as blacklisted',
  )
  // Within the grace window the race did not end the session: the winner's token works.
  t.equal((await call(url, '/api/token/refresh/', { json: { refresh: ok[0]!.body.refresh } })).status, 200)
})

t.test('password change revokes every session of the user', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const a = await login(url)
  const b = await login(url)
  const wrongOld = await call(url, '/api/password/change/', { token: a.access, json: { old_password: 'nope', new_password: 'a-new-long-password' } })
  t.equal(wrongOld.status, 400)
  t.strictSame(wrongOld.body, { old_password: ['Your old password was entered incorrectly. Please enter it again.'] })
  const weak = await call(url, '/api/password/change/', { token: a.access, json: { old_password: PASSWORD, new_password: '1234' } })
  t.equal(weak.status, 400)
  t.ok(weak.body.new_password.length >= 1)
  const missing = await call(url, '/api/password/change/', { token: a.access, json: {} })
  t.strictSame(missing.body, { old_password: ['This field is required.'], new_password: ['This field is required.'] })
  t.equal((await call(url, '/api/password/change/', { json: { old_password: PASSWORD, new_password: 'x' } })).status, 401, 'needs a token')

  const ok = await call(url, '/api/password/change/', { token: a.access, json: { old_password: PASSWORD, new_password: 'a-new-long-password' } })
  t.equal(ok.status, 200)
  for (const pair of [a, b]) {
    t.equal((await call(url, '/api/me/', { token: pair.access })).status, 401, 'access tokens revoked')
    t.equal((await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })).status, 401, 'refresh tokens revoked')
  }
  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: PASSWORD } })).status, 401, 'old password refused')
  await login(url, 'alice', 'a-new-long-password')
  t.ok((await store.findUserByUsername('alice'))!.lastLogin, 'last_login recorded')
})

t.test('logs carry request ids and never secrets', async (t) => {
  const { url, store, logs } = await startApp(t, { LOG_REQUESTS: 'true', LOG_LEVEL: 'trace' })
  await createUser(store)
  const pair = await login(url)
  await call(url, '/api/me/', { token: pair.access })
  await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })
  await call(url, '/api/token/', { json: { username: 'alice', password: 'a-wrong-secret-password' } })
  await call(url, '/api/me/', { headers: { authorization: `Bearer ${pair.refresh}`, cookie: 'session=s3cr3t-cookie' } })
  await call(url, '/api/token/', { raw: `{"password":"${PASSWORD}"` })
  const text = logs.join('')
  t.ok(logs.length >= 10, 'requests were logged')
  t.match(text, /"reqId":"[0-9a-f]{12}-[0-9a-z]+"/, 'request ids')
  for (const secret of [PASSWORD, 'a-wrong-secret-password', pair.access, pair.refresh, 's3cr3t-cookie']) {
    t.notOk(text.includes(secret), `log does not contain ${secret.slice(0, 12)}…`)
  }
  for (const line of logs) t.doesNotThrow(() => JSON.parse(line), 'JSON lines')
})

t.test('production logging policy: no per-request lines, errors still logged', async (t) => {
  const { url, logs, store } = await startApp(t, { LOG_REQUESTS: 'auto', NODE_ENV: 'production', JWT_SIGNING_KEY: 'p'.repeat(40) })
  await call(url, '/healthz')
  await call(url, '/api/me/')
  t.notMatch(logs.join(''), /incoming request|request completed/)
  await store.close()
  const r = await call(url, '/readyz', { headers: { 'x-request-id': 'req-from-nginx-42' } })
  t.equal(r.status, 503)
  const line = logs.map((l) => JSON.parse(l)).find((l) => l.msg.startsWith('store unavailable'))
  t.equal(line?.reqId, 'req-from-nginx-42', 'error lines carry the request id')
})

t.test('the shedding plugins refuse to build without the metrics plugin (their refusals would throw)', async (t) => {
  for (const [name, plugin] of [
    ['runway-security', securityPlugin],
    ['runway-passwords', passwordsPlugin],
  ] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(plugin, { config: testConfig() })
    await t.rejects(async () => void (await app.ready()), /runway-metrics/, `${name} names the missing plugin`)
  }
})
