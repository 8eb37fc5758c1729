// The credential check of every route where an anonymous client presents a password (pair and
// sliding login): one definition, so each gets the same timing behaviour and hash upgrades. The
// brute-force limits in front of them (and of sign-up) are app.limits (plugins/rate-limit.ts).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ApiError, errors } from '../errors.js'
import type { User } from '../store/store.js'

export interface LoginGuards {
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
  async function login(app: FastifyInstance) {
    const { metrics, passwords } = app
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
  { name: 'runway-login', dependencies: ['runway-store', 'runway-passwords', 'runway-metrics'] },
)
