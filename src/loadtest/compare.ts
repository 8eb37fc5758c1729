// `runway compare`: brings up each stack on this machine in turn — dev server, one production
// process, the pm2 cluster, nginx → cluster over HTTP and over TLS, and with --ceiling their bare
// twins — waits until it is ready, measures the scenarios, stops it, and writes results.json,
// report.md and report.html. Every stack is stopped in a finally; the stacks' own reapers kill
// what is left if this process is interrupted.
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { redactSecrets } from '../redact.js'
import { PostgresStore } from '../store/postgres.js'
import type { Store } from '../store/store.js'
import { processTree, startDevServer, startProductionProcess, stageCopy, type StagedCopy } from '../stacks/api.js'
import { startPm2Cluster } from '../stacks/pm2.js'
import { findNginx, startNginx } from '../stacks/nginx.js'
import { freePort, startService, waitForHttp } from '../stacks/process.js'
import type { EngineName } from './engines.js'
import { obtainTokens } from './http.js'
import { machineFacts } from './machine.js'
import { measureInterleaved, type MeasureSettings } from './measure.js'
import type { Progress } from './progress.js'
import { renderHtml } from './report-html.js'
import { renderMarkdown } from './report-md.js'
import { assertResults, type ResultRow, type Results, type Stage, type Target } from './schema.js'
import { CEILING_SERVER_FILE, ROOT, scenario as scenarioByName, type ScenarioContext, type ScenarioName } from './scenarios.js'
import { benchPassword, createBenchUsers, type BenchUsers } from './users.js'
import { mintAccessToken } from './hs256.js'
import { errorRate, failures, fmtInt } from './stats.js'

export type StageId = 'dev' | 'single' | 'single-pg' | 'cluster' | 'nginx' | 'tls' | 'bare-single' | 'bare-cluster' | 'bare-nginx' | 'bare-tls'
export const STAGE_IDS: readonly StageId[] = ['dev', 'single', 'single-pg', 'cluster', 'nginx', 'tls']
/** Measured by default (single-pg only when a PostgreSQL URL is given). */
export const DEFAULT_STAGE_IDS: readonly StageId[] = ['dev', 'single', 'cluster', 'nginx', 'tls']
const TWIN_OF: Record<string, StageId> = { single: 'bare-single', cluster: 'bare-cluster', nginx: 'bare-nginx', tls: 'bare-tls' }

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

interface Running {
  url: string
  ca?: string
  pids(): Promise<number[]>
  stop(): Promise<void>
  /** Twins cannot log in: their tokens are minted with the shared key. */
  mint: boolean
}

interface StageDef {
  id: StageId
  label: string
  kind: 'stage' | 'twin'
  twinOf?: StageId
  nginx?: boolean
  /** Runs on PostgreSQL (a fresh schema of CompareOptions.databaseUrl) instead of SQLite. */
  postgres?: boolean
  explanation: string
  start(ctx: StageContext): Promise<Running>
}

interface StageContext {
  env: Record<string, string>
  dataDir: string
  logDir: string
  key: string
  instances: number
  dist(): Promise<StagedCopy>
  src(): Promise<StagedCopy>
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

const hostPort = (url: string) => new URL(url).host

/** Several stacks at once (nginx over a cluster): stop them all, last started first. */
function combine(parts: { stop(): Promise<void>; pids(): Promise<number[]> }[], front: { url: string; ca?: string }, mint: boolean): Running {
  return {
    ...front,
    mint,
    pids: async () => (await Promise.all(parts.map((p) => p.pids()))).flat(),
    stop: async () => {
      for (const p of [...parts].reverse()) await p.stop().catch(() => undefined)
    },
  }
}

/** The bare node:http twin (loadtest/ceiling-server.ts), one process or a node:cluster. */
async function startCeiling(ctx: StageContext, workers: number, name: string): Promise<Running> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const service = startService({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', CEILING_SERVER_FILE],
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), DATA_DIR: ctx.dataDir, JWT_SIGNING_KEY: ctx.key, CEILING_WORKERS: String(workers) },
    logFile: join(ctx.logDir, `${name.replaceAll(' ', '-')}.log`),
  })
  try {
    await waitForHttp(`${url}/healthz`, { service, timeoutMs: 20_000 })
  } catch (err) {
    await service.stop(2000)
    throw err
  }
  return { url, mint: true, pids: async () => processTree(service.pid), stop: () => service.stop(5000) }
}

async function nginxOver(upstream: Running, tls: boolean): Promise<Running> {
  const nginx = await startNginx({ upstreams: [hostPort(upstream.url)], tls, rateLimit: false }).catch(async (err: unknown) => {
    await upstream.stop()
    throw err
  })
  const ca = nginx.caFile ? readFileSync(nginx.caFile, 'utf8') : undefined
  return combine([upstream, nginx], { url: nginx.url, ...(ca ? { ca } : {}) }, upstream.mint)
}

const cluster = async (ctx: StageContext): Promise<Running> => {
  const copy = await ctx.dist()
  const pm2 = await startPm2Cluster({ cwd: copy.dir, instances: ctx.instances, env: { ...ctx.env, RUNWAY_LOG_DIR: join(ctx.logDir, 'pm2') } })
  return combine([pm2], { url: pm2.url }, false)
}

function stageDefs(instances: number): StageDef[] {
  const w = `${instances} worker${instances === 1 ? '' : 's'}`
  return [
    {
      id: 'dev',
      label: 'dev server',
      kind: 'stage',
      explanation:
        'Exactly `npm run dev`: tsx watch (TypeScript transpiled on load, a file watcher beside it), NODE_ENV=development, and a pino-pretty line for every request. One process, so one core: no crash recovery, no zero-downtime reload, no TLS, no buffering of slow clients. Its event loop is the same as production\'s, so on cheap endpoints it is not far behind one production process; the gap is mostly per-request pretty logging.',
      start: async (ctx) => {
        const copy = await ctx.src()
        const s = await startDevServer({ cwd: copy.dir, env: ctx.env, logFile: join(ctx.logDir, 'dev-server.log') })
        return { url: s.url, mint: false, pids: () => s.pids(), stop: () => s.stop() }
      },
    },
    {
      id: 'single',
      label: 'production, one process',
      kind: 'stage',
      explanation:
        'Compiled JavaScript (`node dist/server.js`), NODE_ENV=production, JSON logs to a file and no per-request log lines (the production policy: nginx keeps the access log; errors and warnings still log). Still one event loop on one core: what it gains on the dev server is logging and the watcher, not parallelism.',
      start: async (ctx) => {
        const copy = await ctx.dist()
        const s = await startProductionProcess({ cwd: copy.dir, env: ctx.env, logFile: join(ctx.logDir, 'production.log') })
        return { url: s.url, mint: false, pids: () => s.pids(), stop: () => s.stop() }
      },
    },
    {
      id: 'single-pg',
      label: 'production, one process, PostgreSQL',
      kind: 'stage',
      postgres: true,
      explanation:
        'The same single production process with DATABASE_URL set: the store is PostgreSQL (a fresh schema, dropped afterwards) instead of the SQLite file. Every store call is a network round trip instead of a function call, so compare it with "production, one process": the goals are me ≥ 0.8× and refresh ≥ 0.6× of SQLite. The database server runs where --database-url points (on the same machine it competes for the same cores).',
      start: async (ctx) => {
        const copy = await ctx.dist()
        const s = await startProductionProcess({ cwd: copy.dir, env: ctx.env, logFile: join(ctx.logDir, 'production.log') })
        return { url: s.url, mint: false, pids: () => s.pids(), stop: () => s.stop() }
      },
    },
    {
      id: 'bare-single',
      label: 'ceiling: bare node:http',
      kind: 'twin',
      twinOf: 'single',
      explanation:
        'The thinnest app that answers the same requests: node:http, the same HS256 check (verified tokens remembered, as the API does), the same SQLite read, the same JSON; no framework, plugins, logging, schemas, security headers or revocation set. The ceiling of one process on this machine. With --ceiling each stage and its twin are up together and measured in alternating runs, so drift on a shared machine falls on both alike.',
      start: (ctx) => startCeiling(ctx, 0, 'ceiling single'),
    },
    {
      id: 'cluster',
      label: `pm2 cluster (${w})`,
      kind: 'stage',
      explanation: `pm2 cluster mode from ecosystem.config.js, ${w}: pm2's master accepts each connection and hands it to a worker (round robin), so every core serves requests, crashed workers are restarted and \`pm2 reload\` replaces workers without dropping requests. On a small machine the load generator competes with the workers for the same cores, which caps the gain below the worker count.`,
      start: cluster,
    },
    {
      id: 'bare-cluster',
      label: `ceiling: bare node:cluster (${w})`,
      kind: 'twin',
      twinOf: 'cluster',
      explanation: `The bare twin as a node:cluster of ${w} — the same round-robin master pm2 uses — with nothing else: the ceiling of this topology here.`,
      start: (ctx) => startCeiling(ctx, ctx.instances, 'ceiling cluster'),
    },
    {
      id: 'nginx',
      label: 'nginx → pm2 cluster (HTTP)',
      kind: 'stage',
      nginx: true,
      explanation:
        'The rendered nginx config in front of the cluster: nginx parses each request again, proxies it over keep-alive upstream connections, buffers slow clients, writes the JSON access log and adds security headers. That is another process doing HTTP work per request on the same cores, so on a small machine the proxy costs real throughput; on a server with spare cores, and with slow clients, it buys resilience.',
      start: async (ctx) => nginxOver(await cluster(ctx), false),
    },
    {
      id: 'bare-nginx',
      label: 'ceiling: nginx → bare cluster (HTTP)',
      kind: 'twin',
      twinOf: 'nginx',
      nginx: true,
      explanation: 'The same rendered nginx in front of the bare node:cluster twin: what the proxy topology allows on this machine.',
      start: async (ctx) => nginxOver(await startCeiling(ctx, ctx.instances, 'ceiling cluster'), false),
    },
    {
      id: 'tls',
      label: 'nginx (TLS) → pm2 cluster',
      kind: 'stage',
      nginx: true,
      explanation:
        'As nginx over HTTP, plus TLS 1.2/1.3 termination with a generated certificate. Keep-alive connections pay the handshake once; each request then pays symmetric encryption and record framing in nginx.',
      start: async (ctx) => nginxOver(await cluster(ctx), true),
    },
    {
      id: 'bare-tls',
      label: 'ceiling: nginx (TLS) → bare cluster',
      kind: 'twin',
      twinOf: 'tls',
      nginx: true,
      explanation: 'The same TLS nginx in front of the bare node:cluster twin.',
      start: async (ctx) => nginxOver(await startCeiling(ctx, ctx.instances, 'ceiling cluster'), true),
    },
  ]
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
    say(`runway compare: ${defs.length} stacks × ${o.scenarios.length} scenarios, ${o.settings.connections} connections, ${o.settings.durationSec} s × ${o.settings.runs} runs after ${o.settings.warmupSec} s warm-up (${o.engine})`)
    const cred = await benchPassword()
    const fail = (member: Member, err: unknown) => {
      member.stage.status = 'failed'
      member.stage.reason = (err as Error).message
      say(`${member.label}: failed: ${member.stage.reason}`)
    }
    /** Starts one stack; a skipped or failed start is recorded on its stage, and leaves `running` unset. */
    const bringUp = async (def: StageDef, label: string): Promise<Member> => {
      const stage: Stage = { id: def.id, label: def.label, kind: def.kind, ...(def.twinOf ? { twinOf: def.twinOf } : {}), status: 'ok', explanation: def.explanation }
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
        env: {
          DATA_DIR: dataDir,
          JWT_SIGNING_KEY: key,
          // compare logs in far more often than a person: the per-IP and per-user login limits
          // (and nginx's limit_req, off in nginxOver) would turn the login scenarios into 429s.
          LOGIN_RATE_LIMIT_IP: '0',
          LOGIN_RATE_LIMIT_USER: '0',
          TRUST_PROXY: def.nginx ? '127.0.0.1' : 'false',
        },
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
              rows.push({ stage: member.def.id, scenario: name, engine: 'autocannon', status: 'skipped', reason: 'the ceiling twin serves healthz, me and verify only', runs: [], loadgenSaturated: false })
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
              target: { stage: member.def.id, label: member.label, url: member.running!.url, ...(member.running!.ca ? { ca: member.running!.ca } : {}), pids: member.running!.pids },
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
      }
    }
  } finally {
    await Promise.allSettled(Object.values(copies))
    for (const c of cleanups) await c().catch((err: unknown) => warnings.push(`cleanup failed: ${(err as Error).message}`))
    removeWork()
    process.removeListener('exit', removeWork)
  }

  const results: Results = {
    schema: 'runway-loadtest/1',
    tool: 'compare',
    createdAt: new Date().toISOString(),
    engine: o.engine,
    settings: { scenarios: o.scenarios, connections: o.settings.connections, durationSec: o.settings.durationSec, ...(o.settings.amount ? { amount: o.settings.amount } : {}), warmupSec: o.settings.warmupSec, runs: o.settings.runs, workers: o.settings.workers, ceiling: o.ceiling },
    machine: await machineFacts({
      nginxBin,
      sharedWith: `the load generator (${o.engine === 'wrk' ? 'wrk for GET scenarios, autocannon for the rest' : 'autocannon'}${o.settings.workers ? ` with ${o.settings.workers} worker threads` : ', one thread'}) ran on the same ${availableParallelism()} CPUs as the server under test; each row's otherCpu says what else used them`,
    }),
    stages,
    results: rows,
    targets: [],
    thresholds: [],
    warnings,
  }
  annotate(results)
  assertResults(results)
  mkdirSync(o.outDir, { recursive: true })
  writeFileSync(join(o.outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(join(o.outDir, 'report.md'), renderMarkdown(results))
  writeFileSync(join(o.outDir, 'report.html'), renderHtml(results))
  return { results, dir: o.outDir }
}

const PRODUCTION: readonly StageId[] = ['single', 'cluster', 'nginx', 'tls']

/**
 * A fresh schema in the PostgreSQL server at `base` for one compare stage, reached with
 * `options=-c search_path=…` in the URL; `drop` removes it with everything the stage wrote.
 */
async function postgresSchema(base: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `runway_compare_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5000 })
  admin.on('error', () => {})
  try {
    await admin.connect()
    await admin.query(`CREATE SCHEMA ${schema}`)
  } catch (err) {
    await admin.end().catch(() => {})
    throw new Error(`PostgreSQL at ${redactSecrets(base)}: ${(err as Error).message}`)
  }
  const url = new URL(base)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return {
    url: url.toString(),
    drop: async () => {
      try {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`)
      } finally {
        await admin.end().catch(() => {})
      }
    },
  }
}

/** Ratios to the dev server, efficiency against twins, the issue's targets and warnings. */
export function annotate(r: Results): void {
  const row = (stage: string, scenario: string, engine: string) =>
    r.results.find((x) => x.stage === stage && x.scenario === scenario && x.engine === engine && x.status === 'ok' && x.summary)
  for (const x of r.results) {
    if (!x.summary) continue
    const dev = row('dev', x.scenario, x.engine)
    if (dev?.summary && dev.summary.rps > 0) x.ratioToDev = Math.round((x.summary.rps / dev.summary.rps) * 1000) / 1000
    const twin = TWIN_OF[x.stage] ? row(TWIN_OF[x.stage]!, x.scenario, x.engine) : undefined
    if (twin?.summary && twin.summary.rps > 0) x.efficiency = Math.round((x.summary.rps / twin.summary.rps) * 1000) / 1000
    if (x.loadgenSaturated) {
      r.warnings.push(
        `${x.stage} ${x.scenario}: the load generator used ${x.summary.loadgenCpu}% CPU (a full core${r.settings.workers > 1 ? ' per worker' : ''}): it may be the bottleneck, not the server; try --workers ${Math.max(2, r.settings.workers + 1)}`,
      )
    }
    if (x.summary.responses === 0) r.warnings.push(`${x.stage} ${x.scenario}: no response completed during the runs: lengthen --duration or lower --connections`)
    if (x.summary.otherCpu > 30) {
      r.warnings.push(`${x.stage} ${x.scenario}: other processes used ${x.summary.otherCpu}% CPU during the runs: these figures are unreliable; rerun on a quiet machine`)
    }
    if (failures(x.summary) > 0) {
      r.warnings.push(`${x.stage} ${x.scenario}: ${failures(x.summary)} failed responses (${Math.round(errorRate(x.summary) * 1000) / 1000}%): errors ${x.summary.errors}, non-2xx ${x.summary.non2xx}, wrong bodies ${x.summary.mismatches}`)
    }
  }
  const targets: Target[] = []
  const ran = (stage: string) => r.stages.some((s) => s.id === stage && s.status === 'ok')
  const meEngine = r.results.find((x) => x.scenario === 'me')?.engine ?? 'autocannon'
  if (r.settings.ceiling && r.settings.scenarios.includes('me')) {
    for (const id of PRODUCTION) {
      if (!r.stages.some((s) => s.id === id)) continue
      const eff = row(id, 'me', meEngine)?.efficiency
      targets.push({ name: `me: ${label(r, id)} ≥ 80% of its ceiling twin`, goal: '≥ 80%', value: eff ?? null, met: eff === undefined ? null : eff >= 0.8, ...(eff === undefined ? { note: 'not measured' } : {}) })
    }
  }
  if (r.settings.scenarios.includes('me') && ran('single') && ran('cluster')) {
    const single = row('single', 'me', meEngine)?.summary?.rps
    const cl = row('cluster', 'me', meEngine)?.summary?.rps
    const v = single && cl ? Math.round((cl / single) * 1000) / 1000 : null
    targets.push({ name: 'me: pm2 cluster ≥ 1.5× one production process', goal: '≥ 1.5×', value: v, met: v === null ? null : v >= 1.5 })
  }
  if (ran('single') && ran('single-pg')) {
    for (const [scenario, goal] of [['me', 0.8], ['refresh', 0.6]] as const) {
      if (!r.settings.scenarios.includes(scenario)) continue
      const engine = r.results.find((x) => x.scenario === scenario)?.engine ?? 'autocannon'
      const sqlite = row('single', scenario, engine)?.summary?.rps
      const postgres = row('single-pg', scenario, engine)?.summary?.rps
      const v = sqlite && postgres ? Math.round((postgres / sqlite) * 1000) / 1000 : null
      targets.push({ name: `${scenario}: one process on PostgreSQL ≥ ${goal}× on SQLite`, goal: `≥ ${goal}×`, value: v, met: v === null ? null : v >= goal })
    }
  }
  if (r.settings.scenarios.includes('session')) {
    for (const id of PRODUCTION) {
      if (!r.stages.some((s) => s.id === id)) continue
      const s = row(id, 'session', 'autocannon')?.summary
      const measured = s && s.responses > 0
      targets.push({ name: `session: 0 errors through ${label(r, id)}`, goal: '0', value: measured ? failures(s) : null, met: measured ? failures(s) === 0 : null, ...(s && !measured ? { note: 'no session completed' } : {}) })
    }
  }
  r.targets = targets
}

const label = (r: Results, id: string) => r.stages.find((s) => s.id === id)?.label ?? id
