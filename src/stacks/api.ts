// The two single-process ways to run the API, as startable stacks: the dev server (exactly what
// `npm run dev` runs) and one compiled production process (what each pm2 worker runs). `runway
// compare`, the deploy health gate and the runtime tests start them here, on top of
// stacks/process.ts, and stop them by PID.
import { execFile, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { freePort, startService, waitForHttp, type Service } from './process.js'

/** The checkout (or release) root: src/stacks/ and dist/stacks/ both sit two levels below it. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** `npm run dev` is `NODE_ENV=development tsx <DEV_ARGS>`; a test keeps package.json in step. */
export const DEV_ARGS = ['watch', '--clear-screen=false', 'src/server.ts'] as const

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

/** One compiled production process: `node dist/server.js`, NODE_ENV=production, JSON logs. */
export async function startProductionProcess(o: StackOptions = {}): Promise<ProcessStack> {
  const cwd = o.cwd ?? ROOT
  const script = join(cwd, 'dist', 'server.js')
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first`)
  const port = o.port ?? (await freePort())
  const url = `http://127.0.0.1:${port}`
  const service = startService({
    name: 'production process',
    command: process.execPath,
    args: [script],
    cwd,
    env: processEnv(port, 'production', o.env),
    logFile: o.logFile,
  })
  await ready(service, url, o.logFile)
  return asStack('production process', service, url)
}

function newestMtime(path: string): number {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let newest = st.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)))
  return newest
}

/** True when dist/ is missing or older than src/, package.json or the TypeScript config. */
export function buildIsStale(root = ROOT): boolean {
  const built = join(root, 'dist', 'server.js')
  if (!existsSync(built)) return true
  const inputs = ['src', 'package.json', 'tsconfig.json', 'tsconfig.build.json'].map((p) => join(root, p)).filter((p) => existsSync(p))
  return Math.max(...inputs.map(newestMtime)) > statSync(built).mtimeMs
}

const BUILD_LOCK = join(tmpdir(), 'runway-build.lock')
const run = promisify(execFile)

/** Runs `fn` holding an flock(1) lock on `file` (released when fn settles or this process dies). */
export async function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const holder = spawn('flock', [file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<void>((r) => holder.once('close', () => r()))
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once('data', () => resolve())
    holder.once('error', (err) => reject(new Error(`flock ${file}: ${err.message} (is util-linux installed?)`)))
    void exited.then(() => reject(new Error(`flock ${file} exited before taking the lock`)))
  })
  try {
    return await fn()
  } finally {
    holder.stdin.end()
    await exited
  }
}

/** What `npm run build` does, into another directory: tsc, dist/package.json (ESM), typebox vendored. */
async function compileInto(root: string, outDir: string): Promise<void> {
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
  try {
    await run(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', outDir], { cwd: root, timeout: 180_000, maxBuffer: 16 << 20 })
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    const why = (e.stdout || e.stderr || e.message).trim().split('\n').slice(0, 3).join(' | ')
    throw new Error(`compiling ${root}/src failed: ${why}`)
  }
  cpSync(join(root, 'src', 'package.json'), join(outDir, 'package.json'))
  // typebox compiled in, exactly as `npm run build` does it.
  const { vendorTypebox } = (await import(pathToFileURL(join(root, 'scripts', 'vendor-typebox.mjs')).href)) as { vendorTypebox(root: string, distDir: string): Promise<void> }
  await vendorTypebox(root, outDir)
}

export interface StagedCopy {
  dir: string
  remove(): void
}

/**
 * A private copy of the app in a temp dir, for tests and benchmarks: `src` (+ tsconfig.json) for
 * the dev server, or `dist` for production (compiled into the copy when the checkout's is stale),
 * with package.json, ecosystem.config.js and a link to node_modules. A rebuild or an edit in the
 * checkout cannot change it under a running stack, edits to it (the dev server's watch test)
 * cannot touch the checkout, and the checkout's .env is not read.
 */
export async function stageCopy(what: 'src' | 'dist', root = ROOT): Promise<StagedCopy> {
  const dir = mkdtempSync(join(tmpdir(), `runway-${what}-`))
  const remove = () => rmSync(dir, { recursive: true, force: true })
  try {
    const copy = (p: string) => cpSync(join(root, p), join(dir, p), { recursive: true })
    // First: bundling a private compile resolves packages (typebox) from the copy's node_modules.
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
    if (what === 'dist') {
      // A fresh dist/ is copied (under the build lock, so no build swaps it mid-copy); a stale one
      // is left alone and the copy compiled privately, so a test never deletes the dist/ that
      // someone else's process is running from.
      const copied = await withFileLock(BUILD_LOCK, async () => {
        if (buildIsStale(root)) return false
        copy('dist')
        return true
      })
      if (!copied) await compileInto(root, join(dir, 'dist'))
    } else {
      copy('src')
      copy('tsconfig.json')
    }
    copy('package.json')
    copy('ecosystem.config.js')
  } catch (err) {
    remove()
    throw err
  }
  return { dir, remove }
}
