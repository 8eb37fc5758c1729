// simplejwt's sliding tokens, end to end over real servers: status codes, bodies and headers as
// shared/reference/simplejwt-sliding-and-cors.md records them, plus runway's deliberate
// difference: /api/token/blacklist/ takes a sliding token and ends its session everywhere.
import t from 'tap'
import { createSecretKey } from 'node:crypto'
import { SignJWT, decodeJwt } from 'jose'
import { buildApp } from '../../../src/api/app.js'
import { call, createUser, login, PASSWORD, SIGNING_KEY, startApp, testConfig } from '../../helpers/app.js'

const ON = { SLIDING_TOKENS: 'true' }
const CHALLENGE = 'Bearer realm="api"'
const invalid = { detail: 'Token is invalid or expired', code: 'token_not_valid' }
const wrongType = { detail: 'Token has wrong type', code: 'token_not_valid' }
const blacklisted = { detail: 'Token is blacklisted', code: 'token_not_valid' }
const notValidForAny = (access: string, sliding: string) => ({
  detail: 'Given token not valid for any token type',
  code: 'token_not_valid',
  messages: [
    { token_class: 'AccessToken', token_type: 'access', message: access },
    { token_class: 'SlidingToken', token_type: 'sliding', message: sliding },
  ],
})

async function forgeSliding(claims: Record<string, unknown>) {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({
    token_type: 'sliding',
    jti: 'e'.repeat(32),
    sid: 'nosession',
    user_id: '1',
    iat: now,
    exp: now + 300,
    refresh_exp: now + 86400,
    ...claims,
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(createSecretKey(Buffer.from(SIGNING_KEY)))
}

async function obtain(url: string): Promise<string> {
  const r = await call(url, '/api/token/sliding/', { json: { username: 'alice', password: PASSWORD } })
  if (r.status !== 200) throw new Error(`sliding login failed: ${r.status} ${r.text}`)
  return r.body.token
}

t.test("obtain: {token} with simplejwt's claims and lifetimes; failures as for pairs", async (t) => {
  const { url, store } = await startApp(t, ON)
  await createUser(store)
  for (const path of ['/api/token/sliding/', '/api/token/sliding']) {
    const r = await call(url, path, { json: { username: 'alice', password: PASSWORD } })
    t.equal(r.status, 200, path)
    t.same(Object.keys(r.body), ['token'])
    t.match(r.headers.get('content-type'), /^application\/json/)
    const c = decodeJwt(r.body.token)
    t.equal(c.token_type, 'sliding')
    t.equal((c.exp as number) - (c.iat as number), 300, 'SLIDING_TOKEN_LIFETIME 5 min')
    t.equal((c.refresh_exp as number) - (c.iat as number), 86400, 'SLIDING_TOKEN_REFRESH_LIFETIME 1 day')
    t.match(c.jti, /^[0-9a-f]{32}$/)
    t.equal(c.user_id, '1')
    t.same(Object.keys(c).slice(0, 6), ['token_type', 'exp', 'iat', 'jti', 'refresh_exp', 'user_id'], "simplejwt's claim order")
  }
  let r = await call(url, '/api/token/sliding/', { json: { username: 'alice', password: 'wrong' } })
  t.equal(r.status, 401)
  t.strictSame(r.body, { detail: 'No active account found with the given credentials' })
  t.equal(r.headers.get('www-authenticate'), CHALLENGE)
  r = await call(url, '/api/token/sliding/', { json: {} })
  t.equal(r.status, 400)
  t.strictSame(r.body, { username: ['This field is required.'], password: ['This field is required.'] })
  r = await call(url, '/api/token/sliding/')
  t.equal(r.status, 405)
  t.equal(r.headers.get('allow'), 'POST, OPTIONS')
  t.ok((await store.findUserByUsername('alice'))!.lastLogin, 'last_login recorded')
})

t.test('the sliding token authenticates, verifies and refreshes in place', async (t) => {
  const { url, store } = await startApp(t, ON)
  await createUser(store)
  const token = await obtain(url)
  let r = await call(url, '/api/me/', { token })
  t.equal(r.status, 200)
  t.strictSame(r.body, { id: 1, username: 'alice' })
  r = await call(url, '/api/token/verify/', { json: { token } })
  t.equal(r.status, 200)
  t.strictSame(r.body, {})

  await new Promise((resolve) => setTimeout(resolve, 1100)) // so exp and iat move
  r = await call(url, '/api/token/sliding/refresh/', { json: { token } })
  t.equal(r.status, 200)
  t.same(Object.keys(r.body), ['token'])
  const before = decodeJwt(token)
  const after = decodeJwt(r.body.token)
  t.equal(after.jti, before.jti, 'same jti')
  t.equal(after.refresh_exp, before.refresh_exp, 'same refresh_exp')
  t.ok((after.exp as number) > (before.exp as number), 'exp moved')
  t.ok((after.iat as number) > (before.iat as number), 'iat moved')
  t.equal((await call(url, '/api/me/', { token: r.body.token })).status, 200)
  // No rotation: the original refreshes again (row sliding.refresh.old).
  t.equal((await call(url, '/api/token/sliding/refresh/', { json: { token } })).status, 200)

  r = await call(url, '/api/token/sliding/refresh/', { json: {} })
  t.equal(r.status, 400)
  t.strictSame(r.body, { token: ['This field is required.'] })
  r = await call(url, '/api/token/sliding/refresh/', { json: { token: 'garbage' } })
  t.equal(r.status, 401)
  t.strictSame(r.body, invalid)
  t.equal(r.headers.get('www-authenticate'), CHALLENGE)
})

t.test('pair and sliding tokens are not interchangeable, cached or not', async (t) => {
  const { url, store } = await startApp(t, ON)
  await createUser(store)
  const pair = await login(url)
  const sliding = await obtain(url)
  // Twice each: the second answer comes from the verified-token cache, which must check the type too.
  for (const round of [1, 2]) {
    for (const token of [pair.access, pair.refresh]) {
      const r = await call(url, '/api/token/sliding/refresh/', { json: { token } })
      t.equal(r.status, 401, `round ${round}`)
      t.strictSame(r.body, wrongType)
    }
    const r = await call(url, '/api/token/refresh/', { json: { refresh: sliding } })
    t.equal(r.status, 401)
    t.strictSame(r.body, wrongType)
    const me = await call(url, '/api/me/', { token: pair.refresh })
    t.equal(me.status, 401)
    t.strictSame(me.body, notValidForAny('Token has wrong type', 'Token has wrong type'))
    t.equal((await call(url, '/api/me/', { token: pair.access })).status, 200, 'pairs still work with sliding on')
  }
})

t.test('exp and refresh_exp', async (t) => {
  const { url, store } = await startApp(t, ON)
  await createUser(store)
  const now = Math.floor(Date.now() / 1000)
  const expired = await forgeSliding({ iat: now - 600, exp: now - 300, refresh_exp: now + 3600 })
  let r = await call(url, '/api/me/', { token: expired })
  t.equal(r.status, 401)
  t.strictSame(r.body, notValidForAny('Token is invalid or expired', 'Token is invalid or expired'))
  r = await call(url, '/api/token/sliding/refresh/', { json: { token: expired } })
  t.equal(r.status, 401)
  t.strictSame(r.body, invalid)
  const pastRefresh = await forgeSliding({ iat: now - 60, exp: now + 240, refresh_exp: now - 10 })
  r = await call(url, '/api/token/sliding/refresh/', { json: { token: pastRefresh } })
  t.equal(r.status, 401)
  t.strictSame(r.body, { detail: "Token 'refresh_exp' claim has expired", code: 'token_not_valid' })
  t.equal(r.headers.get('www-authenticate'), CHALLENGE)
  r = await call(url, '/api/token/sliding/refresh/', { json: { token: await forgeSliding({ refresh_exp: undefined }) } })
  t.strictSame(r.body, invalid, 'a sliding token without refresh_exp is malformed')
})

t.test('logout (blacklist) takes a sliding token and ends it everywhere', async (t) => {
  const first = await startApp(t, { ...ON, REVOCATION_POLL_INTERVAL: '50ms' })
  await createUser(first.store)
  // A second process on the same database: what another pm2 worker sees.
  const second = await buildApp(testConfig({ ...ON, REVOCATION_POLL_INTERVAL: '50ms', LOG_LEVEL: 'silent' }, first.dataDir))
  t.teardown(() => second.close())
  const url2 = await second.listen({ host: '127.0.0.1', port: 0 })
  const token = await obtain(first.url)
  const other = await obtain(first.url)
  t.equal((await call(url2, '/api/me/', { token })).status, 200, 'cached as valid on the second process')

  let r = await call(first.url, '/api/token/blacklist/', { json: { refresh: token } })
  t.equal(r.status, 200)
  t.strictSame(r.body, {})
  r = await call(first.url, '/api/token/blacklist/', { json: { refresh: token } })
  t.equal(r.status, 401)
  t.strictSame(r.body, blacklisted)
  const revoked = notValidForAny('Token has wrong type', 'Token is blacklisted')
  t.strictSame((await call(first.url, '/api/me/', { token })).body, revoked, 'at once on the process that logged out')
  const deadline = Date.now() + 5000
  let seen = await call(url2, '/api/me/', { token })
  while (seen.status === 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25))
    seen = await call(url2, '/api/me/', { token })
  }
  t.equal(seen.status, 401, 'the other process refuses it within the revocation poll')
  t.strictSame(seen.body, revoked)
  for (const url of [first.url, url2]) {
    t.strictSame((await call(url, '/api/token/sliding/refresh/', { json: { token } })).body, blacklisted, 'no refresh after logout')
    t.strictSame((await call(url, '/api/token/verify/', { json: { token } })).body, blacklisted)
  }
  t.equal((await call(url2, '/api/me/', { token: other })).status, 200, 'other sessions live on')

  // A password change ends every session of the user, sliding ones included.
  const pair = await login(first.url)
  r = await call(first.url, '/api/password/change/', { token: other, json: { old_password: PASSWORD, new_password: 'a-new-long-password' } })
  t.equal(r.status, 200, 'a sliding token authenticates the password change')
  t.strictSame((await call(first.url, '/api/token/sliding/refresh/', { json: { token: other } })).body, blacklisted)
  t.equal((await call(first.url, '/api/me/', { token: pair.access })).status, 401)
})

t.test("an inactive user's sliding token does not refresh", async (t) => {
  const { url, store } = await startApp(t, ON)
  await createUser(store)
  const token = await obtain(url)
  await store.setActive(1, false)
  const r = await call(url, '/api/token/sliding/refresh/', { json: { token } })
  t.equal(r.status, 401)
  t.strictSame(r.body, blacklisted, 'deactivation revoked the session')
})

t.test('off by default: no routes, no OpenAPI entries, sliding tokens refused', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  let r = await call(url, '/api/token/sliding/', { json: { username: 'alice', password: PASSWORD } })
  t.equal(r.status, 404)
  t.strictSame(r.body, { detail: 'Not found.' })
  r = await call(url, '/api/token/sliding/refresh/', { json: { token: 'x' } })
  t.equal(r.status, 404)
  const doc = (await call(url, '/docs/json')).body
  t.notOk(doc.paths['/api/token/sliding/'], 'not documented when off')
  const forged = await forgeSliding({})
  r = await call(url, '/api/me/', { token: forged })
  t.equal(r.status, 401)
  t.strictSame(r.body, {
    detail: 'Given token not valid for any token type',
    code: 'token_not_valid',
    messages: [{ token_class: 'AccessToken', token_type: 'access', message: 'Token has wrong type' }],
  })
  t.strictSame((await call(url, '/api/token/blacklist/', { json: { refresh: forged } })).body, wrongType)

  const on = await startApp(t, ON)
  const docOn = (await call(on.url, '/docs/json')).body
  for (const path of ['/api/token/sliding/', '/api/token/sliding/refresh/']) {
    t.ok(docOn.paths[path]?.post?.requestBody, `${path} documented when on`)
    t.ok(docOn.paths[path]?.post?.responses?.['200'])
  }
})
