// Metrics in one process, for real: the app on a real socket, its cluster endpoint on another,
// known traffic in, exact counts out of one scrape. The pm2 cluster version (two workers, one
// scrape) is test/serial/metrics-pm2.test.ts.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppMetrics, LATENCY_BUCKETS } from '../../../src/api/metrics/app-metrics.js'
import { appRegistry, createRegistry } from '../../../src/api/metrics/registry.js'
import { startMetricsListener, type ClusterSnapshot } from '../../../src/api/metrics/cluster.js'
import { clusterFigures, p99FromBuckets } from '../../../src/api/metrics/figures.js'
import type { MetricJson } from '../../../src/api/metrics/app-metrics.js'
import { loadConfig } from '../../../src/api/config.js'
import { freePort } from '../../../src/lib/process.js'
import { call, createUser, login, startApp } from '../../helpers/app.js'
import { scrape, total } from '../../helpers/metrics.js'

const silent = { error: () => {} }
const tempDir = (t: Test) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-metrics-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('one scrape counts exactly the requests and outcomes sent', async (t) => {
  const metricsPort = await freePort()
  const { app, url, store } = await startApp(t, { METRICS_PORT: String(metricsPort), LOGIN_RATE_LIMIT_USER: '4', REFRESH_REUSE_GRACE: '0' })
  await createUser(store, 'alice')
  await createUser(store, 'mallory')
  const registry = appRegistry(app, 'w0')
  const listener = await startMetricsListener({
    host: '127.0.0.1',
    port: metricsPort,
    socketDir: join(tempDir(t), 'sockets'),
    worker: 'w0',
    registry,
    log: silent,
  })
  t.teardown(() => listener.close())

  // Logins: 2 successes, 1 + 4 bad credentials, the 5th attempt for mallory throttled (limit 4).
  const p1 = await login(url)
  const p2 = await login(url)
  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: 'wrong-password' } })).status, 401)
  for (let i = 0; i < 4; i++) t.equal((await call(url, '/api/token/', { json: { username: 'mallory', password: 'wrong-password' } })).status, 401)
  t.equal((await call(url, '/api/token/', { json: { username: 'mallory', password: 'wrong-password' } })).status, 429)
  // Refreshes: rotated; the same token again (no grace) = reuse, the session is revoked; the
  // token issued by the rotation is then blacklisted; garbage is invalid.
  const r1 = await call(url, '/api/token/refresh/', { json: { refresh: p1.refresh } })
  t.equal(r1.status, 200)
  t.equal((await call(url, '/api/token/refresh/', { json: { refresh: p1.refresh } })).status, 401)
  t.equal((await call(url, '/api/token/refresh/', { json: { refresh: r1.body.refresh } })).status, 401)
  t.equal((await call(url, '/api/token/refresh/', { json: { refresh: 'not-a-token' } })).status, 401)
  for (let i = 0; i < 5; i++) t.equal((await call(url, '/api/me/', { token: p2.access })).status, 200)
  t.equal((await call(url, '/api/me/')).status, 401)
  t.equal((await call(url, '/no/such/path')).status, 404)

  // Load shedding as the hasher and the event-loop check report it (their tests make it happen).
  app.shed('password_hash')
  app.shed('password_hash')
  app.shed('event_loop')
  const { samples, contentType, text } = await scrape(`http://127.0.0.1:${metricsPort}/metrics`)
  t.match(contentType, /^text\/plain; version=0\.0\.4/)
  t.match(text, /# TYPE runway_http_requests_total counter/)
  t.match(text, /# TYPE runway_http_request_duration_seconds histogram/)
  const requests = (route: string, method: string, status: string) => total(samples, 'runway_http_requests_total', { route, method, status })
  t.same(
    {
      login2xx: requests('/api/token/', 'POST', '2xx'),
      login4xx: requests('/api/token/', 'POST', '4xx'),
      refresh2xx: requests('/api/token/refresh/', 'POST', '2xx'),
      refresh4xx: requests('/api/token/refresh/', 'POST', '4xx'),
      me2xx: requests('/api/me/', 'GET', '2xx'),
      me4xx: requests('/api/me/', 'GET', '4xx'),
      unmatched: requests('unmatched', 'GET', '4xx'),
      all: total(samples, 'runway_http_requests_total'),
    },
    { login2xx: 2, login4xx: 6, refresh2xx: 1, refresh4xx: 3, me2xx: 5, me4xx: 1, unmatched: 1, all: 19 },
    'requests by route, method and status class',
  )
  t.ok(
    samples.filter((s) => s.name === 'runway_http_requests_total').every((s) => s.labels.worker === 'w0'),
    'every series names its worker',
  )
  const outcome = (name: string, o: string) => total(samples, name, { outcome: o })
  t.same(
    {
      success: outcome('runway_logins_total', 'success'),
      bad: outcome('runway_logins_total', 'bad_credentials'),
      throttled: outcome('runway_logins_total', 'throttled'),
    },
    { success: 2, bad: 5, throttled: 1 },
    'logins by outcome',
  )
  t.same(
    ['rotated', 'reuse_detected', 'blacklisted', 'invalid'].map((o) => outcome('runway_token_refreshes_total', o)),
    [1, 1, 1, 1],
    'refreshes by outcome: rotated, reuse_detected, blacklisted, invalid',
  )
  t.equal(total(samples, 'runway_rate_limit_hits_total', { limit: 'login_user' }), 1, 'one rate-limit hit (per username)')
  t.equal(total(samples, 'runway_rate_limit_hits_total', { limit: 'login_ip' }), 0)
  t.equal(total(samples, 'runway_load_shed_total', { reason: 'password_hash' }), 2, 'load shed by the hash queue')
  t.equal(total(samples, 'runway_load_shed_total', { reason: 'event_loop' }), 1, 'load shed by the event-loop check')
  t.equal(total(samples, 'runway_revoked_sessions'), 1, 'the session ended by the reuse is a revocation')
  t.equal(total(samples, 'runway_store_errors_total'), 0)
  t.equal(total(samples, 'runway_ready'), 1)
  t.equal(total(samples, 'runway_build_info', { release: 'none' }), 1, 'build info (not a release directory: release="none")')
  t.equal(total(samples, 'runway_metrics_workers', { state: 'answered' }), 1)

  // The latency histogram of GET /api/me/: cumulative buckets ending in +Inf = count = 6.
  const me = samples.filter((s) => s.name === 'runway_http_request_duration_seconds_bucket' && s.labels.route === '/api/me/')
  t.same(
    me.map((s) => s.labels.le),
    [...LATENCY_BUCKETS.map(String), '+Inf'],
  )
  t.ok(
    me.every((s, i) => i === 0 || s.value >= me[i - 1]!.value),
    'cumulative',
  )
  t.equal(me.at(-1)!.value, 6)
  t.equal(total(samples, 'runway_http_request_duration_seconds_count', { route: '/api/me/' }), 6)
  t.ok(total(samples, 'runway_http_request_duration_seconds_sum', { route: '/api/me/' }) > 0)
  t.equal(total(samples, 'runway_http_request_duration_seconds_count', { route: 'unmatched' }), 0, 'unmatched requests: counted, no latency')
  // Runtime metrics from prom-client.
  for (const name of [
    'process_resident_memory_bytes',
    'nodejs_heap_size_used_bytes',
    'process_start_time_seconds',
    'nodejs_eventloop_lag_p99_seconds',
    'runway_eventloop_busy_seconds_total',
  ]) {
    t.ok(
      samples.some((s) => s.name === name && s.labels.worker === 'w0'),
      name,
    )
  }

  const json = (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics?format=json`)).json()) as ClusterSnapshot
  t.same(
    json.workers.map((w) => w.worker),
    ['w0'],
  )
  t.equal(json.metrics.find((m) => m.name === 'runway_logins_total')?.values.length, 3)
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404)
  t.equal((await call(url, '/metrics')).status, 404, 'the API port (what nginx proxies) has no /metrics')

  // runway status's figures from two readings of the same endpoint.
  const read = async () => (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics?format=json`)).json()) as ClusterSnapshot
  const before = await read()
  const started = Date.now()
  for (let i = 0; i < 30; i++) await call(url, '/api/me/', { token: p2.access })
  for (let i = 0; i < 10; i++) await call(url, '/api/me/')
  const after = await read()
  const {
    workers: [w],
    host,
  } = clusterFigures(before, after, (Date.now() - started) / 1000)
  t.same({ worker: host!.worker, requests: host!.requests }, { worker: 'all', requests: 40 }, 'the host line sums its one worker')
  t.same(
    { worker: w!.worker, requests: w!.requests, errorRate: w!.errorRate, ready: w!.ready },
    { worker: 'w0', requests: 40, errorRate: 0, ready: true },
    'figures: 40 requests in the window, no 5xx',
  )
  t.ok(
    w!.requestsPerSec > 0 && w!.p99Seconds! > 0 && w!.lagP99Seconds! >= 0 && w!.utilization! > 0 && w!.utilization! <= 1,
    `rate ${w!.requestsPerSec.toFixed(0)}/s, p99 ${w!.p99Seconds}, lag ${w!.lagP99Seconds}, busy ${w!.utilization}`,
  )
})

t.test('figures: error rate, p99 as histogram_quantile, a restarted worker', async (t) => {
  t.equal(
    p99FromBuckets(
      new Map([
        ['0.001', 0],
        ['0.0025', 50],
        ['0.005', 100],
        ['+Inf', 100],
      ]),
    ),
    0.0025 + (0.0025 * 49) / 50,
    'interpolated in its bucket',
  )
  t.equal(
    p99FromBuckets(
      new Map([
        ['0.001', 0],
        ['+Inf', 10],
      ]),
    ),
    0.001,
    'beyond the last bound: that bound',
  )
  t.equal(p99FromBuckets(new Map([['+Inf', 0]])), null)
  const m = new AppMetrics()
  const registry = createRegistry(m, { worker: '0', revokedSessions: () => 0, storeFaults: () => 0, ready: async () => true })
  const snap = async (pid: number): Promise<ClusterSnapshot> => ({
    workers: [{ worker: '0', pid, startedAt: 0 }],
    failed: [],
    metrics: (await registry.getMetricsAsJSON()) as unknown as MetricJson[],
  })
  const me = m.route('/api/me/', 'GET')
  for (let i = 0; i < 50; i++) me.record(200, 0.002)
  const a = await snap(1)
  for (let i = 0; i < 90; i++) me.record(200, 0.002)
  for (let i = 0; i < 10; i++) me.record(503, 0.2)
  const b = await snap(1)
  const [f] = clusterFigures(a, b, 10).workers
  t.same({ requests: f!.requests, rate: f!.requestsPerSec, errorRate: f!.errorRate }, { requests: 100, rate: 10, errorRate: 0.1 })
  t.ok(f!.p99Seconds! > 0.1 && f!.p99Seconds! <= 0.25, `p99 in the 0.1-0.25 s bucket (${f!.p99Seconds})`)
  const [restarted] = clusterFigures(a, await snap(2), 10).workers
  t.equal(restarted!.requests, 150, 'a new pid: everything it counted is in the window')

  // Two workers: the host sums counts, takes p99 over both, the worst lag, ready only if all are.
  const two = (s: ClusterSnapshot, second: ClusterSnapshot): ClusterSnapshot => ({
    workers: [...s.workers, { worker: '1', pid: 9, startedAt: 0 }],
    failed: [],
    metrics: s.metrics.map((metric) => ({
      ...metric,
      values: [
        ...metric.values,
        ...(second.metrics.find((x) => x.name === metric.name)?.values ?? []).map((v) => ({
          ...v,
          labels: { ...v.labels, worker: '1' },
          value: metric.name === 'runway_ready' ? 0 : v.value,
        })),
      ],
    })),
  })
  const host = clusterFigures(two(a, a), two(b, a), 10).host!
  t.same(
    { requests: host.requests, errorRate: host.errorRate, ready: host.ready },
    { requests: 100, errorRate: 0.1, ready: false },
    'worker 1 had no requests in the window and is not ready',
  )
})

t.test('metrics off (METRICS_PORT empty): requests are not counted', async (t) => {
  const { app, url } = await startApp(t)
  await call(url, '/healthz')
  t.equal(
    app.metrics.allRoutes().reduce((a, s) => a + s.count, 0),
    0,
  )
})

t.test('runway_ready is 0 when the readiness check fails or hangs', async (t) => {
  for (const [what, ready] of [
    ['fails', async () => false],
    ['hangs', () => new Promise<boolean>(() => {})],
    ['throws', async () => Promise.reject(new Error('x'))],
  ] as const) {
    const registry = createRegistry(new AppMetrics(), { worker: '0', revokedSessions: () => 0, storeFaults: () => 3, ready })
    const json = await registry.getMetricsAsJSON()
    t.equal(json.find((x) => x.name === 'runway_ready')?.values[0]?.value, 0, `not ready when the check ${what}`)
    t.equal(json.find((x) => x.name === 'runway_store_errors_total')?.values[0]?.value, 3)
  }
})

t.test('the endpoint answers for every worker socket in the directory', async (t) => {
  const dir = join(tempDir(t), 'sockets')
  const workers = ['0', '1'].map((w) => ({ worker: w, m: new AppMetrics() }))
  workers[0]!.m.route('/api/me/', 'GET').record(200, 0.002)
  const s1 = workers[1]!.m.route('/api/me/', 'GET')
  for (let i = 0; i < 3; i++) s1.record(200, 0.003)
  const ports = [await freePort(), await freePort()]
  for (const [i, w] of workers.entries()) {
    const registry = createRegistry(w.m, { worker: w.worker, revokedSessions: () => 0, storeFaults: () => 0, ready: async () => true })
    const l = await startMetricsListener({ host: '127.0.0.1', port: ports[i]!, socketDir: dir, worker: w.worker, registry, log: silent })
    t.teardown(() => l.close())
  }
  // A socket file left by a process that is gone: tidied away, not reported.
  const gone = spawnSync('true').pid!
  const stale = join(dir, `worker-7-${gone}.sock`)
  writeFileSync(stale, '')
  for (const port of ports) {
    const { samples } = await scrape(`http://127.0.0.1:${port}/metrics`)
    t.equal(total(samples, 'runway_http_requests_total'), 4, `scraping worker ${ports.indexOf(port)}: both workers, 1 + 3 requests`)
    t.equal(total(samples, 'runway_http_requests_total', { worker: '1' }), 3)
    t.equal(total(samples, 'runway_metrics_workers', { state: 'answered' }), 2)
    t.equal(total(samples, 'runway_metrics_workers', { state: 'failed' }), 0)
  }
  t.notOk(existsSync(stale), 'the stale socket file was removed')

  // A socket file nobody listens on, of a live pid (reused by another process): stale once it is
  // older than a start takes; while fresh it may be a worker about to listen, so it is kept.
  const reused = join(dir, `worker-8-${process.pid}.sock`)
  writeFileSync(reused, '')
  const fresh = await scrape(`http://127.0.0.1:${ports[0]}/metrics`)
  t.equal(total(fresh.samples, 'runway_metrics_workers', { state: 'failed' }), 1, 'a fresh unanswered socket: reported, kept')
  t.ok(existsSync(reused))
  utimesSync(reused, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
  const old = await scrape(`http://127.0.0.1:${ports[0]}/metrics`)
  t.equal(total(old.samples, 'runway_metrics_workers', { state: 'failed' }), 0, 'an old one: removed, not a failure')
  t.notOk(existsSync(reused))

  // A live process whose socket does not answer: the scrape still comes, and says one failed.
  const mute = net.createServer((socket) => socket.resume()) // reads, never answers
  await new Promise<void>((resolve) => mute.listen(join(dir, `worker-9-${process.pid}.sock`), resolve))
  t.teardown(() => new Promise<void>((resolve) => mute.close(() => resolve())))
  const { samples } = await scrape(`http://127.0.0.1:${ports[0]}/metrics`)
  t.equal(total(samples, 'runway_metrics_workers', { state: 'failed' }), 1)
  t.equal(total(samples, 'runway_http_requests_total'), 4, 'the answering workers are all there')
})

t.test('a metrics port that cannot be bound stops the start with one line', async (t) => {
  const busy = net.createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => busy.close(() => resolve())))
  const port = (busy.address() as net.AddressInfo).port
  const registry = createRegistry(new AppMetrics(), { worker: '0', revokedSessions: () => 0, storeFaults: () => 0, ready: async () => true })
  await t.rejects(startMetricsListener({ host: '127.0.0.1', port, socketDir: join(tempDir(t), 's'), worker: '0', registry, log: silent }), {
    message: new RegExp(`^metrics listener on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`),
  })
})

t.test('settings: off by default, validated, never the API port', async (t) => {
  t.equal(loadConfig({}).metrics, null, 'off unless METRICS_PORT is set')
  const on = loadConfig({ METRICS_PORT: '9464', DATA_DIR: '/srv/data' })
  t.same(on.metrics, { host: '127.0.0.1', port: 9464, socketDir: '/srv/data/metrics' })
  t.throws(() => loadConfig({ METRICS_PORT: 'x' }), /^METRICS_PORT="x" is invalid: expected empty \(off\) or a port from 1 to 65535$/)
  t.throws(() => loadConfig({ METRICS_PORT: '70000' }), /METRICS_PORT=70000 is invalid/)
  t.throws(() => loadConfig({ METRICS_PORT: '3000' }), /is the API's PORT/)
})
