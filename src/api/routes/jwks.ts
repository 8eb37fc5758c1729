// Public keys for services that verify runway's tokens themselves (asymmetric algorithms only;
// an HMAC secret is never published, so the list is empty for HS*).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { KeyRing } from '../auth/keys.js'

const Jwks = Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) })

const jwksRoutes: FastifyPluginAsyncTypebox<{ keys: KeyRing }> = async (app, { keys }) => {
  const body = { keys: keys.jwks }
  app.get(
    '/.well-known/jwks.json',
    { schema: { tags: ['token'], summary: 'JSON Web Key Set of the verification keys', response: { 200: Jwks } } },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300')
      return body
    },
  )
}

export default jwksRoutes
