// Fixture load-test results: well-formed documents for the schema, gate and report tests.
import type { Results, ResultRow, RunFigures } from '../../src/bench/loadtest/schema.js'

export function figures(rps: number, over: Partial<RunFigures> = {}): RunFigures {
  return {
    rps,
    responses: Math.round(rps * 10),
    durationSec: 10,
    latency: { p50: 2, p90: 4, p99: 9, max: 30, mean: 2.5 },
    errors: 0,
    timeouts: 0,
    non2xx: 0,
    mismatches: 0,
    statusCodes: { '200': Math.round(rps * 10) },
    serverCpu: 95,
    serverRssMb: 120,
    loadgenCpu: 60,
    otherCpu: 3,
    ...over,
  }
}

export function row(stage: string, scenario: string, rps: number, over: Partial<RunFigures> = {}): ResultRow {
  const f = figures(rps, over)
  return { stage, scenario, engine: 'autocannon', status: 'ok', runs: [f], summary: f, loadgenSaturated: false }
}

const STAGES: [string, string, 'stage' | 'twin', string?][] = [
  ['dev', 'dev server', 'stage'],
  ['single', 'production, one process', 'stage'],
  ['bare-single', 'ceiling: bare node:http', 'twin', 'single'],
  ['cluster', 'pm2 cluster (2 workers)', 'stage'],
  ['bare-cluster', 'ceiling: bare node:cluster (2 workers)', 'twin', 'cluster'],
]

/** A compare result: dev 4000, single 9000 (twin 10000), cluster 15000 (twin 20000) on me. */
export function compareResults(): Results {
  return {
    schema: 'runway-loadtest/1',
    tool: 'compare',
    createdAt: '2026-11-29T10:00:00.000Z',
    engine: 'autocannon',
    settings: { scenarios: ['me', 'session'], connections: 50, durationSec: 10, warmupSec: 3, runs: 3, workers: 0, ceiling: true },
    machine: {
      cpuModel: 'Test CPU',
      cpuCount: 2,
      memoryMb: 4096,
      os: 'Linux',
      node: 'v20.0.0',
      nginx: '1.22.1',
      wrk: null,
      autocannon: '9.0.0',
      loadAverage: [1, 1, 1],
      sharedWith: 'the load generator',
    },
    stages: STAGES.map(([id, label, kind, twinOf]) => ({
      id,
      label,
      kind,
      ...(twinOf ? { twinOf } : {}),
      status: 'ok' as const,
      explanation: `why ${id} <differs>`,
      url: 'http://127.0.0.1:1',
      processes: 1,
      startupMs: 500,
    })),
    results: [
      row('dev', 'me', 4000),
      row('single', 'me', 9000),
      row('bare-single', 'me', 10000),
      row('cluster', 'me', 15000),
      row('bare-cluster', 'me', 20000),
      row('dev', 'session', 300),
      row('single', 'session', 600),
      row('cluster', 'session', 900, { non2xx: 3, statusCodes: { '200': 8997, '503': 3 } }),
    ],
    targets: [],
    thresholds: [],
    warnings: [],
  }
}
