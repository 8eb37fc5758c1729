// DATABASE_URL's standard parameters are honoured (through node-postgres's own parser, plus
// connect_timeout, which it ignores for pools), and the DB_* settings reach the pool: against a
// private PostgreSQL cluster (no SSL configured), so the parameters' effects can be seen.
import t, { type Test } from 'tap'
import { loadConfig } from '../../../src/api/config.js'
import { PostgresStore } from '../../../src/api/store/postgres.js'
import { privatePostgres, privatePostgresProblem } from '../../helpers/private-postgres.js'

const problem = privatePostgresProblem()
if (problem && process.env.CI !== 'true') {
  t.skip(`no private PostgreSQL cluster: ${problem}`, async () => {})
} else {
  if (problem) t.fail(`no private PostgreSQL cluster: ${problem}`)
  const db = await privatePostgres(t)

  const open = (t: Test, url: string, o: ConstructorParameters<typeof PostgresStore>[1] = {}) => {
    const store = new PostgresStore(url, { listenUrl: null, ...o })
    t.teardown(() => store.close())
    return store
  }

  t.test('application_name, options and statement_timeout from the URL', async (t) => {
    const store = open(t, `${db.url()}?application_name=runway-url-test&options=-c%20work_mem%3D7MB&statement_timeout=1234`)
    const row = (
      await store.pool.query(
        "SELECT current_setting('application_name') AS app, current_setting('work_mem') AS mem, current_setting('statement_timeout') AS st",
      )
    ).rows[0]
    t.same(row, { app: 'runway-url-test', mem: '7MB', st: '1234ms' }, 'every parameter reached the session')
  })

  t.test('DB_STATEMENT_TIMEOUT reaches the server; a statement past it is a store fault (503), not a 500', async (t) => {
    const store = open(t, db.url(), { statementTimeoutMs: 300 })
    t.equal((await store.pool.query("SELECT current_setting('statement_timeout') AS st")).rows[0].st, '300ms')
    await t.rejects(
      store.ping().then(() => store.pool.query('SELECT pg_sleep(2)')),
      /canceling statement due to statement timeout/,
    )
    await t.rejects((store as unknown as { rows(sql: string): Promise<unknown> }).rows('SELECT pg_sleep(2)'), {
      name: 'StoreUnavailableError',
      message: /statement timeout \(57014\)/,
    })
  })

  t.test('sslmode=require is honoured: this server has no SSL, so the store refuses to connect (503), it does not fall back to plain text', async (t) => {
    const store = open(t, `${db.url()}?sslmode=require`)
    await t.rejects(store.ping(), { name: 'StoreUnavailableError', message: /SSL/ })
    const plain = open(t, `${db.url()}?sslmode=disable`)
    await plain.ping()
    t.pass('sslmode=disable connects')
  })

  t.test('connect_timeout (seconds) from the URL bounds the wait for a server that never answers', async (t) => {
    // A TCP listener that accepts and never speaks: the startup handshake hangs.
    const { createServer } = await import('node:net')
    const sockets: import('node:net').Socket[] = []
    const silent = createServer((s) => void sockets.push(s))
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    t.teardown(() => {
      for (const s of sockets) s.destroy()
      silent.close()
    })
    const port = (silent.address() as { port: number }).port
    const store = open(t, `postgres://postgres@127.0.0.1:${port}/x?connect_timeout=1`, { connectTimeoutMs: 30_000 })
    const started = Date.now()
    await t.rejects(store.ping(), { name: 'StoreUnavailableError' })
    const took = Date.now() - started
    t.ok(took < 10_000, `gave up after ${took} ms (connect_timeout=1 won over DB_CONNECT_TIMEOUT=30s)`)
  })

  t.test('the DB_* settings are parsed and reach the store options', async (t) => {
    const c = loadConfig({
      DATABASE_URL: db.url(),
      DB_POOL_SIZE: '3',
      DB_IDLE_TIMEOUT: '2s',
      DB_CONNECT_TIMEOUT: '1s',
      DB_STATEMENT_TIMEOUT: '0',
      DB_QUERY_TIMEOUT: '4s',
      REVOCATION_PUSH: 'off',
    })
    t.same(c.db, { poolSize: 3, idleTimeoutMs: 2000, connectTimeoutMs: 1000, statementTimeoutMs: 0, queryTimeoutMs: 4000, listenUrl: null })
    t.throws(() => loadConfig({ DB_CONNECT_TIMEOUT: '0' }), /DB_CONNECT_TIMEOUT must be longer than 0/)
    t.throws(() => loadConfig({ DB_POOL_SIZE: '0' }), /DB_POOL_SIZE="0" is invalid/)
    const store = open(t, db.url(), c.db)
    t.equal(store.pool.options.max, 3)
    t.equal(store.pool.options.idleTimeoutMillis, 2000)
    t.equal((await store.pool.query("SELECT current_setting('statement_timeout') AS st")).rows[0].st, '0', 'DB_STATEMENT_TIMEOUT=0: not sent (PgBouncer)')
  })
}
