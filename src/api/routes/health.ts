// Liveness touches nothing (a stuck store must not get healthy workers killed); readiness asks
// the store, and is what pm2's wait_ready, the deploy gate and load balancers look at.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { STORE_RETRY_AFTER_S } from '../errors.js'

const Status = Type.Object({ status: Type.String(), detail: Type.Optional(Type.String()) })

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness', response: { 200: Status } } }, async () => ({ status: 'ok' }))
  app.get(
    '/readyz',
    { schema: { tags: ['health'], summary: 'Readiness: the store can serve writes', response: { 200: Status, 503: Status } } },
    async (request, reply) => {
      // A probe write (cached for 500 ms) plus the faults requests met in the last 2 s; the fault
      // is logged by storeHealth once per burst, not per probe.
      const fault = await app.storeHealth.check(request.id)
      if (!fault) return { status: 'ok' }
      return reply.code(503).header('retry-after', String(STORE_RETRY_AFTER_S)).send({ status: 'unavailable', detail: 'The store cannot serve writes.' })
    },
  )
}

export default healthRoutes
