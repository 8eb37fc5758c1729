// The load engines, by name: autocannon runs every scenario; wrk, when installed, runs the GET
// scenarios at a fraction of autocannon's CPU. Everything engine-specific is asked of the
// LoadEngine (engine.ts), never decided by comparing names elsewhere.
import { autocannonEngine } from './engine-autocannon.js'
import type { EngineName, LoadEngine } from './engine.js'
import { wrkEngine } from './engine-wrk.js'
import type { Scenario } from './scenarios.js'

export { ENGINE_NAMES, type EngineFigures, type EngineName, type EngineRun, type LoadEngine } from './engine.js'
export { autocannonVersion, runAutocannon } from './engine-autocannon.js'
export { runWrk, wrkVersion } from './engine-wrk.js'

export const ENGINES: Readonly<Record<EngineName, LoadEngine>> = { autocannon: autocannonEngine, wrk: wrkEngine }

/** The engine that runs every scenario: the one a scenario falls back to. */
export const FALLBACK_ENGINE: EngineName = 'autocannon'

/** The engine a scenario really runs with when `requested` was asked for. */
export function engineFor(requested: EngineName, s: Scenario): EngineName {
  return ENGINES[requested].canRun(s) ? requested : FALLBACK_ENGINE
}

/**
 * `runway compare`'s engine when none is asked for: wrk when installed. autocannon in one thread
 * needs a whole core at ~20k req/s; on a 2-core machine that core is taken from the server, and a
 * 2-worker cluster then measured slower than one process (0.60×). wrk leaves the server most of
 * the machine, so the stacks rank as they would with the load generator elsewhere.
 */
export function defaultEngine(): EngineName {
  return ENGINES.wrk.version() ? 'wrk' : FALLBACK_ENGINE
}

/** "wrk for GET scenarios, autocannon for the others", or just "autocannon". */
export function describeEngine(name: EngineName): string {
  const e = ENGINES[name]
  return e.scope ? `${name} for ${e.scope}, ${FALLBACK_ENGINE} for the others` : name
}
