// The steady load of a drill: a fixed number of node:http clients, each sending its next request
// as soon as the previous one ended, with a per-request timeout. Every request is recorded with
// when it ended, how long it took and how it ended — a 2xx, a status, or the connection-level
// kind (refused, reset, timeout) — so failures are counted exactly, one per request, by kind.
// (autocannon folds refused, reset and timeout into one "errors" figure.)
import http from 'node:http'
import https from 'node:https'

export interface RequestSpec {
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: string
}

export interface LoadOptions {
  url: string
  /** The CA of a TLS stage (nginx's generated certificate). */
  ca?: string
  connections: number
  timeoutMs: number
  durationMs: number
  /** The request client `n` sends next. */
  request: (client: number) => RequestSpec
  /** Called every second with the successes and failures of that second (progress lines). */
  onSecond?: (second: number, ok: number, failed: number) => void
  signal?: AbortSignal
  /** A client told Retry-After: N (a 503 or 429) waits N seconds (at most until the end) before its next request, as a well-behaved client does. */
  honourRetryAfter?: boolean
}

/** How a request ended that did not end in a 2xx. `http_503` etc. for answers. */
export type Outcome = 'ok' | 'refused' | 'reset' | 'timeout' | `http_${number}` | `error_${string}`

export interface LoadRecord {
  /** Epoch ms the load began; every `t` is relative to it. */
  startedAt: number
  /** Per request, in the order they ended: ms since start, latency ms, outcome. */
  t: number[]
  ms: number[]
  outcome: Outcome[]
  /** Answers other than 2xx that carried Retry-After (a 503 or 429 telling the client when). */
  retryAfter: number
}

/** A client whose connection failed waits this long before trying again, so a server that is
 * down costs the machine little; its failed attempts are still each counted. */
export const RETRY_PAUSE_MS = 20

class RequestTimeout extends Error {
  code = 'RUNWAY_TIMEOUT'
}

function classify(err: NodeJS.ErrnoException): Outcome {
  if (err instanceof RequestTimeout) return 'timeout'
  if (err.code === 'ECONNREFUSED') return 'refused'
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNABORTED') return 'reset'
  return `error_${err.code ?? err.message}`
}

function once(o: LoadOptions, agent: http.Agent, spec: RequestSpec, rec: LoadRecord, told: { retryAfterSec: number }): Promise<Outcome> {
  const url = new URL(spec.path, o.url)
  const mod = url.protocol === 'https:' ? https : http
  return new Promise((resolve) => {
    let done = false
    const finish = (x: Outcome) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(x)
    }
    const req = mod.request(
      url,
      {
        method: spec.method,
        agent,
        headers: {
          ...(spec.body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(spec.body) } : {}),
          ...spec.headers,
        },
        ...(o.ca ? { ca: o.ca } : {}),
      },
      (res) => {
        if ((res.statusCode! < 200 || res.statusCode! >= 300) && res.headers['retry-after'] !== undefined) {
          rec.retryAfter++
          told.retryAfterSec = Number(res.headers['retry-after']) || 0
        }
        res.on('data', () => {})
        res.on('end', () => finish(res.statusCode! >= 200 && res.statusCode! < 300 ? 'ok' : `http_${res.statusCode!}`))
        res.on('error', (err) => finish(classify(err)))
      },
    )
    const timer = setTimeout(() => req.destroy(new RequestTimeout('request timed out')), o.timeoutMs)
    req.on('error', (err) => finish(classify(err)))
    req.end(spec.body)
  })
}

export async function runLoad(o: LoadOptions): Promise<LoadRecord> {
  const secure = o.url.startsWith('https:')
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: o.connections }) : new http.Agent({ keepAlive: true, maxSockets: o.connections })
  const rec: LoadRecord = { startedAt: Date.now(), t: [], ms: [], outcome: [], retryAfter: 0 }
  const t0 = performance.now()
  const end = t0 + o.durationMs
  let ok = 0
  let failed = 0
  const ticker = o.onSecond
    ? setInterval(() => {
        o.onSecond!(Math.round((performance.now() - t0) / 1000), ok, failed)
        ok = failed = 0
      }, 1000)
    : undefined
  const client = async (n: number) => {
    while (performance.now() < end && !o.signal?.aborted) {
      const started = performance.now()
      const told = { retryAfterSec: 0 }
      const outcome = await once(o, agent, o.request(n), rec, told)
      const now = performance.now()
      rec.t.push(Math.round(now - t0))
      rec.ms.push(Math.round((now - started) * 10) / 10)
      rec.outcome.push(outcome)
      if (outcome === 'ok') ok++
      else failed++
      if (outcome === 'refused' || outcome === 'reset' || outcome.startsWith('error_')) await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS))
      else if (o.honourRetryAfter && told.retryAfterSec > 0) {
        // Told to come back after the end of the run: this client is done.
        if (performance.now() + told.retryAfterSec * 1000 >= end) break
        await new Promise((r) => setTimeout(r, told.retryAfterSec * 1000))
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: o.connections }, (_, n) => client(n)))
  } finally {
    if (ticker) clearInterval(ticker)
    agent.destroy()
  }
  return rec
}
