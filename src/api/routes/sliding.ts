// simplejwt's sliding tokens (TokenObtainSlidingView, TokenRefreshSlidingView), on with
// SLIDING_TOKENS=true. One token is both the credential and the means to renew it: refreshing
// gives the same token (jti, session, refresh_exp) with a new exp, until refresh_exp.
// Each login is a session like a pair's, with the token's jti recorded in it, so logout
// (/api/token/blacklist/), password changes and deactivation reach sliding tokens on every worker
// within one revocation poll, through the same machinery.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../config.js'
import { newJti, userIdOf } from '../auth/tokens.js'
import { errors, TokenMessages } from '../errors.js'
import { errorResponses } from './schemas.js'
import { ObtainBody } from './token.js'
import { checkToken, noActiveAccountForToken } from './token-check.js'

const Sliding = Type.Object({ token: Type.String() })
const SlidingBody = Type.Object({ token: Type.String({ minLength: 1 }) })

const slidingRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const { tokens, store } = app
  const now = () => Math.floor(Date.now() / 1000)

  app.post(
    '/api/token/sliding/',
    {
      schema: {
        tags: ['token'],
        summary: 'Obtain a sliding token (login): one token, used as an access token and refreshed in place',
        body: ObtainBody,
        response: { 200: Sliding, ...errorResponses(400, 401, 429, 503) },
      },
      onRequest: app.limits.loginByIp,
      preHandler: app.limits.loginByUser,
    },
    async (request) => {
      const user = await app.login.checkCredentials(request.body.username, request.body.password)
      const issuedAt = now()
      const sid = newJti()
      const sliding = tokens.issue('sliding', user.id, sid, issuedAt)
      // The session lasts as long as any token of it can: one refreshed just before refresh_exp
      // lives one more lifetime. Until then the revocation cache keeps a revoked session.
      const expiresAt = sliding.claims.refreshExp! + config.sliding.lifetime
      await store.createSession({ sessionId: sid, userId: user.id, refreshJti: sliding.claims.jti, issuedAt, expiresAt })
      await store.recordLogin(user.id, issuedAt)
      return { token: sliding.token }
    },
  )

  app.post(
    '/api/token/sliding/refresh/',
    {
      schema: {
        tags: ['token'],
        summary: 'Renew a sliding token: the same token with a new exp, until its refresh_exp',
        body: SlidingBody,
        response: { 200: Sliding, ...errorResponses(400, 401, 503) },
      },
    },
    async (request) => {
      // simplejwt's order: signature and exp, type, blacklist, then refresh_exp.
      const claims = checkToken(tokens, request.body.token, 'sliding')
      if (await store.isRevoked({ jti: claims.jti, sessionId: claims.sid })) throw errors.tokenNotValid(TokenMessages.blacklisted)
      const at = now()
      if (claims.refreshExp! <= at - config.jwt.leeway) throw errors.tokenNotValid("Token 'refresh_exp' claim has expired")
      const id = userIdOf(claims)
      const user = id === null ? null : await store.findUserById(id)
      if (!user?.isActive) throw noActiveAccountForToken()
      return { token: tokens.slide(claims, at).token }
    },
  )
}

export default slidingRoutes
