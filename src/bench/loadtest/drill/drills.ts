// The drills: what load each runs, which fault it injects at its fixed moment, how the fault is
// confirmed, and the verdict in plain words. Each drill runs on every stage it applies to.
// crash and deploy hit the stack itself; overload, slow, bad-input and wire add a second kind of
// client (a login storm, slowloris connections, bad requests, one login through a recording
// proxy) and report what became of it next to what the steady /api/me/ clients saw.
import { appendFileSync, existsSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import http from 'node:http'
import https from 'node:https'
import { join } from 'node:path'
import { APP_NAME } from '../../stacks/pm2.js'
import type { Running, StageContext, StageId } from '../stages.js'
import { startDeployed, type Deployed } from './deployed.js'
import { type Analysis, kinds, percentile } from './analyse.js'
import { kill9, listenerPid } from './faults.js'
import { runLoad, type RequestSpec } from './load.js'
import { obtainTokens } from '../http.js'
import { recordingProxy } from './proxy.js'

export type DrillName = 'crash' | 'deploy' | 'overload' | 'slow' | 'bad-input' | 'wire'
export const DRILL_NAMES: readonly DrillName[] = ['crash', 'deploy', 'overload', 'slow', 'bad-input', 'wire']

export interface DrillTarget {
  id: StageId
  label: string
  running: Running
  /** An access token of a user of this stage. */
  token: string
  /** The stage's users (a login storm spreads over them) and their password. */
  users: { usernames: string[]; password: string }
  /** The per-request timeout of the drill's clients. */
  timeoutMs: number
}

/** A second load a drill adds as its fault (the login storm): what became of its requests. */
export interface SideLoad {
  what: string
  clients: number
  sent: number
  /** Got an HTTP answer, whatever the status. */
  answered: number
  /** Timed out, refused or reset: no answer. */
  unanswered: number
  byOutcome: Record<string, number>
  /** Non-2xx answers carrying Retry-After. */
  retryAfter: number
  /** p99 latency of the answered, ms. */
  p99Answered: number
}

export interface FaultRecord {
  /** ms since the load began. */
  atMs: number
  action: string
  /** The fault really happened (the process is gone, the new code is live). */
  confirmed: boolean
  detail: string
  /** The process the fault was aimed at. */
  pid?: number
  /** overload: the login storm. */
  side?: SideLoad
  /** overload: the /api/me/ flood. */
  flood?: SideLoad
  slow?: SlowClients
  wire?: WireCapture
  bad?: BadInput[]
}

/** One kind of bad request of the bad-input drill: what became of them, and who answered. */
export interface BadInput {
  kind: string
  sent: number
  /** 'http_413', 'reset', … → count. */
  byOutcome: Record<string, number>
  /** Who answered: 'app' (its x-request-id), 'nginx' (its Server header, no request id), or 'no answer'. */
  byResponder: Record<string, number>
}

/** What a recording proxy between a client and the stage saw of one login and one /api/me/. */
export interface WireCapture {
  bytesToServer: number
  bytesToClient: number
  passwordSeen: boolean
  accessTokenSeen: boolean
  refreshTokenSeen: boolean
  /** The first bytes the client sent, printable characters only (others as '.'). */
  excerpt: string
}

/** The slow clients of the slow drill: how many the server held, and how long. */
export interface SlowClients {
  opened: number
  /** Still open when the attack ended: the server was holding them. */
  heldToEnd: number
  /** Closed by the server, with the seconds after their start when it did. */
  closedByServer: number
  closedAfterSec: number[]
}

export interface Drill {
  name: DrillName
  title: string
  /** Seconds of load; the fault comes at faultAtSec. */
  durationSec: number
  faultAtSec: number
  /** The "during" window after the fault. */
  duringSec: number
  explanation: string
  /**
   * The stages it runs on by default: those that show its lesson (the dev server or a lone process
   * next to the production stack that answers it), so the whole default set stays a few minutes.
   */
  stages: readonly StageId[]
  /** Run the nginx stages with nginx's limit_req on /api/token/ (its 429), as the rendered config does. */
  nginxRateLimit?: boolean
  /** A stack of its own for a stage instead of the stage's (the deploy drill's `runway deploy` target). */
  startOn?(id: StageId): { label: string; start(ctx: StageContext): Promise<Running> } | null
  /** Why this drill does not apply to a stage, or null. */
  skip(id: StageId): string | null
  request(token: string): RequestSpec
  /** Injects the fault; resolves once it is confirmed (or known not to have happened). */
  inject(target: DrillTarget): Promise<Omit<FaultRecord, 'atMs'>>
  /** After the load: the stack's own account of what followed (pm2 restarted the worker...). */
  settle(target: DrillTarget, fault: FaultRecord): Promise<string>
  verdict(label: string, a: Analysis, fault: FaultRecord): string
}

const me = (token: string): RequestSpec => ({ method: 'GET', path: '/api/me/', headers: { authorization: `Bearer ${token}` } })
const port = (url: string) => Number(new URL(url).port)

/** The process that serves requests: the pm2 worker is chosen by the caller; this is the one-process case. */
function serverPid(t: DrillTarget): number | null {
  return listenerPid(port(t.running.url))
}

const lost = (a: Analysis) => `${a.failedAfterFault} request${a.failedAfterFault === 1 ? '' : 's'} failed (${kinds(failedKinds(a))})`
function failedKinds(a: Analysis): Record<string, number> {
  const out: Record<string, number> = {}
  for (const w of a.windows.slice(1)) for (const [k, n] of Object.entries(w.byKind)) out[k] = (out[k] ?? 0) + n
  return out
}

export const crash: Drill = {
  name: 'crash',
  title: 'crash: kill -9 of the server process (or of one pm2 worker)',
  durationSec: 10,
  faultAtSec: 3,
  duringSec: 3,
  stages: ['dev', 'single', 'cluster', 'nginx'],
  explanation:
    'A process that dies without warning (kill -9: an out-of-memory kill, a segfault in a native module). The dev server (tsx watch) and a lone production process have nobody to restart them: every request after the crash is refused until a person notices. Under pm2 the master keeps the listening socket and restarts the dead worker; the other worker keeps answering, so only the requests in flight on the killed worker fail. Behind nginx, a request that fails on one upstream connection is retried on the surviving worker (proxy_next_upstream, for idempotent requests like GET /api/me/). Gunicorn does the same for Django: its arbiter re-forks a dead worker; runserver does not.',
  skip: () => null,
  request: me,
  async inject(t) {
    if (t.running.pm2) {
      const workers = await t.running.pm2.workers()
      const victim = workers.find((w) => w.pid > 0)
      if (!victim) return { action: 'kill -9 of a pm2 worker', confirmed: false, detail: 'no running pm2 worker found' }
      const gone = await kill9(victim.pid)
      return {
        action: `kill -9 of pm2 worker ${victim.pmId} (pid ${victim.pid}, 1 of ${workers.length})`,
        pid: victim.pid,
        confirmed: gone,
        detail: gone ? 'the worker is gone' : 'the worker was still alive 3 s after SIGKILL',
      }
    }
    const pid = serverPid(t)
    if (!pid) return { action: 'kill -9 of the server process', confirmed: false, detail: `no process listens on port ${port(t.running.url)}` }
    const gone = await kill9(pid)
    return {
      action: `kill -9 of the server process (pid ${pid})`,
      pid,
      confirmed: gone,
      detail: gone ? 'the process is gone' : 'the process was still alive 3 s after SIGKILL',
    }
  },
  async settle(t, fault) {
    if (t.running.pm2) {
      const workers = await t.running.pm2.workers()
      const online = workers.filter((w) => w.status === 'online' && w.pid > 0)
      const replaced = online.length === t.running.pm2.instances && !online.some((w) => w.pid === fault.pid)
      return replaced
        ? `pm2 restarted it: ${online.length} workers online (pids ${online.map((w) => w.pid).join(', ')})`
        : `pm2 shows ${online.length} of ${t.running.pm2.instances} workers online`
    }
    const pid = serverPid(t)
    return pid ? `a process (pid ${pid}) listens again` : 'nothing listens any more: no supervisor restarted it'
  },
  verdict(label, a) {
    if (a.recoverySec === null) return `${label}: down for the rest of the run after the crash; ${lost(a)}.`
    if (a.failedAfterFault === 0) return `${label}: no request failed; full rate ${a.recoverySec === 0 ? 'throughout' : `again after ${a.recoverySec} s`}.`
    return `${label}: ${lost(a)}, back to full rate in ${a.recoverySec} s.`
  },
}

/** A comment appended to the entry file of the staged copy: a changed file, like a deploy's. */
function changeCode(dir: string, rel: string): string {
  const file = join(dir, rel)
  if (!existsSync(file)) throw new Error(`${file} is missing`)
  appendFileSync(file, `\n// runway drill deploy: changed at ${new Date().toISOString()}\n`)
  return rel
}

async function waitFor<T>(probe: () => Promise<T | null> | T | null, timeoutMs: number): Promise<T | null> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    const v = await probe()
    if (v !== null) return v
    await new Promise((r) => setTimeout(r, 50))
  }
  return null
}

export const deploy: Drill = {
  name: 'deploy',
  title: 'deploy: new code goes live (dev file-watch restart vs pm2 reload vs runway deploy behind nginx)',
  durationSec: 20,
  faultAtSec: 3,
  duringSec: 15,
  stages: ['dev', 'cluster', 'nginx'],
  explanation:
    "A code change going live under load. The dev server's watcher sees the changed file, kills the running server and starts a new one: requests in between are refused, much like Django's runserver autoreloader restarting its child. `pm2 reload` replaces the workers one at a time, each old one only after its successor listens, and the master keeps the socket open throughout, so no request should fail (the production goal is 0); gunicorn's HUP reload does the same for Django. Behind nginx the change goes out as a release does: `runway deploy --path` to a target on this machine builds the artifact, installs its dependencies, migrates, starts the new release once on a spare port, switches the `current` link and runs `pm2 startOrReload`, then waits for the health gate — the whole way, under the same load, with 0 failed requests as the goal. A lone production process has no reload: deploying it means a stop and a start (the crash drill shows that gap), so it is skipped here.",
  startOn: (id) => (id === 'nginx' ? { label: 'nginx → runway deploy --path (pm2 cluster)', start: startDeployed } : null),
  skip: (id) => (id === 'single' || id === 'single-pg' ? 'a lone process has no reload: deploying it is a stop and a start (see the crash drill)' : null),
  request: me,
  async inject(t) {
    const dir = t.running.dir
    if (!dir) return { action: 'change the code', confirmed: false, detail: 'the stage has no staged copy to change' }
    if ('redeploy' in t.running && t.running.pm2) {
      const pm2 = t.running.pm2
      const before = (await pm2.workers()).map((w) => w.pid)
      const t0 = Date.now()
      const r = await (t.running as Deployed).redeploy()
      const after = await pm2.waitForWorkers(30_000).catch(() => [])
      const fresh = after.length > 0 && after.every((w) => !before.includes(w.pid))
      return {
        action: 'runway deploy --path of a changed release (build, npm ci, migrate, verify, switch, pm2 startOrReload, health gate)',
        confirmed: r.ok && fresh,
        detail: `${r.detail}; ${fresh ? `all ${after.length} workers replaced (pids ${before.join(', ')} → ${after.map((w) => w.pid).join(', ')})` : `old workers still running (${after.map((w) => w.pid).join(', ')})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      }
    }
    if (t.running.pm2) {
      const pm2 = t.running.pm2
      const before = (await pm2.workers()).map((w) => w.pid)
      changeCode(dir, 'dist/api/server.js')
      const t0 = Date.now()
      await pm2.pm2(['reload', APP_NAME])
      const after = await pm2.waitForWorkers(30_000)
      const fresh = after.every((w) => !before.includes(w.pid))
      return {
        action: `changed dist/api/server.js, then pm2 reload ${APP_NAME}`,
        confirmed: fresh,
        detail: fresh
          ? `all ${after.length} workers replaced (pids ${before.join(', ')} → ${after.map((w) => w.pid).join(', ')}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`
          : `pm2 reload left old workers running (${after.map((w) => w.pid).join(', ')})`,
      }
    }
    const before = serverPid(t)
    changeCode(dir, 'src/api/server.ts')
    const t0 = Date.now()
    // The watcher restarts the server: wait until another process listens.
    const next = await waitFor(() => {
      const p = serverPid(t)
      return p !== null && p !== before ? p : null
    }, 30_000)
    return {
      action: 'changed src/api/server.ts (the watcher restarts the server)',
      ...(before ? { pid: before } : {}),
      confirmed: next !== null,
      detail: next
        ? `new server process ${next} (was ${before}) listening ${((Date.now() - t0) / 1000).toFixed(1)} s after the change`
        : 'no new server process listened within 30 s of the change',
    }
  },
  async settle() {
    return ''
  },
  verdict(label, a, fault) {
    const live = fault.confirmed ? 'new code live' : 'new code NOT live'
    if (a.failedAfterFault === 0) return `${label}: 0 requests failed during the change; ${live}.`
    return `${label}: ${lost(a)} during the change${a.recoverySec === null ? ', not back to full rate by the end of the run' : `, back to full rate ${a.recoverySec} s after it began`}; ${live}.`
  },
}

const STORM_CLIENTS = 256
const FLOOD_CLIENTS = 256

/** A second load during the fault: what became of its requests. */
async function sideLoad(t: DrillTarget, what: string, clients: number, durationMs: number, request: (n: number) => RequestSpec): Promise<SideLoad> {
  const rec = await runLoad({
    url: t.running.url,
    ...(t.running.ca ? { ca: t.running.ca } : {}),
    connections: clients,
    timeoutMs: t.timeoutMs,
    durationMs,
    request,
    honourRetryAfter: true,
  })
  const byOutcome: Record<string, number> = {}
  const answeredMs: number[] = []
  for (const [i, o] of rec.outcome.entries()) {
    byOutcome[o] = (byOutcome[o] ?? 0) + 1
    if (o === 'ok' || o.startsWith('http_')) answeredMs.push(rec.ms[i]!)
  }
  answeredMs.sort((a, b) => a - b)
  return {
    what,
    clients,
    sent: rec.t.length,
    answered: answeredMs.length,
    unanswered: rec.t.length - answeredMs.length,
    byOutcome,
    retryAfter: rec.retryAfter,
    p99Answered: percentile(answeredMs, 99),
  }
}

const sideLine = (s: SideLoad, noun: string) =>
  `${s.answered} of ${s.sent} ${noun} answered (${kinds(byAnswer(s.byOutcome))}${s.retryAfter ? `, ${s.retryAfter} with Retry-After` : ''}), ${s.unanswered} unanswered, p99 of the answered ${s.p99Answered} ms`

export const overload: Drill = {
  name: 'overload',
  title: `overload: a login storm (${STORM_CLIENTS} clients) and a /api/me/ flood (${FLOOD_CLIENTS} more connections) on top of steady traffic`,
  durationSec: 12,
  faultAtSec: 3,
  duringSec: 7,
  stages: ['single', 'cluster', 'nginx'],
  nginxRateLimit: true,
  explanation:
    "Offered load far above capacity: a login costs a deliberately slow password hash, so a storm of logins can occupy every core, and a flood of cheap requests fills every queue. What matters is that every client gets an answer within its timeout — a success, 429 (nginx's limit_req on /api/token/) or 503 + Retry-After (the app's bounded hash queue, or its event-loop lag guard) — rather than waiting in a queue until it gives up, and that /api/me/ keeps flowing. The storm's and the flood's clients behave: told Retry-After, they wait that long before trying again. The app's own per-IP and per-user login limits are off here (every client is 127.0.0.1; they would answer 429 to nearly all of the storm and hide the shedding); nginx's limit_req stays on, as in the rendered config. Gunicorn has no such guard: its sync workers queue in the listen backlog and clients time out.",
  skip: () => null,
  request: me,
  async inject(t) {
    const stormMs = (this.durationSec - this.faultAtSec - 2) * 1000
    const users = t.users.usernames
    const [storm, flood] = await Promise.all([
      sideLoad(t, 'POST /api/token/ (valid credentials)', STORM_CLIENTS, stormMs, (n) => ({
        method: 'POST',
        path: '/api/token/',
        body: JSON.stringify({ username: users[n % users.length], password: t.users.password }),
      })),
      sideLoad(t, 'GET /api/me/', FLOOD_CLIENTS, stormMs, () => me(t.token)),
    ])
    return {
      action: `login storm (${STORM_CLIENTS} clients) and /api/me/ flood (${FLOOD_CLIENTS} clients) for ${stormMs / 1000} s`,
      confirmed: storm.sent > 0 && flood.sent > 0,
      detail: `${sideLine(storm, 'logins')}; flood: ${sideLine(flood, '/api/me/')}`,
      side: storm,
      flood,
    }
  },
  async settle() {
    return ''
  },
  verdict(label, a, fault) {
    const s = fault.side
    const f = fault.flood
    const during = a.windows[1]!
    const storm = s ? sideLine(s, 'logins') : 'no storm'
    const flood = f ? `; flood: ${sideLine(f, '/api/me/')}` : ''
    return `${label}: ${storm}${flood}; steady /api/me/ during the storm: ${during.rate}/s (before ${a.windows[0]!.rate}/s), p99 ${during.p99} ms, ${during.failed} failed.`
  },
}

/** 2xx as "2xx", failures by kind. */
function byAnswer(byOutcome: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, n] of Object.entries(byOutcome)) out[k === 'ok' ? '2xx' : k] = (out[k === 'ok' ? '2xx' : k] ?? 0) + n
  return out
}

const SLOW_CLIENTS = 200
const SLOW_BYTE_EVERY_MS = 1000

/** One slowloris connection: a request line, then a header byte a second, never finished. */
function slowConnection(url: URL, ca: string | undefined, onClose: () => void): net.Socket {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  const socket = url.protocol === 'https:' ? tls.connect({ host: url.hostname, port, ca, servername: 'localhost' }) : net.connect({ host: url.hostname, port })
  const trickle = 'X-Slow: 0123456789012345678901234567890123456789\r\n'
  let i = 0
  let timer: NodeJS.Timeout | undefined
  socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    socket.write(`GET /api/me/ HTTP/1.1\r\nHost: ${url.host}\r\n`)
    timer = setInterval(() => socket.write(trickle[i++ % trickle.length]!), SLOW_BYTE_EVERY_MS)
  })
  socket.on('error', () => {})
  socket.on('data', () => {})
  socket.once('close', () => {
    clearInterval(timer)
    onClose()
  })
  return socket
}

export const slow: Drill = {
  name: 'slow',
  title: `slow clients: ${SLOW_CLIENTS} slowloris connections (a header byte a second) while normal clients call /api/me/`,
  durationSec: 15,
  faultAtSec: 2,
  duringSec: 12,
  stages: ['single', 'nginx'],
  explanation:
    "Clients that send their request a byte at a time (a slowloris attack, or just bad mobile networks) each hold a connection and its memory without ever finishing a request. The app alone keeps them until its header timeout (HEADERS_TIMEOUT, 20 s, which Node enforces on a 30 s sweep — longer than this attack); Django's runserver and gunicorn's sync workers are worse off: each slow client pins a whole worker. nginx reads the request headers itself and passes a request on only once they are complete, so the slow connections cost nginx's event loop, not the app's; its client_header_timeout (10 s in the rendered config) is meant to drop them — the drill shows whether it did within the attack. The figures: how many slow connections the server was still holding at the end, and what the normal clients' p99 and failures were during the attack.",
  skip: () => null,
  request: me,
  async inject(t) {
    const url = new URL(t.running.url)
    const attackMs = (this.durationSec - this.faultAtSec - 1) * 1000
    const started = Date.now()
    const closedAfterSec: number[] = []
    const sockets: net.Socket[] = []
    let ending = false
    for (let i = 0; i < SLOW_CLIENTS; i++) {
      sockets.push(
        slowConnection(url, t.running.ca, () => {
          if (!ending) closedAfterSec.push(Math.round((Date.now() - started) / 100) / 10)
        }),
      )
    }
    await new Promise((r) => setTimeout(r, attackMs))
    ending = true
    const held = sockets.filter((s) => !s.destroyed && !s.closed).length
    for (const s of sockets) s.destroy()
    const opened = sockets.filter((s) => s.bytesWritten > 0).length
    const slow: SlowClients = { opened, heldToEnd: held, closedByServer: closedAfterSec.length, closedAfterSec }
    const first = closedAfterSec.length ? Math.min(...closedAfterSec) : null
    return {
      action: `${SLOW_CLIENTS} slowloris connections for ${attackMs / 1000} s`,
      confirmed: opened > 0,
      detail: `${opened} opened, ${held} still held by the server after ${attackMs / 1000} s, ${closedAfterSec.length} closed by it${first === null ? '' : ` (the first after ${first} s)`}`,
      slow,
    }
  },
  async settle() {
    return ''
  },
  verdict(label, a, fault) {
    const s = fault.slow
    const during = a.windows[1]!
    const held = s
      ? s.heldToEnd > 0
        ? `held ${s.heldToEnd} of ${s.opened} slow connections to the end`
        : `dropped all ${s.opened} slow connections${s.closedAfterSec.length ? ` (after ${Math.min(...s.closedAfterSec)}–${Math.max(...s.closedAfterSec)} s)` : ''}`
      : 'no slow clients'
    return `${label}: ${held}; normal clients during the attack: p99 ${during.p99} ms (before ${a.windows[0]!.p99} ms), ${during.failed} failed.`
  },
}

export const wire: Drill = {
  name: 'wire',
  title: 'wire: what an observer on the network sees of a login',
  durationSec: 4,
  faultAtSec: 1,
  duringSec: 2,
  stages: ['dev', 'tls'],
  explanation:
    "Anyone on the path between a client and the server — the café's Wi-Fi, a compromised router, a mirror port — sees every byte. Here a recording TCP proxy on loopback stands in for that observer: a login (POST /api/token/) and a GET /api/me/ go through it. Over plain HTTP (dev, single, cluster, nginx without TLS) the password, the refresh token and the access token cross in the clear, ready to be replayed; through nginx with TLS the proxy sees only the handshake and encrypted records. Django's SECURE_SSL_REDIRECT and SECURE_HSTS_SECONDS exist for this; here nginx redirects to HTTPS and sends HSTS.",
  skip: () => null,
  request: me,
  async inject(t) {
    const proxy = await recordingProxy(t.running.url)
    try {
      const url = new URL(t.running.url)
      const via = `${url.protocol}//${url.hostname}:${proxy.port}`
      const username = t.users.usernames[0]!
      const tokens = await obtainTokens(via, username, t.users.password, t.running.ca)
      await new Promise((r) => setTimeout(r, 100))
      const toServer = proxy.toServer()
      const toClient = proxy.toClient()
      const all = Buffer.concat([toServer, toClient]).toString('latin1')
      const capture: WireCapture = {
        bytesToServer: toServer.length,
        bytesToClient: toClient.length,
        passwordSeen: all.includes(t.users.password),
        accessTokenSeen: all.includes(tokens.access),
        refreshTokenSeen: all.includes(tokens.refresh),
        excerpt: toServer
          .subarray(0, 240)
          .toString('latin1')
          .replace(/[^\x20-\x7e]/g, '.'),
      }
      const seen = [
        capture.passwordSeen && 'the password',
        capture.refreshTokenSeen && 'the refresh token',
        capture.accessTokenSeen && 'the access token',
      ].filter(Boolean)
      return {
        action: 'a login through a recording proxy on loopback',
        confirmed: toServer.length > 0 && toClient.length > 0,
        detail: `${toServer.length} bytes to the server, ${toClient.length} back; ${seen.length ? `readable in them: ${seen.join(', ')}` : 'neither the password nor a token is readable in them'}`,
        wire: capture,
      }
    } finally {
      await proxy.close()
    }
  },
  async settle() {
    return ''
  },
  verdict(label, _a, fault) {
    const w = fault.wire
    if (!w) return `${label}: nothing captured.`
    const seen = [w.passwordSeen && 'the password', w.refreshTokenSeen && 'the refresh token', w.accessTokenSeen && 'the access token'].filter(Boolean)
    return seen.length
      ? `${label}: an observer reads ${seen.join(', ')} in the clear.`
      : `${label}: an observer sees ${w.bytesToServer + w.bytesToClient} encrypted bytes: no password, no token.`
  },
}

const BAD_KINDS: { kind: string; spec: () => RequestSpec }[] = [
  {
    kind: 'oversized body (2 MiB JSON to /api/token/)',
    spec: () => ({ method: 'POST', path: '/api/token/', body: JSON.stringify({ username: 'x'.repeat(2 << 20), password: 'y' }) }),
  },
  { kind: 'oversized header (64 KiB)', spec: () => ({ method: 'GET', path: '/api/me/', headers: { 'x-big': 'z'.repeat(64 << 10) } }) },
  { kind: 'malformed JSON to /api/token/', spec: () => ({ method: 'POST', path: '/api/token/', body: '{"username": "alice", "password": ' }) },
]

/** One bad request on its own connection: how it ended and who answered it. */
function badRequest(base: string, ca: string | undefined, spec: RequestSpec, timeoutMs: number): Promise<{ outcome: string; responder: string }> {
  const url = new URL(spec.path, base)
  const mod = url.protocol === 'https:' ? https : http
  return new Promise((resolve) => {
    let done = false
    const finish = (outcome: string, responder: string) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve({ outcome, responder })
    }
    const req = mod.request(
      url,
      {
        method: spec.method,
        agent: false,
        headers: {
          ...(spec.body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(spec.body) } : {}),
          ...spec.headers,
        },
        ...(ca ? { ca } : {}),
      },
      (res) => {
        // The app stamps x-request-id on every answer it makes (nginx passes it through but overwrites
        // Server); nginx's own error pages carry no request id. Node's parser (431) stamps neither.
        const responder = res.headers['x-request-id'] !== undefined ? 'app' : String(res.headers.server ?? '').startsWith('nginx') ? 'nginx' : 'app'
        res.resume()
        res.on('end', () => finish(`http_${res.statusCode}`, responder))
        res.on('error', () => finish(`http_${res.statusCode}`, responder))
      },
    )
    const timer = setTimeout(() => req.destroy(Object.assign(new Error('timeout'), { code: 'RUNWAY_TIMEOUT' })), timeoutMs)
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish(err.code === 'RUNWAY_TIMEOUT' ? 'timeout' : err.code === 'ECONNREFUSED' ? 'refused' : 'reset', 'no answer'),
    )
    req.end(spec.body)
  })
}

export const badInput: Drill = {
  name: 'bad-input',
  title: 'bad input: oversized bodies and headers, malformed JSON, at volume',
  durationSec: 8,
  faultAtSec: 2,
  duringSec: 4,
  stages: ['single', 'nginx'],
  explanation:
    "Requests no client should send, sent at volume: a 2 MiB body, a 64 KiB header, JSON cut in half. Each must be refused early and cheaply with a 4xx (413, 431/400, 400), never a 5xx, and the normal clients must not notice. Behind nginx the oversized ones never reach the app: nginx answers 413 (client_max_body_size) and 400 for a header beyond its buffers before reading further. The app alone refuses them too (Node's 16 KiB header limit answers 431; the body limit 413), but it reads and parses on the cores that serve everyone. Django's DATA_UPLOAD_MAX_MEMORY_SIZE and nginx in front play the same parts.",
  skip: () => null,
  request: me,
  async inject(t) {
    const floodMs = (this.durationSec - this.faultAtSec - 2) * 1000
    const end = Date.now() + floodMs
    const results: BadInput[] = BAD_KINDS.map((k) => ({ kind: k.kind, sent: 0, byOutcome: {}, byResponder: {} }))
    await Promise.all(
      Array.from({ length: 12 }, async (_, n) => {
        const i = n % BAD_KINDS.length
        while (Date.now() < end) {
          const r = await badRequest(t.running.url, t.running.ca, BAD_KINDS[i]!.spec(), t.timeoutMs)
          const x = results[i]!
          x.sent++
          x.byOutcome[r.outcome] = (x.byOutcome[r.outcome] ?? 0) + 1
          x.byResponder[r.responder] = (x.byResponder[r.responder] ?? 0) + 1
        }
      }),
    )
    const fivexx = results.reduce(
      (n, x) =>
        n +
        Object.entries(x.byOutcome)
          .filter(([k]) => /^http_5/.test(k))
          .reduce((a, [, v]) => a + v, 0),
      0,
    )
    return {
      action: `12 clients sending bad requests for ${floodMs / 1000} s`,
      confirmed: results.every((x) => x.sent > 0),
      detail: `${results.map((x) => `${x.kind}: ${x.sent} sent, ${kinds(x.byOutcome)} (answered by ${kinds(x.byResponder)})`).join('; ')}${fivexx ? `; ${fivexx} answered 5xx` : ''}`,
      bad: results,
    }
  },
  async settle() {
    return ''
  },
  verdict(label, a, fault) {
    const during = a.windows[1]!
    const bad = (fault.bad ?? []).map((x) => `${x.kind.split(' (')[0]} → ${kinds(x.byOutcome)} by ${Object.keys(x.byResponder).join('/')}`).join('; ')
    return `${label}: ${bad}; normal clients during the flood: p99 ${during.p99} ms (before ${a.windows[0]!.p99} ms), ${during.failed} failed.`
  },
}

export const DRILLS: readonly Drill[] = [crash, deploy, overload, slow, badInput, wire]
export const drillByName = (name: string) => DRILLS.find((d) => d.name === name)

/** Why `drill` cannot run on stage `id`, or null. */
export function cannotRun(drill: Drill, id: StageId): string | null {
  if (id === 'single-pg') return 'the single-pg stage is not drilled yet'
  return drill.skip(id)
}

/** Which stages each drill runs on: those asked for, or else its own default stages. */
export function drillPlan(drills: readonly Drill[], stages?: readonly StageId[]): { drill: Drill; stages: StageId[] }[] {
  return drills.map((drill) => ({ drill, stages: [...(stages ?? drill.stages)] }))
}

/** Seconds of load and fresh stacks of a plan (stack start-ups come on top). */
export function planLoad(plan: { drill: Drill; stages: StageId[] }[]): { loadSec: number; stacks: number } {
  const runs = plan.flatMap((p) => p.stages.filter((id) => !cannotRun(p.drill, id)).map(() => p.drill.durationSec))
  return { loadSec: runs.reduce((a, b) => a + b, 0), stacks: runs.length }
}
