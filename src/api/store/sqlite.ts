// The embedded default store: one SQLite file in WAL mode, shared by every process on the host.
// better-sqlite3 is synchronous; each method is one short statement or one transaction, so the
// event loop is held for microseconds. Cross-process atomicity comes from IMMEDIATE transactions.
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { SQLITE_MIGRATIONS } from './migrations.js'
import {
  DuplicateUserError,
  REVOCATION_LOG_KEEP_SECONDS,
  StoreNeedsOperatorError,
  StoreUnavailableError,
  type AuthUser,
  type RevocationEntry,
  type RotateOutcome,
  type Store,
  type User,
} from './store.js'

interface UserRow {
  id: number
  username: string
  password_hash: string
  is_active: number
  date_joined: number
  last_login: number | null
}
interface TokenRow {
  jti: string
  session_id: string
  retired_at: number | null
  session_revoked_at: number | null
}

const toUser = (r: UserRow): User => ({
  id: r.id,
  username: r.username,
  passwordHash: r.password_hash,
  isActive: r.is_active === 1,
  dateJoined: r.date_joined,
  lastLogin: r.last_login,
})

const corruptFix = (file: string) => `restore it from a backup, or salvage it with \`sqlite3 ${file} .recover | sqlite3 new.sqlite3\``

/**
 * SQLite result codes (by prefix, so extended codes such as SQLITE_IOERR_WRITE or
 * SQLITE_READONLY_DBMOVED match) that mean "the database cannot serve right now", never a
 * client's mistake: what the operator sees in the log, and whether restarting can help.
 */
const FAULTS: { prefix: string; what: string; fix?: (file: string) => string }[] = [
  { prefix: 'SQLITE_FULL', what: 'is full (no space left on its disk)' },
  {
    prefix: 'SQLITE_READONLY',
    what: 'is read-only for this process',
    fix: () => 'give the app user write access to the file, its -wal/-shm files and its directory (chown/chmod u+w)',
  },
  { prefix: 'SQLITE_CORRUPT', what: 'is corrupt', fix: (file) => corruptFix(file) },
  {
    prefix: 'SQLITE_NOTADB',
    what: 'is not a SQLite database (corrupt header)',
    fix: () => 'restore it from a backup, or point DATA_DIR at the right directory',
  },
  { prefix: 'SQLITE_CANTOPEN', what: 'cannot be opened', fix: () => 'check that DATA_DIR exists and the app user may read and write it' },
  { prefix: 'SQLITE_PERM', what: 'may not be accessed by this process', fix: () => 'give the app user read and write access to the file and its directory' },
  { prefix: 'SQLITE_IOERR', what: 'had an I/O error' },
  { prefix: 'SQLITE_BUSY', what: 'stayed locked by another process past the busy timeout' },
  { prefix: 'SQLITE_LOCKED', what: 'is locked' },
  { prefix: 'SQLITE_PROTOCOL', what: 'had a locking protocol error' },
  { prefix: 'SQLITE_NOMEM', what: 'ran out of memory' },
  { prefix: 'SQLITE_NOLFS', what: 'is too large for this file system' },
]

/** The driver's error as a StoreUnavailableError, or undefined when it is not a store fault. */
export function sqliteFault(err: unknown, file: string): StoreUnavailableError | undefined {
  if (err instanceof StoreUnavailableError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') {
    const f = FAULTS.find((f) => code.startsWith(f.prefix))
    if (!f) return undefined
    const message = `SQLite database ${file} ${f.what} (${code})`
    return f.fix ? new StoreNeedsOperatorError(message, f.fix(file), { cause: err }) : new StoreUnavailableError(message, { cause: err })
  }
  // better-sqlite3 throws a TypeError once the connection was closed (shutdown, or a test).
  if (err instanceof TypeError && /database connection is not open/.test(err.message)) {
    return new StoreUnavailableError(`SQLite database ${file} is closed`, { cause: err })
  }
  return undefined
}

export function sqliteFile(dataDir: string): string {
  return join(dataDir, 'runway.sqlite3')
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  readonly db: Database.Database

  constructor(readonly file: string) {
    if (file !== ':memory:') mkdirSync(join(file, '..'), { recursive: true })
    this.db = this.guard(() => new Database(file))
    this.guard(() => {
      // Several pm2 workers write this file: wait for the lock instead of failing at once.
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = NORMAL')
      // After a checkpoint has reset the WAL, truncate the file back to this (it never shrank).
      this.db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`)
      this.db.pragma('foreign_keys = ON')
    })
  }

  /** Runs `fn`, turning SQLite faults into StoreUnavailableError (the 503 + Retry-After path). */
  private guard<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      throw sqliteFault(err, this.file) ?? err
    }
  }

  static open(dataDir: string): SqliteStore {
    return new SqliteStore(sqliteFile(dataDir))
  }

  async migrate(): Promise<void> {
    // IMMEDIATE takes the write lock before reading user_version, so two processes starting
    // together apply each migration once: the second waits, then sees the new version.
    const run = this.db.transaction(() => {
      const current = this.db.pragma('user_version', { simple: true }) as number
      for (const [i, migration] of SQLITE_MIGRATIONS.entries()) {
        if (i + 1 <= current) continue
        if (typeof migration === 'string') this.db.exec(migration)
        else migration(this.db)
        this.db.pragma(`user_version = ${i + 1}`)
      }
    })
    this.guard(() => {
      run.immediate()
      this.prepare()
      // At start only: a corrupt file is refused now, with the fix, instead of failing requests
      // later. quick_check reads every page once (measured: see docs/operations.md, "Faults").
      const check = this.db.pragma('quick_check', { simple: true })
      if (check !== 'ok') {
        throw new StoreNeedsOperatorError(`SQLite database ${this.file} is corrupt (quick_check: ${String(check).split('\n')[0]})`, corruptFix(this.file))
      }
    })
  }

  private stmts?: ReturnType<SqliteStore['buildStatements']>
  private prepare() {
    this.stmts ??= this.buildStatements()
    return this.stmts
  }
  private get q() {
    if (!this.stmts) throw new Error('store used before migrate()')
    return this.stmts
  }

  private buildStatements() {
    const db = this.db
    return {
      userById: db.prepare<[number], UserRow>('SELECT * FROM users WHERE id = ?'),
      // The three columns authentication needs: reading the hash too costs ~3% of GET /api/me/.
      authUserById: db.prepare<[number], Pick<UserRow, 'id' | 'username' | 'is_active'>>('SELECT id, username, is_active FROM users WHERE id = ?'),
      userByName: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?'),
      users: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY id'),
      insertUser: db.prepare<[string, string, number], UserRow>(
        'INSERT INTO users (username, password_hash, is_active, date_joined) VALUES (?, ?, 1, ?) RETURNING *',
      ),
      setHash: db.prepare<[string, number]>('UPDATE users SET password_hash = ? WHERE id = ?'),
      upgradeHash: db.prepare<[string, number, string]>('UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?'),
      setActive: db.prepare<[number, number]>('UPDATE users SET is_active = ? WHERE id = ?'),
      deleteUser: db.prepare<[number]>('DELETE FROM users WHERE id = ?'),
      login: db.prepare<[number, number]>('UPDATE users SET last_login = ? WHERE id = ?'),
      insertSession: db.prepare<[string, number, number, number]>('INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)'),
      insertToken: db.prepare<[string, string, number, number]>('INSERT INTO refresh_tokens (jti, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)'),
      token: db.prepare<[string], TokenRow>(
        `SELECT t.jti, t.session_id, t.retired_at, s.revoked_at AS session_revoked_at
           FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.jti = ?`,
      ),
      retire: db.prepare<[number, string]>('UPDATE refresh_tokens SET retired_at = ? WHERE jti = ? AND retired_at IS NULL'),
      extendSession: db.prepare<[number, string]>('UPDATE sessions SET expires_at = max(expires_at, ?) WHERE id = ?'),
      // Log first (only sessions not yet revoked), then mark them: both in the caller's transaction.
      logSession: db.prepare<[string]>(
        'INSERT INTO revocations (session_id, user_id, expires_at) SELECT id, user_id, expires_at FROM sessions WHERE id = ? AND revoked_at IS NULL',
      ),
      logUserSessions: db.prepare<[number]>(
        'INSERT INTO revocations (session_id, user_id, expires_at) SELECT id, user_id, expires_at FROM sessions WHERE user_id = ? AND revoked_at IS NULL',
      ),
      logUser: db.prepare<[number, number]>('INSERT INTO revocations (session_id, user_id, expires_at) VALUES (NULL, ?, ?)'),
      revokeSession: db.prepare<[number, string, string]>('UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL'),
      revokeUserSessions: db.prepare<[number, string, number]>(
        'UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL',
      ),
      sessionRevoked: db.prepare<[string], { revoked_at: number | null }>('SELECT revoked_at FROM sessions WHERE id = ?'),
      revocationsSince: db.prepare<[number, string, number, number], { seq: number; session_id: string | null; user_id: number; expires_at: number }>(
        `SELECT seq, session_id, user_id, expires_at FROM revocations
          WHERE (seq > ? OR seq IN (SELECT value FROM json_each(?))) AND expires_at > ? ORDER BY seq LIMIT ?`,
      ),
      flushRevocations: db.prepare<[number]>('DELETE FROM revocations WHERE expires_at <= ?'),
      flushTokens: db.prepare<[number]>('DELETE FROM refresh_tokens WHERE expires_at <= ?'),
      flushSessions: db.prepare<[number]>(
        'DELETE FROM sessions WHERE expires_at <= ? AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = sessions.id)',
      ),
      hit: db.prepare<[{ key: string; reset: number; now: number }], { count: number; reset_at: number }>(
        `INSERT INTO rate_limits (key, count, reset_at) VALUES (@key, 1, @reset)
           ON CONFLICT (key) DO UPDATE SET
             count = CASE WHEN reset_at <= @now THEN 1 ELSE count + 1 END,
             reset_at = CASE WHEN reset_at <= @now THEN excluded.reset_at ELSE reset_at END
         RETURNING count, reset_at`,
      ),
      flushHits: db.prepare<[number]>('DELETE FROM rate_limits WHERE reset_at <= ?'),
      // A bounded batch: one maintain() call holds the event loop for a few ms at most.
      pruneHits: db.prepare<[number]>(`DELETE FROM rate_limits WHERE rowid IN (SELECT rowid FROM rate_limits WHERE reset_at <= ? LIMIT ${PRUNE_BATCH})`),
      heartbeat: db.prepare("INSERT INTO counters (name, value) VALUES ('heartbeat', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1"),
    }
  }

  /**
   * Readiness: can the store take a write right now? A committed one-row write (a heartbeat
   * counter), since only a real commit finds a full disk (a rolled-back write never reaches the
   * WAL); read-only files, I/O errors and a lock held too long fail it too.
   */
  async ping(): Promise<void> {
    this.guard(() => {
      this.db.pragma(`busy_timeout = ${PROBE_BUSY_TIMEOUT_MS}`)
      try {
        this.q.heartbeat.run()
      } finally {
        this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
      }
    })
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }

  async createUser(username: string, passwordHash: string): Promise<User> {
    return this.guard(() => {
      try {
        return toUser(this.q.insertUser.get(username, passwordHash, now())!)
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new DuplicateUserError(username)
        throw err
      }
    })
  }

  async findUserByUsername(username: string): Promise<User | null> {
    return this.guard(() => {
      const r = this.q.userByName.get(username)
      return r ? toUser(r) : null
    })
  }

  async findUserById(id: number): Promise<User | null> {
    return this.guard(() => {
      const r = this.q.userById.get(id)
      return r ? toUser(r) : null
    })
  }

  findAuthUser(id: number): AuthUser | null {
    return this.guard(() => {
      const r = this.q.authUserById.get(id)
      return r ? { id: r.id, username: r.username, isActive: r.is_active === 1 } : null
    })
  }

  async listUsers(): Promise<User[]> {
    return this.guard(() => this.q.users.all().map(toUser))
  }

  async setPassword(userId: number, passwordHash: string): Promise<void> {
    return this.guard(() => {
      this.db
        .transaction(() => {
          this.q.setHash.run(passwordHash, userId)
          this.revokeUser(userId, 'password_change')
        })
        .immediate()
    })
  }

  async upgradePasswordHash(userId: number, oldHash: string, newHash: string): Promise<boolean> {
    return this.q.upgradeHash.run(newHash, userId, oldHash).changes === 1
  }

  async setActive(userId: number, active: boolean): Promise<void> {
    return this.guard(() => {
      this.db
        .transaction(() => {
          this.q.setActive.run(active ? 1 : 0, userId)
          if (!active) this.revokeUser(userId, 'deactivated')
        })
        .immediate()
    })
  }

  async deleteUser(userId: number): Promise<void> {
    return this.guard(() => {
      this.db
        .transaction(() => {
          this.revokeUser(userId, 'deleted')
          this.q.deleteUser.run(userId)
        })
        .immediate()
    })
  }

  /** Every session of the user, and the user itself (for per-process caches of users). */
  private revokeUser(userId: number, reason: string) {
    const at = now()
    this.q.logUserSessions.run(userId)
    this.q.logUser.run(userId, at)
    this.q.revokeUserSessions.run(at, reason, userId)
  }

  private revokeSession(sessionId: string, reason: string, at: number) {
    this.q.logSession.run(sessionId)
    this.q.revokeSession.run(at, reason, sessionId)
  }

  async recordLogin(userId: number, at: number): Promise<void> {
    return this.guard(() => {
      this.q.login.run(at, userId)
    })
  }

  async createSession(s: { sessionId: string; userId: number; refreshJti: string; issuedAt: number; expiresAt: number }): Promise<void> {
    return this.guard(() => {
      this.db
        .transaction(() => {
          this.q.insertSession.run(s.sessionId, s.userId, s.issuedAt, s.expiresAt)
          this.q.insertToken.run(s.refreshJti, s.sessionId, s.issuedAt, s.expiresAt)
        })
        .immediate()
    })
  }

  async rotateRefresh(r: {
    jti: string
    now: number
    graceSeconds: number
    blacklistOld: boolean
    next?: { jti: string; expiresAt: number }
  }): Promise<RotateOutcome> {
    return this.guard(() => {
      return this.db
        .transaction((): RotateOutcome => {
          const row = this.q.token.get(r.jti)
          if (!row) return { result: 'unknown' }
          if (row.session_revoked_at !== null) return { result: 'blacklisted', familyRevoked: false }
          if (row.retired_at !== null) {
            if (r.now - row.retired_at < r.graceSeconds) return { result: 'blacklisted', familyRevoked: false }
            // A retired token came back: whoever holds it may have stolen it. End the whole family.
            this.revokeSession(row.session_id, 'reuse_detected', r.now)
            return { result: 'blacklisted', familyRevoked: true }
          }
          if (r.blacklistOld) this.q.retire.run(r.now, r.jti)
          if (r.next) {
            this.q.insertToken.run(r.next.jti, row.session_id, r.now, r.next.expiresAt)
            this.q.extendSession.run(r.next.expiresAt, row.session_id)
          }
          return { result: 'rotated' }
        })
        .immediate()
    })
  }

  async blacklistRefresh(jti: string, at: number): Promise<RotateOutcome> {
    return this.guard(() => {
      return this.db
        .transaction((): RotateOutcome => {
          const row = this.q.token.get(jti)
          if (!row) return { result: 'unknown' }
          if (row.retired_at !== null || row.session_revoked_at !== null) return { result: 'blacklisted', familyRevoked: false }
          this.q.retire.run(at, jti)
          this.revokeSession(row.session_id, 'logout', at)
          return { result: 'rotated' }
        })
        .immediate()
    })
  }

  async isRevoked(t: { jti?: string; sessionId?: string }): Promise<boolean> {
    return this.guard(() => {
      if (t.jti) {
        const row = this.q.token.get(t.jti)
        if (row && (row.retired_at !== null || row.session_revoked_at !== null)) return true
      }
      if (t.sessionId) {
        const s = this.q.sessionRevoked.get(t.sessionId)
        if (s && s.revoked_at !== null) return true
      }
      return false
    })
  }

  async revocationsSince(after: number, o: { limit: number; notBefore: number; also?: number[] }): Promise<RevocationEntry[]> {
    return this.guard(() =>
      this.q.revocationsSince
        .all(after, JSON.stringify(o.also ?? []), o.notBefore, o.limit)
        .map((r) => ({ seq: r.seq, sessionId: r.session_id, userId: r.user_id, expiresAt: r.expires_at })),
    )
  }

  async flushExpired(at: number): Promise<number> {
    return this.guard(() => {
      return this.db
        .transaction(() => {
          const n = this.q.flushTokens.run(at).changes
          this.q.flushSessions.run(at)
          this.q.flushRevocations.run(at - REVOCATION_LOG_KEEP_SECONDS)
          return n
        })
        .immediate()
    })
  }

  /**
   * Writes made by `.get()` on `INSERT … RETURNING` (every rate-limit hit, 429s included) never
   * reach SQLite's auto-checkpoint, so the WAL grew without bound under a login flood. Every
   * CHECKPOINT_EVERY such writes a PASSIVE checkpoint (never waits for a lock) moves them into
   * the database; the next writer then restarts the WAL, and journal_size_limit truncates it.
   */
  private uncheckpointed = 0
  private afterGetWrite(): void {
    if (++this.uncheckpointed < CHECKPOINT_EVERY) return
    this.uncheckpointed = 0
    this.db.pragma('wal_checkpoint(PASSIVE)')
  }

  async maintain(at: number): Promise<void> {
    this.guard(() => {
      this.q.pruneHits.run(at)
      this.db.pragma('wal_checkpoint(PASSIVE)')
    })
  }

  async flushRateLimits(at: number): Promise<void> {
    this.guard(() => void this.q.flushHits.run(at))
  }

  async hit(key: string, windowMs: number, at: number): Promise<{ count: number; resetAt: number }> {
    return this.guard(() => {
      const r = this.q.hit.get({ key, reset: at + windowMs, now: at })!
      this.afterGetWrite()
      return { count: r.count, resetAt: r.reset_at }
    })
  }
}

const now = () => Math.floor(Date.now() / 1000)
const BUSY_TIMEOUT_MS = 5000
/** The readiness probe waits at most this for the write lock (better-sqlite3 waits synchronously). */
const PROBE_BUSY_TIMEOUT_MS = 250
/** WAL bounds: checkpoint after this many `.get()` writes; the file is truncated to the limit. */
const CHECKPOINT_EVERY = 500
const WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
const PRUNE_BATCH = 2000
