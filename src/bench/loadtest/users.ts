// The users a compare stage logs in as, created straight in the stage's store (its DATA_DIR's
// SQLite file, or its PostgreSQL schema). Several users, so per-username login limits and per-user rows do not serialise the
// login-heavy scenarios. They share one hash (computed once, at the API's real scrypt cost), so
// every login costs exactly what a real one does without paying for N hashes up front.
import { randomBytes } from 'node:crypto'
import { hashPassword } from '../../api/auth/passwords.js'
import { SqliteStore } from '../../api/store/sqlite.js'
import type { Store } from '../../api/store/store.js'

export interface BenchUsers {
  usernames: string[]
  ids: number[]
  password: string
}

export async function benchPassword(): Promise<{ password: string; hash: string }> {
  const password = randomBytes(18).toString('base64url')
  return { password, hash: await hashPassword(password) }
}

/** `where`: a DATA_DIR (its SQLite file) or an opened store; closed when done either way. */
export async function createBenchUsers(where: string | Store, count: number, cred: { password: string; hash: string }): Promise<BenchUsers> {
  const store = typeof where === 'string' ? SqliteStore.open(where) : where
  try {
    await store.migrate()
    const usernames: string[] = []
    const ids: number[] = []
    for (let i = 1; i <= count; i++) {
      const username = `bench-${i}`
      const user = (await store.findUserByUsername(username)) ?? (await store.createUser(username, cred.hash))
      usernames.push(username)
      ids.push(user.id)
    }
    return { usernames, ids, password: cred.password }
  } finally {
    await store.close()
  }
}
