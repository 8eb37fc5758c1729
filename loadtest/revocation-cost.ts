// Benchmark (not a test): what the per-request revocation check costs on GET /api/me/.
// Runs the same compiled-in-memory app twice as separate processes — with the check, and with
// it switched off (no poller, no lookup) — and loads each alternately with autocannon, so both
// see the same machine conditions. 10,000 revoked sessions sit in the store, as after a busy day.
//   npm run bench:revocation -- [--rounds 3] [--duration 5] [--connections 50]
import autocannon from 'autocannon'
import { fork } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../src/app.js'
import { hashPassword } from '../src/auth/passwords.js'
import { loadConfig } from '../src/config.js'
import { SqliteStore } from '../src/store/sqlite.js'

const KEY = 'bench-signing-key-0123456789-0123456789-abcdef'

async function serve(dataDir: string, check: boolean) {
  const config = loadConfig({ NODE_ENV: 'production', JWT_SIGNING_KEY: KEY, DATA_DIR: dataDir, LOG_LEVEL: 'warn', PORT: '0' })
  const app = await buildApp(config)
  await app.ready()
  if (!check) {
    app.revocations.stop()
    app.revocations.isRevoked = () => false
  }
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  process.send!(address)
}

async function main() {
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' }, help: { type: 'boolean' } },
  })
  if (values.help) {
    console.log('Usage: npm run bench:revocation -- [--rounds N] [--duration SECONDS] [--connections N]')
    return
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-bench-'))
  const store = SqliteStore.open(dataDir)
  await store.migrate()
  const user = await store.createUser('bench', await hashPassword('bench-password'))
  const now = Math.floor(Date.now() / 1000)
  store.db.transaction(() => {
    for (let i = 0; i < 10_000; i++) {
      store.db.prepare('INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?)').run(`revoked-${i}`, user.id, now, now + 86400, now)
    }
    store.db.prepare("UPDATE counters SET value = value + 1 WHERE name = 'revocations'").run()
  })()
  await store.close()

  const children = [true, false].map((check) => fork(import.meta.filename, ['--serve', dataDir, String(check)], { stdio: 'inherit' }))
  try {
    const urls = await Promise.all(children.map((c) => new Promise<string>((resolve) => c.once('message', (m) => resolve(String(m))))))
    const login = await fetch(`${urls[0]}/api/token/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bench', password: 'bench-password' }) })
    const { access } = (await login.json()) as { access: string }
    const run = (url: string, duration: number) =>
      autocannon({ url: `${url}/api/me/`, headers: { authorization: `Bearer ${access}` }, connections: Number(values.connections), duration })
    for (const url of urls) await run(url, 2) // warm-up, not counted
    const rps: [number[], number[]] = [[], []]
    for (let i = 0; i < Number(values.rounds); i++) {
      for (const [k, url] of urls.entries()) {
        const r = await run(url, Number(values.duration))
        if (r.errors || r.non2xx || r.timeouts) throw new Error(`round ${i}: ${r.errors} errors, ${r.non2xx} non-2xx, ${r.timeouts} timeouts`)
        rps[k as 0 | 1].push(r.requests.average)
        process.stderr.write(`round ${i + 1}/${values.rounds} ${k === 0 ? 'with check   ' : 'without check'}: ${r.requests.average.toFixed(0)} req/s\n`)
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const [withCheck, without] = [median(rps[0]), median(rps[1])]
    console.log(JSON.stringify({ withCheck, without, ratio: withCheck / without, cost: `${((1 - withCheck / without) * 100).toFixed(1)}%` }))
  } finally {
    for (const c of children) c.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3]!, process.argv[4] === 'true')
else await main()
