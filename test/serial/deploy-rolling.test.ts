// Rolling deploys over a fleet of two hosts behind one rendered nginx, under load through that
// nginx: two deploy roots on this machine, each with its own app port and pm2, reached through the
// test-owned sshd as `user@127.0.0.1:PORT:/root-a` and `:/root-b` (separate paths, separate ports;
// one SQLite database shared through a symlink, as one PostgreSQL would be). The nginx config is
// the one `runway deploy --proxy local --proxy-conf` edits: a host is `down` while it changes.
// Checked: a canary rollout with 0 failed requests; a release failing its gate on the canary stops
// the rollout with the other host untouched; a failure on the second batch rolls the fleet back.
//
// The load is GET /api/me/ on keep-alive connections from a client that does what RFC 9110 §9.2.2
// allows (and Node documents for reused sockets, http.ClientRequest.reusedSocket): an idempotent
// request whose connection was reset before any answer is sent again, at most 3 times. nginx's
// graceful reload closes its old workers' idle connections (kept-alive ones, and ones accepted a
// moment before whose request was not read yet); a request racing that close never reached the
// app. autocannon counts it as an error; browsers and Go's client retry it. Retries are counted
// and reported; any answer that is not a 200 with the user, or a 4th reset, is a failed request.
import t, { type Test } from 'tap'
import { Agent, request } from 'node:http'
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { startNginx } from '../../src/bench/stacks/nginx.js'
import { freePort } from '../../src/lib/process.js'
import { artifacts, DEPS_CACHE, makeTarget, reapPm2, runway, sickUnderPm2 } from '../helpers/deploy.js'
import { nginxOrSkip } from '../helpers/nginx.js'
import { seedUser, sessions } from '../helpers/runtime.js'
import { haveSshd, SSHD, startSshd } from '../helpers/sshd.js'

// Five fleet operations over ssh, two under load: 10 min on a 2-core machine where one ssh
// command takes 0.8 s (measured 595 s), past the runner's 5 min per file.
t.setTimeout(900_000)

if (!haveSshd()) {
  if (process.env.CI === 'true') t.fail(`${SSHD} or ssh is missing (CI=true): apt-get install -y openssh-server openssh-client rsync`)
  else t.plan(0, `${SSHD} or ssh is not installed`)
} else if (nginxOrSkip(t)) {
  await fleetSuite()
}

async function fleetSuite() {
  const sshd = await startSshd(t)
  const ports = [await freePort(), await freePort()]
  const env = { LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0' }
  const roots = ports.map((port) => makeTarget(t, { port, env }))
  for (const root of roots) reapPm2(t, join(root, '.pm2'))
  await seedUser(join(roots[0]!, 'shared'))
  rmSync(join(roots[1]!, 'shared', 'data'), { recursive: true, force: true })
  symlinkSync(join(roots[0]!, 'shared', 'data'), join(roots[1]!, 'shared', 'data'))
  const hosts = roots.map((root) => `${sshd.host}:${root}`)
  const sshConfig = ['--ssh-config', join(sshd.dir, 'ssh_config')]

  const art = await artifacts(t, {
    v1: null,
    v2: null,
    // pm2 workers answer /readyz 503 (it passes the pre-switch verify): only the gate catches it.
    sick: (dir) => sickUnderPm2(dir, 'sick under pm2 on purpose'),
    // The same, on the second host only (its workers run in its root): the failure comes in the second batch.
    sickOnB: (dir) => sickUnderPm2(dir, 'sick on host b on purpose', `process.cwd().startsWith(${JSON.stringify(roots[1])})`),
  })

  const nginx = await startNginx({ upstreams: ports.map((p) => `127.0.0.1:${p}`), rateLimit: false })
  t.teardown(() => nginx.stop())
  const conf = join(nginx.prefix, 'conf', 'nginx.conf')
  const rendered = readFileSync(conf, 'utf8')
  const proxy = ['--proxy', 'local', '--proxy-conf', conf, '--proxy-prefix', `${nginx.prefix}/`]

  const deploy = (sha: string, extra: string[] = []) =>
    runway(
      [
        'deploy',
        ...hosts.flatMap((h) => ['--host', h]),
        ...sshConfig,
        ...proxy,
        '--workers',
        '2',
        '--deps-cache',
        DEPS_CACHE,
        '--health-timeout',
        '5',
        '--artifact',
        art[sha]!,
        '--json',
        ...extra,
      ],
      { timeoutMs: 900_000 },
    )
  const live = () => roots.map((r) => (existsSync(join(r, 'current')) ? readlinkSync(join(r, 'current')).replace('releases/', '') : null))
  const releases = (i: number) => readdirSync(join(roots[i]!, 'releases')).sort()
  const figures: string[] = []
  t.teardown(() => console.error(`# fleet figures: ${figures.join('; ')}`))

  /** GET /api/me/ through nginx (4 connections, a session each) while `fn` runs; bounded to 120 s. */
  async function underLoad<T>(fn: () => Promise<T>): Promise<{ value: T; load: Load }> {
    const load = idempotentLoad(
      nginx.url,
      (await sessions(nginx.url, 4)).map((s) => s.access),
      120,
    )
    try {
      await new Promise((r) => setTimeout(r, 300))
      const value = await fn()
      await new Promise((r) => setTimeout(r, 300))
      return { value, load: await load.stop() }
    } catch (err) {
      await load.stop()
      throw err
    }
  }
  const assertClean = (t: Test, load: Load) => {
    t.ok(load.requests > 50, `the load really ran (${load.requests} requests, ${load.retried} sent again after a keep-alive close)`)
    t.same(load.failed, [], 'no failed request through nginx')
    t.equal(readFileSync(conf, 'utf8'), rendered, 'every host is back in the upstream: the config is the rendered one again')
  }

  let v1 = ''
  let v2 = ''

  t.test('first deploy: both hosts at once (batch 100%)', async (t) => {
    const r = await deploy('v1', ['--batch', '100%'])
    t.equal(r.code, 0, r.err)
    const report = JSON.parse(r.out)
    t.match(report.fleet, { batches: [hosts], hosts: [{ outcome: 'updated' }, { outcome: 'updated' }] })
    v1 = report.hosts[0].release
    t.same(live(), [v1, v1])
    t.match(report.hosts[0].checks, [{ name: 'git' }], 'per-host checks in the report')
  })

  t.test('a canary rollout under load: every host on v2, 0 failed requests', async (t) => {
    const { value: r, load } = await underLoad(() => deploy('v2', ['--canary', '1', '--canary-threshold', 'errors<1%', '--canary-duration', '2']))
    t.equal(r.code, 0, r.err)
    t.match(
      r.err,
      new RegExp(`canary load test: runway loadtest --target http://127\\.0\\.0\\.1:${ports[0]} --threshold 'errors<1%'`),
      'the canary was load-tested at its own address',
    )
    t.match(r.err, /\] {3}pass {2}/, 'and its threshold held')
    const report = JSON.parse(r.out)
    v2 = report.hosts[0].release
    t.same(live(), [v2, v2])
    t.match(report.fleet, {
      plan: /^canary 1, then 1 at a time/,
      batches: [[hosts[0]], [hosts[1]]],
      hosts: [
        { live: v2, before: v1, outcome: 'updated' },
        { live: v2, before: v1, outcome: 'updated' },
      ],
    })
    t.notOk(report.fleet.failure)
    // Each host left the upstream before its switch and came back after its gate.
    for (const h of report.hosts)
      t.same(
        h.steps.map((s: { name: string }) => s.name).filter((n: string) => n !== 'preflight' && n !== 'build artifact'),
        [
          'lock',
          'upload',
          'npm ci --omit=dev',
          'link shared',
          'migrate',
          'verify',
          'leave upstream',
          'switch current',
          'pm2 start/reload',
          'health gate',
          'rejoin upstream',
          'prune',
        ],
      )
    t.match(
      report.hosts[0].steps.find((s: { name: string }) => s.name === 'leave upstream').detail,
      `127.0.0.1:${ports[0]} out of the upstream, nginx reloaded, in-flight requests done`,
    )
    t.match(
      r.err,
      new RegExp(`health gate +[0-9.]+s +2 workers online from this release; http://127\\.0\\.0\\.1:${ports[1]}/readyz answered 200`),
      "the gate asked the host's own app",
    )
    assertClean(t, load)
    figures.push(
      `rolling deploy per host ${report.hosts.map((h: { durationMs: number }) => `${(h.durationMs / 1000).toFixed(1)}s`).join(', ')}, ${load.requests} requests, ${load.failed.length} failed, ${load.retried} retried`,
    )
  })

  t.test('the canary fails its gate: stopped, the other host untouched', async (t) => {
    const before = releases(1)
    const { value: r, load } = await underLoad(() => deploy('sick', ['--canary', '1']))
    t.equal(r.code, 1)
    const report = JSON.parse(r.out)
    t.match(report.fleet, {
      failure: { target: hosts[0], stage: 'change', reason: /^health gate: .*503.*rolled back to/ },
      hosts: [
        { live: v2, outcome: 'failed' },
        { live: v2, outcome: 'unchanged' },
      ],
    })
    t.notOk(report.fleet.rollback, 'nothing else was changed, so nothing to roll back')
    t.same(report.skipped, [hosts[1]])
    t.same(live(), [v2, v2])
    t.same(releases(1), before, 'no release was even uploaded to the second host')
    assertClean(t, load)
    const text = await runway(['releases', '--host', hosts[0]!, ...sshConfig])
    t.match(text.out, /failed/, "the canary's audit log says the sick release failed")
  })

  t.test('the second batch fails: the fleet goes back to v2', async (t) => {
    const { value: r, load } = await underLoad(() => deploy('sickOnB'))
    t.equal(r.code, 1)
    const report = JSON.parse(r.out)
    t.match(report.fleet, {
      failure: { target: hosts[1], stage: 'change', reason: /sick on host b on purpose.*rolled back to/ },
      rollback: { ok: true, hosts: [{ target: hosts[0], action: 'rollback', from: /sickOnB$/, release: v2, result: 'ok' }] },
      hosts: [
        { live: v2, outcome: 'reverted' },
        { live: v2, outcome: 'failed' },
      ],
    })
    t.same(live(), [v2, v2])
    const log = readFileSync(join(roots[0]!, '.runway', 'deploys.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    t.match(log.at(-1), { action: 'rollback', to: v2, result: 'ok', reason: /^fleet rollback/ }, "the first host's audit log says why it went back")
    assertClean(t, load)
    figures.push(
      `fleet rollback ${(report.fleet.rollback.ms / 1000).toFixed(1)}s, ${load.requests} requests, ${load.failed.length} failed, ${load.retried} retried`,
    )
    const human = await runway(['deploy', ...hosts.flatMap((h) => ['--host', h]), ...sshConfig, '--artifact', art.v2!, '--dry-run', '--canary', '1'])
    t.match(human.err, /would roll out in 2 batches \(canary 1, then 1 at a time, on failure rollback-fleet\)/)
  })

  t.test('runway rollback over the fleet, 100% at once', async (t) => {
    const r = await runway(['rollback', ...hosts.flatMap((h) => ['--host', h]), ...sshConfig, '--to', v1, '--batch', '100%'])
    t.equal(r.code, 0, r.err)
    t.same(live(), [v1, v1])
    t.match(r.out, /fleet \(100% at a time, on failure rollback-fleet; batches 2\)/)
    t.match(r.out, new RegExp(`${hosts[1]!.replace(/[.]/g, '\\.')}  on ${v1}  updated from ${v2}`))
  })
}

interface Load {
  requests: number
  /** Requests sent again because their reused connection closed before any answer. */
  retried: number
  /** What went wrong, one entry per failed request. */
  failed: string[]
}

/** One loop per access token, each on its own keep-alive connection, until stop() or maxS. */
function idempotentLoad(base: string, tokens: string[], maxS: number): { stop(): Promise<Load> } {
  const agent = new Agent({ keepAlive: true, maxSockets: tokens.length })
  const result: Load = { requests: 0, retried: 0, failed: [] }
  let stopped = false
  const bound = setTimeout(() => (stopped = true), maxS * 1000)
  const once = (token: string, attempt: number): Promise<void> =>
    new Promise((resolve) => {
      const req = request(`${base}/api/me/`, { agent, headers: { authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (body += d))
        res.on('end', () => {
          result.requests++
          let id: unknown
          try {
            id = JSON.parse(body).id
          } catch {}
          if (res.statusCode !== 200 || typeof id !== 'number') result.failed.push(`HTTP ${res.statusCode} ${body.slice(0, 100)}`)
          resolve()
        })
        res.on('error', (err) => (result.failed.push(`response: ${err.message}`), resolve()))
      })
      req.on('timeout', () => req.destroy(new Error('timed out after 5 s')))
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A retry may meet the same race again (another idle socket of the same exiting worker).
        if (err.code === 'ECONNRESET' && attempt < 3) {
          result.retried++
          resolve(once(token, attempt + 1))
        } else {
          result.requests++
          result.failed.push(`${err.code ?? ''} ${err.message} (attempt ${attempt + 1}, ${req.reusedSocket ? 'reused' : 'new'} connection)`)
          resolve()
        }
      })
      req.end()
    })
  const loops = tokens.map(async (token) => {
    // A short pause between requests: steady load that leaves the 2-core test machine to the deploy.
    while (!stopped) await once(token, 0).then(() => new Promise((r) => setTimeout(r, 2)))
  })
  return {
    async stop() {
      stopped = true
      await Promise.all(loops)
      clearTimeout(bound)
      agent.destroy()
      return result
    },
  }
}
