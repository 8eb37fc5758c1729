// Rate limits: the one place that owns the limiters and where their counters live. The counters
// are in a RateLimitStore (by default the app's store: SQLite for one host, PostgreSQL for a
// fleet), shared by every worker, so N pm2 workers do not allow N times a limit. Routes use the
// limiters as hooks (`onRequest: app.limits.loginByIp`); a new limit is one more entry here.
import fp from 'fastify-plugin'
import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import type { AppMetrics } from '../metrics/app-metrics.js'
import type { RateLimitStore } from '../store/store.js'

/** A limiter, used as a route hook: resolves when the request may go on, throws 429 + Retry-After when not. */
export type Limiter = (request: FastifyRequest) => Promise<void>

export interface Limits {
  /** LOGIN_RATE_LIMIT_IP per client address, before the body is read (onRequest): logins and sign-up share it. */
  loginByIp: Limiter
  /** LOGIN_RATE_LIMIT_USER per username (the body's `username`, lowercased): a preHandler. */
  loginByUser: Limiter
}

declare module 'fastify' {
  interface FastifyInstance {
    limits: Limits
  }
}

/** Longest rate-limit key stored as is; longer ones are stored as their SHA-256. */
const MAX_KEY_LENGTH = 128

/**
 * Keys hold client text (an X-Forwarded-For address, a username): an 8 KB header made an 8 KB
 * row per request. Long keys keep their prefix ("login-ip:") and become a fixed-size digest.
 */
export function boundedKey(key: string): string {
  if (key.length <= MAX_KEY_LENGTH) return key
  const colon = key.indexOf(':')
  const prefix = colon > 0 && colon < 32 ? key.slice(0, colon + 1) : ''
  return `${prefix}sha256:${createHash('sha256').update(key).digest('base64url')}`
}

/** @fastify/rate-limit's store contract, backed by a RateLimitStore. */
function fastifyStore(store: RateLimitStore) {
  return class SharedRateLimitStore {
    incr(key: string, cb: (err: Error | null, res?: { current: number; ttl: number }) => void, timeWindow: number) {
      const now = Date.now()
      store.hit(boundedKey(key), timeWindow, now).then(
        (r) => cb(null, { current: r.count, ttl: Math.max(0, r.resetAt - now) }),
        (err: Error) => cb(err),
      )
    }
    child() {
      return this
    }
  }
}

export default fp(
  async function rateLimits(app: FastifyInstance, opts: { config: Config; store: RateLimitStore }) {
    await app.register(rateLimit, { global: false, store: fastifyStore(opts.store) })
    const { metrics } = app
    /** A limiter of `max` requests per window and key; 0 turns it off. */
    const limiter = (name: keyof AppMetrics['rateLimitHits'], max: number, windowMs: number, key: (request: FastifyRequest) => string): Limiter => {
      if (max === 0) return async () => {}
      const limit = app.createRateLimit({ max, timeWindow: windowMs, keyGenerator: key })
      return async (request) => {
        const r = await limit(request)
        if (!r.isAllowed && r.isExceeded) {
          metrics.rateLimitHits[name]++
          // The logins are the token endpoints (pair and sliding); sign-up shares the per-address limit.
          if (request.routeOptions.url?.startsWith('/api/token/')) metrics.logins.throttled++
          throw errors.throttled(Math.max(1, r.ttlInSeconds))
        }
      }
    }
    const { perIp, perUser, windowMs } = opts.config.loginRateLimit
    app.decorate('limits', {
      loginByIp: limiter('login_ip', perIp, windowMs, (r) => `login-ip:${r.ip}`),
      loginByUser: limiter(
        'login_user',
        perUser,
        windowMs,
        (r) => `login-user:${String((r.body as { username?: unknown } | undefined)?.username ?? '').toLowerCase()}`,
      ),
    } satisfies Limits)
  },
  { name: 'runway-rate-limit', dependencies: ['runway-metrics'] },
)
