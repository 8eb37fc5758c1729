// The Prometheus registry of one API process: prom-client metrics whose collect() callbacks read
// the plain counters of app-metrics.ts at scrape time. Imported only when metrics are on
// (METRICS_PORT), so a worker without them never loads prom-client and its dependencies.
import { basename, dirname, join } from 'node:path'
import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client'
import { LATENCY_BUCKETS, STATUS_CLASSES, type AppMetrics, type MetricJson } from './app-metrics.js'

export interface RegistryOptions {
  /** The pm2 instance id (NODE_APP_INSTANCE) or the pid: the `worker` label of every series. */
  worker: string
  /** Number of revoked sessions this process knows of. */
  revokedSessions: () => number
  /** Store faults met so far by requests, readiness checks and background tasks. */
  storeFaults: () => number
  /** What /readyz answers: true when the store can serve. */
  ready: () => Promise<boolean>
}

/**
 * The checkout or release root: the nearest directory above this module with runway's
 * package.json. Searched, not a fixed '../..': this module runs from dist/api/metrics/ and, bundled
 * into the worker, from dist/api/server.js.
 */
function packageRoot(): { dir: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'runway') return { dir, version: pkg.version ?? 'unknown' }
    } catch {
      // no package.json here (or dist/'s, which only says "type": "module")
    }
    const up = dirname(dir)
    if (up === dir) return { dir: '', version: 'unknown' }
    dir = up
  }
}
const ROOT = packageRoot()

/** A deploy's release directory name (deploy/layout.ts makes them: <UTC stamp>-<git sha>). */
const RELEASE_NAME = /^\d{8}T\d{6}Z-[0-9a-zA-Z._-]+$/

/** The release directory's name when running from a deploy's releases/<id>/, else "none". */
export function releaseId(): string {
  let name = basename(ROOT.dir)
  try {
    name = basename(realpathSync(ROOT.dir))
  } catch {
    // keep the unresolved name
  }
  return RELEASE_NAME.test(name) ? name : 'none'
}

const READY_TIMEOUT_MS = 1000

/** A prom-client registry whose metrics read `m` at scrape time. */
export function createRegistry(m: AppMetrics, o: RegistryOptions): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ worker: o.worker })
  // Process and runtime: CPU, RSS (process_resident_memory_bytes), heap, GC, handles,
  // process_start_time_seconds and event-loop lag (nodejs_eventloop_lag_p99_seconds and friends,
  // over the time since the previous scrape).
  collectDefaultMetrics({ register: registry })
  const registers = [registry]

  new Counter({
    name: 'runway_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status class.',
    labelNames: ['route', 'method', 'status'],
    registers,
    collect() {
      this.reset()
      for (const s of m.allRoutes()) {
        for (let c = 1; c <= 5; c++) {
          const n = s.statuses[c]! + (c === 5 ? s.statuses[0]! : 0)
          if (n > 0) this.inc({ route: s.route, method: s.method, status: STATUS_CLASSES[c - 1]! }, n)
        }
      }
    },
  })
  registry.registerMetric(latencyHistogram(m))

  const outcomes = (name: string, help: string, label: string, counts: Record<string, number>) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers,
      collect() {
        this.reset()
        for (const [k, n] of Object.entries(counts)) this.inc({ [label]: k }, n)
      },
    })
  outcomes('runway_logins_total', 'Login attempts (POST /api/token/) by outcome: success, bad_credentials, throttled.', 'outcome', m.logins)
  outcomes(
    'runway_token_refreshes_total',
    'Refresh attempts by outcome: rotated, reuse_detected (session revoked), blacklisted, invalid.',
    'outcome',
    m.refreshes,
  )
  outcomes('runway_rate_limit_hits_total', 'Requests refused by a login rate limit, by limit.', 'limit', m.rateLimitHits)
  outcomes(
    'runway_load_shed_total',
    'Requests answered 503 + Retry-After because the process was overloaded, by reason: password_hash (the hash queue full or its wait too long), event_loop (the loop lagging past MAX_EVENT_LOOP_DELAY).',
    'reason',
    m.loadShed,
  )
  new Counter({
    name: 'runway_store_errors_total',
    help: 'Store faults (store unavailable: each answered 503) met by requests, readiness checks and background tasks.',
    registers,
    collect() {
      this.reset()
      this.inc(o.storeFaults())
    },
  })

  new Gauge({
    name: 'runway_revoked_sessions',
    help: 'Revoked sessions whose tokens could still be unexpired (the in-memory revocation set).',
    registers,
    collect() {
      this.set(o.revokedSessions())
    },
  })
  new Gauge({
    name: 'runway_ready',
    help: '1 when /readyz would answer 200 (the store can serve), else 0; 0 too when the check takes over 1 s.',
    registers,
    async collect() {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS)))
      try {
        this.set((await Promise.race([o.ready(), late])) ? 1 : 0)
      } catch {
        this.set(0)
      } finally {
        clearTimeout(timer)
      }
    },
  })
  // Utilisation as a counter: rate(runway_eventloop_busy_seconds_total[1m]) is the fraction of
  // time the loop was busy, exact over any window and for any number of scrapers.
  new Counter({
    name: 'runway_eventloop_busy_seconds_total',
    help: 'Time the event loop spent busy (not idle); its rate is the event-loop utilisation (0-1).',
    registers,
    collect() {
      this.reset()
      this.inc(performance.eventLoopUtilization().active / 1000)
    },
  })
  new Gauge({
    name: 'runway_build_info',
    help: 'Always 1; the labels say which runway version and deployed release this process runs.',
    labelNames: ['version', 'release', 'node_version'],
    registers,
  }).set({ version: ROOT.version, release: releaseId(), node_version: process.version }, 1)
  return registry
}

/** runway_http_request_duration_seconds from the route arrays, in prom-client's JSON shape. */
function latencyHistogram(m: AppMetrics): Metric {
  const name = 'runway_http_request_duration_seconds'
  const help = 'Time from routing to the last byte of the response, by route pattern and method.'
  const get = async (): Promise<MetricJson> => {
    const values: MetricJson['values'] = []
    for (const s of m.allRoutes()) {
      if (s.count === 0) continue
      const labels = { route: s.route, method: s.method }
      let cumulative = 0
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += s.buckets[i]!
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative })
      })
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count })
      values.push({ metricName: `${name}_sum`, labels, value: s.sum })
      values.push({ metricName: `${name}_count`, labels, value: s.count })
    }
    return { name, help, type: 'histogram', aggregator: 'sum', values }
  }
  // What a Registry needs of a metric: name, help, type and get() (reset() for resetMetrics()).
  return { name, help, type: 'histogram', aggregator: 'sum', get, reset() {} } as unknown as Metric
}

/** The registry of a built app: its counters, revocations and store health, labelled `worker`. */
export function appRegistry(app: FastifyInstance, worker: string): Registry {
  return createRegistry(app.metrics, {
    worker,
    revokedSessions: () => app.revocations.size,
    storeFaults: () => app.storeHealth.faults,
    ready: async () => (await app.storeHealth.check()) === undefined,
  })
}
