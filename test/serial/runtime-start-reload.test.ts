// `npm start` (runway start) and `npm run reload` (runway reload) as an operator runs them, in a
// private copy of the compiled app (its own bin/, .env, data and PM2_HOME), with real pm2 and a
// bounded load on 127.0.0.1 through every reload.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../../src/lib/build.js'
import { freePort } from '../../src/lib/process.js'
import { patchFile, reapPm2, type CliResult } from '../helpers/deploy.js'
import { seedUser, sessions, SIGNING_KEY, staged, startLoad, type LoadResult } from '../helpers/runtime.js'

const copy = await staged(t, 'dist')
// What a release holds besides dist/ (see src/ops/deploy/artifact.ts): the CLI and the files it reads.
for (const d of ['bin', 'nginx', 'loadtest']) cpSync(join(ROOT, d), join(copy.dir, d), { recursive: true, filter: (p) => !p.includes('/loadtest/results') })
const pm2Home = mkdtempSync(join(tmpdir(), 'runway-pm2-'))
t.teardown(() => rmSync(pm2Home, { recursive: true, force: true }))
reapPm2(t, pm2Home)
const port = await freePort()
const url = `http://127.0.0.1:${port}`
const serverJs = join(copy.dir, 'dist', 'api', 'server.js')
const goodServer = readFileSync(serverJs, 'utf8')

/** What an operator would type in the app directory: node bin/runway.js start|reload (= npm start / npm run reload). */
function runway(args: string[]): Promise<CliResult & { ms: number }> {
  const started = Date.now()
  return new Promise((resolve) => {
    // Only what the operator's shell would hold: no settings from the test's own environment.
    const env = { PATH: process.env.PATH!, HOME: process.env.HOME!, PM2_HOME: pm2Home, RUNWAY_LOG_DIR: join(pm2Home, 'logs'), WEB_CONCURRENCY: '2' }
    const child = spawn(process.execPath, [join(copy.dir, 'bin', 'runway.js'), ...args], { cwd: copy.dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000)
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, out, err, ms: Date.now() - started })))
  })
}
const writeEnv = (extra: Record<string, string> = {}) =>
  writeFileSync(
    join(copy.dir, '.env'),
    Object.entries({ PORT: String(port), JWT_SIGNING_KEY: SIGNING_KEY, LOG_LEVEL: 'warn', LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0', ...extra })
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  )
async function workers(): Promise<Array<{ pid: number; status: string }>> {
  // No daemon, no workers (and `pm2 jlist` would start a daemon as a side effect).
  if (!existsSync(join(pm2Home, 'pm2.pid'))) return []
  const r = await new Promise<string>((resolve) => {
    const c = spawn(process.execPath, [join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2'), 'jlist'], {
      env: { ...process.env, PM2_HOME: pm2Home },
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.on('close', () => resolve(out))
  })
  return (JSON.parse(r.slice(r.indexOf('['))) as Array<{ pid: number; pm2_env: { status: string } }>).map((p) => ({ pid: p.pid, status: p.pm2_env.status }))
}
function assertClean(t: Test, load: LoadResult) {
  t.ok(load.requests > 50, `the load ran (${load.requests} requests)`)
  t.equal(load.errors + load.timeouts + load.non2xx + load.badBodies, 0, `0 failed requests ${JSON.stringify(load.statuses)}`)
}
async function underLoad<T>(fn: () => Promise<T>): Promise<{ value: T; load: LoadResult }> {
  const load = startLoad(url, { connections: 4, mix: 'me', sessions: await sessions(url, 4), maxDurationS: 90 })
  try {
    await new Promise((r) => setTimeout(r, 500))
    const value = await fn()
    await new Promise((r) => setTimeout(r, 500))
    return { value, load: await load.stop() }
  } catch (err) {
    await load.stop()
    throw err
  }
}

t.test('npm start without a signing key: refused in one line, non-zero, nothing started', async (t) => {
  writeFileSync(join(copy.dir, '.env'), `PORT=${port}\n`)
  const r = await runway(['start'])
  t.equal(r.code, 78)
  t.match(r.err, /^runway start: configuration error: JWT_SIGNING_KEY is missing: production needs a random key/m)
  t.equal(r.err.trim().split('\n').length, 1, 'one line, no stack trace')
  t.same(await workers(), [], 'no worker was started')
})

t.test('npm start with a corrupt database: exits 1 quoting the worker, leaves no crash loop', async (t) => {
  writeEnv()
  mkdirSync(join(copy.dir, 'data'), { recursive: true })
  writeFileSync(join(copy.dir, 'data', 'runway.sqlite3'), 'this is not a database '.repeat(100))
  const r = await runway(['start'])
  t.equal(r.code, 1, r.err)
  t.match(r.err, /runway start: start failed: worker \d+ exited before it was ready: runway: [^\n]*(not a (SQLite )?database|malformed)/)
  t.same(await workers(), [], 'the dead workers were removed')
  rmSync(join(copy.dir, 'data'), { recursive: true, force: true })
})

t.test('npm start: exits 0 once every worker is ready', async (t) => {
  writeEnv()
  await seedUser(copy.dir)
  const r = await runway(['start'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /runway start: started 2 workers, all ready/)
  const ws = await workers()
  t.equal(ws.length, 2)
  t.ok(ws.every((w) => w.status === 'online'))
  t.equal((await fetch(`${url}/readyz`)).status, 200)
})

t.test('reload with a bad .env under load: refused, 0 failed requests, non-zero exit, workers untouched', async (t) => {
  const before = (await workers()).map((w) => w.pid).sort()
  writeEnv({ LOG_LEVEL: 'verbose' })
  const { value: r, load } = await underLoad(() => runway(['reload']))
  t.equal(r.code, 78)
  t.match(r.err, /^runway reload: configuration error: LOG_LEVEL="verbose" is invalid: expected one of/m)
  assertClean(t, load)
  t.same((await workers()).map((w) => w.pid).sort(), before, 'not one worker was replaced')
  writeEnv()
})

t.test('reload to code whose workers crash: the old workers keep serving, exit 1 quoting the worker', async (t) => {
  const before = (await workers()).map((w) => w.pid).sort()
  writeFileSync(serverJs, `throw new Error('broken on purpose: cannot start');\n${goodServer}`)
  const { value: r, load } = await underLoad(() => runway(['reload', '--timeout', '5']))
  t.equal(r.code, 1)
  // (pm2's container keeps a worker whose module threw alive: it is caught by the timeout.)
  t.match(
    r.err,
    /reload failed: worker \d+ (exited before it was ready|did not send 'ready' within 5000 ms): .*broken on purpose.*\(0 of 2 workers replaced; the others keep serving\)/,
  )
  assertClean(t, load)
  const after = await workers()
  t.same(after.map((w) => w.pid).sort(), before, 'the old workers are the ones serving')
  t.ok(after.every((w) => w.status === 'online'))
})

t.test('reload to code whose workers never say ready: timed out, old workers keep serving', async (t) => {
  const before = (await workers()).map((w) => w.pid).sort()
  writeFileSync(serverJs, goodServer)
  // (dist/api/server.js is one minified bundle: esbuild writes double quotes.)
  patchFile(serverJs, 'process.send?.("ready")', 'void 0')
  const { value: r, load } = await underLoad(() => runway(['reload', '--timeout', '3']))
  t.equal(r.code, 1)
  t.match(r.err, /reload failed: worker \d+ did not send 'ready' within 3000 ms/)
  assertClean(t, load)
  t.same((await workers()).map((w) => w.pid).sort(), before)
})

t.test('reload to good code under load: every worker replaced, 0 failed requests', async (t) => {
  const before = (await workers()).map((w) => w.pid)
  writeFileSync(serverJs, goodServer)
  const { value: r, load } = await underLoad(() => runway(['reload']))
  t.equal(r.code, 0, r.err)
  t.match(r.out, /2 workers replaced one at a time/)
  assertClean(t, load)
  const after = await workers()
  t.equal(after.length, 2)
  t.notOk(
    after.some((w) => before.includes(w.pid)),
    'all new processes',
  )
})
