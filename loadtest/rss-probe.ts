// Benchmark (not a test): resident memory of production pm2 workers — idle after start, under a
// GET /api/me/ load, and under a login storm — sampled from /proc every 250 ms. Also reports each
// worker's start-to-ready time as pm2 saw it (`pm2 start` returns once every worker said ready).
//   npm run probe:rss -- [--me-seconds 60] [--login-seconds 20] [--connections 50] [--json]
// On a shared machine run it as `flock /tmp/runway-heavy.lock npm run probe:rss`.
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { runAutocannon } from '../src/bench/loadtest/engines.js'
import type { RssResults } from '../src/bench/loadtest/doc-figures.js'
import { writeJsonResults } from '../src/bench/loadtest/results.js'
import { obtainTokens } from '../src/bench/loadtest/http.js'
import { processStat } from '../src/bench/loadtest/sampler.js'
import { scenario } from '../src/bench/loadtest/scenarios.js'
import { benchPassword, createBenchUsers } from '../src/bench/loadtest/users.js'
import { stageCopy } from '../src/lib/build.js'
import { startPm2Cluster } from '../src/bench/stacks/pm2.js'
import { positiveInt } from './args.js'

const USAGE = `Usage: npm run probe:rss -- [options]

Starts the production pm2 cluster (one worker per CPU, or --instances) from a staged dist/, then
reports each worker's RSS: its peak in the first 10 s after ready (start-up garbage not yet
collected), idle (20 s after ready), the peak under GET /api/me/ load, and the peak
under a login storm (POST /api/token/, argon2id at the OWASP default). Goals: idle ≤ 70 MB, under
load ≤ 100 MB.

Options:
  --me-seconds N     length of the me load (default 60)
  --login-seconds N  length of the login storm (default 20)
  --connections N    connections of both loads (default 50)
  --instances N      pm2 workers (default: one per CPU)
  --env K=V          a setting for the workers (repeatable), e.g. --env OPENAPI_UI=false
  --json             one JSON object on stdout
  --out DIR          also write it to DIR/results.json (docs/results/rss feeds the docs)
  --help`

const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10

/** A worker's RSS now; a worker that is gone ends the probe (a 0 would read as a lean worker). */
function rssBytes(pid: number): number {
  const stat = processStat(pid)
  if (!stat) throw new Error(`worker ${pid} exited during the probe: see the pm2 logs; no figures written`)
  return stat.rssBytes
}

/** Peak RSS per pid while `during` runs (and the last sample). */
async function peakRss(pids: number[], during: () => Promise<unknown>): Promise<number[]> {
  const peak = pids.map(() => 0)
  let gone: unknown
  const sample = () => {
    pids.forEach((pid, i) => {
      peak[i] = Math.max(peak[i]!, rssBytes(pid))
    })
  }
  // From the timer an error is kept, not thrown: thrown there it would end the process before
  // the cluster is stopped.
  const timer = setInterval(() => {
    try {
      sample()
    } catch (err) {
      gone ??= err
    }
  }, 250)
  try {
    sample()
    await during()
    if (gone) throw gone
    sample()
  } finally {
    clearInterval(timer)
  }
  return peak.map(mb)
}

async function main() {
  const { values } = parseArgs({
    options: {
      'me-seconds': { type: 'string', default: '60' },
      'login-seconds': { type: 'string', default: '20' },
      connections: { type: 'string', default: '50' },
      instances: { type: 'string', default: String(availableParallelism()) },
      env: { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) return console.log(USAGE)
  const meSeconds = positiveInt('me-seconds', values['me-seconds'])
  const loginSeconds = positiveInt('login-seconds', values['login-seconds'])
  const connections = positiveInt('connections', values.connections)
  const instances = positiveInt('instances', values.instances)
  const extraEnv: Record<string, string> = {}
  for (const kv of values.env) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(kv)
    if (!m) throw new Error(`--env ${JSON.stringify(kv)}: expected NAME=value`)
    extraEnv[m[1]!] = m[2]!
  }
  const say = (text: string) => process.stderr.write(`probe:rss: ${text}\n`)

  const loadBefore = loadavg()
  say('staging dist/ (compiled first when stale)')
  const copy = await stageCopy('dist')
  const work = mkdtempSync(join(tmpdir(), 'runway-rss-probe-'))
  try {
    const dataDir = join(work, 'data')
    const users = await createBenchUsers(dataDir, 20, await benchPassword())
    const key = randomBytes(48).toString('base64url')
    say(`starting the pm2 cluster (${instances} workers)`)
    const cluster = await startPm2Cluster({
      cwd: copy.dir,
      instances,
      env: { DATA_DIR: dataDir, JWT_SIGNING_KEY: key, LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0', ...extraEnv },
    })
    try {
      const pids = (await cluster.workers()).map((w) => w.pid)
      // Start-up leaves garbage that V8's memory reducer collects ~8 s after the isolate started
      // (Mark-Compact "reduce" in --trace-gc); an idle worker's footprint is what stays after that.
      say(`ready: pm2 start took ${cluster.startMs} ms; idle 20 s`)
      const startPeak = await peakRss(pids, () => new Promise((r) => setTimeout(r, 10_000)))
      await new Promise((r) => setTimeout(r, 10_000))
      const idle = pids.map((pid) => mb(rssBytes(pid)))
      const tokens: string[] = []
      for (const u of users.usernames.slice(0, Math.min(connections, users.usernames.length)))
        tokens.push((await obtainTokens(cluster.url, u, users.password)).access)
      const load = (name: 'me' | 'login', seconds: number) =>
        runAutocannon({
          url: cluster.url,
          scenario: scenario(name),
          context: name === 'me' ? { scenario: 'me', tokens } : { scenario: 'login', users: users.usernames, password: users.password },
          connections,
          durationSec: seconds,
          workers: 0,
        })
      say(`GET /api/me/ load, ${meSeconds} s × ${connections} connections`)
      let meRps = 0
      const underMe = await peakRss(pids, async () => (meRps = (await load('me', meSeconds)).rps))
      say(`login storm, ${loginSeconds} s × ${connections} connections`)
      let loginFigures = { rps: 0, statusCodes: {} as Record<string, number> }
      const underLogin = await peakRss(pids, async () => (loginFigures = await load('login', loginSeconds)))
      const after = await peakRss(pids, () => new Promise((r) => setTimeout(r, 3000)))
      const restarts = (await cluster.workers()).reduce((n, w) => n + w.restarts, 0)
      const out: RssResults = {
        createdAt: new Date().toISOString(),
        machine: {
          cpus: availableParallelism(),
          loadAverageBefore: loadBefore.map((n) => Math.round(n * 100) / 100),
          loadAverageAfter: loadavg().map((n) => Math.round(n * 100) / 100),
        },
        settings: { instances, connections, meSeconds, loginSeconds, env: extraEnv },
        pm2StartMs: cluster.startMs,
        workersRssMb: { startPeak, idle, peakUnderMe: underMe, peakUnderLoginStorm: underLogin, afterStorm: after },
        loads: { meRps, loginsPerSec: loginFigures.rps, loginStatusCodes: loginFigures.statusCodes },
        workerRestarts: restarts,
      }
      if (values.out) writeJsonResults(values.out, out)
      if (values.json) return console.log(JSON.stringify(out, null, 2))
      console.log(
        `machine: ${out.machine.cpus} CPUs, load average ${out.machine.loadAverageBefore.join(' ')} before, ${out.machine.loadAverageAfter.join(' ')} after`,
      )
      console.log(`pm2 start (every worker ready): ${cluster.startMs} ms`)
      console.log(
        `worker RSS (MB): peak in the first 10 s ${startPeak.join(' / ')}; idle 20 s after ready ${idle.join(' / ')}; peak under me ${underMe.join(' / ')} (${meRps} req/s); peak under login storm ${underLogin.join(' / ')} (${loginFigures.rps} logins/s, ${JSON.stringify(loginFigures.statusCodes)}); 3 s after ${after.join(' / ')}; restarts ${restarts}`,
      )
    } finally {
      await cluster.stop()
    }
  } finally {
    copy.remove()
    rmSync(work, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`probe:rss: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
