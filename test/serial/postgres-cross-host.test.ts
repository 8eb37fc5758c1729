// The cross-host behaviour suite (issue 12, "Done when"): two app hosts — two production processes
// with their own ports and data dirs — on one PostgreSQL (a private cluster), behind one rendered
// nginx, once with a direct DATABASE_URL and once through PgBouncer in transaction mode (LISTEN
// over a direct REVOCATION_LISTEN_URL). A token from A works on B; logout, password change and
// deactivation on A are enforced on B within the revocation delay (pushed); one refresh token
// sent to both at once rotates exactly once; the login limit counts attempts on both hosts.
// Host B's wall clock is 3 s ahead throughout (a preload shifts Date in its process, see
// test/helpers/skewed-clock.mjs): all of the above holds with it, and two tabs refreshing one
// token at once, one through each host, is refused for the second tab within the grace window
// (REFRESH_REUSE_GRACE, 2 s) without logging the user out, in either order.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startProductionProcess } from '../../src/bench/stacks/api.js'
import { findNginx, startNginx } from '../../src/bench/stacks/nginx.js'
import { PostgresStore } from '../../src/api/store/postgres.js'
import { call, createUser, login, PASSWORD } from '../helpers/app.js'
import { pgbouncerProblem, startPgBouncer } from '../helpers/pgbouncer.js'
import { privatePostgres, privatePostgresProblem } from '../helpers/private-postgres.js'
import { stackEnv, staged } from '../helpers/runtime.js'

const USER_LIMIT = 6
const SKEW_MS = 3000
const SKEWED_CLOCK = fileURLToPath(new URL('../helpers/skewed-clock.mjs', import.meta.url))
/** A JWT's claims (no check: the hosts verify). */
const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { iat: number }
/** Far above the delay (pushed: tens of ms); a busy machine must not fail the test. */
const DEADLINE_MS = 5000

const problem = privatePostgresProblem() ?? pgbouncerProblem() ?? (findNginx() ? null : 'nginx is not installed (apt-get install -y nginx)')
if (problem && process.env.CI !== 'true') {
  t.skip(`no cross-host suite: ${problem}`, async () => {})
} else {
  if (problem) t.fail(`no cross-host suite: ${problem}`)
  const copy = await staged(t, 'dist')
  const db = await privatePostgres(t)
  const bouncer = await startPgBouncer(t, db)

  /** How long until `url` refuses `token` on /api/me/ (or the deadline). */
  const refusedAfter = async (url: string, token: string) => {
    const started = Date.now()
    for (;;) {
      const status = (await call(url, '/api/me/', { token })).status
      const ms = Date.now() - started
      if (status !== 200 || ms > DEADLINE_MS) return { status, ms }
      await sleep(10)
    }
  }

  for (const mode of ['direct', 'pgbouncer'] as const) {
    t.test(`two hosts on one PostgreSQL behind one nginx (${mode})`, async (t) => {
      const name = `cross_${mode}`
      await db.query(`CREATE DATABASE ${name}`)
      const direct = db.url(name)
      const seed = new PostgresStore(direct, { listenUrl: null })
      await seed.migrate()
      for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) await createUser(seed, u)
      await seed.close()

      const env = (host: string) =>
        stackEnv(join(copy.dir, `${mode}-${host}`), {
          DATABASE_URL: mode === 'direct' ? direct : bouncer.url(name),
          ...(mode === 'pgbouncer' ? { REVOCATION_LISTEN_URL: direct, DB_STATEMENT_TIMEOUT: '0' } : {}),
          // Polling every 30 s: within the deadline only a push can tell the other host.
          REVOCATION_POLL_INTERVAL: '30s',
          LOGIN_RATE_LIMIT_USER: String(USER_LIMIT),
          TRUST_PROXY: '127.0.0.1',
        })
      const a = await startProductionProcess({ cwd: copy.dir, env: env('a'), logFile: join(copy.dir, `${mode}-a.log`) })
      t.teardown(() => a.stop())
      // B's clock is 3 s ahead. NODE_OPTIONS replaced: the test runner's own hooks must not load in it.
      const skewed = { ...env('b'), NODE_OPTIONS: `--import=${SKEWED_CLOCK}`, RUNWAY_CLOCK_SKEW_MS: String(SKEW_MS) }
      const b = await startProductionProcess({ cwd: copy.dir, env: skewed, logFile: join(copy.dir, `${mode}-b.log`) })
      t.teardown(() => b.stop())
      const nginx = await startNginx({ upstreams: [new URL(a.url).host, new URL(b.url).host], rateLimit: false })
      t.teardown(() => nginx.stop())
      const front = nginx.url
      // Both hosts receive pushes before anything is revoked (each logs it once its LISTEN connection echoed a probe).
      const pushed = (host: string) => {
        const log = join(copy.dir, `${mode}-${host}.log`)
        return existsSync(log) && readFileSync(log, 'utf8').includes('revocations pushed (LISTEN)')
      }
      const listening = Date.now()
      while (!(pushed('a') && pushed('b')) && Date.now() - listening < 15_000) await sleep(50)
      t.ok(pushed('a') && pushed('b'), 'both hosts receive pushes')

      const pair = await login(a.url)
      const ahead = claims((await login(b.url)).access).iat - claims(pair.access).iat
      t.ok(ahead >= 2 && ahead <= 4, `B's clock is ${ahead} s ahead of A's (its tokens' iat)`)
      t.equal((await call(b.url, '/api/me/', { token: pair.access })).status, 200, 'a token from A works on B')

      // Two tabs refresh the same token at once, one through each host: the second is refused
      // within the grace window, and the session lives on (no reuse detection, no logout).
      for (const [first, second, order] of [
        [a.url, b.url, 'A then B (ahead)'],
        [b.url, a.url, 'B (ahead) then A'],
      ] as const) {
        const tabs = await login(a.url, 'erin')
        const tab1 = await call(first, '/api/token/refresh/', { json: { refresh: tabs.refresh } })
        const tab2 = await call(second, '/api/token/refresh/', { json: { refresh: tabs.refresh } })
        t.equal(tab1.status, 200, `${order}: tab 1 refreshes`)
        t.equal(tab2.status, 401, `${order}: tab 2, the same token on the other host at once, is refused (${JSON.stringify(tab2.body)})`)
        const fresh = tab1.body as { access: string; refresh: string }
        await sleep(300) // a revocation, had there been one, reaches both hosts in this time
        t.same(
          [(await call(a.url, '/api/me/', { token: fresh.access })).status, (await call(b.url, '/api/me/', { token: fresh.access })).status],
          [200, 200],
          `${order}: not logged out (tab 1's new access token works on both hosts)`,
        )
        t.equal((await call(second, '/api/token/refresh/', { json: { refresh: fresh.refresh } })).status, 200, `${order}: and its new refresh token rotates`)
      }
      t.equal((await call(front, '/api/me/', { token: pair.access })).status, 200, 'and through nginx')

      const race = await Promise.all([a.url, b.url, front, a.url, b.url, front].map((u) => call(u, '/api/token/refresh/', { json: { refresh: pair.refresh } })))
      t.same(race.filter((r) => r.status === 200).length, 1, 'one refresh token sent to both hosts at once rotates exactly once')
      t.ok(
        race.every((r) => r.status === 200 || r.status === 401),
        `the others are refused (${race.map((r) => r.status).join(' ')})`,
      )
      const winner = race.find((r) => r.status === 200)!.body as { access: string; refresh: string }

      // Logout on A → B refuses the session's access token.
      t.equal((await call(a.url, '/api/token/blacklist/', { json: { refresh: winner.refresh } })).status, 200, 'logout on A')
      const logout = await refusedAfter(b.url, winner.access)
      t.equal(logout.status, 401, `logout on A enforced on B after ${logout.ms} ms`)

      // Password change on A → B refuses every earlier token of the user.
      const bob = await login(b.url, 'bob')
      t.equal(
        (
          await call(a.url, '/api/password/change/', {
            token: (await login(a.url, 'bob')).access,
            json: { old_password: PASSWORD, new_password: 'another-horse-battery-9' },
          })
        ).status,
        200,
        'password change on A',
      )
      const changed = await refusedAfter(b.url, bob.access)
      t.equal(changed.status, 401, `password change on A enforced on B after ${changed.ms} ms`)

      // Deactivation (an operator on A's host) → B refuses the user's tokens.
      const carol = await login(b.url, 'carol')
      const admin = new PostgresStore(direct, { listenUrl: null })
      t.teardown(() => admin.close())
      await admin.setActive((await admin.findUserByUsername('carol'))!.id, false)
      const deactivated = await refusedAfter(b.url, carol.access)
      t.equal(deactivated.status, 401, `deactivation enforced on B after ${deactivated.ms} ms`)

      // The per-username login limit counts attempts on both hosts together.
      const attempts: number[] = []
      for (let i = 0; i < USER_LIMIT + 2; i++) {
        attempts.push((await call(i % 2 ? b.url : a.url, '/api/token/', { json: { username: 'dave', password: 'wrong' } })).status)
      }
      t.same(attempts, [...Array(USER_LIMIT).fill(401), 429, 429], `the limit of ${USER_LIMIT} holds across both hosts`)
    })
  }
}
