// Runs ON the target, from inside a release (node dist/ops/deploy/remote.js <verb> ...), so that the
// health checks happen next to the app (loopback URLs, the target's own pm2) whether the target is
// this host or one reached over SSH. Node built-ins only: it runs before anything else is known
// to work. Prints one JSON object on stdout; exit 0 = healthy.
//
//   verify --release DIR [--timeout MS]            start the release once on a spare loopback port,
//                                                  outside pm2, and require /readyz: a release that
//                                                  cannot start never gets a worker slot or traffic
//   gate --release DIR --url URL [--timeout MS]    after the reload: every pm2 worker of the app runs
//                                                  from DIR, is online and stays up, and URL answers 200
//   probe --url URL                                what `runway status` shows: workers and health
//   daemon                                         the script the running pm2 daemon was started as
//   roll --pm2-root DIR --ecosystem FILE [--timeout MS]
//                                                  start the app under pm2, or replace its workers
//                                                  one at a time, each only by a ready one (pm2-control.ts)
import { spawn, execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { daemonScript, errorLineSince, startOrRoll } from './pm2-control.js'
import { reasonLine } from './target.js'
import { freePort } from '../../lib/process.js'
import { parseJlist } from '../../lib/pm2-list.js'
import { keepChecking } from './gate-deadline.js'
import { metricsUrl, sampleFigures, type WorkerFigures } from '../../api/metrics/figures.js'

interface AppConf {
  name: string
  script: string
  cwd?: string
  instances?: number
  env?: Record<string, string>
  env_production?: Record<string, string>
}

interface Worker {
  id: number
  pid: number
  status: string
  cwd: string
  /** Where the process really runs: /proc/<pid>/cwd resolved (pm2's cwd may be the `current` link). */
  dir: string
  uptimeMs: number
  restarts: number
  memory: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const out = (value: object, ok: boolean) => {
  process.stdout.write(`${JSON.stringify({ ok, ...value })}\n`)
  process.exitCode = ok ? 0 : 1
}

function loadApp(release: string): AppConf {
  const conf = createRequire(join(release, 'package.json'))(join(release, 'ecosystem.config.js')) as { apps: AppConf[] }
  const app = conf.apps?.[0]
  if (!app) throw new Error('ecosystem.config.js has no apps')
  return app
}

async function get(url: string): Promise<{ status: number; body: string } | { error: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    return { status: res.status, body: (await res.text()).slice(0, 200) }
  } catch (err) {
    const e = err as Error & { cause?: Error }
    return { error: e.cause?.message ?? e.message }
  }
}
const describe = (r: Awaited<ReturnType<typeof get>>) => ('error' in r ? r.error : `HTTP ${r.status} ${r.body}`)

async function verify(release: string, timeoutMs: number) {
  const started = Date.now()
  const app = loadApp(release)
  const port = await freePort()
  const env = { ...process.env, ...app.env, ...app.env_production, HOST: '127.0.0.1', PORT: String(port) }
  const child = spawn(process.execPath, [app.script], { cwd: app.cwd ?? release, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000))
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  let exit: number | null | undefined
  child.on('exit', (code, signal) => (exit = code ?? (signal ? 128 : 1)))
  const url = `http://127.0.0.1:${port}/readyz`
  let last = 'no answer'
  try {
    while (Date.now() - started < timeoutMs) {
      if (exit !== undefined) {
        const why = reasonLine(output)
        return out({ ms: Date.now() - started, detail: `the release exited with code ${exit} before it was ready: ${why.slice(0, 300)}` }, false)
      }
      const r = await get(url)
      if ('status' in r && r.status === 200) return out({ ms: Date.now() - started, detail: `${url} answered 200` }, true)
      last = describe(r)
      await sleep(150)
    }
    out({ ms: Date.now() - started, detail: `${url} not ready after ${timeoutMs} ms (${last})` }, false)
  } finally {
    if (exit === undefined) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await new Promise((r) => child.once('exit', r))
      clearTimeout(killer)
    }
  }
}

/** True when a pm2 daemon runs under PM2_HOME; `pm2 jlist` would otherwise start one as a side effect. */
function daemonRunning(): boolean {
  const home = process.env.PM2_HOME
  if (!home) return false
  try {
    process.kill(Number(readFileSync(join(home, 'pm2.pid'), 'utf8').trim()), 0)
    return true
  } catch {
    return false
  }
}

function pm2List(release: string): Promise<Worker[]> {
  if (!daemonRunning()) return Promise.reject(new Error(`no pm2 daemon running under PM2_HOME=${process.env.PM2_HOME ?? '(unset)'}`))
  const bin = join(pm2Root(release), 'node_modules', 'pm2', 'bin', 'pm2')
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, 'jlist'], { maxBuffer: 64 << 20, timeout: 20_000 }, (err, stdout) => {
      if (err) return reject(new Error(`pm2 jlist failed: ${err.message.split('\n')[0]}`))
      try {
        const app = loadApp(release).name
        resolve(
          parseJlist(stdout)
            .filter((p) => p.name === app)
            .map((p) => ({
              id: p.id,
              pid: p.pid,
              status: p.status,
              cwd: p.cwd,
              dir: real(p.pid ? `/proc/${p.pid}/cwd` : p.cwd),
              uptimeMs: p.status === 'online' ? Date.now() - p.startedAt : 0,
              restarts: p.restarts,
              memory: p.memory,
            })),
        )
      } catch (e) {
        reject(e)
      }
    })
  })
}

/** The pm2 the daemon was started from (<root>/.runway/pm2-runtime), else the release's own. */
function pm2Root(release: string): string {
  try {
    const dir = readFileSync(join(release, '..', '..', '.runway', 'pm2-runtime'), 'utf8').trim()
    if (dir && existsSync(join(dir, 'node_modules', 'pm2'))) return dir
  } catch {}
  return release
}

/** The workers' merged error log (ecosystem.config.js: RUNWAY_LOG_DIR/runway.err.log). */
const errLog = () => join(process.env.RUNWAY_LOG_DIR ?? '', 'runway.err.log')
const logSize = () => (existsSync(errLog()) ? statSync(errLog()).size : 0)

/** Why workers are not all online, in the words of their own log when it says. */
function workersDown(workers: Worker[], logOffset: number): string | undefined {
  const down = workers.filter((w) => w.status !== 'online')
  if (!down.length) return undefined
  const line = errorLineSince(errLog(), logOffset)
  return `${down.length} of ${workers.length} workers ${down.map((w) => `${w.id} ${w.status} (restarts ${w.restarts})`).join(', ')}${line ? `: ${line}` : ''}`
}

const real = (p: string) => {
  try {
    return realpathSync(p)
  } catch {
    return p
  }
}

async function gate(release: string, url: string, timeoutMs: number) {
  const started = Date.now()
  const want = real(release)
  // Healthy means healthy for a while: a worker that crashes right after "ready" must show up as
  // a restart inside this window instead of slipping through one lucky poll.
  const stableMs = 1500
  let since: number | undefined
  let restarts: string | undefined
  let last = 'not checked yet'
  let workers: Worker[] = []
  const firstRestarts = new Map<number, number>()
  let checked = false
  const more = () => keepChecking({ checked, elapsedMs: Date.now() - started, timeoutMs, healthySince: since })
  while (more()) {
    try {
      workers = await pm2List(release)
      // A worker that exits or restarts will not get better by waiting: stop at once, quoting it.
      for (const w of workers) if (!firstRestarts.has(w.id)) firstRestarts.set(w.id, w.restarts)
      const crashed = workers.filter((w) => ['errored', 'stopped', 'waiting restart'].includes(w.status) || w.restarts > firstRestarts.get(w.id)!)
      if (crashed.length) {
        const line = errorLineSince(errLog(), 0) || 'no error line in the log'
        return out(
          {
            ms: Date.now() - started,
            workers,
            detail: `worker ${crashed.map((w) => `${w.id} ${w.status} (restarts ${w.restarts})`).join(', ')} crashed: ${line}`,
          },
          false,
        )
      }
      // The directory each worker process really runs in: pm2 records <root>/current, which
      // resolves to the new release even for a worker that was never replaced.
      const wrong = workers.filter((w) => w.status !== 'online' || w.dir !== want)
      const r = await get(url)
      const fingerprint = workers.map((w) => `${w.id}:${w.restarts}`).join(',')
      checked = true
      if (!workers.length) last = 'no pm2 workers for the app'
      else if (wrong.length)
        last = `${wrong.length} of ${workers.length} workers not online from this release (${wrong.map((w) => `${w.id} ${w.status} in ${w.dir}`).join('; ')})`
      else if (!('status' in r) || r.status !== 200) last = `${url}: ${describe(r)}`
      else {
        if (since === undefined || fingerprint !== restarts) {
          since = Date.now()
          restarts = fingerprint
          last = `healthy, but not yet for ${stableMs} ms`
        } else if (Date.now() - since >= stableMs) {
          return out({ ms: Date.now() - started, workers, detail: `${workers.length} workers online from this release; ${url} answered 200` }, true)
        }
        await sleep(250)
        continue
      }
    } catch (err) {
      last = (err as Error).message
      checked = true
    }
    since = undefined
    await sleep(250)
  }
  out({ ms: Date.now() - started, workers, detail: `not healthy after ${timeoutMs} ms: ${last}` }, false)
}

async function probe(release: string, url: string) {
  let workers: Worker[] = []
  let pm2Error: string | undefined
  try {
    workers = await pm2List(release)
  } catch (err) {
    pm2Error = (err as Error).message
  }
  const r = url ? await get(url) : { error: 'no health URL' }
  const healthy = 'status' in r && r.status === 200
  // The real reason first: dead workers (with their own error line), no pm2, then the URL.
  const down = workersDown(workers, Math.max(0, logSize() - (256 << 10)))
  const reason = pm2Error ?? (!workers.length ? 'no pm2 workers for the app' : down) ?? (healthy ? undefined : `${url}: ${describe(r)}`)
  // The key figures per worker from the app's metrics endpoint (when METRICS_PORT is set).
  const metrics: { url?: string; workers?: WorkerFigures[]; host?: WorkerFigures | null; error?: string } = { url: metricsUrl(release) }
  if (metrics.url) {
    try {
      Object.assign(metrics, await sampleFigures(metrics.url))
    } catch (err) {
      metrics.error = (err as Error).message
    }
  }
  out({ workers, pm2Error, reason, metrics, health: { url, healthy, detail: describe(r) } }, !reason)
}

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      release: { type: 'string' },
      url: { type: 'string' },
      timeout: { type: 'string' },
      'pm2-root': { type: 'string' },
      ecosystem: { type: 'string' },
    },
  })
  const release = values.release ?? process.cwd()
  const timeout = Number(values.timeout ?? 30_000)
  switch (positionals[0]) {
    case 'verify':
      return verify(release, timeout)
    case 'gate':
      return gate(release, values.url ?? '', timeout)
    case 'probe':
      return probe(release, values.url ?? '')
    case 'roll': {
      const r = await startOrRoll({
        pm2Root: values['pm2-root'] ?? release,
        ecosystem: values.ecosystem ?? join(release, 'ecosystem.config.js'),
        readyTimeoutMs: values.timeout ? timeout : undefined,
        nodeArgs: ['--preserve-symlinks'],
      })
      return out({ detail: r.detail, action: r.action }, true)
    }
    case 'daemon': {
      // Where the running daemon's pm2 lives (deploy's prune and check --deploy keep/flag a release).
      if (!daemonRunning()) return out({ running: false, detail: 'no pm2 daemon running' }, true)
      const script = await daemonScript(values['pm2-root'] ?? pm2Root(release))
      return out({ running: true, script, detail: `the pm2 daemon runs ${script}` }, true)
    }
    default:
      throw new Error(`unknown verb ${positionals[0]}`)
  }
}

main().catch((err: unknown) => out({ detail: (err as Error).message }, false))
