// results.json: every figure a load-test run produced, with the facts needed to read it later
// (machine, engine, settings). One schema for `runway compare` and `runway loadtest`, so a
// compare result can serve as a loadtest baseline. Validated before it is written and when read.
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { ENGINE_NAMES, type EngineName } from './engine.js'

const Num = Type.Number({ minimum: 0 })
const Int = Type.Integer({ minimum: 0 })
// Built from the engine registry's names; typed as their union.
const Engine = Type.Unsafe<EngineName>(Type.Union(ENGINE_NAMES.map((n) => Type.Literal(n))))

export const Latency = Type.Object({
  p50: Num,
  p90: Num,
  p99: Num,
  max: Num,
  mean: Num,
})

/** One measured run of one scenario against one target. */
export const RunFigures = Type.Object({
  /** When the run began (ISO 8601); shows the interleaving of a stage and its twin. */
  startedAt: Type.Optional(Type.String()),
  /** Successful responses (2xx with the expected body) per second: errors never count. */
  rps: Num,
  /** All responses, whatever their status. */
  responses: Int,
  durationSec: Num,
  /** Milliseconds, of 2xx responses. */
  latency: Latency,
  /**
   * Multi-step scenarios (session): whole sessions, login sent → logout answered, in ms. The
   * per-request latency above mixes their steps and describes no one's wait.
   */
  sessions: Type.Optional(Type.Object({ completed: Int, latency: Latency })),
  /** Connection errors, timeouts included (as autocannon counts them). */
  errors: Int,
  timeouts: Int,
  non2xx: Int,
  /** 2xx answers whose body was not what the scenario step expects. */
  mismatches: Int,
  statusCodes: Type.Record(Type.String(), Int),
  /** Sum of CPU% of the server's processes (100 = one core busy). */
  serverCpu: Num,
  /** Sum of resident memory of the server's processes, MiB, at the end of the run. */
  serverRssMb: Num,
  /** CPU% of the load generator (this process and its worker threads, or wrk). */
  loadgenCpu: Num,
  /** CPU% used by everything else on the machine during the run. */
  otherCpu: Num,
})

export const ResultRow = Type.Object({
  stage: Type.String(),
  scenario: Type.String(),
  engine: Engine,
  status: Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('skipped')]),
  reason: Type.Optional(Type.String()),
  runs: Type.Array(RunFigures),
  /** Median of the runs for rates, latencies and CPU; totals over all runs for error counts. */
  summary: Type.Optional(RunFigures),
  /** rps ÷ the dev server's rps for the same scenario and engine. */
  ratioToDev: Type.Optional(Num),
  /** rps ÷ the ceiling twin's rps (compare --ceiling). */
  efficiency: Type.Optional(Num),
  loadgenSaturated: Type.Boolean(),
  /** Why this row's figures measure the machine rather than the stack (set by compare). */
  untrusted: Type.Optional(Type.String()),
})

export const Stage = Type.Object({
  id: Type.String(),
  label: Type.String(),
  kind: Type.Union([Type.Literal('stage'), Type.Literal('twin'), Type.Literal('target')]),
  /** For a twin: the stage it is the ceiling of. */
  twinOf: Type.Optional(Type.String()),
  status: Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('skipped')]),
  reason: Type.Optional(Type.String()),
  /** Why this stage's figures differ from the others. */
  explanation: Type.String(),
  url: Type.Optional(Type.String()),
  processes: Type.Optional(Int),
  startupMs: Type.Optional(Num),
})

export const Machine = Type.Object({
  cpuModel: Type.String(),
  cpuCount: Int,
  memoryMb: Int,
  os: Type.String(),
  node: Type.String(),
  nginx: Type.Union([Type.String(), Type.Null()]),
  wrk: Type.Union([Type.String(), Type.Null()]),
  autocannon: Type.String(),
  loadAverage: Type.Array(Num),
  /** What shared the CPUs with the load generator. */
  sharedWith: Type.String(),
})

export const Threshold = Type.Object({
  expression: Type.String(),
  scenario: Type.String(),
  /** The measured value (a regression check's is the change in percent: negative = better). */
  actual: Type.Number(),
  pass: Type.Boolean(),
  message: Type.String(),
})

export const Target = Type.Object({
  name: Type.String(),
  goal: Type.String(),
  value: Type.Union([Num, Type.Null()]),
  met: Type.Union([Type.Boolean(), Type.Null()]),
  note: Type.Optional(Type.String()),
})

export const Results = Type.Object({
  schema: Type.Literal('runway-loadtest/1'),
  tool: Type.Union([Type.Literal('compare'), Type.Literal('loadtest')]),
  createdAt: Type.String(),
  engine: Engine,
  settings: Type.Object({
    scenarios: Type.Array(Type.String()),
    connections: Int,
    durationSec: Num,
    amount: Type.Optional(Int),
    warmupSec: Num,
    runs: Int,
    workers: Int,
    ceiling: Type.Boolean(),
  }),
  machine: Machine,
  stages: Type.Array(Stage),
  results: Type.Array(ResultRow),
  targets: Type.Array(Target),
  thresholds: Type.Array(Threshold),
  warnings: Type.Array(Type.String()),
  /** The headline when the run cannot rank the stacks: why, and what to change. */
  verdict: Type.Optional(Type.String()),
})

export type Latency = Static<typeof Latency>
export type RunFigures = Static<typeof RunFigures>
export type ResultRow = Static<typeof ResultRow>
export type Stage = Static<typeof Stage>
export type Machine = Static<typeof Machine>
export type Threshold = Static<typeof Threshold>
export type Target = Static<typeof Target>
export type Results = Static<typeof Results>

/** Problems with a results document, as "path: message" lines; empty when it is valid. */
export function resultsProblems(doc: unknown): string[] {
  return [...Value.Errors(Results, doc)].slice(0, 10).map((e) => `${e.instancePath || '/'}: ${e.message}`)
}

export function assertResults(doc: unknown, what = 'results'): Results {
  const problems = resultsProblems(doc)
  if (problems.length) throw new Error(`${what} does not match the runway-loadtest/1 schema: ${problems[0]}`)
  return doc as Results
}
