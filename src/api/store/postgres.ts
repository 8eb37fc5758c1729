// The PostgreSQL store, for several hosts behind one nginx (SQLite serves one host). Same
// behaviour as SqliteStore, proven by the shared suite in test/store/behaviour.ts. Rotation and
// logout are one statement each (the runway_rotate/runway_logout functions of migration 4, without
// their NOTIFY since migration 6: see store/pg-listen.ts for who announces revocations): they
// lock the token and its session row (SELECT … FOR UPDATE), so concurrent presentations of one
// refresh token on any host serialize and exactly one wins, in one round trip.
//
// Faults: no database event may end the process. Every client, idle or checked out, has an
// 'error' listener; every query has a client-side timeout (a SIGSTOPped server never answers) and
// the server its statement_timeout; a failed connection is dropped from the pool, not reused.
// Faults of the database (down, restarting, hung, out of connections, terminated backends) reach
// callers as StoreUnavailableError (503 + Retry-After); client mistakes (a duplicate username) keep
// their own errors.
import pg from 'pg'
import { parse as parseConnectionString } from 'pg-connection-string'
import { POSTGRES_MIGRATIONS } from './migrations.js'
import { parsePayload, watchNotifications } from './pg-listen.js'
import {
  DuplicateUserError,
  REVOCATION_LOG_KEEP_SECONDS,
  StoreUnavailableError,
  type AuthUser,
  type RevocationEntry,
  type RotateOutcome,
  type Store,
  type User,
} from './store.js'

interface UserRow {
  id: string
  username: string
  password_hash: string
  is_active: boolean
  date_joined: string
  last_login: string | null
}

const toUser = (r: UserRow): User => ({
  id: Number(r.id),
  username: r.username,
  passwordHash: r.password_hash,
  isActive: r.is_active,
  dateJoined: Number(r.date_joined),
  lastLogin: r.last_login === null ? null : Number(r.last_login),
})

// Any 32-bit number, the same in every process: migrations hold this advisory lock.
const MIGRATION_LOCK = 0x72756e77
/** The database's clock, in epoch seconds and milliseconds: the one clock all hosts share. */
const DB_NOW = 'floor(extract(epoch from clock_timestamp()))::bigint'
const DB_NOW_MS = 'floor(extract(epoch from clock_timestamp()) * 1000)::bigint'

export interface PostgresOptions {
  /** Tests: the tables live in their own search_path. */
  schema?: string
  /** Connections this process may open (DB_POOL_SIZE). */
  poolSize?: number
  idleTimeoutMs?: number
  /** Waiting for a connection, new or pooled (DB_CONNECT_TIMEOUT); URL connect_timeout wins. */
  connectTimeoutMs?: number
  /** Server-side statement_timeout sent at connect; 0 = not sent. URL statement_timeout wins. */
  statementTimeoutMs?: number
  /** Client-side limit on waiting for any answer; 0 = none. */
  queryTimeoutMs?: number
  /** Revocation push: LISTEN on this direct connection ('' = the main URL; null = no push, poll). */
  listenUrl?: string | null
  /** Told when this process starts or stops announcing the fleet's revocations (store/pg-listen.ts). */
  onPublisher?: (publishing: boolean) => void
  /** Tests: how often the LISTEN connection is probed (10 s). */
  listenHeartbeatMs?: number
}

// SQLSTATE classes that mean "the database cannot serve now", not "this request is wrong":
// 08 connection exception, 53 insufficient resources (53300 too many connections), 57 operator
// intervention (57P01 admin shutdown, 57014 statement timeout), 58 system error, 40 transaction
// rollback (serialization, deadlock), 55 object not in state (lock timeout), 28 invalid
// authorization (credentials changed under a running fleet), 3D no such database.
const UNAVAILABLE_CLASSES = new Set(['08', '53', '57', '58', '40', '55', '28', '3D'])
// Errors pg raises itself, without a SQLSTATE, when the connection is lost or never answers.
// TLS failures (sslmode=require against a server without SSL, a certificate that does not verify)
// are faults of the connection too: 503, never a 500, and never a silent fall back to plain text.
const DRIVER_FAULT =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Cannot use a pool after calling end|connection error|ECONNRESET|ECONNREFUSED|EPIPE|SSL|TLS|certificate/i

/** Is `err` a fault of the database or the network (as opposed to a bug or a client mistake)? */
export function isDatabaseFault(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true
  if (!(err instanceof Error)) return false
  const { code, syscall } = err as { code?: unknown; syscall?: unknown }
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return UNAVAILABLE_CLASSES.has(code.slice(0, 2))
  if (typeof syscall === 'string') return true // ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENOTFOUND, ...
  return DRIVER_FAULT.test(err.message)
}

export class PostgresStore implements Store {
  readonly kind = 'postgres'
  readonly pool: pg.Pool
  /** host:port/database, for messages (never the password). */
  readonly target: string

  constructor(
    readonly url: string,
    private readonly opts: PostgresOptions = {},
  ) {
    const parsed = parseConnectionString(url)
    this.target = `${parsed.host ?? 'localhost'}:${parsed.port ?? 5432}/${parsed.database ?? ''}`
    // libpq's connect_timeout (seconds) in the URL; pg itself ignores it for pooled connections.
    const urlConnectTimeout = Number((parsed as { connect_timeout?: string }).connect_timeout)
    const statementTimeout = opts.statementTimeoutMs ?? 5000
    const queryTimeout = opts.queryTimeoutMs ?? 6000
    this.pool = new pg.Pool({
      // pg parses the URL itself, and its parameters (sslmode, sslrootcert, application_name,
      // options, statement_timeout, ...) win over the options given here.
      connectionString: url,
      max: opts.poolSize ?? 10,
      idleTimeoutMillis: opts.idleTimeoutMs ?? 30_000,
      connectionTimeoutMillis: urlConnectTimeout > 0 ? urlConnectTimeout * 1000 : (opts.connectTimeoutMs ?? 3000),
      ...(statementTimeout > 0 ? { statement_timeout: statementTimeout } : {}),
      ...(queryTimeout > 0 ? { query_timeout: queryTimeout } : {}),
      // TCP keepalives: a connection to a host that vanished (failover, cable) is noticed.
      keepAlive: true,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    })
    // An idle client losing its connection (restart, pg_terminate_backend) must not crash the
    // process: pg-pool drops it and the next query connects again.
    this.pool.on('error', () => {})
  }

  /** Database faults become StoreUnavailableError; anything else is rethrown as it is. */
  private wrap(err: unknown): never {
    if (err instanceof StoreUnavailableError) throw err
    if (!isDatabaseFault(err)) throw err
    const cause = err as Error & { code?: string }
    throw new StoreUnavailableError(`PostgreSQL at ${this.target} unavailable: ${cause.message}${cause.code ? ` (${cause.code})` : ''}`, { cause: err })
  }

  private async rows<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      return (await this.pool.query<T>(sql, params)).rows
    } catch (err) {
      throw this.wrap(err)
    }
  }

  private async one<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.rows<T>(sql, params))[0]
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      throw this.wrap(err)
    }
    // A checked-out client has no pool listener: without this one, the server ending the
    // connection mid-transaction ("terminating connection due to administrator command") would
    // be an unhandled 'error' event, and the process would exit.
    let broken: unknown
    const onError = (err: unknown) => {
      broken ??= err
    }
    client.on('error', onError)
    try {
      await client.query('BEGIN')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      if (isDatabaseFault(err)) broken ??= err
      else await client.query('ROLLBACK').catch((e: unknown) => (broken ??= e))
      throw this.wrap(err)
    } finally {
      client.off('error', onError)
      // A broken connection is destroyed, never handed to the next request.
      client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true)
    }
  }

  async migrate(): Promise<void> {
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
      await c.query('CREATE TABLE IF NOT EXISTS runway_schema (version integer NOT NULL)')
      const row = (await c.query<{ version: number }>('SELECT version FROM runway_schema')).rows[0]
      if (!row) await c.query('INSERT INTO runway_schema (version) VALUES (0)')
      for (const [i, sql] of POSTGRES_MIGRATIONS.entries()) {
        if (i + 1 <= (row?.version ?? 0)) continue
        await c.query(sql)
        await c.query('UPDATE runway_schema SET version = $1', [i + 1])
      }
    })
  }

  async ping(): Promise<void> {
    await this.rows('SELECT 1')
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end()
  }

  async createUser(username: string, passwordHash: string): Promise<User> {
    try {
      const row = await this.one<UserRow>('INSERT INTO users (username, password_hash, is_active, date_joined) VALUES ($1, $2, true, $3) RETURNING *', [
        username,
        passwordHash,
        now(),
      ])
      return toUser(row!)
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new DuplicateUserError(username)
      throw err
    }
  }

  async findUserByUsername(username: string): Promise<User | null> {
    const row = await this.one<UserRow>('SELECT * FROM users WHERE username = $1', [username])
    return row ? toUser(row) : null
  }

  async findUserById(id: number): Promise<User | null> {
    const row = await this.one<UserRow>('SELECT * FROM users WHERE id = $1', [id])
    return row ? toUser(row) : null
  }

  async findAuthUser(id: number): Promise<AuthUser | null> {
    const row = await this.one<Pick<UserRow, 'id' | 'username' | 'is_active'>>('SELECT id, username, is_active FROM users WHERE id = $1', [id])
    return row ? { id: Number(row.id), username: row.username, isActive: row.is_active } : null
  }

  async listUsers(): Promise<User[]> {
    return (await this.rows<UserRow>('SELECT * FROM users ORDER BY id')).map(toUser)
  }

  /** Every session of the user and the user itself: marked and logged in one statement (the publisher announces them). */
  private async revokeUser(c: pg.PoolClient, userId: number, reason: string) {
    await c.query(
      `WITH revoked AS (
         UPDATE sessions SET revoked_at = ${DB_NOW}, revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL
         RETURNING id, user_id, expires_at
       )
       INSERT INTO revocations (session_id, user_id, expires_at)
       SELECT id, user_id, expires_at FROM revoked UNION ALL SELECT NULL, $1, ${DB_NOW}`,
      [userId, reason],
    )
  }

  async setPassword(userId: number, passwordHash: string): Promise<void> {
    await this.tx(async (c) => {
      await c.query('UPDATE users SET password_hash = $1 WHERE id = $2', [passwordHash, userId])
      await this.revokeUser(c, userId, 'password_change')
    })
  }

  async upgradePasswordHash(userId: number, oldHash: string, newHash: string): Promise<boolean> {
    const rows = await this.rows('UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3 RETURNING id', [newHash, userId, oldHash])
    return rows.length === 1
  }

  async setActive(userId: number, active: boolean): Promise<void> {
    await this.tx(async (c) => {
      await c.query('UPDATE users SET is_active = $1 WHERE id = $2', [active, userId])
      if (!active) await this.revokeUser(c, userId, 'deactivated')
    })
  }

  async deleteUser(userId: number): Promise<void> {
    await this.tx(async (c) => {
      await this.revokeUser(c, userId, 'deleted')
      await c.query('DELETE FROM users WHERE id = $1', [userId])
    })
  }

  async recordLogin(userId: number, at: number): Promise<void> {
    await this.rows('UPDATE users SET last_login = $1 WHERE id = $2', [at, userId])
  }

  /** The session and its first token in one statement (one round trip, atomic). */
  async createSession(s: { sessionId: string; userId: number; refreshJti: string; issuedAt: number; expiresAt: number }): Promise<void> {
    await this.rows(
      `WITH session AS (INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id)
       INSERT INTO refresh_tokens (jti, session_id, issued_at, expires_at) SELECT $5, id, $3, $4 FROM session`,
      [s.sessionId, s.userId, s.issuedAt, s.expiresAt, s.refreshJti],
    )
  }

  /** One round trip: runway_rotate_quiet() (migration 6) locks, checks and writes in one transaction. */
  async rotateRefresh(r: {
    jti: string
    now: number
    graceSeconds: number
    blacklistOld: boolean
    next?: { jti: string; expiresAt: number }
  }): Promise<RotateOutcome> {
    const row = await this.one<{ outcome: string }>('SELECT runway_rotate_quiet($1, $2, $3, $4, $5, $6) AS outcome', [
      r.jti,
      r.now,
      r.graceSeconds,
      r.blacklistOld,
      r.next?.jti ?? null,
      r.next?.expiresAt ?? null,
    ])
    return outcome(row!.outcome)
  }

  /** One round trip: runway_logout_quiet() (migration 6). */
  async blacklistRefresh(jti: string, _at: number): Promise<RotateOutcome> {
    return outcome((await this.one<{ outcome: string }>('SELECT runway_logout_quiet($1) AS outcome', [jti]))!.outcome)
  }

  async isRevoked(t: { jti?: string; sessionId?: string }): Promise<boolean> {
    const row = await this.one(
      `SELECT 1 FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
        WHERE t.jti = $1 AND (t.retired_at IS NOT NULL OR s.revoked_at IS NOT NULL)
       UNION ALL
       SELECT 1 FROM sessions WHERE id = $2 AND revoked_at IS NOT NULL`,
      [t.jti ?? null, t.sessionId ?? null],
    )
    return row !== undefined
  }

  watchRevocations(
    onChange: (entry?: RevocationEntry) => void,
    onState: (listening: boolean, why: string) => void,
    onPublisher?: (publishing: boolean) => void,
  ): { close(): Promise<void> } {
    if (this.opts.listenUrl === null) {
      onState(false, 'revocation push is off')
      return { close: async () => {} }
    }
    const url = this.opts.listenUrl || this.url
    const connectTimeoutMs = this.opts.connectTimeoutMs ?? 3000
    return watchNotifications({
      url,
      ...(this.opts.schema ? { options: `-c search_path=${this.opts.schema}` } : {}),
      connectTimeoutMs,
      notify: (channel, payload) => this.rows('SELECT pg_notify($1, $2)', [channel, payload]),
      onChange: (payload) => {
        const entries = parsePayload(payload)
        if (!entries.length) onChange()
        for (const e of entries) onChange(e)
      },
      onState,
      onPublisher: (publishing) => {
        onPublisher?.(publishing)
        this.opts.onPublisher?.(publishing)
      },
      ...(this.opts.listenHeartbeatMs ? { heartbeatMs: this.opts.listenHeartbeatMs } : {}),
    })
  }

  async revocationsSince(after: number, o: { limit: number; notBefore: number; also?: number[] }): Promise<RevocationEntry[]> {
    const rows = await this.rows<{ seq: string; session_id: string | null; user_id: string; expires_at: string }>(
      `SELECT seq, session_id, user_id, expires_at FROM revocations
        WHERE (seq > $1 OR seq = ANY($2::bigint[])) AND expires_at > $3 ORDER BY seq LIMIT $4`,
      [after, o.also ?? [], o.notBefore, o.limit],
    )
    return rows.map((r) => ({ seq: Number(r.seq), sessionId: r.session_id, userId: Number(r.user_id), expiresAt: Number(r.expires_at) }))
  }

  async flushExpired(at: number): Promise<number> {
    return this.tx(async (c) => {
      const n = (await c.query('DELETE FROM refresh_tokens WHERE expires_at <= $1', [at])).rowCount ?? 0
      await c.query('DELETE FROM sessions WHERE expires_at <= $1 AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = sessions.id)', [at])
      await c.query('DELETE FROM revocations WHERE expires_at <= $1', [at - REVOCATION_LOG_KEEP_SECONDS])
      return n
    })
  }

  async flushRateLimits(at: number): Promise<void> {
    await this.rows('DELETE FROM rate_limits WHERE reset_at <= $1', [at])
  }

  /**
   * Fixed windows on the database's clock (`at` only translates the answer into the caller's
   * clock): hosts whose clocks disagree still share one window per key.
   */
  async hit(key: string, windowMs: number, at: number): Promise<{ count: number; resetAt: number }> {
    const row = await this.one<{ count: number; reset_at: string; db_now: string }>(
      `INSERT INTO rate_limits (key, count, reset_at) VALUES ($1, 1, ${DB_NOW_MS} + $2)
         ON CONFLICT (key) DO UPDATE SET
           count = CASE WHEN rate_limits.reset_at <= EXCLUDED.reset_at - $2 THEN 1 ELSE rate_limits.count + 1 END,
           reset_at = CASE WHEN rate_limits.reset_at <= EXCLUDED.reset_at - $2 THEN EXCLUDED.reset_at ELSE rate_limits.reset_at END
       RETURNING count, reset_at, ${DB_NOW_MS} AS db_now`,
      [key, windowMs],
    )
    return { count: row!.count, resetAt: at + Number(row!.reset_at) - Number(row!.db_now) }
  }
}

const now = () => Math.floor(Date.now() / 1000)

function outcome(text: string): RotateOutcome {
  if (text === 'rotated') return { result: 'rotated' }
  if (text === 'unknown') return { result: 'unknown' }
  return { result: 'blacklisted', familyRevoked: text === 'reused' }
}
