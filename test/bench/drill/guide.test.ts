// The guide's figures are the results file's: the block renders from a results document (or says
// there is none), replacing only what lies between its markers; the committed guide is in sync.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { begin, BLOCKS, end, replaceBlock } from '../../../src/bench/loadtest/doc-figures.js'
import { guideFigures } from '../../../src/bench/loadtest/drill/guide.js'
import type { DrillResults } from '../../../src/bench/loadtest/drill/run.js'
import { ROOT } from '../../../src/lib/build.js'

const doc: DrillResults = {
  schema: 'runway-drill/1',
  tool: 'drill',
  createdAt: '2026-11-30T13:00:00.000Z',
  settings: { drills: ['crash'], stages: ['dev', 'cluster'], connections: 8, timeoutMs: 2000, retryPauseMs: 20, instances: 2 },
  machine: { cpuModel: 'Test CPU', cpuCount: 2 } as DrillResults['machine'],
  drills: [
    {
      name: 'crash',
      title: 'crash: kill -9',
      durationSec: 14,
      faultAtSec: 4,
      duringSec: 3,
      explanation: 'why',
      stages: [
        {
          stage: 'cluster',
          label: 'pm2 cluster (2 workers)',
          status: 'ok',
          fault: { atMs: 4000, action: 'kill -9 of pm2 worker 0 (pid 12, 1 of 2)', confirmed: true, detail: 'the worker is gone' },
          analysis: {
            requests: 100,
            ok: 97,
            failed: 3,
            byKind: { reset: 3 },
            timeline: [],
            baselineRate: 10,
            recoverySec: 0.3,
            failedAfterFault: 3,
            windows: [
              { name: 'before', fromSec: 0, toSec: 4, ok: 40, failed: 0, byKind: {}, rate: 10, p50: 1, p99: 2 },
              { name: 'during', fromSec: 4, toSec: 7, ok: 27, failed: 3, byKind: { reset: 3 }, rate: 9, p50: 1, p99: 2 },
              { name: 'after', fromSec: 7, toSec: 14, ok: 30, failed: 0, byKind: {}, rate: 10, p50: 1, p99: 2 },
            ],
          },
          verdict: 'pm2 cluster (2 workers): 3 requests failed (3 reset), back to full rate in 0.3 s.',
        },
        { stage: 'nginx', label: 'nginx → pm2 cluster (HTTP)', status: 'skipped', reason: 'nginx is not installed' },
      ],
    },
  ],
  warnings: [],
}

t.test('the block is rendered from the results file', async (t) => {
  const block = guideFigures(doc, 'docs/results/drill/results.json')
  t.match(block, /^From `docs\/results\/drill\/results\.json` \(2026-11-30T13:00:00\.000Z; 8 clients, 2 pm2 workers, Test CPU, 2 CPUs/)
  t.match(block, /\| pm2 cluster \(2 workers\) \| kill -9 of pm2 worker 0 \(pid 12, 1 of 2\) \| 3 \| 3 reset \| 0\.3 s \| pm2 cluster/)
  t.match(block, /\| nginx → pm2 cluster \(HTTP\) \| skipped: nginx is not installed \|/)
  t.match(guideFigures(null, 'x.json'), /^No results file yet: `x\.json` is missing, so this guide quotes no figure/)
})

t.test('only the block between the markers changes', async (t) => {
  const guide = `intro\n${begin('drill-figures')}\nold 123\n${end('drill-figures')}\noutro\n`
  t.equal(replaceBlock(guide, 'drill-figures', 'new'), `intro\n${begin('drill-figures')}\nnew\n${end('drill-figures')}\noutro\n`)
  t.throws(() => replaceBlock('no markers', 'drill-figures', 'x'), /no drill-figures block/)
  t.throws(() => replaceBlock(guide, 'compare-figures', 'x'), /no compare-figures block/, 'each block has its own markers')
})

t.test('every committed figures block is what its results file says', async (t) => {
  t.ok(BLOCKS.some((b) => b.id === 'drill-figures' && b.doc === 'docs/from-runserver-to-production.md'))
  t.doesNotThrow(() => execFileSync(process.execPath, ['--import', 'tsx', 'loadtest/doc-figures.ts', '--check'], { cwd: ROOT, stdio: 'pipe' }))
})
