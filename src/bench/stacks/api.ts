// The two single-process ways to run the API, as startable stacks: the dev server (exactly what
// `npm run dev` runs) and one compiled production process (what each pm2 worker runs). `runway
// compare`, the deploy health gate and the runtime tests start them here, on top of
// src/lib/process.ts, and stop them by PID.
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../../lib/build.js'
import { freePort, processTree, startService, waitForHttp, type Service } from '../../lib/process.js'
import { workerNodeArgs } from './pm2.js'

/** `npm run dev` is `NODE_ENV=development tsx <DEV_ARGS>`; a test keeps package.json in step. */
export const DEV_ARGS = ['watch', '--clear-screen=false', 'src/api/server.ts'] as const

export interface RunningStack {
  name: string
  url: string
  /** Every process of the stack (server processes, plus the watcher or the pm2 master): sample CPU/RSS. */
  pids(): Promise<number[]>
  stop(): Promise<void>
}

export interface StackOptions {
  /** Default: a free port. */
  port?: number
  /** Added to (and overriding) this process's environment. */
  env?: Record<string, string>
  /** The checkout or release to run; default ROOT. Its .env is read unless env sets ENV_FILE. */
  cwd?: string
  /** stdout and stderr of the server (pretty logs for the dev server, JSON for production). */
  logFile?: string
}

const requireHere = createRequire(import.meta.url)
const READY_TIMEOUT_MS = 30_000

function processEnv(port: number, nodeEnv: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, HOST: '127.0.0.1', PORT: String(port), NODE_ENV: nodeEnv, ...extra }
}

/** Waits for /readyz; on failure stops the service and says where its output went. */
async function ready(service: Service, url: string, logFile: string | undefined): Promise<void> {
  try {
    await waitForHttp(`${url}/readyz`, { service, timeoutMs: READY_TIMEOUT_MS })
  } catch (err) {
    await service.stop(2000)
    const where = logFile ? `; its output is in ${logFile}` : ''
    throw new Error(`${service.name} did not become ready: ${(err as Error).message}${where}`)
  }
}

/** A single-process stack: also its leader's PID and exit code. */
export interface ProcessStack extends RunningStack {
  pid: number
  exited: Promise<number | null>
}

function asStack(name: string, service: Service, url: string): ProcessStack {
  return {
    name,
    url,
    pid: service.pid,
    exited: service.exited,
    pids: async () => processTree(service.pid),
    stop: () => service.stop(),
  }
}

/** The dev server exactly as `npm run dev` runs it: tsx watch, NODE_ENV=development, pretty logs. */
export async function startDevServer(o: StackOptions = {}): Promise<ProcessStack> {
  const cwd = o.cwd ?? ROOT
  const port = o.port ?? (await freePort())
  const url = `http://127.0.0.1:${port}`
  const service = startService({
    name: 'dev server',
    command: process.execPath,
    args: [requireHere.resolve('tsx/cli'), ...DEV_ARGS],
    cwd,
    env: processEnv(port, 'development', o.env),
    logFile: o.logFile,
  })
  await ready(service, url, o.logFile)
  return asStack('dev server', service, url)
}

/**
 * One compiled production process as each pm2 worker runs it: `node <node_args> dist/api/server.js`
 * (the flags of cwd's ecosystem.config.js), NODE_ENV=production, JSON logs.
 */
export async function startProductionProcess(o: StackOptions = {}): Promise<ProcessStack> {
  const cwd = o.cwd ?? ROOT
  const script = join(cwd, 'dist', 'api', 'server.js')
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first`)
  const port = o.port ?? (await freePort())
  const url = `http://127.0.0.1:${port}`
  const service = startService({
    name: 'production process',
    command: process.execPath,
    args: [...workerNodeArgs(cwd), script],
    cwd,
    // As the ecosystem sizes each pm2 worker's libuv pool to the hashes it runs at once, this
    // process gets a pool of its own hash concurrency (every CPU): each pool thread that ever ran
    // an argon2id hash keeps its ~19 MiB in glibc's arena for good, and Node's default 4 threads
    // held 4 × 19 MiB after the logins that mint compare's tokens.
    env: processEnv(port, 'production', { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE || String(availableParallelism()), ...o.env }),
    logFile: o.logFile,
  })
  await ready(service, url, o.logFile)
  return asStack('production process', service, url)
}
