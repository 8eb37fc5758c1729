// wrk (a C program, when installed): GET scenarios only, for a duration. Much cheaper per request
// than autocannon, so on a small machine it leaves the server the cores it is being measured on.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EngineFigures, EngineRun, LoadEngine } from './engine.js'

const firstLine = (s: string) =>
  s
    .split('\n')[0]!
    .replace(/\s*Copyright.*$/, '')
    .trim()

export function wrkVersion(): string | null {
  try {
    // `wrk -v` prints its version and exits 1.
    const out = execFileSync('wrk', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return firstLine(out)
  } catch (err) {
    const out = String((err as { stdout?: unknown }).stdout ?? '')
    return /^wrk/i.test(out) ? firstLine(out) : null
  }
}

/** wrk reports through this Lua hook, as one JSON line, so nothing is scraped from its table. */
function wrkScript(headers: Record<string, string>): string {
  const lua = (s: string) => JSON.stringify(s) // JSON string escapes are valid Lua for our ASCII
  return [
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`),
    'function done(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("RUNWAY_WRK {\\"requests\\":%d,\\"duration_us\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"p50\\":%.1f,\\"p90\\":%.1f,\\"p99\\":%.1f,\\"max\\":%.1f,\\"mean\\":%.1f}\\n",',
    '    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,',
    '    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))',
    'end',
    '',
  ].join('\n')
}

interface WrkOut {
  requests: number
  duration_us: number
  connect: number
  read: number
  write: number
  status: number
  timeout: number
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

export async function runWrk(o: EngineRun): Promise<EngineFigures> {
  if (!o.scenario.get) throw new Error(`wrk runs GET scenarios only (healthz, me); ${o.scenario.name} needs autocannon`)
  if (o.amount) throw new Error('wrk runs for a duration, not a request count: drop --amount or use --engine autocannon')
  const headers: Record<string, string> = {}
  if (o.scenario.needs === 'token') headers.Authorization = `Bearer ${o.context.tokens?.[0] ?? ''}`
  const dir = mkdtempSync(join(tmpdir(), 'runway-wrk-'))
  const script = join(dir, 'report.lua')
  writeFileSync(script, wrkScript(headers))
  const threads = Math.max(1, Math.min(o.workers || 1, o.connections))
  const url = new URL(o.scenario.get, o.url).href
  const args = ['-t', String(threads), '-c', String(o.connections), '-d', `${Math.max(1, Math.round(o.durationSec))}s`, '--timeout', '10s', '-s', script, url]
  try {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    if (child.pid) o.onPid?.(child.pid)
    const onAbort = () => child.kill('SIGINT')
    o.signal?.addEventListener('abort', onAbort, { once: true })
    let out = ''
    let err = ''
    child.stdout.on('data', (c: Buffer) => (out += c))
    child.stderr.on('data', (c: Buffer) => (err += c))
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', resolve)
    })
    o.signal?.removeEventListener('abort', onAbort)
    const line = out.split('\n').find((l) => l.startsWith('RUNWAY_WRK '))
    if (!line) throw new Error(`wrk exited with ${code}: ${(err || out).trim().split('\n')[0] ?? 'no output'}`)
    const w = JSON.parse(line.slice('RUNWAY_WRK '.length)) as WrkOut
    const durationSec = w.duration_us / 1e6
    // wrk's "status" errors are responses outside 2xx/3xx; its "timeout" ones are also errors.
    const errors = w.connect + w.read + w.write + w.timeout
    const good = Math.max(0, w.requests - w.status)
    const ms = (us: number) => Math.round(us / 10) / 100
    return {
      rps: Math.round((good / durationSec) * 10) / 10,
      responses: w.requests,
      durationSec: Math.round(durationSec * 100) / 100,
      latency: { p50: ms(w.p50), p90: ms(w.p90), p99: ms(w.p99), max: ms(w.max), mean: ms(w.mean) },
      errors,
      timeouts: w.timeout,
      non2xx: w.status,
      mismatches: 0,
      statusCodes: { '2xx': good, ...(w.status ? { other: w.status } : {}) },
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const wrkEngine: LoadEngine = {
  name: 'wrk',
  version: wrkVersion,
  install: 'apt-get install -y wrk',
  canRun: (s) => s.get !== undefined,
  scope: 'GET scenarios',
  amount: false,
  inProcess: false,
  threads: (workers) => Math.max(1, workers),
  run: runWrk,
}
