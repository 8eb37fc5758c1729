// Revocation push for PostgreSQL: LISTEN on a dedicated direct connection (one per process), so
// processes learn of a revocation within milliseconds without polling the database several times
// a second. Every revocation statement ends in pg_notify() (delivered at commit).
//
// Each notification carries the log entry itself ("seq:userId:expiresAt:sessionId"), so a process
// applies it without reading the log; it reads only to fill gaps and as a safety net.
//
// LISTEN needs a session of its own: a transaction-pooling PgBouncer accepts the command but never
// delivers the notifications. So the watcher proves it works: after LISTEN, and then every
// HEARTBEAT_MS, it sends itself a probe notification through the pool, on a channel of its own
// (so a probe wakes one backend, not every listener of the fleet), and expects it back within
// PROBE_TIMEOUT_MS. Until a probe came back (or when one is lost, or the connection fails) it
// reports "not listening", and readers poll at the fast interval; it reconnects with backoff.
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const CHANNEL = 'runway_revocations'
const HEARTBEAT_MS = 10_000
const PROBE_TIMEOUT_MS = 2_000
const MAX_BACKOFF_MS = 30_000

export interface ListenOptions {
  /** Where to LISTEN: a direct connection (not through a transaction pooler). */
  url: string
  connectTimeoutMs: number
  /** Sends a notification through another connection (the pool). */
  notify: (channel: string, payload: string) => Promise<unknown>
  /** A notification on CHANNEL, with its payload ('' when it had none). */
  onChange: (payload: string) => void
  onState: (listening: boolean, why: string) => void
}

export function watchNotifications(o: ListenOptions): { close(): Promise<void> } {
  let closed = false
  let client: pg.Client | undefined
  /** Undefined until the first attempt ended: its outcome is always reported. */
  let listening: boolean | undefined
  let failures = 0
  let timer: NodeJS.Timeout | undefined
  const probes = new Map<string, () => void>()
  const probeChannel = `runway_probe_${randomBytes(8).toString('hex')}`

  const setState = (now: boolean, why: string) => {
    if (now === listening) return
    listening = now
    o.onState(now, why)
  }

  const schedule = (fn: () => void, ms: number) => {
    clearTimeout(timer)
    if (!closed) timer = setTimeout(fn, ms).unref()
  }

  /** Resolves true when a probe sent through the pool came back on this connection. */
  const probe = async (): Promise<boolean> => {
    const id = randomBytes(6).toString('hex')
    const back = new Promise<boolean>((resolve) => {
      probes.set(id, () => resolve(true))
      setTimeout(() => resolve(false), PROBE_TIMEOUT_MS).unref()
    })
    try {
      await o.notify(probeChannel, id)
      return await back
    } catch {
      return false
    } finally {
      probes.delete(id)
    }
  }

  const drop = async (why: string) => {
    setState(false, why)
    const c = client
    client = undefined
    await c?.end().catch(() => {})
    failures++
    schedule(() => void connect(), Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 10)))
  }

  const heartbeat = async () => {
    if (closed || !client) return
    if (await probe()) {
      failures = 0
      setState(true, 'LISTEN connection answers')
      schedule(() => void heartbeat(), HEARTBEAT_MS)
    } else {
      await drop('no notification came back on the LISTEN connection within 2 s')
    }
  }

  const connect = async () => {
    if (closed) return
    const c = new pg.Client({ connectionString: o.url, connectionTimeoutMillis: o.connectTimeoutMs, keepAlive: true })
    client = c
    // Without a listener a lost connection would be an unhandled 'error' event: the process exits.
    c.on('error', (err) => void (client === c && drop(`LISTEN connection failed: ${err.message}`)))
    c.on('notification', (n) => {
      if (n.channel === probeChannel) probes.get(n.payload ?? '')?.()
      else if (n.channel === CHANNEL) o.onChange(n.payload ?? '')
    })
    try {
      await c.connect()
      await c.query(`LISTEN ${CHANNEL}; LISTEN ${probeChannel}`)
    } catch (err) {
      if (client === c) await drop(`LISTEN connection failed: ${(err as Error).message}`)
      return
    }
    if (!(await probe())) {
      if (client === c) await drop('LISTEN does not receive notifications on this connection (a transaction-pooling PgBouncer?)')
      return
    }
    failures = 0
    setState(true, 'LISTEN connection answers')
    // Notifications sent while this connection was down were lost: readers catch up now.
    o.onChange('')
    schedule(() => void heartbeat(), HEARTBEAT_MS)
  }

  void connect()
  return {
    async close() {
      closed = true
      clearTimeout(timer)
      const c = client
      client = undefined
      await c?.end().catch(() => {})
    },
  }
}
