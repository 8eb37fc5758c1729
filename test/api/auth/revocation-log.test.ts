// The revocation cache reads the store's revocation log incrementally (SQLite and PostgreSQL):
// the first read takes every unexpired revocation in batches, later reads only what is new,
// memory follows the unexpired revocations, positions committed out of order are not missed, and
// on PostgreSQL revocations are pushed (LISTEN/NOTIFY) with polling as the fallback. Also: hosts
// whose clocks disagree share grace windows and rate-limit windows (the database's clock).
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { RevocationCache, type RevocationEvent } from '../../../src/api/auth/revocations.js'
import { payloads, parsePayload } from '../../../src/api/store/pg-listen.js'
import { PostgresStore, type PostgresOptions } from '../../../src/api/store/postgres.js'
import { SqliteStore } from '../../../src/api/store/sqlite.js'
import type { Store } from '../../../src/api/store/store.js'

const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const SLACK = 300
const now = () => Math.floor(Date.now() / 1000)

/** Counts what the cache reads: calls and entries per call. */
function counting<S extends Store>(store: S): { store: S; reads: number[] } {
  const reads: number[] = []
  const original = store.revocationsSince.bind(store)
  store.revocationsSince = async (after, o) => {
    const entries = await original(after, o)
    reads.push(entries.length)
    return entries
  }
  return { store, reads }
}

async function sqliteStore(t: Test): Promise<SqliteStore> {
  const dir = mkdtempSync(join(tmpdir(), 'runway-revlog-'))
  const store = SqliteStore.open(dir)
  await store.migrate()
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return store
}

/** A migrated PostgreSQL store in a fresh schema; `more` opens further stores on the same schema (other hosts). */
async function pgStores(t: Test, opts: PostgresOptions = {}) {
  const schema = `runway_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const opened: PostgresStore[] = []
  const open = (o: PostgresOptions = {}) => {
    const s = new PostgresStore(PG_URL, { schema, poolSize: 4, ...opts, ...o })
    opened.push(s)
    return s
  }
  t.teardown(async () => {
    for (const s of opened) await s.close()
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  })
  const store = open()
  await store.migrate()
  return { store, open, schema }
}

t.test('SQLite: the first read in batches, then only what is new; events; memory follows expiry', async (t) => {
  const { store, reads } = counting(await sqliteStore(t))
  const u = await store.createUser('alice', 'h')
  const insert = store.db.prepare('INSERT INTO revocations (session_id, user_id, expires_at) VALUES (?, ?, ?)')
  store.db.transaction(() => {
    for (let i = 0; i < 2500; i++) insert.run(`old-${i}`, u.id, now() + 3600)
    // Expired long ago (beyond the slack): never loaded.
    for (let i = 0; i < 100; i++) insert.run(`expired-${i}`, u.id, now() - SLACK - 10)
  })()
  let clock = Date.now()
  const cache = new RevocationCache(store, 60_000, SLACK, undefined, undefined, () => clock)
  const events: RevocationEvent[] = []
  cache.onChange((e) => events.push(...e))
  t.teardown(() => cache.stop())
  t.notOk(cache.ready, 'not ready before the first read')
  await cache.start()
  t.ok(cache.ready)
  t.equal(cache.size, 2500, 'every unexpired revocation, none of the expired ones')
  t.same(reads, [1000, 1000, 500], 'in batches of 1000 (with a yield to the event loop between them)')
  t.ok(cache.isRevoked('old-42') && !cache.isRevoked('expired-1'))

  reads.length = 0
  events.length = 0
  await store.createSession({ sessionId: 'fresh', userId: u.id, refreshJti: 'r-fresh', issuedAt: now(), expiresAt: now() + 120 })
  await store.blacklistRefresh('r-fresh', now())
  await cache.sync()
  t.same(reads, [1], 'a logout costs every process one read of one entry, not 2,501')
  t.ok(cache.isRevoked('fresh'))
  t.same(events, [{ sessionId: 'fresh', userId: u.id }], 'listeners hear what was revoked')

  events.length = 0
  await store.setActive(u.id, false)
  await cache.sync()
  t.same(events, [{ sessionId: null, userId: u.id }], 'a user-wide revocation is announced for the user (no open sessions left)')

  reads.length = 0
  await cache.sync()
  t.same(reads, [0], 'nothing new: one read returning nothing')

  // Two hours later every token of those sessions has expired: the cache forgets them.
  clock += 2 * 3600 * 1000
  await cache.sync()
  t.equal(cache.size, 0, 'memory follows the unexpired revocations')
})

t.test('notification payloads: one entry as before, a batch after a newline, split under 8000 bytes', async (t) => {
  const entries = Array.from({ length: 300 }, (_, i) => ({
    seq: i + 1,
    userId: 7,
    expiresAt: 1_900_000_000,
    sessionId: i % 10 ? `session-${i}-${'x'.repeat(20)}` : null,
  }))
  t.same(payloads(entries.slice(0, 1)), ['1:7:1900000000:'], 'a single entry in the migration 5 format')
  const out = payloads(entries)
  t.ok(out.length > 1 && out.every((p) => Buffer.byteLength(p) < 8000), `${out.length} payloads, each under 8000 bytes`)
  t.same(out.flatMap(parsePayload), entries, 'every entry back, in order')
  // A process of the previous release parses one entry per payload (this regex): a batch gives it none, so it reads the log.
  t.ok(
    out.every((p) => !/^([0-9]+):([0-9]+):(-?[0-9]+):(.*)$/s.test(p)),
    'a batch is no single entry to an older reader',
  )
  t.same(parsePayload(''), [])
  t.same(parsePayload('42'), [], 'a bare seq (migration 3 writers) is a signal to read')
})

t.test('SQLite: a revocation on one process reaches another by polling', async (t) => {
  const a = await sqliteStore(t)
  const b = new SqliteStore(a.file)
  await b.migrate()
  t.teardown(() => b.close())
  const u = await a.createUser('alice', 'h')
  const cache = new RevocationCache(b, 50, SLACK)
  t.teardown(() => cache.stop())
  await cache.start()
  await a.createSession({ sessionId: 's1', userId: u.id, refreshJti: 'r1', issuedAt: now(), expiresAt: now() + 60 })
  await a.blacklistRefresh('r1', now())
  const started = Date.now()
  while (!cache.isRevoked('s1') && Date.now() - started < 5000) await sleep(10)
  t.ok(cache.isRevoked('s1'), `seen after ${Date.now() - started} ms`)
})

const problem = await (async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 })
  try {
    await c.connect()
    return null
  } catch (err) {
    return (err as Error).message
  } finally {
    await c.end().catch(() => {})
  }
})()

if (problem && process.env.CI !== 'true') {
  t.skip(`PostgreSQL at ${PG_URL} is not reachable (${problem}); set TEST_DATABASE_URL`, async () => {})
} else {
  if (problem) t.fail(`PostgreSQL at ${PG_URL} is not reachable: ${problem}`)

  t.test('PostgreSQL: a position committed after a higher one is not missed', async (t) => {
    const { store, schema } = await pgStores(t)
    const u = await store.createUser('alice', 'h')
    const cache = new RevocationCache(store, 60_000, SLACK)
    t.teardown(() => cache.stop())
    await cache.start()
    // A slow transaction takes a position first and commits last.
    const slow = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` })
    await slow.connect()
    t.teardown(() => slow.end())
    await slow.query('BEGIN')
    await slow.query("INSERT INTO revocations (session_id, user_id, expires_at) VALUES ('slow', $1, $2)", [u.id, now() + 600])
    await store.createSession({ sessionId: 'quick', userId: u.id, refreshJti: 'r-quick', issuedAt: now(), expiresAt: now() + 600 })
    await store.blacklistRefresh('r-quick', now())
    await cache.sync()
    t.ok(cache.isRevoked('quick'), 'the later position is read')
    t.notOk(cache.isRevoked('slow'), 'the earlier one is not committed yet')
    await slow.query('COMMIT')
    await cache.sync()
    t.ok(cache.isRevoked('slow'), 'it is read once committed, although its position is lower')
  })

  t.test('PostgreSQL: revocations are pushed (LISTEN/NOTIFY), polling only as a safety net', async (t) => {
    const { store, open } = await pgStores(t)
    const { store: other, reads } = counting(open())
    const u = await store.createUser('alice', 'h')
    const states: string[] = []
    // Polling every minute: only a push can deliver the revocation within the deadline below.
    const cache = new RevocationCache(other, 60_000, SLACK, undefined, (msg) => states.push(msg))
    t.teardown(() => cache.stop())
    await cache.start()
    const listening = Date.now()
    while (!states.some((s) => s.startsWith('revocations pushed')) && Date.now() - listening < 10_000) await sleep(20)
    t.match(states, [/^revocations pushed \(LISTEN\)/], 'the LISTEN connection proved itself with a probe')
    await store.createSession({ sessionId: 's1', userId: u.id, refreshJti: 'r1', issuedAt: now(), expiresAt: now() + 60 })
    await sleep(200) // the catch-up read after LISTEN came up is done
    const readsBefore = reads.length
    const started = Date.now()
    await store.blacklistRefresh('r1', now())
    while (!cache.isRevoked('s1') && Date.now() - started < 10_000) await sleep(5)
    t.ok(cache.isRevoked('s1'), `pushed to the other process in ${Date.now() - started} ms (its poll is every 60 s)`)
    t.equal(reads.length, readsBefore, 'applied from the notification itself: no read of the log')
    await store.setPassword(u.id, 'new')
    const userWide = Date.now()
    while (cache.size < 1 && Date.now() - userWide < 5000) await sleep(5)
    await sleep(100)
    t.equal(reads.length, readsBefore, 'user-wide revocations too')
  })

  t.test('PostgreSQL: a revocation commit sends no NOTIFY of its own: one publisher announces the log', async (t) => {
    const { store, open, schema } = await pgStores(t)
    const u = await store.createUser('alice', 'h')
    for (const i of [1, 2, 3]) await store.createSession({ sessionId: `s${i}`, userId: u.id, refreshJti: `r${i}`, issuedAt: now(), expiresAt: now() + 60 })
    const raw = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` })
    await raw.connect()
    t.teardown(() => raw.end())
    const heard: string[] = []
    raw.on('notification', (n) => n.channel === 'runway_revocations' && heard.push(n.payload ?? ''))
    await raw.query('LISTEN runway_revocations')
    // No publisher yet (no process watches): logout, reuse and a password change notify nobody.
    await store.blacklistRefresh('r1', now())
    await store.rotateRefresh({ jti: 'r2', now: now(), graceSeconds: 0, blacklistOld: true, next: { jti: 'r2b', expiresAt: now() + 60 } })
    t.same(await store.rotateRefresh({ jti: 'r2', now: now(), graceSeconds: 0, blacklistOld: true, next: { jti: 'r2c', expiresAt: now() + 60 } }), {
      result: 'blacklisted',
      familyRevoked: true,
    })
    await store.setPassword(u.id, 'new')
    await sleep(300)
    t.same(heard, [], 'no notification from the revocations themselves')
    // A process of the previous release (migration 4's function, as it calls it) still announces its own.
    await store.createSession({ sessionId: 'old', userId: u.id, refreshJti: 'r-old', issuedAt: now(), expiresAt: now() + 60 })
    await store.pool.query("SELECT runway_logout('r-old')")
    const old = Date.now()
    while (!heard.length && Date.now() - old < 5000) await sleep(10)
    t.match(heard, [/^[0-9]+:[0-9]+:[0-9]+:old$/], "the previous release's logout notifies as before")
    heard.length = 0
    // Two processes watch: exactly one publishes, and what is revoked from now on is announced in batches.
    const publishers: boolean[] = []
    const caches = [0, 1].map(() => new RevocationCache(open({ onPublisher: (p) => publishers.push(p) }), 60_000, SLACK))
    t.teardown(() => Promise.all(caches.map((c) => c.stop())))
    for (const c of caches) await c.start()
    const waited = Date.now()
    while (!publishers.length && Date.now() - waited < 10_000) await sleep(20)
    await sleep(300)
    t.same(publishers, [true], 'one publisher')
    const v = await store.createUser('bob', 'h')
    for (let i = 0; i < 30; i++) await store.createSession({ sessionId: `b${i}`, userId: v.id, refreshJti: `rb${i}`, issuedAt: now(), expiresAt: now() + 60 })
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.blacklistRefresh(`rb${i}`, now())))
    const started = Date.now()
    while (!caches.every((c) => c.isRevoked('b29') && c.isRevoked('b0')) && Date.now() - started < 10_000) await sleep(5)
    await sleep(100)
    const announced = heard.flatMap(parsePayload).filter((e) => e.userId === v.id)
    t.equal(announced.length, 30, 'every revocation announced once')
    t.ok(heard.length < 30, `in fewer notifications than revocations (${heard.length})`)
    t.ok(
      caches.every((c) => [...Array(30).keys()].every((i) => c.isRevoked(`b${i}`))),
      'both processes have them all',
    )
  })

  t.test('PostgreSQL: when the publisher goes, another process takes over', async (t) => {
    const { store, open } = await pgStores(t)
    const u = await store.createUser('alice', 'h')
    const roles = new Map<number, boolean>()
    const logs: string[][] = [[], []]
    const caches = [0, 1].map(
      (i) => new RevocationCache(open({ listenHeartbeatMs: 200, onPublisher: (p) => roles.set(i, p) }), 60_000, SLACK, undefined, (msg) => logs[i]!.push(msg)),
    )
    t.teardown(() => Promise.all(caches.map((c) => c.stop())))
    for (const c of caches) await c.start()
    const waited = Date.now()
    while (![...roles.values()].some(Boolean) && Date.now() - waited < 10_000) await sleep(20)
    const first = [...roles.entries()].find(([, p]) => p)?.[0]
    t.ok(first !== undefined, 'a publisher')
    await caches[first!]!.stop()
    const other = first === 0 ? 1 : 0
    const stopped = Date.now()
    while (!roles.get(other) && Date.now() - stopped < 10_000) await sleep(20)
    t.ok(roles.get(other), `the other process publishes after ${Date.now() - stopped} ms`)
    t.ok(
      logs[other]!.some((m) => m.startsWith('revocation publisher: this process announces')),
      'and logs it',
    )
    await store.createSession({ sessionId: 's1', userId: u.id, refreshJti: 'r1', issuedAt: now(), expiresAt: now() + 60 })
    await store.blacklistRefresh('r1', now())
    const started = Date.now()
    while (!caches[other]!.isRevoked('s1') && Date.now() - started < 10_000) await sleep(5)
    t.ok(caches[other]!.isRevoked('s1'), `pushed in ${Date.now() - started} ms (the poll is every 60 s)`)
  })

  t.test('PostgreSQL: without a working LISTEN connection the cache polls, and says so', async (t) => {
    // A LISTEN URL where nothing listens: the push never comes up.
    const { store, open } = await pgStores(t)
    const other = open({ listenUrl: 'postgres://postgres@127.0.0.1:1/test', connectTimeoutMs: 500 })
    const u = await store.createUser('alice', 'h')
    const states: string[] = []
    const cache = new RevocationCache(other, 50, SLACK, undefined, (msg) => states.push(msg))
    t.teardown(() => cache.stop())
    await cache.start()
    await store.createSession({ sessionId: 's1', userId: u.id, refreshJti: 'r1', issuedAt: now(), expiresAt: now() + 60 })
    await store.blacklistRefresh('r1', now())
    const started = Date.now()
    while (!cache.isRevoked('s1') && Date.now() - started < 5000) await sleep(10)
    t.ok(cache.isRevoked('s1'), `polled in ${Date.now() - started} ms`)
    const said = () => states.some((s) => /^revocations not pushed \(LISTEN connection failed: .*\): polling every 50 ms/.test(s))
    while (!said() && Date.now() - started < 5000) await sleep(10)
    t.ok(said(), `logged why and how it polls: ${states.join(' | ')}`)
  })

  t.test('PostgreSQL: a host whose clock is 3 s ahead does not turn a two-tab refresh into reuse', async (t) => {
    const { store, open } = await pgStores(t)
    const skewed = open()
    const u = await store.createUser('alice', 'h')
    const exp = now() + 3600
    await store.createSession({ sessionId: 's1', userId: u.id, refreshJti: 'r1', issuedAt: now(), expiresAt: exp })
    // Tab 1 refreshes on host A; tab 2 presents the same token at once on host B, whose clock is 3 s ahead.
    t.same(await store.rotateRefresh({ jti: 'r1', now: now(), graceSeconds: 2, blacklistOld: true, next: { jti: 'r2', expiresAt: exp } }), {
      result: 'rotated',
    })
    const tab2 = await skewed.rotateRefresh({ jti: 'r1', now: now() + 3, graceSeconds: 2, blacklistOld: true, next: { jti: 'r2b', expiresAt: exp } })
    t.same(tab2, { result: 'blacklisted', familyRevoked: false }, 'refused within the grace window, without revoking the session')
    t.notOk(await store.isRevoked({ jti: 'r2', sessionId: 's1' }), 'the session lives on')
    // And a host 3 s behind cannot stretch the window: once it has passed on the database's clock, reuse is reuse.
    await sleep(2100)
    const late = await skewed.rotateRefresh({ jti: 'r1', now: now() - 3, graceSeconds: 2, blacklistOld: true, next: { jti: 'r2c', expiresAt: exp } })
    t.same(late, { result: 'blacklisted', familyRevoked: true }, 'after the window: reuse detected')
  })

  t.test('PostgreSQL: hosts with skewed clocks share one rate-limit window', async (t) => {
    const { store, open } = await pgStores(t)
    const ahead = open()
    const t0 = Date.now()
    t.equal((await store.hit('login-user:alice', 60_000, t0)).count, 1)
    // A host 61 s ahead would have started a new window by its own clock.
    const b = await ahead.hit('login-user:alice', 60_000, t0 + 61_000)
    t.equal(b.count, 2, 'the same window: the count goes on')
    t.ok(Math.abs(b.resetAt - (t0 + 61_000 + 60_000)) < 2000, 'resetAt comes back in the caller clock (Retry-After stays right)')
  })
}
