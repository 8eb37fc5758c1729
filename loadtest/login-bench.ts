// Benchmark (not a test): logins per second and CPU per login, through one compiled production
// process (`node dist/api/server.js`) and through the full stack (nginx TLS → pm2 cluster), with the
// machine's load shown beside the figures. Each login is a real argon2id verification at the
// configured cost (the OWASP default unless ARGON2_* are set in the environment).
//   npm run bench:login -- [--stacks single,full] [--duration 10] [--connections 16] [--users 20] [--json]
// On a shared machine run it as `flock /tmp/runway-heavy.lock npm run bench:login`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { OWASP_ARGON2 } from '../src/api/auth/passwords.js'
import { runAutocannon } from '../src/bench/loadtest/engines.js'
import type { LoginResults } from '../src/bench/loadtest/doc-figures.js'
import { writeJsonResults } from '../src/bench/loadtest/results.js'
import { CpuSampler, waitForIdle } from '../src/bench/loadtest/sampler.js'
import { scenario } from '../src/bench/loadtest/scenarios.js'
import { socketPath } from '../src/bench/loadtest/stages.js'
import { cpuMsPer } from '../src/bench/loadtest/stats.js'
import { benchPassword, createBenchUsers } from '../src/bench/loadtest/users.js'
import { stageCopy } from '../src/lib/build.js'
import { startProductionProcess } from '../src/bench/stacks/api.js'
import { startNginx } from '../src/bench/stacks/nginx.js'
import { startPm2Cluster } from '../src/bench/stacks/pm2.js'

const USAGE = `Usage: npm run bench:login -- [options]

Logins per second and server CPU per login (POST /api/token/ with a right password, spread over
several users), through one production process and through nginx (TLS) → pm2 cluster.

Options:
  --stacks LIST       single, full or both (default: single,full)
  --duration SECONDS  measured seconds per stack (default 10), after 3 s of warm-up
  --connections N     concurrent clients (default 16)
  --users N           users the logins rotate over (default 20)
  --json              one JSON object on stdout instead of the table
  --out DIR           also write it to DIR/results.json (docs/results/login feeds the docs)
  --help

Run it alone on the machine (flock /tmp/runway-heavy.lock …): the figures are CPU-bound.`

interface StackFigures {
  stack: string
  loginsPerSec: number
  cpuMsPerLogin: number
  serverCpuPct: number
  serverRssMb: number
  loadgenCpuPct: number
  otherCpuPct: number
  latencyMs: { p50: number; p99: number }
  statusCodes: Record<string, number>
  errors: number
  timeouts: number
  processes: number
}

interface Running {
  url: string
  ca?: string
  pids(): Promise<number[]>
  stop(): Promise<void>
}

async function main() {
  const { values } = parseArgs({
    options: {
      stacks: { type: 'string', default: 'single,full' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '16' },
      users: { type: 'string', default: '20' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) return console.log(USAGE)
  const stacks = values.stacks.split(',').map((s) => s.trim())
  const bad = stacks.find((s) => s !== 'single' && s !== 'full')
  if (bad !== undefined) throw new Error(`--stacks: unknown stack ${JSON.stringify(bad)} (single, full)`)
  const durationSec = Number(values.duration)
  const connections = Number(values.connections)
  const userCount = Number(values.users)
  for (const [name, v] of [
    ['--duration', durationSec],
    ['--connections', connections],
    ['--users', userCount],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number of 1 or more`)
  }
  const say = (text: string) => process.stderr.write(`bench:login: ${text}\n`)

  const loadBefore = loadavg()
  say(`staging dist/ (compiled first when stale; not measured)`)
  const copy = await stageCopy('dist')
  const work = mkdtempSync(join(tmpdir(), 'runway-login-bench-'))
  const key = randomBytes(48).toString('base64url')
  const cred = await benchPassword() // one argon2id hash at the OWASP default, shared by every user
  const results: StackFigures[] = []
  try {
    for (const stack of stacks) {
      const dataDir = join(work, stack, 'data')
      const users = await createBenchUsers(dataDir, userCount, cred)
      const env = {
        DATA_DIR: dataDir,
        JWT_SIGNING_KEY: key,
        LOGIN_RATE_LIMIT_IP: '0',
        LOGIN_RATE_LIMIT_USER: '0',
        TRUST_PROXY: stack === 'full' ? '127.0.0.1' : 'false',
      }
      say(`${stack}: starting`)
      let running: Running
      if (stack === 'single') {
        running = await startProductionProcess({ cwd: copy.dir, env, logFile: join(work, 'single.log') })
      } else {
        // nginx reaches the workers over their Unix socket, as on a host `runway host init` set up.
        const socket = socketPath()
        const cluster = await startPm2Cluster({ cwd: copy.dir, env: { ...env, UNIX_SOCKET: socket.path } })
        const nginx = await startNginx({ upstreams: [`unix:${socket.path}`], tls: true, rateLimit: false }).catch(async (err: unknown) => {
          await cluster.stop()
          socket.remove()
          throw err
        })
        running = {
          url: nginx.url,
          ca: nginx.caFile ? readFileSync(nginx.caFile, 'utf8') : undefined,
          pids: async () => [...(await cluster.pids()), ...(await nginx.pids())],
          stop: async () => {
            await nginx.stop()
            await cluster.stop()
            socket.remove()
          },
        }
      }
      try {
        const pids = await running.pids()
        const run = (seconds: number) =>
          runAutocannon({
            url: running.url,
            scenario: scenario('login'),
            context: { scenario: 'login', users: users.usernames, password: users.password },
            connections,
            durationSec: seconds,
            workers: 0,
            ...(running.ca ? { ca: running.ca } : {}),
          })
        say(`${stack}: warm-up 3 s`)
        await run(3)
        await waitForIdle(pids)
        say(`${stack}: measuring ${durationSec} s with ${connections} connections`)
        const sampler = new CpuSampler(pids, () => [process.pid])
        sampler.start()
        const f = await run(durationSec)
        const cpu = sampler.stop()
        const logins = f.rps * f.durationSec
        results.push({
          stack: stack === 'single' ? 'production process (node dist/api/server.js)' : `nginx TLS → pm2 cluster (${availableParallelism()} workers)`,
          loginsPerSec: f.rps,
          cpuMsPerLogin: logins > 0 ? cpuMsPer(cpu.serverCpu, f.durationSec, logins) : NaN,
          serverCpuPct: cpu.serverCpu,
          serverRssMb: cpu.serverRssMb,
          loadgenCpuPct: cpu.loadgenCpu,
          otherCpuPct: cpu.otherCpu,
          latencyMs: { p50: f.latency.p50, p99: f.latency.p99 },
          statusCodes: f.statusCodes,
          errors: f.errors,
          timeouts: f.timeouts,
          processes: pids.length,
        })
      } finally {
        await running.stop()
      }
    }
  } finally {
    copy.remove()
    rmSync(work, { recursive: true, force: true })
  }

  const out: LoginResults = {
    createdAt: new Date().toISOString(),
    argon2: { ...OWASP_ARGON2, note: 'the API default; ARGON2_* in the environment override it' },
    machine: {
      cpus: availableParallelism(),
      loadAverageBefore: loadBefore.map((n) => Math.round(n * 100) / 100),
      loadAverageAfter: loadavg().map((n) => Math.round(n * 100) / 100),
    },
    settings: { durationSec, connections, users: userCount },
    results,
  }
  if (values.out) writeJsonResults(values.out, out)
  if (values.json) return console.log(JSON.stringify(out, null, 2))
  console.log(
    `machine: ${out.machine.cpus} CPUs, load average ${out.machine.loadAverageBefore.join(' ')} before, ${out.machine.loadAverageAfter.join(' ')} after`,
  )
  for (const r of results) {
    console.log(
      `${r.stack}: ${r.loginsPerSec} logins/s, ${r.cpuMsPerLogin} ms CPU per login (server ${r.serverCpuPct}% CPU, ${r.serverRssMb} MB RSS, ` +
        `load generator ${r.loadgenCpuPct}%, everything else ${r.otherCpuPct}%), p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ` +
        `answers ${JSON.stringify(r.statusCodes)}, ${r.errors} errors, ${r.timeouts} timeouts`,
    )
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:login: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
