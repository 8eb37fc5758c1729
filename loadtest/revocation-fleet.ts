// Benchmark (not a test): revocations across a fleet on PostgreSQL (issue 12, "Revocations across
// a fleet"). --processes revocation caches, each exactly what one app process runs (its own
// PostgresStore pool, its own LISTEN connection, its own RevocationCache), share one database:
//   1. idle: what they cost the database while nothing happens (CPU of their backends, sampled
//      from /proc when the database runs on this machine), for --idle seconds;
//   2. churn: a writer revokes --rate sessions a second for --duration seconds (logouts, each one
//      statement); every cache records when each revocation reached it → delay p50/p99/max, and
//      whether the writer sustained the rate.
// The caches share this process's event loop (100 app processes would have 100), so delays here
// are an upper bound. Default database: a private PostgreSQL cluster started for the run (as the
// postgres user, root needed; src/bench/stacks/postgres.ts) with max_connections to fit, so the idle
// figure is this fleet's alone; or a fresh schema in --database-url, dropped at the end.
//   npm run bench:revocation-fleet -- [--processes 100] [--rate 1000] [--duration 10] [--idle 10]
//                                     [--push listen|off] [--database-url URL] [--json]
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { RevocationCache } from '../src/api/auth/revocations.js'
import { privatePostgresProblem, startPrivatePostgres, type PrivatePostgres } from '../src/bench/stacks/postgres.js'
import { PostgresStore } from '../src/api/store/postgres.js'

const HELP = `Usage: npm run bench:revocation-fleet -- [options]

N revocation caches (one per app process) on one PostgreSQL: idle database cost, then revocation
delay to every cache and the rate sustained.
  --processes N      caches, each with its own pool and LISTEN connection (default 100)
  --rate N           revocations per second during the churn phase (default 1000)
  --duration S       churn seconds (default 10)
  --idle S           idle seconds measured (default 10)
  --push listen|off  LISTEN/NOTIFY (default) or polling every --poll
  --poll MS          REVOCATION_POLL_INTERVAL of each cache (default 250)
  --database-url URL an existing PostgreSQL (a fresh schema is used and dropped); default: a
                     private cluster started for the run and destroyed after
  --json             one JSON line on stdout, progress on stderr`

const say = (msg: string) => process.stderr.write(`${msg}\n`)
const TICKS_PER_SECOND = 100 // Linux USER_HZ

function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12]) // utime + stime
  } catch {
    return 0
  }
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN)

async function main() {
  const { values } = parseArgs({
    options: {
      processes: { type: 'string', default: '100' },
      rate: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '10' },
      idle: { type: 'string', default: '10' },
      push: { type: 'string', default: 'listen' },
      poll: { type: 'string', default: '250' },
      'database-url': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) return console.log(HELP)
  const n = Number(values.processes)
  const rate = Number(values.rate)
  const duration = Number(values.duration)
  let base = values['database-url']
  let cluster: PrivatePostgres | undefined
  if (!base) {
    const problem = privatePostgresProblem()
    if (problem) throw new Error(`no private cluster (${problem}): pass --database-url`)
    say('starting a private PostgreSQL cluster')
    cluster = await startPrivatePostgres({ maxConnections: n * 2 + 60, settings: { shared_buffers: '64MB' } })
    base = cluster.url()
  }
  try {
    await fleet(base, values, n, rate, duration)
  } finally {
    await cluster?.destroy()
  }
}

async function fleet(base: string, values: { push?: string; poll?: string; idle?: string; json?: boolean }, n: number, rate: number, duration: number) {
  const app = `runway-fleet-${randomBytes(4).toString('hex')}`
  const schema = `runway_fleet_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const url = new URL(base)
  url.searchParams.set('options', `-c search_path=${schema}`)
  url.searchParams.set('application_name', app)
  // Each cache holds 2 connections (its pool of 1, its LISTEN connection): refuse to start rather
  // than push the server into max_connections (and other users of it into 503s).
  const max = Number((await admin.query<{ max_connections: string }>('SHOW max_connections')).rows[0]!.max_connections)
  const used = Number((await admin.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity')).rows[0]!.n)
  const needed = n * 2 + 20
  if (used + needed > max - 5) {
    await admin.end()
    throw new Error(
      `${n} caches need ${needed} connections; ${base.replace(/\/\/[^@]*@/, '//')} allows ${max} and ${used} are in use: lower --processes or use a server with max_connections ≥ ${used + needed + 5}`,
    )
  }
  const writer = new PostgresStore(url.toString(), { poolSize: 20, listenUrl: null })
  const stores: PostgresStore[] = []
  const caches: RevocationCache[] = []
  try {
    await writer.migrate()
    const user = await writer.createUser('fleet', 'x')
    const total = rate * duration
    const now = Math.floor(Date.now() / 1000)
    await writer.pool.query(
      `WITH s AS (INSERT INTO sessions (id, user_id, created_at, expires_at) SELECT 's' || i, $1, $2::bigint, $2::bigint + 3600 FROM generate_series(1, $3) i RETURNING id)
       INSERT INTO refresh_tokens (jti, session_id, issued_at, expires_at) SELECT 'r' || substr(id, 2), id, $2::bigint, $2::bigint + 3600 FROM s`,
      [user.id, now, total],
    )
    say(`${total} sessions ready to be revoked; starting ${n} caches (push: ${values.push})`)

    const issued = new Map<string, number>()
    /** When each logout's commit was acknowledged to the writer. */
    const committed = new Map<string, number>()
    const delays: number[] = []
    /** Arrival minus commit acknowledgement; an arrival before the acknowledgement counts as 0. */
    const afterCommit: number[] = []
    const early = new Map<string, number[]>()
    let pushedCount = 0
    for (let i = 0; i < n; i++) {
      const store = new PostgresStore(url.toString(), { poolSize: 1, ...(values.push === 'off' ? { listenUrl: null } : {}) })
      const cache = new RevocationCache(store, Number(values.poll), 300, undefined, (msg) => {
        if (msg.startsWith('revocations pushed')) pushedCount++
      })
      cache.onChange((events) => {
        const at = performance.now()
        for (const e of events) {
          const t0 = e.sessionId && issued.get(e.sessionId)
          if (!t0) continue
          delays.push(at - t0)
          const c = committed.get(e.sessionId!)
          if (c !== undefined) afterCommit.push(Math.max(0, at - c))
          else early.set(e.sessionId!, [...(early.get(e.sessionId!) ?? []), at])
        }
      })
      stores.push(store)
      caches.push(cache)
      await cache.start()
    }
    if (values.push !== 'off') {
      const waited = Date.now()
      while (pushedCount < n && Date.now() - waited < 60_000) await sleep(100)
      say(`${pushedCount}/${n} caches receive pushes`)
    }
    const backends = async () =>
      (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [app])).rows.map(
        (r) => r.pid,
      )

    // 1. Idle.
    const idleSec = Number(values.idle)
    const pids = await backends()
    const local = pids.some((p) => existsSync(`/proc/${p}/stat`))
    const before = new Map(pids.map((p) => [p, cpuTicks(p)]))
    await sleep(idleSec * 1000)
    const after = await backends()
    const ticks = after.reduce((sum, p) => sum + Math.max(0, cpuTicks(p) - (before.get(p) ?? 0)), 0)
    const idleCpuPct = local ? (ticks / TICKS_PER_SECOND / idleSec) * 100 : null
    say(
      `idle: ${after.length} backends, ${idleCpuPct === null ? 'CPU n/a (database not on this machine)' : `${idleCpuPct.toFixed(2)}% of one core`} over ${idleSec} s`,
    )

    // 2. Churn: `rate` logouts a second, each issued on time (bounded in flight).
    let sent = 0
    let done = 0
    let failed = 0
    const writes: number[] = []
    const started = performance.now()
    const inflight = new Set<Promise<void>>()
    while (sent < total) {
      const due = Math.floor(((performance.now() - started) / 1000) * rate)
      while (sent < Math.min(due, total) && inflight.size < 200) {
        const i = ++sent
        const t0 = performance.now()
        issued.set(`s${i}`, t0)
        const p = writer.blacklistRefresh(`r${i}`, 0).then(
          () => {
            done++
            const c = performance.now()
            writes.push(c - t0)
            committed.set(`s${i}`, c)
            for (const _ of early.get(`s${i}`) ?? []) afterCommit.push(0)
            early.delete(`s${i}`)
          },
          () => void failed++,
        )
        inflight.add(p)
        void p.finally(() => inflight.delete(p))
      }
      await sleep(1)
    }
    await Promise.all(inflight)
    const writeSec = (performance.now() - started) / 1000
    // Let the last notifications and reads land.
    const deadline = Date.now() + 10_000
    while (delays.length < done * n && Date.now() < deadline) await sleep(50)
    const sorted = [...delays].sort((a, b) => a - b)
    const result = {
      processes: n,
      push: values.push,
      idleSeconds: idleSec,
      idleDbCpuPctOfOneCore: idleCpuPct === null ? null : Number(idleCpuPct.toFixed(2)),
      revocationsRequested: total,
      revocationsDone: done,
      revocationsFailed: failed,
      revocationsPerSecond: Math.round(done / writeSec),
      deliveries: delays.length,
      deliveriesExpected: done * n,
      writeMs: (() => {
        const w = [...writes].sort((a, b) => a - b)
        return { p50: Math.round(percentile(w, 50)), p99: Math.round(percentile(w, 99)) }
      })(),
      loadavg: loadavg().map((x) => Number(x.toFixed(1))),
      delayAfterCommitMs: (() => {
        const a = [...afterCommit].sort((x, y) => x - y)
        return { p50: Math.round(percentile(a, 50)), p99: Math.round(percentile(a, 99)), max: Math.round(a.at(-1) ?? NaN) }
      })(),
      delayMs: { p50: Math.round(percentile(sorted, 50)), p99: Math.round(percentile(sorted, 99)), max: Math.round(sorted.at(-1) ?? NaN) },
      goals: 'idle < 5% of one core per 100 processes; delay p99 ≤ 250 ms; 1,000 revocations/s sustained',
    }
    if (values.json) console.log(JSON.stringify(result))
    else
      say(
        `churn: ${result.revocationsPerSecond} revocations/s sustained (${done}/${total}, ${failed} failed); delivered ${delays.length}/${done * n}; delay from the logout request p50 ${result.delayMs.p50} ms, p99 ${result.delayMs.p99} ms, max ${result.delayMs.max} ms (the logout itself: p50 ${result.writeMs.p50} ms, p99 ${result.writeMs.p99} ms; after its commit: p50 ${result.delayAfterCommitMs.p50} ms, p99 ${result.delayAfterCommitMs.p99} ms); load average ${result.loadavg.join(' ')}`,
      )
  } finally {
    for (const c of caches) await c.stop()
    for (const s of stores) await s.close()
    await writer.close()
    await admin.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {})
    await admin.end()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:revocation-fleet: ${(err as Error).message}\n`)
  process.exit(1)
})
