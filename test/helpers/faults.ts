// Real faults for store tests: a small tmpfs that can be filled (a real "no space left on
// device"), page-level corruption of a SQLite file, and the API as a child process (start-time
// refusals, resource limits), each undone at teardown.
import Database from 'better-sqlite3'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { ROOT } from '../../src/lib/build.js'
import { freePort, startService, waitForHttp, type Service } from '../../src/lib/process.js'
import { SIGNING_KEY } from './app.js'

/**
 * A tmpfs of `sizeKb` mounted on a fresh directory (needs root), unmounted at teardown. Returns
 * undefined when it cannot be mounted: the caller fails under CI=true and skips with the reason
 * otherwise.
 */
export function smallDisk(t: Test, sizeKb: number): { dir: string; fill(): void; free(): void } | { problem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'runway-disk-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    return { problem: `cannot mount a tmpfs (needs root): ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}` }
  }
  t.teardown(() => {
    // Lazy: a handle the app still holds must not leave the mount behind.
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' })
    } catch {}
    rmSync(dir, { recursive: true, force: true })
  })
  const filler = join(dir, 'filler')
  return {
    dir,
    // dd stops at ENOSPC (and exits non-zero there): the disk is then full to the last block.
    fill: () => void spawnSyncQuiet('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k']),
    free: () => rmSync(filler, { force: true }),
  }
}

function spawnSyncQuiet(cmd: string, args: string[]) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
  } catch {}
}

/** Overwrites the first page of `table` (its b-tree root) in the file; returns an undo. */
export function corruptTable(file: string, table: string): () => void {
  const db = new Database(file)
  let offset: number
  let size: number
  try {
    // Pages still in the WAL would be read from there: move them into the main file first.
    db.pragma('wal_checkpoint(TRUNCATE)')
    size = db.pragma('page_size', { simple: true }) as number
    const { rootpage } = db.prepare<[string], { rootpage: number }>('SELECT rootpage FROM sqlite_master WHERE name = ?').get(table)!
    offset = (rootpage - 1) * size
  } finally {
    db.close()
  }
  const fd = openSync(file, 'r+')
  const original = Buffer.alloc(size)
  readSync(fd, original, 0, size, offset)
  writeSync(fd, Buffer.alloc(size, 0xa5), 0, size, offset)
  closeSync(fd)
  return () => {
    const fd = openSync(file, 'r+')
    writeSync(fd, original, 0, size, offset)
    closeSync(fd)
  }
}

/**
 * Commits a write through another connection: every other connection drops its page cache at
 * its next read, so a change made to the file behind SQLite's back is seen.
 */
export function touch(file: string): void {
  const db = new Database(file)
  try {
    db.pragma('busy_timeout = 2000')
    // rate_limits: a table the tests never corrupt.
    db.prepare("INSERT INTO rate_limits (key, count, reset_at) VALUES ('test-touch', 1, 0) ON CONFLICT (key) DO UPDATE SET count = count + 1").run()
  } finally {
    db.close()
  }
}

export interface ChildRun {
  code: number | null
  stdout: string
  stderr: string
}

export { ROOT }

/** What a test server process gets: no inherited settings, the test key, loopback; `env` wins. */
function serverEnv(port: number, env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmpdir(),
    NODE_ENV: 'test',
    ENV_FILE: '/nonexistent',
    JWT_SIGNING_KEY: SIGNING_KEY,
    HOST: '127.0.0.1',
    PORT: String(port),
    ...env,
  }
}

/** `node src/api/server.ts` (through tsx) with a test environment; resolves when it exits. */
export function runServer(env: Record<string, string>, o: { uid?: number; gid?: number; timeoutMs?: number } = {}): Promise<ChildRun> {
  return new Promise((resolve) => {
    // `env -u NODE_OPTIONS`: the test runner puts its own hooks there (they write files as the
    // child's user); the child is the server alone.
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, '--import', 'tsx', join(ROOT, 'src', 'api', 'server.ts')], {
      cwd: ROOT,
      env: serverEnv(0, env),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid } : {}),
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/**
 * The API as a real child process (`node src/api/server.ts` through tsx) on a free port, optionally
 * under `ulimit -n`, stopped (its whole process group) at teardown. Logs go to `logFile`.
 */
export async function startServerProcess(
  t: Test,
  env: Record<string, string>,
  o: { nofile?: number; logFile: string },
): Promise<{ url: string; service: Service }> {
  const port = await freePort()
  const node = `env -u NODE_OPTIONS ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(join(ROOT, 'src', 'api', 'server.ts'))}`
  const service = startService({
    name: 'api',
    command: 'sh',
    args: ['-c', `${o.nofile ? `ulimit -n ${o.nofile} && ` : ''}exec ${node}`],
    cwd: ROOT,
    env: serverEnv(port, env),
    logFile: o.logFile,
  })
  t.teardown(() => service.stop(5000))
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/readyz`, { service, timeoutMs: 60_000 })
  return { url, service }
}
