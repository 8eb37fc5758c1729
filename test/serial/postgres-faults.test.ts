// PostgreSQL faults against the real production process (`node dist/api/server.js`, started through
// src/bench/stacks/) on a private PostgreSQL cluster this test creates, stops, terminates, SIGSTOPs and
// fills up: no fault ends the process, clients get 503 + Retry-After (never a 500 or a dropped
// connection), /readyz tells the truth, and the service recovers by itself.
import t, { type Test } from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { startProductionProcess, type ProcessStack } from '../../src/bench/stacks/api.js'
import { PostgresStore } from '../../src/api/store/postgres.js'
import { call, createUser, login } from '../helpers/app.js'
import { meTraffic, waitForStatus } from '../helpers/pg-traffic.js'
import { privatePostgres, privatePostgresProblem, type PrivatePostgres } from '../helpers/private-postgres.js'
import { stackEnv, staged } from '../helpers/runtime.js'

const problem = privatePostgresProblem()
if (problem && process.env.CI !== 'true') {
  t.skip(`no private PostgreSQL cluster: ${problem}`, async () => {})
} else {
  if (problem) t.fail(`no private PostgreSQL cluster: ${problem}`)
  const copy = await staged(t, 'dist')

  /**
   * Settings for a fault test: short timeouts, so a hang becomes a 503 in about two seconds; no
   * auth-user cache, so every GET /api/me/ reads the store (the cache's own test covers outages).
   */
  const env = (db: PrivatePostgres, extra: Record<string, string> = {}) =>
    stackEnv(copy.dir, {
      DATABASE_URL: db.url(),
      AUTH_USER_CACHE_TTL: '0',
      DB_POOL_SIZE: '4',
      DB_CONNECT_TIMEOUT: '1s',
      DB_STATEMENT_TIMEOUT: '1500ms',
      DB_QUERY_TIMEOUT: '2s',
      ...extra,
    })

  async function seed(db: PrivatePostgres) {
    const store = new PostgresStore(db.url())
    await store.migrate()
    await createUser(store)
    await store.close()
  }

  const logLines = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; level: number })

  /** The process is alive, and never logged a fatal error. */
  async function stillRunning(t: Test, stack: ProcessStack, logFile: string) {
    const exited = await Promise.race([stack.exited.then(() => true), sleep(100).then(() => false)])
    t.notOk(exited, 'the process did not exit')
    t.notOk(
      logLines(logFile).some((l) => /fatal/.test(l.msg)),
      'no fatal error logged',
    )
  }

  t.test('pg_terminate_backend and pg_ctl stop -m fast: 503 + Retry-After, no exit, recovery', async (t) => {
    const db = await privatePostgres(t)
    await seed(db)
    const logFile = join(copy.dir, 'stop.log')
    const stack = await startProductionProcess({ cwd: copy.dir, logFile, env: env(db) })
    t.teardown(() => stack.stop())
    const pair = await login(stack.url)
    const load = meTraffic(stack.url, pair.access)
    t.teardown(() => load.stop())
    await sleep(300)

    // Refreshes held inside their transactions (a checked-out connection, waiting on a row lock)
    // when their backends are terminated: the connection errors while no pool listener is on it.
    const locker = new pg.Client({ connectionString: db.url() })
    locker.on('error', () => {})
    await locker.connect()
    t.teardown(() => locker.end().catch(() => {}))
    await locker.query('BEGIN')
    await locker.query('SELECT id FROM sessions FOR UPDATE')
    const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
    const held = Promise.all(Array.from({ length: 3 }, () => call(stack.url, '/api/token/refresh/', { json: { refresh: pair.refresh } })))
    await sleep(400)
    const inTx = await db.query("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND wait_event_type = 'Lock'")
    t.equal(inTx.length, 3, 'three refreshes wait inside their transactions')
    const killed = await db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND pid <> $1",
      [lockerPid],
    )
    t.ok(killed.length >= 3, `terminated ${killed.length} backends of the app`)
    t.same(
      (await held).map((r) => r.status),
      [503, 503, 503],
      'the refreshes in flight: 503',
    )
    await locker.query('ROLLBACK')
    await sleep(500)
    t.equal((await call(stack.url, '/api/me/', { token: pair.access })).status, 200, 'the pool reconnected after pg_terminate_backend')

    await db.stopFast()
    await sleep(500)
    const me = await call(stack.url, '/api/me/', { token: pair.access })
    t.equal(me.status, 503, 'me while PostgreSQL is down: 503')
    t.ok(Number(me.headers.get('retry-after')) > 0, 'with Retry-After')
    t.same(Object.keys(me.body), ['detail'], 'a detail, no internals')
    const refresh = await call(stack.url, '/api/token/refresh/', { json: { refresh: pair.refresh } })
    t.equal(refresh.status, 503, 'refresh while down: 503')
    t.equal((await call(stack.url, '/api/token/', { json: { username: 'alice', password: 'x' } })).status, 503, 'login while down: 503')
    t.equal((await call(stack.url, '/readyz')).status, 503, '/readyz: 503')
    t.equal((await call(stack.url, '/healthz')).status, 200, '/healthz: still alive')
    await sleep(1500)

    await db.start()
    const took = await waitForStatus(`${stack.url}/readyz`, 200, 20_000)
    t.pass(`ready again ${took} ms after PostgreSQL came back`)
    t.equal((await call(stack.url, '/api/me/', { token: pair.access })).status, 200, 'me works again')
    t.equal((await call(stack.url, '/api/token/refresh/', { json: { refresh: pair.refresh } })).status, 200, 'refresh works again')

    const seen = await load.stop()
    t.comment(`answers during the test: ${JSON.stringify(seen.statuses)}`)
    t.same(
      Object.keys(seen.statuses).filter((s) => s !== '200' && s !== '503'),
      [],
      'only 200 and 503: no 500, no dropped connection',
    )
    t.ok((seen.statuses[503] ?? 0) > 0, 'the load saw the outage as 503s')
    t.equal(seen.unavailableWithoutRetryAfter, 0, 'every 503 carried Retry-After')
    await stillRunning(t, stack, logFile)
    const logged = logLines(logFile).filter((l) => l.msg.startsWith('store unavailable, answering 503')).length
    t.ok(logged >= 1 && logged <= 3, `the outage was logged once per burst (${logged} lines for ${seen.statuses[503]} 503s)`)
  })

  t.test('kill -9 of PostgreSQL: no exit, recovery', async (t) => {
    const db = await privatePostgres(t)
    await seed(db)
    const logFile = join(copy.dir, 'kill9.log')
    const stack = await startProductionProcess({ cwd: copy.dir, logFile, env: env(db) })
    t.teardown(() => stack.stop())
    const pair = await login(stack.url)
    const load = meTraffic(stack.url, pair.access)
    t.teardown(() => load.stop())
    await sleep(300)
    await db.kill9()
    await sleep(1000)
    t.equal((await call(stack.url, '/readyz')).status, 503, '/readyz: 503 while PostgreSQL is dead')
    await db.start()
    await waitForStatus(`${stack.url}/readyz`, 200, 20_000)
    t.equal((await call(stack.url, '/api/me/', { token: pair.access })).status, 200, 'recovered')
    const seen = await load.stop()
    t.same(
      Object.keys(seen.statuses).filter((s) => s !== '200' && s !== '503'),
      [],
      `only 200 and 503 (${JSON.stringify(seen.statuses)})`,
    )
    await stillRunning(t, stack, logFile)
  })

  t.test('SIGSTOP on PostgreSQL: a fast 503 instead of a hang, /readyz 503, recovery on SIGCONT', async (t) => {
    const db = await privatePostgres(t)
    await seed(db)
    const logFile = join(copy.dir, 'sigstop.log')
    const stack = await startProductionProcess({ cwd: copy.dir, logFile, env: env(db) })
    t.teardown(() => stack.stop())
    t.teardown(() => db.resume())
    const pair = await login(stack.url)
    const load = meTraffic(stack.url, pair.access, 6)
    t.teardown(() => load.stop())
    await sleep(300)
    db.pause()
    const started = Date.now()
    const [me, refresh] = await Promise.all([
      call(stack.url, '/api/me/', { token: pair.access }),
      call(stack.url, '/api/token/refresh/', { json: { refresh: pair.refresh } }),
    ])
    const took = Date.now() - started
    await sleep(600) // past the readiness probe's cache
    const ready = await call(stack.url, '/readyz')
    t.equal(me.status, 503, 'me: 503')
    t.ok(me.headers.get('retry-after'), 'with Retry-After')
    t.equal(refresh.status, 503, 'refresh: 503')
    t.equal(ready.status, 503, '/readyz: 503')
    // Not a speed assertion: the alternative is waiting as long as the server hangs (forever).
    t.ok(took < 15_000, `answered after ${took} ms with the server hung (DB_QUERY_TIMEOUT=2s, DB_CONNECT_TIMEOUT=1s)`)
    await sleep(1000)
    db.resume()
    await waitForStatus(`${stack.url}/readyz`, 200, 20_000)
    t.equal((await call(stack.url, '/api/me/', { token: pair.access })).status, 200, 'recovered after SIGCONT')
    const seen = await load.stop()
    t.same(
      Object.keys(seen.statuses).filter((s) => s !== '200' && s !== '503'),
      [],
      `only 200 and 503 (${JSON.stringify(seen.statuses)})`,
    )
    t.equal(seen.unavailableWithoutRetryAfter, 0, 'every 503 carried Retry-After')
    await stillRunning(t, stack, logFile)
  })

  t.test('max_connections reached: 503 + Retry-After, readiness false; a process started then waits and retries', async (t) => {
    const db = await privatePostgres(t, { maxConnections: 12 })
    await seed(db)
    const logFile = join(copy.dir, 'maxconn.log')
    // Idle connections close after 300 ms: the process must open new ones while the server is full.
    const stack = await startProductionProcess({ cwd: copy.dir, logFile, env: env(db, { DB_IDLE_TIMEOUT: '300ms' }) })
    t.teardown(() => stack.stop())
    const pair = await login(stack.url)
    await sleep(800)

    // Take every connection slot that is left (superuser slots included).
    const holders: pg.Client[] = []
    t.teardown(() => Promise.all(holders.map((c) => c.end().catch(() => {}))))
    for (;;) {
      const c = new pg.Client({ connectionString: db.url() })
      c.on('error', () => {})
      try {
        await c.connect()
        holders.push(c)
      } catch (err) {
        t.match((err as Error).message, /too many clients/, `server full after ${holders.length} extra connections`)
        break
      }
    }

    const answers = await Promise.all(Array.from({ length: 12 }, () => call(stack.url, '/api/me/', { token: pair.access })))
    const statuses = answers.map((a) => a.status)
    t.same(
      statuses.filter((s) => s !== 200 && s !== 503),
      [],
      `only 200 and 503 (${statuses.join(' ')})`,
    )
    t.ok(statuses.includes(503), 'requests that needed a new connection got 503')
    t.ok(
      answers.filter((a) => a.status === 503).every((a) => Number(a.headers.get('retry-after')) > 0),
      'with Retry-After',
    )
    t.equal((await call(stack.url, '/readyz')).status, 503, '/readyz: 503 while connections are refused')

    // A second process started now: it waits for the store instead of exiting.
    const secondLog = join(copy.dir, 'maxconn-second.log')
    const second = startProductionProcess({ cwd: copy.dir, logFile: secondLog, env: env(db) })
    const waited = Date.now()
    const said = () => (existsSync(secondLog) ? readFileSync(secondLog, 'utf8') : '')
    while (!said().includes('store unavailable at start, retrying')) {
      if (Date.now() - waited > 20_000) throw new Error(`the second process never said it was waiting: ${said()}`)
      await sleep(100)
    }
    const line = logLines(secondLog).find((l) => l.msg.startsWith('store unavailable at start'))!
    t.match(
      line.msg,
      /retrying in [0-9.]+ s: PostgreSQL at 127\.0\.0\.1:[0-9]+\/postgres unavailable: sorry, too many clients already/,
      'one clear line per attempt',
    )
    t.notOk(readFileSync(secondLog, 'utf8').includes('postgres@'), 'no URL with credentials in the log')
    await sleep(1500)

    await Promise.all(holders.splice(0).map((c) => c.end()))
    const started = await second
    t.teardown(() => started.stop())
    t.equal((await call(started.url, '/api/me/', { token: pair.access })).status, 200, 'the waiting process started once connections freed up')
    await waitForStatus(`${stack.url}/readyz`, 200, 20_000)
    t.equal((await call(stack.url, '/api/me/', { token: pair.access })).status, 200, 'and the first one recovered')
    await stillRunning(t, stack, logFile)
  })
}
