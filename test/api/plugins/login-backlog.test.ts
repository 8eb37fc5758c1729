// Login backlog: a storm of logins larger than the hash queue gets every connection answered —
// 200/401 for those that fit, 503 + Retry-After at once for the rest — none left hanging.
import t from 'tap'
import http from 'node:http'
import { hashPassword, OWASP_ARGON2 } from '../../../src/api/auth/passwords.js'
import { PASSWORD, startApp } from '../../helpers/app.js'

interface Outcome {
  status: number | 'no answer'
  retryAfter?: string
  detail?: string
  at: number
}

/** One login on its own new connection; 'no answer' when the connection ends without a response. */
function loginOnNewConnection(url: string, username: string, password: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request(`${url}/api/token/`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => {
        let detail: string | undefined
        try {
          detail = (JSON.parse(text) as { detail?: string }).detail
        } catch {}
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], ...(detail ? { detail } : {}), at: Date.now() })
      })
      res.on('error', () => resolve({ status: 'no answer', at: Date.now() }))
    })
    req.setTimeout(30_000, () => req.destroy())
    req.on('error', () => resolve({ status: 'no answer', at: Date.now() }))
    req.end(JSON.stringify({ username, password }))
  })
}

t.test('logins beyond the hash queue are answered 503 + Retry-After at once; every connection is answered', async (t) => {
  const CONCURRENCY = 1
  const QUEUE = 3
  const N = 60
  // The real cost, one hash at a time: the storm outlasts many event-loop turns.
  const { url, store, app, logs } = await startApp(t, {
    LOGIN_RATE_LIMIT_IP: '0',
    LOGIN_RATE_LIMIT_USER: '0',
    ARGON2_MEMORY_COST: String(OWASP_ARGON2.memoryKiB),
    ARGON2_TIME_COST: String(OWASP_ARGON2.iterations),
    PASSWORD_HASH_CONCURRENCY: String(CONCURRENCY),
    PASSWORD_HASH_QUEUE: String(QUEUE),
    PASSWORD_HASH_MAX_WAIT_MS: '0', // the queue's length alone bounds it here
  })
  await store.createUser('alice', await hashPassword(PASSWORD))
  // Right and wrong passwords, and unknown users: all take a hash, so all queue alike.
  const attempts = Array.from({ length: N }, (_, i): [string, string] =>
    i % 3 === 2 ? ['alice', 'wrong-password'] : i % 3 === 1 ? [`nobody-${i}`, PASSWORD] : ['alice', PASSWORD],
  )
  const outcomes = await Promise.all(attempts.map(([u, p]) => loginOnNewConnection(url, u, p)))

  const count = (s: Outcome['status']) => outcomes.filter((o) => o.status === s).length
  t.equal(count('no answer'), 0, 'no connection left without an answer')
  t.equal(count(200) + count(401) + count(503), N, `only 200, 401 and 503 (${JSON.stringify(outcomes.map((o) => o.status))})`)
  const shed = outcomes.filter((o) => o.status === 503)
  const served = outcomes.filter((o) => o.status === 200 || o.status === 401)
  t.ok(shed.length > 0, `${shed.length} logins shed`)
  t.ok(served.length >= CONCURRENCY + QUEUE, `${served.length} logins served (at least the running one and the queued ones)`)
  t.ok(
    shed.every((o) => o.retryAfter === '1' && o.detail === 'Service temporarily unavailable, try again later.'),
    'every 503 says when to retry',
  )
  t.ok(Math.min(...shed.map((o) => o.at)) < Math.max(...served.map((o) => o.at)), 'refusals went out while accepted logins still hashed')
  t.equal(app.passwords.stats.refused, shed.length, 'each 503 is a hash the queue refused')
  t.same(app.passwords.load, { running: 0, waiting: 0 }, 'the queue drained')
  // Shedding is heard without a scrape: counted for /metrics, and one warning (not one per refusal).
  t.same(app.metrics.loadShed, { password_hash: shed.length, event_loop: 0 }, 'each refusal counted as password_hash shedding')
  const warned = logs.flatMap((l) => l.split('\n')).filter((l) => l.includes('load shedding'))
  t.equal(warned.length, 1, 'one warning line for the storm so far (the rest are counted for the next)')
  t.match(JSON.parse(warned[0] ?? '{}'), { level: 40, refused: { password_hash: 1, event_loop: 0 } }, 'it counts what was refused')

  // Once the storm is over, logins are served again.
  const after = await loginOnNewConnection(url, 'alice', PASSWORD)
  t.equal(after.status, 200)
})
