// Revocation push for PostgreSQL: LISTEN on a dedicated direct connection (one per process), so
// processes learn of a revocation within milliseconds without polling the database several times
// a second.
//
// Who notifies: not the revocations themselves (migration 6: a NOTIFY per revocation commit woke
// every listener once per revocation and put every revocation commit in single file behind
// NOTIFY's database-wide lock). One listening process at a time is the publisher: it holds a
// session advisory lock on its LISTEN connection, reads the revocation log every PUBLISH_MS on
// that connection and announces what is new in one NOTIFY per batch (up to ~100 entries each).
// So the database sends at most 1000 / PUBLISH_MS notifications a second whatever the revocation
// rate and however many hosts write, and wakes each listener at most that often. The lock goes
// with the publisher's connection (process exit, probe failure, a host that vanished: TCP
// keepalives of a few seconds on that session); the other listeners try to take it at each
// heartbeat. Until one has, the safety poll of every reader (store/../auth/revocations.ts) still
// delivers within seconds.
//
// Each notification carries log entries ("seq:userId:expiresAt:sessionId", one a line), so a
// process applies them without reading the log; it reads only to fill gaps and as a safety net.
// A batch of several entries starts with a newline: a process of an earlier release (which parses
// one entry) finds none in it and reads the log instead.
//
// LISTEN needs a session of its own: a transaction-pooling PgBouncer accepts the command but never
// delivers the notifications. So the watcher proves it works: after LISTEN, and then every
// HEARTBEAT_MS, it sends itself a probe notification through the pool, on a channel of its own
// (so a probe wakes one backend, not every listener of the fleet), and expects it back within
// PROBE_TIMEOUT_MS. Until a probe came back (or when one is lost, or the connection fails) it
// reports "not listening", and readers poll at the fast interval; it reconnects with backoff.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { RevocationEntry } from './store.js'

export const CHANNEL = 'runway_revocations'
const HEARTBEAT_MS = 10_000
const PROBE_TIMEOUT_MS = 2_000
const MAX_BACKOFF_MS = 30_000
/** The publisher reads the log this often: the delay it adds, and its idle cost (one indexed read). */
const PUBLISH_MS = 20
/** Entries per read of the publisher. */
const PUBLISH_BATCH = 1000
/** NOTIFY payloads are limited to 8000 bytes. */
const PAYLOAD_BYTES = 7900
/** A position skipped in the log is looked for this long (a transaction still committing). */
const GAP_WAIT_MS = 30_000
const MAX_GAPS = 1000
/** Session advisory lock (with the schema's hash as second key) held by the publisher. */
const PUBLISHER_LOCK = 0x72756e78

export interface ListenOptions {
  /** Where to LISTEN: a direct connection (not through a transaction pooler). */
  url: string
  /** Extra connection parameters (a test's search_path). */
  options?: string
  connectTimeoutMs: number
  /** Sends a notification through another connection (the pool). */
  notify: (channel: string, payload: string) => Promise<unknown>
  /** A notification on CHANNEL, with its payload ('' when it had none). */
  onChange: (payload: string) => void
  onState: (listening: boolean, why: string) => void
  /** Told when this process starts or stops publishing (logs, tests). */
  onPublisher?: (publishing: boolean) => void
  /** Probe (and publisher take-over attempt) interval; tests shorten it. */
  heartbeatMs?: number
}

/** One log entry as a payload line. */
const line = (e: RevocationEntry) => `${e.seq}:${e.userId}:${e.expiresAt}:${e.sessionId ?? ''}`

/** The payloads announcing `entries`: one entry alone as migration 5 sent it, several after a newline. */
export function payloads(entries: RevocationEntry[]): string[] {
  const out: string[] = []
  let batch: string[] = []
  let bytes = 1
  const flush = () => {
    if (batch.length) out.push(batch.length === 1 ? batch[0]! : `\n${batch.join('\n')}`)
    batch = []
    bytes = 1
  }
  for (const e of entries) {
    const l = line(e)
    if (bytes + Buffer.byteLength(l) + 1 > PAYLOAD_BYTES) flush()
    batch.push(l)
    bytes += Buffer.byteLength(l) + 1
  }
  flush()
  return out
}

/** The entries a payload carries; none for a catch-up signal ('') or an older writer's bare seq. */
export function parsePayload(payload: string): RevocationEntry[] {
  const entries: RevocationEntry[] = []
  for (const text of payload.split('\n')) {
    const m = /^([0-9]+):([0-9]+):(-?[0-9]+):(.*)$/.exec(text)
    if (m) entries.push({ seq: Number(m[1]), userId: Number(m[2]), expiresAt: Number(m[3]), sessionId: m[4] === '' ? null : m[4]! })
  }
  return entries
}

export function watchNotifications(o: ListenOptions): { close(): Promise<void> } {
  let closed = false
  let client: pg.Client | undefined
  /** Undefined until the first attempt ended: its outcome is always reported. */
  let listening: boolean | undefined
  let failures = 0
  let timer: NodeJS.Timeout | undefined
  /** The connection holding the publisher lock (undefined: not publishing). */
  let publishing: pg.Client | undefined
  /** The connection whose session settings suit a publisher (set once per connection). */
  let tuned: pg.Client | undefined
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

  const stopPublishing = () => {
    if (!publishing) return
    publishing = undefined
    o.onPublisher?.(false)
  }

  const drop = async (why: string) => {
    setState(false, why)
    stopPublishing()
    const c = client
    client = undefined
    await c?.end().catch(() => {})
    failures++
    schedule(() => void connect(), Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 10)))
  }

  /** Publishes on `c` while it holds the lock: reads what is new, one NOTIFY per batch. */
  const publish = async (c: pg.Client) => {
    let after = Number((await c.query<{ seq: string }>('SELECT coalesce(max(seq), 0) AS seq FROM revocations')).rows[0]!.seq)
    const gaps = new Map<number, number>()
    while (publishing === c && !closed) {
      const started = Date.now()
      const rows = (
        await c.query<{ seq: string; session_id: string | null; user_id: string; expires_at: string }>(
          'SELECT seq, session_id, user_id, expires_at FROM revocations WHERE seq > $1 OR seq = ANY($2::bigint[]) ORDER BY seq LIMIT $3',
          [after, [...gaps.keys()], PUBLISH_BATCH],
        )
      ).rows
      const entries: RevocationEntry[] = []
      for (const r of rows) {
        const seq = Number(r.seq)
        if (seq > after) {
          // Positions skipped may belong to transactions that commit later (sequences are not commit-ordered).
          for (let missing = after + 1; missing < seq && gaps.size < MAX_GAPS; missing++) gaps.set(missing, started)
          after = seq
        } else if (!gaps.delete(seq)) continue
        entries.push({ seq, sessionId: r.session_id, userId: Number(r.user_id), expiresAt: Number(r.expires_at) })
      }
      for (const [seq, since] of gaps) if (started - since > GAP_WAIT_MS) gaps.delete(seq)
      const out = payloads(entries)
      if (out.length) await c.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) p', [CHANNEL, out])
      if (rows.length < PUBLISH_BATCH) await new Promise((r) => setTimeout(r, PUBLISH_MS))
    }
  }

  /** Becomes the publisher when no other process is. */
  const tryPublish = async (c: pg.Client) => {
    if (publishing || closed) return
    try {
      // Set before the lock is taken (a failure here leaves no lock behind). Not durable anyway (a
      // notification is lost with the connection): no wait for a WAL flush. Keepalives: if this
      // host vanishes, the server ends this session (and frees the lock) in seconds, not hours.
      if (tuned !== c) await c.query('SET synchronous_commit = off; SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3')
      tuned = c
      const got = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext(current_schema())) AS ok', [PUBLISHER_LOCK])).rows[0]!.ok
      if (!got || client !== c) return
    } catch {
      return // the heartbeat finds out whether the connection is still good
    }
    publishing = c
    o.onPublisher?.(true)
    publish(c).catch(() => {
      // A failed read or NOTIFY: the connection is suspect. Give the lock up with it.
      if (publishing === c && client === c) void drop('the publisher connection failed')
    })
  }

  const heartbeat = async () => {
    if (closed || !client) return
    const c = client
    if (await probe()) {
      failures = 0
      setState(true, 'LISTEN connection answers')
      await tryPublish(c)
      schedule(() => void heartbeat(), o.heartbeatMs ?? HEARTBEAT_MS)
    } else {
      await drop('no notification came back on the LISTEN connection within 2 s')
    }
  }

  const connect = async () => {
    if (closed) return
    const c = new pg.Client({
      connectionString: o.url,
      connectionTimeoutMillis: o.connectTimeoutMs,
      keepAlive: true,
      ...(o.options ? { options: o.options } : {}),
    })
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
    await tryPublish(c)
    schedule(() => void heartbeat(), o.heartbeatMs ?? HEARTBEAT_MS)
  }

  void connect()
  return {
    async close() {
      closed = true
      clearTimeout(timer)
      stopPublishing()
      const c = client
      client = undefined
      await c?.end().catch(() => {})
    },
  }
}
