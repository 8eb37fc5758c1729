// `runway loadtest` and `runway compare` refuse bad input with one line and exit 2 (1 for an
// unreachable target) before any load is sent. The gates under load are in
// test/serial/compare-loadtest-gate.test.ts.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../../src/lib/process.js'
import { compareResults } from '../../helpers/loadtest.js'
import { CliError } from '../../../src/cli/command.js'
import { compareCommand } from '../../../src/cli/commands/compare.js'
import { loadtestCommand } from '../../../src/cli/commands/loadtest.js'

const runway = (args: string[], env: Record<string, string> = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['bin/runway.js', ...args],
      { env: { ...process.env, LOADTEST_PASSWORD: '', LOADTEST_USERNAME: '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
  })

const oneLine = (t: Test, stderr: string, pattern: RegExp) => {
  t.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr}`)
  t.match(stderr, pattern)
}

t.test('help', async (t) => {
  const [loadtest, compare] = await Promise.all([runway(['loadtest', '--help']), runway(['compare', '--help'])])
  t.equal(loadtest.code, 0)
  t.match(loadtest.stdout, /^Usage: runway loadtest/)
  t.match(loadtest.stdout, /99 {2}a threshold or the regression check failed/)
  t.equal(compare.code, 0)
  t.match(compare.stdout, /^Usage: runway compare/)
})

// Usage errors are checked in this process (command.run throws the CliError main() prints as
// one line); starting the CLI a dozen times would make a light test slow.
async function refused(args: string[], env: Record<string, string> = {}): Promise<CliError> {
  const [name, ...rest] = args
  const command = name === 'compare' ? compareCommand : loadtestCommand
  const saved = { ...process.env }
  Object.assign(process.env, { LOADTEST_PASSWORD: '', LOADTEST_USERNAME: '', ...env })
  try {
    await command.run(rest)
  } catch (err) {
    if (err instanceof CliError) return err
    throw err
  } finally {
    process.env = saved
  }
  throw new Error(`${args.join(' ')} was accepted`)
}

t.test('usage errors exit 2 with a one-line reason', async (t) => {
  const port = await freePort()
  const target = `http://127.0.0.1:${port}`
  const cases: [string[], RegExp][] = [
    [['loadtest'], /^--target URL is required/],
    [['loadtest', '--target', 'ftp://x'], /^--target must be an http:\/\/ or https:\/\/ URL/],
    [['loadtest', '--target', target, '--threshold', 'p99<fast'], /^threshold "p99<fast" is not understood: write it like p99<250ms/],
    [['loadtest', '--target', target, '--scenarios', 'me,nope'], /^unknown scenario "nope": choose from healthz, me, verify, login, refresh, session/],
    [['loadtest', '--target', target, '-c', '0'], /^--connections must be a whole number from 1/],
    [['loadtest', '--target', target, '--scenarios', 'me'], /^me log in: set --username \(or LOADTEST_USERNAME\) and LOADTEST_PASSWORD/],
    [['loadtest', '--target', target, '--max-regression', 'lots'], /^--max-regression "lots" is not a percentage/],
    [['loadtest', '--target', target, '--bogus'], /Unknown option '--bogus' \(see --help\)/],
    [['compare', '--stages', 'dev,prod'], /^unknown stage "prod": choose from dev, single, single-pg, cluster, nginx, tls/],
    [['compare', '--runs', 'many'], /^--runs must be a whole number/],
    [['compare', '--engine', 'k6'], /^--engine must be autocannon or wrk, not "k6"/],
  ]
  for (const [args, pattern] of cases) {
    const err = await refused(args)
    t.equal(err.exitCode, 2, args.join(' '))
    t.match(err.message, pattern)
    t.notMatch(err.message, /\n/, 'one line')
  }
})

t.test('a baseline that cannot serve is refused before any load', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-baseline-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const target = `http://127.0.0.1:${await freePort()}`
  writeFileSync(join(dir, 'bad.json'), '{"schema":"nope"}')
  writeFileSync(join(dir, 'compare.json'), JSON.stringify(compareResults()))
  const bad = await refused(['loadtest', '--target', target, '--baseline', join(dir, 'bad.json')])
  t.equal(bad.exitCode, 2)
  t.match(bad.message, /--baseline .*bad\.json: .*does not match the runway-loadtest\/1 schema/)
  const ambiguous = await refused(['loadtest', '--target', target, '--scenarios', 'me', '--username', 'u', '--baseline', join(dir, 'compare.json')], {
    LOADTEST_PASSWORD: 'pw',
  })
  t.equal(ambiguous.exitCode, 2)
  t.match(ambiguous.message, /^--baseline: the baseline has me figures for several stages .*choose one with --baseline-stage/)
})

t.test('an unreachable target exits 1 and says so', async (t) => {
  const r = await runway(['loadtest', '--target', `http://127.0.0.1:${await freePort()}`])
  t.equal(r.code, 1)
  oneLine(t, r.stderr, /^runway loadtest: cannot reach http:\/\/127\.0\.0\.1:[0-9]+: /)
})
