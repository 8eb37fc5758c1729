// One scrape for the whole pm2 cluster.
//
// Under pm2 every worker's listen() on a port goes through pm2's God daemon (the cluster master),
// which hands each connection to the next worker: a /metrics served that way alone would describe
// whichever worker the round robin picked. prom-client's AggregatorRegistry needs Node's cluster
// master, which under pm2 is the daemon, not code of ours. So:
//
//   - each worker also listens, exclusively, on its own unix socket in METRICS_SOCKET_DIR
//     (worker-<id>-<pid>.sock, directory mode 0700) and answers there with its own metrics as JSON;
//   - each worker listens on METRICS_HOST:METRICS_PORT (shared through the daemon like PORT); the
//     worker a scrape lands on reads every socket in the directory and answers for all of them,
//     each series labelled with its `worker` (the pm2 instance id).
//
// A single process (the dev server, `node dist/api/server.js`) does the same with one socket.
import { mkdirSync, readdirSync, realpathSync, statSync, unlinkSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { Registry, type Metric } from 'prom-client'
import type { MetricJson } from './app-metrics.js'

export interface WorkerSnapshot {
  worker: string
  pid: number
  /** Epoch ms: when two processes claim one worker id (during a reload), the newer one counts. */
  startedAt: number
  metrics: MetricJson[]
}

export interface ClusterSnapshot {
  workers: Array<{ worker: string; pid: number; startedAt: number }>
  /** Sockets that did not answer (socket file name and why). */
  failed: Array<{ socket: string; error: string }>
  metrics: MetricJson[]
}

export interface MetricsListener {
  /** host:port of the cluster endpoint. */
  address: string
  socketPath: string
  close(): Promise<void>
}

const SOCKET = /^worker-(.+)-([0-9]+)\.sock$/
const PEER_TIMEOUT_MS = 3000
/** Linux's sun_path holds 108 bytes. */
const MAX_SOCKET_PATH = 107

const listen = (server: http.Server, options: { path: string; exclusive: true } | { host: string; port: number }) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => {
      server.off('error', reject)
      resolve()
    })
  })

const closeServer = (server: http.Server) =>
  new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A socket file is never older than this while its process is still starting to listen. */
const STARTING_MS = 10_000

function isStale(path: string, pid: number, err: NodeJS.ErrnoException): boolean {
  if (!isAlive(pid)) return true
  if (err.code !== 'ECONNREFUSED') return false
  try {
    return Date.now() - statSync(path).mtimeMs > STARTING_MS
  } catch {
    return true
  }
}

/** One peer's snapshot over its unix socket. */
function readPeer(socketPath: string): Promise<WorkerSnapshot> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: '/', timeout: PEER_TIMEOUT_MS }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`)
          resolve(JSON.parse(text) as WorkerSnapshot)
        } catch (err) {
          reject(err)
        }
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer in ${PEER_TIMEOUT_MS} ms`)))
    req.on('error', reject)
  })
}

/** Every worker's snapshot from the sockets in `dir` (`self` answers directly, not over its socket). */
export async function gather(dir: string, self?: { socketPath: string; snapshot: () => Promise<WorkerSnapshot> }): Promise<ClusterSnapshot> {
  const failed: ClusterSnapshot['failed'] = []
  const names = readdirSync(dir).filter((n) => SOCKET.test(n))
  const answers = await Promise.all(
    names.map(async (name) => {
      const path = join(dir, name)
      try {
        return await (self && path === self.socketPath ? self.snapshot() : readPeer(path))
      } catch (err) {
        // Left behind by a process that is gone (killed, crashed): tidy it away, it is not a
        // failure. Gone = its pid is dead, or nothing listens on it although it is older than a
        // start takes (its pid reused by another process).
        if (isStale(path, Number(SOCKET.exec(name)![2]), err as NodeJS.ErrnoException)) {
          try {
            unlinkSync(path)
          } catch {
            // another scrape removed it first
          }
          return undefined
        }
        failed.push({ socket: name, error: (err as Error).message })
        return undefined
      }
    }),
  )
  // During a reload the old and the new process of one worker id both answer: the newer counts.
  const byWorker = new Map<string, WorkerSnapshot>()
  for (const a of answers) {
    if (!a) continue
    const seen = byWorker.get(a.worker)
    if (!seen || a.startedAt > seen.startedAt) byWorker.set(a.worker, a)
  }
  const workers = [...byWorker.values()].sort((a, b) => a.worker.localeCompare(b.worker, 'en', { numeric: true }))
  return { workers: workers.map(({ worker, pid, startedAt }) => ({ worker, pid, startedAt })), failed, metrics: merge(workers) }
}

/** Each metric once, with the series of every worker (told apart by their `worker` label). */
export function merge(workers: WorkerSnapshot[]): MetricJson[] {
  const byName = new Map<string, MetricJson>()
  for (const w of workers) {
    for (const metric of w.metrics) {
      const seen = byName.get(metric.name)
      if (seen) seen.values.push(...metric.values)
      else byName.set(metric.name, { ...metric, values: [...metric.values] })
    }
  }
  return [...byName.values()]
}

/** The Prometheus text format of a cluster snapshot, plus how many workers answered. */
export async function exposition(snapshot: ClusterSnapshot): Promise<string> {
  const registry = new Registry()
  const metrics: MetricJson[] = [
    ...snapshot.metrics,
    {
      name: 'runway_metrics_workers',
      help: 'Workers whose metrics are in this scrape (answered) or are missing from it (failed).',
      type: 'gauge',
      aggregator: 'sum',
      values: [
        { labels: { state: 'answered' }, value: snapshot.workers.length },
        { labels: { state: 'failed' }, value: snapshot.failed.length },
      ],
    },
  ]
  for (const metric of metrics)
    registry.registerMetric({ name: metric.name, help: metric.help, type: metric.type, get: async () => metric } as unknown as Metric)
  return registry.metrics()
}

/**
 * Starts this process's socket and the cluster endpoint. Throws (so the process does not start)
 * when either cannot listen: metrics were asked for, and silently having none is worse.
 */
export async function startMetricsListener(o: {
  host: string
  port: number
  socketDir: string
  worker: string
  registry: Registry
  log: { error(obj: object, msg: string): void }
}): Promise<MetricsListener> {
  mkdirSync(o.socketDir, { recursive: true, mode: 0o700 })
  const dir = realpathSync(o.socketDir)
  const socketPath = join(dir, `worker-${o.worker}-${process.pid}.sock`)
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new Error(`metrics socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes: set METRICS_SOCKET_DIR to a shorter directory`)
  }
  const startedAt = Date.now()
  const snapshot = async (): Promise<WorkerSnapshot> => ({
    worker: o.worker,
    pid: process.pid,
    startedAt,
    metrics: (await o.registry.getMetricsAsJSON()) as unknown as MetricJson[],
  })

  const own = http.createServer((_req, res) => {
    snapshot().then(
      (s) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s)),
      (err: Error) => {
        o.log.error({ err }, 'metrics: collecting this worker failed')
        res.writeHead(500).end()
      },
    )
  })
  try {
    unlinkSync(socketPath) // only ever a leftover of a process with this pid
  } catch {
    // none
  }
  await listen(own, { path: socketPath, exclusive: true })

  const endpoint = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: the metrics are at GET /metrics (?format=json for JSON)\n')
      return
    }
    gather(dir, { socketPath, snapshot })
      .then(async (s) => {
        for (const f of s.failed) o.log.error({ socket: f.socket, error: f.error }, 'metrics: a worker did not answer')
        if (url.searchParams.get('format') === 'json') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s))
        else res.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE }).end(await exposition(s))
      })
      .catch((err: Error) => {
        o.log.error({ err }, 'metrics: gathering failed')
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics gathering failed: ${err.message}\n`)
      })
  })
  try {
    await listen(endpoint, { host: o.host, port: o.port })
  } catch (err) {
    await closeServer(own)
    throw new Error(`metrics listener on ${o.host}:${o.port}: ${(err as Error).message}`)
  }
  return {
    address: `${o.host}:${o.port}`,
    socketPath,
    close: async () => {
      // The socket file goes with the server (Node unlinks it on close).
      await Promise.all([closeServer(endpoint), closeServer(own)])
    },
  }
}
