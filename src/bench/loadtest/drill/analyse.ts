// From the requests a drill recorded to its figures: a per-second timeline, the before / during /
// after windows around the fault, and when (if ever) the stack was back to full rate.
import type { LoadRecord, Outcome } from './load.js'

export interface Second {
  /** Start of the second, seconds since the load began. */
  t: number
  ok: number
  /** Failed requests that ended in this second, by outcome (refused, reset, timeout, http_503…). */
  failed: Record<string, number>
  /** Latency of this second's successes, ms (0 when none). */
  p50: number
  p99: number
}

export interface Window {
  name: 'before' | 'during' | 'after'
  fromSec: number
  toSec: number
  ok: number
  failed: number
  byKind: Record<string, number>
  /** Successes per second. */
  rate: number
  p50: number
  p99: number
}

export interface Analysis {
  requests: number
  ok: number
  failed: number
  byKind: Record<string, number>
  timeline: Second[]
  windows: Window[]
  /** Successes per second before the fault: "full rate". */
  baselineRate: number
  /**
   * Seconds from the fault until the stack was back: no failure from then on and every following
   * second at ≥ RECOVERED_FRACTION of the baseline rate. null: not back by the end of the run.
   */
  recoverySec: number | null
  /** Failed requests from the fault to the end of the run. */
  failedAfterFault: number
}

/** "Back to full rate": every later second at this share of the rate before the fault, or more. */
export const RECOVERED_FRACTION = 0.5
const STEP_MS = 100

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

function summarise(rec: LoadRecord, from: number, to: number) {
  const lat: number[] = []
  const byKind: Record<string, number> = {}
  let ok = 0
  let failed = 0
  for (let i = 0; i < rec.t.length; i++) {
    const t = rec.t[i]!
    if (t < from || t >= to) continue
    const o: Outcome = rec.outcome[i]!
    if (o === 'ok') {
      ok++
      lat.push(rec.ms[i]!)
    } else {
      failed++
      byKind[o] = (byKind[o] ?? 0) + 1
    }
  }
  lat.sort((a, b) => a - b)
  return { ok, failed, byKind, p50: percentile(lat, 50), p99: percentile(lat, 99) }
}

/**
 * @param faultAtMs when the fault was injected (ms since the load began)
 * @param duringMs how long the "during" window lasts after the fault
 */
export function analyse(rec: LoadRecord, durationMs: number, faultAtMs: number, duringMs: number): Analysis {
  const end = Math.max(durationMs, ...rec.t.slice(-1))
  const timeline: Second[] = []
  for (let s = 0; s <= Math.floor(end / 1000); s++) {
    const x = summarise(rec, s * 1000, (s + 1) * 1000)
    timeline.push({ t: s, ok: x.ok, failed: x.byKind, p50: x.p50, p99: x.p99 })
  }
  const windows: Window[] = (
    [
      ['before', 0, faultAtMs],
      ['during', faultAtMs, Math.min(end, faultAtMs + duringMs)],
      ['after', Math.min(end, faultAtMs + duringMs), end + 1],
    ] as const
  ).map(([name, from, to]) => {
    const x = summarise(rec, from, to)
    const secs = Math.max(0.001, (Math.min(to, durationMs) - from) / 1000)
    return {
      name,
      fromSec: from / 1000,
      toSec: Math.min(to, end) / 1000,
      ok: x.ok,
      failed: x.failed,
      byKind: x.byKind,
      rate: Math.round((x.ok / secs) * 10) / 10,
      p50: x.p50,
      p99: x.p99,
    }
  })
  const all = summarise(rec, 0, Number.POSITIVE_INFINITY)
  const baselineRate = windows[0]!.rate
  // Recovery, on a 100 ms grid: the first moment after the fault from which there is no failure
  // and every whole second that follows (within the run) has ≥ RECOVERED_FRACTION × baseline.
  const steps = Math.floor(durationMs / STEP_MS)
  const okPerStep = new Array<number>(steps + 1).fill(0)
  let lastFailure = faultAtMs
  for (let i = 0; i < rec.t.length; i++) {
    const t = rec.t[i]!
    if (rec.outcome[i] === 'ok') {
      if (t < durationMs) okPerStep[Math.floor(t / STEP_MS)]!++
    } else if (t >= faultAtMs) lastFailure = Math.max(lastFailure, t)
  }
  const perWindow = 1000 / STEP_MS
  let start = Math.ceil(lastFailure / STEP_MS)
  for (let w = start; w + perWindow <= steps; w++) {
    let ok = 0
    for (let k = w; k < w + perWindow; k++) ok += okPerStep[k]!
    if (ok < RECOVERED_FRACTION * baselineRate) start = w + 1
  }
  const recoverySec = start + perWindow <= steps ? Math.round(((start * STEP_MS - faultAtMs) / 1000) * 10) / 10 : null
  return {
    requests: rec.t.length,
    ok: all.ok,
    failed: all.failed,
    byKind: all.byKind,
    timeline,
    windows,
    baselineRate,
    recoverySec,
    failedAfterFault: summarise(rec, faultAtMs, Number.POSITIVE_INFINITY).failed,
  }
}

export function kinds(byKind: Record<string, number>): string {
  const parts = Object.entries(byKind)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${n} ${k.replace(/^http_/, 'HTTP ')}`)
  return parts.length ? parts.join(', ') : 'none'
}
