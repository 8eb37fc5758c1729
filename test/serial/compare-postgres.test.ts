// `runway compare --store postgres`, briefly: one production process on SQLite and the same on
// PostgreSQL (a fresh schema of the test database) come up, are measured for ~1 s on me and
// refresh with 0 failures, and leave nothing behind (processes, the schema). The PostgreSQL goals
// (me ≥ 0.8×, refresh ≥ 0.6× of SQLite) are reported as targets; speed is not asserted here.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { compare, type StageId } from '../../src/bench/loadtest/compare.js'
import { failures } from '../../src/bench/loadtest/stats.js'
import { isAlive, killGroup } from '../../src/lib/process.js'

const URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const schemas = async () => {
  const c = new pg.Client({ connectionString: URL, connectionTimeoutMillis: 3000 })
  await c.connect()
  try {
    return (await c.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'runway_compare_%'")).rows.map((r) => r.nspname)
  } finally {
    await c.end()
  }
}

let problem: string | null = null
try {
  await schemas()
} catch (err) {
  problem = (err as Error).message
}
if (problem && process.env.CI !== 'true') {
  t.skip(`PostgreSQL at ${URL} is not reachable (${problem}); set TEST_DATABASE_URL`, async () => {})
} else {
  if (problem) t.fail(`PostgreSQL at ${URL} is not reachable: ${problem}`)
  const out = mkdtempSync(join(tmpdir(), 'runway-compare-pg-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const started: { stage: StageId; pids: number[] }[] = []
  t.teardown(() => {
    for (const s of started) for (const pid of s.pids) if (isAlive(pid)) killGroup(pid, 'SIGKILL')
  })
  const before = await schemas()
  const { results } = await compare({
    scenarios: ['me', 'refresh'],
    settings: { connections: 4, durationSec: 1, warmupSec: 0, runs: 1, workers: 0 },
    engine: 'autocannon',
    ceiling: false,
    stages: ['single', 'single-pg'],
    databaseUrl: URL,
    users: 4,
    outDir: out,
    onStarted: (stage, pids) => started.push({ stage, pids }),
  })

  t.test('SQLite and PostgreSQL side by side, measured, 0 failures', async (t) => {
    t.same(
      results.stages.map((s) => [s.id, s.status, s.reason ?? '']),
      [
        ['single', 'ok', ''],
        ['single-pg', 'ok', ''],
      ],
    )
    for (const row of results.results) {
      t.equal(row.status, 'ok', `${row.stage} ${row.scenario}`)
      t.ok(row.summary && row.summary.responses > 0, `${row.stage} ${row.scenario}: ${row.summary?.rps} req/s`)
      t.equal(row.summary && failures(row.summary), 0, `${row.stage} ${row.scenario}: 0 failures`)
    }
    t.same(
      results.targets.filter((x) => /PostgreSQL/.test(x.name)).map((x) => [x.name, x.goal, typeof x.value]),
      [
        ['me: one process on PostgreSQL ≥ 0.8× on SQLite', '≥ 0.8×', 'number'],
        ['refresh: one process on PostgreSQL ≥ 0.6× on SQLite', '≥ 0.6×', 'number'],
      ],
      'the PostgreSQL goals are reported',
    )
  })

  t.test('nothing left behind: processes and the schema', async (t) => {
    for (const s of started) for (const pid of s.pids) t.notOk(isAlive(pid), `${s.stage} pid ${pid} gone`)
    t.same(await schemas(), before, 'the stage schema was dropped')
  })

  t.test('without a PostgreSQL URL the stage is skipped with the reason', async (t) => {
    const { results: r } = await compare({
      scenarios: ['healthz'],
      settings: { connections: 1, durationSec: 1, warmupSec: 0, runs: 1, workers: 0 },
      engine: 'autocannon',
      ceiling: false,
      stages: ['single-pg'],
      users: 1,
      outDir: join(out, 'skip'),
    })
    t.match(r.stages, [{ id: 'single-pg', status: 'skipped', reason: /--database-url/ }])
  })
}
