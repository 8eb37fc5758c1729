// A compare run in which a stack answers with failures says what they were and keeps that
// stack's logs, so the cause can be read after the run. Here the failures are real load
// shedding: one production process allowed one password hash at a time and none waiting
// (PASSWORD_HASH_CONCURRENCY=1, PASSWORD_HASH_QUEUE=0), under sessions that all start with a login.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compare } from '../../src/bench/loadtest/compare.js'
import { isAlive, killGroup } from '../../src/lib/process.js'

const out = mkdtempSync(join(tmpdir(), 'runway-compare-failures-'))
t.teardown(() => rmSync(out, { recursive: true, force: true }))
const pids: number[] = []
t.teardown(() => {
  for (const pid of pids) if (isAlive(pid)) killGroup(pid, 'SIGKILL')
})
// The stage's process inherits this environment (compare's own settings come after it).
const SHEDDING = { PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '0', PASSWORD_HASH_MAX_WAIT_MS: '0' }
Object.assign(process.env, SHEDDING)
t.teardown(() => {
  for (const name of Object.keys(SHEDDING)) delete process.env[name]
})

const { results } = await compare({
  scenarios: ['session'],
  stages: ['single'],
  settings: { connections: 8, durationSec: 1, amount: 40, warmupSec: 0, runs: 1, workers: 0 },
  engine: 'autocannon',
  ceiling: false,
  users: 8,
  outDir: out,
  onStarted: (_stage, started) => pids.push(...started),
})

t.test('the failures are counted and named by status and cause', async (t) => {
  const row = results.results.find((r) => r.stage === 'single' && r.scenario === 'session')
  const shed = row?.summary?.statusCodes['503'] ?? 0
  t.ok(shed > 0, `logins shed: ${JSON.stringify(row?.summary?.statusCodes)}`)
  t.ok(
    results.warnings.some((w) => w.startsWith('single session: ') && w.includes(`503 × ${shed} (the app shed load (runway_load_shed_total`)),
    results.warnings.join('\n'),
  )
})

t.test("the stack's logs are kept beside the results, with the app's own account of it", async (t) => {
  const kept = join(out, 'logs', 'single')
  t.ok(results.warnings.includes(`single: answered with failures; its logs are kept in ${kept}`), results.warnings.join('\n'))
  const log = join(kept, 'production.log')
  t.ok(existsSync(log), 'the production log is there')
  const lines = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('load shedding'))
    .map((l) => JSON.parse(l) as { level: number; refused: { password_hash: number } })
  t.ok(lines.length >= 1, 'the app logged its load shedding')
  t.ok(
    lines.every((l) => l.level === 40 && l.refused.password_hash > 0),
    'as warnings counting the refused hashes',
  )
})

t.test('nothing is left running', async (t) => {
  t.ok(pids.length > 0)
  t.same(
    pids.filter((pid) => isAlive(pid)),
    [],
  )
})
