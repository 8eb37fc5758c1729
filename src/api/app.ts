// buildApp: the whole API as a Fastify instance, from a Config and its dependencies. It never
// listens and never reads the environment: server.ts, the CLI and the tests all start it this way.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { createRequire } from 'node:module'
import type { Config } from './config.js'
import { loadKeyRing, type KeyRing } from './auth/keys.js'
import { createLogger } from './logger.js'
import { requestId } from './request-id.js'
import errorsPlugin from './plugins/errors.js'
import corsPlugin from './plugins/cors.js'
import storePlugin from './plugins/store.js'
import metricsPlugin from './plugins/metrics.js'
import { AppMetrics } from './metrics/app-metrics.js'
import securityPlugin from './plugins/security.js'
import authPlugin from './plugins/auth.js'
import passwordsPlugin from './plugins/passwords.js'
import loginPlugin from './plugins/login.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import openapiPlugin from './plugins/openapi.js'
import healthRoutes from './routes/health.js'
import tokenRoutes from './routes/token.js'
import slidingRoutes from './routes/sliding.js'
import meRoutes from './routes/me.js'
import passwordRoutes from './routes/password.js'
import registerRoutes from './routes/register.js'
import jwksRoutes from './routes/jwks.js'
import { openStore } from './store/open.js'
import type { RateLimitStore, Store } from './store/store.js'

export interface AppDeps {
  /** Defaults to the configured store (openStore), closed with the app. */
  store?: Store
  /** Where rate limits count; defaults to the store. */
  rateLimits?: RateLimitStore
  keys?: KeyRing
  /** Pretty logs (the dev server); otherwise JSON. */
  prettyLogs?: boolean
  /** A pino destination stream (tests capture logs with it). */
  logStream?: NodeJS.WritableStream
  /** Wait (retrying, logging each attempt) for a store that cannot answer at start; server.ts sets it. */
  waitForStore?: boolean
}

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string }

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const log = createLogger(config, deps.prettyLogs ?? false, deps.logStream)
  const app = Fastify({
    // With per-request lines (the dev server's default), Fastify logs each request through a
    // child logger carrying reqId. Without them (production: nginx writes the access log),
    // Fastify runs with no logger at all: given one, it still builds a child logger and timing
    // listeners for every response (-10% on GET /api/me/). The app's own lines (errors, startup,
    // shutdown) then go through app.log, set just below, and carry reqId themselves.
    ...(config.logRequests ? { loggerInstance: log as FastifyBaseLogger } : {}),
    bodyLimit: config.bodyLimit,
    // Fastify takes a hop count too, though its types omit it.
    trustProxy: config.trustProxy as boolean | string[],
    keepAliveTimeout: config.keepAliveTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.requestTimeoutMs,
    // Each request's id (request-id.ts): the client's X-Request-Id when well-formed, else our own.
    requestIdHeader: false,
    genReqId: (req) => requestId(req.headers['x-request-id']),
    routerOptions: { ignoreTrailingSlash: true },
    ajv: { customOptions: { allErrors: true, coerceTypes: false } },
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>()
  // Without a Fastify logger, request.log is a no-op: app code logs through app.log
  // (request.server.log in a route), which is this pino logger in both modes.
  app.log = log
  app.server.headersTimeout = config.headersTimeoutMs

  const keys = deps.keys ?? loadKeyRing(config.jwt)
  const store = deps.store ?? (await openStore(config))

  // External and cross-cutting plugins, then the app's own (store, auth), then routes.
  await app.register(errorsPlugin)
  // First of the onRequest hooks: preflights are answered before anything else runs.
  await app.register(corsPlugin, { cors: config.cors })
  await app.register(storePlugin, { store, closeStore: !deps.store, waitAtStart: deps.waitForStore ?? false })
  // Before every route, so each gets its counters (only counted when METRICS_PORT is set).
  await app.register(metricsPlugin, { metrics: new AppMetrics(), countRequests: config.metrics !== null })
  await app.register(securityPlugin, { config })
  await app.register(openapiPlugin, { ui: config.openapiUi, version })
  await app.register(authPlugin, { config, keys })
  await app.register(passwordsPlugin, { config })
  await app.register(rateLimitPlugin, { config, store: deps.rateLimits ?? store })
  await app.register(loginPlugin)
  await app.register(healthRoutes)
  await app.register(jwksRoutes, { keys })
  await app.register(tokenRoutes, { config })
  if (config.sliding.enabled) await app.register(slidingRoutes, { config })
  await app.register(meRoutes)
  await app.register(passwordRoutes)
  if (config.registration) await app.register(registerRoutes)
  return app
}
