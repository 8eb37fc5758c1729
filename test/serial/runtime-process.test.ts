// One compiled production process (`node dist/api/server.js`, what each pm2 worker runs) and its
// graceful stop: requests in flight when SIGINT arrives complete with 200, new connections are
// refused, the process exits 0 well before pm2's kill_timeout.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { hashPasswordScrypt } from '../../src/api/auth/passwords.js'
import { ROOT } from '../../src/lib/build.js'
import { freePort, isAlive, processTree, startService, waitForHttp } from '../../src/lib/process.js'
import { startProductionProcess } from '../../src/bench/stacks/api.js'
import { Connection, PASSWORD, SIGNING_KEY, seedUser, staged } from '../helpers/runtime.js'

const copy = await staged(t, 'dist')
await seedUser(copy.dir, 'alice')
// A legacy scrypt hash at its real cost: each of bob's logins spends 100+ ms in scrypt (then in
// the argon2id rehash), long enough to be in flight when the signal arrives.
await seedUser(copy.dir, 'bob', (p) => hashPasswordScrypt(p))
const logFile = join(copy.dir, 'server.log')

t.test('a production process: JSON logs, no worker header by default, answers the contract', async (t) => {
  const stack = await startProductionProcess({ cwd: copy.dir, logFile, env: { JWT_SIGNING_KEY: SIGNING_KEY, DATA_DIR: join(copy.dir, 'data') } })
  t.teardown(() => stack.stop())
  t.same(await stack.pids(), [stack.pid], 'one process')
  const c = new Connection(stack.url)
  t.teardown(() => c.close())
  const pair = await c.request('/api/token/', { json: { username: 'alice', password: PASSWORD } })
  t.equal(pair.status, 200)
  const me = await c.request('/api/me/', { token: pair.body.access })
  t.equal(me.status, 200)
  t.equal(me.body.username, 'alice')
  t.equal(me.headers['x-runway-worker'], undefined, 'WORKER_HEADER=auto is off in production')
  const lines = readFileSync(logFile, 'utf8').trim().split('\n')
  t.ok(lines.length > 0 && lines.every((l) => typeof JSON.parse(l).level === 'number'), 'every log line is pino JSON')
  t.notOk(readFileSync(logFile, 'utf8').includes('development server'), 'no dev banner')
})

t.test('graceful stop: requests in flight at SIGINT complete with 200', async (t) => {
  const stack = await startProductionProcess({
    cwd: copy.dir,
    logFile,
    env: { JWT_SIGNING_KEY: SIGNING_KEY, DATA_DIR: join(copy.dir, 'data'), LOGIN_RATE_LIMIT_USER: '0' },
  })
  t.teardown(() => stack.stop())
  // An idle keep-alive connection too: it must not hold the exit for KEEP_ALIVE_TIMEOUT (65 s).
  const idle = new Connection(stack.url)
  t.teardown(() => idle.close())
  t.equal((await idle.request('/healthz')).status, 200)

  const conns = Array.from({ length: 4 }, () => new Connection(stack.url))
  t.teardown(() => {
    for (const c of conns) c.close()
  })
  const logins = conns.map((c) => c.request('/api/token/', { json: { username: 'bob', password: PASSWORD } }).then((a) => ({ ...a, at: Date.now() })))
  await sleep(25)
  const signalled = Date.now()
  process.kill(stack.pid, 'SIGINT')
  await sleep(50)
  await t.rejects(new Connection(stack.url).request('/healthz'), { code: 'ECONNREFUSED' }, 'new connections are refused at once')
  const answers = await Promise.all(logins)
  t.ok(
    answers.every((a) => a.at > signalled),
    'all four answers came after the signal: they were in flight',
  )
  t.same(
    answers.map((a) => a.status),
    [200, 200, 200, 200],
    'all four logins in flight completed with 200',
  )
  t.ok(
    answers.every((a) => typeof a.body.access === 'string' && typeof a.body.refresh === 'string'),
    'with their tokens',
  )
  t.ok(
    answers.every((a) => a.headers.connection === 'close'),
    'each told to close its connection',
  )
  const code = await stack.exited
  const took = Date.now() - signalled
  t.equal(code, 0, 'exit code 0')
  t.ok(took < 5000, `exited ${took} ms after SIGINT: idle sockets closed, well within SHUTDOWN_GRACE and kill_timeout`)
  const last = readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { msg: string; signal?: string })
  t.ok(
    last.some((l) => l.msg === 'shutting down gracefully' && l.signal === 'SIGINT'),
    'logged why it stopped',
  )
})

t.test('npm run start:foreground: pm2-runtime stays in the foreground, and SIGINT stops it with its workers', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const [bin, ...args] = pkg.scripts['start:foreground']!.split(' ')
  t.equal(bin, 'pm2-runtime')
  const pm2Home = mkdtempSync(join(tmpdir(), 'runway-pm2rt-'))
  t.teardown(() => rmSync(pm2Home, { recursive: true, force: true }))
  const port = await freePort()
  const service = startService({
    name: 'pm2-runtime',
    command: process.execPath,
    args: [createRequire(import.meta.url).resolve('pm2/bin/pm2-runtime'), ...args],
    cwd: copy.dir,
    env: {
      ...process.env,
      PM2_HOME: pm2Home,
      HOST: '127.0.0.1',
      PORT: String(port),
      WEB_CONCURRENCY: '1',
      JWT_SIGNING_KEY: SIGNING_KEY,
      DATA_DIR: join(copy.dir, 'data'),
      RUNWAY_LOG_DIR: join(pm2Home, 'logs'),
    },
    logFile: join(pm2Home, 'runtime.log'),
  })
  t.teardown(() => service.stop())
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, { service, timeoutMs: 30_000 })
  const tree = processTree(service.pid)
  const workers = tree.filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dist/api/server.js'))
  t.equal(workers.length, 1, 'one worker, a child of the foreground pm2-runtime process')
  process.kill(service.pid, 'SIGINT')
  const code = await service.exited
  t.equal(code, 0, 'pm2-runtime exits 0 on SIGINT')
  await sleep(200)
  t.notOk(workers.some(isAlive), 'and its worker is gone')
})
