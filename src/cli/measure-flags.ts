// Flags `runway compare` and `runway loadtest` share: what to run, for how long, with what
// engine. Each bad value is one CliError naming the flag and what it takes.
import { join } from 'node:path'
import { CliError } from './command.js'
import { ENGINE_NAMES, ENGINES, type EngineName } from '../bench/loadtest/engines.js'
import type { MeasureSettings } from '../bench/loadtest/measure.js'
import { ROOT } from '../lib/build.js'
import { SCENARIO_NAMES, type ScenarioName } from '../bench/loadtest/scenarios.js'

export const MEASURE_FLAGS = {
  scenarios: { type: 'string' },
  connections: { type: 'string', short: 'c' },
  duration: { type: 'string', short: 'd' },
  runs: { type: 'string' },
  warmup: { type: 'string' },
  workers: { type: 'string' },
  engine: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const

export const MEASURE_HELP = `  --scenarios LIST      comma-separated, from: ${SCENARIO_NAMES.join(', ')}
  -c, --connections N   concurrent connections (default 50)
  -d, --duration SEC    seconds per measured run (default 10)
  --runs N              measured runs per scenario; figures are their median (default DEFAULT_RUNS)
  --warmup SEC          warm-up before the runs, not counted (default DEFAULT_WARMUP)
  --workers N           load generator threads: autocannon worker threads, or wrk threads
                        (default 0: autocannon in one thread). Raise it when the report warns
                        that the load generator saturated a core.
  --engine NAME         autocannon, or wrk: GET scenarios (healthz, me) with wrk, the others
                        with autocannon (default: DEFAULT_ENGINE). Reports always name the engine.
  --out DIR             where results.json, report.md and report.html go
  --json                print results.json on stdout instead of the tables
  --quiet               no progress on stderr`

export function int(value: string | undefined, flag: string, def: number, min: number, max: number): number {
  if (value === undefined) return def
  if (!/^[0-9]+$/.test(value.trim()) || Number(value) < min || Number(value) > max)
    throw new CliError(`${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`, 2)
  return Number(value)
}

export function seconds(value: string | undefined, flag: string, def: number, min: number): number {
  if (value === undefined) return def
  const m = /^([0-9]+(?:\.[0-9]+)?)(s)?$/.exec(value.trim())
  if (!m || Number(m[1]) < min || Number(m[1]) > 3600)
    throw new CliError(`${flag} takes seconds from ${min} to 3600 (e.g. 10 or 10s), not ${JSON.stringify(value)}`, 2)
  return Number(m[1])
}

export function scenarioList(value: string | undefined, def: readonly ScenarioName[]): ScenarioName[] {
  if (value === undefined) return [...def]
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const unknown = names.find((n) => !SCENARIO_NAMES.includes(n as ScenarioName))
  if (unknown || names.length === 0) throw new CliError(`unknown scenario ${JSON.stringify(unknown ?? value)}: choose from ${SCENARIO_NAMES.join(', ')}`, 2)
  return [...new Set(names)] as ScenarioName[]
}

/** --engine NAME: one of the registered engines, installed; `fallback` when not given. */
export function engineFlag(value: string | undefined, fallback: () => EngineName = () => 'autocannon'): EngineName {
  if (value === undefined) return fallback()
  if (!(ENGINE_NAMES as readonly string[]).includes(value)) throw new CliError(`--engine must be ${ENGINE_NAMES.join(' or ')}, not ${JSON.stringify(value)}`, 2)
  const engine = ENGINES[value as EngineName]
  if (!engine.version()) throw new CliError(`--engine ${value} needs ${value}: ${engine.install} (or drop --engine)`, 2)
  return engine.name
}

export function measureSettings(values: Record<string, unknown>, defaults: { runs: number; warmup: number }): MeasureSettings {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined)
  return {
    connections: int(str('connections'), '--connections', 50, 1, 10_000),
    durationSec: seconds(str('duration'), '--duration', 10, 0.5),
    warmupSec: seconds(str('warmup'), '--warmup', defaults.warmup, 0),
    runs: int(str('runs'), '--runs', defaults.runs, 1, 50),
    workers: int(str('workers'), '--workers', 0, 0, 64),
  }
}

/** loadtest/results/<UTC timestamp>/ in the checkout. */
export function defaultOutDir(now = new Date()): string {
  return join(
    ROOT,
    'loadtest',
    'results',
    now
      .toISOString()
      .replace(/\.[0-9]+Z$/, 'Z')
      .replaceAll(':', '-'),
  )
}
