// `npm run bench:django` when a stack answers with failures: the summary names them by status
// and cause, results.json keeps that text, and the stack's logs outlive the run's work directory
// (a bench that printed "170 errors" and deleted the logs left nothing to explain them). The
// failures are real load shedding: runway's workers allowed one password hash at a time and none
// waiting. Needs Debian's Django packages and wrk: under CI=true a missing one fails.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ENGINES } from '../../src/bench/loadtest/engines.js'
import { djangoVersions } from '../../src/bench/stacks/django.js'
import { ROOT } from '../../src/lib/build.js'
import { isAlive, killGroup } from '../../src/lib/process.js'

let missing: string | undefined
try {
  djangoVersions()
  if (!ENGINES.wrk.version()) missing = `wrk is needed: ${ENGINES.wrk.install}`
} catch (err) {
  missing = (err as Error).message
}

if (missing && process.env.CI === 'true') t.fail(`${missing} (.ci/run installs it)`)
else if (missing) t.test('bench:django keeps the logs of a failing stack', { skip: `${missing}; under CI=true this fails` }, async () => {})
else {
  t.test('bench:django names the failures and keeps the failing stack logs', async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'runway-django-bench-failures-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'loadtest/django-bench.ts',
        '--seconds',
        '1',
        '--runs',
        '1',
        '--login-seconds',
        '2',
        '--login-connections',
        '8',
        '--users',
        '4',
        '--out',
        out,
      ],
      {
        cwd: ROOT,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        // Inherited by runway's pm2 workers (Django ignores them).
        env: { ...process.env, PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '0', PASSWORD_HASH_MAX_WAIT_MS: '0' },
      },
    )
    t.teardown(() => {
      if (child.pid && isAlive(child.pid)) killGroup(child.pid, 'SIGKILL')
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c))
    child.stderr.on('data', (c: Buffer) => (stderr += c))
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    t.equal(code, 0, `the bench ran (stderr: ${stderr.trim().split('\n').slice(-3).join(' | ')})`)

    const runwayLine = stdout.split('\n').find((l) => l.startsWith('runway:')) ?? ''
    t.match(runwayLine, /login [\d.]+\/s, .* [1-9]\d* errors \(503 × \d+ \(the app shed load/, 'the runway line names the 503s and their cause')
    t.match(stdout, `logs of the stacks that answered with failures: ${join(out, 'logs')}`, 'and says where the logs are')

    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { runway: { login: { errors: number; failures?: string } } }
    t.ok(results.runway.login.errors > 0)
    t.match(results.runway.login.failures, /^503 × \d+/, 'results.json keeps the breakdown')

    const logs = join(out, 'logs', 'runway', 'logs')
    t.ok(existsSync(logs), 'runway logs kept under --out')
    const text = readdirSync(logs, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => readFileSync(join(e.parentPath ?? e.path, e.name), 'utf8'))
      .join('')
    t.match(text, /overloaded: requests refused with 503/, "the kept logs hold the workers' load-shedding warnings")
  })
}
