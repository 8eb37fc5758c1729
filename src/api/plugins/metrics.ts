// app.metrics (the counters routes bump) and, when metrics are on, the per-request counting.
//
// The request path stays cheap: each route gets its own RouteSeries when it is registered and a
// route-level onRequest hook that notes it and the start time on the raw request; the count and
// the latency are recorded when Node publishes the response's end on the
// 'http.server.response.finish' diagnostics channel. No onResponse hook (Fastify would add two
// listeners and a closure to every response), no route lookup, no labels per request.
import fp from 'fastify-plugin'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import type { AppMetrics, RouteSeries } from '../metrics/app-metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: AppMetrics
    /** A request refused for overload (503 + Retry-After): counted, and logged at most every SHED_LOG_EVERY_MS. */
    shed(reason: keyof AppMetrics['loadShed']): void
  }
}

/**
 * Load shedding is the process protecting itself, not a fault, but an operator must hear of it
 * without a metrics scrape: one warning per interval with what was refused since the last, never
 * one line per refused request (a storm would flood the log it is read from).
 */
const SHED_LOG_EVERY_MS = 10_000

/** What the route hook notes on the raw request for the finish handler. */
interface Noted extends IncomingMessage {
  runwaySeries?: RouteSeries
  runwayStart?: number
}

const FINISH = 'http.server.response.finish'

export default fp(
  async function metrics(app: FastifyInstance, opts: { metrics: AppMetrics; countRequests: boolean }) {
    const m = opts.metrics
    app.decorate('metrics', m)
    // The first refusal is logged at once; those after it, every SHED_LOG_EVERY_MS while they go on.
    const unlogged = { password_hash: 0, event_loop: 0 }
    let timer: NodeJS.Timeout | undefined
    const flush = () => {
      timer = undefined
      if (unlogged.password_hash + unlogged.event_loop === 0) return
      app.log.warn({ refused: { ...unlogged } }, 'overloaded: requests refused with 503 + Retry-After (load shedding) since the last such line')
      unlogged.password_hash = unlogged.event_loop = 0
      timer = setTimeout(flush, SHED_LOG_EVERY_MS).unref()
    }
    app.decorate('shed', (reason: keyof AppMetrics['loadShed']) => {
      m.loadShed[reason]++
      unlogged[reason]++
      if (!timer) flush()
    })
    // On close: a line for what was refused since the last one, and no timer left armed.
    app.addHook('onClose', async () => {
      clearTimeout(timer)
      flush()
      clearTimeout(timer)
    })
    if (!opts.countRequests) return

    app.addHook('onRoute', (route) => {
      const methods = [route.method].flat()
      const series = new Map(methods.map((method) => [method, m.route(route.url, method)]))
      const only = methods.length === 1 ? series.get(methods[0]!)! : undefined
      const note: onRequestHookHandler = (request, _reply, done) => {
        const raw = request.raw as Noted
        raw.runwaySeries = only ?? series.get(request.method)
        raw.runwayStart = performance.now()
        done()
      }
      // First, so the latency includes the route's other hooks (authentication).
      route.onRequest = route.onRequest ? [note, ...[route.onRequest].flat()] : note
    })

    const onFinish = (message: unknown) => {
      const { request, response, server } = message as { request: Noted; response: ServerResponse; server: unknown }
      if (server !== app.server) return
      const series = request.runwaySeries
      if (series) series.record(response.statusCode, (performance.now() - request.runwayStart!) / 1000)
      // No route matched (404/405 from the not-found handler, or refused before routing): counted,
      // but with no start time the latency histogram leaves it out.
      else m.unmatchedRoute(request.method).countOnly(response.statusCode)
    }
    subscribe(FINISH, onFinish)
    app.addHook('onClose', async () => void unsubscribe(FINISH, onFinish))
  },
  { name: 'runway-metrics' },
)
