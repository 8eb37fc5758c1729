// Turning repeated runs into the figure a report shows: the median for rates, latencies and CPU
// (one noisy run on a shared machine does not move it), totals for error counts (an error in any
// run is an error).
import type { Latency, RunFigures } from './schema.js'

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

/**
 * Server CPU per operation in ms, to 0.1 ms: `serverCpuPct` (100 = one core busy) for `seconds`,
 * shared by `count` operations (the login benches: CPU per login). Callers say what 0 operations give.
 */
export const cpuMsPer = (serverCpuPct: number, seconds: number, count: number) => round(((serverCpuPct / 100) * seconds * 1000) / count, 1)

/** Percentiles of raw samples (ms), nearest-rank. */
export function percentiles(samples: readonly number[]): Latency {
  const s = [...samples].sort((a, b) => a - b)
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : 0)
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0
  return { p50: round(at(50), 1), p90: round(at(90), 1), p99: round(at(99), 1), max: round(s.at(-1) ?? 0, 1), mean: round(mean, 1) }
}

export function summarize(runs: readonly RunFigures[]): RunFigures {
  const m = (pick: (r: RunFigures) => number) => round(median(runs.map(pick)))
  const sum = (pick: (r: RunFigures) => number) => runs.reduce((a, r) => a + pick(r), 0)
  const lat = (pick: (r: RunFigures) => Latency | undefined): Latency => {
    const of = runs.map(pick).filter((l): l is Latency => l !== undefined)
    return {
      p50: round(median(of.map((l) => l.p50))),
      p90: round(median(of.map((l) => l.p90))),
      p99: round(median(of.map((l) => l.p99))),
      max: round(Math.max(0, ...of.map((l) => l.max))),
      mean: round(median(of.map((l) => l.mean))),
    }
  }
  const sessions = runs.some((r) => r.sessions) ? { completed: sum((r) => r.sessions?.completed ?? 0), latency: lat((r) => r.sessions?.latency) } : undefined
  const statusCodes: Record<string, number> = {}
  for (const r of runs) for (const [code, n] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n
  return {
    rps: m((r) => r.rps),
    responses: sum((r) => r.responses),
    durationSec: round(sum((r) => r.durationSec)),
    latency: lat((r) => r.latency),
    ...(sessions ? { sessions } : {}),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    mismatches: sum((r) => r.mismatches),
    statusCodes,
    serverCpu: m((r) => r.serverCpu),
    serverRssMb: m((r) => r.serverRssMb),
    loadgenCpu: m((r) => r.loadgenCpu),
    otherCpu: m((r) => r.otherCpu),
  }
}

/** Others' CPU% above which a run on a shared machine measures its neighbours as much as the stack. */
export const OTHER_CPU_LIMIT = 30

/** Failed responses of any kind (connection errors, timeouts, non-2xx, wrong bodies). */
export function failures(r: RunFigures): number {
  // autocannon counts timeouts inside errors as well.
  return r.errors + r.non2xx + r.mismatches
}

/** What each failing status usually means for this API behind runway's nginx. */
const CAUSES: Record<string, string> = {
  '429':
    'rate limited: the login/token limits of the app (LOGIN_RATE_LIMIT_IP, LOGIN_RATE_LIMIT_USER) or nginx (--rate); raise them on a load-test target, or use scenarios without login',
  '401': 'credentials or token refused (wrong password, expired or revoked token)',
  '413': 'request body above BODY_LIMIT / client_max_body_size',
  '502': 'nginx could not reach the app (not running, wrong upstream)',
  '503':
    'the app shed load (runway_load_shed_total, a load-shedding warning in its log) or its store is unavailable (runway_store_errors_total); Retry-After says when to retry',
  '504': 'the app answered slower than nginx --proxy-timeout',
}

/** "429 × 1234 (rate limited: …), connection errors 3, wrong bodies 2" */
/** What failed, by kind, with the usual cause of each status. */
export function failureBreakdown(r: RunFigures): string {
  const parts = Object.entries(r.statusCodes)
    .filter(([code]) => !code.startsWith('2'))
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} × ${n}${CAUSES[code] ? ` (${CAUSES[code]})` : ''}`)
  if (r.errors) parts.push(`connection errors/timeouts ${r.errors}`)
  if (r.mismatches) parts.push(`2xx with an unexpected body ${r.mismatches}`)
  return parts.join(', ') || 'none'
}

/** Failed share of all attempts, in percent. */
export function errorRate(r: RunFigures): number {
  const attempts = r.responses + r.errors
  return attempts === 0 ? 100 : (100 * failures(r)) / attempts
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US')
/** autocannon records whole milliseconds: its 0 is a response under one. */
export const fmtMs = (n: number) => (n >= 100 ? `${Math.round(n)} ms` : n === 0 ? '< 1 ms' : `${round(n, 1)} ms`)
export const fmtRatio = (n: number | undefined) => (n === undefined ? '–' : `${round(n, 2).toFixed(2)}×`)
export const fmtPct = (n: number | undefined) => (n === undefined ? '–' : `${Math.round(n * 100)}%`)
