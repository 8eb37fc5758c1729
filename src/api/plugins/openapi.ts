// OpenAPI 3 document generated from the route schemas, served at /docs/json, and the UI at /docs.
// With OPENAPI_UI=false neither is served and neither plugin is even loaded: a worker that does not
// serve docs does not pay their start-up time and memory.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

export default fp(
  async function openapi(app: FastifyInstance, opts: { ui: boolean; version: string }) {
    if (!opts.ui) return
    const [{ default: swagger }, { default: swaggerUi }] = await Promise.all([import('@fastify/swagger'), import('@fastify/swagger-ui')])
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
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
  },
  { name: 'runway-openapi' },
)
