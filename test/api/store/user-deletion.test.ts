// Deleting a user revokes its tokens everywhere: /api/me/, refresh, blacklist and verify all
// answer 401, although the user row (and, before migration 2, its sessions by ON DELETE CASCADE)
// is gone. The deletion comes from another connection to the same file, as `runway user delete`.
import t from 'tap'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { SQLITE_MIGRATIONS } from '../../../src/api/store/migrations.js'
import { SqliteStore, sqliteFile } from '../../../src/api/store/sqlite.js'
import { call, createUser, login, startApp } from '../../helpers/app.js'

t.test('a deleted user’s access and refresh tokens are refused everywhere', async (t) => {
  const { url, store, dataDir } = await startApp(t)
  const alice = await createUser(store)
  const pair = await login(url)
  const second = await login(url)
  t.equal((await call(url, '/api/token/verify/', { json: { token: pair.access } })).status, 200)

  const cli = SqliteStore.open(dataDir)
  await cli.migrate()
  await cli.deleteUser(alice.id)
  await cli.close()

  // Within the revocation delay (250 ms) on every process.
  await sleep(600)
  const me = await call(url, '/api/me/', { token: pair.access })
  t.equal(me.status, 401, '/api/me/')
  t.equal(me.body.code, 'token_not_valid', 'the session is revoked (not merely an unknown user)')
  for (const token of [pair.access, pair.refresh, second.access, second.refresh]) {
    const v = await call(url, '/api/token/verify/', { json: { token } })
    t.equal(v.status, 401, 'verify')
    t.equal(v.body.code, 'token_not_valid')
  }
  t.equal((await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })).status, 401, 'refresh')
  t.equal((await call(url, '/api/token/blacklist/', { json: { refresh: second.refresh } })).status, 401, 'blacklist')
  // A new user of the same name does not inherit anything.
  await createUser(store)
  t.equal((await call(url, '/api/token/verify/', { json: { token: pair.refresh } })).status, 401, 'still refused after the name is reused')
  t.equal((await call(url, '/api/me/', { token: (await login(url)).access })).status, 200, 'the new alice logs in')
})

t.test('upgrading a file made by migration 1 keeps its data and drops the cascade', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-upgrade-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const old = new Database(sqliteFile(dir))
  old.pragma('journal_mode = WAL')
  old.exec(SQLITE_MIGRATIONS[0] as string)
  old.pragma('user_version = 1')
  old.prepare("INSERT INTO users (username, password_hash, date_joined) VALUES ('alice', 'h', 1)").run()
  old.prepare("INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ('s1', 1, 1, ?)").run(Math.floor(Date.now() / 1000) + 60)
  old.prepare("INSERT INTO refresh_tokens (jti, session_id, issued_at, expires_at) VALUES ('r1', 's1', 1, ?)").run(Math.floor(Date.now() / 1000) + 60)
  old.close()
  const store = SqliteStore.open(dir)
  t.teardown(() => store.close())
  await store.migrate()
  t.equal(store.db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length)
  t.equal(store.db.pragma('integrity_check', { simple: true }), 'ok')
  t.same(store.db.pragma('foreign_key_list(sessions)'), [], 'sessions no longer cascade from users')
  t.equal((store.db.pragma('foreign_key_list(refresh_tokens)') as unknown[]).length, 1, 'tokens still belong to their session')
  t.equal((await store.findUserByUsername('alice'))?.id, 1)
  await store.deleteUser(1)
  t.ok(await store.isRevoked({ jti: 'r1', sessionId: 's1' }), 'the old session is revoked, not gone')
})
