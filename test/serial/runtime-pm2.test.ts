// The production runtime for real: pm2 (from node_modules) in cluster mode from
// ecosystem.config.js --env production, two workers, under a temporary PM2_HOME, over a private
// copy of dist/ and a fresh SQLite file. Everything is torn down by PID, also when a test fails.
import t from 'tap'
import { readFileSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startPm2Cluster } from '../../src/bench/stacks/pm2.js'
import { Connection, connectToWorker, login, seedUser, sessions, stackEnv, staged, startLoad } from '../helpers/runtime.js'

const WORKERS = 2
const CONNECTIONS = 10
const LOAD_USERS = Array.from({ length: CONNECTIONS }, (_, i) => `load-${i}`)
const USER_LIMIT = 20

const copy = await staged(t, 'dist')
for (const u of ['alice', 'mallory', ...LOAD_USERS]) await seedUser(copy.dir, u)
// Also listening on a Unix socket, as behind an nginx on the same host (runway host init).
const SOCKET = join(copy.dir, 'run', 'app.sock')
const stack = await startPm2Cluster({
  cwd: copy.dir,
  instances: WORKERS,
  env: stackEnv(copy.dir, { LOGIN_RATE_LIMIT_USER: String(USER_LIMIT), UNIX_SOCKET: SOCKET }),
})
t.teardown(() => stack.stop())
const { url } = stack
t.comment(`pm2 start returned after ${stack.startMs} ms (every worker sent 'ready')`)

t.test('the cluster starts the configured workers, and more than one answers', async (t) => {
  const workers = await stack.workers()
  t.equal(workers.length, WORKERS, `${WORKERS} workers`)
  t.ok(
    workers.every((w) => w.status === 'online'),
    'all online',
  )
  t.equal(new Set(workers.map((w) => w.pid)).size, WORKERS, 'each its own process')
  // Each new connection goes to the next worker; the header is the pm2 instance id, read by
  // src/api/config.ts from the variable ecosystem.config.js names in instance_var.
  const seen = new Map<string, number>()
  for (let i = 0; i < 10; i++) {
    const c = new Connection(url)
    const r = await c.request('/readyz')
    c.close()
    t.equal(r.status, 200)
    const w = String(r.headers['x-runway-worker'])
    seen.set(w, (seen.get(w) ?? 0) + 1)
  }
  t.same([...seen.keys()].sort(), ['0', '1'], `answered by workers ${[...seen.entries()].map(([w, n]) => `${w}×${n}`).join(', ')}`)
  // NODE_ENV=production came from env_production; logs are JSON lines in the merged log file.
  const log = readFileSync(join(stack.pm2Home, 'logs', 'runway.out.log'), 'utf8')
    .trim()
    .split('\n')
  const lines = log.map((l) => JSON.parse(l) as { worker?: string; msg?: string })
  t.same([...new Set(lines.map((l) => l.worker))].sort(), ['0', '1'], 'JSON log lines from both workers, each naming its worker')
  // libuv's pool is sized per worker by ecosystem.config.js (env_production) to the hashes the
  // worker runs at once: a pool thread that ever hashed keeps its ~19 MiB, so 4 idle threads cost 76 MB.
  const pool = Math.max(1, Math.floor(availableParallelism() / WORKERS))
  const hashing = (lines as { worker?: string; msg?: string; threadPool?: number; concurrency?: number }[]).filter((l) =>
    l.msg?.startsWith('password hashing:'),
  )
  t.same(hashing.map((l) => l.worker).sort(), ['0', '1'], 'each worker states its password hashing at start')
  t.ok(
    hashing.every((l) => l.threadPool === pool && l.concurrency === pool),
    `on a libuv pool of ${pool}, as many threads as it hashes at once: ${JSON.stringify(hashing.map((l) => [l.threadPool, l.concurrency]))}`,
  )
})

t.test('the Unix socket (UNIX_SOCKET) is served by every worker, through the pm2 daemon', async (t) => {
  t.equal(statSync(SOCKET).mode & 0o777, 0o666, 'nginx, another user, may connect')
  const seen = new Set<string>()
  for (let i = 0; i < 10; i++) {
    const c = new Connection(url, SOCKET)
    const r = await c.request('/readyz')
    c.close()
    t.equal(r.status, 200)
    seen.add(String(r.headers['x-runway-worker']))
  }
  t.same([...seen].sort(), ['0', '1'], 'new connections on the socket go to both workers')
  const c = new Connection(url, SOCKET)
  const pair = await login(c)
  t.match((await c.request('/api/me/', { token: pair.access })).body, { username: 'alice' }, 'the API over the socket')
  c.close()
})

t.test('cross-worker: a refresh token rotated on one worker is refused by another', async (t) => {
  const [w0, w1] = [await connectToWorker(t, url, '0'), await connectToWorker(t, url, '1')]
  const first = await login(w0)
  const rotated = await w0.request('/api/token/refresh/', { json: { refresh: first.refresh } })
  t.equal(rotated.status, 200, 'rotated on worker 0')
  const again = await w1.request('/api/token/refresh/', { json: { refresh: first.refresh } })
  t.equal(again.status, 401, 'the old token is refused on worker 1')
  t.same(again.body, { detail: 'Token is blacklisted', code: 'token_not_valid' })
  const next = await w1.request('/api/token/refresh/', { json: { refresh: rotated.body.refresh } })
  t.equal(next.status, 200, 'the new one works on worker 1')
})

t.test('cross-worker: logout on one worker revokes the access tokens on every worker within 1 s', async (t) => {
  const [w0, w1] = [await connectToWorker(t, url, '0'), await connectToWorker(t, url, '1')]
  const pair = await login(w0)
  t.equal((await w1.request('/api/me/', { token: pair.access })).status, 200, 'the access token works on worker 1')
  t.equal((await w0.request('/api/token/blacklist/', { json: { refresh: pair.refresh } })).status, 200, 'logout on worker 0')
  t.equal((await w0.request('/api/me/', { token: pair.access })).status, 401, 'worker 0 refuses it at once')
  const since = Date.now()
  let last = await w1.request('/api/me/', { token: pair.access })
  while (last.status === 200 && Date.now() - since < 2000) {
    await sleep(10)
    last = await w1.request('/api/me/', { token: pair.access })
  }
  const took = Date.now() - since
  t.equal(last.status, 401, `worker 1 refuses it after ${took} ms`)
  t.equal(last.body.code, 'token_not_valid')
  t.ok(took < 1000, `within 1 s (${took} ms)`)
})

t.test('cross-worker: one refresh token sent at once to several workers rotates exactly once', async (t) => {
  const conns = [
    ...(await Promise.all([0, 1, 2].map(() => connectToWorker(t, url, '0')))),
    ...(await Promise.all([0, 1, 2].map(() => connectToWorker(t, url, '1')))),
  ]
  for (let round = 1; round <= 5; round++) {
    const pair = await login(conns[0]!)
    const answers = await Promise.all(conns.map((c) => c.request('/api/token/refresh/', { json: { refresh: pair.refresh } })))
    const wins = answers.filter((a) => a.status === 200)
    t.equal(
      wins.length,
      1,
      `round ${round}: one success out of ${conns.length} (workers ${answers.map((a) => `${a.headers['x-runway-worker']}:${a.status}`).join(' ')})`,
    )
    t.ok(
      answers.filter((a) => a.status !== 200).every((a) => a.status === 401 && a.body.detail === 'Token is blacklisted'),
      'the others: 401 Token is blacklisted',
    )
    // Within REFRESH_REUSE_GRACE the losers do not end the session: the winner's token works.
    const next = await conns[conns.length - 1]!.request('/api/token/refresh/', { json: { refresh: wins[0]!.body.refresh } })
    t.equal(next.status, 200, 'the winning chain goes on')
  }
})

t.test('cross-worker: login rate limits count attempts on every worker together', async (t) => {
  const [w0, w1] = [await connectToWorker(t, url, '0'), await connectToWorker(t, url, '1')]
  const wrong = { username: 'mallory', password: 'not-the-password' }
  const statuses: number[] = []
  for (let i = 0; i < USER_LIMIT; i++) statuses.push((await (i % 2 ? w1 : w0).request('/api/token/', { json: wrong })).status)
  t.same(new Set(statuses), new Set([401]), `${USER_LIMIT} attempts, half on each worker: 401`)
  for (const [name, c] of [
    ['worker 0', w0],
    ['worker 1', w1],
  ] as const) {
    const r = await c.request('/api/token/', { json: wrong })
    t.equal(r.status, 429, `attempt ${USER_LIMIT + 1} on ${name}: 429 (per-process counters would allow ${USER_LIMIT * WORKERS})`)
    t.ok(Number(r.headers['retry-after']) > 0, 'with Retry-After')
  }
})

t.test('zero-downtime reload: pm2 reload under load loses nothing', async (t) => {
  const RUNS = 4
  for (let run = 1; run <= RUNS; run++) {
    const before = await stack.workers()
    // The load runs from before the reload until shortly after it (bounded at 20 s); every other
    // run sends it over the Unix socket, which the pm2 daemon holds while the workers change.
    const socketPath = run % 2 === 0 ? SOCKET : undefined
    const over = socketPath ? 'over the Unix socket' : 'over TCP'
    const load = startLoad(url, {
      maxDurationS: 20,
      connections: CONNECTIONS,
      mix: 'chains',
      sessions: await sessions(url, CONNECTIONS, LOAD_USERS),
      socketPath,
    })
    await sleep(400)
    const reloadStart = Date.now()
    await stack.pm2(['reload', 'runway'])
    const reloadMs = Date.now() - reloadStart
    await sleep(400)
    const r = await load.stop()
    const after = await stack.waitForWorkers()
    t.comment(
      `run ${run} (${over}): reload took ${reloadMs} ms; ${r.requests} requests in ${r.durationMs} ms, statuses ${JSON.stringify(r.statuses)}, connection errors ${JSON.stringify(r.errorCodes)}`,
    )
    t.ok(
      after.every((w) => !before.some((b) => b.pid === w.pid)),
      `run ${run}: every worker was replaced`,
    )
    t.ok(r.durationMs < 19_000, `run ${run}: the reload finished while the load ran`)
    t.ok(r.requests > 500, `run ${run}: real load (${r.requests} requests)`)
    t.same(
      { errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, badBodies: r.badBodies },
      { errors: 0, timeouts: 0, non2xx: 0, badBodies: 0 },
      `run ${run} (${over}): 0 errors, 0 timeouts, 0 non-2xx`,
    )
  }
})

t.test('crash recovery: kill -9 of a worker under load', async (t) => {
  const before = await stack.workers()
  const victim = before[0]!
  const load = startLoad(url, { maxDurationS: 20, connections: CONNECTIONS, mix: 'me', sessions: await sessions(url, CONNECTIONS, LOAD_USERS) })
  await sleep(800)
  process.kill(victim.pid, 'SIGKILL')
  const killedAt = Date.now()
  // Once pm2 has seen the worker die (the first jlist answer comes later than that), new
  // connections go to the surviving worker: probe every 100 ms until the replacement is online.
  // (A connection the master hands over in the very instant of the crash is lost with the worker:
  // Node's cluster round robin has no way to take it back. The load below counts those.)
  let replacedMs = -1
  const probes: Array<Promise<boolean>> = []
  const probe = async () => {
    const c = new Connection(url)
    try {
      return (await c.request('/readyz')).status === 200
    } catch {
      return false
    } finally {
      c.close()
    }
  }
  await stack.workers()
  const prober = setInterval(() => probes.push(probe()), 100)
  try {
    while (Date.now() - killedAt < 10_000) {
      const now = (await stack.workers()).find((w) => w.pmId === victim.pmId)
      if (now && now.pid !== victim.pid && now.status === 'online') {
        replacedMs = Date.now() - killedAt
        break
      }
    }
  } finally {
    clearInterval(prober)
  }
  const answered = (await Promise.all(probes)).filter(Boolean).length
  const probeFailures = probes.length - answered
  await sleep(500)
  const r = await load.stop()
  const failures = r.errors + r.timeouts + r.non2xx
  t.comment(
    `kill -9: worker ${victim.pmId} replaced after ${replacedMs} ms; load: ${r.requests} requests, ${failures} failed (errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx}); probes during recovery: ${answered}/${probes.length} answered`,
  )
  t.ok(replacedMs >= 0 && replacedMs < 8000, `replaced within seconds (${replacedMs} ms; bound 8 s on this shared machine)`)
  t.ok(probes.length > 0 && probeFailures === 0, `new connections were answered while the worker was down (${answered}/${probes.length})`)
  t.ok(r.ok > 500, 'the load kept being answered')
  // Only the connections that were on the killed worker can fail, each once, with what was in
  // flight on it; autocannon then reconnects to a live worker.
  t.ok(failures <= CONNECTIONS, `failures bounded by the connections on the killed worker (${failures} ≤ ${CONNECTIONS})`)
  t.equal(r.non2xx, 0, 'no error answers: failures are cut connections only')
  t.equal((await stack.waitForWorkers()).length, WORKERS, 'back to full strength')
})
