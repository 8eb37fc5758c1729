// The ceiling twin: the thinnest app that does what GET /api/me/ does — a bare node:http server
// that verifies the same HS256 access token (remembering verified tokens until they expire, as
// the API does), reads the user from the same SQLite file the same way (better-sqlite3, one
// indexed read by id, remembered for the API's default AUTH_USER_CACHE_TTL as the API does) and
// returns the same JSON with its request id. No framework, no plugins, no logging, no schema,
// no revocation set. With CEILING_WORKERS=n it runs as a
// node:cluster of n workers, the topology pm2's cluster mode uses. `runway compare --ceiling`
// measures it beside each production stage; stage ÷ twin is the stage's efficiency.
//
//   PORT=3000 DATA_DIR=./data JWT_SIGNING_KEY=... [CEILING_WORKERS=2] [CEILING_SOCKET=/path.sock] node --import tsx loadtest/ceiling-server.ts
import cluster from 'node:cluster'
import { chmodSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import Database from 'better-sqlite3'
import { verifyHs256 } from '../src/bench/loadtest/hs256.js'
import { requestId } from '../src/api/request-id.js'
import { sqliteFile } from '../src/api/store/sqlite.js'

const env = process.env
const workers = Number(env.CEILING_WORKERS ?? '0')
const key = env.JWT_SIGNING_KEY ?? ''
if (!key || !env.DATA_DIR) {
  process.stderr.write("ceiling-server: set JWT_SIGNING_KEY and DATA_DIR (the stack's SQLite directory)\n")
  process.exit(78)
}

const USER_TTL_MS = 5000
const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' }
const NOT_VALID = '{"detail":"Given token not valid for any token type","code":"token_not_valid"}'

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { ...JSON_TYPE, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function serve(): void {
  const db = new Database(sqliteFile(env.DATA_DIR!))
  db.pragma('busy_timeout = 5000')
  const findUser = db.prepare<[number], { id: number; username: string; is_active: number }>('SELECT id, username, is_active FROM users WHERE id = ?')

  // Verified tokens are remembered until they expire, as the API does (fast-jwt's verify cache):
  // a busy client does not pay an HMAC per request in either, so the twin stays the ceiling.
  const verified = new Map<string, Record<string, unknown>>()
  const verifyCached = (token: string): Record<string, unknown> | null => {
    const hit = verified.get(token)
    if (hit) return (hit.exp as number) > Date.now() / 1000 ? hit : (verified.delete(token), null)
    const claims = verifyHs256(token, key)
    if (claims) {
      if (verified.size >= 10_000) verified.clear()
      verified.set(token, claims)
    }
    return claims
  }

  // Users are remembered as long as the API remembers them by default (AUTH_USER_CACHE_TTL=5s): a
  // twin that read the store on every request while the API does not would be no ceiling.
  const users = new Map<number, { user: { id: number; username: string; is_active: number } | undefined; at: number }>()
  const findUserCached = (id: number) => {
    const hit = users.get(id)
    if (hit && Date.now() - hit.at < USER_TTL_MS) return hit.user
    const user = findUser.get(id)
    if (users.size >= 100_000) users.clear()
    users.set(id, { user, at: Date.now() })
    return user
  }

  const me = (req: IncomingMessage, res: ServerResponse) => {
    const header = req.headers.authorization
    if (!header?.startsWith('Bearer ')) return send(res, 401, '{"detail":"Authentication credentials were not provided."}')
    const claims = verifyCached(header.slice(7))
    if (claims?.token_type !== 'access') return send(res, 401, NOT_VALID)
    const user = findUserCached(Number(claims.user_id))
    if (user?.is_active !== 1) return send(res, 401, '{"detail":"User not found","code":"user_not_found"}')
    send(res, 200, JSON.stringify({ id: user.id, username: user.username }))
  }

  const verify = (req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (body += c))
    req.on('end', () => {
      let token: unknown
      try {
        token = (JSON.parse(body) as { token?: unknown }).token
      } catch {
        return send(res, 400, '{"detail":"JSON parse error"}')
      }
      const valid = typeof token === 'string' && verifyHs256(token, key) !== null
      send(res, valid ? 200 : 401, valid ? '{}' : NOT_VALID)
    })
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // Every answer carries its request id, as the API's do (nginx logs the id the app answered with).
    res.setHeader('x-request-id', requestId(req.headers['x-request-id']))
    const path = req.url ?? '/'
    if (req.method === 'GET' && (path === '/api/me/' || path === '/api/me')) return me(req, res)
    if (req.method === 'GET' && (path === '/healthz' || path === '/readyz')) return send(res, 200, '{"status":"ok"}')
    if (req.method === 'POST' && (path === '/api/token/verify/' || path === '/api/token/verify')) return verify(req, res)
    send(res, 404, '{"detail":"Not found."}')
  }
  const server = createServer(handle)
  // The same keep-alive the API uses (above nginx's upstream keepalive_timeout).
  server.keepAliveTimeout = 65_000
  server.listen(Number(env.PORT ?? '3000'), env.HOST ?? '127.0.0.1')
  // CEILING_SOCKET: also a Unix socket, as the API's UNIX_SOCKET (nginx's upstream on one host).
  const door = env.CEILING_SOCKET ? createServer(handle) : undefined
  if (door) door.keepAliveTimeout = 65_000
  door?.listen(env.CEILING_SOCKET, () => chmodSync(env.CEILING_SOCKET!, 0o666))
  const close = () => {
    door?.close()
    server.close(() => process.exit(0))
  }
  process.on('SIGTERM', close)
  process.on('SIGINT', close)
}

if (workers > 0 && cluster.isPrimary) {
  let stopping = false
  for (let i = 0; i < workers; i++) cluster.fork()
  // A twin never restarts a worker: if one dies the measurement is void, so the twin exits.
  cluster.on('exit', (w, code) => {
    if (stopping) return
    process.stderr.write(`ceiling-server: worker ${w.process.pid} exited (${code}); stopping\n`)
    process.exit(1)
  })
  const stop = () => {
    stopping = true
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM')
    setTimeout(() => process.exit(0), 2000).unref()
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
} else {
  serve()
}
