// CORS like django-cors-headers, through @fastify/cors: closed unless CORS_ALLOWED_ORIGINS or
// CORS_ALLOWED_ORIGIN_REGEXES name an origin (then not even registered: no cost, no headers).
// An allowed origin gets Access-Control-Allow-Origin with its exact value, never a reflection of
// whatever was sent; any other origin (and `null`, unless listed) gets no Access-Control-* header
// at all, so the browser withholds the answer. Preflights are answered in the first onRequest
// hook: no store, no rate limit, no authentication, and still under load shedding.
import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import type { CorsSettings } from '../config.js'

/** django-cors-headers' defaults (CORS_ALLOW_METHODS, CORS_ALLOW_HEADERS), so its clients fit. */
export const CORS_ALLOW_METHODS = ['DELETE', 'GET', 'OPTIONS', 'PATCH', 'POST', 'PUT']
export const CORS_ALLOW_HEADERS = [
  'accept',
  'accept-encoding',
  'authorization',
  'content-type',
  'dnt',
  'origin',
  'user-agent',
  'x-csrftoken',
  'x-requested-with',
]

export const corsEnabled = (c: CorsSettings) => c.origins.length > 0 || c.originRegexes.length > 0

/** What Access-Control-Allow-Origin says for this Origin header, or false for none. */
export function allowOrigin(c: CorsSettings, origin: string | undefined): string | false {
  if (!origin) return false
  if (c.origins.includes(origin)) return origin
  // `null` (sandboxed frames, file: pages, some redirects) is many unrelated senders at once: only
  // an explicit listing allows it, never `*` or a regex.
  if (origin === 'null') return false
  if (c.origins.includes('*')) return '*'
  return c.originRegexes.some((re) => re.test(origin)) ? origin : false
}

export default fp(
  async function corsPlugin(app: FastifyInstance, opts: { cors: CorsSettings }) {
    const settings = opts.cors
    if (!corsEnabled(settings)) return
    await app.register(cors, {
      // A function, so @fastify/cors adds Vary: Origin to every answer (a cache must not hand one
      // origin's answer to another).
      origin: (origin, cb) => cb(null, allowOrigin(settings, origin)),
      methods: CORS_ALLOW_METHODS,
      allowedHeaders: CORS_ALLOW_HEADERS,
      credentials: settings.credentials,
      maxAge: settings.maxAgeSeconds,
      // django-cors-headers answers preflights 200; an OPTIONS without Access-Control-Request-Method
      // is answered the same way rather than 400.
      optionsSuccessStatus: 200,
      strictPreflight: false,
    })
  },
  { name: 'runway-cors' },
)
