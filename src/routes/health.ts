// Liveness touches nothing (a stuck store must not get healthy workers killed); readiness asks
// the store, and is what pm2's wait_ready, the deploy gate and load balancers look at.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const Status = Type.Object({ status: Type.String(), detail: Type.Optional(Type.String()) })

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness', response: { 200: Status } } }, async () => ({ status: 'ok' }))
  app.get(
    '/readyz',
    { schema: { tags: ['health'], summary: 'Readiness: the store answers', response: { 200: Status, 503: Status } } },
    async (request, reply) => {
      try {
        await app.store.ping()
        return { status: 'ok' }
      } catch (err) {
        app.log.error({ err, reqId: request.id }, 'readiness check failed')
        return reply.code(503).send({ status: 'unavailable', detail: 'The store is not reachable.' })
      }
    },
  )
}

export default healthRoutes
