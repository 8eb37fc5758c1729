// kill -9 of the API in the middle of logins, refreshes and logouts loses nothing it acknowledged:
// after a restart on the same store every acknowledged refresh token still works, every one
// acknowledged as rotated or logged out stays dead. A real process and a real SIGKILL, on a real
// SQLite file and on a fresh database of the shared PostgreSQL (the kill hits the app, not it).
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { PostgresStore } from '../../src/api/store/postgres.js'
import type { Store } from '../../src/api/store/store.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { SqliteStore } from '../../src/api/store/sqlite.js'
import { createUser, FIXTURE_ARGON2_ENV, PASSWORD } from '../helpers/app.js'
import { startServerProcess } from '../helpers/faults.js'

const USERS = 6

interface Chain {
  /** The newest refresh token the server acknowledged (200) for this login. */
  latest: string
  access: string
  /** Refresh tokens acknowledged as rotated away. */
  retired: string[]
  loggedOut: boolean
  /** A refresh or logout was in flight when the process died: the server may have committed it
   *  without the answer reaching us, so `latest` may rightly be dead. Not acknowledged, not checked. */
  unanswered: boolean
}

async function post(url: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  })
  return { status: r.status, body: await r.json().catch(() => undefined) }
}

async function scenario(t: Test, storeEnv: Record<string, string>, seed: Store) {
  const dir = mkdtempSync(join(tmpdir(), 'runway-kill9-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await seed.migrate()
  for (let i = 0; i < USERS; i++) await createUser(seed, `user${i}`)
  await seed.close()
  const env = { ...storeEnv, LOG_REQUESTS: 'false', LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0', ...FIXTURE_ARGON2_ENV }

  const first = await startServerProcess(t, env, { logFile: join(dir, 'first.log') })
  const chains: Chain[] = []
  let killed = false
  const client = async (i: number) => {
    let current: Chain | undefined
    try {
      while (!killed) {
        current = undefined
        const login = await post(first.url, '/api/token/', { username: `user${i}`, password: PASSWORD })
        if (login.status !== 200) throw new Error(`login ${login.status}`)
        const chain: Chain = { latest: login.body.refresh, access: login.body.access, retired: [], loggedOut: false, unanswered: false }
        chains.push(chain)
        current = chain
        for (let n = 0; n < 3 && !killed; n++) {
          const r = await post(first.url, '/api/token/refresh/', { refresh: chain.latest })
          if (r.status !== 200) throw new Error(`refresh ${r.status}`)
          chain.retired.push(chain.latest)
          chain.latest = r.body.refresh
          chain.access = r.body.access
        }
        if (chains.length % 2 === 0 && !killed) {
          const r = await post(first.url, '/api/token/blacklist/', { refresh: chain.latest })
          if (r.status !== 200) throw new Error(`logout ${r.status}`)
          chain.loggedOut = true
        }
      }
    } catch (err) {
      if (!killed) throw err // before the kill every request must succeed
      if (current) current.unanswered = true
    }
  }
  const clients = Array.from({ length: USERS }, (_, i) => client(i))
  await sleep(2000)
  killed = true
  process.kill(first.service.pid, 'SIGKILL')
  const code = await first.service.exited
  await Promise.all(clients)
  t.equal(code, null, 'the process died by the signal')
  const acked = chains.reduce((n, c) => n + 1 + c.retired.length + (c.loggedOut ? 1 : 0), 0)
  t.comment(`${chains.length} logins, ${acked} acknowledged operations before the kill`)
  t.ok(chains.length >= USERS, 'traffic was flowing')

  const second = await startServerProcess(t, env, { logFile: join(dir, 'second.log') })
  let lost = 0
  let resurrected = 0
  const unanswered = chains.filter((c) => c.unanswered).length
  t.ok(unanswered <= USERS, 'at most one unanswered operation per client')
  t.ok(chains.length - unanswered >= USERS, 'most chains ended on an acknowledged answer')
  for (const c of chains) {
    const latest = await post(second.url, '/api/token/verify/', { token: c.latest })
    if (c.loggedOut) {
      if (latest.status !== 401) resurrected++
      const access = await post(second.url, '/api/token/verify/', { token: c.access })
      if (access.status !== 401) resurrected++
    } else if (!c.unanswered && latest.status !== 200) lost++
    for (const old of c.retired) if ((await post(second.url, '/api/token/verify/', { token: old })).status !== 401) resurrected++
  }
  t.equal(lost, 0, 'every acknowledged login and refresh survived')
  t.equal(resurrected, 0, 'every acknowledged rotation and logout survived')
  // The survivors really work: refresh a few.
  for (const c of chains.filter((c) => !c.loggedOut).slice(0, 3)) {
    t.equal((await post(second.url, '/api/token/refresh/', { refresh: c.latest })).status, 200, 'an acknowledged token refreshes after the restart')
  }
}

t.test('kill -9 during logins, refreshes and logouts loses nothing acknowledged (SQLite)', async (t) => {
  const data = join(mkdtempSync(join(tmpdir(), 'runway-kill9-data-')), 'data')
  t.teardown(() => rmSync(join(data, '..'), { recursive: true, force: true }))
  await scenario(t, { DATA_DIR: data }, SqliteStore.open(data))
})

const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

t.test('kill -9 during logins, refreshes and logouts loses nothing acknowledged (PostgreSQL)', async (t) => {
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
  } catch (err) {
    const why = `PostgreSQL at ${PG_URL} is not reachable (${(err as Error).message}); set TEST_DATABASE_URL`
    if (process.env.CI === 'true') t.fail(why)
    else t.skip(why, async () => {})
    return
  }
  const name = `runway_kill9_${randomBytes(5).toString('hex')}`
  await admin.query(`CREATE DATABASE ${name}`)
  t.teardown(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  })
  const url = new URL(PG_URL)
  url.pathname = `/${name}`
  await scenario(t, { DATABASE_URL: url.toString() }, new PostgresStore(url.toString()))
})
