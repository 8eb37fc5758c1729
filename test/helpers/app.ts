// Builds the real app on a real listening socket (127.0.0.1, port 0) over a fresh SQLite file.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../src/api/app.js'
import { loadConfig, type Config } from '../../src/api/config.js'
import { hashPassword, type Argon2Params, type ScryptParams } from '../../src/api/auth/passwords.js'
import { SqliteStore } from '../../src/api/store/sqlite.js'
import { listenOnUnixSocket } from '../../src/api/unix-listener.js'
import { socketPath } from '../../src/bench/loadtest/stages.js'
import type { Store } from '../../src/api/store/store.js'

export const SIGNING_KEY = 'test-signing-key-that-is-long-enough-0123456789'
export const PASSWORD = 'correct-horse-battery'

export interface TestApp {
  app: FastifyInstance
  url: string
  /** The Unix socket it also listens on (startApp's `socket` option). */
  socket?: string
  config: Config
  store: SqliteStore
  dataDir: string
  logs: string[]
  close(): Promise<void>
}

export function testConfig(env: Record<string, string> = {}, dataDir?: string): Config {
  // Load shedding off unless a test is about it (test/api/plugins/security.test.ts sets it): it
  // answers the machine's load, and on a busy CI host a test app would shed its first login.
  return loadConfig({
    NODE_ENV: 'test',
    JWT_SIGNING_KEY: SIGNING_KEY,
    LOG_LEVEL: 'info',
    DATA_DIR: dataDir ?? '/nonexistent',
    MAX_EVENT_LOOP_DELAY: '0',
    ...(env.NODE_ENV === 'production' ? {} : FIXTURE_ARGON2_ENV),
    ...env,
  })
}

/**
 * Cheap argon2id for fixtures and the test apps (NODE_ENV=test may go below OWASP's floor;
 * production refuses to): fixture users are already at the apps' cost, so logins do not rehash.
 * The timing and upgrade tests set the real cost explicitly.
 */
export const FIXTURE_ARGON2: Argon2Params = { memoryKiB: 256, iterations: 1, parallelism: 1 }
export const FIXTURE_ARGON2_ENV = { ARGON2_MEMORY_COST: '256', ARGON2_TIME_COST: '1', ARGON2_PARALLELISM: '1' }
/** Fast legacy scrypt, for the tests of hashes made before argon2id. */
export const FIXTURE_SCRYPT: ScryptParams = { N: 2 ** 10, r: 8, p: 1 }

/**
 * `o.dataDir`: use this existing data directory (another app instance's, or the CLI's) instead of a
 * fresh one; it is then left in place for its owner to remove.
 */
/** `socket`: also listen on a Unix socket (UNIX_SOCKET), at TestApp.socket. */
export async function startApp(t: Test, env: Record<string, string> = {}, o: { dataDir?: string; socket?: boolean } = {}): Promise<TestApp> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'runway-test-'))
  const config = testConfig(env, dataDir)
  const store = SqliteStore.open(dataDir)
  const logs: string[] = []
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk))
      cb()
    },
  })
  const app = await buildApp(config, { store, logStream })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  // In a directory nginx's workers (another user) can pass through, as the benchmarked stacks use.
  const socket = o.socket ? socketPath() : undefined
  const door = socket ? await listenOnUnixSocket(app.server, socket.path) : undefined
  const close = async () => {
    door?.close()
    socket?.remove()
    await app.close()
    await store.close()
    if (!o.dataDir) rmSync(dataDir, { recursive: true, force: true })
  }
  t.teardown(close)
  return { app, url, socket: socket?.path, config, store, dataDir, logs, close }
}

export async function createUser(store: Store, username = 'alice', password = PASSWORD) {
  return store.createUser(username, await hashPassword(password, FIXTURE_ARGON2))
}

export interface Reply {
  status: number
  headers: Headers
  body: any
  text: string
}

/** fetch with JSON in and out; `body` is parsed JSON (or undefined). */
export async function call(
  url: string,
  path: string,
  init: {
    method?: string
    json?: unknown
    form?: Record<string, string>
    raw?: string
    contentType?: string
    token?: string
    headers?: Record<string, string>
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...init.headers }
  let body: string | undefined
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(init.json)
  } else if (init.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(init.form).toString()
  } else if (init.raw !== undefined) {
    headers['content-type'] = init.contentType ?? 'application/json'
    body = init.raw
  }
  if (init.token) headers.authorization = `Bearer ${init.token}`
  const res = await fetch(url + path, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  return { status: res.status, headers: res.headers, body: parsed, text }
}

export async function login(url: string, username = 'alice', password = PASSWORD): Promise<{ access: string; refresh: string }> {
  const r = await call(url, '/api/token/', { json: { username, password } })
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`)
  return r.body
}
