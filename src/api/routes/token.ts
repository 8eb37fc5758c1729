// simplejwt's token endpoints: obtain a pair, refresh (with rotation), verify, blacklist (logout).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../config.js'
import { newJti, userIdOf, type Claims, type Expected } from '../auth/tokens.js'
import { errors, TokenMessages } from '../errors.js'
import type { RotateOutcome } from '../store/store.js'
import { Empty, errorResponses } from './schemas.js'
import { checkToken, noActiveAccountForToken } from './token-check.js'

export const ObtainBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 150 }),
  password: Type.String({ minLength: 1, maxLength: 4096 }),
})
const Pair = Type.Object({ refresh: Type.String(), access: Type.String() })
const RefreshBody = Type.Object({ refresh: Type.String({ minLength: 1 }) })
const Refreshed = Type.Object({ access: Type.String(), refresh: Type.Optional(Type.String()) })
const VerifyBody = Type.Object({ token: Type.String({ minLength: 1 }) })

const tokenRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const { tokens, store, revocations, metrics } = app
  const { jwt } = config
  const now = () => Math.floor(Date.now() / 1000)

  const check = (token: string, type?: Expected): Claims => checkToken(tokens, token, type)
  // Logout takes a refresh token, or a sliding token when those are on (simplejwt refuses those).
  const loggedOutWith: Expected = config.sliding.enabled ? new Set(['refresh', 'sliding'] as const) : 'refresh'
  const settle = async (outcome: RotateOutcome) => {
    if (outcome.result === 'unknown') throw errors.tokenNotValid(TokenMessages.invalid)
    if (outcome.result === 'blacklisted') {
      if (outcome.familyRevoked) await revocations.sync()
      throw errors.tokenNotValid(TokenMessages.blacklisted)
    }
  }

  app.post(
    '/api/token/',
    {
      schema: {
        tags: ['token'],
        summary: 'Obtain an access and refresh token pair (login)',
        body: ObtainBody,
        response: { 200: Pair, ...errorResponses(400, 401, 429, 503) },
      },
      // Brute-force protection: per client IP before the body is read, per username after.
      onRequest: app.limits.loginByIp,
      preHandler: app.limits.loginByUser,
    },
    async (request) => {
      const user = await app.login.checkCredentials(request.body.username, request.body.password)
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
        response: { 200: Refreshed, ...errorResponses(400, 401, 503) },
      },
    },
    async (request) => {
      let claims: Claims
      try {
        claims = check(request.body.refresh, 'refresh')
      } catch (err) {
        metrics.refreshes.invalid++
        throw err
      }
      const id = userIdOf(claims)
      const user = id === null ? null : await store.findUserById(id)
      if (!user?.isActive) {
        metrics.refreshes.invalid++
        throw noActiveAccountForToken()
      }
      const at = now()
      const next = jwt.rotateRefreshTokens ? tokens.issue('refresh', user.id, claims.sid, at) : undefined
      const outcome = await store.rotateRefresh({
        jti: claims.jti,
        now: at,
        graceSeconds: jwt.reuseGrace,
        blacklistOld: jwt.rotateRefreshTokens && jwt.blacklistAfterRotation,
        next: next && { jti: next.claims.jti, expiresAt: next.claims.exp },
      })
      metrics.refreshes[
        outcome.result === 'blacklisted' ? (outcome.familyRevoked ? 'reuse_detected' : 'blacklisted') : outcome.result === 'rotated' ? 'rotated' : 'invalid'
      ]++
      await settle(outcome)
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
        response: { 200: Empty, ...errorResponses(400, 401, 503) },
      },
    },
    async (request) => {
      const claims = check(request.body.token)
      // Refresh and sliding tokens are recorded one by one; access tokens only through their session.
      const revoked = await store.isRevoked({ jti: claims.token_type === 'access' ? undefined : claims.jti, sessionId: claims.sid })
      if (revoked) throw errors.tokenNotValid(TokenMessages.blacklisted)
      return {}
    },
  )

  app.post(
    '/api/token/blacklist/',
    {
      schema: {
        tags: ['token'],
        summary: config.sliding.enabled
          ? 'Log out: blacklist the refresh (or sliding) token and revoke every token of its session'
          : 'Log out: blacklist the refresh token and revoke the access tokens of its session',
        body: RefreshBody,
        response: { 200: Empty, ...errorResponses(400, 401, 503) },
      },
    },
    async (request) => {
      const claims = check(request.body.refresh, loggedOutWith)
      await settle(await store.blacklistRefresh(claims.jti, now()))
      await revocations.sync()
      return {}
    },
  )
}

export default tokenRoutes
