// Two app servers behind one nginx: traffic reaches both, and when one goes away (a graceful
// stop, or SIGKILL mid-load) no idempotent request is lost: nginx retries it on the other
// (proxy_next_upstream). The app servers are real processes (`src/api/server.ts` via tsx) sharing one
// SQLite data dir, as a cluster on one host would.
import t from 'tap'
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNginx } from '../../src/bench/stacks/nginx.js'
import { freePort, startService, waitForHttp, type Service } from '../../src/lib/process.js'
import { SIGNING_KEY } from '../helpers/app.js'
import { nginxOrSkip } from '../helpers/nginx.js'

const bin = nginxOrSkip(t)
const root = join(import.meta.dirname, '..', '..')
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli')

async function appProcess(name: string, dataDir: string): Promise<{ service: Service; hostPort: string }> {
  const port = await freePort()
  const service = startService({
    name,
    command: process.execPath,
    args: [tsxCli, 'src/api/server.ts'],
    cwd: root,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      JWT_SIGNING_KEY: SIGNING_KEY,
      ENV_FILE: join(dataDir, 'none.env'),
      TRUST_PROXY: '127.0.0.1',
      WORKER_HEADER: 'true',
      NODE_APP_INSTANCE: name,
      LOG_LEVEL: 'warn',
    },
    logFile: join(dataDir, `${name}.log`),
  })
  t.teardown(() => service.stop(2000))
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, { service, timeoutMs: 60_000 })
  return { service, hostPort: `127.0.0.1:${port}` }
}

interface Outcome {
  status: number | string
  worker?: string
  /** Date.now() when the request was sent. */
  startedAt: number
}

/** `concurrency` clients doing GET `path` back to back over keep-alive until `ms` have passed. */
async function load(url: string, ms: number, concurrency: number, during: () => Promise<void>): Promise<Outcome[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const outcomes: Outcome[] = []
  const start = Date.now()
  const one = () =>
    new Promise<Outcome>((resolve) => {
      const startedAt = Date.now()
      http
        .get(url, { agent, timeout: 10_000 }, (res) => {
          res.resume()
          res.on('end', () => resolve({ status: res.statusCode ?? 0, worker: res.headers['x-runway-worker'] as string | undefined, startedAt }))
        })
        .on('error', (err) => resolve({ status: err.message, startedAt }))
    })
  const client = async () => {
    while (Date.now() - start < ms) outcomes.push(await one())
  }
  await Promise.all([...Array.from({ length: concurrency }, client), during()])
  agent.destroy()
  return outcomes
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

if (bin) {
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-nginx-upstreams-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))

  t.test('traffic reaches both app servers; a graceful stop of one loses nothing', async (t) => {
    const [a, b] = await Promise.all([appProcess('a', dataDir), appProcess('b', dataDir)])
    const stack = await startNginx({ upstreams: [a.hostPort, b.hostPort] })
    t.teardown(() => stack.stop())

    const seen = new Set<string>()
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${stack.httpUrl}/readyz`)
      t.equal(res.status, 200)
      seen.add(res.headers.get('x-runway-worker') ?? '?')
    }
    t.same([...seen].sort(), ['a', 'b'], 'round robin reaches both')

    let stoppedAt = Infinity
    const outcomes = await load(`${stack.httpUrl}/readyz`, 2500, 6, async () => {
      await sleep(800)
      await a.service.stop() // SIGTERM: the app drains and exits
      stoppedAt = Date.now()
    })
    const failed = outcomes.filter((o) => o.status !== 200)
    t.equal(
      failed.length,
      0,
      `${outcomes.length} GETs, none lost (${failed
        .slice(0, 3)
        .map((o) => o.status)
        .join(', ')})`,
    )
    const late = outcomes.filter((o) => o.startedAt > stoppedAt)
    t.ok(late.length > 0 && late.every((o) => o.worker === 'b'), `after the stop, b answers all ${late.length}`)
    t.ok(
      outcomes.some((o) => o.worker === 'a'),
      'a answered before it stopped',
    )
  })

  t.test('SIGKILL of one app server mid-load loses no idempotent request', async (t) => {
    const [c, d] = await Promise.all([appProcess('c', dataDir), appProcess('d', dataDir)])
    const stack = await startNginx({ upstreams: [c.hostPort, d.hostPort] })
    t.teardown(() => stack.stop())
    let killedAt = Infinity
    const outcomes = await load(`${stack.httpUrl}/readyz`, 2500, 6, async () => {
      await sleep(800)
      // The whole process group: tsx and the node process running the server.
      process.kill(-c.service.pid, 'SIGKILL')
      await c.service.exited
      killedAt = Date.now()
    })
    const failed = outcomes.filter((o) => o.status !== 200)
    t.equal(
      failed.length,
      0,
      `${outcomes.length} GETs, none lost (${failed
        .slice(0, 3)
        .map((o) => o.status)
        .join(', ')})`,
    )
    t.ok(outcomes.some((o) => o.worker === 'c') && outcomes.some((o) => o.worker === 'd'), 'both answered')
    const late = outcomes.filter((o) => o.startedAt > killedAt)
    t.ok(late.length > 0 && late.every((o) => o.worker === 'd'), `only d after the kill (${late.length})`)
  })
}
