// What one API process counts. The request path only bumps plain numbers in arrays that belong to
// its route (found once, when the route is registered); the Prometheus registry (registry.ts, loaded
// only when METRICS_PORT is set) reads those numbers at scrape time. So a request pays no label
// lookup, no hashing and no allocation for being counted, and a worker without metrics never loads
// prom-client.

/** Latency buckets (seconds): fine below 10 ms, where GET /api/me/ lives; logins hash for 50-300 ms. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
/** Requests that matched no route (404s, and 405s) share one route label, so scanners cannot add series. */
export const UNMATCHED_ROUTE = 'unmatched'

/** One route and method: requests by status class and a latency histogram, as plain numbers. */
export class RouteSeries {
  /** Index = status / 100 (1..5); anything else lands in 0 and is exported as 5xx. */
  readonly statuses = new Float64Array(6)
  /** Non-cumulative: buckets[i] counts latencies in (LATENCY_BUCKETS[i-1], LATENCY_BUCKETS[i]]. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length)
  count = 0
  sum = 0
  constructor(
    readonly route: string,
    readonly method: string,
  ) {}

  /** A request answered (the latency unknown: no route matched). */
  countOnly(status: number): void {
    const cls = (status / 100) | 0
    this.statuses[cls >= 1 && cls <= 5 ? cls : 0]!++
  }

  record(status: number, seconds: number): void {
    this.countOnly(status)
    let i = 0
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++
    if (i < LATENCY_BUCKETS.length) this.buckets[i]!++
    this.count++
    this.sum += seconds
  }
}

/** Counters for what happened, by outcome. Routes bump them directly (`metrics.logins.success++`). */
export class AppMetrics {
  readonly logins = { success: 0, bad_credentials: 0, throttled: 0 }
  /** rotated: accepted (and rotated when ROTATE_REFRESH_TOKENS); reuse_detected: a retired token came back and its session was revoked; blacklisted: refused as already retired or revoked; invalid: bad, expired or unknown token, or no active user. */
  readonly refreshes = { rotated: 0, reuse_detected: 0, blacklisted: 0, invalid: 0 }
  readonly rateLimitHits = { login_ip: 0, login_user: 0 }
  /** Requests refused with 503 + Retry-After because this process was overloaded: password_hash: the hash queue was full or its wait too long; event_loop: the loop lagged past MAX_EVENT_LOOP_DELAY. */
  readonly loadShed = { password_hash: 0, event_loop: 0 }
  private readonly routes: RouteSeries[] = []
  private readonly unmatched = new Map<string, RouteSeries>()

  /** The series of a route, made once when the route is registered. */
  route(url: string, method: string): RouteSeries {
    const series = new RouteSeries(url, method)
    this.routes.push(series)
    return series
  }

  /** The series for a request no route matched: one per method (unknown methods as OTHER). */
  unmatchedRoute(method: string | undefined): RouteSeries {
    const m = method && KNOWN_METHODS.has(method) ? method : 'OTHER'
    let series = this.unmatched.get(m)
    if (!series) this.unmatched.set(m, (series = new RouteSeries(UNMATCHED_ROUTE, m)))
    return series
  }

  allRoutes(): RouteSeries[] {
    return [...this.routes, ...this.unmatched.values()]
  }
}

/** One metric as prom-client's getMetricsAsJSON() gives it (its published types say less). */
export interface MetricJson {
  name: string
  help: string
  type: string
  aggregator: string
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>
}
