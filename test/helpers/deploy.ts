// Deploy test fixtures: a target directory with a production shared/.env, a runnable `runway`
// CLI, and a stand-in artifact for the steps that never run the app (dry run, lock refusal).
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

export const ROOT = join(import.meta.dirname, '..', '..')
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
  writeFileSync(join(root, 'shared', '.env'), Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join(''))
  return root
}

/** An artifact-shaped directory that is never run: enough for dry runs and refusals. */
export function fakeArtifact(t: Test, sha = 'fake123'): string {
  const dir = mkdtempSync(join(tmpdir(), 'runway-fake-artifact-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'dist', 'deploy'), { recursive: true })
  for (const f of ['dist/server.js', 'dist/deploy/remote.js', 'package.json', 'package-lock.json', 'ecosystem.config.js']) writeFileSync(join(dir, f), '{}\n')
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
