// One scenario against running targets: warm up (not counted), then the configured number of
// runs, each with the CPU of the server, of the load generator and of everything else sampled
// around it, then the summary (medians, error totals). Shared by `runway compare` and
// `runway loadtest`, so both measure the same way.
import { ENGINES, engineFor, type EngineFigures, type EngineName } from './engines.js'
import { CpuSampler, waitForIdle } from './sampler.js'
import type { ResultRow } from './schema.js'
import { summarize } from './stats.js'
import type { Progress } from './progress.js'
import type { Scenario, ScenarioContext } from './scenarios.js'

export interface MeasureSettings {
  connections: number
  durationSec: number
  amount?: number
  warmupSec: number
  runs: number
  workers: number
}

export interface MeasureTarget {
  /** Row label, e.g. the stage id or "target". */
  stage: string
  /** Shown in progress lines. */
  label: string
  url: string
  ca?: string
  /** Server processes to watch (their descendants are found as well); none for a remote target. */
  pids?: () => Promise<number[]>
}

export { engineFor } from './engines.js'

/** Saturated: the load generator used ≥90% of the cores it can use, so it may be the bottleneck. */
export function loadgenSaturated(engine: EngineName, loadgenCpu: number, workers: number): boolean {
  return loadgenCpu >= 90 * ENGINES[engine].threads(workers)
}

export async function measureScenario(
  target: MeasureTarget,
  scenario: Scenario,
  context: ScenarioContext,
  settings: MeasureSettings,
  engineName: EngineName,
  o: { progress?: Progress; signal?: AbortSignal } = {},
): Promise<ResultRow> {
  return (await measureInterleaved([{ target, context }], scenario, settings, engineName, o))[0]!
}

export interface MeasureJob {
  target: MeasureTarget
  context: ScenarioContext
}

/**
 * One scenario on several targets, interleaved: each is warmed up, then run 1 of every target,
 * run 2 of every target, and so on. Whatever drifts on a shared machine during the measurement
 * (other tenants, CPU frequency) then falls on all of them alike, so their ratios (a stage
 * against its ceiling twin) stay honest. A target that fails is left out of the later rounds.
 */
export async function measureInterleaved(
  jobs: MeasureJob[],
  scenario: Scenario,
  settings: MeasureSettings,
  engineName: EngineName,
  o: { progress?: Progress; signal?: AbortSignal } = {},
): Promise<ResultRow[]> {
  const engine = engineFor(engineName, scenario)
  const { run, inProcess } = ENGINES[engine]
  const states = await Promise.all(
    jobs.map(async ({ target, context }) => ({
      target,
      context,
      serverPids: target.pids ? await target.pids() : [],
      row: { stage: target.stage, scenario: scenario.name, engine, status: 'ok', runs: [], loadgenSaturated: false } as ResultRow,
    })),
  )
  const phases: { name: string; seconds: number; counted: boolean }[] = []
  if (settings.warmupSec > 0 && !settings.amount) phases.push({ name: 'warm-up', seconds: settings.warmupSec, counted: false })
  for (let i = 1; i <= settings.runs; i++) phases.push({ name: `run ${i}/${settings.runs}`, seconds: settings.durationSec, counted: true })

  for (const phase of phases) {
    for (const state of states) {
      if (state.row.status !== 'ok') continue
      const { target, context, serverPids } = state
      try {
        if (o.signal?.aborted) throw new Error('interrupted')
        if (serverPids.length) {
          o.progress?.update({ stage: target.label, scenario: scenario.name, phase: 'waiting for the server to go idle' })
          await waitForIdle(serverPids)
        }
        let childPid: number | undefined
        const sampler = new CpuSampler(serverPids, () => (inProcess ? [process.pid] : childPid ? [childPid] : []))
        const started = Date.now()
        const startedAt = new Date(started).toISOString()
        const show = (rps?: number) =>
          o.progress?.update({
            stage: target.label,
            scenario: scenario.name,
            phase: `${phase.name} (${engine})`,
            ...(settings.amount ? {} : { left: phase.seconds - (Date.now() - started) / 1000 }),
            ...(rps !== undefined ? { rps } : {}),
          })
        show()
        if (phase.counted) sampler.start()
        let figures: EngineFigures
        try {
          figures = await run({
            url: target.url,
            scenario,
            context,
            connections: settings.connections,
            durationSec: phase.seconds,
            ...(phase.counted && settings.amount ? { amount: settings.amount } : {}),
            workers: settings.workers,
            ...(target.ca ? { ca: target.ca } : {}),
            onTick: show,
            onPid: (pid) => (childPid = pid),
            ...(o.signal ? { signal: o.signal } : {}),
          })
        } catch (err) {
          if (phase.counted) sampler.stop()
          throw err
        }
        if (phase.counted) state.row.runs.push({ startedAt, ...figures, ...sampler.stop() })
      } catch (err) {
        state.row.status = 'failed'
        state.row.reason = (err as Error).message
      }
    }
  }
  o.progress?.clear()
  return states.map(({ row }) => {
    if (row.runs.length) {
      row.summary = summarize(row.runs)
      row.loadgenSaturated = loadgenSaturated(engine, row.summary.loadgenCpu, settings.workers)
    } else if (row.status === 'ok') {
      row.status = 'failed'
      row.reason = 'no run completed'
    }
    return row
  })
}
