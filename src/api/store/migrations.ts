// Schema migrations, applied in order; PRAGMA user_version records how many ran.
// Append new entries; never edit one that has shipped.
import type Database from 'better-sqlite3'

/** SQL, or code for a change SQL alone cannot make (run inside the migration transaction). */
export type SqliteMigration = string | ((db: Database.Database) => void)

export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  `
  CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1,
    date_joined   INTEGER NOT NULL,
    last_login    INTEGER
  );
  -- A session is one login: the family of refresh tokens rotated from it.
  CREATE TABLE sessions (
    id             TEXT    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
  );
  CREATE INDEX sessions_user ON sessions (user_id);
  CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
  CREATE TABLE refresh_tokens (
    jti        TEXT    PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    retired_at INTEGER
  );
  CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
  CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
  -- Bumped on every revocation: each process polls it to refresh its in-memory revocation set.
  CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT INTO counters (name, value) VALUES ('revocations', 0);
  -- Fixed-window counters for login rate limits, shared by all workers.
  CREATE TABLE rate_limits (key TEXT PRIMARY KEY, count INTEGER NOT NULL, reset_at INTEGER NOT NULL);
  `,
  // 2. Deleting a user must not delete its sessions: ON DELETE CASCADE took the revocation
  // records with them, so the user's unexpired tokens passed /api/token/verify/ again. Sessions
  // now outlive their user (revoked, reason 'deleted') until flushExpired removes them; user ids
  // are never reused (AUTOINCREMENT). Removing a foreign key changes no stored data, so SQLite's
  // documented writable_schema edit does it in place (no table rebuild, whatever other columns a
  // later migration adds), with schema_version bumped so open connections reload the schema.
  (db) => {
    const version = db.pragma('schema_version', { simple: true }) as number
    db.unsafeMode(true) // writable_schema is refused in better-sqlite3's defensive mode
    try {
      db.pragma('writable_schema = ON')
      db.prepare("UPDATE sqlite_master SET sql = replace(sql, ' REFERENCES users (id) ON DELETE CASCADE', '') WHERE type = 'table' AND name = 'sessions'").run()
      db.pragma(`schema_version = ${version + 1}`)
      db.pragma('writable_schema = OFF')
    } finally {
      db.unsafeMode(false)
    }
  },
  // 3. Expired rate-limit counters are pruned in small batches (SqliteStore.maintain).
  'CREATE INDEX rate_limits_reset ON rate_limits (reset_at)',
  // 4. The revocation log. Every revocation appends rows (one per session, plus one per user for
  // user-wide revocations), so processes read only what is new since the last seq they saw,
  // instead of re-reading every revoked session whenever one hot counter row moved.
  `
  CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT,              -- NULL: the user as a whole (password change, deactivation, deletion)
    user_id    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL   -- no token of the session outlives this (epoch seconds)
  );
  CREATE INDEX revocations_expiry ON revocations (expires_at);
  INSERT INTO revocations (session_id, user_id, expires_at)
    SELECT id, user_id, expires_at FROM sessions WHERE revoked_at IS NOT NULL ORDER BY revoked_at;
  `,
]

/** The same schema for PostgreSQL; runway_schema records how many ran. */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text    NOT NULL UNIQUE,
    password_hash text    NOT NULL,
    is_active     boolean NOT NULL DEFAULT true,
    date_joined   bigint  NOT NULL,
    last_login    bigint
  );
  CREATE TABLE sessions (
    id             text   PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     bigint NOT NULL,
    expires_at     bigint NOT NULL,
    revoked_at     bigint,
    revoked_reason text
  );
  CREATE INDEX sessions_user ON sessions (user_id);
  CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
  CREATE TABLE refresh_tokens (
    jti        text   PRIMARY KEY,
    session_id text   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  bigint NOT NULL,
    expires_at bigint NOT NULL,
    retired_at bigint
  );
  CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
  CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
  CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL);
  INSERT INTO counters (name, value) VALUES ('revocations', 0);
  CREATE TABLE rate_limits (key text PRIMARY KEY, count integer NOT NULL, reset_at bigint NOT NULL);
  `,
  // 2. Sessions outlive a deleted user, revoked (see the SQLite migration 2).
  'ALTER TABLE sessions DROP CONSTRAINT IF EXISTS sessions_user_id_fkey',
  `
  CREATE TABLE revocations (
    seq        bigserial PRIMARY KEY,
    session_id text,
    user_id    bigint NOT NULL,
    expires_at bigint NOT NULL
  );
  CREATE INDEX revocations_expiry ON revocations (expires_at);
  INSERT INTO revocations (session_id, user_id, expires_at)
    SELECT id, user_id, expires_at FROM sessions WHERE revoked_at IS NOT NULL ORDER BY revoked_at;
  `,
  // 4. Rotation and logout as one statement each (one round trip instead of five or six): the
  // same steps as before, in a function, so the row locks, the reuse rule on the database's clock
  // and the revocation log + NOTIFY stay in one transaction. Plain functions: fine through PgBouncer.
  `
  CREATE FUNCTION runway_revoke_session(p_session text, p_reason text) RETURNS void LANGUAGE sql AS $fn$
    WITH revoked AS (
      UPDATE sessions SET revoked_at = floor(extract(epoch from clock_timestamp()))::bigint, revoked_reason = p_reason
       WHERE id = p_session AND revoked_at IS NULL
      RETURNING id, user_id, expires_at
    ), logged AS (
      INSERT INTO revocations (session_id, user_id, expires_at) SELECT id, user_id, expires_at FROM revoked RETURNING seq
    )
    SELECT pg_notify('runway_revocations', seq::text) FROM logged
  $fn$;

  -- 'unknown' | 'blacklisted' | 'reused' (the session was revoked now) | 'rotated'
  CREATE FUNCTION runway_rotate(p_jti text, p_issued bigint, p_grace bigint, p_retire boolean, p_next_jti text, p_next_exp bigint)
  RETURNS text LANGUAGE plpgsql AS $fn$
  DECLARE
    r record;
    db_now bigint := floor(extract(epoch from clock_timestamp()))::bigint;
  BEGIN
    SELECT t.session_id, t.retired_at, s.revoked_at AS session_revoked_at INTO r
      FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
     WHERE t.jti = p_jti FOR UPDATE OF t, s;
    IF NOT FOUND THEN RETURN 'unknown'; END IF;
    IF r.session_revoked_at IS NOT NULL THEN RETURN 'blacklisted'; END IF;
    IF r.retired_at IS NOT NULL THEN
      IF db_now - r.retired_at < p_grace THEN RETURN 'blacklisted'; END IF;
      PERFORM runway_revoke_session(r.session_id, 'reuse_detected');
      RETURN 'reused';
    END IF;
    IF p_retire THEN UPDATE refresh_tokens SET retired_at = db_now WHERE jti = p_jti; END IF;
    IF p_next_jti IS NOT NULL THEN
      INSERT INTO refresh_tokens (jti, session_id, issued_at, expires_at) VALUES (p_next_jti, r.session_id, p_issued, p_next_exp);
      UPDATE sessions SET expires_at = GREATEST(expires_at, p_next_exp) WHERE id = r.session_id;
    END IF;
    RETURN 'rotated';
  END
  $fn$;

  -- 'unknown' | 'blacklisted' | 'rotated' (logged out now)
  CREATE FUNCTION runway_logout(p_jti text) RETURNS text LANGUAGE plpgsql AS $fn$
  DECLARE
    r record;
  BEGIN
    SELECT t.session_id, t.retired_at, s.revoked_at AS session_revoked_at INTO r
      FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
     WHERE t.jti = p_jti FOR UPDATE OF t, s;
    IF NOT FOUND THEN RETURN 'unknown'; END IF;
    IF r.retired_at IS NOT NULL OR r.session_revoked_at IS NOT NULL THEN RETURN 'blacklisted'; END IF;
    UPDATE refresh_tokens SET retired_at = floor(extract(epoch from clock_timestamp()))::bigint WHERE jti = p_jti;
    PERFORM runway_revoke_session(r.session_id, 'logout');
    RETURN 'rotated';
  END
  $fn$;
  `,
  // 5. Each revocation's notification carries its log entry ("seq:userId:expiresAt:sessionId"):
  // listening processes apply it without reading the log (see store/pg-listen.ts).
  `
  CREATE OR REPLACE FUNCTION runway_revoke_session(p_session text, p_reason text) RETURNS void LANGUAGE sql AS $fn$
    WITH revoked AS (
      UPDATE sessions SET revoked_at = floor(extract(epoch from clock_timestamp()))::bigint, revoked_reason = p_reason
       WHERE id = p_session AND revoked_at IS NULL
      RETURNING id, user_id, expires_at
    ), logged AS (
      INSERT INTO revocations (session_id, user_id, expires_at) SELECT id, user_id, expires_at FROM revoked
      RETURNING seq, session_id, user_id, expires_at
    )
    SELECT pg_notify('runway_revocations', seq || ':' || user_id || ':' || expires_at || ':' || coalesce(session_id, '')) FROM logged
  $fn$;
  `,
  // 6. Revocations without a NOTIFY in their own transaction. Every NOTIFY commit wakes every
  // listening backend of the database, and NOTIFY takes one database-wide lock held until the
  // commit is flushed: at 1,000 revocations/s and 100 listeners that was 100,000 backend wake-ups
  // a second and every revocation commit in single file (bench:revocation-fleet sustained
  // 462–768/s). Now revocations only append to the log; one process at a time (the publisher,
  // store/pg-listen.ts) reads the log every few milliseconds and announces what is new in one
  // NOTIFY per batch. The *_quiet functions say so for their transaction (runway.announce = off);
  // the migration 4 functions keep announcing for processes of the previous release (rolling
  // deploy, rollback), whose revocations the publisher also announces (it reads the whole log).
  `
  CREATE OR REPLACE FUNCTION runway_revoke_session(p_session text, p_reason text) RETURNS void LANGUAGE plpgsql AS $fn$
  DECLARE
    e record;
    v_seq bigint;
  BEGIN
    UPDATE sessions SET revoked_at = floor(extract(epoch from clock_timestamp()))::bigint, revoked_reason = p_reason
     WHERE id = p_session AND revoked_at IS NULL
    RETURNING id, user_id, expires_at INTO e;
    IF NOT FOUND THEN RETURN; END IF;
    INSERT INTO revocations (session_id, user_id, expires_at) VALUES (e.id, e.user_id, e.expires_at) RETURNING seq INTO v_seq;
    IF current_setting('runway.announce', true) IS DISTINCT FROM 'off' THEN
      PERFORM pg_notify('runway_revocations', v_seq || ':' || e.user_id || ':' || e.expires_at || ':' || e.id);
    END IF;
  END
  $fn$;

  CREATE FUNCTION runway_rotate_quiet(p_jti text, p_issued bigint, p_grace bigint, p_retire boolean, p_next_jti text, p_next_exp bigint)
  RETURNS text LANGUAGE sql AS $fn$
    SELECT set_config('runway.announce', 'off', true);
    SELECT runway_rotate(p_jti, p_issued, p_grace, p_retire, p_next_jti, p_next_exp);
  $fn$;

  CREATE FUNCTION runway_logout_quiet(p_jti text) RETURNS text LANGUAGE sql AS $fn$
    SELECT set_config('runway.announce', 'off', true);
    SELECT runway_logout(p_jti);
  $fn$;
  `,
]
