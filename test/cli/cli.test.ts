// The `runway` CLI as an ops engineer runs it: a real process, a real SQLite file, stdin for
// passwords.
import t, { type Test } from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { verifyPassword } from '../../src/api/auth/passwords.js'
import { SqliteStore } from '../../src/api/store/sqlite.js'
import { call, login, startApp } from '../helpers/app.js'

const bin = join(import.meta.dirname, '..', '..', 'bin', 'runway.js')

function cli(t: Test, dataDir: string) {
  const cwd = mkdtempSync(join(tmpdir(), 'runway-cli-cwd-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const options = { cwd, encoding: 'utf8', env: { ...process.env, DATA_DIR: dataDir }, timeout: 60_000 } as const
  const run = (args: string[], input = '') => {
    const r = spawnSync(process.execPath, [bin, ...args], { ...options, input })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }
  /** The same without blocking this process, so an API the test started keeps its event loop (a blocked one answers 503). */
  const runAsync = (args: string[], input = '') =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = execFile(process.execPath, [bin, ...args], options, (_err, out, err) => resolve({ code: child.exitCode, out, err }))
      child.stdin!.end(input)
    })
  return Object.assign(run, { async: runAsync })
}

t.test('users: create, list, set-password, deactivate, delete', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-cli-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const run = cli(t, dataDir)

  let r = run(['user', 'create', '--username', 'alice'], 'correct-horse-battery\n')
  t.equal(r.code, 0, r.err)
  t.match(r.out, /created user alice \(id 1\)/)
  t.notMatch(r.out + r.err, /correct-horse/, 'the password is not echoed')

  r = run(['user', 'create', '--username', 'alice'], 'another-password\n')
  t.equal(r.code, 1)
  t.match(r.err, /^runway user: a user named "alice" already exists\n$/)

  r = run(['user', 'create', '--username', 'bob'], '123\n')
  t.equal(r.code, 1)
  t.match(r.err, /too short.*--allow-weak/)
  r = run(['user', 'create', '--username', 'bob'], '')
  t.equal(r.code, 1)
  t.match(r.err, /no password on stdin/)
  r = run(['user', 'create', '--username', 'bob', '--password', 'x'], '')
  t.equal(r.code, 2, 'no way to pass a password in argv')
  t.match(r.err, /Unknown option '--password'/)

  r = run(['user', 'list', '--json'])
  t.equal(r.code, 0)
  const users = JSON.parse(r.out)
  t.match(users, [{ id: 1, username: 'alice', isActive: true }])
  t.notOk('passwordHash' in users[0], 'hashes are not listed')

  // A running API over the same SQLite file: the CLI's change must reach it.
  const api = await startApp(t, {}, { dataDir })
  const before = await login(api.url, 'alice', 'correct-horse-battery')
  r = await run.async(['user', 'set-password', '--username', 'alice'], 'a-brand-new-password\n')
  t.equal(r.code, 0, r.err)
  const store = SqliteStore.open(dataDir)
  t.teardown(() => store.close())
  await store.migrate()
  const hash = (await store.findUserByUsername('alice'))!.passwordHash
  t.ok(await verifyPassword('a-brand-new-password', hash), 'the new password matches the stored hash')
  t.notOk(await verifyPassword('correct-horse-battery', hash), 'the old one does not')
  const oldLogin = await call(api.url, '/api/token/', { json: { username: 'alice', password: 'correct-horse-battery' } })
  t.equal(oldLogin.status, 401, `the API refuses the old password (${oldLogin.status} ${oldLogin.text})`)
  t.strictSame(oldLogin.body, { detail: 'No active account found with the given credentials' })
  const newLogin = await call(api.url, '/api/token/', { json: { username: 'alice', password: 'a-brand-new-password' } })
  t.equal(newLogin.status, 200, `and accepts the new one (${newLogin.status})`)
  // "signs out all of the user's sessions" (the command's help).
  const refresh = await call(api.url, '/api/token/refresh/', { json: { refresh: before.refresh } })
  t.equal(refresh.status, 401, `a session from before cannot refresh (${refresh.status} ${refresh.text})`)
  await api.close()

  r = run(['user', 'deactivate', '--username', 'alice'])
  t.equal(r.code, 0)
  t.equal((await store.findUserByUsername('alice'))!.isActive, false)
  r = run(['user', 'list'])
  t.match(r.out, /1\talice\tno\t\d{4}-\d\d-\d\dT/, 'inactive, last login (through the API above) shown')
  r = run(['user', 'activate', '--username', 'alice'])
  t.equal((await store.findUserByUsername('alice'))!.isActive, true)

  r = run(['user', 'deactivate', '--username', 'nobody'])
  t.equal(r.code, 1)
  t.match(r.err, /no user named "nobody": see `runway user list`/)
  r = run(['user', 'delete', '--username', 'alice'])
  t.equal(r.code, 0)
  t.equal(await store.findUserByUsername('alice'), null)
})

t.test('migrate, tokens flush-expired, keys generate', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-cli-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const run = cli(t, dataDir)
  let r = run(['migrate'])
  t.equal(r.code, 0)
  t.match(r.out, /sqlite store at .* is up to date/)
  r = run(['tokens', 'flush-expired'])
  t.equal(r.code, 0)
  t.match(r.out, /flushed 0 expired refresh tokens/)
  r = run(['keys', 'generate', '--algorithm', 'ES256', '--out', dataDir])
  t.equal(r.code, 0, r.err)
  const keyFile = /JWT_PRIVATE_KEY_FILE=(.*)/.exec(r.out)![1]!
  t.match(readFileSync(keyFile, 'utf8'), /BEGIN PRIVATE KEY/)
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'private key readable by its owner only')
  r = run(['keys', 'generate', '--algorithm', 'HS256'])
  t.equal(r.code, 2)
  t.match(r.err, /--algorithm must be RS256, ES256 or EdDSA/)
})

t.test('help and mistakes', async (t) => {
  const run = cli(t, '/dev/null/data')
  let r = run(['--help'])
  t.equal(r.code, 0)
  for (const name of ['user', 'migrate', 'tokens', 'keys']) {
    t.match(r.out, new RegExp(`\\n  ${name} `))
    const h = run([name, '--help'])
    t.equal(h.code, 0, `${name} --help`)
    t.match(h.out, /^Usage: runway /)
  }
  r = run([])
  t.equal(r.code, 2)
  r = run(['frobnicate'])
  t.equal(r.code, 2)
  t.equal(r.err, 'runway: unknown command "frobnicate": run `runway --help` for the list\n')
  r = run(['user', 'explode'])
  t.equal(r.code, 2)
  r = run(['migrate'])
  t.equal(r.code, 1, 'an unusable DATA_DIR fails')
  t.match(r.err, /^runway migrate: cannot open the store \(.*\): check DATA_DIR and its permissions\n$/)
  const bad = spawnSync(process.execPath, [bin, 'migrate'], { encoding: 'utf8', env: { ...process.env, PORT: 'x' } })
  t.equal(bad.status, 78)
  t.match(bad.stderr, /^runway migrate: configuration error: PORT="x" is invalid/)
})

t.test("a relative DATA_DIR is the app root's, whatever the current directory, and the store is named", async (t) => {
  const rel = `data-cli-test-${process.pid}`
  const root = join(import.meta.dirname, '..', '..')
  t.teardown(() => rmSync(join(root, rel), { recursive: true, force: true }))
  const cwd = mkdtempSync(join(tmpdir(), 'runway-cli-elsewhere-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const r = spawnSync(process.execPath, [bin, 'user', 'list'], { cwd, encoding: 'utf8', env: { ...process.env, DATA_DIR: `./${rel}` }, timeout: 60_000 })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stderr, `(SQLite store: ${join(root, rel)})`)
  t.ok(statSync(join(root, rel)).isDirectory(), 'the database is under the app root')
  t.throws(() => statSync(join(cwd, rel)), 'and not in the current directory')
})

t.test('runway --version', async (t) => {
  const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 0)
  t.match(r.stdout, /^runway \d+\.\d+\.\d+, node v\d+/)
})

t.test('npm start with WEB_CONCURRENCY=abc: one line, exit 78, nothing started', async (t) => {
  const r = spawnSync(process.execPath, [bin, 'start'], {
    encoding: 'utf8',
    env: {
      ...process.env,
      WEB_CONCURRENCY: 'abc',
      JWT_SIGNING_KEY: 'cli-test-signing-key-0123456789-abcdefghijklmnop',
      PM2_HOME: join(tmpdir(), 'runway-no-pm2-here'),
    },
    timeout: 60_000,
  })
  t.equal(r.status, 78)
  t.equal(
    r.stderr,
    'runway start: configuration error: WEB_CONCURRENCY="abc" is invalid: expected a whole number of workers, 1 or more (empty = one per CPU)\n',
  )
  t.throws(() => statSync(join(tmpdir(), 'runway-no-pm2-here')), 'no pm2 daemon was started')
})
