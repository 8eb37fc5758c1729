// The per-process auth-user cache: a 10 s store outage costs recently seen users no failed
// GET /api/me/, while logout and deactivation still take effect within the revocation delay.
// The outage is real: the users and counters pages of the live SQLite file are overwritten.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { SqliteStore, sqliteFile } from '../../../src/api/store/sqlite.js'
import { call, createUser, login, startApp } from '../../helpers/app.js'
import { corruptTable, touch } from '../../helpers/faults.js'

t.test('a 10 s store outage: 0 failed /api/me/ for recently seen users', async (t) => {
  const { url, store, dataDir, logs } = await startApp(t)
  const names = ['alice', 'bob', 'carol']
  for (const n of [...names, 'dave']) await createUser(store, n)
  const tokens = new Map<string, string>()
  for (const n of [...names, 'dave']) tokens.set(n, (await login(url, n)).access)
  for (const n of names) t.equal((await call(url, '/api/me/', { token: tokens.get(n) })).status, 200, `${n} seen`)

  const file = sqliteFile(dataDir)
  const repairUsers = corruptTable(file, 'users')
  const repairCounters = corruptTable(file, 'counters')
  touch(file)
  t.teardown(() => {
    repairUsers()
    repairCounters()
  })

  // The outage is real: logins and a user not seen before fail (503), readiness says so.
  const loginDuring = await call(url, '/api/token/', { json: { username: 'alice', password: 'correct-horse-battery' } })
  t.equal(loginDuring.status, 503, 'login during the outage: 503')
  t.equal((await call(url, '/api/me/', { token: tokens.get('dave') })).status, 503, 'a user not seen recently: 503')

  const counts = new Map<number, number>()
  const until = Date.now() + 10_000
  while (Date.now() < until) {
    for (const n of names) {
      const r = await call(url, '/api/me/', { token: tokens.get(n) })
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1)
      if (r.status === 200) t.equal(r.body.username, n)
    }
    await sleep(100)
  }
  t.equal((await call(url, '/readyz')).status, 503, 'readiness tells the truth meanwhile')
  const failed = [...counts].filter(([s]) => s !== 200).reduce((a, [, c]) => a + c, 0)
  t.comment(`me during 10 s of outage: ${JSON.stringify(Object.fromEntries(counts))}`)
  t.ok((counts.get(200) ?? 0) > 30, 'many calls made')
  t.equal(failed, 0, '0 failed me calls')
  t.ok(logs.filter((l) => l.includes('store unavailable')).length <= 2, 'the outage is logged once, not per request or poll')

  repairUsers()
  repairCounters()
  touch(file)
  await sleep(300)
  t.equal((await call(url, '/api/me/', { token: tokens.get('dave') })).status, 200, 'after the outage: everyone served')
})

t.test('logout and deactivation take effect within the revocation delay; the TTL bounds freshness', async (t) => {
  const { url, store, dataDir } = await startApp(t, { AUTH_USER_CACHE_TTL: '1s' })
  const alice = await createUser(store)
  const one = await login(url)
  const two = await login(url)
  t.equal((await call(url, '/api/me/', { token: one.access })).status, 200)
  t.equal((await call(url, '/api/me/', { token: two.access })).status, 200)

  t.equal((await call(url, '/api/token/blacklist/', { json: { refresh: one.refresh } })).status, 200)
  t.equal((await call(url, '/api/me/', { token: one.access })).status, 401, 'logout: refused at once')
  t.equal((await call(url, '/api/me/', { token: two.access })).status, 200, 'the other session still works')

  // A change no revocation announces (a rename by SQL): served from the cache until the TTL.
  const other = SqliteStore.open(dataDir)
  await other.migrate()
  t.teardown(() => other.close())
  other.db.prepare("UPDATE users SET username = 'alicia' WHERE id = ?").run(alice.id)
  t.equal((await call(url, '/api/me/', { token: two.access })).body.username, 'alice', 'cached within the TTL')
  await sleep(1100)
  t.equal((await call(url, '/api/me/', { token: two.access })).body.username, 'alicia', 'read again after the TTL')

  // Deactivation by another process (as `runway user deactivate`).
  await other.setActive(alice.id, false)
  await sleep(600) // REVOCATION_POLL_INTERVAL (250 ms) and some slack
  const r = await call(url, '/api/me/', { token: two.access })
  t.equal(r.status, 401, 'deactivation reaches a cached user within the revocation delay')
})

t.test('stale entries are served only up to AUTH_USER_CACHE_MAX_STALE; TTL 0 disables the cache', async (t) => {
  const { url, store, dataDir } = await startApp(t, { AUTH_USER_CACHE_TTL: '100ms', AUTH_USER_CACHE_MAX_STALE: '1s' })
  await createUser(store)
  const { access } = await login(url)
  t.equal((await call(url, '/api/me/', { token: access })).status, 200)
  const repair = corruptTable(sqliteFile(dataDir), 'users')
  t.teardown(repair)
  touch(sqliteFile(dataDir))
  t.equal((await call(url, '/api/me/', { token: access })).status, 200, 'stale but within the bound')
  await sleep(1100)
  const late = await call(url, '/api/me/', { token: access })
  t.equal(late.status, 503, 'past the bound: 503')
  t.equal(late.headers.get('retry-after'), '5')

  const off = await startApp(t, { AUTH_USER_CACHE_TTL: '0' })
  const bob = await createUser(off.store, 'bob')
  const pair = await login(off.url, 'bob')
  t.equal((await call(off.url, '/api/me/', { token: pair.access })).body.username, 'bob')
  off.store.db.prepare("UPDATE users SET username = 'robert' WHERE id = ?").run(bob.id)
  t.equal((await call(off.url, '/api/me/', { token: pair.access })).body.username, 'robert', 'no cache: the change is seen at once')
})

t.test('a revocation drops only that user from the cache', async (t) => {
  const { url, store } = await startApp(t, { AUTH_USER_CACHE_TTL: '30s' })
  await createUser(store, 'alice')
  const bob = await createUser(store, 'bob')
  const a = await login(url, 'alice')
  const b = await login(url, 'bob')
  t.equal((await call(url, '/api/me/', { token: b.access })).body.username, 'bob')
  // Renamed behind the app's back (no revocation): bob stays cached through alice's logout.
  store.db.prepare("UPDATE users SET username = 'robert' WHERE id = ?").run(bob.id)
  t.equal((await call(url, '/api/token/blacklist/', { json: { refresh: a.refresh } })).status, 200)
  t.equal((await call(url, '/api/me/', { token: b.access })).body.username, 'bob', 'another user’s logout leaves bob cached')
  // Bob's own password change revokes his sessions and drops him: a new login reads him afresh.
  await store.setPassword(bob.id, (await store.findUserById(bob.id))!.passwordHash)
  await sleep(600)
  t.equal((await call(url, '/api/me/', { token: b.access })).status, 401, 'his old session is revoked')
  const again = await login(url, 'robert')
  t.equal((await call(url, '/api/me/', { token: again.access })).body.username, 'robert', 'read afresh after his own revocation')
})
