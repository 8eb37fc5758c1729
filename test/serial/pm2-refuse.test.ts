// A corrupt database under pm2: each worker refuses to start with one line and exit code 78, and
// pm2 (stop_exit_codes) leaves it stopped instead of crash-looping. Real pm2, compiled dist/,
// a real corrupt file.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { sqliteFile } from '../../src/api/store/sqlite.js'
import { freePort, isAlive, killGroup } from '../../src/lib/process.js'
import { corruptTable } from '../helpers/faults.js'
import { seedUser, staged, stackEnv } from '../helpers/runtime.js'

const PM2_BIN = createRequire(import.meta.url).resolve('pm2/bin/pm2')

t.test('a corrupt database under pm2: exit 78, one line, no restart loop', async (t) => {
  const copy = await staged(t, 'dist')
  const dir = mkdtempSync(join(tmpdir(), 'runway-pm2-refuse-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await seedUser(dir)
  const file = sqliteFile(join(dir, 'data'))
  corruptTable(file, 'users')
  const pm2Home = join(dir, 'pm2')
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...stackEnv(dir),
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    PM2_HOME: pm2Home,
    RUNWAY_LOG_DIR: join(dir, 'logs'),
    WEB_CONCURRENCY: '2',
  }
  delete env.NODE_OPTIONS
  const pm2 = (args: string[]) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [PM2_BIN, ...args], { cwd: copy.dir, env, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      )
    })
  t.teardown(async () => {
    const daemon = Number(readFileSync(join(pm2Home, 'pm2.pid'), 'utf8').trim())
    await pm2(['kill'])
    if (daemon && isAlive(daemon)) killGroup(daemon, 'SIGKILL')
  })

  // pm2 itself, as the deploy tooling and `runway start` drive it (`runway start`'s own failure
  // report is test/serial/runtime-start-reload's); this is about pm2 not restarting.
  const start = await pm2(['start', join(copy.dir, 'ecosystem.config.js'), '--env', 'production'])
  t.comment(`pm2 start exited ${start.code}`)
  const jlist = async () =>
    (
      JSON.parse((await pm2(['jlist'])).out.trim().split('\n').pop() || '[]') as { pm2_env: { status: string; restart_time: number; exit_code?: number } }[]
    ).map((p) => p.pm2_env)
  await sleep(4000)
  const first = await jlist()
  await sleep(6000)
  const later = await jlist()
  t.equal(later.length, 2, 'two workers')
  // pm2 shows "waiting restart" for a stop exit code when exp_backoff_restart_delay is set (its
  // handleExit sets that status before deciding not to restart); no restart is ever scheduled.
  t.ok(
    later.every((w) => w.status !== 'online'),
    `no worker online: ${later.map((w) => w.status).join(', ')}`,
  )
  t.same(
    later.map((w) => w.exit_code),
    [78, 78],
    'both exited 78',
  )
  t.same(
    later.map((w) => w.restart_time),
    first.map((w) => w.restart_time),
    'no restarts while we watched',
  )
  t.ok(
    later.every((w) => w.restart_time === 0),
    'never restarted',
  )
  const errLog = readdirSync(join(dir, 'logs'))
    .filter((f) => f.includes('err'))
    .map((f) => readFileSync(join(dir, 'logs', f), 'utf8'))
    .join('')
  const lines = errLog.trim().split('\n').filter(Boolean)
  t.ok(
    lines.length >= 1 && lines.every((l) => l.startsWith(`runway: cannot start: SQLite database ${file} is corrupt`)),
    `the error log holds the one line per worker:\n${errLog}`,
  )
  t.match(lines[0], /; fix: restore it from a backup/)
})
