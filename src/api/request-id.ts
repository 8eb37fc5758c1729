// Every request's id: the client's X-Request-Id when it is well-formed (nginx's site config keeps
// the same rule for the answers it makes itself), otherwise one made here. The app stamps it on
// its answer and logs it; nginx logs the id the app answered with, so both logs join up.
import { randomBytes } from 'node:crypto'

const WELL_FORMED = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Ids made here: a random per-process prefix and a counter. Unique across workers and restarts
 * like a UUID, without a UUID's cost on every request (~5% of a cheap request).
 */
const PREFIX = randomBytes(6).toString('hex')
let made = 0

/** The request's id, from its X-Request-Id header (as Node gives it: a string, or undefined). */
export function requestId(header: string | string[] | undefined): string {
  return typeof header === 'string' && WELL_FORMED.test(header) ? header : `${PREFIX}-${(++made).toString(36)}`
}
