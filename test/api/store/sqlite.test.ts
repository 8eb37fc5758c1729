import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { SqliteStore } from '../../../src/api/store/sqlite.js'
import { SQLITE_MIGRATIONS } from '../../../src/api/store/migrations.js'
import { storeBehaviour } from './behaviour.js'

t.test('SQLite store behaviour', async (t) => {
  storeBehaviour(t, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'runway-store-'))
    const store = SqliteStore.open(dir)
    await store.migrate()
    t.teardown(async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    })
    return store
  })
})

t.test('several processes migrating one fresh file at once all succeed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-migrate-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bin = join(import.meta.dirname, '..', '..', '..', 'bin', 'runway.js')
  const runs = await Promise.all(
    Array.from(
      { length: 4 },
      () =>
        new Promise<{ code: number | null; err: string }>((resolve) => {
          const child = spawn(process.execPath, [bin, 'migrate'], { env: { ...process.env, DATA_DIR: dir }, stdio: ['ignore', 'ignore', 'pipe'] })
          let err = ''
          child.stderr.on('data', (d) => (err += d))
          child.on('exit', (code) => resolve({ code, err }))
        }),
    ),
  )
  t.same(
    runs.map((r) => r.code),
    [0, 0, 0, 0],
    runs.map((r) => r.err).join(''),
  )
  const store = SqliteStore.open(dir)
  t.teardown(() => store.close())
  t.equal(store.db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length)
})
