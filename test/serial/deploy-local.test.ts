// Real deploys into a temporary target directory: the real artifact, npm-installed dependencies,
// a real pm2 cluster under the target's own PM2_HOME, real SQLite, and a bounded autocannon load
// on 127.0.0.1 running through every cut-over. Subtests run in order and share the target.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { startNginx } from '../../src/bench/stacks/nginx.js'
import { freePort } from '../../src/lib/process.js'
import { artifacts, BIN, breakStart, DEPS_CACHE, makeTarget, reapPm2, ROOT, runway, sickUnderPm2 } from '../helpers/deploy.js'
import { seedUser, sessions, startLoad, type LoadResult } from '../helpers/runtime.js'

const port = await freePort()
const url = `http://127.0.0.1:${port}`
const root = makeTarget(t, { port, env: { LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0' } })
const pm2Home = join(root, '.pm2')
reapPm2(t, pm2Home)
await seedUser(join(root, 'shared'))

const art = await artifacts(t, {
  v1: null,
  v2: null,
  // Cannot start at all (as with a bad setting): must be stopped before the switch.
  broken: breakStart,
  // Starts and passes the pre-switch check alone, but its pm2 workers answer /readyz 503: only
  // the health gate after the switch can catch it, and must roll back.
  sick: (dir) => sickUnderPm2(dir, 'sick under pm2 on purpose'),
})

// nginx with TLS in front, as in production: preflight runs `nginx -t` on its config and checks its
// certificate, and the health gate polls /readyz through it (trusting the test CA).
const nginx = await startNginx({ upstreams: [`127.0.0.1:${port}`], tls: true, rateLimit: false })
t.teardown(() => nginx.stop())
const viaNginx = [
  '--nginx-conf',
  join(nginx.prefix, 'conf', 'nginx.conf'),
  '--nginx-prefix',
  `${nginx.prefix}/`,
  '--health-url',
  `${nginx.httpsUrl}/readyz`,
  '--health-ca',
  nginx.caFile!,
]

const common = ['--path', root, '--workers', '2', '--deps-cache', DEPS_CACHE, '--json']
const deploy = (sha: string, extra: string[] = []) => runway(['deploy', ...common, '--artifact', art[sha]!, ...extra], { timeoutMs: 900_000 })
const current = () => readlinkSync(join(root, 'current')).replace('releases/', '')
const log = () =>
  readFileSync(join(root, '.runway', 'deploys.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
async function status() {
  const r = await runway(['status', '--path', root, '--json'])
  return { code: r.code, report: JSON.parse(r.out)[0] }
}

function assertClean(t: Test, load: LoadResult) {
  t.ok(load.requests > 50, `the load really ran (${load.requests} requests, ${load.reqPerSec.toFixed(0)} req/s)`)
  t.equal(load.errors, 0, 'no connection errors')
  t.equal(load.timeouts, 0, 'no timeouts')
  t.equal(load.non2xx, 0, `no non-2xx answers ${JSON.stringify(load.statuses)}`)
  t.equal(load.badBodies, 0, 'every body was the expected shape')
}

/** Runs `fn` under a load of GET /api/me/ (4 connections, each its own session), bounded to 60 s. */
async function underLoad<T>(fn: () => Promise<T>): Promise<{ value: T; load: LoadResult }> {
  const load = startLoad(url, { connections: 4, mix: 'me', sessions: await sessions(url, 4), maxDurationS: 60 })
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

let v1 = ''
let v2 = ''

t.test("first deploy: v1 goes live under pm2 with the target's PM2_HOME", async (t) => {
  const r = await deploy('v1', viaNginx)
  t.equal(r.code, 0, r.err)
  const report = JSON.parse(r.out)
  t.match(report.hosts[0].checks, [
    { name: 'git', level: 'ok' },
    { name: 'config', level: 'ok' },
    { name: 'store', level: 'ok' },
    { name: 'nginx', level: 'ok', message: /nginx -t passed/ },
    { name: 'tls', level: 'ok', message: /valid for \d+ more days/ },
    { name: 'disk', level: 'ok' },
  ])
  t.match(r.err, new RegExp(`✓ health gate .*2 workers online from this release; ${nginx.httpsUrl}/readyz answered 200`), 'gated through nginx and TLS')
  t.match(report, { ok: true, sha: 'v1', hosts: [{ result: 'ok', from: null }] })
  v1 = report.hosts[0].release
  t.match(v1, /^\d{8}T\d{6}Z-v1$/)
  t.equal(current(), v1)
  t.same(
    report.hosts[0].steps.map((s: { name: string }) => s.name),
    [
      'preflight',
      'build artifact',
      'lock',
      'upload',
      'npm ci --omit=dev',
      'link shared',
      'migrate',
      'verify',
      'switch current',
      'pm2 start/reload',
      'health gate',
      'prune',
    ],
  )
  t.match(r.err, /✓ health gate +\d+\.\ds +2 workers online from this release/, 'each step is printed with its duration')
  t.match(
    JSON.parse(readFileSync(join(root, '.runway', 'target.json'), 'utf8')),
    { healthUrl: `${nginx.httpsUrl}/readyz`, workers: 2 },
    'the target remembers its settings',
  )
  t.ok(existsSync(join(pm2Home, 'pm2.pid')), "pm2 runs under the target's PM2_HOME")
  t.ok(existsSync(join(pm2Home, 'dump.pm2')), 'the process list is saved for the boot-time resurrect')
  t.ok(existsSync(join(root, 'releases', v1, 'node_modules', 'fastify')), 'production dependencies installed in the release')
  t.notOk(existsSync(join(root, 'releases', v1, 'node_modules', 'typescript')), 'dev dependencies are not')
  const s = await status()
  t.equal(s.code, 0)
  t.match(s.report, { current: v1, healthy: true, health: { healthy: true } })
  t.equal(s.report.workers.length, 2)
  for (const w of s.report.workers) t.equal(w.dir, join(root, 'releases', v1), 'the worker runs from the release')
})

t.test('v2 under load: zero failed requests, v1 kept, a concurrent deploy is refused by the lock', async (t) => {
  const { value, load } = await underLoad(async () => {
    const first = deploy('v2')
    // Start a second deploy while the first holds the lock.
    const deadline = Date.now() + 30_000
    while (!existsSync(join(root, '.runway', 'lock', 'holder')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const second = await deploy('v2')
    return { first: await first, second }
  })
  const { first, second } = value
  t.equal(first.code, 0, first.err)
  v2 = JSON.parse(first.out).hosts[0].release
  t.equal(second.code, 1, 'the concurrent deploy failed')
  t.match(JSON.parse(second.out).hosts[0].reason, /is locked by .*\(pid \d+, deploy \d{8}T\d{6}Z-v2\) since .*--break-lock/, 'naming the holder')
  assertClean(t, load)

  t.equal(current(), v2, 'v2 is live')
  t.ok(existsSync(join(root, 'releases', v1)), 'the old release is kept')
  const entries = log().filter((e) => e.result === 'ok')
  t.match(entries, [
    { action: 'deploy', sha: 'v1', from: null, to: v1, result: 'ok', by: /@/ },
    { action: 'deploy', sha: 'v2', from: v1, to: v2, result: 'ok' },
  ])
  t.equal(log().length, 2, 'the refused deploy did not log a release of its own')
  const s = await status()
  for (const w of s.report.workers) t.equal(w.dir, join(root, 'releases', v2), 'every worker was replaced by a v2 one')
})

t.test('rollback under load returns to v1 with zero failed requests', async (t) => {
  const { value: r, load } = await underLoad(() => runway(['rollback', '--path', root, '--json']))
  t.equal(r.code, 0, r.err)
  t.match(JSON.parse(r.out), { ok: true, hosts: [{ action: 'rollback', from: v2, release: v1, result: 'ok' }] })
  assertClean(t, load)
  t.equal(current(), v1)
  t.match(log().pop(), { action: 'rollback', from: v2, to: v1, result: 'ok' })
  const s = await status()
  for (const w of s.report.workers) t.equal(w.dir, join(root, 'releases', v1))
})

t.test('a release that cannot start is refused before the switch; traffic never reaches it', async (t) => {
  const before = (await status()).report.workers.map((w: { pid: number }) => w.pid).sort()
  const { value: r, load } = await underLoad(() => deploy('broken'))
  t.equal(r.code, 1)
  const host = JSON.parse(r.out).hosts[0]
  t.match(host, {
    result: 'failed',
    live: v1,
    reason: /^verify: the release does not start: the release exited with code 1 before it was ready: .*broken on purpose/,
  })
  t.notOk(
    host.steps.some((s: { name: string }) => s.name === 'switch current'),
    'it never got to the switch',
  )
  assertClean(t, load)
  t.equal(current(), v1, 'the live release is unchanged')
  const after = (await status()).report.workers.map((w: { pid: number }) => w.pid).sort()
  t.same(after, before, 'not one worker was replaced: no traffic can have reached the broken release')
  t.match(log().pop(), { action: 'deploy', sha: 'broken', from: v1, result: 'failed', reason: /broken on purpose/ })
  const list = await runway(['releases', '--path', root])
  t.match(list.out, new RegExp(`\\* ${v1}  \\(live\\)`))
  t.match(list.out, /✗ \d{8}T\d{6}Z-broken .*failed: verify: the release does not start/)
})

t.test('Ctrl-C stops a deploy after the current step, leaving the live release and no lock', async (t) => {
  const child = spawn(process.execPath, [BIN, 'deploy', ...common, '--artifact', art.v2!], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((r) => child.on('close', r))
  // Once the release is uploaded and linked the deploy is in migrate/verify: interrupt it there.
  const deadline = Date.now() + 60_000
  const linked = () => readdirSync(join(root, 'releases')).some((n) => n.endsWith('-v2') && n !== v2 && existsSync(join(root, 'releases', n, '.env')))
  while (!linked() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  child.kill('SIGINT')
  t.equal(await exited, 130, 'exit status 130 (interrupted)')
  t.match(err, /SIGINT: stopping after the current step/)
  const host = JSON.parse(out).hosts[0]
  t.match(host, { result: 'failed', live: v1, reason: /^(migrate|verify|switch current): interrupted by SIGINT$/ })
  t.notOk(
    host.steps.some((s: { name: string; ok: boolean }) => s.name === 'pm2 start/reload'),
    'it never reloaded pm2',
  )
  t.equal(current(), v1, 'the live release is unchanged')
  t.notOk(existsSync(join(root, '.runway', 'lock')), 'the lock was released')
  t.match(log().pop(), { sha: 'v2', result: 'failed', reason: /interrupted by SIGINT/ })
})

t.test('a release that fails the health gate after the switch is rolled back automatically', async (t) => {
  const { value: r, load } = await underLoad(() => deploy('sick', ['--health-timeout', '4']))
  t.equal(r.code, 1)
  const host = JSON.parse(r.out).hosts[0]
  t.match(host, { result: 'rolled-back', live: v1, reason: new RegExp(`^health gate: not healthy after 4000 ms: .*HTTP 503.*; rolled back to ${v1}$`) })
  t.same(
    host.steps.filter((s: { ok: boolean }) => !s.ok).map((s: { name: string }) => s.name),
    ['health gate'],
  )
  t.match(host.steps.pop(), { name: 'roll back', ok: true })
  // The sick workers still answered /api/me/ (only their readiness failed), and the reloads in
  // both directions were graceful.
  assertClean(t, load)
  t.equal(current(), v1, 'current points to v1 again')
  const s = await status()
  t.match(s.report, { healthy: true, current: v1 })
  for (const w of s.report.workers) t.equal(w.dir, join(root, 'releases', v1), 'and v1 workers serve')
  t.match(log().pop(), { action: 'deploy', sha: 'sick', from: v1, result: 'rolled-back', reason: /HTTP 503/ })
  const list = JSON.parse((await runway(['releases', '--path', root, '--json'])).out)[0]
  t.match(
    list.releases.find((x: { name: string }) => x.name.endsWith('-sick')),
    { live: false, failed: /health gate/ },
  )
})

t.test('a successful deploy keeps only the newest --keep releases', async (t) => {
  const r = await deploy('v2', ['--keep', '2'])
  t.equal(r.code, 0, r.err)
  const host = JSON.parse(r.out).hosts[0]
  t.match(host.steps.pop(), { name: 'prune', ok: true, detail: new RegExp(`removed ${v1}, ${v2}, \\d{8}T\\d{6}Z-broken`) })
  const left = readdirSync(join(root, 'releases')).sort()
  t.same(
    left.map((n) => n.replace(/^\d{8}T\d{6}Z-/, '')),
    ['sick', 'v2'],
  )
  t.equal(current(), host.release)
  t.equal(log().length, 7, 'the log keeps every attempt, pruned releases included')
})

t.test('a first deploy that fails its health gate leaves nothing running', async (t) => {
  const fresh = makeTarget(t, { port: await freePort() })
  reapPm2(t, join(fresh, '.pm2'))
  const r = await runway(
    ['deploy', '--path', fresh, '--workers', '1', '--deps-cache', DEPS_CACHE, '--json', '--artifact', art.sick!, '--health-timeout', '3'],
    { timeoutMs: 900_000 },
  )
  t.equal(r.code, 1)
  t.match(JSON.parse(r.out).hosts[0], {
    result: 'failed',
    from: null,
    live: null,
    reason: /HTTP 503.*; nothing was live before, so the app was stopped and current removed$/,
  })
  t.notOk(existsSync(join(fresh, 'current')), 'no current link')
  const s = JSON.parse((await runway(['status', '--path', fresh, '--json'])).out)[0]
  t.match(s, { current: null, healthy: false, workers: [] })
  const jlist = await runway(['status', '--path', fresh])
  t.equal(jlist.code, 1, 'status says not healthy')
})
