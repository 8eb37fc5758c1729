// `runway loadtest` as a release gate against a real listening API: thresholds and a baseline
// regression check, each passing and failing, through the real CLI, asserting the exit code (0 or
// 99) and the one line that names what failed. Each run is one second of light load.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resultsProblems, type Results } from '../../src/bench/loadtest/schema.js'
import { createUser, PASSWORD, startApp } from '../helpers/app.js'

const { url, store } = await startApp(t, { LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0' })
await createUser(store, 'gate')
const dir = mkdtempSync(join(tmpdir(), 'runway-gate-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const loadtest = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['bin/runway.js', 'loadtest', '--target', url, '--scenarios', 'me', '--username', 'gate', '-c', '4', '-d', '1', '--warmup', '0', '--quiet', ...args],
      { env: { ...process.env, LOADTEST_PASSWORD: PASSWORD }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
  })

const first = await loadtest(['--threshold', 'p99<10s', '--threshold', 'errors<0.1%', '--threshold', 'rps>1', '--json', '--out', join(dir, 'out')])
const measured = JSON.parse(first.stdout) as Results

t.test('passing thresholds exit 0; --json and --out give a valid results.json', async (t) => {
  t.equal(first.code, 0, first.stderr)
  t.same(resultsProblems(measured), [])
  t.same(resultsProblems(JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8'))), [])
  t.match(readFileSync(join(dir, 'out', 'report.html'), 'utf8'), /<canvas id="rps-me"/)
  t.same(
    measured.thresholds.map((x) => [x.expression, x.pass]),
    [
      ['p99<10s', true],
      ['errors<0.1%', true],
      ['rps>1', true],
    ],
  )
  const me = measured.results[0]!
  t.equal(me.status, 'ok')
  t.ok(me.summary!.rps > 0)
  t.equal(me.summary!.non2xx + me.summary!.errors + me.summary!.mismatches, 0)
  t.notMatch(first.stdout + first.stderr, new RegExp(PASSWORD), 'the password is never printed')
})

t.test('a failing threshold exits 99 and names it', async (t) => {
  const r = await loadtest(['--threshold', 'p99<10s', '--threshold', 'rps>100000000'])
  t.equal(r.code, 99)
  t.match(r.stdout, /^pass {2}threshold p99<10s passed on me/m)
  t.match(r.stdout, /^FAIL {2}threshold rps>100000000 failed on me: rps was [0-9,]+ req\/s$/m)
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  t.match(r.stderr, /^runway loadtest: threshold rps>100000000 failed on me: rps was [0-9,]+ req\/s\n$/)
})

t.test('baseline: a slower run than the baseline exits 99, a comparable one exits 0', async (t) => {
  const scaled = (k: number) => {
    const doc = structuredClone(measured)
    const s = doc.results[0]!.summary!
    s.rps *= k
    s.latency.p99 /= k
    return doc
  }
  writeFileSync(join(dir, 'faster.json'), JSON.stringify(scaled(100)))
  writeFileSync(join(dir, 'slower.json'), JSON.stringify(scaled(0.01)))
  const fail = await loadtest(['--baseline', join(dir, 'faster.json'), '--max-regression', '10%'])
  t.equal(fail.code, 99)
  t.match(fail.stderr, /^runway loadtest: regression check failed on me: rps [0-9,]+ is [0-9.]+% below the baseline [0-9,]+ \(max 10%\)/)
  t.match(fail.stderr, /regression check failed on me: p99 .* above the baseline/)
  t.equal(fail.stderr.trim().split('\n').length, 1)
  const pass = await loadtest(['--baseline', join(dir, 'slower.json'), '--max-regression', '10%'])
  t.equal(pass.code, 0, pass.stderr)
  t.match(pass.stdout, /^pass {2}regression check passed on me: rps/m)
})

t.test('--workers: the scenarios run in autocannon worker threads (hooks loaded by path)', async (t) => {
  const r = await loadtest(['--scenarios', 'me,refresh', '--workers', '2', '--json'])
  t.equal(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout) as Results
  t.equal(doc.settings.workers, 2)
  for (const row of doc.results) {
    t.equal(row.status, 'ok', `${row.scenario}: ${row.reason ?? ''}`)
    t.ok(row.summary!.rps > 0, `${row.scenario}: ${row.summary!.rps} req/s`)
    t.equal(row.summary!.errors + row.summary!.non2xx + row.summary!.mismatches, 0, `${row.scenario}: no failed responses`)
  }
})

t.test('a target with the default login rate limits: failures broken down by status, 429 named as rate limiting', async (t) => {
  const limited = await startApp(t, {})
  await createUser(limited.store, 'gate')
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [
        'bin/runway.js',
        'loadtest',
        '--target',
        limited.url,
        '--scenarios',
        'login',
        '--username',
        'gate',
        '-c',
        '2',
        '--amount',
        '60',
        '--warmup',
        '0',
        '--quiet',
        '--threshold',
        'errors<1%',
      ],
      { env: { ...process.env, LOADTEST_PASSWORD: PASSWORD }, timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
  })
  t.equal(r.code, 99, r.stderr)
  t.match(
    r.stdout,
    /^warning: login: \d+ failed responses .*: 429 × \d+ \(rate limited: the login\/token limits of the app \(LOGIN_RATE_LIMIT_IP, LOGIN_RATE_LIMIT_USER\)/m,
  )
  t.match(r.stderr, /^runway loadtest: threshold errors<1% failed on login: .*\(failures by cause: login: 429 × \d+ \(rate limited/)
})
