// The shared store behaviour against a real PostgreSQL (DATABASE_URL, default the local test
// database), each test in its own schema; plus the API end to end on it. Without a reachable
// server this fails under CI=true and is skipped with the reason elsewhere.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { POSTGRES_MIGRATIONS } from '../../../src/api/store/migrations.js'
import type { Test } from 'tap'
import { PostgresStore } from '../../../src/api/store/postgres.js'
import { storeBehaviour } from './behaviour.js'
import { call, createUser, login } from '../../helpers/app.js'
import { buildApp } from '../../../src/api/app.js'
import { testConfig } from '../../helpers/app.js'

const URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

async function reachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: URL, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return null
  } catch (err) {
    return (err as Error).message
  } finally {
    await client.end().catch(() => {})
  }
}

/** A migrated store in a fresh schema, dropped at teardown. */
async function freshStore(t: Test): Promise<PostgresStore> {
  const schema = `runway_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const store = new PostgresStore(URL, { schema, poolSize: 4 })
  t.teardown(async () => {
    await store.close()
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  })
  await store.migrate()
  return store
}

const problem = await reachable()
if (problem && process.env.CI !== 'true') {
  t.skip(`PostgreSQL at ${URL} is not reachable (${problem}); set TEST_DATABASE_URL`, async () => {})
} else {
  if (problem) t.fail(`PostgreSQL at ${URL} is not reachable: ${problem}`)

  t.test('PostgreSQL store behaviour', async (t) => {
    storeBehaviour(t, freshStore)
  })

  t.test('migrations from several connections at once', async (t) => {
    const store = await freshStore(t)
    await Promise.all([store.migrate(), store.migrate(), store.migrate()])
    t.equal((await store.pool.query('SELECT version FROM runway_schema')).rows[0].version, POSTGRES_MIGRATIONS.length)
  })

  t.test('the API on PostgreSQL: login, rotation race, logout', async (t) => {
    const store = await freshStore(t)
    const app = await buildApp(testConfig({ LOG_LEVEL: 'silent' }), { store })
    t.teardown(() => app.close())
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    await createUser(store)
    const pair = await login(url)
    t.equal((await call(url, '/api/me/', { token: pair.access })).status, 200)
    const race = await Promise.all(Array.from({ length: 8 }, () => call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })))
    t.equal(race.filter((r) => r.status === 200).length, 1, 'exactly one rotation wins')
    const winner = race.find((r) => r.status === 200)!.body
    t.equal((await call(url, '/api/token/blacklist/', { json: { refresh: winner.refresh } })).status, 200)
    t.equal((await call(url, '/api/me/', { token: winner.access })).status, 401, 'logout revokes the access token')
  })
}
