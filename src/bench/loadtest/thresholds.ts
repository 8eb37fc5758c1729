// Release gates: thresholds (`p99<250ms`, `errors<0.1%`, `rps>500`, optionally per scenario as
// `me:p99<250ms`) and regression against a baseline results.json. A failed gate makes
// `runway loadtest` exit with THRESHOLD_EXIT_CODE (99, k6's convention) and name what failed.
import type { Results, RunFigures, Threshold } from './schema.js'
import { errorRate, failures, fmtInt, fmtMs } from './stats.js'

export const THRESHOLD_EXIT_CODE = 99

export type Metric = 'rps' | 'p50' | 'p90' | 'p99' | 'max' | 'mean' | 'errors' | 'non2xx' | 'timeouts'
type Op = '<' | '<=' | '>' | '>='

export interface ThresholdSpec {
  expression: string
  scenario?: string
  metric: Metric
  op: Op
  value: number
  /** errors as a share of attempts (percent) rather than a count. */
  percent: boolean
}

export class ThresholdSyntaxError extends Error {
  override name = 'ThresholdSyntaxError'
}

const LATENCY: readonly Metric[] = ['p50', 'p90', 'p99', 'max', 'mean']
const METRICS: readonly Metric[] = ['rps', ...LATENCY, 'errors', 'non2xx', 'timeouts']

/** `[scenario:]metric op value[unit]`, e.g. `p99<250ms`, `me:rps>=1000`, `errors<0.1%`. */
export function parseThreshold(text: string): ThresholdSpec {
  const m = /^\s*(?:([a-z]+):)?\s*([a-z0-9]+)\s*(<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|%)?\s*$/.exec(text)
  const hint = 'write it like p99<250ms, errors<0.1%, rps>500 or me:p99<250ms'
  if (!m) throw new ThresholdSyntaxError(`threshold ${JSON.stringify(text)} is not understood: ${hint}`)
  const [, scenario, metric, op, num, unit] = m as unknown as [string, string | undefined, string, Op, string, string | undefined]
  if (!METRICS.includes(metric as Metric))
    throw new ThresholdSyntaxError(`threshold ${JSON.stringify(text)}: unknown metric ${metric} (use ${METRICS.join(', ')})`)
  let value = Number(num)
  const isLatency = LATENCY.includes(metric as Metric)
  if (isLatency) {
    if (unit === '%') throw new ThresholdSyntaxError(`threshold ${JSON.stringify(text)}: ${metric} is a time; use ms or s`)
    if (unit === 's') value *= 1000
  } else if (unit === 'ms' || unit === 's') {
    throw new ThresholdSyntaxError(`threshold ${JSON.stringify(text)}: ${metric} is not a time; drop the unit`)
  } else if (unit === '%' && metric !== 'errors') {
    throw new ThresholdSyntaxError(`threshold ${JSON.stringify(text)}: only errors can be a percentage`)
  }
  return { expression: text.trim(), ...(scenario ? { scenario } : {}), metric: metric as Metric, op, value, percent: unit === '%' }
}

export function metricValue(f: RunFigures, spec: Pick<ThresholdSpec, 'metric' | 'percent'>): number {
  switch (spec.metric) {
    case 'rps':
      return f.rps
    case 'errors':
      return spec.percent ? errorRate(f) : failures(f)
    case 'non2xx':
      return f.non2xx
    case 'timeouts':
      return f.timeouts
    default:
      return f.latency[spec.metric]
  }
}

const holds = (actual: number, op: Op, limit: number) =>
  op === '<' ? actual < limit : op === '<=' ? actual <= limit : op === '>' ? actual > limit : actual >= limit

function show(spec: Pick<ThresholdSpec, 'metric' | 'percent'>, v: number): string {
  if (LATENCY.includes(spec.metric)) return fmtMs(v)
  if (spec.metric === 'errors' && spec.percent) return `${Math.round(v * 1000) / 1000}%`
  if (spec.metric === 'rps') return `${fmtInt(v)} req/s`
  return fmtInt(v)
}

/** Checks one threshold against one scenario's figures. */
export function checkThreshold(spec: ThresholdSpec, scenario: string, f: RunFigures): Threshold {
  const actual = metricValue(f, spec)
  const pass = holds(actual, spec.op, spec.value)
  const message = pass
    ? `threshold ${spec.expression} passed on ${scenario} (${spec.metric} ${show(spec, actual)})`
    : `threshold ${spec.expression} failed on ${scenario}: ${spec.metric} was ${show(spec, actual)}`
  return { expression: spec.expression, scenario, actual: Math.round(actual * 1000) / 1000, pass, message }
}

/** Every threshold against every scenario it applies to (all of them when none is named). */
export function checkThresholds(specs: readonly ThresholdSpec[], rows: readonly { scenario: string; summary?: RunFigures | undefined }[]): Threshold[] {
  const out: Threshold[] = []
  for (const spec of specs) {
    const targets = rows.filter((r) => !spec.scenario || r.scenario === spec.scenario)
    if (spec.scenario && targets.length === 0) {
      out.push({
        expression: spec.expression,
        scenario: spec.scenario,
        actual: 0,
        pass: false,
        message: `threshold ${spec.expression} failed: scenario ${spec.scenario} was not run`,
      })
    }
    for (const r of targets) {
      if (!r.summary) {
        out.push({
          expression: spec.expression,
          scenario: r.scenario,
          actual: 0,
          pass: false,
          message: `threshold ${spec.expression} failed on ${r.scenario}: the scenario produced no figures`,
        })
      } else out.push(checkThreshold(spec, r.scenario, r.summary))
    }
  }
  return out
}

/** "10%" or "10" → 10. */
export function parsePercent(text: string, flag: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*$/.exec(text)
  if (!m) throw new ThresholdSyntaxError(`${flag} ${JSON.stringify(text)} is not a percentage such as 10%`)
  return Number(m[1])
}

/** The baseline figures for a scenario: from the one stage given, or the only row there is. */
export function baselineFigures(baseline: Results, scenario: string, stage?: string): RunFigures | { problem: string } {
  const rows = baseline.results.filter((r) => r.scenario === scenario && r.summary && (!stage || r.stage === stage))
  if (rows.length === 0) return { problem: `the baseline has no ${scenario} figures${stage ? ` for stage ${stage}` : ''}` }
  if (rows.length > 1) {
    const stages = [...new Set(rows.map((r) => r.stage))]
    if (stages.length > 1)
      return { problem: `the baseline has ${scenario} figures for several stages (${stages.join(', ')}): choose one with --baseline-stage` }
  }
  return rows[0]!.summary!
}

/**
 * Regression gate: throughput may fall and p99 may rise by at most maxPct percent, and the error
 * count may not grow from zero. Returns one Threshold per check, named like the others.
 */
export function checkRegression(scenario: string, current: RunFigures, base: RunFigures, maxPct: number): Threshold[] {
  const out: Threshold[] = []
  const drop = base.rps > 0 ? ((base.rps - current.rps) / base.rps) * 100 : 0
  const rise = base.latency.p99 > 0 ? ((current.latency.p99 - base.latency.p99) / base.latency.p99) * 100 : 0
  const r1 = (n: number) => Math.round(n * 10) / 10
  const rpsPass = drop <= maxPct
  out.push({
    expression: `rps regression<=${maxPct}%`,
    scenario,
    actual: r1(drop),
    pass: rpsPass,
    message: rpsPass
      ? `regression check passed on ${scenario}: rps ${fmtInt(current.rps)} vs baseline ${fmtInt(base.rps)} (${r1(-drop)}%)`
      : `regression check failed on ${scenario}: rps ${fmtInt(current.rps)} is ${r1(drop)}% below the baseline ${fmtInt(base.rps)} (max ${maxPct}%)`,
  })
  const p99Pass = rise <= maxPct
  out.push({
    expression: `p99 regression<=${maxPct}%`,
    scenario,
    actual: r1(rise),
    pass: p99Pass,
    message: p99Pass
      ? `regression check passed on ${scenario}: p99 ${fmtMs(current.latency.p99)} vs baseline ${fmtMs(base.latency.p99)}`
      : `regression check failed on ${scenario}: p99 ${fmtMs(current.latency.p99)} is ${r1(rise)}% above the baseline ${fmtMs(base.latency.p99)} (max ${maxPct}%)`,
  })
  const errorsPass = !(failures(base) === 0 && failures(current) > 0)
  out.push({
    expression: 'no new errors',
    scenario,
    actual: failures(current),
    pass: errorsPass,
    message: errorsPass
      ? `regression check passed on ${scenario}: ${failures(current)} failed responses (baseline ${failures(base)})`
      : `regression check failed on ${scenario}: ${failures(current)} failed responses where the baseline had none`,
  })
  return out
}
