// `runway compare`: brings up each stack on this machine in turn — dev server, one production
// process, the pm2 cluster, nginx → cluster over HTTP and over TLS, and with --ceiling their bare
// twins — waits until it is ready, measures the scenarios, stops it, and writes results.json,
// report.md and report.html. Every stack is stopped in a finally; the stacks' own reapers kill
// what is left if this process is interrupted. The stages themselves are defined in stages.ts.
import { randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { PostgresStore } from '../../api/store/postgres.js'
import type { Store } from '../../api/store/store.js'
import { stageCopy, type StagedCopy } from '../../lib/build.js'
import { findNginx } from '../stacks/nginx.js'
import { describeEngine, ENGINES, type EngineName } from './engines.js'
import { obtainTokens } from './http.js'
import { machineFacts } from './machine.js'
import { measureInterleaved, type MeasureSettings } from './measure.js'
import type { Progress } from './progress.js'
import { buildResults, writeResults } from './results.js'
import type { ResultRow, Results, Stage, Target } from './schema.js'
import { scenario as scenarioByName, type ScenarioContext, type ScenarioName } from './scenarios.js'
import { benchPassword, createBenchUsers, type BenchUsers } from './users.js'
import { mintAccessToken } from './hs256.js'
import { errorRate, failureBreakdown, failures, fmtInt, OTHER_CPU_LIMIT } from './stats.js'
import { DEFAULT_STAGE_IDS, postgresSchema, stageDefs, stageEnv, type Running, type StageContext, type StageDef, type StageId } from './stages.js'

export { DEFAULT_STAGE_IDS, STAGE_IDS, type StageId } from './stages.js'
/** What each row's "of twin" divides by: a stage's ceiling twin; the TLS twin's, a minimal proxy. */
const TWIN_OF: Record<string, StageId> = { single: 'bare-single', cluster: 'bare-cluster', nginx: 'bare-nginx', tls: 'bare-tls', 'bare-tls': 'proxy-tls' }

export interface CompareOptions {
  scenarios: ScenarioName[]
  settings: MeasureSettings
  engine: EngineName
  ceiling: boolean
  /** Which stages to run (twins follow their stage). Default: DEFAULT_STAGE_IDS, plus single-pg with databaseUrl. */
  stages?: StageId[]
  /** PostgreSQL server for the single-pg stage: a fresh schema in it, dropped afterwards. */
  databaseUrl?: string
  /** pm2 and node:cluster workers; default one per CPU. */
  instances?: number
  /** How many users the login-based scenarios spread over. */
  users: number
  /** Where results.json and the reports go (created). */
  outDir: string
  progress?: Progress
  signal?: AbortSignal
  /** Told every stack's processes once it is ready (tests check they are gone afterwards). */
  onStarted?: (stage: StageId, pids: number[], url: string) => void
}

/** A stack of a compare run: its definition, its row in the results and, once up, the running stack. */
interface Member {
  def: StageDef
  stage: Stage
  label: string
  running?: Running
  users?: BenchUsers
}

/** The stacks to bring up together: each stage with its twin (when measured), in stage order. */
function withTwins(defs: StageDef[]): StageDef[][] {
  return defs.filter((d) => d.kind === 'stage').map((s) => [s, ...defs.filter((d) => d.kind === 'twin' && d.twinOf === s.id)])
}

/** The context each connection of a scenario starts from: tokens, or the users and password. */
async function scenarioContext(name: ScenarioName, run: Running, users: BenchUsers, key: string, connections: number): Promise<ScenarioContext> {
  const s = scenarioByName(name)
  if (s.needs === 'nothing') return { scenario: name }
  if (s.needs === 'credentials') return { scenario: name, users: users.usernames, password: users.password }
  const n = Math.max(1, Math.min(users.ids.length, connections))
  const tokens: string[] = []
  for (let i = 0; i < n; i++) {
    tokens.push(run.mint ? mintAccessToken(users.ids[i]!, key) : (await obtainTokens(run.url, users.usernames[i]!, users.password, run.ca)).access)
  }
  return { scenario: name, tokens }
}

export interface CompareOutcome {
  results: Results
  dir: string
}

export async function compare(o: CompareOptions): Promise<CompareOutcome> {
  const instances = o.instances ?? availableParallelism()
  const wanted = new Set<StageId>(o.stages ?? [...DEFAULT_STAGE_IDS, ...(o.databaseUrl ? (['single-pg'] as const) : [])])
  const defs = stageDefs(instances).filter((d) => (d.kind === 'stage' ? wanted.has(d.id) : o.ceiling && d.twinOf !== undefined && wanted.has(d.twinOf)))
  const nginxBin = findNginx()
  const work = mkdtempSync(join(tmpdir(), 'runway-compare-'))
  // Ctrl-C: the stacks' reapers kill every process and exit; this removes the data dirs and logs.
  const made: StagedCopy[] = []
  const removeWork = () => {
    for (const c of made) c.remove()
    rmSync(work, { recursive: true, force: true })
  }
  process.once('exit', removeWork)
  const key = randomBytes(48).toString('base64url') // a fresh strong key per run: production refuses weak ones
  const stages: Stage[] = []
  const rows: ResultRow[] = []
  const warnings: string[] = []
  const copies: Partial<Record<'src' | 'dist', Promise<StagedCopy>>> = {}
  const cleanups: (() => Promise<void>)[] = []
  const say = (text: string) => (o.progress ? o.progress.note(text) : undefined)
  try {
    say(
      `runway compare: ${defs.length} stacks × ${o.scenarios.length} scenarios, ${o.settings.connections} connections, ${o.settings.durationSec} s × ${o.settings.runs} runs after ${o.settings.warmupSec} s warm-up (${o.engine})`,
    )
    const cred = await benchPassword()
    const fail = (member: Member, err: unknown) => {
      member.stage.status = 'failed'
      member.stage.reason = (err as Error).message
      say(`${member.label}: failed: ${member.stage.reason}`)
    }
    /** Starts one stack; a skipped or failed start is recorded on its stage, and leaves `running` unset. */
    const bringUp = async (def: StageDef, label: string): Promise<Member> => {
      const stage: Stage = {
        id: def.id,
        label: def.label,
        kind: def.kind,
        ...(def.twinOf ? { twinOf: def.twinOf } : {}),
        status: 'ok',
        explanation: def.explanation,
      }
      stages.push(stage)
      const member: Member = { def, stage, label }
      if (def.nginx && !nginxBin) {
        stage.status = 'skipped'
        stage.reason = 'nginx is not installed (apt-get install -y nginx)'
        say(`${label}: skipped, ${stage.reason}`)
        return member
      }
      if (def.postgres && !o.databaseUrl) {
        stage.status = 'skipped'
        stage.reason = 'no PostgreSQL: pass --database-url postgres://… (or set DATABASE_URL)'
        say(`${label}: skipped, ${stage.reason}`)
        return member
      }
      if (o.signal?.aborted) {
        stage.status = 'skipped'
        stage.reason = 'interrupted'
        return member
      }
      const dataDir = join(work, def.id, 'data')
      const logDir = join(work, def.id, 'logs')
      mkdirSync(logDir, { recursive: true })
      const ctx: StageContext = {
        dataDir,
        logDir,
        key,
        instances,
        env: stageEnv(def, dataDir, key),
        dist: () => (copies.dist ??= stageCopy('dist').then((c) => (made.push(c), c))),
        src: () => (copies.src ??= stageCopy('src').then((c) => (made.push(c), c))),
      }
      say(`${label}: starting`)
      try {
        let store: string | Store = dataDir
        if (def.postgres) {
          const pgStage = await postgresSchema(o.databaseUrl!)
          cleanups.push(pgStage.drop)
          ctx.env.DATABASE_URL = pgStage.url
          store = new PostgresStore(pgStage.url)
        }
        member.users = await createBenchUsers(store, o.users, cred)
        if (def.runs) {
          if (!copies[def.runs]) say(`${label}: staging ${def.runs}/${def.runs === 'dist' ? ' (compiled first when stale; not start-up time)' : ''}`)
          await ctx[def.runs]()
        }
        const t0 = Date.now()
        member.running = await def.start(ctx)
        stage.startupMs = Date.now() - t0
        stage.url = member.running.url
        const pids = await member.running.pids()
        stage.processes = pids.length
        o.onStarted?.(def.id, pids, member.running.url)
        say(`${label}: ready at ${member.running.url} in ${stage.startupMs} ms`)
      } catch (err) {
        fail(member, err)
      }
      return member
    }

    // With --ceiling each stage and its twin are up together and measured in alternating runs.
    let started = 0
    for (const group of withTwins(defs)) {
      const members: Member[] = []
      try {
        for (const def of group) members.push(await bringUp(def, `[${++started}/${defs.length}] ${def.label}`))
        for (const name of o.scenarios) {
          const s = scenarioByName(name)
          const jobs: { member: Member; context: ScenarioContext }[] = []
          for (const member of members) {
            const { running, users } = member
            if (!running || !users || member.stage.status !== 'ok') continue
            if (member.def.kind === 'twin' && !s.twin) {
              rows.push({
                stage: member.def.id,
                scenario: name,
                engine: 'autocannon',
                status: 'skipped',
                reason: 'the ceiling twin serves healthz, me and verify only',
                runs: [],
                loadgenSaturated: false,
              })
              continue
            }
            try {
              jobs.push({ member, context: await scenarioContext(name, running, users, key, o.settings.connections) })
            } catch (err) {
              fail(member, err)
            }
          }
          if (!jobs.length) continue
          const measured = await measureInterleaved(
            jobs.map(({ member, context }) => ({
              target: {
                stage: member.def.id,
                label: member.label,
                url: member.running!.url,
                ...(member.running!.ca ? { ca: member.running!.ca } : {}),
                pids: member.running!.pids,
              },
              context,
            })),
            s,
            o.settings,
            o.engine,
            { ...(o.progress ? { progress: o.progress } : {}), ...(o.signal ? { signal: o.signal } : {}) },
          )
          for (const [i, row] of measured.entries()) {
            rows.push(row)
            const { label } = jobs[i]!.member
            if (row.status !== 'ok') say(`${label}: ${name} failed: ${row.reason}`)
            else if (row.summary) say(`${label}: ${name} ${fmtInt(row.summary.rps)} req/s, p99 ${row.summary.latency.p99} ms, ${failures(row.summary)} failed`)
          }
        }
      } finally {
        for (const m of [...members].reverse()) {
          await m.running?.stop().catch((err: unknown) => warnings.push(`${m.def.label}: stop failed: ${(err as Error).message}`))
        }
        // The work directory goes at the end: a stack that answered with failures keeps its logs, so
        // the cause (a shed login, a store fault, a crash) can be read after the run.
        for (const m of members) {
          if (!rows.some((r) => r.stage === m.def.id && r.summary && failures(r.summary) > 0)) continue
          const kept = join(o.outDir, 'logs', m.def.id)
          try {
            cpSync(join(work, m.def.id, 'logs'), kept, { recursive: true })
            warnings.push(`${m.def.id}: answered with failures; its logs are kept in ${kept}`)
          } catch (err) {
            warnings.push(`${m.def.id}: answered with failures; its logs could not be kept: ${(err as Error).message}`)
          }
        }
      }
    }
  } finally {
    await Promise.allSettled(Object.values(copies))
    for (const c of cleanups) await c().catch((err: unknown) => warnings.push(`cleanup failed: ${(err as Error).message}`))
    removeWork()
    process.removeListener('exit', removeWork)
  }

  const results = buildResults({
    tool: 'compare',
    engine: o.engine,
    scenarios: o.scenarios,
    settings: o.settings,
    ceiling: o.ceiling,
    machine: await machineFacts({
      nginxBin,
      sharedWith: `the load generator (${describeEngine(o.engine)}${o.settings.workers ? `, ${o.settings.workers} threads` : ', one thread'}) ran on the same ${availableParallelism()} CPUs as the server under test; each row's otherCpu says what else used them`,
    }),
    stages,
    rows,
    warnings,
  })
  annotate(results)
  writeResults(o.outDir, results)
  return { results, dir: o.outDir }
}

const PRODUCTION: readonly StageId[] = ['single', 'cluster', 'nginx', 'tls']

/**
 * Why a row's req/s is the machine's limit rather than the stack's, or undefined. A load
 * generator that used all the cores it can use was the bottleneck (and on a small machine took
 * those cores from the server: the cluster then measures slower than one process); other
 * processes' CPU was taken from the server too.
 */
export function untrustedBecause(x: ResultRow): string | undefined {
  const s = x.summary
  if (!s) return undefined
  if (x.loadgenSaturated)
    return `the load generator (${x.engine}) used ${Math.round(s.loadgenCpu)}% CPU, all it can: the req/s is its limit, and on a small machine the cores it took were the server's`
  if (s.otherCpu > OTHER_CPU_LIMIT) return `other processes used ${Math.round(s.otherCpu)}% CPU during the runs`
  return undefined
}

/** The headline of a run that cannot rank the stacks: what limited it and what to change. */
function verdict(r: Results): string | undefined {
  const bad = r.results.filter((x) => x.untrusted)
  if (!bad.length) return undefined
  const measured = r.results.filter((x) => x.summary).length
  const saturated = bad.filter((x) => x.loadgenSaturated)
  const advice: string[] = []
  const couldWrk = saturated.filter((x) => x.engine !== 'wrk' && ENGINES.wrk.canRun(scenarioByName(x.scenario)))
  if (couldWrk.length)
    advice.push(
      r.machine.wrk
        ? "rerun with --engine wrk (a fraction of autocannon's CPU per request)"
        : `install wrk (${ENGINES.wrk.install}): compare then uses it for GET scenarios at a fraction of autocannon's CPU`,
    )
  if (saturated.length > couldWrk.length)
    advice.push(
      'for the scenarios only autocannon runs, raise --workers on a machine with spare cores, or load from another machine (runway loadtest --target)',
    )
  if (bad.some((x) => !x.loadgenSaturated)) advice.push('rerun on a quiet machine')
  const where = bad
    .slice(0, 3)
    .map((x) => `${label(r, x.stage)} ${x.scenario}`)
    .join(', ')
  return `Not a ranking: ${bad.length} of ${measured} measurements were limited by the machine, not by the stack (${where}${bad.length > 3 ? ', …' : ''}: ${bad[0]!.untrusted}). Do not compare the stacks from this run; ${advice.join('; ')}.`
}

/** Ratios to the dev server, efficiency against twins, the issue's targets and warnings. */
export function annotate(r: Results): void {
  const row = (stage: string, scenario: string, engine: string) =>
    r.results.find((x) => x.stage === stage && x.scenario === scenario && x.engine === engine && x.status === 'ok' && x.summary)
  for (const x of r.results) {
    if (!x.summary) continue
    const why = untrustedBecause(x)
    if (why) x.untrusted = why
    else delete x.untrusted
    const dev = row('dev', x.scenario, x.engine)
    if (dev?.summary && dev.summary.rps > 0) x.ratioToDev = Math.round((x.summary.rps / dev.summary.rps) * 1000) / 1000
    const twin = TWIN_OF[x.stage] ? row(TWIN_OF[x.stage]!, x.scenario, x.engine) : undefined
    if (twin?.summary && twin.summary.rps > 0) x.efficiency = Math.round((x.summary.rps / twin.summary.rps) * 1000) / 1000
    if (x.loadgenSaturated) {
      r.warnings.push(
        `${x.stage} ${x.scenario}: the load generator used ${x.summary.loadgenCpu}% CPU (a full core${r.settings.workers > 1 ? ' per worker' : ''}): it may be the bottleneck, not the server; try --workers ${Math.max(2, r.settings.workers + 1)}`,
      )
    }
    if (x.summary.responses === 0)
      r.warnings.push(`${x.stage} ${x.scenario}: no response completed during the runs: lengthen --duration or lower --connections`)
    if (x.summary.otherCpu > OTHER_CPU_LIMIT) {
      r.warnings.push(
        `${x.stage} ${x.scenario}: other processes used ${x.summary.otherCpu}% CPU during the runs: these figures are unreliable; rerun on a quiet machine`,
      )
    }
    if (failures(x.summary) > 0) {
      r.warnings.push(
        `${x.stage} ${x.scenario}: ${failures(x.summary)} failed responses (${Math.round(errorRate(x.summary) * 1000) / 1000}%): ${failureBreakdown(x.summary)}`,
      )
    }
  }
  const targets: Target[] = []
  /** A goal computed from rows of which one could not be trusted is not met or missed: unknown. */
  const judged = (t: Target, ...rows: (ResultRow | undefined)[]): Target => {
    const bad = rows.find((x) => x?.untrusted)
    return bad && t.value !== null ? { ...t, met: null, note: `not judged: ${label(r, bad.stage)} ${bad.scenario} was limited by the machine` } : t
  }
  const ran = (stage: string) => r.stages.some((s) => s.id === stage && s.status === 'ok')
  const meEngine = r.results.find((x) => x.scenario === 'me')?.engine ?? 'autocannon'
  if (r.settings.ceiling && r.settings.scenarios.includes('me')) {
    for (const id of PRODUCTION) {
      if (!r.stages.some((s) => s.id === id)) continue
      const eff = row(id, 'me', meEngine)?.efficiency
      const t: Target = {
        name: `me: ${label(r, id)} ≥ 90% of its ceiling twin`,
        goal: '≥ 90%',
        value: eff ?? null,
        met: eff === undefined ? null : eff >= 0.9,
        ...(eff === undefined ? { note: 'not measured' } : {}),
      }
      targets.push(judged(t, row(id, 'me', meEngine), TWIN_OF[id] ? row(TWIN_OF[id]!, 'me', meEngine) : undefined))
    }
  }
  const single = r.stages.find((s) => s.id === 'single' && s.status === 'ok')
  if (single?.startupMs !== undefined) {
    // From spawning `node dist/api/server.js` to its /readyz answering 200 (polled every 100 ms).
    targets.push({
      name: 'start: one production process ready ≤ 1 s after it is started',
      goal: '≤ 1000 ms',
      value: single.startupMs,
      met: single.startupMs <= 1000,
    })
  }
  if (r.settings.ceiling && r.settings.scenarios.includes('me') && r.stages.some((s) => s.id === 'proxy-tls')) {
    const eff = row('bare-tls', 'me', meEngine)?.efficiency
    const t: Target = {
      name: 'me: the rendered nginx template (TLS) ≥ 90% of a minimal TLS proxy, both on the bare cluster',
      goal: '≥ 90%',
      value: eff ?? null,
      met: eff === undefined ? null : eff >= 0.9,
      ...(eff === undefined ? { note: 'not measured' } : {}),
    }
    targets.push(judged(t, row('bare-tls', 'me', meEngine), row('proxy-tls', 'me', meEngine)))
  }
  if (r.settings.scenarios.includes('me') && ran('single') && ran('cluster')) {
    const single = row('single', 'me', meEngine)?.summary?.rps
    const cl = row('cluster', 'me', meEngine)?.summary?.rps
    const v = single && cl ? Math.round((cl / single) * 1000) / 1000 : null
    // The same ratio of the bare twins is what this machine allows: with the load generator on the
    // same cores, the cluster gets what it leaves, not all of them.
    const bareSingle = row('bare-single', 'me', meEngine)?.summary?.rps
    const bareCluster = row('bare-cluster', 'me', meEngine)?.summary?.rps
    const bound = bareSingle && bareCluster ? `the bare twins reach ${(bareCluster / bareSingle).toFixed(2)}× on this machine` : undefined
    targets.push(
      judged(
        {
          name: 'me: pm2 cluster ≥ 1.5× one production process',
          goal: '≥ 1.5×',
          value: v,
          met: v === null ? null : v >= 1.5,
          ...(bound ? { note: bound } : {}),
        },
        row('single', 'me', meEngine),
        row('cluster', 'me', meEngine),
      ),
    )
  }
  if (ran('single') && ran('single-pg')) {
    for (const [scenario, goal] of [
      ['me', 0.8],
      ['refresh', 0.6],
    ] as const) {
      if (!r.settings.scenarios.includes(scenario)) continue
      const engine = r.results.find((x) => x.scenario === scenario)?.engine ?? 'autocannon'
      const sqlite = row('single', scenario, engine)?.summary?.rps
      const postgres = row('single-pg', scenario, engine)?.summary?.rps
      const v = sqlite && postgres ? Math.round((postgres / sqlite) * 1000) / 1000 : null
      targets.push(
        judged(
          { name: `${scenario}: one process on PostgreSQL ≥ ${goal}× on SQLite`, goal: `≥ ${goal}×`, value: v, met: v === null ? null : v >= goal },
          row('single', scenario, engine),
          row('single-pg', scenario, engine),
        ),
      )
    }
  }
  if (r.settings.scenarios.includes('session')) {
    for (const id of PRODUCTION) {
      if (!r.stages.some((s) => s.id === id)) continue
      const s = row(id, 'session', 'autocannon')?.summary
      const measured = s && s.responses > 0
      targets.push({
        name: `session: 0 errors through ${label(r, id)}`,
        goal: '0',
        value: measured ? failures(s) : null,
        met: measured ? failures(s) === 0 : null,
        ...(s && !measured ? { note: 'no session completed' } : {}),
      })
    }
  }
  r.targets = targets
  const v = verdict(r)
  if (v) r.verdict = v
  else delete r.verdict
}

const label = (r: Results, id: string) => r.stages.find((s) => s.id === id)?.label ?? id
