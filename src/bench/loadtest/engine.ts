// What a load engine is to the rest of the harness. Every engine-specific rule (which scenarios it
// can run, whether it stops after a request count, which processes are the load generator, how a
// report names it) lives behind this interface; engines.ts lists the engines. Adding one (k6) is
// one file implementing LoadEngine plus its name in ENGINE_NAMES.
import type { RunFigures } from './schema.js'
import type { Scenario, ScenarioContext } from './scenarios.js'

/** Every engine's name, in the order `--engine` lists them (results.json stores one of them). */
export const ENGINE_NAMES = ['autocannon', 'wrk'] as const
export type EngineName = (typeof ENGINE_NAMES)[number]

export interface EngineRun {
  url: string
  scenario: Scenario
  context: ScenarioContext
  connections: number
  durationSec: number
  /** Stop after this many requests instead of after durationSec (engines with `amount` only). */
  amount?: number
  /** Load-generator threads; 0 = the engine's own minimum (autocannon in this thread, wrk -t1). */
  workers: number
  /** PEM of a private CA (the engines skip verification; kept for engines that may not). */
  ca?: string
  /** Called about once a second with the responses of the last second. */
  onTick?: (responsesPerSec: number) => void
  signal?: AbortSignal
  /** Told the pid of a load-generator child process once it runs, so the sampler can watch it. */
  onPid?: (pid: number) => void
}

export type EngineFigures = Omit<RunFigures, 'serverCpu' | 'serverRssMb' | 'loadgenCpu' | 'otherCpu'>

export interface LoadEngine {
  name: EngineName
  /** Installed version as the tool prints it, or null when it is not installed. */
  version(): string | null
  /** How to install it, for the error when it is asked for and missing. */
  install: string
  /** Whether it can run this scenario; the others fall back to autocannon, which runs them all. */
  canRun(s: Scenario): boolean
  /** What it runs, when that is not every scenario ("GET scenarios"): reports name it. */
  scope?: string
  /** Whether it can stop after a request count (`--amount`). */
  amount: boolean
  /** Runs in this process (its CPU is this process's) rather than in a child it reports by onPid. */
  inProcess: boolean
  /** Cores it can keep busy with `workers`: saturation is judged per core. */
  threads(workers: number): number
  run(o: EngineRun): Promise<EngineFigures>
}
