// Client input never yields a 5xx: paths that look like route patterns, CONNECT, and user_id
// claims in forms simplejwt would not match.
import t from 'tap'
import { createSecretKey } from 'node:crypto'
import { jwtVerify, SignJWT } from 'jose'
import { call, createUser, login, SIGNING_KEY, startApp } from '../helpers/app.js'
import { rawJson, rawRequest } from '../helpers/raw.js'

const secret = createSecretKey(Buffer.from(SIGNING_KEY))

t.test('paths that look like route patterns get 404/405 JSON, never a 500', async (t) => {
  const { url, logs } = await startApp(t)
  const host = new URL(url).host
  const paths = ['/**', '/*/*', '/api/**', '/docs/**', '/:a(', '/api/*:a', '/api/:a(^(a+)+$)', '/api/me/:id', '/api/token/*', '/:a(b)c/*', '/*', '/api/*/']
  for (const path of paths) {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']) {
      const r = await rawRequest(url, `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\n\r\n`)
      t.ok(r.status === 404 || r.status === 405, `${method} ${path}: ${r.status}`)
      if (method !== 'HEAD') t.ok(typeof (rawJson(r) as { detail?: unknown } | undefined)?.detail === 'string', `${method} ${path}: JSON detail`)
    }
  }
  // The router's own wildcard route still gets its 405 (and its GET still works).
  const docs = await call(url, '/docs/static/whatever.css', { method: 'DELETE' })
  t.equal(docs.status, 405)
  t.equal(docs.headers.get('allow'), 'GET, HEAD, OPTIONS')
  t.notOk(
    logs.some((l) => l.includes('request failed')),
    'no server error logged',
  )
})

t.test('CONNECT gets a 405 JSON answer, not a closed connection', async (t) => {
  const { url } = await startApp(t)
  const host = new URL(url).host
  for (const target of ['example.com:443', `${host}`, '/api/me/']) {
    const r = await rawRequest(url, `CONNECT ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
    t.equal(r.status, 405, `CONNECT ${target}`)
    t.strictSame(rawJson(r), { detail: 'Method "CONNECT" not allowed.' })
  }
  t.equal((await call(url, '/healthz')).status, 200, 'server alive after')
})

t.test('user_id claims: only an integer or its exact decimal string names a user', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const pair = await login(url)
  const { payload } = await jwtVerify(pair.access, secret)
  const sign = (user_id: unknown) => new SignJWT({ ...payload, user_id }).setProtectedHeader({ alg: 'HS256' }).sign(secret)
  for (const good of [1, '1']) {
    const r = await call(url, '/api/me/', { token: await sign(good) })
    t.equal(r.status, 200, `user_id ${JSON.stringify(good)} is user 1`)
  }
  for (const bad of ['1.0', ' 1 ', '0x1', '1e0', '01', '+1', '1 ', '', '١', 1.5, '9007199254740993', '-0']) {
    const r = await call(url, '/api/me/', { token: await sign(bad) })
    t.equal(r.status, 401, `user_id ${JSON.stringify(bad)}: 401`)
    t.equal(r.body.code, 'user_not_found', `user_id ${JSON.stringify(bad)}: user_not_found`)
  }
  // The refresh endpoint looks the user up the same way.
  const { payload: refreshPayload } = await jwtVerify(pair.refresh, secret)
  const refresh = await new SignJWT({ ...refreshPayload, user_id: '1.0' }).setProtectedHeader({ alg: 'HS256' }).sign(secret)
  t.equal((await call(url, '/api/token/refresh/', { json: { refresh } })).status, 401, 'refresh with user_id "1.0": 401')
})
