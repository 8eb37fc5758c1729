// The production runtime (pm2 cluster, 2 workers, ecosystem.config.js) on a private PostgreSQL
// cluster that this test terminates backends of and stops under traffic: no worker exits (same
// PIDs, 0 restarts), clients see 503 + Retry-After while it is down, and the cluster recovers by
// itself when it is back.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { startPm2Cluster } from '../../src/bench/stacks/pm2.js'
import { PostgresStore } from '../../src/api/store/postgres.js'
import { call, createUser, login } from '../helpers/app.js'
import { meTraffic, waitForStatus } from '../helpers/pg-traffic.js'
import { privatePostgres, privatePostgresProblem } from '../helpers/private-postgres.js'
import { stackEnv, staged } from '../helpers/runtime.js'

const problem = privatePostgresProblem()
if (problem && process.env.CI !== 'true') {
  t.skip(`no private PostgreSQL cluster: ${problem}`, async () => {})
} else {
  if (problem) t.fail(`no private PostgreSQL cluster: ${problem}`)

  t.test('pm2 cluster: PostgreSQL terminated and stopped under traffic, no worker exits', async (t) => {
    const copy = await staged(t, 'dist')
    const db = await privatePostgres(t)
    const store = new PostgresStore(db.url())
    await store.migrate()
    await createUser(store)
    await store.close()

    const stack = await startPm2Cluster({
      cwd: copy.dir,
      instances: 2,
      env: stackEnv(copy.dir, {
        DATABASE_URL: db.url(),
        AUTH_USER_CACHE_TTL: '0',
        DB_POOL_SIZE: '4',
        DB_CONNECT_TIMEOUT: '1s',
        DB_QUERY_TIMEOUT: '2s',
        DB_STATEMENT_TIMEOUT: '1500ms',
      }),
    })
    t.teardown(() => stack.stop())
    const before = await stack.workers()
    const pair = await login(stack.url)
    const load = meTraffic(stack.url, pair.access, 6)
    t.teardown(() => load.stop())
    await sleep(500)

    // Every backend of both workers ends mid-use, then the server shuts down ("fast": 57P01).
    await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
    await sleep(500)
    await db.stopFast()
    await sleep(2000)
    const down = await call(stack.url, '/api/me/', { token: pair.access })
    t.equal(down.status, 503, 'me while PostgreSQL is down: 503')
    t.ok(down.headers.get('retry-after'), 'with Retry-After')
    t.equal((await call(stack.url, '/readyz')).status, 503, '/readyz: 503')

    await db.start()
    await waitForStatus(`${stack.url}/readyz`, 200, 20_000)
    // Both workers answer again (each new connection goes to the next worker).
    const answers = await Promise.all(Array.from({ length: 6 }, () => call(stack.url, '/api/me/', { token: pair.access })))
    t.same(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200, 200],
      'recovered by itself',
    )
    const seen = await load.stop()
    t.comment(`answers during the test: ${JSON.stringify(seen.statuses)}`)
    t.same(
      Object.keys(seen.statuses).filter((s) => s !== '200' && s !== '503'),
      [],
      'only 200 and 503: no 500, no dropped connection',
    )
    t.ok((seen.statuses[503] ?? 0) > 0, 'the outage was seen as 503s')
    t.equal(seen.unavailableWithoutRetryAfter, 0, 'every 503 carried Retry-After')

    const after = await stack.workers()
    t.same(
      after.map((w) => w.pid),
      before.map((w) => w.pid),
      'the same worker processes',
    )
    t.same(
      after.map((w) => w.restarts),
      [0, 0],
      'no restarts',
    )
  })
}
