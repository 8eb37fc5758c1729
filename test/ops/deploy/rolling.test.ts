// The rolling order of a fleet change (canary, batches, stop or fleet rollback) with stand-in
// changes, the shared proxy's config edits, and the fleet flags. Fast: no host, no nginx; the
// real thing runs in test/serial/deploy-rolling.test.ts.
import t from 'tap'
import type { HostReport } from '../../../src/ops/deploy/deploy.js'
import { pidFile, upstreamAddress, upstreamServers, withServerDown } from '../../../src/ops/deploy/proxy.js'
import { batches, rollOut, type RollingPlan } from '../../../src/ops/deploy/rolling.js'
import { rollingPlan, settingsOverrides } from '../../../src/cli/deploy-flags.js'
import { splitHostPath } from '../../../src/ops/deploy/target.js'

t.test('batches: canary first, then N or P% at a time', async (t) => {
  t.same(batches(5, { canary: 0, batch: 1 }), [[0], [1], [2], [3], [4]])
  t.same(batches(5, { canary: 1, batch: 2 }), [[0], [1, 2], [3, 4]])
  t.same(
    batches(5, { canary: 2, batch: { percent: 50 } }),
    [
      [0, 1],
      [2, 3, 4],
    ],
    '50% of 5 hosts rounds up to 3',
  )
  t.same(batches(4, { canary: 0, batch: { percent: 100 } }), [[0, 1, 2, 3]])
  t.same(batches(2, { canary: 5, batch: 1 }), [[0, 1]], 'more canaries than hosts: one batch')
  t.same(batches(3, { canary: 0, batch: { percent: 1 } }), [[0], [1], [2]], 'never less than one host')
})

const host = (target: string, result: HostReport['result'], from: string | null, release = 'new'): HostReport => ({
  target,
  action: 'deploy',
  release,
  from,
  result,
  live: result === 'ok' ? release : from,
  checks: [],
  steps: [],
  durationMs: 1,
  reason: result === 'ok' ? undefined : `health gate: sick on ${target}`,
})

/** A fake fleet: which hosts fail, and a log of what was done in which order. */
function fleet(n: number, plan: RollingPlan, fail: Record<number, HostReport['result']> = {}, canaryVerdict: string | null = null) {
  const log: string[] = []
  const targets = Array.from({ length: n }, (_, i) => `h${i}`)
  return {
    log,
    run: () =>
      rollOut({
        targets,
        before: targets.map(() => 'old'),
        plan,
        info: () => {},
        stopped: () => null,
        change: async (i) => {
          log.push(`change h${i}`)
          return host(`h${i}`, fail[i] ?? 'ok', 'old')
        },
        canary: async (idx) => (log.push(`canary ${idx.map((i) => `h${i}`).join(',')}`), canaryVerdict),
        revert: async (i, r) => {
          log.push(`revert h${i} to ${r.from}`)
          return { ...host(`h${i}`, 'ok', 'new', r.from!), action: 'rollback' }
        },
      }),
  }
}

t.test('all pass: every host updated, in batch order', async (t) => {
  const f = fleet(3, { canary: 1, batch: 2, onFailure: 'rollback-fleet', pauseMs: 0 })
  const r = await f.run()
  t.ok(r.ok)
  t.same(f.log, ['change h0', 'canary h0', 'change h1', 'change h2'])
  t.same(r.summary.batches, [['h0'], ['h1', 'h2']])
  t.same(
    r.summary.hosts.map((h) => [h.target, h.live, h.outcome]),
    [
      ['h0', 'new', 'updated'],
      ['h1', 'new', 'updated'],
      ['h2', 'new', 'updated'],
    ],
  )
  t.same(r.skipped, [])
})

t.test('the canary fails its gate: the rest is untouched, nothing to roll back', async (t) => {
  const f = fleet(3, { canary: 1, batch: 1, onFailure: 'rollback-fleet', pauseMs: 0 }, { 0: 'rolled-back' })
  const r = await f.run()
  t.notOk(r.ok)
  t.same(f.log, ['change h0'], 'no canary check, no other host, no revert')
  t.match(r.summary.failure, { target: 'h0', stage: 'change', reason: /sick on h0/ })
  t.notOk(r.summary.rollback)
  t.same(r.skipped, ['h1', 'h2'])
  t.same(
    r.summary.hosts.map((h) => [h.live, h.outcome]),
    [
      ['old', 'failed'],
      ['old', 'unchanged'],
      ['old', 'unchanged'],
    ],
  )
})

t.test('the canary passes its gate but not its load test: the canary goes back', async (t) => {
  const f = fleet(3, { canary: 1, batch: 1, onFailure: 'rollback-fleet', pauseMs: 0 }, {}, 'p99 420ms > 250ms')
  const r = await f.run()
  t.same(f.log, ['change h0', 'canary h0', 'revert h0 to old'])
  t.match(r.summary.failure, { stage: 'canary', reason: 'p99 420ms > 250ms' })
  t.same(
    r.summary.hosts.map((h) => h.outcome),
    ['reverted', 'unchanged', 'unchanged'],
  )
})

t.test('the second batch fails: the first batch is rolled back, newest first', async (t) => {
  const f = fleet(4, { canary: 0, batch: 2, onFailure: 'rollback-fleet', pauseMs: 0 }, { 3: 'rolled-back' })
  const r = await f.run()
  t.notOk(r.ok)
  t.same(f.log.slice(0, 4).sort(), ['change h0', 'change h1', 'change h2', 'change h3'])
  t.same(
    f.log.slice(4),
    ['revert h2 to old', 'revert h1 to old', 'revert h0 to old'],
    'h3 rolled itself back; the others go back in batches of 2, newest first',
  )
  t.match(r.summary.rollback, { ok: true })
  t.same(
    r.summary.hosts.map((h) => [h.live, h.outcome]),
    [
      ['old', 'reverted'],
      ['old', 'reverted'],
      ['old', 'reverted'],
      ['old', 'failed'],
    ],
  )
})

t.test('--on-failure stop: the hosts already changed keep the new release', async (t) => {
  const f = fleet(3, { canary: 0, batch: 1, onFailure: 'stop', pauseMs: 0 }, { 1: 'failed' })
  const r = await f.run()
  t.same(f.log, ['change h0', 'change h1'])
  t.notOk(r.summary.rollback)
  t.same(
    r.summary.hosts.map((h) => h.outcome),
    ['updated', 'failed', 'unchanged'],
  )
  t.same(r.skipped, ['h2'])
})

t.test('a change that throws (a held lock) is a failed host, and the fleet goes back', async (t) => {
  const log: string[] = []
  const r = await rollOut({
    targets: ['a', 'b'],
    before: ['old', 'old'],
    plan: { canary: 0, batch: 1, onFailure: 'rollback-fleet', pauseMs: 0 },
    info: () => {},
    stopped: () => null,
    change: async (i) => {
      if (i === 1) throw new Error('locked by someone')
      return host('a', 'ok', 'old')
    },
    revert: async (_i, rep) => (log.push(`revert to ${rep.from}`), { ...host('a', 'ok', 'new', 'old'), action: 'rollback' }),
  })
  t.match(r.summary.failure, { target: 'b', reason: 'locked by someone' })
  t.same(log, ['revert to old'])
  t.same(
    r.summary.hosts.map((h) => [h.live, h.outcome]),
    [
      ['old', 'reverted'],
      ['old', 'failed'],
    ],
  )
})

const CONF = `upstream runway_app {
    server 127.0.0.1:3001 max_fails=1 fail_timeout=10s;
    server 127.0.0.1:3002 max_fails=1 fail_timeout=10s down;
    keepalive 16;
}
pid logs/nginx.pid;
server {
    listen 8080;
}
`

t.test('the shared proxy: server lines, down and back, pid file', async (t) => {
  t.same(upstreamServers(CONF), [
    { addr: '127.0.0.1:3001', down: false },
    { addr: '127.0.0.1:3002', down: true },
  ])
  const out = withServerDown(CONF, '127.0.0.1:3001', true)
  t.match(out, /server 127\.0\.0\.1:3001 max_fails=1 fail_timeout=10s down;/)
  t.equal(withServerDown(out, '127.0.0.1:3001', false), CONF, 'back in: byte for byte the rendered config')
  t.equal(withServerDown(CONF, '127.0.0.1:3002', false).split('\n')[2], '    server 127.0.0.1:3002 max_fails=1 fail_timeout=10s;')
  t.throws(() => withServerDown(CONF, '127.0.0.1:3003', true), /127\.0\.0\.1:3003 is not a server in the upstream/)
  t.equal(pidFile(CONF, '/srv/nginx/'), '/srv/nginx/logs/nginx.pid')
  t.equal(pidFile('events {}', undefined), '/run/nginx.pid', "Debian's default")
})

t.test('the upstream address of a host', async (t) => {
  t.equal(upstreamAddress({ hostname: 'web1', appHost: '0.0.0.0', port: 3000 }), 'web1:3000', 'wildcard HOST: the --host name')
  t.equal(upstreamAddress({ hostname: 'web1', appHost: '10.0.0.5', port: 3000 }), '10.0.0.5:3000', 'one address: that one')
  t.equal(
    upstreamAddress({ hostname: 'web1', appHost: '127.0.0.1', port: 3000 }),
    'web1:3000',
    'loopback HOST on a remote host: the host name (preflight says if nginx does not list it)',
  )
  t.equal(upstreamAddress({ hostname: '127.0.0.1', appHost: '127.0.0.1', port: 3001 }), '127.0.0.1:3001')
  t.equal(upstreamAddress({ hostname: 'web1', upstream: '10.1.1.1:80' }), '10.1.1.1:80', 'the saved setting wins')
  t.equal(upstreamAddress({ hostname: 'web1', appHost: 'fd00::5', port: 3000 }), '[fd00::5]:3000')
})

t.test('fleet flags', async (t) => {
  t.same(rollingPlan({}), { canary: 0, batch: 1, onFailure: 'rollback-fleet', pauseMs: 0 })
  t.same(rollingPlan({ canary: '1', batch: '25%', 'on-failure': 'stop', 'pause-between': '2.5' }), {
    canary: 1,
    batch: { percent: 25 },
    onFailure: 'stop',
    pauseMs: 2500,
  })
  t.throws(() => rollingPlan({ batch: '0' }), { message: /--batch must be/, exitCode: 2 })
  t.throws(() => rollingPlan({ batch: '150%' }), { message: /--batch must be/ })
  t.throws(() => rollingPlan({ 'on-failure': 'ignore' }), { message: /--on-failure must be rollback-fleet or stop/ })
  t.throws(() => rollingPlan({ canary: 'x' }), { message: /--canary must be/ })
  t.same(settingsOverrides({ proxy: 'local', 'proxy-conf': '/etc/nginx/sites-enabled/runway' }).proxy, {
    host: 'local',
    conf: '/etc/nginx/sites-enabled/runway',
  })
  t.throws(() => settingsOverrides({ proxy: 'lb1' }), { message: /--proxy and --proxy-conf go together/ })
  t.throws(() => settingsOverrides({ proxy: 'lb1;rm', 'proxy-conf': '/x' }), { message: /not local or \[user@\]host/ })
  t.throws(() => settingsOverrides({ upstream: '10.0.0.5:3000', host: ['a', 'b'] }), { message: /one host's address/ })
  t.same(splitHostPath('deploy@web1:2222:/srv/a'), { host: 'deploy@web1:2222', path: '/srv/a' })
  t.same(splitHostPath('web1'), { host: 'web1' })
})
