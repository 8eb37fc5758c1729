// simplejwt's token endpoints: obtain a pair, refresh (with rotation), verify, blacklist (logout).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../config.js'
import { dummyHash, verifyPassword } from '../auth/passwords.js'
import { newJti, TokenInvalid, userIdOf, type Claims, type TokenType } from '../auth/tokens.js'
import { ApiError, errors, TokenMessages } from '../errors.js'
import type { RotateOutcome } from '../store/store.js'
import { Empty, errorResponses } from './schemas.js'

const ObtainBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 150 }),
  password: Type.String({ minLength: 1, maxLength: 4096 }),
})
const Pair = Type.Object({ refresh: Type.String(), access: Type.String() })
const RefreshBody = Type.Object({ refresh: Type.String({ minLength: 1 }) })
const Refreshed = Type.Object({ access: Type.String(), refresh: Type.Optional(Type.String()) })
const VerifyBody = Type.Object({ token: Type.String({ minLength: 1 }) })

const noActiveAccountForToken = () =>
  new ApiError(401, { detail: 'No active account found for the given token.', code: 'no_active_account' }, { 'www-authenticate': 'Bearer realm="api"' })

const tokenRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const { tokens, store, revocations } = app
  const { jwt, loginRateLimit } = config
  const now = () => Math.floor(Date.now() / 1000)

  /** Verifies, mapping failures to simplejwt's token_not_valid answer. */
  const check = (token: string, type?: TokenType): Claims => {
    try {
      return tokens.verify(token, type)
    } catch (err) {
      if (err instanceof TokenInvalid) throw errors.tokenNotValid(err.reason)
      throw err
    }
  }
  const settle = async (outcome: RotateOutcome) => {
    if (outcome.result === 'unknown') throw errors.tokenNotValid(TokenMessages.invalid)
    if (outcome.result === 'blacklisted') {
      if (outcome.familyRevoked) await revocations.sync()
      throw errors.tokenNotValid(TokenMessages.blacklisted)
    }
  }

  // Brute-force protection: per client IP before the body is read, per username after.
  const limitByIp = app.createRateLimit({ max: loginRateLimit.perIp, timeWindow: loginRateLimit.windowMs, keyGenerator: (r) => `login-ip:${r.ip}` })
  const limitByUser = app.createRateLimit({
    max: loginRateLimit.perUser,
    timeWindow: loginRateLimit.windowMs,
    keyGenerator: (r) => `login-user:${String((r.body as { username?: unknown } | undefined)?.username ?? '').toLowerCase()}`,
  })
  const enforce = async (limit: typeof limitByIp, max: number, request: Parameters<typeof limitByIp>[0]) => {
    if (max === 0) return
    const r = await limit(request)
    if (!r.isAllowed && r.isExceeded) throw errors.throttled(Math.max(1, r.ttlInSeconds))
  }

  app.post(
    '/api/token/',
    {
      schema: {
        tags: ['token'],
        summary: 'Obtain an access and refresh token pair (login)',
        body: ObtainBody,
        response: { 200: Pair, ...errorResponses(400, 401, 429) },
      },
      onRequest: (request) => enforce(limitByIp, loginRateLimit.perIp, request),
      preHandler: (request) => enforce(limitByUser, loginRateLimit.perUser, request),
    },
    async (request) => {
      const { username, password } = request.body
      const user = await store.findUserByUsername(username)
      // Unknown users cost a hash too, so timing does not tell which usernames exist.
      const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyHash()))
      if (!user || !ok || !user.isActive) throw errors.noActiveAccount()
      const issuedAt = now()
      const sid = newJti()
      const refresh = tokens.issue('refresh', user.id, sid, issuedAt)
      const access = tokens.issue('access', user.id, sid, issuedAt)
      await store.createSession({ sessionId: sid, userId: user.id, refreshJti: refresh.claims.jti, issuedAt, expiresAt: refresh.claims.exp })
      await store.recordLogin(user.id, issuedAt)
      return { refresh: refresh.token, access: access.token }
    },
  )

  app.post(
    '/api/token/refresh/',
    {
      schema: {
        tags: ['token'],
        summary: 'Exchange a refresh token for a new access token (and, with rotation, a new refresh token)',
        body: RefreshBody,
        response: { 200: Refreshed, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const claims = check(request.body.refresh, 'refresh')
      const id = userIdOf(claims)
      const user = id === null ? null : await store.findUserById(id)
      if (!user || !user.isActive) throw noActiveAccountForToken()
      const at = now()
      const next = jwt.rotateRefreshTokens ? tokens.issue('refresh', user.id, claims.sid, at) : undefined
      await settle(
        await store.rotateRefresh({
          jti: claims.jti,
          now: at,
          graceSeconds: jwt.reuseGrace,
          blacklistOld: jwt.rotateRefreshTokens && jwt.blacklistAfterRotation,
          next: next && { jti: next.claims.jti, expiresAt: next.claims.exp },
        }),
      )
      const access = tokens.issue('access', user.id, claims.sid, at)
      return next ? { access: access.token, refresh: next.token } : { access: access.token }
    },
  )

  app.post(
    '/api/token/verify/',
    {
      schema: {
        tags: ['token'],
        summary: 'Check a token of either type: signature, expiry, and that it was not revoked',
        body: VerifyBody,
        response: { 200: Empty, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const claims = check(request.body.token)
      const revoked = await store.isRevoked({ jti: claims.token_type === 'refresh' ? claims.jti : undefined, sessionId: claims.sid })
      if (revoked) throw errors.tokenNotValid(TokenMessages.blacklisted)
      return {}
    },
  )

  app.post(
    '/api/token/blacklist/',
    {
      schema: {
        tags: ['token'],
        summary: 'Log out: blacklist the refresh token and revoke the access tokens of its session',
        body: RefreshBody,
        response: { 200: Empty, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const claims = check(request.body.refresh, 'refresh')
      await settle(await store.blacklistRefresh(claims.jti, now()))
      await revocations.sync()
      return {}
    },
  )
}

export default tokenRoutes
