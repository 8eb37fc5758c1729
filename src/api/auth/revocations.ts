// Which login sessions are revoked, known to every process without a store query per request.
// Each process keeps the unexpired revoked sessions in memory and reads the store's revocation
// log incrementally: only entries after the last position it applied, in batches, yielding to the
// event loop between batches. So a revocation costs every process one small read, whatever the
// number of sessions revoked before (the old way re-read all of them, ~0.9 s per worker at 300k).
//
// When to read: PostgreSQL pushes (LISTEN/NOTIFY, see store/pg-listen.ts): each notification
// carries its log entry, applied at once without a read, so a revocation reaches every process
// within milliseconds; polling slows to a safety net (PUSH_POLL_MS) that also fills gaps. Without
// push (SQLite, or a pooler that cannot carry LISTEN) each process polls every
// REVOCATION_POLL_INTERVAL (250 ms by default), one indexed read that returns nothing when nothing
// changed.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { RevocationEntry, Store } from '../store/store.js'

/** What a revocation tells the rest of the process (per-process caches of users drop theirs). */
export interface RevocationEvent {
  /** The revoked session, or null when the user as a whole changed (password, deactivation, deletion). */
  sessionId: string | null
  userId: number
}

/** Entries per read: ~1 ms of work on the event loop per batch. */
const BATCH = 1000
/** While pushes arrive, a poll this often only catches what a lost notification missed. */
const PUSH_POLL_MS = 5000
/** A position skipped in the log is looked for this long (a PostgreSQL transaction still committing). */
const GAP_WAIT_MS = 30_000
/**
 * Reads triggered by notifications start at most this often: at 1,000 revocations/s fleet-wide a
 * process reads ~40 times a second (each read takes what arrived meanwhile), not 1,000 times.
 */
const PUSH_MIN_INTERVAL_MS = 25
/** Gaps tracked at most (a burst of rolled-back transactions must not grow memory). */
const MAX_GAPS = 1000

export class RevocationCache {
  private readonly revoked = new Map<string, number>()
  /** Sessions by the minute after which their tokens are all expired: pruned a bucket at a time. */
  private readonly expiring = new Map<number, string[]>()
  /** Log positions skipped so far, with when they were first missed. */
  private readonly gaps = new Map<number, number>()
  private readonly listeners: ((events: RevocationEvent[]) => void)[] = []
  private after = 0
  /** Gaps count only once the first full read is done: before, skipped positions are expired or flushed entries. */
  private caughtUp = false
  private timer?: NodeJS.Timeout
  private watch?: { close(): Promise<void> }
  private pushed = false
  private stopped = false
  private failing = false
  private loaded = false
  private running: Promise<void> = Promise.resolve()
  private queued?: Promise<void>
  private pushTimer?: NodeJS.Timeout
  private lastPushedRead = 0

  constructor(
    private readonly store: Store,
    private readonly pollMs: number,
    /** Tokens outlive their session's last refresh by at most this (the access lifetime). */
    private readonly slackSeconds: number,
    private readonly onError: (err: unknown) => void = () => {},
    private readonly log: (msg: string) => void = () => {},
    /** The clock (epoch ms); tests move it. */
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Loads every unexpired revocation, then keeps up by push and/or polling. A store that fails
   * here is retried by the poll; until the first read succeeded, `ready` is false.
   */
  async start(): Promise<void> {
    this.stopped = false
    await this.sync().catch(() => {})
    this.watch = this.store.watchRevocations?.(
      (entry) => (entry && this.caughtUp ? this.applyPushed(entry) : this.pushedSoon()),
      (listening, why) => {
        this.pushed = listening
        this.log(
          listening
            ? `revocations pushed (LISTEN): polling every ${PUSH_POLL_MS} ms as a safety net`
            : `revocations not pushed (${why}): polling every ${this.pollMs} ms`,
        )
        this.schedule()
      },
      (publishing) =>
        this.log(publishing ? `revocation publisher: this process announces every process's revocations (NOTIFY)` : 'no longer the revocation publisher'),
    )
    this.schedule()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.pushTimer)
    await this.watch?.close()
  }

  /** False until every unexpired revocation was read once: no token can be trusted before. */
  get ready(): boolean {
    return this.loaded
  }

  /** How many revoked sessions are known (those that could still hold unexpired tokens). */
  get size(): number {
    return this.revoked.size
  }

  isRevoked(sessionId: string): boolean {
    return this.revoked.has(sessionId)
  }

  /**
   * Called after each read that found revocations (local or from another process), with what they
   * revoked: per-process caches (the auth-user cache) drop what they hold.
   */
  onChange(listener: (events: RevocationEvent[]) => void): void {
    this.listeners.push(listener)
  }

  /**
   * Reads what is new; call after a local revocation to see it at once. Reads run one after
   * another; a caller waits for one that began after its call, and callers arriving while one is
   * queued share it (a burst of notifications costs one read, not one each).
   */
  sync(): Promise<void> {
    if (this.queued) return this.queued
    const next = this.running.then(async () => {
      this.queued = undefined
      try {
        await this.load()
      } catch (err) {
        // Logged once per outage, not 4 times a second.
        if (!this.failing) this.onError(err)
        this.failing = true
        throw err
      }
      if (this.failing) this.log('revocation reads recovered')
      this.failing = false
      this.loaded = true
    })
    this.queued = next
    this.running = next.catch(() => {})
    return next
  }

  /**
   * A notification carried its log entry: applied at once, no read. An entry after a skipped
   * position records the gap as a read would, so the safety poll asks for it again.
   */
  private applyPushed(entry: RevocationEntry) {
    if (this.apply(entry, this.clock())) {
      const events = [{ sessionId: entry.sessionId, userId: entry.userId }]
      for (const listener of this.listeners) listener(events)
    }
  }

  /** A notification arrived: read soon, coalescing a burst into one read per PUSH_MIN_INTERVAL_MS. */
  private pushedSoon() {
    if (this.pushTimer || this.stopped) return
    const wait = Math.max(0, this.lastPushedRead + PUSH_MIN_INTERVAL_MS - this.clock())
    this.pushTimer = setTimeout(() => {
      this.pushTimer = undefined
      this.lastPushedRead = this.clock()
      void this.sync().catch(() => {})
    }, wait)
    this.pushTimer.unref()
  }

  private schedule() {
    clearTimeout(this.timer)
    if (this.stopped) return
    const every = this.pushed ? Math.max(this.pollMs, PUSH_POLL_MS) : this.pollMs
    this.timer = setTimeout(() => {
      void this.sync()
        .catch(() => {})
        .finally(() => this.schedule())
    }, every)
    this.timer.unref()
  }

  private async load(): Promise<void> {
    const nowMs = this.clock()
    const notBefore = Math.floor(nowMs / 1000) - this.slackSeconds
    for (;;) {
      const also = this.gaps.size ? [...this.gaps.keys()] : undefined
      const entries = await this.store.revocationsSince(this.after, { limit: BATCH, notBefore, ...(also ? { also } : {}) })
      const events: RevocationEvent[] = []
      for (const e of entries) if (this.apply(e, nowMs)) events.push({ sessionId: e.sessionId, userId: e.userId })
      if (events.length) for (const listener of this.listeners) listener(events)
      if (entries.length < BATCH) break
      await yieldToEventLoop()
    }
    this.caughtUp = true
    for (const [seq, since] of this.gaps) if (nowMs - since > GAP_WAIT_MS) this.gaps.delete(seq)
    this.prune(nowMs)
  }

  /** True when the entry was new to this process. */
  private apply(e: RevocationEntry, nowMs: number): boolean {
    if (e.seq > this.after) {
      // Positions between the last one applied and this one may belong to transactions that
      // commit later (PostgreSQL sequences are not commit-ordered): look for them next time.
      for (let missing = this.after + 1; missing < e.seq && this.gaps.size < MAX_GAPS; missing++) {
        if (this.caughtUp) this.gaps.set(missing, nowMs)
      }
      this.after = e.seq
    } else if (!this.gaps.delete(e.seq)) {
      return false // already applied
    }
    if (e.sessionId !== null && !this.revoked.has(e.sessionId)) {
      this.revoked.set(e.sessionId, e.expiresAt)
      const minute = Math.ceil((e.expiresAt + this.slackSeconds) / 60)
      const bucket = this.expiring.get(minute)
      if (bucket) bucket.push(e.sessionId)
      else this.expiring.set(minute, [e.sessionId])
    }
    return true
  }

  /** Forgets sessions whose tokens have all expired: memory follows the unexpired revocations. */
  private prune(nowMs: number) {
    const minute = Math.floor(nowMs / 60_000)
    for (const [m, ids] of this.expiring) {
      if (m > minute) continue
      for (const id of ids) this.revoked.delete(id)
      this.expiring.delete(m)
    }
  }
}
