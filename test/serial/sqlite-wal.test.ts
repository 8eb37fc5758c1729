// The SQLite WAL stays bounded under a login flood: rate-limit hits are written by `.get()`
// (INSERT … RETURNING), which skips SQLite's auto-checkpoint, and 8 KB X-Forwarded-For values
// made 8 KB keys. A real server, a real file, thousands of real requests.
import t from 'tap'
import { existsSync, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { sqliteFile } from '../../src/api/store/sqlite.js'
import { startApp } from '../helpers/app.js'

const MB = 1024 * 1024
const BOUND = 16 * MB

t.test('rejected logins and long X-Forwarded-For keys keep the WAL under a bound; counters are pruned', async (t) => {
  const { url, store, dataDir } = await startApp(t, {
    TRUST_PROXY: 'true',
    LOGIN_RATE_LIMIT_IP: '3',
    LOGIN_RATE_LIMIT_USER: '0',
    LOGIN_RATE_LIMIT_WINDOW: '1s',
  })
  const wal = `${sqliteFile(dataDir)}-wal`
  let peak = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      if (existsSync(wal)) peak = Math.max(peak, statSync(wal).size)
      await sleep(10)
    }
  })()

  const statuses = new Map<number, number>()
  const send = async (xff: string) => {
    // An empty body: the per-IP limit counts it before validation answers 400, so no password
    // hash is spent, yet every request is one rate-limit write.
    const r = await fetch(`${url}/api/token/`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': xff }, body: '{}' })
    await r.arrayBuffer()
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
  }
  const flood = async (n: number, xff: (i: number) => string) => {
    let next = 0
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < n) await send(xff(next++))
      }),
    )
  }
  // 3000 distinct 8 KB addresses (a new counter each), then 3000 rejections of one address.
  const long = (i: number) => `10.${(i >> 8) & 255}.${i & 255}.1${'0'.repeat(8000)}${i}`
  await flood(3000, long)
  await flood(3000, () => '203.0.113.9')
  sampling = false
  await sampler
  t.comment(`WAL peak ${(peak / MB).toFixed(1)} MB; answers ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok((statuses.get(429) ?? 0) > 2900, 'the flood of one address was throttled')
  t.ok(peak > 0, 'the WAL was sampled')
  t.ok(peak <= BOUND, `WAL peak ${(peak / MB).toFixed(1)} MB ≤ ${BOUND / MB} MB`)

  const longest = store.db.prepare<[], { n: number }>('SELECT max(length(key)) AS n FROM rate_limits').get()!.n
  t.ok(longest <= 128, `rate-limit keys are bounded (longest ${longest})`)
  const rows = () => store.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM rate_limits').get()!.n
  t.ok(rows() > 0, 'counters of recent windows are there')
  // Windows of 1 s have ended; the maintenance timer (every 5 s) prunes them.
  let left = rows()
  for (const until = Date.now() + 12_000; left > 0 && Date.now() < until; await sleep(250)) left = rows()
  t.equal(left, 0, 'expired counters pruned without any CLI run')
  // And the file shrinks back once checkpointed: journal_size_limit.
  await store.maintain(Date.now())
  await fetch(`${url}/api/token/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => r.arrayBuffer())
  t.ok(statSync(wal).size <= 4 * MB, `WAL truncated to journal_size_limit (${(statSync(wal).size / MB).toFixed(1)} MB)`)
})
