// Benchmark (not a test): runway's full production stack next to the Django stack it replaces, on
// this machine, in one run. Both behind the same rendered nginx TLS template: runway's pm2 cluster
// (the `tls` stage of `runway compare`) and loadtest/django/ under gunicorn's sync workers (one
// per CPU, as the pm2 cluster). GET /api/me/ with wrk, then logins (POST /api/token/, each a real
// password check at each side's default hasher) with autocannon; the two stacks' runs alternate,
// so drift on a shared machine falls on both. Figures are medians; the machine's load is recorded.
//   npm run bench:django -- [--seconds 5] [--runs 3] [--connections 50] [--login-seconds 10] [--out DIR] [--json]
// Needs Debian's Django stack (src/bench/stacks/django.ts names the packages) and wrk.
import { randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { OWASP_ARGON2 } from '../src/api/auth/passwords.js'
import type { DjangoResults, DjangoSide } from '../src/bench/loadtest/doc-figures.js'
import { ENGINES } from '../src/bench/loadtest/engines.js'
import { obtainTokens } from '../src/bench/loadtest/http.js'
import { measureInterleaved, type MeasureJob } from '../src/bench/loadtest/measure.js'
import { Progress } from '../src/bench/loadtest/progress.js'
import { writeJsonResults } from '../src/bench/loadtest/results.js'
import { scenario } from '../src/bench/loadtest/scenarios.js'
import type { ResultRow } from '../src/bench/loadtest/schema.js'
import { nginxOver, socketPath, stageDefs, stageEnv, startCluster, type Running, type StageContext } from '../src/bench/loadtest/stages.js'
import { benchPassword, createBenchUsers } from '../src/bench/loadtest/users.js'
import { stageCopy, type StagedCopy } from '../src/lib/build.js'
import { djangoVersions, startDjango } from '../src/bench/stacks/django.js'
import { positiveInt } from './args.js'
import { cpuMsPer, failureBreakdown, failures, round } from '../src/bench/loadtest/stats.js'

const USAGE = `Usage: npm run bench:django -- [options]

runway's full stack (nginx TLS → pm2 cluster) next to Django REST Framework + simplejwt under
gunicorn (nginx TLS → gunicorn, sync workers), both with one worker per CPU behind the same
rendered nginx template (worker_processes auto, as rendered for production), measured in
alternating runs:
  me     GET /api/me/ with a valid access token (wrk): req/s, goal runway ≥ 20× Django
  login  POST /api/token/ with a right password (autocannon): logins/s and server CPU per login,
         each side at its default hasher (runway argon2id m=19 MiB t=2; Django PBKDF2-SHA256),
         goal runway ≥ 1.5× Django

Options:
  --seconds N          seconds per me run (default 5)
  --runs N             runs per scenario and stack; medians are reported (default 3)
  --connections N      wrk connections for me (default 50)
  --login-seconds N    seconds per login run (default 10)
  --login-connections N  autocannon connections for login (default 16)
  --users N            users the logins rotate over (default 20)
  --json               one JSON object on stdout instead of the table
  --out DIR            also write it to DIR/results.json (docs/results/django feeds the docs)
  --help

Failed responses are named by status and usual cause (also in results.json); the logs of a stack
that answered with any are kept in DIR/logs/<stack>/ (without --out, in a temporary directory
the summary names), since the run's own work directory is deleted.

Needs: apt-get install python3-django python3-djangorestframework python3-djangorestframework-simplejwt
gunicorn wrk nginx. Run it alone on the machine: both sides are CPU-bound.`

/** nginx's worker_processes as `runway nginx render` writes it by default. */
const NGINX_WORKERS = 'auto'

/** One stack's me and login figures from the measured rows. */
function side(label: string, workers: string, hasher: string, me: ResultRow | undefined, login: ResultRow | undefined): DjangoSide {
  const failed = [me, login].find((r) => r?.status !== 'ok')
  if (failed || !me?.summary || !login?.summary) throw new Error(`${label}: ${failed?.reason ?? 'not measured'}`)
  const l = login.summary
  const logins = l.rps * l.durationSec
  return {
    label,
    workers,
    hasher,
    me: {
      rps: me.summary.rps,
      runs: me.runs.map((r) => r.rps),
      p99Ms: me.summary.latency.p99,
      errors: me.summary.errors + me.summary.non2xx,
      ...(failures(me.summary) ? { failures: failureBreakdown(me.summary) } : {}),
      serverCpuPct: me.summary.serverCpu,
      loadgenCpuPct: me.summary.loadgenCpu,
      otherCpuPct: me.summary.otherCpu,
    },
    login: {
      perSec: l.rps,
      runs: login.runs.map((r) => r.rps),
      cpuMsPerLogin: logins > 0 ? cpuMsPer(l.serverCpu, l.durationSec, logins) : 0,
      p99Ms: l.latency.p99,
      errors: l.errors + l.non2xx,
      ...(failures(l) ? { failures: failureBreakdown(l) } : {}),
      serverCpuPct: l.serverCpu,
      otherCpuPct: l.otherCpu,
    },
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      runs: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      'login-seconds': { type: 'string', default: '10' },
      'login-connections': { type: 'string', default: '16' },
      users: { type: 'string', default: '20' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) return console.log(USAGE)
  const seconds = positiveInt('seconds', values.seconds)
  const runs = positiveInt('runs', values.runs)
  const connections = positiveInt('connections', values.connections)
  const loginSeconds = positiveInt('login-seconds', values['login-seconds'])
  const loginConnections = positiveInt('login-connections', values['login-connections'])
  const userCount = positiveInt('users', values.users)
  if (!ENGINES.wrk.version()) throw new Error(`wrk is needed: ${ENGINES.wrk.install}`)
  const versions = djangoVersions()
  const say = (s: string) => values.json || process.stderr.write(`bench:django: ${s}\n`)

  const work = mkdtempSync(join(tmpdir(), 'runway-django-bench-'))
  const instances = availableParallelism()
  const key = randomBytes(48).toString('base64url')
  const stacks: Running[] = []
  let copy: Promise<StagedCopy> | undefined
  let kept: string | undefined
  try {
    // runway's tls stage, but with nginx's worker count as rendered for production (auto), as
    // the Django side gets: the same template and the same nginx in front of both.
    const defs = stageDefs(instances)
    const tlsStage = defs.find((d) => d.id === 'tls')!
    const ctx: StageContext = {
      dataDir: join(work, 'runway', 'data'),
      logDir: join(work, 'runway', 'logs'),
      key,
      instances,
      env: stageEnv(tlsStage, join(work, 'runway', 'data'), key),
      dist: () => (copy ??= stageCopy('dist')),
      src: () => Promise.reject(new Error('not used')),
    }
    mkdirSync(ctx.logDir, { recursive: true })
    say('runway: staging dist/ (compiled first when stale), creating users, starting nginx TLS → pm2 cluster')
    const runwayUsers = await createBenchUsers(ctx.dataDir, userCount, await benchPassword())
    await ctx.dist()
    // Both apps are reached over a Unix socket, as runway host init and Django's deployment guides set them up.
    const runway = await nginxOver(await startCluster(ctx, { socket: true }), { tls: true, workers: NGINX_WORKERS })
    stacks.push(runway)

    say(`Django ${versions.django}: migrating, creating users (Django's default hasher), starting nginx TLS → gunicorn -w ${instances}`)
    const djangoSocket = socketPath()
    const app = await startDjango({ dir: join(work, 'django'), workers: instances, users: userCount, socket: djangoSocket.path })
    const django = await nginxOver(
      {
        ...app,
        mint: false,
        stop: async () => {
          await app.stop()
          djangoSocket.remove()
        },
      },
      { tls: true, workers: NGINX_WORKERS },
    )
    stacks.push(django)

    const targets = [
      {
        id: 'runway',
        label: `runway: nginx TLS → pm2 cluster (${instances} workers)`,
        run: runway,
        users: runwayUsers.usernames,
        password: runwayUsers.password,
      },
      { id: 'django', label: `Django: nginx TLS → gunicorn -w ${instances}`, run: django, users: app.usernames, password: app.password },
    ]
    const jobs = async (scenarioName: 'me' | 'login'): Promise<MeasureJob[]> =>
      Promise.all(
        targets.map(async (t) => ({
          target: { stage: t.id, label: t.label, url: t.run.url, pids: t.run.pids, ...(t.run.ca ? { ca: t.run.ca } : {}) },
          context:
            scenarioName === 'me'
              ? { scenario: 'me', tokens: [(await obtainTokens(t.run.url, t.users[0]!, t.password, t.run.ca)).access] }
              : { scenario: 'login', users: t.users, password: t.password },
        })),
      )
    const progress = new Progress(process.stderr, values.json)
    const load0 = loadavg()
    say(`me: ${runs} × ${seconds} s per stack, alternating, wrk -c${connections}`)
    const me = await measureInterleaved(await jobs('me'), scenario('me'), { connections, durationSec: seconds, warmupSec: 2, runs, workers: 0 }, 'wrk', {
      progress,
    })
    say(`login: ${runs} × ${loginSeconds} s per stack, alternating, autocannon -c${loginConnections}`)
    const login = await measureInterleaved(
      await jobs('login'),
      scenario('login'),
      { connections: loginConnections, durationSec: loginSeconds, warmupSec: 3, runs, workers: 0 },
      'autocannon',
      { progress },
    )
    const pick = (rows: ResultRow[], id: string) => rows.find((r) => r.stage === id)
    const a = side(
      targets[0]!.label,
      `pm2 cluster, ${instances}`,
      `argon2id m=${OWASP_ARGON2.memoryKiB} KiB t=${OWASP_ARGON2.iterations} p=${OWASP_ARGON2.parallelism}`,
      pick(me, 'runway'),
      pick(login, 'runway'),
    )
    const b = side(targets[1]!.label, `gunicorn sync, ${instances}`, app.hasher, pick(me, 'django'), pick(login, 'django'))
    const out: DjangoResults = {
      createdAt: new Date().toISOString(),
      machine: {
        cpus: instances,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        loadAverageBefore: load0.map((n) => round(n, 2)),
        loadAverageAfter: loadavg().map((n) => round(n, 2)),
      },
      versions: { node: process.version, ...versions },
      settings: { seconds, runs, connections, loginSeconds, loginConnections, users: userCount },
      runway: a,
      django: b,
      ratios: { me: round(a.me.rps / b.me.rps, 2), login: round(a.login.perSec / b.login.perSec, 2) },
      goals: { me: 20, login: 1.5 },
    }
    // A stack that answered with failures keeps its logs (the work directory goes): they say why.
    const failed = [
      { id: 'runway', s: a, logs: join(work, 'runway', 'logs') },
      { id: 'django', s: b, logs: join(work, 'django', 'gunicorn.log') },
    ].filter((x) => x.s.me.errors + x.s.login.errors > 0)
    if (failed.length) {
      const dir = values.out ? join(values.out, 'logs') : mkdtempSync(join(tmpdir(), 'runway-django-bench-logs-'))
      try {
        for (const f of failed) cpSync(f.logs, join(dir, f.id, basename(f.logs)), { recursive: true })
        kept = dir
      } catch (err) {
        // The figures are measured: a log that cannot be copied must not lose them.
        kept = `not kept (${(err as Error).message})`
      }
    }
    if (values.out) writeJsonResults(values.out, out)
    if (values.json) {
      if (kept) process.stderr.write(`bench:django: logs of the stacks that answered with failures: ${kept}\n`)
      return console.log(JSON.stringify(out, null, 2))
    }
    console.log(
      `machine: ${instances} × ${out.machine.cpuModel}, load average ${out.machine.loadAverageBefore.join(' ')} before, ${out.machine.loadAverageAfter.join(' ')} after`,
    )
    console.log(
      `Django ${versions.django}, DRF ${versions.djangorestframework}, simplejwt ${versions.simplejwt}, gunicorn ${versions.gunicorn}; Node ${process.version}`,
    )
    const errors = (x: { errors: number; failures?: string }) => `${x.errors} errors${x.failures ? ` (${x.failures})` : ''}`
    for (const s of [a, b]) {
      console.log(
        `${s.label}: me ${s.me.rps} req/s (runs ${s.me.runs.join(' / ')}), p99 ${s.me.p99Ms} ms, ${errors(s.me)}; ` +
          `login ${s.login.perSec}/s, ${s.login.cpuMsPerLogin} ms CPU per login (${s.hasher}), p99 ${s.login.p99Ms} ms, ${errors(s.login)}`,
      )
    }
    if (kept) console.log(`logs of the stacks that answered with failures: ${kept}`)
    const verdict = (x: number, goal: number) => `${x}× (goal ≥ ${goal}×: ${x >= goal ? 'met' : 'MISSED'})`
    console.log(`runway ÷ Django: me ${verdict(out.ratios.me, 20)}, login ${verdict(out.ratios.login, 1.5)}`)
  } finally {
    for (const s of stacks.reverse()) await s.stop().catch(() => undefined)
    await copy?.then((c) => c.remove()).catch(() => undefined)
    rmSync(work, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:django: ${(err as Error).message}\n`)
  process.exit(1)
})
