// CORS through a real nginx (standalone, temp prefix, free ports) in front of the real API:
// preflights pass through to the app and are never rate-limited; the errors nginx answers itself
// (429 here, 502 with no app) carry Access-Control-Allow-Origin for the app's allowed origins only,
// when rendered with the same origins.
import t from 'tap'
import { startNginx, type NginxStack } from '../../src/bench/stacks/nginx.js'
import { freePort } from '../../src/lib/process.js'
import { createUser, PASSWORD, startApp } from '../helpers/app.js'
import { nginxOrSkip, request } from '../helpers/nginx.js'

const bin = nginxOrSkip(t)
const APP = 'http://app.local:5173'
const EVIL = 'https://evil.example'

async function nginx(o: Parameters<typeof startNginx>[0]): Promise<NginxStack> {
  const stack = await startNginx(o)
  t.teardown(() => stack.stop())
  return stack
}

if (bin) {
  // The app's own login limits are off: every 429 below is nginx's.
  const app = await startApp(t, { CORS_ALLOWED_ORIGINS: APP, REGISTRATION_ENABLED: 'true', LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0' })
  await createUser(app.store, 'alice', PASSWORD)
  const edge = await nginx({ upstreams: [new URL(app.url).host], rateLimit: { rate: '1r/m', burst: 2 }, cors: { origins: [APP] } })

  t.test('preflights pass through to the app, uncounted by the rate limit', async (t) => {
    const preflights = await Promise.all(
      Array.from({ length: 12 }, () =>
        request(`${edge.httpUrl}/api/token/`, {
          method: 'OPTIONS',
          localAddress: '127.0.0.5',
          headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
        }),
      ),
    )
    t.strictSame(
      preflights.map((r) => r.status),
      Array(12).fill(200),
      '12 preflights at once with burst 2: none refused',
    )
    for (const r of preflights) {
      t.equal(r.headers['access-control-allow-origin'], APP)
      t.equal(r.headers['access-control-allow-methods'], 'DELETE, GET, OPTIONS, PATCH, POST, PUT', "the app's answer")
    }
    const login = await request(`${edge.httpUrl}/api/token/`, {
      localAddress: '127.0.0.5',
      headers: { origin: APP },
      json: { username: 'alice', password: PASSWORD },
    })
    t.equal(login.status, 200, 'and the login after them still has its budget')
    t.equal(login.headers['access-control-allow-origin'], APP)
  })

  t.test("nginx's own 429 is readable by an allowed origin only", async (t) => {
    const burst = async (origin: string, from: string) =>
      Promise.all(
        Array.from({ length: 6 }, () =>
          request(`${edge.httpUrl}/api/token/`, { localAddress: from, headers: { origin }, json: { username: 'alice', password: 'wrong' } }),
        ),
      )
    const allowed = (await burst(APP, '127.0.0.6')).filter((r) => r.status === 429)
    t.ok(allowed.length >= 1, `${allowed.length} answered 429 by nginx`)
    for (const r of allowed) {
      t.strictSame(r.body, { detail: 'Request was throttled. Expected available in 60 seconds.' })
      t.equal(r.headers['access-control-allow-origin'], APP)
      t.equal(r.headers.vary, 'Origin')
      t.equal(r.headers['x-content-type-options'], 'nosniff', 'the security set stays')
      t.ok(r.headers['retry-after'])
    }
    const denied = (await burst(EVIL, '127.0.0.7')).filter((r) => r.status === 429)
    t.ok(denied.length >= 1)
    for (const r of denied) t.notOk(r.headers['access-control-allow-origin'], 'no header for another origin')
  })

  t.test('sign-up is behind the same brake as login', async (t) => {
    const burst = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        request(`${edge.httpUrl}/api/register/`, { localAddress: '127.0.0.8', json: { username: `u${i}`, password: PASSWORD } }),
      ),
    )
    t.ok(burst.filter((r) => r.status === 429).length >= 1, `429 from nginx (${burst.map((r) => r.status).join(' ')})`)
  })

  t.test("nginx's own 502 (no app) carries the header for an allowed origin", async (t) => {
    const nowhere = await nginx({ upstreams: [`127.0.0.1:${await freePort()}`], rateLimit: false, cors: { origins: [APP] } })
    const r = await request(`${nowhere.httpUrl}/api/me/`, { headers: { origin: APP } })
    t.equal(r.status, 502)
    t.equal(r.headers['access-control-allow-origin'], APP)
    const other = await request(`${nowhere.httpUrl}/api/me/`, { headers: { origin: 'null' } })
    t.equal(other.status, 502)
    t.notOk(other.headers['access-control-allow-origin'], 'null is not listed')
  })

  t.test('rendered without origins: no CORS header from nginx', async (t) => {
    const closed = await nginx({ upstreams: [`127.0.0.1:${await freePort()}`], rateLimit: false })
    const r = await request(`${closed.httpUrl}/api/me/`, { headers: { origin: APP } })
    t.equal(r.status, 502)
    t.notOk(r.headers['access-control-allow-origin'])
    t.notOk(r.headers.vary)
  })
}
