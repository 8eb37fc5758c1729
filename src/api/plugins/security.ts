// Response headers (the security set and the request id), body parsing limits and load shedding.
// (Rate limits: plugins/rate-limit.ts.)
import fp from 'fastify-plugin'
import helmet from 'helmet'
import type { IncomingMessage, ServerResponse } from 'node:http'
import formbody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import { startLagMonitor } from './event-loop-lag.js'

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

export default fp(
  async function security(app: FastifyInstance, opts: { config: Config }) {
    const { config } = opts
    // The OWASP REST Security set (with HSTS left to nginx), no more: every header is paid for on
    // every response (helmet's eleven cost ~10% of GET /api/me/). The rest of helmet's serve HTML
    // documents (COOP, CORP, Origin-Agent-Cluster, Referrer-Policy, X-DNS-Prefetch-Control,
    // X-Download-Options, X-Permitted-Cross-Domain-Policies, X-XSS-Protection); nginx adds
    // Referrer-Policy and HSTS at the edge.
    const headers = securityHeaders({
      // A JSON API: nothing may be framed, sniffed or loaded from it. /docs sets its own CSP.
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      xFrameOptions: { action: 'deny' },
      strictTransportSecurity: false,
      crossOriginOpenerPolicy: false,
      crossOriginResourcePolicy: false,
      originAgentCluster: false,
      referrerPolicy: false,
      xDnsPrefetchControl: false,
      xDownloadOptions: false,
      xPermittedCrossDomainPolicies: false,
      xXssProtection: false,
    })
    // Tokens and user data must not be stored by browsers or proxies (RFC 6749 §5.1 for the token
    // endpoints; OWASP for every API response). Routes with public data (JWKS) override it.
    headers['cache-control'] = 'no-store'
    // Which worker answered (development default): shows pm2's round robin at work.
    if (config.workerHeader) headers['x-runway-worker'] = config.workerId
    // Load shedding: while the event loop lags more than MAX_EVENT_LOOP_DELAY, answer 503 with
    // Retry-After at once instead of queueing more work. The lag is the longest delay of each
    // second, from a histogram (event-loop-lag.ts: no fd needed, so fd exhaustion cannot end the process);
    // the check is this hook's, one comparison per request.
    // Liveness (/healthz) still answers: the process is alive, only busy.
    const maxDelayMs = config.maxEventLoopDelayMs
    const lag = maxDelayMs > 0 ? startLagMonitor() : undefined
    if (lag) {
      // Start-up work (module compilation, migrations) holds the loop with no sign of overload:
      // forgotten once the app is ready, so it cannot shed the first requests.
      app.addHook('onReady', async () => lag.forget())
      app.addHook('onClose', async () => lag.stop())
    }
    const overloaded = () => lag !== undefined && lag.lagMs() > maxDelayMs

    // Every answer, errors included, gets the headers and its request id (for joining logs) as
    // soon as the request arrives. One plain callback hook: no promise on the hot path.
    app.addHook('onRequest', (request, reply, done) => {
      reply.headers(headers)
      reply.header('x-request-id', request.id)
      if (overloaded() && !request.url.startsWith('/healthz')) {
        app.shed('event_loop')
        return done(errors.overloaded())
      }
      done()
    })
    // Bodies are JSON or form-encoded, as DRF's parsers; anything else is a 415.
    app.removeContentTypeParser('text/plain')
    await app.register(formbody, { bodyLimit: config.bodyLimit })
  },
  // app.shed (load shedding's counter and warning) comes from the metrics plugin: without it the
  // first refusal would throw, so the app refuses to build instead.
  { name: 'runway-security', dependencies: ['runway-metrics'] },
)
