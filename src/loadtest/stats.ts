// Turning repeated runs into the figure a report shows: the median for rates, latencies and CPU
// (one noisy run on a shared machine does not move it), totals for error counts (an error in any
// run is an error).
import type { RunFigures } from './schema.js'

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

export function summarize(runs: readonly RunFigures[]): RunFigures {
  const m = (pick: (r: RunFigures) => number) => round(median(runs.map(pick)))
  const sum = (pick: (r: RunFigures) => number) => runs.reduce((a, r) => a + pick(r), 0)
  const statusCodes: Record<string, number> = {}
  for (const r of runs) for (const [code, n] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n
  return {
    rps: m((r) => r.rps),
    responses: sum((r) => r.responses),
    durationSec: round(sum((r) => r.durationSec)),
    latency: {
      p50: m((r) => r.latency.p50),
      p90: m((r) => r.latency.p90),
      p99: m((r) => r.latency.p99),
      max: round(Math.max(0, ...runs.map((r) => r.latency.max))),
      mean: m((r) => r.latency.mean),
    },
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

/** Failed responses of any kind (connection errors, timeouts, non-2xx, wrong bodies). */
export function failures(r: RunFigures): number {
  // autocannon counts timeouts inside errors as well.
  return r.errors + r.non2xx + r.mismatches
}

/** Failed share of all attempts, in percent. */
export function errorRate(r: RunFigures): number {
  const attempts = r.responses + r.errors
  return attempts === 0 ? 100 : (100 * failures(r)) / attempts
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US')
export const fmtMs = (n: number) => (n >= 100 ? `${Math.round(n)} ms` : `${round(n, 1)} ms`)
export const fmtRatio = (n: number | undefined) => (n === undefined ? '–' : `${round(n, 2).toFixed(2)}×`)
export const fmtPct = (n: number | undefined) => (n === undefined ? '–' : `${Math.round(n * 100)}%`)
