// A store that fails answers 503 + Retry-After (never 500), readiness tells the truth within a
// second and recovers by itself, faults are logged once per burst, and a database that cannot be
// used refuses the start with one line and exit code 78. Real faults: a full tmpfs, a corrupted
// page, a read-only file for a non-root user.
import t, { type Test } from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { SqliteStore, sqliteFile } from '../../../src/api/store/sqlite.js'
import { call, createUser, login, startApp, type Reply } from '../../helpers/app.js'
import { corruptTable, runServer, smallDisk, touch } from '../../helpers/faults.js'

/** Polls `path` until it answers `status` (true) or `withinMs` passes (false). */
async function turns(url: string, path: string, status: number, withinMs: number): Promise<boolean> {
  for (const until = Date.now() + withinMs; Date.now() < until; await sleep(50)) {
    if ((await call(url, path)).status === status) return true
  }
  return false
}

function isStore503(t: Test, r: Reply, what: string) {
  t.equal(r.status, 503, `${what}: 503`)
  t.equal(r.headers.get('retry-after'), '5', `${what}: Retry-After`)
  t.strictSame(r.body, { detail: 'Service temporarily unavailable, try again later.' }, `${what}: JSON detail, nothing internal`)
}

const faultLines = (logs: string[]) => logs.filter((l) => l.includes('store unavailable'))

t.test('full disk (a real tmpfs filled up): writes 503, reads served, readiness 503, recovers by itself', async (t) => {
  const disk = smallDisk(t, 4096)
  if ('problem' in disk) {
    if (process.env.CI === 'true') t.fail(disk.problem)
    else t.skip(disk.problem, async () => {})
    return
  }
  const { url, store, logs } = await startApp(t, {}, { dataDir: disk.dir })
  await createUser(store)
  const pair = await login(url)
  t.equal((await call(url, '/readyz')).status, 200)

  disk.fill()
  isStore503(t, await call(url, '/api/token/', { json: { username: 'alice', password: 'correct-horse-battery' } }), 'login')
  isStore503(t, await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } }), 'refresh')
  isStore503(t, await call(url, '/api/token/blacklist/', { json: { refresh: pair.refresh } }), 'logout')
  t.equal((await call(url, '/api/me/', { token: pair.access })).status, 200, 'reads still served')
  t.ok(await turns(url, '/readyz', 503, 1000), 'readiness 503 within a second')
  const ready = await call(url, '/readyz')
  t.equal(ready.headers.get('retry-after'), '5')
  t.strictSame(ready.body, { status: 'unavailable', detail: 'The store cannot serve writes.' })
  t.equal((await call(url, '/healthz')).status, 200, 'liveness unaffected')
  for (let i = 0; i < 20; i++) await call(url, '/api/token/', { json: { username: 'alice', password: 'x' } })
  const lines = faultLines(logs)
  t.equal(lines.length, 1, 'one log line for the whole burst')
  t.match(lines[0], /is full \(no space left on its disk\) \(SQLITE_FULL\)/)

  disk.free()
  t.ok(await turns(url, '/readyz', 200, 3000), 'readiness back to 200 by itself')
  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: 'correct-horse-battery' } })).status, 200, 'logins work again')
  t.ok(
    logs.some((l) => l.includes('store available again')),
    'recovery logged',
  )
})

t.test('corrupt page at run time: 503 and readiness 503, back when the page is repaired', async (t) => {
  const { url, store, logs, dataDir } = await startApp(t)
  await createUser(store)
  const pair = await login(url)
  const file = sqliteFile(dataDir)
  const repair = corruptTable(file, 'sessions')
  touch(file)
  isStore503(t, await call(url, '/api/token/', { json: { username: 'alice', password: 'correct-horse-battery' } }), 'login')
  isStore503(t, await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } }), 'refresh')
  t.ok(await turns(url, '/readyz', 503, 1000), 'readiness 503 within a second')
  t.match(faultLines(logs)[0], /is corrupt \(SQLITE_CORRUPT/)
  t.equal((await call(url, '/healthz')).status, 200)
  repair()
  touch(file)
  t.ok(await turns(url, '/readyz', 200, 4000), 'readiness back to 200')
  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: 'correct-horse-battery' } })).status, 200)
})

t.test('a corrupt or read-only database refuses the start: one line, the file, the fix, exit 78', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-refuse-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const seed = async (name: string) => {
    const data = join(dir, name)
    const store = SqliteStore.open(data)
    await store.migrate()
    await createUser(store)
    await store.close()
    return { data, file: sqliteFile(data) }
  }
  const oneLine = (t: Test, run: { code: number | null; stderr: string; stdout: string }, file: string, what: RegExp) => {
    t.equal(run.code, 78, 'exit code 78 (pm2 stop_exit_codes: no restart loop)')
    const lines = run.stderr.trim().split('\n')
    t.equal(lines.length, 1, `one line: ${run.stderr}`)
    t.ok(lines[0]!.startsWith(`runway: cannot start: SQLite database ${file} `), 'names the file')
    t.match(lines[0], what)
    t.match(lines[0], /; fix: /)
    t.notMatch(run.stderr + run.stdout, /at .*\.ts:|Error:/, 'no stack trace')
  }

  t.test('a corrupt page', async (t) => {
    const { data, file } = await seed('corrupt-page')
    corruptTable(file, 'users')
    oneLine(t, await runServer({ DATA_DIR: data }), file, /is corrupt/)
  })
  t.test('a corrupt header (not a database)', async (t) => {
    const { data, file } = await seed('corrupt-header')
    writeFileSync(file, Buffer.alloc(8192, 0x41))
    oneLine(t, await runServer({ DATA_DIR: data }), file, /not a SQLite database/)
  })
  t.test('mode 0444 for the app user', async (t) => {
    if (userInfo().uid !== 0) {
      if (process.env.CI === 'true') t.fail('needs root to run the app as another user')
      else t.skip('needs root to run the app as another user', async () => {})
      return
    }
    const { data, file } = await seed('read-only')
    chmodSync(dir, 0o755)
    chmodSync(data, 0o777)
    chmodSync(file, 0o444)
    // nobody: a user for whom the file really is read-only (root ignores file modes).
    oneLine(t, await runServer({ DATA_DIR: data }, { uid: 65534, gid: 65534 }), file, /is read-only for this process/)
  })
})
