// The store interface: everything runway persists. One interface, one behaviour suite
// (test/store/behaviour.ts) that every implementation must pass.

export interface User {
  id: number
  username: string
  passwordHash: string
  isActive: boolean
  dateJoined: number // epoch seconds
  lastLogin: number | null
}

/** Who an access token belongs to, as authentication sees it. */
export type AuthUser = Pick<User, 'id' | 'username' | 'isActive'>

export type RotateOutcome =
  | { result: 'rotated' }
  /** The token was already rotated or blacklisted, or its session revoked. */
  | { result: 'blacklisted'; familyRevoked: boolean }
  /** Signed by us but never recorded (flushed after expiry, or another deployment's). */
  | { result: 'unknown' }

/** flushExpired keeps revocation log entries this long past their expiry (slack for readers). */
export const REVOCATION_LOG_KEEP_SECONDS = 86_400

/** One row of the revocation log. */
export interface RevocationEntry {
  /** Position in the log: increases with every revocation. */
  seq: number
  /** The revoked session, or null for the user as a whole (password change, deactivation, deletion). */
  sessionId: string | null
  userId: number
  /** After this instant (epoch seconds) no token of the session can be valid anyway. */
  expiresAt: number
}

/**
 * Where rate limits count: fixed-window counters shared by every process that uses the same
 * backing (so N workers or hosts do not allow N times a limit). SqliteStore and PostgresStore
 * implement it on their rate_limits table; another backing (Redis, say) implements this interface
 * and is given to buildApp as `deps.rateLimits`. The limiters themselves live in
 * plugins/rate-limit.ts.
 */
export interface RateLimitStore {
  /**
   * Counts a hit on `key`: the count in its current window (1 for the first hit) and when that
   * window ends (epoch ms, in the caller's clock `now`). A window starts with the first hit after
   * the previous one ended and lasts `windowMs`.
   */
  hit(key: string, windowMs: number, now: number): Promise<{ count: number; resetAt: number }>
  /** Deletes the counters whose window ended at or before `now` (epoch ms); `runway tokens flush-expired` calls it. */
  flushRateLimits(now: number): Promise<void>
}

export interface Store extends RateLimitStore {
  readonly kind: string
  /** Applies pending migrations; safe when several processes call it at once. */
  migrate(): Promise<void>
  /** Throws when the store cannot answer. */
  ping(): Promise<void>
  close(): Promise<void>

  createUser(username: string, passwordHash: string): Promise<User>
  findUserByUsername(username: string): Promise<User | null>
  findUserById(id: number): Promise<User | null>
  /**
   * The read behind every authenticated request: only what authentication needs (no hash).
   * A store that can answer synchronously (SQLite) returns the user itself, so the hot path
   * needs no promise; callers that await it get either.
   */
  findAuthUser(id: number): AuthUser | null | Promise<AuthUser | null>
  listUsers(): Promise<User[]>
  /** Sets the hash and revokes every session of the user, atomically. */
  setPassword(userId: number, passwordHash: string): Promise<void>
  /**
   * Replaces the hash with the same password's hash at the current cost (on login), only while
   * it is still `oldHash`; sessions stay. False when the hash changed meanwhile.
   */
  upgradePasswordHash(userId: number, oldHash: string, newHash: string): Promise<boolean>
  /** Deactivation also revokes every session of the user. */
  setActive(userId: number, active: boolean): Promise<void>
  deleteUser(userId: number): Promise<void>
  recordLogin(userId: number, at: number): Promise<void>

  /** A login: a new session (token family) and its first refresh token. */
  createSession(s: { sessionId: string; userId: number; refreshJti: string; issuedAt: number; expiresAt: number }): Promise<void>
  /**
   * Atomically retires refresh token `jti` and records `next` (when given) in the same session.
   * Presenting a retired token again revokes the whole session, unless it was retired less than
   * `graceSeconds` ago (two tabs refreshing at once), which is refused without revoking.
   */
  rotateRefresh(r: { jti: string; now: number; graceSeconds: number; blacklistOld: boolean; next?: { jti: string; expiresAt: number } }): Promise<RotateOutcome>
  /** Logout: blacklists the refresh token and revokes its session. */
  blacklistRefresh(jti: string, now: number): Promise<RotateOutcome>
  /** For /api/token/verify/: is this token (refresh jti or session) dead? */
  isRevoked(t: { jti?: string; sessionId?: string }): Promise<boolean>
  /**
   * The revocation log after position `after` (0: from the start), oldest first, at most `limit`
   * entries, skipping those that expired before `notBefore`; also the entries at positions `also`
   * (positions a reader saw skipped: on PostgreSQL a transaction can commit a lower seq after a
   * higher one). One indexed range read: cheap enough to poll several times a second.
   */
  revocationsSince(after: number, o: { limit: number; notBefore: number; also?: number[] }): Promise<RevocationEntry[]>
  /**
   * Push: calls `onChange` soon after any process recorded a revocation (PostgreSQL LISTEN/NOTIFY
   * on a dedicated connection), with the log entry when the notification carried it (then no
   * read is needed), without one when the reader should read the log. `onState` says whether pushes currently arrive; while they do
   * not, readers must poll. Absent: the store cannot push (SQLite: poll, it is one local file).
   * `onPublisher`: this process started (true) or stopped announcing every process's revocations
   * to the others (PostgreSQL: one publisher per database, see store/pg-listen.ts).
   */
  watchRevocations?(
    onChange: (entry?: RevocationEntry) => void,
    onState: (listening: boolean, why: string) => void,
    onPublisher?: (publishing: boolean) => void,
  ): { close(): Promise<void> }
  /**
   * Deletes expired refresh tokens and sessions, and revocation log entries
   * REVOCATION_LOG_KEEP_SECONDS past their expiry; returns how many tokens went. (Rate-limit
   * counters: flushRateLimits.)
   */
  flushExpired(now: number): Promise<number>
  /**
   * Housekeeping each process runs every few seconds (optional): SQLite prunes expired rate-limit
   * counters a batch at a time, so a flood of distinct keys does not grow the file for good.
   */
  maintain?(now: number): Promise<void>
}

export class DuplicateUserError extends Error {
  override name = 'DuplicateUserError'
  constructor(username: string) {
    super(`a user named ${JSON.stringify(username)} already exists`)
  }
}

/**
 * The store cannot answer right now: down, unreachable, timed out, out of connections, disk full,
 * read-only or corrupt. Store implementations wrap such faults in this error (keeping the driver's
 * error as `cause`); the error plugin answers it with 503 + Retry-After instead of a 500, and
 * readiness reports it. A client mistake (a duplicate username, say) is never one of these.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError'
  constructor(
    /** One line for logs and operators: what failed, without secrets. */
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/**
 * A store fault that restarting cannot fix (a corrupt or read-only database file, a file this
 * user may not open): at start the process refuses with one line naming the file and the fix, and
 * exits 78, which pm2 (stop_exit_codes) and systemd do not restart into a crash loop.
 */
export class StoreNeedsOperatorError extends StoreUnavailableError {
  override name = 'StoreNeedsOperatorError'
  constructor(
    message: string,
    /** What the operator should do, one line. */
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}
