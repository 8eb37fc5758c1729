// The key figures per worker (request rate, error rate, p99 latency, event-loop lag and
// utilisation) from two readings of the cluster endpoint's JSON (GET /metrics?format=json) a few
// seconds apart: the same source Prometheus scrapes. For `runway status`, which runs this next to
// the app (src/ops/deploy/remote.ts): Node built-ins only, so only types are imported.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MetricJson } from './app-metrics.js'
import type { ClusterSnapshot } from './cluster.js'

export interface WorkerFigures {
  worker: string
  pid: number
  /** Requests answered in the window. */
  requests: number
  /** Requests answered per second over the window. */
  requestsPerSec: number
  /** Share of those answered 5xx (0-1); null without requests. */
  errorRate: number | null
  /** p99 latency of the window's routed requests in seconds, interpolated in its bucket as Prometheus' histogram_quantile does; null without requests. */
  p99Seconds: number | null
  /** Event-loop delay p99 over the window, in seconds. */
  lagP99Seconds: number | null
  /** Share of the window the event loop was busy (0-1). */
  utilization: number | null
  /** 1 when the worker's store check passed at the second reading. */
  ready: boolean | null
}

type Values = MetricJson['values']

const valuesOf = (s: ClusterSnapshot, name: string, worker: string): Values =>
  (s.metrics.find((m) => m.name === name)?.values ?? []).filter((v) => String(v.labels.worker) === worker)
const sum = (vs: Values, keep: (v: Values[number]) => boolean = () => true) => vs.filter(keep).reduce((a, v) => a + v.value, 0)
/** A counter's increase; a smaller second reading means the worker restarted (a reset). */
const increase = (before: number, after: number) => (after >= before ? after - before : after)

/** The 0.99 quantile from cumulative bucket counts (summed over routes), as histogram_quantile. */
export function p99FromBuckets(buckets: Map<string, number>): number | null {
  const bounds = [...buckets.entries()].map(([le, n]) => ({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), n })).sort((a, b) => a.le - b.le)
  const count = bounds.at(-1)?.n ?? 0
  if (count === 0) return null
  const rank = 0.99 * count
  const i = bounds.findIndex((b) => b.n >= rank)
  const below = i > 0 ? bounds[i - 1]! : { le: 0, n: 0 }
  const b = bounds[i]!
  // Past the last finite bound the value is unknown: that bound, as Prometheus answers.
  if (b.le === Number.POSITIVE_INFINITY) return below.le
  return below.le + ((b.le - below.le) * (rank - below.n)) / (b.n - below.n)
}

interface Measured extends WorkerFigures {
  errors: number
  busySeconds: number | null
  /** Cumulative bucket counts of the window, by `le`. */
  buckets: Map<string, number>
}

function measure(before: ClusterSnapshot, after: ClusterSnapshot, seconds: number, worker: string, pid: number): Measured {
  const restarted = before.workers.find((w) => w.worker === worker)?.pid !== pid
  const delta = (name: string, keep?: (v: Values[number]) => boolean) => {
    const a = sum(valuesOf(after, name, worker), keep)
    return restarted ? a : increase(sum(valuesOf(before, name, worker), keep), a)
  }
  const requests = delta('runway_http_requests_total')
  const errors = delta('runway_http_requests_total', (v) => v.labels.status === '5xx')
  const buckets = new Map<string, number>()
  const addBuckets = (s: ClusterSnapshot, sign: number) => {
    for (const v of valuesOf(s, 'runway_http_request_duration_seconds', worker)) {
      if (v.metricName?.endsWith('_bucket')) buckets.set(String(v.labels.le), (buckets.get(String(v.labels.le)) ?? 0) + sign * v.value)
    }
  }
  addBuckets(after, 1)
  if (!restarted) addBuckets(before, -1)
  const lag = valuesOf(after, 'nodejs_eventloop_lag_p99_seconds', worker)[0]
  const busySeconds = valuesOf(after, 'runway_eventloop_busy_seconds_total', worker).length ? delta('runway_eventloop_busy_seconds_total') : null
  const ready = valuesOf(after, 'runway_ready', worker)[0]
  return {
    worker,
    pid,
    requests,
    errors,
    buckets,
    busySeconds,
    requestsPerSec: requests / seconds,
    errorRate: requests > 0 ? errors / requests : null,
    p99Seconds: p99FromBuckets(buckets),
    lagP99Seconds: lag ? lag.value : null,
    utilization: busySeconds === null ? null : Math.min(1, busySeconds / seconds),
    ready: ready ? ready.value === 1 : null,
  }
}

const figuresOnly = ({ errors: _e, buckets: _b, busySeconds: _s, ...f }: Measured): WorkerFigures => f

/**
 * Per worker, and for the host (worker "all": rates and counts summed, p99 over every worker's
 * requests, the worst lag, the mean busy share, ready only if every worker is).
 */
export function clusterFigures(before: ClusterSnapshot, after: ClusterSnapshot, seconds: number): { workers: WorkerFigures[]; host: WorkerFigures | null } {
  const measured = after.workers.map(({ worker, pid }) => measure(before, after, seconds, worker, pid))
  if (!measured.length) return { workers: [], host: null }
  const requests = measured.reduce((a, m) => a + m.requests, 0)
  const errors = measured.reduce((a, m) => a + m.errors, 0)
  const buckets = new Map<string, number>()
  for (const m of measured) for (const [le, n] of m.buckets) buckets.set(le, (buckets.get(le) ?? 0) + n)
  const lags = measured.flatMap((m) => (m.lagP99Seconds === null ? [] : [m.lagP99Seconds]))
  const busy = measured.flatMap((m) => (m.utilization === null ? [] : [m.utilization]))
  const host: WorkerFigures = {
    worker: 'all',
    pid: 0,
    requests,
    requestsPerSec: requests / seconds,
    errorRate: requests > 0 ? errors / requests : null,
    p99Seconds: p99FromBuckets(buckets),
    lagP99Seconds: lags.length ? Math.max(...lags) : null,
    utilization: busy.length ? busy.reduce((a, b) => a + b, 0) / busy.length : null,
    ready: measured.every((m) => m.ready === null) ? null : measured.every((m) => m.ready !== false),
  }
  return { workers: measured.map(figuresOnly), host }
}

/** Two readings of `url` (the cluster endpoint, `?format=json` added) `windowMs` apart. */
export async function sampleFigures(url: string, windowMs = 2000): Promise<ReturnType<typeof clusterFigures>> {
  const read = async () => {
    const res = await fetch(`${url}?format=json`, { signal: AbortSignal.timeout(10_000) })
    if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`)
    return { at: Date.now(), snapshot: (await res.json()) as ClusterSnapshot }
  }
  const first = await read()
  await new Promise((r) => setTimeout(r, windowMs))
  const second = await read()
  return clusterFigures(first.snapshot, second.snapshot, (second.at - first.at) / 1000)
}

/**
 * The cluster endpoint of the app in `dir`, from METRICS_PORT and METRICS_HOST in the environment
 * or `dir`/.env (what the workers read); undefined when metrics are off.
 */
export function metricsUrl(dir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file: Record<string, string> = {}
  try {
    for (const line of readFileSync(join(dir, '.env'), 'utf8').split('\n')) {
      const m = /^\s*(METRICS_PORT|METRICS_HOST)\s*=\s*(.*?)\s*$/.exec(line)
      if (m) file[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2')
    }
  } catch {
    // no .env: the environment alone
  }
  const port = env.METRICS_PORT ?? file.METRICS_PORT
  if (!port) return undefined
  let host = env.METRICS_HOST || file.METRICS_HOST || '127.0.0.1'
  if (host === '0.0.0.0' || host === '::') host = '127.0.0.1' // bound everywhere: ask over loopback
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`
}
