// The stacks `runway compare` and `runway drill` bring up: dev server, one production process
// (SQLite or PostgreSQL), the pm2 cluster, nginx → cluster over HTTP and TLS, and the bare
// ceiling twins. One definition per stage, so both commands run exactly the same stacks.
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { redactSecrets } from '../../api/redact.js'
import { ROOT, type StagedCopy } from '../../lib/build.js'
import { freePort, processTree, startService, waitForHttp } from '../../lib/process.js'
import { startDevServer, startProductionProcess, type ProcessStack } from '../stacks/api.js'
import { startPm2Cluster, workerNodeArgs, type Pm2Stack } from '../stacks/pm2.js'
import { startNginx, type StartNginxOptions } from '../stacks/nginx.js'
import { CEILING_SERVER_FILE } from './scenarios.js'

export type StageId = 'dev' | 'single' | 'single-pg' | 'cluster' | 'nginx' | 'tls' | 'bare-single' | 'bare-cluster' | 'bare-nginx' | 'bare-tls' | 'proxy-tls'
export const STAGE_IDS: readonly StageId[] = ['dev', 'single', 'single-pg', 'cluster', 'nginx', 'tls']
/** Measured by default (single-pg only when a PostgreSQL URL is given). */
export const DEFAULT_STAGE_IDS: readonly StageId[] = ['dev', 'single', 'cluster', 'nginx', 'tls']

export interface Running {
  url: string
  ca?: string
  pids(): Promise<number[]>
  stop(): Promise<void>
  /** Twins cannot log in: their tokens are minted with the shared key. */
  mint: boolean
  /** The server process of a one-process stage (dev, single): what `runway drill crash` kills. */
  server?: ProcessStack
  /** The pm2 cluster of a cluster stage (also behind nginx): its workers, `pm2 reload`. */
  pm2?: Pm2Stack
  /** The staged copy the stack runs from (src/ for dev, dist/ otherwise). */
  dir?: string
  /** A Unix socket the app also listens on: nginxOver proxies to it, as on a host `runway host init` set up. */
  socket?: string
}

export interface StageDef {
  id: StageId
  label: string
  kind: 'stage' | 'twin'
  twinOf?: StageId
  nginx?: boolean
  /** Runs on PostgreSQL (a fresh schema of CompareOptions.databaseUrl) instead of SQLite. */
  postgres?: boolean
  /**
   * The staged copy of the app it starts from. compare makes it (compiling it when dist/ is stale)
   * before the start-up clock runs: a rebuild is not start-up time.
   */
  runs?: 'src' | 'dist'
  explanation: string
  start(ctx: StageContext): Promise<Running>
}

export interface StageContext {
  env: Record<string, string>
  dataDir: string
  logDir: string
  key: string
  instances: number
  /** nginx's login rate limit (limit_req → 429) on, as rendered for production; off by default. */
  nginxRateLimit?: boolean
  dist(): Promise<StagedCopy>
  src(): Promise<StagedCopy>
}

const hostPort = (url: string) => new URL(url).host

/** Several stacks at once (nginx over a cluster): stop them all, last started first. */
function combine(
  parts: { stop(): Promise<void>; pids(): Promise<number[]> }[],
  front: { url: string; ca?: string },
  mint: boolean,
  handles: Pick<Running, 'server' | 'pm2' | 'dir' | 'socket'> = {},
): Running {
  return {
    ...handles,
    ...front,
    mint,
    pids: async () => (await Promise.all(parts.map((p) => p.pids()))).flat(),
    stop: async () => {
      for (const p of [...parts].reverse()) await p.stop().catch(() => undefined)
    },
  }
}

/**
 * A path for an app's Unix socket in a fresh directory nginx's workers (another user) can pass
 * through; `remove` deletes the directory.
 */
export function socketPath(): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'runway-sock-'))
  chmodSync(dir, 0o711)
  return { path: join(dir, 'app.sock'), remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * The bare node:http twin (loadtest/ceiling-server.ts), one process or a node:cluster; `socket`:
 * also on a Unix socket. It runs with the production workers' V8 flags, as its stage does.
 */
export async function startCeiling(ctx: StageContext, workers: number, name: string, o: { socket?: boolean } = {}): Promise<Running> {
  const socket = o.socket ? socketPath() : undefined
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const service = startService({
    name,
    command: process.execPath,
    args: [...workerNodeArgs(ROOT), '--import', 'tsx', CEILING_SERVER_FILE],
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: ctx.dataDir,
      JWT_SIGNING_KEY: ctx.key,
      CEILING_WORKERS: String(workers),
      ...(socket ? { CEILING_SOCKET: socket.path } : {}),
    },
    logFile: join(ctx.logDir, `${name.replaceAll(' ', '-')}.log`),
  })
  const stop = async (ms: number) => {
    await service.stop(ms)
    socket?.remove()
  }
  try {
    await waitForHttp(`${url}/healthz`, { service, timeoutMs: 20_000 })
  } catch (err) {
    await stop(2000)
    throw err
  }
  return { url, mint: true, pids: async () => processTree(service.pid), stop: () => stop(5000), ...(socket ? { socket: socket.path } : {}) }
}

/** nginx (startNginx's options but the upstreams; login rate limit off unless `rateLimit`) in front of `upstream`. */
export async function nginxOver(upstream: Running, o: Omit<StartNginxOptions, 'upstreams' | 'rateLimit'> & { rateLimit?: boolean } = {}): Promise<Running> {
  const { rateLimit, ...rest } = o
  const to = upstream.socket ? `unix:${upstream.socket}` : hostPort(upstream.url)
  const nginx = await startNginx({ upstreams: [to], ...rest, ...(rateLimit ? {} : { rateLimit: false }) }).catch(async (err: unknown) => {
    await upstream.stop()
    throw err
  })
  const ca = nginx.caFile ? readFileSync(nginx.caFile, 'utf8') : undefined
  return combine([upstream, nginx], { url: nginx.url, ...(ca ? { ca } : {}) }, upstream.mint, {
    ...(upstream.pm2 ? { pm2: upstream.pm2 } : {}),
    ...(upstream.dir ? { dir: upstream.dir } : {}),
  })
}

/** The pm2 cluster; `socket`: its workers also listen on a Unix socket (UNIX_SOCKET), for nginx. */
export const startCluster = async (ctx: StageContext, o: { socket?: boolean } = {}): Promise<Running> => {
  const copy = await ctx.dist()
  const socket = o.socket ? socketPath() : undefined
  const env = { ...ctx.env, RUNWAY_LOG_DIR: join(ctx.logDir, 'pm2'), ...(socket ? { UNIX_SOCKET: socket.path } : {}) }
  const pm2 = await startPm2Cluster({ cwd: copy.dir, instances: ctx.instances, env }).catch((err: unknown) => {
    socket?.remove()
    throw err
  })
  const socketDir = { stop: async () => socket?.remove(), pids: async () => [] }
  return combine([socketDir, pm2], { url: pm2.url }, false, { pm2, dir: copy.dir, ...(socket ? { socket: socket.path } : {}) })
}

export function stageDefs(instances: number): StageDef[] {
  const w = `${instances} worker${instances === 1 ? '' : 's'}`
  return [
    {
      id: 'dev',
      runs: 'src',
      label: 'dev server',
      kind: 'stage',
      explanation:
        "Exactly `npm run dev`: tsx watch (TypeScript transpiled on load, a file watcher beside it), NODE_ENV=development, and a pino-pretty line for every request. One process, so one core: no crash recovery, no zero-downtime reload, no TLS, no buffering of slow clients. Its event loop is the same as production's, so on cheap endpoints it is not far behind one production process; the gap is mostly per-request pretty logging.",
      start: async (ctx) => {
        const copy = await ctx.src()
        const s = await startDevServer({ cwd: copy.dir, env: ctx.env, logFile: join(ctx.logDir, 'dev-server.log') })
        return { url: s.url, mint: false, pids: () => s.pids(), stop: () => s.stop(), server: s, dir: copy.dir }
      },
    },
    {
      id: 'single',
      runs: 'dist',
      label: 'production, one process',
      kind: 'stage',
      explanation:
        'Compiled JavaScript (`node dist/api/server.js`, with the V8 flags pm2 gives each worker: ecosystem.config.js node_args, and a libuv pool sized to its password-hash concurrency as the ecosystem sizes the pool of each worker), NODE_ENV=production, JSON logs to a file and no per-request log lines (the production policy: nginx keeps the access log; errors and warnings still log). Still one event loop on one core: what it gains on the dev server is logging and the watcher, not parallelism.',
      start: async (ctx) => {
        const copy = await ctx.dist()
        const s = await startProductionProcess({ cwd: copy.dir, env: ctx.env, logFile: join(ctx.logDir, 'production.log') })
        return { url: s.url, mint: false, pids: () => s.pids(), stop: () => s.stop(), server: s, dir: copy.dir }
      },
    },
    {
      id: 'single-pg',
      runs: 'dist',
      label: 'production, one process, PostgreSQL',
      kind: 'stage',
      postgres: true,
      explanation:
        'The same single production process with DATABASE_URL set: the store is PostgreSQL (a fresh schema, dropped afterwards) instead of the SQLite file. Every store call is a network round trip instead of a function call, so compare it with "production, one process": the goals are me ≥ 0.8× and refresh ≥ 0.6× of SQLite. The database server runs where --database-url points (on the same machine it competes for the same cores).',
      start: async (ctx) => {
        const copy = await ctx.dist()
        const s = await startProductionProcess({ cwd: copy.dir, env: ctx.env, logFile: join(ctx.logDir, 'production.log') })
        return { url: s.url, mint: false, pids: () => s.pids(), stop: () => s.stop(), server: s, dir: copy.dir }
      },
    },
    {
      id: 'bare-single',
      label: 'ceiling: bare node:http',
      kind: 'twin',
      twinOf: 'single',
      explanation:
        'The thinnest app that answers the same requests: node:http, the same HS256 check (verified tokens remembered, as the API does), the same SQLite read, the same JSON; no framework, plugins, logging, schemas, security headers or revocation set; the same V8 flags as the production workers, so the ratio measures code, not a runtime setting. The ceiling of one process on this machine. With --ceiling each stage and its twin are up together and measured in alternating runs, so drift on a shared machine falls on both alike.',
      start: (ctx) => startCeiling(ctx, 0, 'ceiling single'),
    },
    {
      id: 'cluster',
      runs: 'dist',
      label: `pm2 cluster (${w})`,
      kind: 'stage',
      explanation: `pm2 cluster mode from ecosystem.config.js, ${w}: pm2's master accepts each connection and hands it to a worker (round robin), so every core serves requests, crashed workers are restarted and \`pm2 reload\` replaces workers without dropping requests. On a small machine the load generator competes with the workers for the same cores, which caps the gain below the worker count.`,
      start: startCluster,
    },
    {
      id: 'bare-cluster',
      label: `ceiling: bare node:cluster (${w})`,
      kind: 'twin',
      twinOf: 'cluster',
      explanation: `The bare twin as a node:cluster of ${w} — the same round-robin master pm2 uses — with nothing else: the ceiling of this topology here.`,
      start: (ctx) => startCeiling(ctx, ctx.instances, 'ceiling cluster'),
    },
    {
      id: 'nginx',
      runs: 'dist',
      label: 'nginx → pm2 cluster (HTTP)',
      kind: 'stage',
      nginx: true,
      explanation:
        "The rendered nginx config in front of the cluster: nginx parses each request again, proxies it over keep-alive upstream connections on the workers' Unix socket (UNIX_SOCKET, as `runway host init` sets up; cheaper than loopback TCP), buffers slow clients, writes the JSON access log and adds security headers. That is another process doing HTTP work per request on the same cores, so on a small machine the proxy costs real throughput; on a server with spare cores, and with slow clients, it buys resilience.",
      start: async (ctx) => nginxOver(await startCluster(ctx, { socket: true }), { rateLimit: ctx.nginxRateLimit }),
    },
    {
      id: 'bare-nginx',
      label: 'ceiling: nginx → bare cluster (HTTP)',
      kind: 'twin',
      twinOf: 'nginx',
      nginx: true,
      explanation: 'The same rendered nginx in front of the bare node:cluster twin, over a Unix socket too: what the proxy topology allows on this machine.',
      start: async (ctx) => nginxOver(await startCeiling(ctx, ctx.instances, 'ceiling cluster', { socket: true })),
    },
    {
      id: 'tls',
      runs: 'dist',
      label: 'nginx (TLS) → pm2 cluster',
      kind: 'stage',
      nginx: true,
      explanation:
        'As nginx over HTTP, plus TLS 1.2/1.3 termination with a generated certificate. Keep-alive connections pay the handshake once; each request then pays symmetric encryption and record framing in nginx.',
      start: async (ctx) => nginxOver(await startCluster(ctx, { socket: true }), { tls: true, rateLimit: ctx.nginxRateLimit }),
    },
    {
      id: 'bare-tls',
      label: 'ceiling: nginx (TLS) → bare cluster',
      kind: 'twin',
      twinOf: 'tls',
      nginx: true,
      explanation: 'The same TLS nginx in front of the bare node:cluster twin.',
      start: async (ctx) => nginxOver(await startCeiling(ctx, ctx.instances, 'ceiling cluster', { socket: true }), { tls: true }),
    },
    {
      id: 'proxy-tls',
      label: 'ceiling: minimal nginx proxy (TLS) → bare cluster',
      kind: 'twin',
      twinOf: 'tls',
      nginx: true,
      explanation:
        'nginx with nothing but TLS (its default protocols and ciphers), proxy_pass and keep-alive upstream connections, the same worker count, in front of the bare node:cluster twin: no access log, no headers, no gzip, no error pages. The rendered template on the same bare cluster (the row above) ÷ this is what the template itself costs; the goal is ≥ 90%.',
      start: async (ctx) => nginxOver(await startCeiling(ctx, ctx.instances, 'ceiling cluster', { socket: true }), { tls: true, minimal: true }),
    },
  ]
}

/**
 * A fresh schema in the PostgreSQL server at `base` for one compare stage, reached with
 * `options=-c search_path=…` in the URL; `drop` removes it with everything the stage wrote.
 */
export async function postgresSchema(base: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `runway_compare_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5000 })
  admin.on('error', () => {})
  try {
    await admin.connect()
    await admin.query(`CREATE SCHEMA ${schema}`)
  } catch (err) {
    await admin.end().catch(() => {})
    throw new Error(`PostgreSQL at ${redactSecrets(base)}: ${(err as Error).message}`)
  }
  const url = new URL(base)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return {
    url: url.toString(),
    drop: async () => {
      try {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`)
      } finally {
        await admin.end().catch(() => {})
      }
    },
  }
}

/**
 * The environment every stage runs with: its data dir, the run's signing key, and login rate
 * limits off — compare logs in far more often than a person, and the per-IP and per-user limits
 * (and nginx's limit_req, off in nginxOver) would turn the login scenarios into 429s.
 */
export function stageEnv(def: StageDef, dataDir: string, key: string): Record<string, string> {
  return {
    DATA_DIR: dataDir,
    JWT_SIGNING_KEY: key,
    LOGIN_RATE_LIMIT_IP: '0',
    LOGIN_RATE_LIMIT_USER: '0',
    TRUST_PROXY: def.nginx ? '127.0.0.1' : 'false',
  }
}
