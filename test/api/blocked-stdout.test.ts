// A production process whose stdout is a pipe nobody reads (a stuck supervisor or log
// collector): logging must not stop the API. The process keeps answering, drops the lines that do
// not fit in a bounded buffer, says how many once stdout is read again, and still exits on SIGTERM.
import t, { type Test } from 'tap'
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { mkdtempSync, rmSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, killGroup, waitForHttp } from '../../src/lib/process.js'
import { ROOT } from '../helpers/faults.js'
import { SIGNING_KEY } from '../helpers/app.js'

type Child = ChildProcessByStdio<null, Readable, Readable>

/** The API as a child process whose stdout is a pipe this test does not read until it says so. */
async function start(t: Test): Promise<{ child: Child; url: string; exited: Promise<number | null> }> {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-stdout-'))
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'api', 'server.ts')], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: tmpdir(),
      NODE_ENV: 'production',
      ENV_FILE: '/nonexistent',
      JWT_SIGNING_KEY: SIGNING_KEY,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_REQUESTS: 'true',
      SHUTDOWN_GRACE: '3s',
    },
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) killGroup(child.pid!, 'SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  })
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/readyz`, { timeoutMs: 60_000 }).catch((err: Error) => {
    throw new Error(`${err.message}; stderr: ${stderr}`)
  })
  return { child, url, exited }
}

/** In each request's log line: 1,000 requests make ~2.4 MB of log. */
const PAD = 'x'.repeat(2000)

/** `n` requests one after another; the statuses seen, with how many of each. */
async function requests(url: string, n: number): Promise<Record<number, number>> {
  const seen: Record<number, number> = {}
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/healthz?pad=${PAD}`, { signal: AbortSignal.timeout(10_000) })
    await res.arrayBuffer()
    seen[res.status] = (seen[res.status] ?? 0) + 1
  }
  return seen
}

/** Resolves with the first whole stdout line that `match` accepts, reading from now on. */
function lineMatching(stream: Readable, match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    let rest = ''
    stream.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n')
      rest = lines.pop() ?? ''
      for (const text of lines) {
        try {
          const line = JSON.parse(text) as Record<string, unknown>
          if (match(line)) resolve(line)
        } catch {
          // a line cut by a drop, or not JSON: not the one looked for
        }
      }
    })
  })
}

t.test('stdout never read: requests are answered, lines beyond the buffer are dropped and counted once stdout is read again', async (t) => {
  const { child, url, exited } = await start(t)
  // Well past the pipe (64 KiB) and the logger's buffer (1 MiB).
  t.same(await requests(url, 1000), { 200: 1000 }, 'every request answered while nobody reads the log')
  const warning = lineMatching(child.stdout, (l) => typeof l.droppedLogLines === 'number')
  child.stdout.resume()
  await requests(url, 1) // a line written after stdout drains brings the count out
  const line = await Promise.race([warning, sleep(15_000).then(() => null)])
  t.ok(line, 'a warning line says how many log lines were dropped')
  t.ok(line && (line.droppedLogLines as number) > 0, `dropped count: ${String(line?.droppedLogLines)}`)
  t.equal(line?.level, 40, 'logged as a warning')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exits cleanly on SIGTERM')
})

t.test('stdout never read: SIGTERM still ends the process within its grace', async (t) => {
  const { child, url, exited } = await start(t)
  t.same(await requests(url, 1000), { 200: 1000 })
  const started = Date.now()
  child.kill('SIGTERM')
  const code = await Promise.race([exited, sleep(15_000).then(() => 'still running 15 s after SIGTERM')])
  t.equal(code, 0, 'exits with 0 although its last log lines cannot be written')
  t.ok(Date.now() - started < 15_000, `exited in ${Date.now() - started} ms`)
})
