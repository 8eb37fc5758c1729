// The production runtime as a startable stack: pm2 from node_modules, in cluster mode from
// ecosystem.config.js --env production, under its own PM2_HOME so it never meets the user's pm2
// (or another test's). `npm start` does the same with the default PM2_HOME.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../../lib/build.js'
import { parseJlist } from '../../lib/pm2-list.js'
import type { RunningStack } from './api.js'
import { freePort, isAlive, killGroup, killOnExit, waitForHttp } from '../../lib/process.js'

export interface Pm2Options {
  /** Default: a free port. */
  port?: number
  /** Worker count (WEB_CONCURRENCY); default: one per CPU. */
  instances?: number
  /** Added to (and overriding) this process's environment, for pm2 and every worker. */
  env?: Record<string, string>
  /** The checkout or release holding dist/ and ecosystem.config.js; default ROOT. */
  cwd?: string
  /** Default: a fresh temp dir, removed by stop(). */
  pm2Home?: string
}

export interface Pm2Worker {
  pmId: number
  pid: number
  status: string
  restarts: number
  /** Resident memory in bytes, as pm2 last sampled it. */
  memory: number
  uptimeMs: number
}

export interface Pm2Stack extends RunningStack {
  /** Runs the pm2 CLI against this cluster's PM2_HOME; resolves to its stdout. */
  pm2(args: string[]): Promise<string>
  pm2Home: string
  /** The pm2 God daemon: the cluster master that accepts connections and hands them to workers. */
  daemonPid: number
  /** Wall time of `pm2 start`, which returns once every worker sent 'ready' (wait_ready). */
  startMs: number
  instances: number
  workers(): Promise<Pm2Worker[]>
  /** Resolves once `instances` workers are online (after a crash or a reload), or throws. */
  waitForWorkers(timeoutMs?: number): Promise<Pm2Worker[]>
}

const requireHere = createRequire(import.meta.url)
const PM2_BIN = requireHere.resolve('pm2/bin/pm2')
export const APP_NAME = 'runway'

/**
 * The Node/V8 flags pm2 starts each worker with (the app's `node_args` in `dir`'s
 * ecosystem.config.js, which pm2 require()s the same way). A one-process stack or a ceiling twin
 * runs with them too, so a figure set beside the cluster's compares code, not runtime settings.
 */
export function workerNodeArgs(dir: string): string[] {
  const file = join(dir, 'ecosystem.config.js')
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`)
  const app = (requireHere(file) as { apps?: { node_args?: string | string[] }[] }).apps?.[0]
  const args = app?.node_args ?? []
  return Array.isArray(args) ? args : args.split(/\s+/).filter(Boolean)
}

export async function startPm2Cluster(o: Pm2Options = {}): Promise<Pm2Stack> {
  const cwd = o.cwd ?? ROOT
  for (const file of ['dist/api/server.js', 'ecosystem.config.js']) {
    if (!existsSync(join(cwd, file))) throw new Error(`${join(cwd, file)} is missing: run \`npm run build\` first`)
  }
  const ownHome = o.pm2Home === undefined
  const pm2Home = o.pm2Home ?? mkdtempSync(join(tmpdir(), 'runway-pm2-'))
  mkdirSync(pm2Home, { recursive: true })
  const h = pm2Handle({ ...o, cwd, pm2Home, port: o.port ?? (await freePort()) }, ownHome)
  try {
    const started = Date.now()
    await h.pm2(['start', join(cwd, 'ecosystem.config.js'), '--env', 'production'])
    const startMs = Date.now() - started
    h.started()
    await h.waitForWorkers()
    await waitForHttp(`${h.url}/readyz`, { timeoutMs: 15_000 })
    return { ...h, startMs }
  } catch (err) {
    const logs = join(h.env.RUNWAY_LOG_DIR!, 'runway.err.log')
    // The last lines that say something (not stack frames) of what the workers wrote to stderr.
    const said = existsSync(logs)
      ? readFileSync(logs, 'utf8')
          .split('\n')
          .filter((l) => l.trim() && !/^\s+at /.test(l))
      : []
    const tail = [...new Set(said.slice(-3))].join(' | ')
    await h.stop()
    throw new Error(`pm2 cluster did not start: ${(err as Error).message}${tail ? ` (worker stderr: ${tail})` : ''}`)
  }
}

/**
 * A cluster something else started under `pm2Home` (a `runway deploy` to a local target): its
 * workers, `pm2 reload`, and stop() (pm2 kill, then SIGKILL to whatever is left) — the same
 * handle as startPm2Cluster's. The daemon must be running.
 */
export function attachPm2Cluster(o: { pm2Home: string; cwd: string; port: number; instances: number }): Pm2Stack {
  const h = pm2Handle(o, false)
  h.started()
  if (!h.daemonPid) throw new Error(`no pm2 daemon under ${o.pm2Home} (no pm2.pid)`)
  return { ...h, startMs: 0 }
}

function pm2Handle(o: Pm2Options & { cwd: string; pm2Home: string; port: number }, ownHome: boolean) {
  const { cwd, pm2Home, port } = o
  const instances = o.instances ?? availableParallelism()
  const url = `http://127.0.0.1:${port}`
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    RUNWAY_LOG_DIR: join(pm2Home, 'logs'),
    ...o.env,
    // Never the user's pm2, whatever the environment says.
    PM2_HOME: pm2Home,
    WEB_CONCURRENCY: String(instances),
  }
  delete env.NODE_APP_INSTANCE
  delete env.pm_id

  const pm2 = (args: string[], timeoutMs = 60_000) =>
    new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [PM2_BIN, ...args], { cwd, env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`pm2 ${args.join(' ')} failed: ${(stderr || stdout || err.message).trim().split('\n').slice(-6).join(' | ')}`))
        else resolve(stdout)
      })
    })

  // Everything this cluster runs, for the exit reaper and for stop(): the daemon's process group
  // (it detaches into its own) holds the workers too; worker PIDs are kept in case they left it.
  let daemonPid = 0
  let knownWorkers: number[] = []
  const forget = killOnExit(() => [daemonPid, ...knownWorkers].filter((p) => p > 0))
  const readDaemonPid = () => {
    try {
      return Number(readFileSync(join(pm2Home, 'pm2.pid'), 'utf8').trim()) || 0
    } catch {
      return 0
    }
  }

  const workers = async (): Promise<Pm2Worker[]> => {
    const now = Date.now()
    const out = parseJlist(await pm2(['jlist'], 20_000))
      .filter((p) => p.name === APP_NAME)
      .map((p) => ({ pmId: p.id, pid: p.pid, status: p.status, restarts: p.restarts, memory: p.memory, uptimeMs: p.startedAt ? now - p.startedAt : 0 }))
    knownWorkers = [...new Set([...knownWorkers, ...out.map((w) => w.pid).filter((p) => p > 0)])]
    return out
  }

  const waitForWorkers = async (timeoutMs = 30_000): Promise<Pm2Worker[]> => {
    const deadline = Date.now() + timeoutMs
    let last: Pm2Worker[] = []
    while (Date.now() < deadline) {
      last = await workers()
      if (last.length === instances && last.every((w) => w.status === 'online' && w.pid > 0)) return last
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`pm2: ${instances} workers not online after ${timeoutMs} ms (${last.map((w) => `${w.pmId}:${w.status}`).join(', ') || 'none'})`)
  }

  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    daemonPid ||= readDaemonPid()
    await workers().catch(() => [])
    // pm2 kill stops the workers the graceful way (SIGINT, kill_timeout), then the daemon.
    await pm2(['kill'], 30_000).catch(() => undefined)
    if (daemonPid) killGroup(daemonPid, 'SIGKILL')
    for (const pid of knownWorkers) if (isAlive(pid)) killGroup(pid, 'SIGKILL')
    forget()
    if (ownHome) rmSync(pm2Home, { recursive: true, force: true })
  }

  return {
    name: `pm2 cluster (${instances} workers)`,
    url,
    env,
    pm2Home,
    get daemonPid() {
      return daemonPid
    },
    /** Reads the daemon's pid once pm2 has started it. */
    started() {
      daemonPid = readDaemonPid()
    },
    instances,
    pm2,
    workers,
    waitForWorkers,
    pids: async () => [daemonPid, ...(await workers()).map((w) => w.pid).filter((p) => p > 0)],
    stop,
  }
}
