// The simplejwt contract, end to end over a real listening server: status codes, bodies and
// headers exactly as shared/reference/simplejwt-responses.md records them (runway's deliberate
// differences noted where they apply).
import t from 'tap'
import { createSecretKey } from 'node:crypto'
import { SignJWT } from 'jose'
import { call, createUser, login, PASSWORD, SIGNING_KEY, startApp } from '../helpers/app.js'

const CHALLENGE = 'Bearer realm="api"'
const invalid = { detail: 'Token is invalid or expired', code: 'token_not_valid' }
const wrongType = { detail: 'Token has wrong type', code: 'token_not_valid' }
const blacklisted = { detail: 'Token is blacklisted', code: 'token_not_valid' }
const notValidForAny = (message: string) => ({
  detail: 'Given token not valid for any token type',
  code: 'token_not_valid',
  messages: [{ token_class: 'AccessToken', token_type: 'access', message }],
})

/** A token signed with the app's own key, with whatever claims the test needs. */
async function forge(claims: Record<string, unknown>) {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ token_type: 'access', jti: 'f'.repeat(32), sid: 'nosession', user_id: '1', iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(createSecretKey(Buffer.from(SIGNING_KEY)))
}

t.test('obtain a token pair', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)

  t.test('good credentials (JSON), with and without the trailing slash', async (t) => {
    for (const path of ['/api/token/', '/api/token']) {
      const r = await call(url, path, { json: { username: 'alice', password: PASSWORD } })
      t.equal(r.status, 200, path)
      t.same(Object.keys(r.body).sort(), ['access', 'refresh'])
      t.match(r.headers.get('content-type'), /^application\/json/)
    }
  })
  t.test('form-encoded credentials', async (t) => {
    const r = await call(url, '/api/token/', { form: { username: 'alice', password: PASSWORD } })
    t.equal(r.status, 200)
    t.type(r.body.access, 'string')
  })
  t.test('wrong password, unknown user', async (t) => {
    for (const body of [
      { username: 'alice', password: 'wrong' },
      { username: 'mallory', password: 'x' },
    ]) {
      const r = await call(url, '/api/token/', { json: body })
      t.equal(r.status, 401)
      t.strictSame(r.body, { detail: 'No active account found with the given credentials' })
      t.equal(r.headers.get('www-authenticate'), CHALLENGE)
    }
  })
  t.test('inactive user', async (t) => {
    const bob = await createUser(store, 'bob')
    await store.setActive(bob.id, false)
    const r = await call(url, '/api/token/', { json: { username: 'bob', password: PASSWORD } })
    t.equal(r.status, 401)
    t.strictSame(r.body, { detail: 'No active account found with the given credentials' })
  })
  t.test('missing fields: one key per missing field', async (t) => {
    let r = await call(url, '/api/token/', { json: { username: 'alice' } })
    t.equal(r.status, 400)
    t.strictSame(r.body, { password: ['This field is required.'] })
    r = await call(url, '/api/token/', { json: {} })
    t.equal(r.status, 400)
    t.strictSame(r.body, { username: ['This field is required.'], password: ['This field is required.'] })
    r = await call(url, '/api/token/', { form: { username: 'alice' } })
    t.strictSame(r.body, { password: ['This field is required.'] })
  })
  t.test('blank and wrongly typed fields', async (t) => {
    let r = await call(url, '/api/token/', { json: { username: '', password: 'x' } })
    t.equal(r.status, 400)
    t.strictSame(r.body, { username: ['This field may not be blank.'] })
    r = await call(url, '/api/token/', { json: { username: 42, password: ['x'] } })
    t.equal(r.status, 400)
    t.strictSame(r.body, { username: ['Not a valid string.'], password: ['Not a valid string.'] })
    r = await call(url, '/api/token/', { json: ['alice'] })
    t.equal(r.status, 400)
    t.ok(r.body.non_field_errors)
  })
  t.test('malformed JSON', async (t) => {
    const r = await call(url, '/api/token/', { raw: '{"username":' })
    t.equal(r.status, 400)
    t.match(r.body.detail, /^JSON parse error - /)
    t.notMatch(r.text, /at .*\.(js|ts):\d+/, 'no stack trace')
  })
  t.test('empty body with a JSON content type', async (t) => {
    const r = await call(url, '/api/token/', { raw: '' })
    t.equal(r.status, 400)
    t.match(r.body.detail, /^JSON parse error - /)
  })
  t.test('unsupported media type', async (t) => {
    const r = await call(url, '/api/token/', { raw: 'username=alice', contentType: 'text/plain' })
    t.equal(r.status, 415)
    t.strictSame(r.body, { detail: 'Unsupported media type "text/plain" in request.' })
  })
  t.test('wrong method: 405 with Allow', async (t) => {
    for (const path of ['/api/token/', '/api/token']) {
      const r = await call(url, path)
      t.equal(r.status, 405)
      t.strictSame(r.body, { detail: 'Method "GET" not allowed.' })
      t.equal(r.headers.get('allow'), 'POST, OPTIONS')
    }
    const r = await call(url, '/api/me/', { method: 'DELETE' })
    t.equal(r.status, 405)
    t.strictSame(r.body, { detail: 'Method "DELETE" not allowed.' })
    t.equal(r.headers.get('allow'), 'GET, HEAD, OPTIONS')
  })
  t.test('body over the limit: 413 JSON', async (t) => {
    const r = await call(url, '/api/token/', { json: { username: 'alice', password: 'x'.repeat(70_000) } })
    t.equal(r.status, 413)
    t.strictSame(r.body, { detail: 'Request body is too large.' })
  })
})

t.test('refresh with rotation', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const pair = await login(url)

  const r1 = await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })
  t.equal(r1.status, 200)
  t.same(Object.keys(r1.body).sort(), ['access', 'refresh'])
  t.not(r1.body.refresh, pair.refresh)
  t.equal((await call(url, '/api/me/', { token: r1.body.access })).status, 200, 'new access token works')

  const again = await call(url, '/api/token/refresh', { json: { refresh: pair.refresh } })
  t.equal(again.status, 401, 'rotated token is blacklisted')
  t.strictSame(again.body, blacklisted)
  t.equal(again.headers.get('www-authenticate'), CHALLENGE)

  // Within the grace window, reuse is refused without ending the session.
  t.equal((await call(url, '/api/token/refresh/', { json: { refresh: r1.body.refresh } })).status, 200)

  const access = await call(url, '/api/token/refresh/', { json: { refresh: pair.access } })
  t.equal(access.status, 401)
  t.strictSame(access.body, wrongType)

  const garbage = await call(url, '/api/token/refresh/', { json: { refresh: 'garbage' } })
  t.equal(garbage.status, 401)
  t.strictSame(garbage.body, invalid)

  const missing = await call(url, '/api/token/refresh/', { json: {} })
  t.equal(missing.status, 400)
  t.strictSame(missing.body, { refresh: ['This field is required.'] })

  const form = await login(url)
  const viaForm = await call(url, '/api/token/refresh/', { form: { refresh: form.refresh } })
  t.equal(viaForm.status, 200, 'form-encoded refresh')
})

t.test('refresh without rotation returns only an access token', async (t) => {
  const { url, store } = await startApp(t, { ROTATE_REFRESH_TOKENS: 'false' })
  await createUser(store)
  const pair = await login(url)
  for (let i = 0; i < 2; i++) {
    const r = await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })
    t.equal(r.status, 200)
    t.same(Object.keys(r.body), ['access'])
  }
})

t.test('reuse detection revokes the whole token family', async (t) => {
  const { url, store } = await startApp(t, { REFRESH_REUSE_GRACE: '0' })
  await createUser(store)
  const pair = await login(url)
  const rotated = (await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })).body
  // The thief replays the old token: refused, and the family ends.
  const replay = await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })
  t.equal(replay.status, 401)
  t.strictSame(replay.body, blacklisted)
  // The legitimate holder's newer tokens are dead too.
  const next = await call(url, '/api/token/refresh/', { json: { refresh: rotated.refresh } })
  t.equal(next.status, 401)
  t.strictSame(next.body, blacklisted)
  const me = await call(url, '/api/me/', { token: rotated.access })
  t.equal(me.status, 401)
  t.strictSame(me.body, notValidForAny('Token is blacklisted'))
  // Other logins of the same user are untouched.
  const other = await login(url)
  t.equal((await call(url, '/api/me/', { token: other.access })).status, 200)
})

t.test('verify', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const pair = await login(url)
  t.strictSame((await call(url, '/api/token/verify/', { json: { token: pair.access } })).body, {})
  const ok = await call(url, '/api/token/verify', { json: { token: pair.refresh } })
  t.equal(ok.status, 200)
  t.strictSame(ok.body, {})

  const [h, p, s] = pair.access.split('.') as [string, string, string]
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, user_id: '2' })).toString('base64url')}.${s}`
  const expired = await forge({ exp: Math.floor(Date.now() / 1000) - 10 })
  for (const token of [tampered, expired, 'not.a.jwt']) {
    const r = await call(url, '/api/token/verify/', { json: { token } })
    t.equal(r.status, 401)
    t.strictSame(r.body, invalid)
    t.equal(r.headers.get('www-authenticate'), CHALLENGE)
  }
  t.strictSame((await call(url, '/api/token/verify/', { json: {} })).body, { token: ['This field is required.'] })

  // Deliberate difference (row 21): a blacklisted token is a 401, not DRF's 400.
  await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })
  const bl = await call(url, '/api/token/verify/', { json: { token: pair.refresh } })
  t.equal(bl.status, 401)
  t.strictSame(bl.body, blacklisted)
})

t.test('blacklist (logout) also ends the session’s access tokens', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const pair = await login(url)
  const other = await login(url)
  const r = await call(url, '/api/token/blacklist/', { json: { refresh: pair.refresh } })
  t.equal(r.status, 200)
  t.strictSame(r.body, {})
  const again = await call(url, '/api/token/blacklist/', { json: { refresh: pair.refresh } })
  t.equal(again.status, 401)
  t.strictSame(again.body, blacklisted)
  const access = await call(url, '/api/token/blacklist/', { json: { refresh: pair.access } })
  t.equal(access.status, 401)
  t.strictSame(access.body, wrongType)
  t.strictSame((await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })).body, blacklisted)
  // Deliberate difference (row 27): the access token of the logged-out session stops working.
  const me = await call(url, '/api/me/', { token: pair.access })
  t.equal(me.status, 401)
  t.strictSame(me.body, notValidForAny('Token is blacklisted'))
  t.strictSame((await call(url, '/api/token/verify/', { json: { token: pair.access } })).body, blacklisted)
  t.equal((await call(url, '/api/me/', { token: other.access })).status, 200, 'other sessions live on')
})

t.test('GET /api/me/ authentication failures', async (t) => {
  const { url, store } = await startApp(t)
  const alice = await createUser(store)
  const pair = await login(url)
  const cases: Array<[string, Record<string, string>, number, unknown]> = [
    ['no header', {}, 401, { detail: 'Authentication credentials were not provided.' }],
    ['other scheme', { authorization: `Token ${pair.access}` }, 401, { detail: 'Authentication credentials were not provided.' }],
    [
      'Bearer without token',
      { authorization: 'Bearer' },
      401,
      { detail: 'Authorization header must contain two space-delimited values', code: 'bad_authorization_header' },
    ],
    [
      'three parts',
      { authorization: `Bearer ${pair.access} extra` },
      401,
      { detail: 'Authorization header must contain two space-delimited values', code: 'bad_authorization_header' },
    ],
    ['garbage', { authorization: 'Bearer garbage' }, 401, notValidForAny('Token is invalid or expired')],
    ['refresh token', { authorization: `Bearer ${pair.refresh}` }, 401, notValidForAny('Token has wrong type')],
  ]
  for (const [name, headers, status, body] of cases) {
    const r = await call(url, '/api/me/', { headers })
    t.equal(r.status, status, name)
    t.strictSame(r.body, body, name)
    t.equal(r.headers.get('www-authenticate'), CHALLENGE, name)
  }
  const expired = await call(url, '/api/me/', { token: await forge({ exp: Math.floor(Date.now() / 1000) - 1 }) })
  t.strictSame(expired.body, notValidForAny('Token is invalid or expired'))
  const ghost = await call(url, '/api/me', { token: await forge({ user_id: '999' }) })
  t.equal(ghost.status, 401)
  t.strictSame(ghost.body, { detail: 'User not found', code: 'user_not_found' })

  t.strictSame((await call(url, '/api/me', { token: pair.access })).body, { id: alice.id, username: 'alice' }, 'no trailing slash')
  await store.deleteUser(alice.id)
  // Deletion revokes the user's sessions: like a logout elsewhere, every process refuses the
  // token within the revocation delay (the user itself may be cached until then).
  await new Promise((r) => setTimeout(r, 600))
  const deleted = await call(url, '/api/me/', { token: pair.access })
  t.equal(deleted.status, 401)
  t.strictSame(deleted.body, notValidForAny('Token is blacklisted'))
})

t.test('unknown routes, health, readiness, headers', async (t) => {
  const { url, store } = await startApp(t)
  const r = await call(url, '/api/nope/')
  t.equal(r.status, 404)
  t.strictSame(r.body, { detail: 'Not found.' })
  t.strictSame((await call(url, '/healthz')).body, { status: 'ok' })
  const ready = await call(url, '/readyz')
  t.equal(ready.status, 200)
  t.match(ready.headers.get('x-request-id'), /^[0-9a-f]{12}-[0-9a-z]+$/)
  t.not((await call(url, '/healthz')).headers.get('x-request-id'), ready.headers.get('x-request-id'), 'a new id per request')
  t.equal(ready.headers.get('x-content-type-options'), 'nosniff')
  t.match(ready.headers.get('content-security-policy'), /^default-src 'none';/)
  t.equal(ready.headers.get('x-frame-options'), 'DENY')
  t.equal(ready.headers.get('content-security-policy'), "default-src 'none';frame-ancestors 'none'")
  t.equal(ready.headers.get('cache-control'), 'no-store', 'API answers are not cached')
  t.notOk(ready.headers.get('x-xss-protection'), 'no HTML-only headers')
  t.notOk(ready.headers.get('strict-transport-security'), 'HSTS is left to the TLS terminator')
  const kept = await call(url, '/healthz', { headers: { 'x-request-id': 'from-nginx-123' } })
  t.equal(kept.headers.get('x-request-id'), 'from-nginx-123', 'a proxy request id is kept')
  const jwks = await call(url, '/.well-known/jwks.json')
  t.strictSame(jwks.body, { keys: [] }, 'no public keys for HS256')
  t.equal(jwks.headers.get('cache-control'), 'public, max-age=300', 'the public JWKS overrides no-store: verifiers may cache it')
  await store.close()
  // Probe results are cached for 500 ms: readiness turns within a second.
  let down = await call(url, '/readyz')
  for (const until = Date.now() + 1000; down.status !== 503 && Date.now() < until; ) down = await call(url, '/readyz')
  t.equal(down.status, 503)
  t.equal(down.headers.get('retry-after'), '5')
  t.equal(down.body.status, 'unavailable')
  t.notMatch(down.text, /database|sqlite|Error:/i, 'no internal message')
})

t.test('OpenAPI document covers every route with schemas', async (t) => {
  const { url } = await startApp(t)
  const doc = (await call(url, '/docs/json')).body
  t.equal(doc.openapi.slice(0, 2), '3.')
  for (const path of ['/api/token/', '/api/token/refresh/', '/api/token/verify/', '/api/token/blacklist/', '/api/password/change/']) {
    t.ok(doc.paths[path]?.post?.requestBody, `${path} has a request schema`)
    t.ok(doc.paths[path]?.post?.responses?.['200'], `${path} has a response schema`)
  }
  for (const path of ['/api/me/', '/healthz', '/readyz', '/.well-known/jwks.json']) {
    t.ok(doc.paths[path]?.get?.responses?.['200'], `${path} has a response schema`)
  }
  const ui = await fetch(`${url}/docs/`)
  t.equal(ui.status, 200)
  t.match(await ui.text(), /swagger/i)
})
