// Helpers for the runtime tests (dev server, production process, pm2 cluster): a private copy of
// the app, a seeded SQLite store, HTTP clients pinned to one pm2 worker, and a bounded autocannon
// load that mixes GET /api/me/ with refresh-token chains.
import autocannon from 'autocannon'
import { mkdirSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import type { Test } from 'tap'
import { hashPassword } from '../../src/api/auth/passwords.js'
import { SqliteStore } from '../../src/api/store/sqlite.js'
import { stageCopy, type StagedCopy } from '../../src/lib/build.js'
import { FIXTURE_ARGON2, PASSWORD, SIGNING_KEY } from './app.js'

export { PASSWORD, SIGNING_KEY }

/** A private copy of src/ or dist/ (built first when stale), removed at teardown. */
export async function staged(t: Test, what: 'src' | 'dist'): Promise<StagedCopy> {
  const copy = await stageCopy(what)
  t.teardown(() => copy.remove())
  return copy
}

/** Settings for a stack under test: its own data dir, a strong key, the worker header on. */
export function stackEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    JWT_SIGNING_KEY: SIGNING_KEY,
    DATA_DIR: join(dir, 'data'),
    WORKER_HEADER: 'true',
    LOG_LEVEL: 'info',
    // The load below logs in once per connection from 127.0.0.1; rate limits have their own test.
    LOGIN_RATE_LIMIT_IP: '0',
    LOGIN_RATE_LIMIT_USER: '0',
    ...extra,
  }
}

/** Creates a user in the stack's SQLite file (migrating it first, as the app would); cheap fixture hash by default. */
export async function seedUser(
  dir: string,
  username = 'alice',
  hash: (password: string) => Promise<string> = (p) => hashPassword(p, FIXTURE_ARGON2),
): Promise<void> {
  mkdirSync(join(dir, 'data'), { recursive: true })
  const store = SqliteStore.open(join(dir, 'data'))
  try {
    await store.migrate()
    await store.createUser(username, await hash(PASSWORD))
  } finally {
    await store.close()
  }
}

export interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: any
}

/**
 * One keep-alive connection (an http.Agent with a single socket): every request goes to the same
 * server process, which in a pm2 cluster means the same worker.
 */
export class Connection {
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  /** `socketPath`: connect to this Unix socket instead of the URL's host and port. */
  constructor(
    readonly url: string,
    readonly socketPath?: string,
  ) {}

  request(path: string, o: { json?: unknown; token?: string; method?: string } = {}): Promise<Answer> {
    const body = o.json === undefined ? undefined : JSON.stringify(o.json)
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (o.token) headers.authorization = `Bearer ${o.token}`
    return new Promise((resolve, reject) => {
      const req = http.request(
        this.url + path,
        { method: o.method ?? (body === undefined ? 'GET' : 'POST'), headers, agent: this.agent, socketPath: this.socketPath },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (text += c))
          res.on('end', () => {
            let parsed: unknown
            try {
              parsed = text ? JSON.parse(text) : undefined
            } catch {
              parsed = text
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed })
          })
          res.on('error', reject)
        },
      )
      req.setTimeout(10_000, () => req.destroy(new Error(`${path}: no answer in 10 s`)))
      req.on('error', reject)
      req.end(body)
    })
  }

  close(): void {
    this.agent.destroy()
  }
}

/**
 * A connection answered by pm2 worker `worker` (its x-runway-worker value). The master hands new
 * connections to the workers in turn, so a few attempts find any worker.
 */
export async function connectToWorker(t: Test, url: string, worker: string, attempts = 20): Promise<Connection> {
  for (let i = 0; i < attempts; i++) {
    const c = new Connection(url)
    const r = await c.request('/healthz')
    if (r.headers['x-runway-worker'] === worker) {
      t.teardown(() => c.close())
      return c
    }
    c.close()
  }
  throw new Error(`no connection reached worker ${worker} in ${attempts} attempts`)
}

export async function login(c: Connection, username = 'alice'): Promise<{ access: string; refresh: string }> {
  const r = await c.request('/api/token/', { json: { username, password: PASSWORD } })
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

export interface LoadResult {
  requests: number
  ok: number
  errors: number
  timeouts: number
  non2xx: number
  /** 2xx answers whose body was not the expected shape. */
  badBodies: number
  statuses: Record<string, number>
  /** Connection errors by code (ECONNRESET, EPIPE, ...). */
  errorCodes: Record<string, number>
  durationMs: number
  reqPerSec: number
}

export interface LoadOptions {
  connections: number
  /** 'me': GET /api/me/ only; 'chains': per connection refresh → me → me → me, repeated. */
  mix: 'me' | 'chains'
  /** One login session per connection. */
  sessions: Array<{ access: string; refresh: string }>
  /** Hard bound on the run, in seconds. */
  maxDurationS: number
  /** Send the load over this Unix socket instead of the URL's host and port. */
  socketPath?: string
}

export interface RunningLoad {
  /** Ends the load (at once) and resolves to its result. */
  stop(): Promise<LoadResult>
  done: Promise<LoadResult>
}

/**
 * A bounded autocannon load on 127.0.0.1: it runs until stop() or maxDurationS. Each connection
 * owns one login session and always sends its newest tokens, so every answer must be a 200.
 */
export function startLoad(url: string, o: LoadOptions): RunningLoad {
  if (o.sessions.length < o.connections) throw new Error('one session per connection is needed')
  let nextSession = 0
  let badBodies = 0
  const errorCodes: Record<string, number> = {}
  const started = Date.now()
  // State per connection lives in setupClient (autocannon resets a request context every time
  // its sequence wraps around). autocannon attributes answers to requests in order, and when a
  // server closes a connection under it that order can slip by one; so one handler reads what
  // each answer holds instead of trusting which request it belongs to.
  const setupClient = (client: any) => {
    const session = { ...o.sessions[nextSession++]! }
    const onResponse = (status: number, body: string) => {
      if (status !== 200) return
      try {
        const parsed = JSON.parse(body) as { access?: string; refresh?: string; id?: number }
        if (parsed.refresh && parsed.access) Object.assign(session, { access: parsed.access, refresh: parsed.refresh })
        else if (typeof parsed.id !== 'number') badBodies++
      } catch {
        badBodies++
      }
    }
    const me = {
      method: 'GET',
      path: '/api/me/',
      setupRequest: (req: object) => ({ ...req, headers: { authorization: `Bearer ${session.access}` } }),
      onResponse,
    }
    const refresh = {
      method: 'POST',
      path: '/api/token/refresh/',
      setupRequest: (req: object) => ({ ...req, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh: session.refresh }) }),
      onResponse,
    }
    client.setRequests(o.mix === 'me' ? [me] : [refresh, me, me, me])
  }
  let instance: { stop(): void } | undefined
  const done = new Promise<LoadResult>((resolve, reject) => {
    instance = autocannon(
      { url, socketPath: o.socketPath, connections: o.connections, duration: o.maxDurationS, timeout: 5, setupClient },
      (err: Error | null, result: autocannon.Result) => {
        if (err) return reject(err)
        const statuses: Record<string, number> = {}
        for (const [k, v] of Object.entries(result.statusCodeStats ?? {})) statuses[k] = (v as { count: number }).count
        resolve({
          requests: result.requests.total,
          ok: result['2xx'],
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          badBodies,
          statuses,
          errorCodes,
          durationMs: Date.now() - started,
          reqPerSec: (result['2xx'] / (Date.now() - started)) * 1000,
        })
      },
    )
  })
  ;(instance as unknown as NodeJS.EventEmitter).on('reqError', (err: NodeJS.ErrnoException) => {
    errorCodes[err.code ?? err.message] = (errorCodes[err.code ?? err.message] ?? 0) + 1
  })
  return {
    done,
    stop: () => {
      instance?.stop()
      return done
    },
  }
}

/** Logs in `n` sessions (one per load connection), spread over `usernames`. */
export async function sessions(url: string, n: number, usernames = ['alice']): Promise<Array<{ access: string; refresh: string }>> {
  const c = new Connection(url)
  try {
    const out = []
    for (let i = 0; i < n; i++) out.push(await login(c, usernames[i % usernames.length]))
    return out
  } finally {
    c.close()
  }
}
