// Every failure becomes a JSON body in simplejwt/DRF's shape. Client mistakes get 4xx with a
// message they can act on; a 5xx never carries a stack trace or an internal message.
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import { ApiError, errors as apiErrors } from '../errors.js'
import { StoreUnavailableError } from '../store/store.js'
import { KnownRoutes } from './known-routes.js'

interface AjvError {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

/** Ajv's errors → DRF's `{"field": ["message"]}`, one key per field. */
function fieldErrors(validation: AjvError[]): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  const add = (field: string, message: string) => {
    const list = (out[field] ??= [])
    if (!list.includes(message)) list.push(message)
  }
  for (const e of validation) {
    const field = e.keyword === 'required' ? String(e.params.missingProperty) : e.instancePath.split('/')[1]
    if (!field) {
      add('non_field_errors', 'Invalid data. Expected a dictionary.')
      continue
    }
    switch (e.keyword) {
      case 'required':
        add(field, 'This field is required.')
        break
      case 'type':
        add(field, 'Not a valid string.')
        break
      case 'minLength':
        add(field, 'This field may not be blank.')
        break
      case 'maxLength':
        add(field, `Ensure this field has no more than ${String(e.params.limit)} characters.`)
        break
      default:
        add(field, 'Invalid value.')
    }
  }
  return out
}

/** What a CONNECT gets: Node hands it to a 'connect' listener, never to Fastify. */
const CONNECT_REFUSED = (() => {
  const body = JSON.stringify({ detail: 'Method "CONNECT" not allowed.' })
  return [
    'HTTP/1.1 405 Method Not Allowed',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'Connection: close',
    '',
    body,
  ].join('\r\n')
})()

export default fp(
  async function errors(app: FastifyInstance) {
    const known = new KnownRoutes()
    app.addHook('onRoute', (route) => known.add(route.url, route.method))
    const allowedMethods = (request: FastifyRequest) => {
      const found = known.methodsFor(request.url.split('?')[0] ?? '/')
      return METHODS.filter((m) => found.includes(m))
    }
    // Without a listener Node closes a CONNECT's socket with no answer; give it the same 405
    // JSON as any other method no route answers.
    app.server.on('connect', (_req: unknown, socket: Socket) => {
      socket.on('error', () => {})
      socket.end(CONNECT_REFUSED)
    })

    app.setNotFoundHandler(async (request, reply) => {
      const allow = allowedMethods(request)
      if (allow.length > 0) {
        // OPTIONS is answered wherever a route is (as DRF does), so the Allow header below is
        // true. A CORS preflight from an origin that is not allowed ends here too: 200 without
        // any Access-Control-* header, as django-cors-headers answers it; the browser then blocks.
        if (request.method === 'OPTIONS')
          return reply
            .code(200)
            .header('allow', [...allow, 'OPTIONS'].join(', '))
            .header('content-length', '0')
            .send()
        return reply
          .code(405)
          .header('allow', [...allow, 'OPTIONS'].join(', '))
          .send({ detail: `Method "${request.method}" not allowed.` })
      }
      return reply.code(404).send({ detail: 'Not found.' })
    })

    app.setErrorHandler(async (error: FastifyError, request, reply) => {
      if (error instanceof ApiError) {
        return reply.code(error.statusCode).headers(error.headers).send(error.body)
      }
      // The store is down, full, read-only or corrupt: the client did nothing wrong and may retry.
      if (error instanceof StoreUnavailableError) {
        request.server.storeHealth.report(error, request.id)
        const answer = apiErrors.storeUnavailable()
        return reply.code(answer.statusCode).headers(answer.headers).send(answer.body)
      }
      if (error.validation) {
        return reply.code(400).send(fieldErrors(error.validation as AjvError[]))
      }
      const status = error.statusCode ?? 500
      switch (error.code) {
        case 'FST_ERR_CTP_INVALID_JSON_BODY':
        case 'FST_ERR_CTP_EMPTY_JSON_BODY':
          return reply.code(400).send({ detail: `JSON parse error - ${error.message}` })
        case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
          return reply.code(415).send({ detail: `Unsupported media type "${request.headers['content-type'] ?? ''}" in request.` })
        case 'FST_ERR_CTP_BODY_TOO_LARGE':
          return reply.code(413).send({ detail: 'Request body is too large.' })
      }
      if (error instanceof SyntaxError && status === 400) {
        return reply.code(400).send({ detail: `JSON parse error - ${error.message}` })
      }
      if (status >= 400 && status < 500) {
        return reply.code(status).send({ detail: error.message })
      }
      request.server.log.error({ err: error, reqId: request.id }, 'request failed')
      return reply.code(500).send({ detail: 'A server error occurred.' })
    })
  },
  { name: 'runway-errors' },
)
