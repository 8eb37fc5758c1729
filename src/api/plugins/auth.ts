// Authentication: @fastify/jwt with the key ring, the token service, the cross-process revocation
// cache and the `authenticate` hook that protected routes put in their onRequest/preHandler.
import fp from 'fastify-plugin'
import jwtPlugin from '@fastify/jwt'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { errors, TokenMessages } from '../errors.js'
import type { KeyRing } from '../auth/keys.js'
import { RevocationCache } from '../auth/revocations.js'
import { AuthUserCache } from '../auth/user-cache.js'
import { TokenInvalid, TokenService, userIdOf, type Claims, type Expected } from '../auth/tokens.js'
import { StoreUnavailableError, type AuthUser } from '../store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
    revocations: RevocationCache
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void
  }
  interface FastifyRequest {
    auth: { user: AuthUser; claims: Claims } | null
  }
}

export default fp(
  async function auth(app: FastifyInstance, opts: { config: Config; keys: KeyRing }) {
    const { config, keys } = opts
    const { jwt } = config
    const verifyKey = keys.verifyKeys.values().next().value as string
    await app.register(jwtPlugin, {
      secret: { private: keys.signingKey, public: verifyKey },
      sign: { algorithm: keys.algorithm, ...(keys.signingKid ? { kid: keys.signingKid } : {}) },
      verify: {
        algorithms: [keys.algorithm],
        clockTolerance: jwt.leeway * 1000, // fast-jwt counts milliseconds
        ...(jwt.issuer ? { allowedIss: jwt.issuer } : {}),
        ...(jwt.audience ? { allowedAud: jwt.audience } : {}),
        // fast-jwt checks iss/aud only when present; a configured one must be there.
        requiredClaims: ['exp', ...(jwt.issuer ? ['iss'] : []), ...(jwt.audience ? ['aud'] : [])],
        // No fast-jwt cache: TokenService remembers verified tokens itself, more cheaply.
      },
      decoratorName: 'jwtUser',
    })

    const tokens = new TokenService(app.jwt, keys, jwt, config.sliding)
    // A store outage fails reads (4 a second when polling): logged once by the cache, and the
    // StoreUnavailableError goes to the once-per-burst fault log that readiness reads too.
    const revocations = new RevocationCache(
      app.store,
      config.revocationPollMs,
      jwt.accessLifetime,
      (err) => (err instanceof StoreUnavailableError ? app.storeHealth.report(err) : app.log.error({ err }, 'revocation read failed')),
      (msg) => app.log.info(msg),
    )
    // The user behind a token, per process: a user is dropped as soon as a revocation of theirs
    // is heard of (others stay cached, so logouts elsewhere do not empty the cache).
    const users = new AuthUserCache(config.authUserCache.ttlMs, config.authUserCache.maxStaleMs)
    revocations.onChange((events) => {
      for (const e of events) users.forget(e.userId)
    })
    const findAuthUser = (id: number) => app.store.findAuthUser(id)
    app.decorate('tokens', tokens)
    app.decorate('revocations', revocations)
    app.decorateRequest('auth', null)
    app.addHook('onReady', () => revocations.start())
    app.addHook('onClose', async () => revocations.stop())

    const headerTypes = new Set(jwt.authHeaderTypes)
    // simplejwt's AUTH_TOKEN_CLASSES: AccessToken, plus SlidingToken when sliding tokens are on.
    const sliding = config.sliding.enabled
    const accepted: Expected = sliding ? new Set(['access', 'sliding'] as const) : 'access'
    /** One message per accepted class: the failure for the token's own class, "wrong type" for the other. */
    const notValid = (reason: string, type?: Claims['token_type']) => {
      if (!sliding) return errors.accessTokenNotValid(reason)
      const wrong = TokenMessages.wrongType
      return errors.accessTokenNotValid(type === 'sliding' ? wrong : reason, type === 'access' ? wrong : reason)
    }

    /**
     * simplejwt's JWTAuthentication: header → access token → live session → active user (from
     * the per-process user cache while fresh).
     * A callback-style hook, not an async one: with SQLite every step is synchronous, so GET
     * /api/me/ passes through without a promise (+5% measured). Throws become the error reply.
     */
    const authenticate = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
      const header = request.headers.authorization
      if (!header) throw errors.notAuthenticated()
      const parts = header.split(' ')
      if (!headerTypes.has(parts[0]!)) throw errors.notAuthenticated()
      if (parts.length !== 2 || !parts[1]) throw errors.badAuthorizationHeader()
      let claims: Claims
      try {
        claims = tokens.verify(parts[1], accepted)
      } catch (err) {
        if (err instanceof TokenInvalid) throw notValid(err.reason)
        throw err
      }
      if (!revocations.ready) throw new StoreUnavailableError('revocations not read yet')
      if (revocations.isRevoked(claims.sid)) throw notValid(TokenMessages.blacklisted, claims.token_type)
      const id = userIdOf(claims)
      if (id === null) throw errors.userNotFound()
      const accept = (user: AuthUser | null) => {
        if (!user) return done(errors.userNotFound())
        if (!user.isActive) return done(errors.userInactive())
        request.auth = { user, claims }
        done()
      }
      const found = users.get(id, findAuthUser)
      if (found instanceof Promise) found.then(accept, done)
      else accept(found)
    }
    app.decorate('authenticate', authenticate)
  },
  { name: 'runway-auth', dependencies: ['runway-store'] },
)
