// One way to start a stack: spawn a process in its own process group, wait until it answers,
// stop it by PID (the whole group) even when the caller fails. Tests, `runway compare`, the deploy
// health gate and the reload tests all use these, never their own copies.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { createServer } from 'node:net'
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs'

/** A free TCP port on 127.0.0.1 (bind port 0, read it, release it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface Service {
  name: string
  pid: number
  child: ChildProcess
  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves when the leader exited. */
  stop(graceMs?: number): Promise<void>
  exited: Promise<number | null>
}

const live = new Set<Service>()
const outsiders = new Set<() => number[]>()
let hooked = false
/** Whatever happens to this process, leave nothing behind. */
function reapOnExit() {
  if (hooked) return
  hooked = true
  const killAll = () => {
    for (const s of live) killGroup(s.pid, 'SIGKILL')
    for (const pids of outsiders) for (const pid of pids()) killGroup(pid, 'SIGKILL')
  }
  process.once('exit', killAll)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll()
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1))
    })
  }
}

/**
 * Also SIGKILL these processes when this process exits, like services: for daemons that are not
 * our children (pm2's God daemon detaches itself). `pids` is called at exit, synchronously.
 * Returns a function that forgets them again.
 */
export function killOnExit(pids: () => number[]): () => void {
  reapOnExit()
  outsiders.add(pids)
  return () => outsiders.delete(pids)
}

export function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal)
    return true
  } catch {
    try {
      process.kill(pid, signal)
      return true
    } catch {
      return false
    }
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export interface StartOptions {
  name: string
  command: string
  args: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Append stdout and stderr to this file; otherwise they are discarded (or inherited with `inherit`). */
  logFile?: string
  inherit?: boolean
}

export function startService(o: StartOptions): Service {
  reapOnExit()
  let stdio: SpawnOptions['stdio'] = 'ignore'
  let fd: number | undefined
  if (o.logFile) {
    fd = openSync(o.logFile, 'a')
    stdio = ['ignore', fd, fd]
  } else if (o.inherit) stdio = ['ignore', 'inherit', 'inherit']
  // detached: its own process group, so stop() also reaches grandchildren (tsx, npm, nginx workers).
  const child = spawn(o.command, o.args, { cwd: o.cwd, env: o.env ?? process.env, stdio, detached: true })
  if (fd !== undefined) closeSync(fd)
  if (child.pid === undefined) throw new Error(`${o.name}: could not start ${o.command}`)
  const pid = child.pid
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    child.once('exit', (code) => resolve(code))
    child.once('error', () => resolve(null))
  })
  const service: Service = {
    name: o.name,
    pid,
    child,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(pid, 'SIGTERM')
        const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
      // Grandchildren that outlived the leader.
      killGroup(pid, 'SIGKILL')
      live.delete(service)
    },
  }
  live.add(service)
  void exited.then(() => {
    if (!isAlive(pid)) live.delete(service)
  })
  return service
}

export interface WaitOptions {
  timeoutMs?: number
  /** Fail fast when this process exits before it is ready. */
  service?: Service
  /** Extra fetch options (e.g. a custom dispatcher for a private CA). */
  accept?: (status: number) => boolean
}

/** Polls `url` until it answers with an accepted status (2xx by default). */
export async function waitForHttp(url: string, o: WaitOptions = {}): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 30_000)
  const accept = o.accept ?? ((s) => s >= 200 && s < 300)
  let last = 'no answer'
  let exited = false
  void o.service?.exited.then(() => (exited = true))
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${o.service!.name} exited before ${url} answered`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      if (accept(res.status)) return
      last = `HTTP ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} not ready after ${o.timeoutMs ?? 30_000} ms (${last})`)
}

/** A process and all its descendants, from /proc (Linux). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    try {
      // The command name may contain spaces and parentheses; the ppid follows the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = children.get(ppid) ?? []
      list.push(Number(entry))
      children.set(ppid, list)
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = []
  const walk = (p: number) => {
    out.push(p)
    for (const c of children.get(p) ?? []) walk(c)
  }
  if (existsSync(`/proc/${pid}`)) walk(pid)
  return out
}
