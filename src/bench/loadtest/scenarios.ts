// Typed access to the scenario table in loadtest/scenarios.cjs (kept in plain CommonJS so that
// autocannon's worker threads can require() it). Paths are resolved from this file, so they work
// from src/ under tsx and from dist/ in a release alike (ROOT is src/lib/build.ts's).
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { ROOT } from '../../lib/build.js'

export type ScenarioName = 'healthz' | 'me' | 'verify' | 'login' | 'refresh' | 'session'

export interface Scenario {
  name: ScenarioName
  summary: string
  /** What a connection needs before it starts: nothing, an access token, or a username/password. */
  needs: 'nothing' | 'token' | 'credentials'
  /** For GET scenarios: the path, so `--engine wrk` can run them too. */
  get?: string
  /** Served by the bare ceiling twin (loadtest/ceiling-server.ts). */
  twin: boolean
  /** Bound by password hashing: a handful of users is needed so per-user limits do not bite. */
  loginBound: boolean
  /** Multi-step (login … logout): latency is reported per whole session, not per request. */
  session?: boolean
}

/** What each connection's state machine gets (autocannon's initialContext). */
export interface ScenarioContext {
  scenario: ScenarioName
  tokens?: string[]
  users?: string[]
  password?: string
  meCalls?: number
}

export const SCENARIOS_FILE = join(ROOT, 'loadtest', 'scenarios.cjs')
export const VERIFY_BODY_FILE = join(ROOT, 'loadtest', 'verify-body.cjs')
export const CEILING_SERVER_FILE = join(ROOT, 'loadtest', 'ceiling-server.ts')

interface ScenarioModule {
  (client: unknown): void
  setupClient(client: unknown): void
  verifyBody(body: string): boolean
  SCENARIOS: Scenario[]
  collectSessions(): { stop(): Promise<number[]> }
}

export const scenarioModule = createRequire(import.meta.url)(SCENARIOS_FILE) as ScenarioModule
export const SCENARIOS: readonly Scenario[] = scenarioModule.SCENARIOS
export const SCENARIO_NAMES = SCENARIOS.map((s) => s.name)

export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name)
  if (!s) throw new Error(`unknown scenario ${JSON.stringify(name)}: choose from ${SCENARIO_NAMES.join(', ')}`)
  return s
}
