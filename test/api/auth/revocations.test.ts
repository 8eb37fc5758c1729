// Revocations reach every process: two app instances over one SQLite file stand for two pm2
// workers (or two hosts on one database). A session ended on instance A must be refused by
// instance B within the revocation delay, without B ever being told directly.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { call, createUser, login, PASSWORD, startApp, type TestApp } from '../../helpers/app.js'

const POLL_MS = 50
/** Far more than the delay (one poll interval), so a busy machine cannot fail it; without the poll B never sees the revocation at all. */
const DEADLINE_MS = 5_000
const blacklisted = {
  detail: 'Given token not valid for any token type',
  code: 'token_not_valid',
  messages: [{ token_class: 'AccessToken', token_type: 'access', message: 'Token is blacklisted' }],
}

async function twoInstances(t: Test): Promise<[TestApp, TestApp]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-shared-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { REVOCATION_POLL_INTERVAL: `${POLL_MS}ms` }
  const a = await startApp(t, env, { dataDir })
  const b = await startApp(t, env, { dataDir })
  await createUser(a.store)
  return [a, b]
}

/** Asks B for /api/me/ until it refuses; returns the refusal and how long it took. */
async function refusedWithin(url: string, token: string) {
  const started = Date.now()
  for (;;) {
    const r = await call(url, '/api/me/', { token })
    const ms = Date.now() - started
    if (r.status !== 200 || ms > DEADLINE_MS) return { r, ms }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('a logout on instance A is refused by instance B within the revocation delay', async (t) => {
  const [a, b] = await twoInstances(t)
  const pair = await login(a.url)
  const other = await login(b.url)
  // B has seen (and cached) the access token as valid before the logout.
  t.equal((await call(b.url, '/api/me/', { token: pair.access })).status, 200, 'B accepts the token before')

  t.equal((await call(a.url, '/api/token/blacklist/', { json: { refresh: pair.refresh } })).status, 200, 'logout on A')
  t.equal((await call(a.url, '/api/me/', { token: pair.access })).status, 401, 'A refuses at once')
  const { r, ms } = await refusedWithin(b.url, pair.access)
  t.equal(r.status, 401, `B refuses the session ${ms} ms after the logout (deadline ${DEADLINE_MS} ms, poll ${POLL_MS} ms)`)
  t.strictSame(r.body, blacklisted)
  t.equal((await call(b.url, '/api/me/', { token: other.access })).status, 200, 'B still serves other sessions')
})

t.test('a password change on instance A ends the sessions B serves', async (t) => {
  const [a, b] = await twoInstances(t)
  const first = await login(b.url)
  const second = await login(b.url)
  t.equal((await call(b.url, '/api/me/', { token: first.access })).status, 200)
  const change = await call(a.url, '/api/password/change/', { token: second.access, json: { old_password: PASSWORD, new_password: 'a-new-long-password' } })
  t.equal(change.status, 200, 'password changed on A')
  for (const [name, pair] of [
    ['first', first],
    ['second', second],
  ] as const) {
    const { r, ms } = await refusedWithin(b.url, pair.access)
    t.equal(r.status, 401, `B refuses the ${name} session ${ms} ms after the change`)
    t.strictSame(r.body, blacklisted)
  }
  const fresh = await login(b.url, 'alice', 'a-new-long-password')
  t.equal((await call(b.url, '/api/me/', { token: fresh.access })).status, 200, 'a login with the new password works on B')
})
