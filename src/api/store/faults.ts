// What the process knows about its store's health: faults seen by requests (each answered 503 +
// Retry-After) are logged once per burst rather than once per request, and readiness combines
// them with a cached probe so /readyz tells the truth within a second and recovers by itself.
import type { FastifyBaseLogger } from 'fastify'
import { StoreUnavailableError } from './store.js'

/** A later fault starts a new burst (and a new log line) after this long without one. */
const QUIET_MS = 10_000
/** While a burst lasts, one reminder line this often with the count so far. */
const REMIND_MS = 60_000
/** A fault seen by a request keeps readiness at 503 this long, even when the probe passes. */
const RECENT_MS = 2_000
/** How long one probe result answers /readyz (a probe is one committed write on SQLite). */
const PROBE_CACHE_MS = 500

interface Burst {
  since: number
  lastAt: number
  lastLogged: number
  count: number
  last: StoreUnavailableError
}

export class StoreHealth {
  /** Every fault reported since the start (runway_store_errors_total). */
  faults = 0
  private burst?: Burst
  private probed?: { at: number; result: Promise<StoreUnavailableError | undefined> }

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly probe: () => Promise<void>,
  ) {}

  /** A store fault met by a request or a background task: logged on the first of a burst. */
  report(err: StoreUnavailableError, reqId?: string): void {
    this.faults++
    const now = Date.now()
    const b = this.burst
    if (!b || now - b.lastAt > QUIET_MS) {
      this.burst = { since: now, lastAt: now, lastLogged: now, count: 1, last: err }
      this.log.error({ err, reqId }, `store unavailable, answering 503 until it recovers: ${err.message}`)
      return
    }
    b.count++
    b.lastAt = now
    b.last = err
    if (now - b.lastLogged >= REMIND_MS) {
      b.lastLogged = now
      this.log.error({ failures: b.count, sinceMs: now - b.since }, `store still unavailable: ${err.message}`)
    }
  }

  /** Readiness: undefined when the store can serve writes, else the fault that says why. */
  async check(reqId?: string): Promise<StoreUnavailableError | undefined> {
    const now = Date.now()
    if (!this.probed || now - this.probed.at >= PROBE_CACHE_MS) {
      this.probed = {
        at: now,
        result: this.probe().then(
          () => undefined,
          (err: unknown) => asFault(err),
        ),
      }
    }
    const fault = await this.probed.result
    if (fault) {
      this.report(fault, reqId)
      return fault
    }
    const b = this.burst
    if (b && Date.now() - b.lastAt < RECENT_MS) return b.last
    if (b) {
      this.burst = undefined
      this.log.info({ failures: b.count, durationMs: b.lastAt - b.since }, 'store available again')
    }
    return undefined
  }
}

function asFault(err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err
  return new StoreUnavailableError(`store probe failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}
