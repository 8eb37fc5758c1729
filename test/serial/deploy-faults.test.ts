// Deploys under faults, on a real target directory with a real pm2 cluster: pruning must never
// remove what the pm2 daemon runs from, a port held by someone else fails the deploy at once
// quoting the worker, and a deploy that waited for the lock acts on what is live after it.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { readArtifact } from '../../src/ops/deploy/artifact.js'
import { deploy, type StepRecord } from '../../src/ops/deploy/deploy.js'
import { quietReporter } from '../../src/cli/deploy-flags.js'
import { LocalTarget } from '../../src/ops/deploy/target.js'
import { freePort, isAlive } from '../../src/lib/process.js'
import { artifacts, DEPS_CACHE, makeTarget, reapPm2, runway, sickUnderPm2 } from '../helpers/deploy.js'

// About a dozen deploys, a restart and a kill -9 with real pm2 workers: 5 min on a slow 2-core guest
// (the first test alone took 194 s), the runner's limit per file, which cut the last test short.
t.setTimeout(600_000)

const art = await artifacts(t, {
  ...Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`v${i + 1}`, null])),
  sick: (dir) => sickUnderPm2(dir, 'sick under pm2 on purpose'),
})

const log = (root: string) =>
  readFileSync(join(root, '.runway', 'deploys.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
const current = (root: string) => readlinkSync(join(root, 'current')).replace('releases/', '')

t.test('7 deploys with --keep 2, then kill -9 of a worker: pm2 replaces it and the target is healthy', async (t) => {
  const port = await freePort()
  const root = makeTarget(t, { port })
  reapPm2(t, join(root, '.pm2'))
  for (let i = 1; i <= 7; i++) {
    const r = await runway(['deploy', '--path', root, '--workers', '2', '--keep', '2', '--deps-cache', DEPS_CACHE, '--artifact', art[`v${i}`]!, '--json'], {
      timeoutMs: 600_000,
    })
    t.equal(r.code, 0, `deploy v${i}: ${r.err}`)
  }
  const releases = readdirSync(join(root, 'releases'))
  t.equal(releases.length, 2, `two releases kept: ${releases.join(', ')}`)
  t.ok(releases.some((n) => n.endsWith('-v7')) && releases.some((n) => n.endsWith('-v6')))
  // The daemon and its workers run pm2 from shared/pm2/, which no prune touches.
  const runtime = readFileSync(join(root, '.runway', 'pm2-runtime'), 'utf8').trim()
  t.match(runtime, new RegExp(`^${root}/shared/pm2/`))
  t.equal(realpathSync(join(root, 'shared', 'pm2', 'active')), runtime, 'shared/pm2/active (systemd, logrotate) names it')

  const before = JSON.parse((await runway(['status', '--path', root, '--json'])).out)[0]
  t.match(before, { healthy: true })
  const victim = before.workers[0]
  process.kill(victim.pid, 'SIGKILL')
  t.notOk(isAlive(victim.pid) && (await new Promise((r) => setTimeout(r, 200)), isAlive(victim.pid)), 'the worker is gone')

  // pm2 restarts it (exp backoff starts at 100 ms); it must come back online, from v7.
  const deadline = Date.now() + 30_000
  let after = before
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500))
    after = JSON.parse((await runway(['status', '--path', root, '--json'])).out)[0]
    const w = after.workers.find((x: { id: number }) => x.id === victim.id)
    if (after.healthy && w && w.pid !== victim.pid && w.status === 'online' && w.uptimeMs > 1000) break
  }
  const replaced = after.workers.find((x: { id: number }) => x.id === victim.id)
  t.ok(replaced && replaced.pid !== victim.pid && replaced.status === 'online', `worker ${victim.id} replaced: ${JSON.stringify(after.workers)}`)
  t.ok(after.healthy, `healthy: ${after.reason ?? ''}`)
  for (const w of after.workers) t.equal(w.dir, join(root, 'releases', current(root)), 'running from the live release')
  t.equal((await runway(['status', '--path', root])).code, 0, 'status exits 0')

  // The daemon gone (a reboot without the systemd unit): status says so, restart brings it back.
  execFileSync(process.execPath, [join(runtime, 'node_modules', 'pm2', 'bin', 'pm2'), 'kill'], {
    env: { ...process.env, PM2_HOME: join(root, '.pm2') },
    stdio: 'ignore',
  })
  const down = await runway(['status', '--path', root])
  t.equal(down.code, 1)
  t.match(down.err, /not healthy: no pm2 daemon running under PM2_HOME=/, 'status names the real reason')
  const r = await runway(['restart', '--path', root, '--json'], { timeoutMs: 300_000 })
  t.equal(r.code, 0, r.err)
  t.match(JSON.parse(r.out), { ok: true, hosts: [{ live: current(root), detail: /2 workers online from this release/ }] })
  t.equal((await runway(['status', '--path', root])).code, 0, 'healthy again')
})

t.test('a first deploy whose workers cannot bind (EADDRINUSE) fails at once, quoting the worker', async (t) => {
  const port = await freePort()
  const squatter = createServer()
  await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r))
  t.teardown(() => squatter.close())
  const root = makeTarget(t, { port })
  reapPm2(t, join(root, '.pm2'))
  const r = await runway(['deploy', '--path', root, '--workers', '2', '--deps-cache', DEPS_CACHE, '--artifact', art.v1!, '--json'], { timeoutMs: 600_000 })
  t.equal(r.code, 1, r.err)
  const host = JSON.parse(r.out).hosts[0]
  t.match(host, { result: 'failed', live: null, reason: /^pm2 start\/reload: worker \d+ exited before it was ready: .*EADDRINUSE.*127\.0\.0\.1:\d+/ })
  const reload = host.steps.find((s: StepRecord) => s.name === 'pm2 start/reload')
  // The gate would wait 60 s; a worker that exits is reported as soon as it exits.
  t.ok(reload.ms < 30_000, `reported after ${reload.ms} ms, not after the 60 s health timeout`)
  t.equal(r.err.match(/EADDRINUSE/g)?.length, 1, 'the cause is printed once, not repeated')
  t.match(log(root).pop(), { result: 'failed', live: null, reason: /EADDRINUSE/ })
})

t.test('a deploy that waited behind another acts on what is live after the lock', async (t) => {
  const port = await freePort()
  const root = makeTarget(t, { port })
  reapPm2(t, join(root, '.pm2'))
  const common = ['--path', root, '--workers', '1', '--deps-cache', DEPS_CACHE, '--json']
  const first = await runway(['deploy', ...common, '--artifact', art.v1!], { timeoutMs: 600_000 })
  t.equal(first.code, 0, first.err)
  const v1 = current(root)

  // Deploy "sick" (it fails its gate) in this process; its preflight reads current = v1, then its
  // build waits until a second deploy (v2) has gone live: the failure must roll back to v2.
  let v2Done!: () => void
  const v2Live = new Promise<void>((r) => (v2Done = r))
  const sick = deploy({
    targets: [new LocalTarget(root)],
    overrides: { workers: 1, depsCache: DEPS_CACHE },
    artifact: { estimateBytes: 1, sha: 'sick', gitChanges: [], get: async () => (await v2Live, readArtifact(art.sick!)) },
    allowDirty: false,
    dryRun: false,
    breakLock: false,
    reporter: quietReporter,
    timing: { healthTimeoutMs: 4000 },
  })
  const second = await runway(['deploy', ...common, '--artifact', art.v2!], { timeoutMs: 600_000 })
  t.equal(second.code, 0, second.err)
  const v2 = current(root)
  t.not(v2, v1)
  v2Done()
  const report = await sick
  t.match(report.hosts[0], { result: 'rolled-back', from: v2, live: v2, reason: /^health gate: .*HTTP 503.*sick under pm2 on purpose.*; rolled back to / })
  t.equal(current(root), v2, 'rolled back to v2, the release live when it took the lock, not v1')
  t.match(log(root).pop(), { sha: 'sick', from: v2, live: v2, result: 'rolled-back' })
})

t.test('a daemon an older runway started from a release: check --deploy flags it, prune keeps that release', async (t) => {
  const port = await freePort()
  const root = makeTarget(t, { port })
  const pm2Home = join(root, '.pm2')
  reapPm2(t, pm2Home)
  const common = ['--path', root, '--workers', '1', '--deps-cache', DEPS_CACHE, '--json']
  const first = await runway(['deploy', ...common, '--artifact', art.v1!], { timeoutMs: 600_000 })
  t.equal(first.code, 0, first.err)
  const v1 = current(root)
  // What runway did before shared/pm2: the daemon runs the pm2 inside releases/<v1>.
  const runtime = readFileSync(join(root, '.runway', 'pm2-runtime'), 'utf8').trim()
  const env = { PATH: process.env.PATH!, HOME: process.env.HOME!, PM2_HOME: pm2Home, RUNWAY_LOG_DIR: join(root, 'shared', 'logs') }
  execFileSync(process.execPath, [join(runtime, 'node_modules', 'pm2', 'bin', 'pm2'), 'kill'], { env, stdio: 'ignore' })
  rmSync(join(root, '.runway', 'pm2-runtime'))
  rmSync(join(root, 'shared', 'pm2'), { recursive: true, force: true })
  execFileSync(process.execPath, ['--preserve-symlinks', join(root, 'releases', v1, 'node_modules', 'pm2', 'bin', 'pm2'), 'resurrect'], {
    cwd: root,
    env,
    stdio: 'ignore',
  })
  t.equal((await runway(['status', '--path', root])).code, 0, 'serving again, from the legacy daemon')

  const check = await runway(['check', '--deploy', '--path', root, '--json'])
  t.match(
    JSON.parse(check.out).findings.filter((f: { id: string }) => f.id === 'runway.E013'),
    [
      {
        id: 'runway.E013',
        level: 'error',
        message: new RegExp(`the pm2 daemon runs from ${root}/releases/${v1}/node_modules/pm2, inside a release that pruning can remove`),
      },
    ],
  )
  t.equal(check.code, 1)

  const second = await runway(['deploy', ...common, '--artifact', art.v2!, '--keep', '1'], { timeoutMs: 600_000 })
  t.equal(second.code, 0, second.err)
  t.match(second.err, new RegExp(`✓ prune .*kept ${v1}: a running process still uses it`))
  t.ok(readdirSync(join(root, 'releases')).includes(v1), `${v1} is still there`)

  const before = JSON.parse((await runway(['status', '--path', root, '--json'])).out)[0]
  process.kill(before.workers[0].pid, 'SIGKILL')
  const deadline = Date.now() + 30_000
  let after = before
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500))
    after = JSON.parse((await runway(['status', '--path', root, '--json'])).out)[0]
    if (after.healthy && after.workers[0]?.pid !== before.workers[0].pid && after.workers[0]?.uptimeMs > 1000) break
  }
  t.ok(after.healthy && after.workers[0].pid !== before.workers[0].pid, `the killed worker was replaced: ${after.reason ?? ''}`)
})
