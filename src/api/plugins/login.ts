// What guards every route where an anonymous client presents a password or picks a username
// (pair and sliding login, sign-up): the brute-force limits and the credential check. One
// definition, so each route gets the same limits on the same counters (login-ip:<ip> is one
// budget per address across all of them) and the same timing behaviour.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { ApiError, errors } from '../errors.js'
import type { User } from '../store/store.js'

export interface LoginGuards {
  /** For onRequest: LOGIN_RATE_LIMIT_IP per client address, before the body is read. */
  limitByIp(request: FastifyRequest): Promise<void>
  /** For preHandler: LOGIN_RATE_LIMIT_USER per username (the body's `username`, lowercased). */
  limitByUser(request: FastifyRequest): Promise<void>
  /**
   * The active user these credentials belong to, or simplejwt's 401 "No active account…"; 503
   * when the password hash queue is full. Upgrades the user's hash to the current cost.
   */
  checkCredentials(username: string, password: string): Promise<User>
}

declare module 'fastify' {
  interface FastifyInstance {
    login: LoginGuards
  }
}

export default fp(
  async function login(app: FastifyInstance, opts: { config: Config }) {
    const { perIp, perUser, windowMs } = opts.config.loginRateLimit
    const byIp = app.createRateLimit({ max: perIp, timeWindow: windowMs, keyGenerator: (r) => `login-ip:${r.ip}` })
    const byUser = app.createRateLimit({
      max: perUser,
      timeWindow: windowMs,
      keyGenerator: (r) => `login-user:${String((r.body as { username?: unknown } | undefined)?.username ?? '').toLowerCase()}`,
    })
    const { metrics } = app
    const enforce = async (limit: typeof byIp, max: number, request: FastifyRequest, name: keyof typeof metrics.rateLimitHits) => {
      if (max === 0) return
      const r = await limit(request)
      if (!r.isAllowed && r.isExceeded) {
        metrics.rateLimitHits[name]++
        // The logins are the token endpoints (pair and sliding); sign-up shares the per-address limit.
        if (request.routeOptions.url?.startsWith('/api/token/')) metrics.logins.throttled++
        throw errors.throttled(Math.max(1, r.ttlInSeconds))
      }
    }
    const { passwords } = app
    /**
     * Django's must_update: a hash made with an older algorithm or cost (scrypt, weaker argon2id)
     * is replaced on a successful login, the only time the password is known; only if it is still
     * the hash just checked (a password change in between wins). Best effort: the login succeeds
     * even when the upgrade waits for the next one (hash queue full, store busy).
     */
    const upgradeHash = async (userId: number, old: string, password: string) => {
      try {
        await app.store.upgradePasswordHash(userId, old, await passwords.hash(password))
      } catch (err) {
        if (!(err instanceof ApiError)) app.log.warn({ err, userId }, 'password hash upgrade postponed to the next login') // ApiError: queue full
      }
    }
    app.decorate('login', {
      limitByIp: (request) => enforce(byIp, perIp, request, 'login_ip'),
      limitByUser: (request) => enforce(byUser, perUser, request, 'login_user'),
      async checkCredentials(username, password) {
        const user = await app.store.findUserByUsername(username)
        // Unknown users cost a hash too (a dummy at the current parameters), so timing does not
        // tell which usernames exist.
        const ok = await passwords.verify(password, user?.passwordHash)
        if (!user || !ok || !user.isActive) {
          metrics.logins.bad_credentials++
          throw errors.noActiveAccount()
        }
        metrics.logins.success++
        if (passwords.needsRehash(user.passwordHash)) await upgradeHash(user.id, user.passwordHash, password)
        return user
      },
    } satisfies LoginGuards)
  },
  { name: 'runway-login', dependencies: ['runway-store', 'runway-security', 'runway-passwords', 'runway-metrics'] },
)
