// The two load generators. autocannon (programmatic API, in this process or its worker threads)
// runs every scenario; wrk (a C program, when installed) runs the GET scenarios as a cross-check,
// because autocannon reads higher than wrk against Node servers and miscounts against servers
// that close connections. Both return the same figures; CPU is sampled around them by the caller.
import autocannon from 'autocannon'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { RunFigures } from './schema.js'
import { scenarioModule, SCENARIOS_FILE, VERIFY_BODY_FILE, type Scenario, type ScenarioContext } from './scenarios.js'

export type EngineName = 'autocannon' | 'wrk'

export interface EngineRun {
  url: string
  scenario: Scenario
  context: ScenarioContext
  connections: number
  durationSec: number
  /** Stop after this many requests instead of after durationSec (autocannon only). */
  amount?: number
  /** autocannon worker threads / wrk threads; 0 = autocannon in this thread, wrk with 1. */
  workers: number
  /** PEM of a private CA (both engines skip verification; kept for the engines that may not). */
  ca?: string
  /** Called about once a second with the responses of the last second. */
  onTick?: (responsesPerSec: number) => void
  signal?: AbortSignal
  /** Told the wrk pid once it runs, so the sampler can watch it. */
  onPid?: (pid: number) => void
}

export type EngineFigures = Omit<RunFigures, 'serverCpu' | 'serverRssMb' | 'loadgenCpu' | 'otherCpu'>

export function autocannonVersion(): string {
  return (createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version
}

const firstLine = (s: string) => s.split('\n')[0]!.replace(/\s*Copyright.*$/, '').trim()

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

interface AutocannonResult {
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  mismatches: number
  statusCodeStats: Record<string, { count: number }>
  latency: { p50: number; p90: number; p99: number; max: number; average: number }
}

export async function runAutocannon(o: EngineRun): Promise<EngineFigures> {
  const inWorkers = o.workers > 0
  const opts: Record<string, unknown> = {
    url: o.url,
    connections: o.connections,
    duration: o.durationSec,
    ...(o.amount ? { amount: o.amount } : {}),
    timeout: 10,
    // Latency of successful responses only: a fast 401 must not improve p50.
    excludeErrorStats: true,
    initialContext: o.context,
    // Worker threads take hooks as file paths; in this thread, functions.
    setupClient: inWorkers ? SCENARIOS_FILE : scenarioModule.setupClient,
    verifyBody: inWorkers ? VERIFY_BODY_FILE : scenarioModule.verifyBody,
    ...(inWorkers ? { workers: o.workers } : {}),
    ...(o.ca ? { tlsOptions: { ca: o.ca } } : {}),
  }
  let instance: autocannon.Instance | undefined
  const onAbort = () => instance?.stop()
  try {
    const r = await new Promise<AutocannonResult>((resolve, reject) => {
      instance = autocannon(opts as unknown as autocannon.Options, (err, result) => (err ? reject(err) : resolve(result as unknown as AutocannonResult)))
      instance.on('tick', ((t: { counter: number }) => o.onTick?.(t.counter)) as () => void)
      o.signal?.addEventListener('abort', onAbort, { once: true })
    })
    const statusCodes: Record<string, number> = {}
    let ok = 0
    for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {})) {
      statusCodes[code] = Number(count)
      if (code.startsWith('2')) ok += Number(count)
    }
    const responses = Object.values(statusCodes).reduce((a, b) => a + b, 0)
    const good = Math.max(0, ok - r.mismatches)
    const duration = r.duration || o.durationSec
    return {
      rps: Math.round((good / duration) * 10) / 10,
      responses,
      durationSec: duration,
      latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: Math.round(r.latency.average * 100) / 100 },
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      mismatches: r.mismatches,
      statusCodes,
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort)
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
