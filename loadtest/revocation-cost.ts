// Benchmark (not a test): what revocations elsewhere cost GET /api/me/ (issue 10, "Revocation must
// stay cheap at scale"). One production-configured app process over a store holding --revoked
// revoked sessions (100,000 by default, as after a busy week) is loaded with autocannon in
// alternating rounds: without churn, and while another process revokes --churn sessions a second
// (4 by default: a logout every 250 ms). Every revocation makes the app process read the store's
// revocation log (pushed on PostgreSQL, polled on SQLite); the goal is me throughput with churn
// within 5% of without.
//   npm run bench:revocation -- [--store sqlite|postgres] [--revoked 100000] [--churn 4]
//                               [--rounds 3] [--duration 5] [--connections 20] [--database-url URL] [--json]
// PostgreSQL: a fresh schema in --database-url (default TEST_DATABASE_URL or the local test
// database), dropped at the end. Run it alone: `flock /tmp/runway-heavy.lock npm run bench:revocation`.
import autocannon from 'autocannon'
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { buildApp } from '../src/api/app.js'
import { hashPassword } from '../src/api/auth/passwords.js'
import { loadConfig } from '../src/api/config.js'
import { PostgresStore } from '../src/api/store/postgres.js'
import { SqliteStore } from '../src/api/store/sqlite.js'
import type { Store } from '../src/api/store/store.js'

const KEY = 'bench-signing-key-0123456789-0123456789-abcdef'
const PASSWORD = 'bench-password'
const HELP = `Usage: npm run bench:revocation -- [options]

GET /api/me/ throughput of one app process with and without revocation churn elsewhere.
  --store sqlite|postgres   store to measure (default sqlite)
  --revoked N               revoked sessions already in the store (default 100000)
  --churn N                 revocations per second during churn rounds (default 4)
  --rounds N                rounds of each kind, alternating (default 3)
  --duration S              seconds per round (default 5)
  --connections N           autocannon connections (default 20)
  --database-url URL        PostgreSQL server for --store postgres (a fresh schema is used and dropped)
  --json                    one JSON line on stdout, progress on stderr`

/** The app process: production settings over the given store, reports its URL. */
async function serve(env: Record<string, string>) {
  const config = loadConfig({
    NODE_ENV: 'production',
    JWT_SIGNING_KEY: KEY,
    LOG_LEVEL: 'warn',
    PORT: '0',
    LOGIN_RATE_LIMIT_IP: '0',
    LOGIN_RATE_LIMIT_USER: '0',
    ...env,
  })
  const app = await buildApp(config)
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  process.send!({ address, revoked: app.revocations.size })
}

const say = (msg: string) => process.stderr.write(`${msg}\n`)

async function seed(store: Store, revoked: number, bulk: (userId: number, now: number) => Promise<void>) {
  await store.migrate()
  const user = await store.createUser('bench', await hashPassword(PASSWORD))
  const started = Date.now()
  await bulk(user.id, Math.floor(Date.now() / 1000))
  say(`seeded ${revoked} revoked sessions in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return user.id
}

async function main() {
  const { values } = parseArgs({
    options: {
      store: { type: 'string', default: 'sqlite' },
      revoked: { type: 'string', default: '100000' },
      churn: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '20' },
      'database-url': { type: 'string', default: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(HELP)
    return
  }
  const kind = values.store
  if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`--store must be sqlite or postgres, not ${JSON.stringify(kind)}`)
  const revoked = Number(values.revoked)
  const churn = Number(values.churn)
  const cleanups: (() => Promise<void>)[] = []
  let store: Store
  let env: Record<string, string>
  let userId: number

  if (kind === 'sqlite') {
    const dataDir = mkdtempSync(join(tmpdir(), 'runway-bench-'))
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }))
    const s = SqliteStore.open(dataDir)
    store = s
    env = { DATA_DIR: dataDir }
    userId = await seed(s, revoked, async (uid, now) => {
      const session = s.db.prepare('INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, revoked_reason) VALUES (?, ?, ?, ?, ?, ?)')
      const log = s.db.prepare('INSERT INTO revocations (session_id, user_id, expires_at) VALUES (?, ?, ?)')
      s.db.transaction(() => {
        for (let i = 0; i < revoked; i++) {
          session.run(`revoked-${i}`, uid, now, now + 86400, now, 'logout')
          log.run(`revoked-${i}`, uid, now + 86400)
        }
      })()
    })
  } else {
    const base = values['database-url']!
    const schema = `runway_bench_${randomBytes(6).toString('hex')}`
    const admin = new pg.Client({ connectionString: base })
    await admin.connect()
    await admin.query(`CREATE SCHEMA ${schema}`)
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`)
      await admin.end()
    })
    const url = new URL(base)
    url.searchParams.set('options', `-c search_path=${schema}`)
    const s = new PostgresStore(url.toString())
    store = s
    env = { DATABASE_URL: url.toString() }
    userId = await seed(s, revoked, async (uid, now) => {
      await s.pool.query(
        `INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, revoked_reason)
         SELECT 'revoked-' || i, $1, $2::bigint, $2::bigint + 86400, $2::bigint, 'logout' FROM generate_series(1, $3) i`,
        [uid, now, revoked],
      )
      await s.pool.query(
        `INSERT INTO revocations (session_id, user_id, expires_at) SELECT 'revoked-' || i, $1, $2::bigint + 86400 FROM generate_series(1, $3) i`,
        [uid, now, revoked],
      )
    })
  }
  cleanups.unshift(() => store.close())

  const child = fork(import.meta.filename, ['--serve', JSON.stringify(env)], { stdio: 'inherit' })
  let churning: NodeJS.Timeout | undefined
  try {
    const started = Date.now()
    const { address, revoked: loaded } = await new Promise<{ address: string; revoked: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { address: string; revoked: number }))
      child.once('exit', (code) => reject(new Error(`the app process exited (${code})`)))
    })
    say(`app process ready in ${Date.now() - started} ms holding ${loaded} revoked sessions (${kind})`)
    const login = await fetch(`${address}/api/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bench', password: PASSWORD }),
    })
    const { access } = (await login.json()) as { access: string }
    const run = (duration: number) =>
      autocannon({ url: `${address}/api/me/`, headers: { authorization: `Bearer ${access}` }, connections: Number(values.connections), duration })

    // Churn: another process's logouts, `churn` a second, each a new session revoked.
    let revocations = 0
    const revokeOne = async () => {
      const id = `churn-${revocations++}-${randomBytes(4).toString('hex')}`
      const now = Math.floor(Date.now() / 1000)
      await store.createSession({ sessionId: id, userId, refreshJti: `r-${id}`, issuedAt: now, expiresAt: now + 3600 })
      await store.blacklistRefresh(`r-${id}`, now)
    }
    const startChurn = () => {
      churning = setInterval(() => void revokeOne().catch((err: unknown) => say(`churn: ${(err as Error).message}`)), 1000 / churn)
    }
    const stopChurn = () => clearInterval(churning)

    await run(2) // warm-up, not counted
    const rps = { quiet: [] as number[], churn: [] as number[] }
    const p99 = { quiet: [] as number[], churn: [] as number[] }
    for (let i = 0; i < Number(values.rounds); i++) {
      for (const phase of ['quiet', 'churn'] as const) {
        const before = revocations
        if (phase === 'churn') startChurn()
        const r = await run(Number(values.duration))
        stopChurn()
        if (r.errors || r.non2xx || r.timeouts) throw new Error(`round ${i + 1} ${phase}: ${r.errors} errors, ${r.non2xx} non-2xx, ${r.timeouts} timeouts`)
        rps[phase].push(r.requests.average)
        p99[phase].push(r.latency.p99)
        say(
          `round ${i + 1}/${values.rounds} ${phase === 'quiet' ? 'no churn ' : `churn ${churn}/s`}: ${r.requests.average.toFixed(0)} req/s, p99 ${r.latency.p99} ms${phase === 'churn' ? ` (${revocations - before} revocations)` : ''}`,
        )
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const result = {
      store: kind,
      revokedSessions: revoked,
      churnPerSecond: churn,
      quietRps: Math.round(median(rps.quiet)),
      churnRps: Math.round(median(rps.churn)),
      ratio: Number((median(rps.churn) / median(rps.quiet)).toFixed(3)),
      quietP99Ms: median(p99.quiet),
      churnP99Ms: median(p99.churn),
      goal: 'churn throughput within 5% of no churn (ratio >= 0.95)',
      met: median(rps.churn) / median(rps.quiet) >= 0.95,
    }
    if (values.json) console.log(JSON.stringify(result))
    else
      say(
        `${kind}: ${result.quietRps} req/s without churn, ${result.churnRps} with ${churn} revocations/s → ${(result.ratio * 100).toFixed(1)}% (${result.met ? 'within' : 'NOT within'} 5%); p99 ${result.quietP99Ms} → ${result.churnP99Ms} ms`,
      )
  } finally {
    clearInterval(churning)
    child.kill('SIGKILL')
    for (const c of cleanups) await c().catch(() => {})
  }
}

if (process.argv[2] === '--serve') await serve(JSON.parse(process.argv[3]!) as Record<string, string>)
else {
  await main().catch((err: unknown) => {
    process.stderr.write(`bench:revocation: ${(err as Error).message}\n`)
    process.exit(1)
  })
}
