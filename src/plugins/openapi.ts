// OpenAPI 3 document generated from the route schemas, served at /docs/json, and the UI at /docs.
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

export default fp(
  async function openapi(app: FastifyInstance, opts: { ui: boolean; version: string }) {
    await app.register(swagger, {
      openapi: {
        info: {
          title: 'runway auth API',
          description: 'JWT authentication compatible with djangorestframework-simplejwt.',
          version: opts.version,
        },
        components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      },
    })
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, exposeRoute: opts.ui } as Parameters<typeof swaggerUi>[1])
  },
  { name: 'runway-openapi' },
)
