// Helpers for the PostgreSQL fault tests: a bounded background load of GET /api/me/ that records
// every answer, and waiting for an HTTP status.
import { setTimeout as sleep } from 'node:timers/promises'

export interface TrafficResult {
  /** status → count; 0 = no answer (connection refused, reset or timed out). */
  statuses: Record<number, number>
  /** 503 answers without a Retry-After header. */
  unavailableWithoutRetryAfter: number
}

/** `loops` clients calling GET /api/me/ back to back (20 ms apart) until stop() is called. */
export function meTraffic(url: string, token: string, loops = 4) {
  const result: TrafficResult = { statuses: {}, unavailableWithoutRetryAfter: 0 }
  let running = true
  const count = (status: number) => (result.statuses[status] = (result.statuses[status] ?? 0) + 1)
  const workers = Array.from({ length: loops }, async () => {
    while (running) {
      try {
        const res = await fetch(`${url}/api/me/`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) })
        await res.arrayBuffer()
        count(res.status)
        if (res.status === 503 && !res.headers.get('retry-after')) result.unavailableWithoutRetryAfter++
      } catch {
        count(0)
      }
      await sleep(20)
    }
  })
  return {
    /** Stops the clients (idempotent: also a teardown). */
    async stop(): Promise<TrafficResult> {
      running = false
      await Promise.all(workers)
      return result
    },
  }
}

/** Polls `url` until it answers `status` (any body); returns how long that took. */
export async function waitForStatus(url: string, status: number, timeoutMs = 30_000): Promise<number> {
  const started = Date.now()
  let last = 'no answer'
  while (Date.now() - started < timeoutMs) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
      await res.arrayBuffer()
      if (res.status === status) return Date.now() - started
      last = `HTTP ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(100)
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last: ${last})`)
}
