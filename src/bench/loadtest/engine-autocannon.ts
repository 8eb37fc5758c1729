// autocannon: the programmatic API, in this process or its worker threads. Runs every scenario
// (per-connection state machines from loadtest/scenarios.cjs); reads higher than wrk against Node
// servers and, in one thread, needs a full core of its own at ~20k req/s.
import autocannon from 'autocannon'
import { createRequire } from 'node:module'
import type { EngineFigures, EngineRun, LoadEngine } from './engine.js'
import { scenarioModule, SCENARIOS_FILE, VERIFY_BODY_FILE } from './scenarios.js'
import { percentiles } from './stats.js'

export function autocannonVersion(): string {
  return (createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version
}

interface AutocannonResult {
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  mismatches: number
  statusCodeStats: Record<string, { count: number }>
  latency: { p50: number; p90: number; p99: number; max: number; average: number }
}

export async function runAutocannon(o: EngineRun): Promise<EngineFigures> {
  const inWorkers = o.workers > 0
  const opts: Record<string, unknown> = {
    url: o.url,
    connections: o.connections,
    duration: o.durationSec,
    ...(o.amount ? { amount: o.amount } : {}),
    timeout: 10,
    // Latency of successful responses only: a fast 401 must not improve p50.
    excludeErrorStats: true,
    initialContext: o.context,
    // Worker threads take hooks as file paths; in this thread, functions.
    setupClient: inWorkers ? SCENARIOS_FILE : scenarioModule.setupClient,
    verifyBody: inWorkers ? VERIFY_BODY_FILE : scenarioModule.verifyBody,
    ...(inWorkers ? { workers: o.workers } : {}),
    ...(o.ca ? { tlsOptions: { ca: o.ca } } : {}),
  }
  let instance: autocannon.Instance | undefined
  const onAbort = () => instance?.stop()
  const sessions = o.scenario.session ? scenarioModule.collectSessions() : undefined
  try {
    const r = await new Promise<AutocannonResult>((resolve, reject) => {
      instance = autocannon(opts as unknown as autocannon.Options, (err, result) => (err ? reject(err) : resolve(result as unknown as AutocannonResult)))
      instance.on('tick', ((t: { counter: number }) => o.onTick?.(t.counter)) as () => void)
      o.signal?.addEventListener('abort', onAbort, { once: true })
    })
    const statusCodes: Record<string, number> = {}
    let ok = 0
    for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {})) {
      statusCodes[code] = Number(count)
      if (code.startsWith('2')) ok += Number(count)
    }
    const responses = Object.values(statusCodes).reduce((a, b) => a + b, 0)
    const good = Math.max(0, ok - r.mismatches)
    const duration = r.duration || o.durationSec
    const times = await sessions?.stop()
    return {
      rps: Math.round((good / duration) * 10) / 10,
      responses,
      durationSec: duration,
      latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: Math.round(r.latency.average * 100) / 100 },
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      mismatches: r.mismatches,
      statusCodes,
      ...(times ? { sessions: { completed: times.length, latency: percentiles(times) } } : {}),
    }
  } finally {
    await sessions?.stop()
    o.signal?.removeEventListener('abort', onAbort)
  }
}

export const autocannonEngine: LoadEngine = {
  name: 'autocannon',
  version: autocannonVersion,
  install: 'npm install (autocannon is a dependency)',
  canRun: () => true,
  amount: true,
  inProcess: true,
  threads: (workers) => Math.max(1, workers),
  run: runAutocannon,
}
