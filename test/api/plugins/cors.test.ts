// CORS as django-cors-headers answers it (shared/reference/simplejwt-sliding-and-cors.md, rows
// cors.*), over a real listening server: exact origins only, `null` only when listed, Vary: Origin,
// preflights answered without the store; closed by default. The browser's side of it is in
// test/serial/cors-browser.test.ts.
import t from 'tap'
import { loadConfig } from '../../../src/api/config.js'
import { call, createUser, PASSWORD, startApp } from '../../helpers/app.js'

const APP = 'http://app.local:5173'
const preflight = (origin: string, extra: Record<string, string> = {}) => ({
  method: 'OPTIONS',
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type', ...extra },
})
const corsHeaders = (h: Headers) => [...h.keys()].filter((k) => k.startsWith('access-control-')).sort()

t.test('an allowed origin: preflight, login and me carry its exact origin', async (t) => {
  const { url, store } = await startApp(t, { CORS_ALLOWED_ORIGINS: `${APP}, https://admin.example.com` })
  await createUser(store)
  let r = await call(url, '/api/token/', preflight(APP))
  t.equal(r.status, 200)
  t.equal(r.text, '')
  t.equal(r.headers.get('access-control-allow-origin'), APP)
  t.equal(r.headers.get('access-control-allow-methods'), 'DELETE, GET, OPTIONS, PATCH, POST, PUT')
  t.equal(
    r.headers.get('access-control-allow-headers'),
    'accept, accept-encoding, authorization, content-type, dnt, origin, user-agent, x-csrftoken, x-requested-with',
  )
  t.equal(r.headers.get('access-control-max-age'), '86400')
  t.equal(r.headers.get('vary'), 'Origin')
  t.notOk(r.headers.get('access-control-allow-credentials'), 'no credentials unless CORS_ALLOW_CREDENTIALS')

  r = await call(url, '/api/token/', { json: { username: 'alice', password: PASSWORD }, headers: { origin: APP } })
  t.equal(r.status, 200)
  t.equal(r.headers.get('access-control-allow-origin'), APP)
  t.match(r.headers.get('vary'), /Origin/)
  const me = await call(url, '/api/me/', { token: r.body.access, headers: { origin: APP } })
  t.equal(me.status, 200)
  t.equal(me.headers.get('access-control-allow-origin'), APP)
  // Errors are readable by the page too (401, 405), so it can show what went wrong.
  r = await call(url, '/api/token/', { json: { username: 'alice', password: 'wrong' }, headers: { origin: APP } })
  t.equal(r.status, 401)
  t.equal(r.headers.get('access-control-allow-origin'), APP)
  r = await call(url, '/api/token/', { headers: { origin: APP } })
  t.equal(r.status, 405)
  t.equal(r.headers.get('access-control-allow-origin'), APP)
})

t.test('other origins, near misses and null get no Access-Control-* header at all', async (t) => {
  const { url, store } = await startApp(t, { CORS_ALLOWED_ORIGINS: APP, CORS_ALLOWED_ORIGIN_REGEXES: 'https://[a-z]+\\.example\\.com' })
  await createUser(store)
  for (const origin of [
    'https://evil.example',
    'null',
    'http://app.local:5174',
    'https://app.local:5173',
    'http://app.local',
    `${APP}.evil.test`,
    'http://APP.local:5173',
    'https://shop.example.com.evil.test',
    'https://a.b.example.com',
  ]) {
    const r = await call(url, '/api/token/', preflight(origin))
    t.equal(r.status, 200, `${origin}: preflight answered, as django-cors-headers does`)
    t.strictSame(corsHeaders(r.headers), [], `${origin}: no Access-Control-* header`)
    t.equal(r.headers.get('vary'), 'Origin')
    t.equal(r.headers.get('allow'), 'POST, OPTIONS')
  }
  // The server still runs a denied origin's simple request (row cors.simple.denied); only the
  // browser hides the answer.
  const r = await call(url, '/api/token/', { json: { username: 'alice', password: PASSWORD }, headers: { origin: 'https://evil.example' } })
  t.equal(r.status, 200)
  t.strictSame(corsHeaders(r.headers), [])
  t.match(r.headers.get('vary'), /Origin/)
  // A regex must match the whole origin.
  const ok = await call(url, '/api/token/', preflight('https://shop.example.com'))
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://shop.example.com')
})

t.test('null only when listed; * means any origin but never null, and no credentials', async (t) => {
  const listed = await startApp(t, { CORS_ALLOWED_ORIGINS: 'null' })
  t.equal((await call(listed.url, '/api/token/', preflight('null'))).headers.get('access-control-allow-origin'), 'null')
  const any = await startApp(t, { CORS_ALLOWED_ORIGINS: '*' })
  t.equal((await call(any.url, '/api/token/', preflight('https://anything.example'))).headers.get('access-control-allow-origin'), '*')
  t.strictSame(corsHeaders((await call(any.url, '/api/token/', preflight('null'))).headers), [])
  const creds = await startApp(t, { CORS_ALLOWED_ORIGINS: APP, CORS_ALLOW_CREDENTIALS: 'true', CORS_PREFLIGHT_MAX_AGE: '600' })
  const r = await call(creds.url, '/api/token/', preflight(APP))
  t.equal(r.headers.get('access-control-allow-credentials'), 'true')
  t.equal(r.headers.get('access-control-max-age'), '600')
})

t.test('preflights never touch the store', async (t) => {
  const { url, store } = await startApp(t, { CORS_ALLOWED_ORIGINS: APP, LOG_LEVEL: 'silent' })
  await store.close() // every store call now throws
  const r = await call(url, '/api/token/', preflight(APP))
  t.equal(r.status, 200)
  t.equal(r.headers.get('access-control-allow-origin'), APP)
  const denied = await call(
    url,
    '/api/me/',
    preflight('https://evil.example', { 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }),
  )
  t.equal(denied.status, 200)
  const login = await call(url, '/api/token/', { json: { username: 'alice', password: PASSWORD }, headers: { origin: APP } })
  t.ok(login.status >= 500, `while a request that needs the store fails (${login.status})`)
})

t.test('closed by default: no CORS headers, no Vary; OPTIONS answered with a true Allow', async (t) => {
  const { url } = await startApp(t)
  const r = await call(url, '/api/token/', preflight(APP))
  t.equal(r.status, 200)
  t.strictSame(corsHeaders(r.headers), [])
  t.equal(r.headers.get('vary'), null)
  t.equal(r.headers.get('allow'), 'POST, OPTIONS', 'OPTIONS is listed and answered')
  const plain = await call(url, '/api/me/', { method: 'OPTIONS' })
  t.equal(plain.status, 200)
  t.equal(plain.headers.get('allow'), 'GET, HEAD, OPTIONS')
  t.equal((await call(url, '/api/nope/', { method: 'OPTIONS' })).status, 404)
})

t.test('settings are checked at start', async (t) => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ CORS_ALLOWED_ORIGINS: 'https://app.example.com/' }, /CORS_ALLOWED_ORIGINS has "https:\/\/app.example.com\/".*write it as https:\/\/app.example.com$/],
    [{ CORS_ALLOWED_ORIGINS: 'app.example.com' }, /expected an origin such as https:\/\/app.example.com/],
    [{ CORS_ALLOWED_ORIGINS: 'https://App.example.com' }, /write it as https:\/\/app.example.com/],
    [{ CORS_ALLOWED_ORIGINS: '*, https://a.example' }, /mixes \*/],
    [{ CORS_ALLOWED_ORIGINS: 'https://app.example.com";' }, /expected an origin/],
    [{ CORS_ALLOWED_ORIGINS: '*', CORS_ALLOW_CREDENTIALS: 'true' }, /cannot be combined with CORS_ALLOW_CREDENTIALS=true/],
    [{ CORS_ALLOWED_ORIGIN_REGEXES: 'https://(' }, /CORS_ALLOWED_ORIGIN_REGEXES has "https:\/\/\(": not a regular expression/],
    [
      { CORS_ALLOWED_ORIGIN_REGEXES: 'https://app\\.example\\.com https?://.*', CORS_ALLOW_CREDENTIALS: 'true' },
      /has "https\?:\/\/\.\*", which matches any origin .* any web site could make credentialed calls/,
    ],
    [{ CORS_PREFLIGHT_MAX_AGE: '-1' }, /CORS_PREFLIGHT_MAX_AGE/],
  ]
  for (const [env, message] of bad) t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  const c = loadConfig({ CORS_ALLOWED_ORIGINS: 'https://a.example.com,http://localhost:5173 null' }).cors
  t.strictSame(c.origins, ['https://a.example.com', 'http://localhost:5173', 'null'])
  t.strictSame(loadConfig({}).cors, { origins: [], originRegexes: [], credentials: false, maxAgeSeconds: 86400 })
})
