// PgBouncer (Debian's package) for one test: started as the postgres user (it refuses root) on a
// port the OS picked, in front of a private PostgreSQL cluster, every database name passed
// through (`* =`), transaction pooling by default: the mode docs/operations.md recommends for many hosts.
// Stopped by PID at teardown, also when the test failed or this process dies.
import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { freePort, isAlive, killOnExit, startService } from '../../src/lib/process.js'
import type { PrivatePostgres } from './private-postgres.js'

export const PGBOUNCER_BIN = process.env.TEST_PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer'
const run = promisify(execFile)

export interface PgBouncer {
  port: number
  url(db?: string): string
  logFile: string
}

export function pgbouncerProblem(): string | null {
  return existsSync(PGBOUNCER_BIN) ? null : `${PGBOUNCER_BIN} not found (apt-get install pgbouncer, or set TEST_PGBOUNCER_BIN)`
}

export async function startPgBouncer(
  t: Test,
  target: PrivatePostgres,
  o: { poolMode?: 'transaction' | 'session'; poolSize?: number } = {},
): Promise<PgBouncer> {
  const dir = mkdtempSync(join(tmpdir(), 'runway-pgbouncer-'))
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim())
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim())
  chownSync(dir, uid, gid)
  const logFile = join(dir, 'pgbouncer.log')
  const ini = join(dir, 'pgbouncer.ini')
  const users = join(dir, 'userlist.txt')
  writeFileSync(users, '"postgres" ""\n')
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    writeFileSync(
      ini,
      [
        '[databases]',
        `* = host=127.0.0.1 port=${target.port}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${users}`,
        `pool_mode = ${o.poolMode ?? 'transaction'}`,
        'max_client_conn = 500',
        `default_pool_size = ${o.poolSize ?? 10}`,
        `logfile = ${logFile}`,
        `pidfile = ${join(dir, 'pgbouncer.pid')}`,
        '',
      ].join('\n'),
    )
    for (const f of [ini, users]) chownSync(f, uid, gid)
    // In the foreground (no -d): our child, in its own process group, stopped by PID.
    const service = startService({
      name: 'pgbouncer',
      command: 'runuser',
      args: ['-u', 'postgres', '--', PGBOUNCER_BIN, ini],
      logFile: join(dir, 'stdout.log'),
    })
    const pidOf = () => {
      try {
        return Number(readFileSync(join(dir, 'pgbouncer.pid'), 'utf8').trim()) || 0
      } catch {
        return 0
      }
    }
    const forget = killOnExit(() => [pidOf()].filter((p) => p > 0))
    t.teardown(async () => {
      const pid = pidOf()
      await service.stop(3000)
      if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL')
      forget()
      rmSync(dir, { recursive: true, force: true })
    })
    // Ready once it accepts a query through it.
    const deadline = Date.now() + 10_000
    let last = ''
    while (Date.now() < deadline) {
      if (service.child.exitCode !== null) break
      try {
        await target.query('SELECT 1') // the cluster itself is up
        const pg = await import('pg')
        const c = new pg.default.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 1000 })
        c.on('error', () => {})
        await c.connect()
        await c.query('SELECT 1')
        await c.end()
        return { port, url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`, logFile }
      } catch (err) {
        last = (err as Error).message
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''
    await service.stop(1000)
    if (attempt < 3 && /Address already in use/.test(log)) continue
    throw new Error(`pgbouncer did not start: ${last} | ${log.trim().split('\n').slice(-3).join(' | ')}`)
  }
}
