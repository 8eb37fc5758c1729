// Every failure becomes a JSON body in simplejwt/DRF's shape. Client mistakes get 4xx with a
// message they can act on; a 5xx never carries a stack trace or an internal message.
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import { ApiError } from '../errors.js'

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

function allowedMethods(app: FastifyInstance, request: FastifyRequest): string[] {
  const path = request.url.split('?')[0] ?? '/'
  const variants = path.endsWith('/') ? [path, path.slice(0, -1)] : [path, `${path}/`]
  return METHODS.filter((method) => variants.some((url) => url && app.hasRoute({ url, method })))
}

export default fp(
  async function errors(app: FastifyInstance) {
    app.setNotFoundHandler(async (request, reply) => {
      const allow = allowedMethods(app, request)
      if (allow.length > 0) {
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
