// A private PostgreSQL cluster: initdb into a temp dir, started with pg_ctl as the postgres user
// on a port the OS picked, its unix socket in the same temp dir. Tests stop it (-m fast), kill -9
// it, SIGSTOP/SIGCONT it or fill its connections (never a shared instance); benchmarks get a
// server of their own. destroy() stops it by PID (the postmaster and every process below it) and
// removes the temp dir; so does the exit of this process.
import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { freePort, isAlive, killOnExit, processTree } from '../../lib/process.js'

export const PG_BIN = process.env.RUNWAY_PG_BIN ?? process.env.TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin'
const run = promisify(execFile)

export interface PrivatePostgres {
  port: number
  /** postgres://postgres@127.0.0.1:<port>/<db> (trust auth). */
  url(db?: string): string
  dir: string
  dataDir: string
  socketDir: string
  logFile: string
  /** The postmaster's PID (0 when not running). */
  pid(): number
  /** The postmaster and every backend below it. */
  pids(): number[]
  start(): Promise<void>
  /** `pg_ctl stop -m fast`: backends are terminated (57P01), the server shuts down cleanly. */
  stopFast(): Promise<void>
  /** SIGKILL to the postmaster and all its children: a crash, nothing cleaned up. */
  kill9(): Promise<void>
  /** SIGSTOP to the postmaster and every backend: a hung server (TCP still accepts). */
  pause(): void
  resume(): void
  /** One statement on a fresh superuser connection over the unix socket. */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], db?: string): Promise<T[]>
  createDatabase(name: string): Promise<string>
  destroy(): Promise<void>
}

export interface PrivatePostgresOptions {
  maxConnections?: number
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>
}

/** Why a private cluster cannot run here, or null. */
export function privatePostgresProblem(): string | null {
  if (!existsSync(join(PG_BIN, 'initdb'))) return `${PG_BIN}/initdb not found (apt-get install postgresql-15, or set RUNWAY_PG_BIN)`
  if (userInfo().uid !== 0) return 'private PostgreSQL clusters are started as the postgres user via runuser: run as root'
  return null
}

const asPostgres = (cmd: string, args: string[], timeout = 60_000) => run('runuser', ['-u', 'postgres', '--', join(PG_BIN, cmd), ...args], { timeout })

export async function startPrivatePostgres(o: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'runway-pg-'))
  const dataDir = join(dir, 'data')
  const socketDir = join(dir, 'sock')
  const logFile = join(dir, 'postgres.log')
  mkdirSync(socketDir)
  const pw = await run('id', ['-u', 'postgres'])
  const gid = await run('id', ['-g', 'postgres'])
  for (const p of [dir, socketDir]) chownSync(p, Number(pw.stdout.trim()), Number(gid.stdout.trim()))

  let port = 0
  let known: number[] = []
  const pidFile = join(dataDir, 'postmaster.pid')
  const pid = () => {
    try {
      const n = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
      return n > 0 && isAlive(n) ? n : 0
    } catch {
      return 0
    }
  }
  const pids = () => {
    const p = pid()
    const tree = p ? processTree(p) : []
    known = [...new Set([...known, ...tree])]
    return tree
  }
  const killAll = () => {
    for (const p of [...new Set([...pids(), ...known])]) {
      try {
        process.kill(p, 'SIGCONT')
        process.kill(p, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
  const forget = killOnExit(() => {
    killAll()
    return []
  })

  const start = async () => {
    const settings = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: socketDir,
      max_connections: String(o.maxConnections ?? 40),
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: '16MB',
      ...o.settings,
    }
    const opts = Object.entries(settings)
      .map(([k, v]) => `-c ${k}=${v}`)
      .join(' ')
    // A port taken between freePort() and the bind (TIME-WAIT, another test): pick another.
    for (let attempt = 1; ; attempt++) {
      if (!port || attempt > 1) port = await freePort()
      try {
        await asPostgres('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', `-p ${port} ${opts}`, 'start'])
        pids()
        return
      } catch (err) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''
        if (attempt < 3 && /could not bind|Address already in use/.test(log)) continue
        throw new Error(`private PostgreSQL did not start: ${(err as Error).message.split('\n')[0]} | ${log.trim().split('\n').slice(-3).join(' | ')}`)
      }
    }
  }

  const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], db = 'postgres') => {
    const client = new pg.Client({ host: socketDir, port, user: 'postgres', database: db })
    client.on('error', () => {})
    await client.connect()
    try {
      return (await client.query<T>(sql, params)).rows
    } finally {
      await client.end().catch(() => {})
    }
  }

  const destroy = async () => {
    killAll()
    for (let i = 0; i < 50 && known.some(isAlive); i++) await new Promise((r) => setTimeout(r, 50))
    forget()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'], 120_000)
    await start()
  } catch (err) {
    await destroy()
    throw err
  }

  const signalAll = (sig: NodeJS.Signals) => {
    for (const p of pids()) {
      try {
        process.kill(p, sig)
      } catch {
        // exited meanwhile
      }
    }
  }

  return {
    get port() {
      return port
    },
    url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`,
    dir,
    dataDir,
    socketDir,
    logFile,
    pid,
    pids,
    start,
    stopFast: async () => {
      await asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'])
    },
    kill9: async () => {
      killAll()
      for (let i = 0; i < 50 && known.some(isAlive); i++) await new Promise((r) => setTimeout(r, 50))
      known = []
      rmSync(pidFile, { force: true })
    },
    pause: () => signalAll('SIGSTOP'),
    resume: () => signalAll('SIGCONT'),
    query,
    createDatabase: async (name: string) => {
      await query(`CREATE DATABASE ${name}`)
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
    destroy,
  }
}
