// @ts-check
// The load-test scenarios: what each connection sends, in what order, and what answer counts.
//
// CommonJS plain JavaScript on purpose: autocannon's worker threads (`--workers`) load per-client
// hooks with require(path), outside any TypeScript loader. The TypeScript side reads the same
// table through src/bench/loadtest/scenarios.ts.
//
// Every connection runs its own small state machine (built in setupClient, so the state is private
// to the connection): `refresh` logs in once and then rotates its own refresh-token chain, never
// sending a token twice; `session` is login → several me → refresh → logout, like a real client.
// Each response is checked against what that step expects; a wrong status is counted by
// autocannon as non-2xx, and a 2xx with the wrong body as a mismatch, so a fast error page never
// counts as throughput.
'use strict'

const { BroadcastChannel, isMainThread } = require('node:worker_threads')

/**
 * @typedef {{ method: 'GET' | 'POST', path: string, body?: string, headers: Record<string, string> }} Step
 * @typedef {{
 *   name: string, summary: string, needs: 'nothing' | 'token' | 'credentials',
 *   get?: string, twin: boolean, loginBound: boolean, session?: boolean
 * }} Scenario
 * @typedef {{ scenario: string, tokens?: string[], users?: string[], password?: string, meCalls?: number }} Context
 */

/** @type {Scenario[]} */
const SCENARIOS = [
  { name: 'healthz', summary: 'GET /healthz: the framework and event loop, nothing else', needs: 'nothing', get: '/healthz', twin: true, loginBound: false },
  {
    name: 'me',
    summary: 'GET /api/me/ with a valid access token: token check, revocation check, one user read',
    needs: 'token',
    get: '/api/me/',
    twin: true,
    loginBound: false,
  },
  { name: 'verify', summary: 'POST /api/token/verify/: signature and revocation check of a token', needs: 'token', twin: true, loginBound: false },
  { name: 'login', summary: 'POST /api/token/: bound by argon2id password hashing', needs: 'credentials', twin: false, loginBound: true },
  {
    name: 'refresh',
    summary: 'each connection logs in once, then rotates its own refresh chain (a store write per request)',
    needs: 'credentials',
    twin: false,
    loginBound: false,
  },
  {
    name: 'session',
    summary: 'per connection: login, several GET /api/me/, refresh, logout; then again',
    needs: 'credentials',
    twin: false,
    loginBound: true,
    session: true,
  },
]

const JSON_HEADERS = { 'content-type': 'application/json' }
const bearer = (/** @type {string} */ token) => ({ authorization: `Bearer ${token}` })

/** Expected 200 bodies, checked by prefix/content so the check costs next to nothing. */
const expect = {
  health: (/** @type {string} */ b) => b === '{"status":"ok"}',
  me: (/** @type {string} */ b) => b.startsWith('{"id":'),
  empty: (/** @type {string} */ b) => b === '{}',
  pair: (/** @type {string} */ b) => b.includes('"access":"') && b.includes('"refresh":"'),
}

/** Pull one string field out of a JSON body without a full parse on the hot path's hot path. */
function field(/** @type {string} */ body, /** @type {string} */ name) {
  try {
    const v = JSON.parse(body)[name]
    return typeof v === 'string' ? v : undefined
  } catch {
    return undefined
  }
}

// Whole-session times (login sent → logout answered, ms) of the multi-step scenario: what its
// user waits for. Per-request percentiles of that stream mix sub-millisecond reads with logins
// queued behind password hashing (p50 "0 ms", p90 1.5 s) and describe no one's experience. In
// autocannon's worker threads they reach the main thread over a BroadcastChannel.
const SESSION_CHANNEL = 'runway-session-ms'
/** @type {Set<(ms: number) => void>} */
const sessionListeners = new Set()
/** @type {BroadcastChannel | undefined} */
let sessionChannel
function sessionDone(/** @type {number} */ ms) {
  if (isMainThread) {
    for (const l of sessionListeners) l(ms)
    return
  }
  if (!sessionChannel) {
    sessionChannel = new BroadcastChannel(SESSION_CHANNEL)
    sessionChannel.unref()
  }
  sessionChannel.postMessage(ms)
}

/** Collects the session times of this thread and of autocannon's workers until stop(). */
function collectSessions() {
  /** @type {number[]} */
  const times = []
  const local = (/** @type {number} */ ms) => void times.push(ms)
  sessionListeners.add(local)
  const channel = new BroadcastChannel(SESSION_CHANNEL)
  channel.onmessage = (/** @type {any} */ e) => void times.push(Number(e.data))
  /** @type {Promise<number[]> | undefined} */
  let stopped
  return {
    /** @returns {Promise<number[]>} after a moment for the workers' last messages; once */
    stop: () =>
      (stopped ??= new Promise((resolve) =>
        setTimeout(() => {
          sessionListeners.delete(local)
          channel.close()
          resolve(times)
        }, 50),
      )),
  }
}

// autocannon calls verifyBody right after onResponse for the same response, synchronously (see
// its httpClient.js), so onResponse leaves its verdict here and verifyBody reports it.
let verdict = true
let connections = 0

/**
 * One connection's request sequence as a state machine. `next()` gives the request to send,
 * `answer()` gets its response. A failed step restarts the machine at login (a real client would
 * log in again), and the failure has already been counted.
 * @param {Context} ctx
 * @param {number} n  index of this connection
 */
function machine(ctx, n) {
  const users = ctx.users ?? []
  const username = users[n % Math.max(1, users.length)] ?? ''
  const loginBody = JSON.stringify({ username, password: ctx.password ?? '' })
  const token = (ctx.tokens ?? [])[n % Math.max(1, (ctx.tokens ?? []).length)] ?? ''
  const meCalls = ctx.meCalls ?? 3
  /** @type {{ access?: string, refresh?: string, step: number, t0: number }} */
  const s = { step: 0, t0: 0 }
  /** @type {(b: string) => boolean} */
  let check = () => true
  /** @type {(() => Step)} */
  let next
  /** @type {(status: number, body: string) => void} */
  let answer = (status, body) => (verdict = status !== 200 || check(body))

  const login = () => ((check = expect.pair), { method: /** @type {const} */ ('POST'), path: '/api/token/', headers: JSON_HEADERS, body: loginBody })
  const keepPair = (/** @type {number} */ status, /** @type {string} */ body) => {
    if (status === 200 && check(body)) {
      s.access = field(body, 'access') ?? s.access
      s.refresh = field(body, 'refresh')
      verdict = !!s.refresh
      return verdict
    }
    verdict = status !== 200 // a wrong status is counted as non-2xx already
    s.refresh = undefined
    s.step = 0
    return false
  }

  switch (ctx.scenario) {
    case 'healthz':
      check = expect.health
      next = () => ({ method: 'GET', path: '/healthz', headers: {} })
      break
    case 'me':
      check = expect.me
      next = () => ({ method: 'GET', path: '/api/me/', headers: bearer(token) })
      break
    case 'verify': {
      check = expect.empty
      const body = JSON.stringify({ token })
      next = () => ({ method: 'POST', path: '/api/token/verify/', headers: JSON_HEADERS, body })
      break
    }
    case 'login':
      next = login
      break
    case 'refresh':
      // Log in once; then each request presents the refresh token the previous one returned.
      next = () => {
        if (!s.refresh) return login()
        check = expect.pair
        return { method: 'POST', path: '/api/token/refresh/', headers: JSON_HEADERS, body: JSON.stringify({ refresh: s.refresh }) }
      }
      answer = (status, body) => void keepPair(status, body)
      break
    case 'session':
      // step 0 login, 1..meCalls me, then refresh, then logout (blacklist), then a new login.
      next = () => {
        if (s.step === 0 || !s.refresh) return ((s.step = 0), (s.t0 = performance.now()), login())
        if (s.step <= meCalls) return ((check = expect.me), { method: 'GET', path: '/api/me/', headers: bearer(s.access ?? '') })
        check = s.step === meCalls + 1 ? expect.pair : expect.empty
        const path = s.step === meCalls + 1 ? '/api/token/refresh/' : '/api/token/blacklist/'
        return { method: 'POST', path, headers: JSON_HEADERS, body: JSON.stringify({ refresh: s.refresh }) }
      }
      answer = (status, body) => {
        const step = s.step
        if (step === 0 || step === meCalls + 1) {
          if (keepPair(status, body)) s.step = step + 1
          return
        }
        verdict = status !== 200 || check(body)
        if (status !== 200 || !verdict) return void (s.step = 0)
        s.step = step === meCalls + 2 ? 0 : step + 1
        if (s.step === 0) {
          s.refresh = undefined
          sessionDone(performance.now() - s.t0)
        }
      }
      break
    default:
      throw new Error(`unknown scenario ${JSON.stringify(ctx.scenario)}`)
  }
  return { next, answer: (/** @type {number} */ status, /** @type {string} */ body) => answer(status, body) }
}

/**
 * autocannon's setupClient: gives this connection its own request sequence.
 * @param {any} client autocannon's Client
 */
function setupClient(client) {
  /** @type {Context} */
  const ctx = client.opts.initialContext
  const m = machine(ctx, connections++)
  client.setRequests([
    {
      // A request object per send: setupRequest fills it from the machine's current step.
      setupRequest: (/** @type {any} */ req) => Object.assign(req, m.next()),
      onResponse: (/** @type {number} */ status, /** @type {string} */ body) => m.answer(status, body),
    },
  ])
}

/** autocannon's verifyBody: the verdict onResponse just gave for this very response. */
function verifyBody() {
  return verdict
}

module.exports = setupClient
module.exports.setupClient = setupClient
module.exports.verifyBody = verifyBody
module.exports.SCENARIOS = SCENARIOS
module.exports.machine = machine
module.exports.collectSessions = collectSessions
