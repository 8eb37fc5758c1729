// The per-connection state machines of loadtest/scenarios.cjs, driven by a scripted server:
// refresh never presents a token twice, session walks login → me × n → refresh → logout, a failed
// step starts over at login, and a 2xx with the wrong body is reported as a mismatch.
import t from 'tap'
import { createRequire } from 'node:module'
import { SCENARIOS_FILE, SCENARIO_NAMES } from '../../../src/bench/loadtest/scenarios.js'

interface Step {
  method: string
  path: string
  body?: string
  headers: Record<string, string>
}
const mod = createRequire(import.meta.url)(SCENARIOS_FILE) as {
  machine(ctx: object, n: number): { next(): Step; answer(status: number, body: string): void }
  verifyBody(body: string): boolean
  collectSessions(): { stop(): Promise<number[]> }
}

let issued = 0
const pair = () => JSON.stringify({ refresh: `r${++issued}`, access: `a${issued}` })

t.same(SCENARIO_NAMES, ['healthz', 'me', 'verify', 'login', 'refresh', 'session'])

t.test('refresh logs in once, then rotates its own chain', async (t) => {
  const m = mod.machine({ scenario: 'refresh', users: ['u1', 'u2'], password: 'pw' }, 1)
  const login = m.next()
  t.match(login, { method: 'POST', path: '/api/token/' })
  t.same(JSON.parse(login.body!), { username: 'u2', password: 'pw' }, 'connection 1 uses the second user')
  m.answer(200, pair())
  t.ok(mod.verifyBody(''), 'a token pair is the expected body')
  const sent: string[] = []
  for (let i = 0; i < 5; i++) {
    const step = m.next()
    t.equal(step.path, '/api/token/refresh/')
    sent.push(JSON.parse(step.body!).refresh)
    m.answer(200, pair())
  }
  t.equal(new Set(sent).size, sent.length, 'no refresh token is presented twice')
  t.same(
    sent.slice(1),
    sent.slice(1).map((_, i) => `r${Number(sent[0]!.slice(1)) + i + 1}`),
    'each is the one the previous answer returned',
  )
  m.next()
  m.answer(401, '{"detail":"Token is blacklisted","code":"token_not_valid"}')
  t.equal(m.next().path, '/api/token/', 'after a failure the connection logs in again')
})

t.test('session: login, me × 3, refresh, logout, again', async (t) => {
  const m = mod.machine({ scenario: 'session', users: ['u1'], password: 'pw', meCalls: 3 }, 0)
  const paths: string[] = []
  let lastPair = { refresh: '', access: '' }
  for (let i = 0; i < 12; i++) {
    const step = m.next()
    paths.push(step.path)
    if (step.path === '/api/me/') {
      t.equal(step.headers.authorization, `Bearer ${lastPair.access}`)
      m.answer(200, '{"id":1,"username":"u1"}')
    } else if (step.path === '/api/token/blacklist/') {
      t.same(JSON.parse(step.body!), { refresh: lastPair.refresh }, 'logs out the newest refresh token')
      m.answer(200, '{}')
    } else {
      if (step.path === '/api/token/refresh/') t.same(JSON.parse(step.body!), { refresh: lastPair.refresh })
      const body = pair()
      lastPair = JSON.parse(body)
      m.answer(200, body)
    }
    t.ok(mod.verifyBody(''), `step ${i} body accepted`)
  }
  t.same(paths, [
    '/api/token/',
    '/api/me/',
    '/api/me/',
    '/api/me/',
    '/api/token/refresh/',
    '/api/token/blacklist/',
    '/api/token/',
    '/api/me/',
    '/api/me/',
    '/api/me/',
    '/api/token/refresh/',
    '/api/token/blacklist/',
  ])
})

t.test('each completed session reports its whole time, login sent → logout answered; a broken one none', async (t) => {
  const sessions = mod.collectSessions()
  const m = mod.machine({ scenario: 'session', users: ['u1'], password: 'pw', meCalls: 1 }, 0)
  const answer = (path: string) => (path === '/api/me/' ? '{"id":1}' : path === '/api/token/blacklist/' ? '{}' : pair())
  for (let i = 0; i < 8; i++) m.answer(200, answer(m.next().path)) // two whole sessions of 4 steps
  m.next()
  m.answer(500, 'oops') // a third one fails at login: not a session
  const other = mod.machine({ scenario: 'me', tokens: ['a'] }, 1)
  other.answer(200, answer(other.next().path))
  const times = await sessions.stop()
  t.equal(times.length, 2)
  for (const ms of times) t.ok(ms >= 0 && ms < 1000, `${ms} ms`)
  t.equal(await sessions.stop(), times, 'stop is idempotent')
})

t.test('a 2xx with the wrong body is a mismatch, and the session starts over', async (t) => {
  const m = mod.machine({ scenario: 'session', users: ['u1'], password: 'pw', meCalls: 2 }, 0)
  m.next()
  m.answer(200, pair())
  m.next()
  m.answer(200, '<html>maintenance</html>')
  t.equal(mod.verifyBody(''), false, 'counted as a mismatch')
  t.equal(m.next().path, '/api/token/')
})

t.test('plain scenarios check their exact body', async (t) => {
  const health = mod.machine({ scenario: 'healthz' }, 0)
  t.same(health.next(), { method: 'GET', path: '/healthz', headers: {} })
  health.answer(200, '{"status":"ok"}')
  t.ok(mod.verifyBody(''))
  health.answer(200, 'ok')
  t.notOk(mod.verifyBody(''))
  const me = mod.machine({ scenario: 'me', tokens: ['t0', 't1'] }, 3)
  t.equal(me.next().headers.authorization, 'Bearer t1', 'connections spread over the tokens')
  const verify = mod.machine({ scenario: 'verify', tokens: ['t0'] }, 0)
  t.same(JSON.parse(verify.next().body!), { token: 't0' })
  verify.answer(401, '{"detail":"x"}')
  t.ok(mod.verifyBody(''), 'a wrong status is counted as non-2xx, not twice as a mismatch')
  t.throws(() => mod.machine({ scenario: 'nope' }, 0), /unknown scenario "nope"/)
})
