// Deploy test fixtures: a target directory with a production shared/.env, a runnable `runway`
// CLI, and a stand-in artifact for the steps that never run the app (dry run, lock refusal).
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { buildArtifact } from '../../src/ops/deploy/artifact.js'
import { isAlive, killGroup, killOnExit, processTree } from '../../src/lib/process.js'
import { ROOT } from '../../src/lib/build.js'

export { ROOT }
export const BIN = join(ROOT, 'bin', 'runway.js')
export const STRONG_KEY = 'deploy-test-signing-key-0123456789-abcdefghijklmnop'

export interface CliResult {
  code: number | null
  out: string
  err: string
}

/** Runs `runway ARGS` as an operator would (a real process), with a bounded time. */
export function runway(args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out, err })
    })
    child.stdin.end(o.input ?? '')
  })
}

/** A fresh target root with shared/.env for production on `port`. Removed in teardown. */
export function makeTarget(t: Test, o: { port?: number; env?: Record<string, string> } = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'runway-target-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'shared'), { recursive: true })
  const env = { NODE_ENV: 'production', PORT: String(o.port ?? 3000), JWT_SIGNING_KEY: STRONG_KEY, LOG_LEVEL: 'warn', ...o.env }
  writeFileSync(
    join(root, 'shared', '.env'),
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  )
  return root
}

/** An artifact-shaped directory that is never run: enough for dry runs and refusals. */
export function fakeArtifact(t: Test, sha = 'fake123'): string {
  const dir = mkdtempSync(join(tmpdir(), 'runway-fake-artifact-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const sub of ['api', 'ops/deploy']) mkdirSync(join(dir, 'dist', sub), { recursive: true })
  for (const f of ['dist/api/server.js', 'dist/ops/deploy/remote.js', 'package.json', 'package-lock.json', 'ecosystem.config.js'])
    writeFileSync(join(dir, f), '{}\n')
  writeFileSync(join(dir, 'REVISION'), JSON.stringify({ sha, dirty: false, builtAt: new Date().toISOString(), builtBy: 'test' }))
  return dir
}

/** Every file and link under `dir`, for "nothing changed" assertions. */
export function snapshot(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = `${rel}${e.name}`
      out.push(`${p}${e.isDirectory() ? '/' : e.isSymbolicLink() ? '@' : ''}`)
      if (e.isDirectory()) walk(join(d, e.name), `${p}/`)
    }
  }
  walk(dir, '')
  return out.sort()
}

/**
 * Stops whatever pm2 a deploy started under `pm2Home`, by PID, at teardown (and if the test
 * process dies): `pm2 kill` for the graceful path, then SIGKILL to the daemon's whole tree.
 */
export function reapPm2(t: Test, pm2Home: string): void {
  const pids = () => {
    try {
      return processTree(Number(readFileSync(join(pm2Home, 'pm2.pid'), 'utf8').trim()))
    } catch {
      return []
    }
  }
  let known: number[] = []
  const forget = killOnExit(() => (known = [...new Set([...known, ...pids()])]))
  t.teardown(async () => {
    known = [...new Set([...known, ...pids()])]
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2'), 'kill'], {
        env: { ...process.env, PM2_HOME: pm2Home },
        stdio: 'ignore',
      })
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      child.on('close', () => (clearTimeout(timer), resolve()))
    })
    for (const pid of known) if (isAlive(pid)) killGroup(pid, 'SIGKILL')
    forget()
  })
}

/**
 * Artifacts for the serial deploy tests: the real one, built once from this checkout, copied
 * under different shas (release names end in the sha, so "v1" and "v2" are told apart).
 * `patch` edits a copy, e.g. to make a release that cannot start.
 */
export async function artifacts(t: Test, versions: Record<string, ((dir: string) => void) | null>): Promise<Record<string, string>> {
  const built = await buildArtifact(ROOT)
  t.teardown(() => built.remove())
  const out: Record<string, string> = {}
  for (const [sha, patch] of Object.entries(versions)) {
    const dir = mkdtempSync(join(tmpdir(), `runway-artifact-${sha}-`))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    cpSync(built.dir, dir, { recursive: true })
    writeFileSync(join(dir, 'REVISION'), JSON.stringify({ ...built.revision, sha, dirty: false }))
    patch?.(dir)
    out[sha] = dir
  }
  return out
}

/** Edits a file of an artifact, insisting that the text to replace is there. */
export function patchFile(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8')
  if (!text.includes(from)) throw new Error(`${file} does not contain ${JSON.stringify(from)}: update the test's patch`)
  writeFileSync(file, text.replace(from, to))
}

/** The worker entry of an artifact (one bundle: see scripts/bundle-worker.mjs). */
const workerEntry = (dir: string) => join(dir, 'dist', 'api', 'server.js')

/** Makes a release that cannot start: its worker entry throws before anything else runs. */
export function breakStart(dir: string): void {
  writeFileSync(workerEntry(dir), `throw new Error('broken on purpose: this release cannot start');\n${readFileSync(workerEntry(dir), 'utf8')}`)
}

/**
 * Makes a release whose pm2 workers answer /readyz 503 (`{ status: 'sick', detail }`) when `when`
 * (a JavaScript expression, evaluated at start) holds, while a lone process, as deploy's
 * pre-switch verify starts, stays healthy: only the health gate after the switch can catch it.
 * Prepended to the worker entry as a hook on node:http, so it does not depend on the bundle's text.
 */
export function sickUnderPm2(dir: string, detail: string, when = 'true'): void {
  const hook = `import __sickHttp from 'node:http';
if (process.env.NODE_APP_INSTANCE !== undefined && (${when})) {
  const emit = __sickHttp.Server.prototype.emit
  __sickHttp.Server.prototype.emit = function (event, req, res) {
    if (event !== 'request' || !req.url.startsWith('/readyz')) return emit.apply(this, arguments)
    res.writeHead(503, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ status: 'sick', detail: ${JSON.stringify(detail)} }))
    return true
  }
}
`
  writeFileSync(workerEntry(dir), hook + readFileSync(workerEntry(dir), 'utf8'))
}

/** Tests share one dependency cache (keyed by lockfile, Node version and platform), so a run does `npm ci` once per lockfile, not once per deploy. */
export const DEPS_CACHE = join(tmpdir(), 'runway-test-deps')
