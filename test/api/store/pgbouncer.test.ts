// PgBouncer in transaction mode, the documented way to run many hosts: Debian's pgbouncer started
// on a free port in front of a private PostgreSQL cluster. The whole store behaviour suite passes
// through it (unnamed statements only, migrations under a transaction-scoped advisory lock), two
// app instances share sessions and revocations through it, and the revocation push, which cannot
// work through transaction pooling (LISTEN needs its own session), falls back to polling and says
// so, or is pushed over a direct REVOCATION_LISTEN_URL.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../../../src/api/app.js'
import { RevocationCache } from '../../../src/api/auth/revocations.js'
import { PostgresStore } from '../../../src/api/store/postgres.js'
import { call, createUser, login, testConfig } from '../../helpers/app.js'
import { pgbouncerProblem, startPgBouncer } from '../../helpers/pgbouncer.js'
import { privatePostgres, privatePostgresProblem } from '../../helpers/private-postgres.js'
import { storeBehaviour } from './behaviour.js'

const problem = privatePostgresProblem() ?? pgbouncerProblem()
if (problem && process.env.CI !== 'true') {
  t.skip(`no PgBouncer test: ${problem}`, async () => {})
} else {
  if (problem) t.fail(`no PgBouncer test: ${problem}`)
  const db = await privatePostgres(t)
  const bouncer = await startPgBouncer(t, db)
  let n = 0
  /** A fresh database on the cluster, reached through PgBouncer. */
  const freshDb = async () => {
    const name = `runway_${++n}`
    await db.query(`CREATE DATABASE ${name}`)
    return name
  }
  // PgBouncer refuses startup parameters it does not know (statement_timeout among them): through
  // a pooler the statement timeout is set on the server (ALTER ROLE ... SET statement_timeout).
  const viaBouncer = (name: string, extra: ConstructorParameters<typeof PostgresStore>[1] = {}) =>
    new PostgresStore(bouncer.url(name), { statementTimeoutMs: 0, poolSize: 4, ...extra })

  t.test('the store behaviour suite through PgBouncer (transaction pooling)', async (t) => {
    storeBehaviour(t, async (t) => {
      const store = viaBouncer(await freshDb())
      t.teardown(() => store.close())
      await store.migrate()
      return store
    })
  })

  t.test('two app instances through PgBouncer: a token from A works on B, a logout on A is refused by B, one refresh wins', async (t) => {
    const name = await freshDb()
    const [sa, sb] = [viaBouncer(name, { listenUrl: db.url(name) }), viaBouncer(name, { listenUrl: db.url(name) })]
    await sa.migrate()
    await createUser(sa)
    const config = testConfig({ LOG_LEVEL: 'silent', REVOCATION_POLL_INTERVAL: '60s', AUTH_USER_CACHE_TTL: '0' })
    const [a, b] = [await buildApp(config, { store: sa }), await buildApp(config, { store: sb })]
    t.teardown(async () => {
      await a.close()
      await b.close()
      await sa.close()
      await sb.close()
    })
    const [ua, ub] = [await a.listen({ host: '127.0.0.1', port: 0 }), await b.listen({ host: '127.0.0.1', port: 0 })]
    const pair = await login(ua)
    t.equal((await call(ub, '/api/me/', { token: pair.access })).status, 200, 'A’s token works on B')
    const race = await Promise.all([ua, ub, ua, ub].map((u) => call(u, '/api/token/refresh/', { json: { refresh: pair.refresh } })))
    t.equal(race.filter((r) => r.status === 200).length, 1, 'one refresh wins across both instances')
    const winner = race.find((r) => r.status === 200)!.body
    // B polls every 60 s: only the push over the direct LISTEN connection can tell it in time.
    const listening = Date.now()
    while (!(await sb.pool.query("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")).rowCount && Date.now() - listening < 10_000) await sleep(50)
    await sleep(300)
    t.equal((await call(ua, '/api/token/blacklist/', { json: { refresh: winner.refresh } })).status, 200, 'logout on A')
    const started = Date.now()
    let status = 200
    while (status === 200 && Date.now() - started < 10_000) {
      status = (await call(ub, '/api/me/', { token: winner.access })).status
      if (status === 200) await sleep(10)
    }
    t.equal(status, 401, `B refuses the token ${Date.now() - started} ms after the logout on A (pushed)`)
  })

  t.test('LISTEN through transaction pooling does not work: the cache says so and polls', async (t) => {
    const name = await freshDb()
    const store = viaBouncer(name)
    t.teardown(() => store.close())
    await store.migrate()
    const u = await store.createUser('alice', 'h')
    const said: string[] = []
    const cache = new RevocationCache(store, 100, 300, undefined, (msg) => said.push(msg))
    t.teardown(() => cache.stop())
    await cache.start()
    const started = Date.now()
    while (!said.length && Date.now() - started < 10_000) await sleep(20)
    t.match(
      said[0],
      /^revocations not pushed \(LISTEN does not receive notifications on this connection \(a transaction-pooling PgBouncer\?\)\): polling every 100 ms/,
    )
    await store.createSession({
      sessionId: 's1',
      userId: u.id,
      refreshJti: 'r1',
      issuedAt: Math.floor(Date.now() / 1000),
      expiresAt: Math.floor(Date.now() / 1000) + 60,
    })
    await store.blacklistRefresh('r1', Math.floor(Date.now() / 1000))
    const polled = Date.now()
    while (!cache.isRevoked('s1') && Date.now() - polled < 5000) await sleep(10)
    t.ok(cache.isRevoked('s1'), `the revocation arrived by polling in ${Date.now() - polled} ms`)
  })
}
