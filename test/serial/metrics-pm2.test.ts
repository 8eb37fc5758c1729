// One scrape describes the whole pm2 cluster: a real 2-worker cluster (pm2 from node_modules,
// ecosystem.config.js --env production, a private copy of dist/), a known number of requests
// pinned to each worker, and every scrape (whichever worker pm2's round robin hands it to) reads
// exactly that count. Then a worker is killed and the cluster reloaded: scrapes stay whole.
import t from 'tap'
import { execFile } from 'node:child_process'
import http from 'node:http'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startPm2Cluster } from '../../src/bench/stacks/pm2.js'
import { freePort } from '../../src/lib/process.js'
import { connectToWorker, login, seedUser, stackEnv, staged } from '../helpers/runtime.js'
import { parseExposition, total, type Sample } from '../helpers/metrics.js'

const PER_WORKER = 25
const copy = await staged(t, 'dist')
await seedUser(copy.dir, 'alice')
const metricsPort = await freePort()
const stack = await startPm2Cluster({ cwd: copy.dir, instances: 2, env: stackEnv(copy.dir, { METRICS_PORT: String(metricsPort) }) })
t.teardown(() => stack.stop())
const socketDir = join(copy.dir, 'data', 'metrics')

/** One scrape on a new connection (so pm2's round robin picks the worker that answers it). */
const scrape = () =>
  new Promise<{ samples: Sample[]; text: string }>((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${metricsPort}/metrics`, { agent: false }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () => (res.statusCode === 200 ? resolve({ text, samples: parseExposition(text) }) : reject(new Error(`HTTP ${res.statusCode}: ${text}`))))
      })
      .on('error', reject)
  })
const meCount = (samples: Sample[], where: Record<string, string> = {}) =>
  total(samples, 'runway_http_requests_total', { route: '/api/me/', method: 'GET', status: '2xx', ...where })

t.test('a known number of requests, read exactly from one scrape, whichever worker answers it', async (t) => {
  const [w0, w1] = [await connectToWorker(t, stack.url, '0'), await connectToWorker(t, stack.url, '1')]
  const pair = await login(w0)
  for (const c of [w0, w1]) {
    for (let i = 0; i < PER_WORKER; i++) {
      const r = await c.request('/api/me/', { token: pair.access })
      if (r.status !== 200) throw new Error(`GET /api/me/: ${r.status}`)
    }
  }
  const pids = new Set<string>()
  for (let i = 0; i < 6; i++) {
    const { samples } = await scrape()
    t.equal(meCount(samples), 2 * PER_WORKER, `scrape ${i + 1}: ${2 * PER_WORKER} GET /api/me/ in total`)
    t.same([meCount(samples, { worker: '0' }), meCount(samples, { worker: '1' })], [PER_WORKER, PER_WORKER], 'per worker')
    t.equal(total(samples, 'runway_logins_total', { outcome: 'success' }), 1, 'the one login, on worker 0')
    t.equal(total(samples, 'runway_metrics_workers', { state: 'answered' }), 2)
    t.equal(total(samples, 'runway_ready'), 2, 'both workers ready')
    for (const s of samples.filter((x) => x.name === 'process_start_time_seconds')) pids.add(`${s.labels.worker}@${s.value}`)
  }
  t.equal(pids.size, 2, 'start times of exactly two workers')
  t.equal(readdirSync(socketDir).length, 2, 'one socket per worker')
})

t.test("runway status's probe: each worker's figures from the same endpoint", async (t) => {
  const [w0, w1] = [await connectToWorker(t, stack.url, '0'), await connectToWorker(t, stack.url, '1')]
  const { access } = await login(w0)
  // Requests on both workers while the probe takes its two readings (2 s apart).
  let probing = true
  const traffic = [w0, w1].map(async (c) => {
    let n = 0
    while (probing && n < 2000) if ((await c.request('/api/me/', { token: access })).status === 200) n++
    return n
  })
  const probe = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
    execFile(
      process.execPath,
      [join(copy.dir, 'dist', 'ops', 'deploy', 'remote.js'), 'probe', '--release', copy.dir, '--url', `${stack.url}/readyz`],
      { env: { ...process.env, PM2_HOME: stack.pm2Home, METRICS_PORT: String(metricsPort) }, timeout: 60_000 },
      (err, stdout, stderr) => (err && !stdout ? reject(err) : resolve({ stdout, stderr })),
    ),
  ).finally(() => (probing = false))
  const sent = await Promise.all(traffic)
  type Figures = { worker: string; requests: number; requestsPerSec: number; errorRate: number; p99Seconds: number; lagP99Seconds: number; ready: boolean }
  const report = JSON.parse(probe.stdout.trim().split('\n').pop()!) as { metrics: { url: string; workers: Figures[]; host: Figures } }
  t.equal(report.metrics.url, `http://127.0.0.1:${metricsPort}/metrics`)
  t.same(
    report.metrics.workers.map((w) => w.worker),
    ['0', '1'],
    'figures for both workers',
  )
  for (const w of report.metrics.workers) {
    t.ok(
      w.requests > 0 && w.requests <= sent[Number(w.worker)]!,
      `worker ${w.worker}: ${w.requests} of its ${sent[Number(w.worker)]} requests fell in the window (${w.requestsPerSec.toFixed(0)}/s)`,
    )
    t.equal(w.errorRate, 0, 'no 5xx')
    t.ok(w.p99Seconds > 0 && w.lagP99Seconds >= 0, `p99 ${w.p99Seconds}, lag p99 ${w.lagP99Seconds}`)
    t.equal(w.ready, true)
  }
  t.equal(report.metrics.host.requests, report.metrics.workers[0]!.requests + report.metrics.workers[1]!.requests, 'the host line sums both workers')
})

t.test('a killed worker: its replacement is in the next scrape, its socket file is tidied away', async (t) => {
  const before = await stack.workers()
  const worker0 = meCount((await scrape()).samples, { worker: '0' })
  const victim = before.find((w) => w.pmId === 1)!
  process.kill(victim.pid, 'SIGKILL')
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const now = (await stack.workers()).find((w) => w.pmId === 1)
    if (now && now.pid !== victim.pid && now.status === 'online') break
  }
  await stack.waitForWorkers()
  // The replacement has sent 'ready' (its socket listens) once pm2 says online.
  const { samples } = await scrape()
  t.equal(total(samples, 'runway_metrics_workers', { state: 'answered' }), 2, 'two workers answered')
  t.equal(total(samples, 'runway_metrics_workers', { state: 'failed' }), 0, 'the dead one is not a failure')
  t.equal(meCount(samples, { worker: '0' }), worker0, `worker 0 kept its count (${worker0})`)
  t.equal(meCount(samples, { worker: '1' }), 0, 'worker 1 is a new process: its counter restarted (a counter reset for Prometheus)')
  t.notOk(
    readdirSync(socketDir).some((n) => n.endsWith(`-${victim.pid}.sock`)),
    'no socket file of the killed process is left',
  )
})

t.test('after pm2 reload every scrape holds the two new workers', async (t) => {
  await stack.pm2(['reload', 'runway'])
  const after = await stack.waitForWorkers()
  for (let i = 0; i < 4; i++) {
    const { samples } = await scrape()
    t.equal(total(samples, 'runway_metrics_workers', { state: 'answered' }), 2, `scrape ${i + 1}: two workers`)
    t.same(new Set(samples.filter((s) => s.name === 'runway_build_info').map((s) => s.labels.worker)), new Set(['0', '1']))
  }
  t.same(
    readdirSync(socketDir)
      .map((n) => Number(/-([0-9]+)\.sock$/.exec(n)?.[1]))
      .sort(),
    after.map((w) => w.pid).sort(),
    'exactly the new workers have sockets',
  )
})
