// `runway drill`: for each stage (the same stacks as `runway compare`, from stages.ts) and each
// drill, brings a fresh stack up, runs steady load on it, injects the drill's fault at its fixed
// moment, records every request, stops the stack, and writes results.json, report.md and
// report.html. A fresh stack per drill: a crash must not leave the next drill a wounded one.
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { stageCopy, type StagedCopy } from '../../../lib/build.js'
import { findNginx } from '../../stacks/nginx.js'
import { obtainTokens } from '../http.js'
import { machineFacts } from '../machine.js'
import type { Progress } from '../progress.js'
import type { Machine } from '../schema.js'
import { stageDefs, stageEnv, type StageContext, type StageId } from '../stages.js'
import { benchPassword, createBenchUsers } from '../users.js'
import { analyse, kinds, type Analysis } from './analyse.js'
import { cannotRun, drillPlan, type Drill, type DrillTarget, type FaultRecord } from './drills.js'
import { runLoad, RETRY_PAUSE_MS } from './load.js'
import { renderDrillHtml, renderDrillMarkdown } from './report.js'

export interface DrillStageResult {
  stage: string
  label: string
  status: 'ok' | 'failed' | 'skipped'
  reason?: string
  url?: string
  fault?: FaultRecord
  /** What the stack did after the fault (pm2 restarted the worker, nothing listens...). */
  settled?: string
  analysis?: Analysis
  verdict?: string
}

export interface DrillResult {
  name: string
  title: string
  durationSec: number
  faultAtSec: number
  duringSec: number
  explanation: string
  stages: DrillStageResult[]
}

export interface DrillResults {
  schema: 'runway-drill/1'
  tool: 'drill'
  createdAt: string
  settings: { drills: string[]; stages: string[]; connections: number; timeoutMs: number; retryPauseMs: number; instances: number }
  machine: Machine
  drills: DrillResult[]
  warnings: string[]
}

export interface DrillOptions {
  drills: Drill[]
  /** Which stacks every drill runs on (default: each drill's own, Drill.stages). */
  stages?: StageId[]
  connections: number
  /** Per-request timeout of the load's clients. */
  timeoutMs: number
  instances?: number
  outDir: string
  progress?: Progress
  signal?: AbortSignal
  /** Told every stack's processes once it is ready (tests check they are gone afterwards). */
  onStarted?: (stage: StageId, drill: string, pids: number[], running: DrillTarget) => void
}

export async function drill(o: DrillOptions): Promise<{ results: DrillResults; dir: string }> {
  const instances = o.instances ?? availableParallelism()
  const plan = drillPlan(o.drills, o.stages)
  const allDefs = stageDefs(instances).filter((d) => d.kind === 'stage')
  const stageIds = allDefs.map((d) => d.id).filter((id) => plan.some((p) => p.stages.includes(id)))
  const nginxBin = findNginx()
  const work = mkdtempSync(join(tmpdir(), 'runway-drill-'))
  const made: StagedCopy[] = []
  const removeWork = () => {
    for (const c of made) c.remove()
    rmSync(work, { recursive: true, force: true })
  }
  process.once('exit', removeWork)
  const key = randomBytes(48).toString('base64url')
  const warnings: string[] = []
  const say = (text: string) => o.progress?.note(text)
  const results: DrillResult[] = o.drills.map((d) => ({
    name: d.name,
    title: d.title,
    durationSec: d.durationSec,
    faultAtSec: d.faultAtSec,
    duringSec: d.duringSec,
    explanation: d.explanation,
    stages: [],
  }))
  const total = plan.reduce((n, p) => n + p.stages.length, 0)
  let n = 0
  try {
    say(`runway drill: ${plan.map((p) => `${p.drill.name} on ${p.stages.join(', ')}`).join('; ')}; ${o.connections} clients, ${o.timeoutMs} ms request timeout`)
    const cred = await benchPassword()
    for (const [i, { drill: d, stages }] of plan.entries()) {
      for (const def of stages.map((id) => allDefs.find((x) => x.id === id)!)) {
        const own = d.startOn?.(def.id) ?? null
        const stageLabel = own?.label ?? def.label
        const label = `[${++n}/${total}] ${d.name} · ${stageLabel}`
        const result: DrillStageResult = { stage: def.id, label: stageLabel, status: 'ok' }
        results[i]!.stages.push(result)
        const skip =
          cannotRun(d, def.id) ??
          (def.nginx && !nginxBin ? 'nginx is not installed (apt-get install -y nginx)' : null) ??
          (o.signal?.aborted ? 'interrupted' : null)
        if (skip) {
          Object.assign(result, { status: 'skipped', reason: skip })
          say(`${label}: skipped, ${skip}`)
          continue
        }
        const dir = join(work, `${def.id}-${d.name}`)
        const dataDir = join(dir, 'data')
        mkdirSync(join(dir, 'logs'), { recursive: true })
        // A private staged copy per run: the deploy drill changes its files.
        const copy = (what: 'src' | 'dist') => stageCopy(what).then((c) => (made.push(c), c))
        const env = stageEnv(def, dataDir, key)
        const ctx: StageContext = {
          env,
          dataDir,
          logDir: join(dir, 'logs'),
          key,
          instances,
          nginxRateLimit: d.nginxRateLimit ?? false,
          dist: () => copy('dist'),
          src: () => copy('src'),
        }
        say(`${label}: starting`)
        let running: Awaited<ReturnType<typeof def.start>> | undefined
        try {
          const users = await createBenchUsers(dataDir, 8, cred)
          running = await (own?.start ?? def.start)(ctx)
          result.url = running.url
          const token = (await obtainTokens(running.url, users.usernames[0]!, users.password, running.ca)).access
          const target: DrillTarget = {
            id: def.id,
            label: stageLabel,
            running,
            token,
            users: { usernames: users.usernames, password: users.password },
            timeoutMs: o.timeoutMs,
          }
          o.onStarted?.(def.id, d.name, await running.pids(), target)
          say(`${label}: load for ${d.durationSec} s, fault at ${d.faultAtSec} s`)
          let fault: Promise<FaultRecord> | undefined
          const t0 = Date.now()
          const timer = setTimeout(() => {
            const atMs = Date.now() - t0
            fault = d.inject(target).then(
              (f) => ({ atMs, ...f }),
              (err: unknown) => ({ atMs, action: d.name, confirmed: false, detail: `the fault failed: ${(err as Error).message}` }),
            )
          }, d.faultAtSec * 1000)
          const rec = await runLoad({
            url: running.url,
            ...(running.ca ? { ca: running.ca } : {}),
            connections: o.connections,
            timeoutMs: o.timeoutMs,
            durationMs: d.durationSec * 1000,
            request: () => d.request(token),
            ...(o.signal ? { signal: o.signal } : {}),
            onSecond: (s, ok, failed) =>
              o.progress?.update({
                stage: label,
                scenario: '',
                phase: `${s < d.faultAtSec ? 'before' : 'after'} the fault, ${failed} failed/s`,
                left: d.durationSec - s,
                rps: ok,
              }),
          })
          clearTimeout(timer)
          o.progress?.clear()
          if (!fault) throw new Error('the load ended before the fault was injected')
          result.fault = await fault
          result.settled = await d.settle(target, result.fault).catch((err: unknown) => `could not tell: ${(err as Error).message}`)
          result.analysis = analyse(rec, d.durationSec * 1000, result.fault.atMs, d.duringSec * 1000)
          result.verdict = d.verdict(stageLabel, result.analysis, result.fault)
          if (!result.fault.confirmed) {
            result.status = 'failed'
            result.reason = `${result.fault.action}: ${result.fault.detail}`
          }
          say(`${label}: ${result.fault.action}: ${result.fault.detail}${result.settled ? `; ${result.settled}` : ''}`)
          say(`  ${result.verdict}`)
        } catch (err) {
          Object.assign(result, { status: 'failed', reason: (err as Error).message })
          say(`${label}: failed: ${result.reason}`)
        } finally {
          await running?.stop().catch((err: unknown) => warnings.push(`${def.label}: stop failed: ${(err as Error).message}`))
        }
      }
    }
  } finally {
    removeWork()
    process.removeListener('exit', removeWork)
  }
  for (const r of results) {
    for (const s of r.stages) {
      const a = s.analysis
      if (a && a.windows[0]!.failed > 0)
        warnings.push(
          `${r.name} ${s.stage}: ${a.windows[0]!.failed} requests failed before the fault (${kinds(a.windows[0]!.byKind)}): the stack was not healthy to begin with`,
        )
    }
  }
  const out: DrillResults = {
    schema: 'runway-drill/1',
    tool: 'drill',
    createdAt: new Date().toISOString(),
    settings: {
      drills: o.drills.map((d) => d.name),
      stages: stageIds,
      connections: o.connections,
      timeoutMs: o.timeoutMs,
      retryPauseMs: RETRY_PAUSE_MS,
      instances,
    },
    machine: await machineFacts({ nginxBin, sharedWith: `the drill's load clients ran on the same ${availableParallelism()} CPUs as the stack under test` }),
    drills: results,
    warnings,
  }
  mkdirSync(o.outDir, { recursive: true })
  writeFileSync(join(o.outDir, 'results.json'), `${JSON.stringify(out, null, 2)}\n`)
  writeFileSync(join(o.outDir, 'report.md'), renderDrillMarkdown(out))
  writeFileSync(join(o.outDir, 'report.html'), renderDrillHtml(out))
  return { results: out, dir: o.outDir }
}
