// Starting and reloading the pm2 cluster without ever trading a serving worker for a dead one.
//
// `pm2 reload` replaces each old worker once its successor sends 'ready' OR once listen_timeout
// passes, whichever comes first: a successor that exits on a bad setting still gets its
// predecessor stopped, and a bad .env becomes a full outage. So runway never calls it. Instead,
// one worker at a time:
//
//   duplicate the worker (a new process, same pm2 settings, code and .env read afresh from the
//   app's directory) → wait for THAT process's 'ready' message on pm2's bus → only then delete the
//   old one (gracefully: SIGINT, drain, kill_timeout).
//
// A successor that exits, restarts or stays silent past the timeout is deleted instead, the old
// workers keep serving, and the caller gets the worker's own error line from its log.
//
// Runs where the pm2 daemon runs (the checkout for `npm start`, the target for deploys), with the
// pm2 module the daemon was started from.
import { execFile } from 'node:child_process'
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

export class Pm2ControlError extends Error {}

interface AppConf {
  name: string
  instances?: number | string
  listen_timeout?: number
  error_file?: string
}

interface ProcEntry {
  pm_id: number
  pid: number
  name: string
  pm2_env: { status: string; restart_time: number; pm_err_log_path?: string; NODE_APP_INSTANCE?: number }
}

interface Bus {
  on(event: string, fn: (packet: { raw?: unknown; process?: { pm_id?: number; name?: string } }) => void): void
  close?: () => void
}

interface Pm2Api {
  connect(cb: (err: Error | null) => void): void
  disconnect(): void
  list(cb: (err: Error | null, list: ProcEntry[]) => void): void
  launchBus(cb: (err: Error | null, bus: Bus) => void): void
  delete(id: number | string, cb: (err: Error | null) => void): void
  Client: { executeRemote<T>(method: string, arg: unknown, cb: (err: Error | null, res: T) => void): void }
}

export interface RollOptions {
  /** A directory with node_modules/pm2: the pm2 the daemon runs (or is started) from. */
  pm2Root: string
  /** The ecosystem file, as pm2 should record it (e.g. <root>/current/ecosystem.config.js). */
  ecosystem: string
  /** How long one new worker gets to send 'ready'; default: the app's listen_timeout. */
  readyTimeoutMs?: number
  /** Extra node options for the `pm2 start` call (deploys pass --preserve-symlinks). */
  nodeArgs?: string[]
  progress?: (line: string) => void
}

export interface RollResult {
  action: 'started' | 'reloaded'
  workers: number
  detail: string
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The app as the ecosystem file declares it (in this process's environment). */
export function loadEcosystem(file: string): AppConf & { instances: number } {
  let conf: { apps?: AppConf[] }
  try {
    conf = createRequire(file)(file) as { apps?: AppConf[] }
  } catch (err) {
    throw new Pm2ControlError(`${file}: ${(err as Error).message.split('\n')[0]}`)
  }
  const app = conf.apps?.[0]
  if (!app?.name) throw new Pm2ControlError(`${file} declares no app`)
  const instances = Number(app.instances ?? 1)
  if (!Number.isInteger(instances) || instances < 1)
    throw new Pm2ControlError(`${file}: instances must be a whole number (got ${JSON.stringify(app.instances)})`)
  return { ...app, instances }
}

/** What a worker wrote to its error log after `offset`: the line that says why (not stack frames). */
export function errorLineSince(file: string | undefined, offset: number): string {
  if (!file || !existsSync(file)) return ''
  const size = statSync(file).size
  if (size <= offset) return ''
  const length = Math.min(size - offset, 64 << 10)
  const buf = Buffer.alloc(length)
  const fd = openSync(file, 'r')
  try {
    readSync(fd, buf, 0, length, size - length)
  } finally {
    closeSync(fd)
  }
  const lines = buf
    .toString('utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^at /.test(l))
  // The runway line ("runway: configuration error: ...") or a Node error line, else the last one.
  return lines.find((l) => /^runway[\w ]*:/.test(l)) ?? lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.pop() ?? ''
}

const sizeOf = (file: string | undefined) => (file && existsSync(file) ? statSync(file).size : 0)

export class Pm2Control {
  private readonly api: Pm2Api
  private bus: Bus | undefined
  /** pm_id → time its process said 'ready' (reset when a new process takes the id). */
  private readonly ready = new Map<number, number>()

  constructor(private readonly o: RollOptions) {
    const pkg = join(o.pm2Root, 'node_modules', 'pm2')
    if (!existsSync(join(pkg, 'package.json'))) throw new Pm2ControlError(`${pkg} is missing: install dependencies first (npm ci)`)
    this.api = createRequire(join(o.pm2Root, 'package.json'))('pm2') as Pm2Api
  }

  private call<T>(fn: (cb: (err: Error | null, v: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => fn((err, v) => (err ? reject(new Pm2ControlError(String((err as Error).message ?? err))) : resolve(v))))
  }

  async connect(): Promise<void> {
    await this.call<void>((cb) => this.api.connect((err) => cb(err, undefined)))
    this.bus = await this.call<Bus>((cb) => this.api.launchBus(cb))
    this.bus.on('process:msg', (p) => {
      if (p.raw === 'ready' && typeof p.process?.pm_id === 'number') this.ready.set(p.process.pm_id, Date.now())
    })
  }

  disconnect(): void {
    try {
      this.bus?.close?.()
    } catch {}
    this.api.disconnect()
  }

  async workers(name: string): Promise<ProcEntry[]> {
    const list = await this.call<ProcEntry[]>((cb) => this.api.list(cb))
    return list.filter((p) => p.name === name).sort((a, b) => a.pm_id - b.pm_id)
  }

  /**
   * Waits for each of `ids` to say 'ready'. Fails at once when one exits, is restarted or stops
   * (stop_exit_codes), quoting its error line; fails after the timeout when one stays silent.
   */
  private async awaitReady(name: string, ids: number[], errLog: string | undefined, logOffset: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const first = new Map<number, { pid: number; restarts: number }>()
    while (true) {
      const procs = (await this.workers(name)).filter((p) => ids.includes(p.pm_id))
      for (const p of procs) if (!first.has(p.pm_id) && p.pid > 0) first.set(p.pm_id, { pid: p.pid, restarts: p.pm2_env.restart_time })
      const dead = procs.find((p) => {
        const f = first.get(p.pm_id)
        return (
          ['errored', 'stopped', 'stopping', 'waiting restart'].includes(p.pm2_env.status) ||
          (f && (p.pm2_env.restart_time > f.restarts || (p.pid > 0 && p.pid !== f.pid)))
        )
      })
      const missing = ids.filter((id) => !procs.some((p) => p.pm_id === id))
      if (dead || missing.length) {
        const why = errorLineSince(errLog, logOffset) || `status ${dead?.pm2_env.status ?? 'gone'}`
        throw new Pm2ControlError(`worker ${dead?.pm_id ?? missing[0]} exited before it was ready: ${why}`)
      }
      if (ids.every((id) => this.ready.has(id))) return
      if (Date.now() > deadline) {
        const silent = ids.filter((id) => !this.ready.has(id))
        const why = errorLineSince(errLog, logOffset)
        throw new Pm2ControlError(`worker ${silent.join(', ')} did not send 'ready' within ${timeoutMs} ms${why ? `: ${why}` : ''}`)
      }
      await sleep(150)
    }
  }

  private async startApp(app: AppConf & { instances: number }, timeoutMs: number): Promise<RollResult> {
    const errLog = app.error_file
    const offset = sizeOf(errLog)
    const bin = join(this.o.pm2Root, 'node_modules', 'pm2', 'bin', 'pm2')
    // The CLI (not the API) for the first start: it is what reads --env production from the file.
    const start = new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [...(this.o.nodeArgs ?? []), bin, 'start', this.o.ecosystem, '--env', 'production'],
        { timeout: timeoutMs + 30_000, maxBuffer: 16 << 20 },
        (err, stdout, stderr) =>
          err ? reject(new Pm2ControlError(`pm2 start failed: ${(stderr || stdout || err.message).trim().split('\n').pop()}`)) : resolve(),
      ),
    )
    let settled: Error | null | undefined
    start.then(
      () => (settled = null),
      (err: Error) => (settled = err),
    )
    // The ids exist as soon as pm2 registered the processes, before `pm2 start` returns.
    let ids: number[] = []
    const deadline = Date.now() + timeoutMs + 30_000
    while (true) {
      ids = (await this.workers(app.name)).map((p) => p.pm_id)
      if (ids.length >= app.instances) break
      if (settled) throw settled
      if (settled === null && !ids.length) throw new Pm2ControlError(`pm2 start ${this.o.ecosystem} started no worker`)
      if (settled === null || Date.now() > deadline) break
      await sleep(100)
    }
    try {
      await this.awaitReady(app.name, ids, errLog, offset, timeoutMs)
    } catch (err) {
      // Nothing served before, and these never became ready: leave no crash loop behind (pm2 may
      // have a restart pending for a worker that just crashed: delete until none is left).
      // `pm2 start` is still launching (it waits for the workers itself): let it finish first.
      await start.catch(() => {})
      await this.deleteAll(app.name)
      throw err
    }
    await start.catch(() => {})
    return { action: 'started', workers: ids.length, detail: `${ids.length} workers started and ready` }
  }

  /**
   * Deletes every process of the app, until none has come back for a second. A process that is
   * still 'launching' is left until it settles: pm2 restarts one stopped in that state.
   */
  private async deleteAll(name: string): Promise<void> {
    let quiet = 0
    for (let i = 0; i < 120 && quiet < 4; i++) {
      const procs = await this.workers(name)
      quiet = procs.length ? 0 : quiet + 1
      for (const p of procs.filter((x) => x.pm2_env.status !== 'launching')) await this.deleteId(p.pm_id).catch(() => {})
      await sleep(250)
    }
  }

  private deleteId(id: number): Promise<void> {
    return this.call<void>((cb) => this.api.delete(id, (e) => cb(e, undefined)))
  }

  /** Starts a new copy of worker `fromId` and waits for it; returns its id, or deletes it and throws. */
  private async addWorker(name: string, fromId: number, errLog: string | undefined, timeoutMs: number): Promise<number> {
    const offset = sizeOf(errLog)
    const created = await this.call<{ pm2_env: { pm_id: number } }>((cb) => this.api.Client.executeRemote('duplicateProcessId', fromId, cb))
    const id = created.pm2_env.pm_id
    try {
      await this.awaitReady(name, [id], errLog, offset, timeoutMs)
      return id
    } catch (err) {
      await this.deleteId(id).catch(() => {})
      throw err
    }
  }

  /**
   * Starts the app when pm2 does not run it; otherwise replaces every worker, one at a time,
   * only after its successor is ready, then adds or removes workers to match the ecosystem's
   * instance count. On failure the workers not yet replaced are still serving.
   */
  async startOrRoll(): Promise<RollResult> {
    const app = loadEcosystem(this.o.ecosystem)
    const timeoutMs = this.o.readyTimeoutMs ?? app.listen_timeout ?? 15_000
    const old = await this.workers(app.name)
    if (!old.length) return this.startApp(app, timeoutMs)
    const errLog = old[0]!.pm2_env.pm_err_log_path ?? app.error_file
    let replaced = 0
    for (const w of old) {
      const id = await this.addWorker(app.name, w.pm_id, errLog, timeoutMs).catch((err: Error) => {
        throw new Pm2ControlError(`${err.message} (${replaced} of ${old.length} workers replaced; the others keep serving)`)
      })
      this.o.progress?.(`worker ${id} ready, stopping worker ${w.pm_id}`)
      await this.deleteId(w.pm_id)
      replaced++
    }
    let now = await this.workers(app.name)
    while (now.length && now.length < app.instances) {
      await this.addWorker(app.name, now[0]!.pm_id, errLog, timeoutMs)
      now = await this.workers(app.name)
    }
    for (const extra of now.slice(app.instances)) await this.deleteId(extra.pm_id)
    return {
      action: 'reloaded',
      workers: app.instances,
      detail: `${replaced} workers replaced one at a time, each after its successor was ready${app.instances !== old.length ? `; now ${app.instances} workers (was ${old.length})` : ''}`,
    }
  }
}

/**
 * The script the running pm2 daemon was started as (its argv[1], .../pm2/lib/Daemon.js): the
 * pm2 it spawns every worker through. Its process title hides this from /proc, so ask it. Only
 * call this when a daemon runs (connecting would otherwise start one).
 */
export async function daemonScript(pm2Root: string): Promise<string> {
  const control = new Pm2Control({ pm2Root, ecosystem: '' })
  const api = (control as unknown as { api: Pm2Api }).api
  await new Promise<void>((resolve, reject) => api.connect((err) => (err ? reject(err) : resolve())))
  try {
    const report = await new Promise<{ argv?: string[] }>((resolve, reject) =>
      api.Client.executeRemote<{ argv?: string[] }>('getReport', {}, (err, r) => (err ? reject(err) : resolve(r))),
    )
    return report.argv?.[1] ?? ''
  } finally {
    api.disconnect()
  }
}

/** Connects, starts or rolls, disconnects. */
export async function startOrRoll(o: RollOptions): Promise<RollResult> {
  const control = new Pm2Control(o)
  await control.connect()
  try {
    return await control.startOrRoll()
  } finally {
    control.disconnect()
  }
}
