// The authenticated user. The hot path of every authenticated request: token check from cache,
// revocation from memory, one indexed user read.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { bearer, errorResponses } from './schemas.js'

const Me = Type.Object({ id: Type.Integer(), username: Type.String() })

const meRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/api/me/',
    {
      schema: { tags: ['user'], summary: 'The user the access token belongs to', security: bearer, response: { 200: Me, ...errorResponses(401, 503) } },
      onRequest: app.authenticate,
    },
    // Synchronous on purpose: reply.send() directly, no promise for Fastify to unwrap.
    (request, reply) => {
      const { user } = request.auth!
      reply.send({ id: user.id, username: user.username })
    },
  )
}

export default meRoutes
