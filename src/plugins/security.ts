// Security headers, body parsing limits, login rate limits shared by every worker, and load
// shedding. Rate-limit counters live in the store, so N pm2 workers do not allow N times the limit.
import fp from 'fastify-plugin'
import helmet from 'helmet'
import type { IncomingMessage, ServerResponse } from 'node:http'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import type { Store } from '../store/store.js'

/**
 * helmet's security headers for this API never vary by request, so helmet computes them once here
 * and every response gets the same set. (@fastify/helmet builds a helmet middleware per request,
 * re-parsing the CSP each time: 8% of the CPU of GET /api/me/ in a profile.)
 */
function securityHeaders(options: Parameters<typeof helmet>[0]): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader: (name: string, value: unknown) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
  }
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, () => {})
  return headers
}

/** @fastify/rate-limit's store contract, backed by runway's store (SQLite: one file per host). */
function sharedRateLimitStore(store: Store) {
  return class SharedRateLimitStore {
    incr(key: string, cb: (err: Error | null, res?: { current: number; ttl: number }) => void, timeWindow: number) {
      const now = Date.now()
      store.hit(key, timeWindow, now).then(
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
  async function security(app: FastifyInstance, opts: { config: Config }) {
    const { config } = opts
    const headers = securityHeaders({
      // A JSON API: nothing may be framed, sniffed or loaded from it. /docs sets its own CSP.
      contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      // HSTS belongs to the TLS terminator (nginx); a plain-HTTP origin must not send it.
      strictTransportSecurity: false,
    })
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(headers)
      done()
    })
    // Bodies are JSON or form-encoded, as DRF's parsers; anything else is a 415.
    app.removeContentTypeParser('text/plain')
    await app.register(formbody, { bodyLimit: config.bodyLimit })
    await app.register(rateLimit, { global: false, store: sharedRateLimitStore(app.store) })
    if (config.maxEventLoopDelayMs > 0) {
      await app.register(underPressure, {
        maxEventLoopDelay: config.maxEventLoopDelayMs,
        retryAfter: 1,
        // Health endpoints answer even when shedding, so orchestrators see the truth.
        exposeStatusRoute: false,
      })
    }
  },
  { name: 'runway-security', dependencies: ['runway-store'] },
)
