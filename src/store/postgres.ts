// The PostgreSQL store, for several hosts behind one nginx (SQLite serves one host). Same
// behaviour as SqliteStore, proven by the shared suite in test/store/behaviour.ts. Rotation and
// logout lock the token and its session row (SELECT … FOR UPDATE), so concurrent presentations
// of one refresh token on any host serialize and exactly one wins.
import pg from 'pg'
import { POSTGRES_MIGRATIONS } from './migrations.js'
import { DuplicateUserError, type AuthUser, type RevokedSession, type RotateOutcome, type Store, type User } from './store.js'

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

export class PostgresStore implements Store {
  readonly kind = 'postgres'
  readonly pool: pg.Pool

  /** `schema` (tests) isolates the tables in their own search_path. */
  constructor(url: string, opts: { schema?: string; max?: number } = {}) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    })
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => {})
  }

  private async one<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.pool.query<T>(sql, params)).rows[0]
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
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
    await this.pool.query('SELECT 1')
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end()
  }

  async createUser(username: string, passwordHash: string): Promise<User> {
    try {
      const row = await this.one<UserRow>(
        'INSERT INTO users (username, password_hash, is_active, date_joined) VALUES ($1, $2, true, $3) RETURNING *',
        [username, passwordHash, now()],
      )
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
    return (await this.pool.query<UserRow>('SELECT * FROM users ORDER BY id')).rows.map(toUser)
  }

  private async revokeUser(c: pg.PoolClient, userId: number, reason: string) {
    const r = await c.query('UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE user_id = $3 AND revoked_at IS NULL', [now(), reason, userId])
    if (r.rowCount) await bump(c)
  }

  async setPassword(userId: number, passwordHash: string): Promise<void> {
    await this.tx(async (c) => {
      await c.query('UPDATE users SET password_hash = $1 WHERE id = $2', [passwordHash, userId])
      await this.revokeUser(c, userId, 'password_change')
    })
  }

  async upgradePasswordHash(userId: number, oldHash: string, newHash: string): Promise<boolean> {
    const r = await this.pool.query('UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3', [newHash, userId, oldHash])
    return r.rowCount === 1
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
    await this.pool.query('UPDATE users SET last_login = $1 WHERE id = $2', [at, userId])
  }

  async createSession(s: { sessionId: string; userId: number; refreshJti: string; issuedAt: number; expiresAt: number }): Promise<void> {
    await this.tx(async (c) => {
      await c.query('INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [s.sessionId, s.userId, s.issuedAt, s.expiresAt])
      await c.query('INSERT INTO refresh_tokens (jti, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)', [s.refreshJti, s.sessionId, s.issuedAt, s.expiresAt])
    })
  }

  /** The token and its session, both locked until the transaction ends. */
  private async lockToken(c: pg.PoolClient, jti: string) {
    return (
      await c.query<{ session_id: string; retired_at: string | null; session_revoked_at: string | null }>(
        `SELECT t.session_id, t.retired_at, s.revoked_at AS session_revoked_at
           FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
          WHERE t.jti = $1 FOR UPDATE OF t, s`,
        [jti],
      )
    ).rows[0]
  }

  async rotateRefresh(r: { jti: string; now: number; graceSeconds: number; blacklistOld: boolean; next?: { jti: string; expiresAt: number } }): Promise<RotateOutcome> {
    return this.tx(async (c): Promise<RotateOutcome> => {
      const row = await this.lockToken(c, r.jti)
      if (!row) return { result: 'unknown' }
      if (row.session_revoked_at !== null) return { result: 'blacklisted', familyRevoked: false }
      if (row.retired_at !== null) {
        if (r.now - Number(row.retired_at) < r.graceSeconds) return { result: 'blacklisted', familyRevoked: false }
        await c.query("UPDATE sessions SET revoked_at = $1, revoked_reason = 'reuse_detected' WHERE id = $2", [r.now, row.session_id])
        await bump(c)
        return { result: 'blacklisted', familyRevoked: true }
      }
      if (r.blacklistOld) await c.query('UPDATE refresh_tokens SET retired_at = $1 WHERE jti = $2', [r.now, r.jti])
      if (r.next) {
        await c.query('INSERT INTO refresh_tokens (jti, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)', [r.next.jti, row.session_id, r.now, r.next.expiresAt])
        await c.query('UPDATE sessions SET expires_at = GREATEST(expires_at, $1) WHERE id = $2', [r.next.expiresAt, row.session_id])
      }
      return { result: 'rotated' }
    })
  }

  async blacklistRefresh(jti: string, at: number): Promise<RotateOutcome> {
    return this.tx(async (c): Promise<RotateOutcome> => {
      const row = await this.lockToken(c, jti)
      if (!row) return { result: 'unknown' }
      if (row.retired_at !== null || row.session_revoked_at !== null) return { result: 'blacklisted', familyRevoked: false }
      await c.query('UPDATE refresh_tokens SET retired_at = $1 WHERE jti = $2', [at, jti])
      await c.query("UPDATE sessions SET revoked_at = $1, revoked_reason = 'logout' WHERE id = $2", [at, row.session_id])
      await bump(c)
      return { result: 'rotated' }
    })
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

  async revocationVersion(): Promise<number> {
    return Number((await this.one<{ value: string }>("SELECT value FROM counters WHERE name = 'revocations'"))!.value)
  }

  async revokedSessions(at: number): Promise<RevokedSession[]> {
    const rows = await this.pool.query<{ id: string; expires_at: string }>('SELECT id, expires_at FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > $1', [at])
    return rows.rows.map((r) => ({ id: r.id, expiresAt: Number(r.expires_at) }))
  }

  async flushExpired(at: number): Promise<number> {
    return this.tx(async (c) => {
      const n = (await c.query('DELETE FROM refresh_tokens WHERE expires_at <= $1', [at])).rowCount ?? 0
      await c.query('DELETE FROM sessions WHERE expires_at <= $1 AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = sessions.id)', [at])
      await c.query('DELETE FROM rate_limits WHERE reset_at <= $1', [at * 1000])
      return n
    })
  }

  async hit(key: string, windowMs: number, at: number): Promise<{ count: number; resetAt: number }> {
    const row = await this.one<{ count: number; reset_at: string }>(
      `INSERT INTO rate_limits (key, count, reset_at) VALUES ($1, 1, $2)
         ON CONFLICT (key) DO UPDATE SET
           count = CASE WHEN rate_limits.reset_at <= $3 THEN 1 ELSE rate_limits.count + 1 END,
           reset_at = CASE WHEN rate_limits.reset_at <= $3 THEN EXCLUDED.reset_at ELSE rate_limits.reset_at END
       RETURNING count, reset_at`,
      [key, at + windowMs, at],
    )
    return { count: row!.count, resetAt: Number(row!.reset_at) }
  }
}

const bump = (c: pg.PoolClient) => c.query("UPDATE counters SET value = value + 1 WHERE name = 'revocations'")
const now = () => Math.floor(Date.now() / 1000)
