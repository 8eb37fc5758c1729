// Benchmark (not a test): what metrics cost on GET /api/me/ (goal: at most 3% of throughput).
// The same app runs as two processes, one with METRICS_PORT set (requests counted, the cluster
// endpoint listening and scraped every second while the load runs, far more often than
// Prometheus would) and one without; autocannon loads them alternately, so both see the same
// machine conditions. Two figures: throughput, and the server's CPU time per request (from
// /proc/<pid>/stat), which other work on a shared machine disturbs far less. Run it alone: `flock /tmp/runway-heavy.lock npm run bench:metrics`.
//   npm run bench:metrics -- [--rounds 5] [--duration 5] [--connections 50] [--scrape-every 1]
import autocannon from 'autocannon'
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../src/api/app.js'
import { hashPassword } from '../src/api/auth/passwords.js'
import { loadConfig } from '../src/api/config.js'
import { appRegistry } from '../src/api/metrics/registry.js'
import { startMetricsListener } from '../src/api/metrics/cluster.js'
import { freePort } from '../src/lib/process.js'
import { SqliteStore } from '../src/api/store/sqlite.js'

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in USER_HZ (100)
}

const KEY = 'bench-signing-key-0123456789-0123456789-abcdef'

async function serve(dataDir: string, on: boolean, scrapeEverySeconds: number) {
  const metricsPort = on ? await freePort() : 0
  const config = loadConfig({
    NODE_ENV: 'production',
    JWT_SIGNING_KEY: KEY,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    PORT: '0',
    METRICS_PORT: on ? String(metricsPort) : '',
  })
  const app = await buildApp(config)
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  if (on) {
    await startMetricsListener({
      host: '127.0.0.1',
      port: metricsPort,
      socketDir: join(dataDir, `metrics-${process.pid}`),
      worker: '0',
      registry: appRegistry(app, '0'),
      log: app.log,
    })
    setInterval(() => void fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text()), scrapeEverySeconds * 1000).unref()
  }
  process.send!(address)
}

async function main() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '50' },
      'scrape-every': { type: 'string', default: '1' },
      help: { type: 'boolean' },
    },
  })
  if (values.help) {
    console.log('Usage: npm run bench:metrics -- [--rounds N] [--duration SECONDS] [--connections N] [--scrape-every SECONDS]')
    return
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-bench-'))
  const store = SqliteStore.open(dataDir)
  await store.migrate()
  await store.createUser('bench', await hashPassword('bench-password'))
  await store.close()

  const children = [true, false].map((on) => fork(import.meta.filename, ['--serve', dataDir, String(on), values['scrape-every']], { stdio: 'inherit' }))
  try {
    const urls = await Promise.all(children.map((c) => new Promise<string>((resolve) => c.once('message', (m) => resolve(String(m))))))
    const login = await fetch(`${urls[0]}/api/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bench', password: 'bench-password' }),
    })
    const { access } = (await login.json()) as { access: string }
    const run = (url: string, duration: number) =>
      autocannon({ url: `${url}/api/me/`, headers: { authorization: `Bearer ${access}` }, connections: Number(values.connections), duration })
    for (const url of urls) await run(url, 2) // warm-up, not counted
    const rps: [number[], number[]] = [[], []]
    const cpuUs: [number[], number[]] = [[], []]
    for (let i = 0; i < Number(values.rounds); i++) {
      // Alternate which goes first, so neither always runs on a machine the other just warmed.
      const order = i % 2 ? [1, 0] : [0, 1]
      for (const k of order) {
        const cpuBefore = cpuSeconds(children[k]!.pid!)
        const r = await run(urls[k]!, Number(values.duration))
        const perRequest = ((cpuSeconds(children[k]!.pid!) - cpuBefore) / r.requests.total) * 1e6
        if (r.errors || r.non2xx || r.timeouts) throw new Error(`round ${i}: ${r.errors} errors, ${r.non2xx} non-2xx, ${r.timeouts} timeouts`)
        rps[k as 0 | 1].push(r.requests.average)
        cpuUs[k as 0 | 1].push(perRequest)
        process.stderr.write(
          `round ${i + 1}/${values.rounds} ${k === 0 ? 'metrics on ' : 'metrics off'}: ${r.requests.average.toFixed(0)} req/s, ${perRequest.toFixed(1)} µs CPU per request\n`,
        )
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const [on, off] = [median(rps[0]), median(rps[1])]
    const [cpuOn, cpuOff] = [median(cpuUs[0]), median(cpuUs[1])]
    console.log(
      JSON.stringify({
        reqPerSec: { on, off, cost: `${((1 - on / off) * 100).toFixed(1)}%` },
        cpuMicrosPerRequest: { on: +cpuOn.toFixed(1), off: +cpuOff.toFixed(1), cost: `${((cpuOn / cpuOff - 1) * 100).toFixed(1)}%` },
      }),
    )
  } finally {
    for (const c of children) c.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3]!, process.argv[4] === 'true', Number(process.argv[5]))
else await main()
