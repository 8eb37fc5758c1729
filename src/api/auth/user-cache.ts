// The user behind each authenticated request (id, username, is_active), remembered per process
// for AUTH_USER_CACHE_TTL: GET /api/me/ then needs no store read, and a short store outage costs
// recently seen users nothing, because on a store fault an entry up to AUTH_USER_CACHE_MAX_STALE
// old is served instead of a 503.
//
// Why that is safe: every change that must lock a user out (logout, password change,
// deactivation, deletion) revokes the user's sessions, and the revocation set is checked before
// this cache on every request. A user's entry is also dropped as soon as this process hears of a
// revocation of theirs, so their next request reads the user afresh. While the store is down nothing can
// be revoked (or seen to be), so a stale entry lets through nothing the revocation set would not.
import type { AuthUser } from '../store/store.js'
import { StoreUnavailableError } from '../store/store.js'

type Lookup = (id: number) => AuthUser | null | Promise<AuthUser | null>

interface Entry {
  user: AuthUser
  at: number
}

/** Bounded memory: about 100 bytes an entry. */
const MAX_ENTRIES = 100_000

export class AuthUserCache {
  private entries = new Map<number, Entry>()

  constructor(
    private readonly ttlMs: number,
    private readonly maxStaleMs: number,
  ) {}

  /** The user, from the cache while fresh, else from `lookup` (synchronous when it is). */
  get(id: number, lookup: Lookup): AuthUser | null | Promise<AuthUser | null> {
    if (this.ttlMs <= 0) return lookup(id)
    const entry = this.entries.get(id)
    const now = Date.now()
    if (entry && now - entry.at < this.ttlMs) return entry.user
    let found: AuthUser | null | Promise<AuthUser | null>
    try {
      found = lookup(id)
    } catch (err) {
      return this.fallback(id, entry, now, err)
    }
    if (found instanceof Promise) {
      return found.then(
        (user) => this.remember(id, user, now),
        (err: unknown) => this.fallback(id, entry, now, err),
      )
    }
    return this.remember(id, found, now)
  }

  /** Forget one user (a revocation of theirs: their next request reads the store). */
  forget(id: number): void {
    this.entries.delete(id)
  }

  get size(): number {
    return this.entries.size
  }

  private remember(id: number, user: AuthUser | null, at: number): AuthUser | null {
    if (!user) {
      this.entries.delete(id)
      return null
    }
    this.entries.delete(id) // re-inserted last: the Map's order is oldest first
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(id, { user, at })
    return user
  }

  private fallback(id: number, entry: Entry | undefined, now: number, err: unknown): AuthUser {
    if (err instanceof StoreUnavailableError && entry && now - entry.at < this.maxStaleMs) return entry.user
    if (!entry || now - entry.at >= this.maxStaleMs) this.entries.delete(id)
    throw err
  }
}
