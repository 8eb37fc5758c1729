// The dev server exactly as `npm run dev` runs it (tsx watch, NODE_ENV=development, pretty logs),
// over a private copy of src/: it prints the runserver-style warning, answers the same contract
// as production, and restarts with the new code when a source file changes. The edit happens in
// the copy, never in the checkout.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startDevServer } from '../../src/bench/stacks/api.js'
import { Connection, PASSWORD, seedUser, staged } from '../helpers/runtime.js'

const copy = await staged(t, 'src')
await seedUser(copy.dir, 'alice')
const logFile = join(copy.dir, 'dev.log')
// No JWT_SIGNING_KEY: outside production the dev server makes up a per-process one.
const stack = await startDevServer({ cwd: copy.dir, logFile, env: { DATA_DIR: join(copy.dir, 'data') } })
t.teardown(() => stack.stop())

t.test('it says it is a development server, and logs for humans', async (t) => {
  const log = readFileSync(logFile, 'utf8')
  t.match(log, `Starting development server at ${stack.url}/`)
  t.match(log, 'WARNING: This is a development server. Do not use it in a production setting.')
  t.match(log, 'npm run build && npm start')
  const c = new Connection(stack.url)
  await c.request('/healthz')
  c.close()
  await sleep(300) // pino-pretty writes from a worker thread
  const lines = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('request completed'))
  t.ok(lines.length > 0, 'a line per request (LOG_REQUESTS=auto is on in development)')
  t.ok(
    lines.every((l) => !l.trimStart().startsWith('{')),
    'pretty, not JSON',
  )
})

t.test('it answers the same contract', async (t) => {
  const c = new Connection(stack.url)
  t.teardown(() => c.close())
  const pair = await c.request('/api/token/', { json: { username: 'alice', password: PASSWORD } })
  t.equal(pair.status, 200)
  const me = await c.request('/api/me/', { token: pair.body.access })
  t.equal(me.status, 200)
  t.same(me.body, { id: 1, username: 'alice' })
  const anon = await c.request('/api/me/')
  t.equal(anon.status, 401)
  t.same(anon.body, { detail: 'Authentication credentials were not provided.' })
  const refreshed = await c.request('/api/token/refresh/', { json: { refresh: pair.body.refresh } })
  t.equal(refreshed.status, 200)
  const reused = await c.request('/api/token/refresh/', { json: { refresh: pair.body.refresh } })
  t.same(reused.body, { detail: 'Token is blacklisted', code: 'token_not_valid' })
  t.equal((await c.request('/readyz')).status, 200)
})

t.test('it restarts with the new code after a source file changes', async (t) => {
  const c = new Connection(stack.url)
  const before = await c.request('/healthz')
  c.close()
  t.same(before.body, { status: 'ok' })
  const pidBefore = before.headers['x-runway-worker']
  t.ok((await stack.pids()).map(String).includes(String(pidBefore)), 'x-runway-worker is the server process id (no pm2 here)')

  const file = join(copy.dir, 'src', 'api', 'routes', 'health.ts')
  const source = readFileSync(file, 'utf8')
  t.ok(source.includes("async () => ({ status: 'ok' })"), 'the copy has the liveness handler to edit')
  writeFileSync(file, source.replace("async () => ({ status: 'ok' })", "async () => ({ status: 'edited' })"))
  const edited = Date.now()

  let after: Awaited<ReturnType<Connection['request']>> | undefined
  while (Date.now() - edited < 30_000) {
    const probe = new Connection(stack.url)
    after = await probe.request('/healthz').catch(() => undefined)
    probe.close()
    if (after?.body?.status === 'edited') break
    await sleep(100)
  }
  t.same(after?.body, { status: 'edited' }, `the new code answers (${Date.now() - edited} ms after the edit)`)
  t.not(after?.headers['x-runway-worker'], pidBefore, 'from a new server process')
  const pids = (await stack.pids()).map(String)
  t.equal(pids[0], String(stack.pid), 'the same watcher')
  t.ok(pids.includes(String(after?.headers['x-runway-worker'])), 'the new server process is one of the stack processes (watcher, server, esbuild)')
  t.notOk(pids.includes(String(pidBefore)), 'the old one is gone')
  t.equal(readFileSync(logFile, 'utf8').split('Starting development server').length - 1, 2, 'the banner again on restart')
})
