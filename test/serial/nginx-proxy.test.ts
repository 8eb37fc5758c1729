// A real nginx (standalone variant, temp prefix, free ports) in front of the real API: the token
// flow over HTTPS and HTTP, redirects, headers, TLS versions, client addresses, rate limits,
// body limits and nginx's own JSON errors.
import t, { type Test } from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import http2 from 'node:http2'
import autocannon from 'autocannon'
import tls from 'node:tls'
import { gunzipSync } from 'node:zlib'
import { startNginx, type NginxStack } from '../../src/bench/stacks/nginx.js'
import { isAlive, startService } from '../../src/lib/process.js'
import { createUser, PASSWORD, startApp, type TestApp } from '../helpers/app.js'
import { nginxOrSkip, request, type RawRequest } from '../helpers/nginx.js'

const bin = nginxOrSkip(t)
const hostPort = (app: TestApp) => new URL(app.url).host

/** A request id the app makes (a per-process prefix and a counter); nginx's own are 32 hex digits. */
const APP_REQUEST_ID = /^[0-9a-f]{12}-[0-9a-z]+$/

/** nginx's JSON access log line matching `match`, waited for: the log is flushed at least every second. */
async function accessLogLine(stack: NginxStack, match: (line: Record<string, string | number>) => boolean) {
  const find = () =>
    readFileSync(stack.accessLog, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, string | number>)
      .find(match)
  let line = find()
  for (let i = 0; !line && i < 30; i++) {
    await new Promise((r) => setTimeout(r, 100))
    line = find()
  }
  return line
}

/** The app's "incoming request" log line for a request id. */
function appLogLine(app: TestApp, reqId: string): { req: { remoteAddress: string } } | undefined {
  for (const line of app.logs) {
    const entry = JSON.parse(line) as { reqId?: string; msg?: string; req?: { remoteAddress: string } }
    if (entry.reqId === reqId && entry.msg === 'incoming request') return entry as { req: { remoteAddress: string } }
  }
  return undefined
}

async function nginx(o: Parameters<typeof startNginx>[0]): Promise<NginxStack> {
  const stack = await startNginx(o)
  t.teardown(() => stack.stop())
  return stack
}

function handshake(
  port: number,
  o: tls.ConnectionOptions,
): Promise<{ protocol?: string | null; alpn?: string | false | null; ticket?: boolean; error?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...o }, () => {
      const result = { protocol: socket.getProtocol(), alpn: socket.alpnProtocol, ticket: socket.getTLSTicket() !== undefined }
      socket.destroy()
      resolve(result)
    })
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timeout')))
    socket.on('error', (err) => resolve({ error: err.message }))
  })
}

if (bin) {
  // TRUST_PROXY=127.0.0.1: the app believes X-Forwarded-For only from nginx's address. The app's
  // own login limits are off so every 429 below is nginx's.
  const appEnv = { TRUST_PROXY: '127.0.0.1', LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0', WORKER_HEADER: 'true', NODE_APP_INSTANCE: 'app-a' }
  // The TLS nginx reaches the app over its Unix socket, as `runway host init` sets it up; the
  // plain one over loopback TCP, as a fleet's nginx reaches another host's app.
  const app = await startApp(t, appEnv, { socket: true })
  await createUser(app.store, 'alice', PASSWORD)
  const secure = await nginx({ upstreams: [`unix:${app.socket}`], tls: true, rateLimit: { rate: '1r/s', burst: 5 } })
  const plain = await nginx({ upstreams: [hostPort(app)], tls: false })
  const ca = readFileSync(secure.caFile!)
  const httpsPort = Number(new URL(secure.httpsUrl!).port)

  const tokenFlow = async (t: Test, base: string, opts: RawRequest) => {
    const login = await request(`${base}/api/token/`, { ...opts, json: { username: 'alice', password: PASSWORD } })
    t.equal(login.status, 200, 'login')
    t.type(login.body?.access, 'string')
    const me = await request(`${base}/api/me/`, { ...opts, headers: { authorization: `Bearer ${login.body.access}` } })
    t.same([me.status, me.body], [200, { id: 1, username: 'alice' }], 'GET /api/me/')
    const refreshed = await request(`${base}/api/token/refresh/`, { ...opts, json: { refresh: login.body.refresh } })
    t.equal(refreshed.status, 200, 'refresh')
    const verify = await request(`${base}/api/token/verify/`, { ...opts, json: { token: refreshed.body.access } })
    t.same([verify.status, verify.body], [200, {}], 'verify')
    const logout = await request(`${base}/api/token/blacklist/`, { ...opts, json: { refresh: refreshed.body.refresh } })
    t.same([logout.status, logout.body], [200, {}], 'blacklist (logout)')
    const again = await request(`${base}/api/token/refresh/`, { ...opts, json: { refresh: refreshed.body.refresh } })
    t.same([again.status, again.body.detail], [401, 'Token is blacklisted'], 'a blacklisted refresh token is refused')
    const bad = await request(`${base}/api/token/`, { ...opts, json: { username: 'alice', password: 'wrong' } })
    t.same([bad.status, bad.body], [401, { detail: 'No active account found with the given credentials' }], "the app's 401 passes through unchanged")
    return me
  }

  t.test('the whole token flow over HTTPS, trusting the generated CA', async (t) => {
    const me = await tokenFlow(t, secure.httpsUrl!, { ca, servername: 'localhost' })
    t.equal(me.headers['strict-transport-security'], 'max-age=63072000', 'HSTS')
    t.equal(me.headers['x-content-type-options'], 'nosniff', 'nosniff, once')
    t.equal(me.headers['x-frame-options'], 'DENY')
    t.equal(me.headers['referrer-policy'], 'no-referrer')
    t.equal(me.headers.server, 'nginx', 'server_tokens off: no version')
    t.match(me.headers['x-request-id'], APP_REQUEST_ID, 'the app made the request id (the client sent none)')
    t.equal(me.headers['x-runway-worker'], 'app-a', 'answered by the app behind nginx')
    // Without SNI (a client that connects by IP address), the Host header still finds the site.
    const noSni = await request(`${secure.httpsUrl}/healthz`, { ca })
    t.equal(noSni.status, 200, 'no SNI: served by Host')
  })

  t.test('the whole token flow over plain HTTP (the --no-tls variant)', async (t) => {
    const me = await tokenFlow(t, plain.httpUrl, {})
    t.notOk(me.headers['strict-transport-security'], 'no HSTS over plain HTTP')
    t.equal(me.headers['x-content-type-options'], 'nosniff')
  })

  t.test('HTTP redirects to HTTPS, except the ACME challenge from the webroot', async (t) => {
    const r = await request(`${secure.httpUrl}/api/me/?x=1`)
    t.equal(r.status, 301)
    t.equal(r.headers.location, `https://127.0.0.1:${httpsPort}/api/me/?x=1`)
    const dir = join(secure.settings.acmeWebroot, '.well-known', 'acme-challenge')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'token-123'), 'token-123.thumbprint')
    const challenge = await request(`${secure.httpUrl}/.well-known/acme-challenge/token-123`)
    t.same(
      [challenge.status, challenge.text, challenge.headers['content-type']],
      [200, 'token-123.thumbprint', 'text/plain'],
      'certbot webroot file served over HTTP',
    )
  })

  t.test('requests for an unknown Host are dropped (444)', async (t) => {
    await t.rejects(request(`${plain.httpUrl}/healthz`, { headers: { host: 'evil.example' } }), /socket hang up|ECONNRESET/, 'HTTP')
    await t.rejects(request(`${secure.httpUrl}/healthz`, { headers: { host: 'evil.example' } }), /socket hang up|ECONNRESET/, 'HTTP on the redirect port')
    await t.rejects(
      request(`${secure.httpsUrl}/healthz`, { ca, servername: 'localhost', headers: { host: 'evil.example' } }),
      /socket hang up|ECONNRESET/,
      'HTTPS',
    )
    t.equal((await request(`${plain.httpUrl}/healthz`, { headers: { host: 'localhost' } })).status, 200, 'a known Host is served')
  })

  t.test('TLS 1.0 and 1.1 are refused by nginx; 1.2 and 1.3 succeed, with HTTP/2', async (t) => {
    // SECLEVEL=0 lets this client offer TLS 1.0/1.1, so a refusal is nginx's, not Node's OpenSSL.
    const legacy = { ca, ciphers: 'DEFAULT@SECLEVEL=0' }
    // Control: the same client options do complete a TLS 1.0 handshake with a server that allows it.
    const key = readFileSync(join(secure.prefix, 'tls', 'server.key'))
    const cert = readFileSync(join(secure.prefix, 'tls', 'server.crt'))
    const oldServer = tls.createServer({ key, cert, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (s) => s.end())
    await new Promise<void>((r) => oldServer.listen(0, '127.0.0.1', r))
    t.teardown(() => oldServer.close())
    const control = await handshake((oldServer.address() as { port: number }).port, { ...legacy, minVersion: 'TLSv1', maxVersion: 'TLSv1' })
    t.equal(control.protocol, 'TLSv1', `control: this client can speak TLS 1.0 (${control.error ?? 'ok'})`)

    for (const v of ['TLSv1', 'TLSv1.1'] as const) {
      const r = await handshake(httpsPort, { ...legacy, minVersion: v, maxVersion: v })
      t.match(r.error, /alert protocol version|unsupported protocol/, `${v} refused: ${r.error}`)
    }
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const r = await handshake(httpsPort, { ca, minVersion: v, maxVersion: v, ALPNProtocols: ['h2', 'http/1.1'] })
      t.equal(r.protocol, v, `${v} accepted`)
      t.equal(r.alpn, 'h2', `${v}: HTTP/2 offered`)
    }
    const tls12 = await handshake(httpsPort, { ca, maxVersion: 'TLSv1.2' })
    t.equal(tls12.ticket, false, 'TLS 1.2: no session ticket (ssl_session_tickets off)')
    const cbc = await handshake(httpsPort, { ca, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA' })
    t.match(cbc.error, /handshake failure|no shared cipher/, `a CBC cipher outside Mozilla's list is refused: ${cbc.error}`)
  })

  t.test('a real HTTP/2 request through nginx', async (t) => {
    const session = http2.connect(secure.httpsUrl!, { ca, servername: 'localhost' })
    t.teardown(() => session.close())
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': '/healthz' })
      let status = 0
      let body = ''
      stream.on('response', (h) => (status = Number(h[':status'])))
      stream.setEncoding('utf8').on('data', (c: string) => (body += c))
      stream.on('end', () => resolve({ status, body }))
      stream.on('error', reject)
    })
    t.same([reply.status, JSON.parse(reply.body)], [200, { status: 'ok' }])
  })

  t.test('request.ip is the client address from X-Forwarded-For; a forged header is not trusted', async (t) => {
    // Through nginx from 127.0.0.2, with a forged X-Forwarded-For: nginx replaces it.
    const r = await request(`${plain.httpUrl}/healthz`, {
      localAddress: '127.0.0.2',
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-request-id': 'ip-through-nginx' },
    })
    t.equal(r.status, 200)
    t.equal(r.headers['x-request-id'], 'ip-through-nginx', "the client's request id is kept end to end")
    t.equal(appLogLine(app, 'ip-through-nginx')?.req.remoteAddress, '127.0.0.2', "the app logs the client's address, not nginx's nor the forged one")
    const line = await accessLogLine(plain, (l) => l.request_id === 'ip-through-nginx')
    t.equal(line?.remote_addr, '127.0.0.2', "nginx's JSON access log has the request id and client address")
    t.match(String(line?.upstream_response_time), /^[0-9.]+$/, 'and the upstream time')

    // The same through the TLS nginx, which reaches the app over its Unix socket.
    const viaSocket = await request(`${secure.httpsUrl}/healthz`, {
      ca,
      localAddress: '127.0.0.3',
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-request-id': 'ip-through-socket' },
    })
    t.equal(viaSocket.status, 200)
    t.equal(appLogLine(app, 'ip-through-socket')?.req.remoteAddress, '127.0.0.3', "over the Unix socket too: the client's address")

    // Straight to the app from 127.0.0.2 (not the proxy): the forged header is ignored.
    const direct = await request(`${app.url}/healthz`, {
      localAddress: '127.0.0.2',
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-request-id': 'ip-direct' },
    })
    t.equal(direct.status, 200)
    t.equal(appLogLine(app, 'ip-direct')?.req.remoteAddress, '127.0.0.2', 'TRUST_PROXY=127.0.0.1: a header from elsewhere is not believed')

    // An app not behind the proxy (TRUST_PROXY=false) believes no header at all.
    const exposed = await startApp(t, { TRUST_PROXY: 'false' })
    await request(`${exposed.url}/healthz`, { headers: { 'x-forwarded-for': '203.0.113.7', 'x-request-id': 'ip-untrusted' } })
    t.equal(appLogLine(exposed, 'ip-untrusted')?.req.remoteAddress, '127.0.0.1', 'TRUST_PROXY=false: request.ip is the socket address')
  })

  t.test("one request id in the answer, the app's log and nginx's log; nginx makes its own only for its own answers", async (t) => {
    const none = await request(`${plain.httpUrl}/healthz`, { localAddress: '127.0.0.6' })
    const id = String(none.headers['x-request-id'])
    t.match(id, APP_REQUEST_ID, 'no id from the client: the app made one')
    t.ok(appLogLine(app, id), "the app's log has it")
    t.equal((await accessLogLine(plain, (l) => l.request_id === id))?.status, 200, "nginx's access log has the same id")

    const malformed = await request(`${plain.httpUrl}/healthz`, { localAddress: '127.0.0.6', headers: { 'x-request-id': 'not an id!' } })
    const replaced = String(malformed.headers['x-request-id'])
    t.match(replaced, APP_REQUEST_ID, 'a malformed id from the client is replaced by the app')
    t.ok(await accessLogLine(plain, (l) => l.request_id === replaced), 'and nginx logs the replacement, not what the client sent')

    // 413: answered by nginx, the app never saw it. The response has no request id (the drill
    // tells nginx's answers from the app's by that); the log line still has one.
    const body = { raw: `{"pad":"${'x'.repeat(70_000)}"}`, headers: { 'content-type': 'application/json' }, localAddress: '127.0.0.7' }
    const own = await request(`${plain.httpUrl}/api/password/change/`, body)
    t.equal(own.status, 413)
    t.notOk(own.headers['x-request-id'], "nginx's own answer carries no request id")
    const ownLine = await accessLogLine(plain, (l) => l.status === 413 && l.remote_addr === '127.0.0.7')
    t.match(ownLine?.request_id, /^[0-9a-f]{32}$/, 'nginx logs an id of its own ($request_id) for it')
    const kept = await request(`${plain.httpUrl}/api/password/change/`, { ...body, headers: { ...body.headers, 'x-request-id': 'client-413' } })
    t.equal(kept.status, 413)
    t.ok(await accessLogLine(plain, (l) => l.status === 413 && l.request_id === 'client-413'), "or the client's, when it sent a well-formed one")
  })

  t.test('gzip for JSON', async (t) => {
    const r = await request(`${plain.httpUrl}/docs/json`, { headers: { 'accept-encoding': 'gzip' }, localAddress: '127.0.0.5' })
    t.equal(r.headers['content-encoding'], 'gzip')
    t.equal(r.headers.vary, 'Accept-Encoding')
    const raw = await new Promise<Buffer>((resolve, reject) => {
      import('node:http').then(({ get }) =>
        get(`${plain.httpUrl}/docs/json`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks)))
        }).on('error', reject),
      )
    })
    t.match(JSON.parse(gunzipSync(raw).toString()), { openapi: String }, 'the OpenAPI document, compressed')
  })

  t.test('under concurrent load nginx reuses its upstream connections instead of opening new ones', async (t) => {
    // With an upstream keepalive pool smaller than the requests in flight (the old default of 32
    // per nginx worker, 50 clients on this one-worker nginx), the connections beyond it were closed
    // after each response and reopened: ~900 a second, a quarter of the nginx stacks' throughput.
    let opened = 0
    const count = () => opened++
    app.app.server.on('connection', count)
    t.teardown(() => void app.app.server.off('connection', count))
    const result = await autocannon({ url: `${plain.httpUrl}/healthz`, connections: 50, amount: 4000, timeout: 10 })
    t.equal(result.non2xx + result.errors, 0, `${result.requests.total} requests, all 2xx`)
    t.ok(opened <= 100, `${opened} upstream connections opened for 4000 requests from 50 clients`)
  })

  t.test('a burst of logins gets 429 JSON from nginx', async (t) => {
    // From 127.0.0.3, so the limit zone's bucket for this test is its own.
    const started = Date.now()
    const burst = await Promise.all(
      Array.from({ length: 20 }, () =>
        request(`${secure.httpsUrl}/api/token/`, { ca, localAddress: '127.0.0.3', json: { username: 'alice', password: 'wrong-password' } }),
      ),
    )
    const limited = burst.filter((r) => r.status === 429)
    const passed = burst.filter((r) => r.status === 401)
    t.equal(limited.length + passed.length, 20, `only 401 and 429 (${burst.map((r) => r.status).join(' ')})`)
    // 1 + burst 5 at once, then 1 per second for as long as the burst took (a loaded machine is slow).
    const allowed = 6 + Math.ceil((Date.now() - started) / 1000)
    t.ok(passed.length >= 1 && passed.length <= allowed, `burst 5 at 1r/s let ${passed.length} through (at most ${allowed})`)
    t.ok(limited.length >= 20 - allowed, `${limited.length} answered 429`)
    const r = limited[0]!
    t.same(r.body, { detail: 'Request was throttled. Expected available in 1 second.' })
    t.equal(r.headers['content-type'], 'application/json')
    t.equal(r.headers['retry-after'], '1')
    t.equal(r.headers['strict-transport-security'], 'max-age=63072000', 'security headers on the 429 too')
    t.notOk(r.headers['x-runway-worker'], 'answered by nginx, the app never saw it')
    // Another client is not affected.
    const other = await request(`${secure.httpsUrl}/api/token/`, { ca, localAddress: '127.0.0.4', json: { username: 'alice', password: PASSWORD } })
    t.equal(other.status, 200, 'another client address logs in')
  })

  t.test('a body over the limit gets 413 JSON from nginx; one at the limit reaches the app', async (t) => {
    const over = await request(`${plain.httpUrl}/api/password/change/`, {
      raw: `{"pad":"${'x'.repeat(65536)}"}`,
      headers: { 'content-type': 'application/json' },
    })
    t.equal(over.status, 413)
    t.same(over.body, { detail: 'Request body is too large.' })
    t.equal(over.headers['content-type'], 'application/json')
    t.notOk(over.headers['x-runway-worker'], 'refused by nginx')
    const pad = 65536 - '{"pad":""}'.length
    const atLimit = await request(`${plain.httpUrl}/api/password/change/`, {
      raw: `{"pad":"${'x'.repeat(pad)}"}`,
      headers: { 'content-type': 'application/json' },
    })
    t.same(
      [atLimit.status, Object.keys(atLimit.body ?? {})],
      [400, ['old_password', 'new_password']],
      'exactly BODY_LIMIT bytes pass nginx and the app (whose schema then wants its fields)',
    )
    t.equal(atLimit.headers['x-runway-worker'], 'app-a')
  })

  t.test('malformed requests nginx answers before picking a server get JSON too', async (t) => {
    const cases: [string, Promise<Awaited<ReturnType<typeof request>>>, number, string][] = [
      ['an overlong URI', request(`${secure.httpsUrl}/${'a'.repeat(10_000)}`, { ca, servername: 'localhost' }), 414, 'Request URI is too long.'],
      [
        'an overlong header',
        request(`${secure.httpsUrl}/healthz`, { ca, servername: 'localhost', headers: { 'x-big': 'b'.repeat(20_000) } }),
        400,
        'Bad request.',
      ],
      ['plain HTTP to the HTTPS port', request(`http://127.0.0.1:${httpsPort}/healthz`), 400, 'Bad request.'],
      ['an overlong URI over plain HTTP', request(`${plain.httpUrl}/${'a'.repeat(10_000)}`), 414, 'Request URI is too long.'],
    ]
    for (const [what, pending, status, detail] of cases) {
      const r = await pending
      t.same([r.status, r.headers['content-type'], r.body], [status, 'application/json', { detail }], what)
    }
  })

  t.test('with the app stopped nginx answers 502 JSON; a hung app gets 504 JSON', async (t) => {
    const doomed = await startApp(t, { WORKER_HEADER: 'true' })
    const front = await nginx({ upstreams: [hostPort(doomed)], tls: true })
    const frontCa = readFileSync(front.caFile!)
    t.equal((await request(`${front.httpsUrl}/healthz`, { ca: frontCa })).status, 200)
    await doomed.app.close()
    const r = await request(`${front.httpsUrl}/healthz`, { ca: frontCa })
    t.equal(r.status, 502)
    t.same(r.body, { detail: 'Bad gateway: the API is not reachable, try again later.' })
    t.equal(r.headers['content-type'], 'application/json', 'JSON, not an HTML page')
    t.equal(r.headers['strict-transport-security'], 'max-age=63072000')

    // An app that accepts the connection and never answers.
    const sockets = new Set<Socket>()
    const hung = createServer((s) => sockets.add(s))
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
    t.teardown(() => {
      for (const s of sockets) s.destroy()
      hung.close()
    })
    const slow = await nginx({ upstreams: [`127.0.0.1:${(hung.address() as { port: number }).port}`], tls: false, proxyTimeout: '1s' })
    const started = Date.now()
    const timeout = await request(`${slow.httpUrl}/healthz`)
    t.equal(timeout.status, 504)
    t.same(timeout.body, { detail: 'Gateway timeout: the API did not answer in time.' })
    t.equal(timeout.headers['content-type'], 'application/json')
    t.ok(Date.now() - started < 5000, 'after proxy_read_timeout (1s)')
  })

  t.test('the stack reports its PIDs and stops by PID', async (t) => {
    const extra = await startNginx({ upstreams: [hostPort(app)] })
    const pids = await extra.pids()
    t.ok(pids.length >= 2, `master and worker: ${pids.join(',')}`)
    await extra.stop()
    for (const pid of pids) t.throws(() => process.kill(pid, 0), `pid ${pid} is gone`)
    await t.rejects(request(`${extra.httpUrl}/healthz`), /ECONNREFUSED/)
  })

  t.test('runway nginx serve: a standalone nginx in the foreground until stopped', async (t) => {
    const prefix = mkdtempSync(join(tmpdir(), 'runway-nginx-serve-test-'))
    t.teardown(() => rmSync(prefix, { recursive: true, force: true }))
    const log = join(prefix, 'serve.out')
    const serve = startService({
      name: 'runway nginx serve',
      command: process.execPath,
      args: [join(import.meta.dirname, '..', '..', 'bin', 'runway.js'), 'nginx', 'serve', '--upstream', hostPort(app), '--tls', '--prefix', prefix],
      logFile: log,
    })
    t.teardown(() => serve.stop(2000))
    let line: RegExpExecArray | null = null
    for (let i = 0; i < 300 && !line; i++) {
      await new Promise((r) => setTimeout(r, 100))
      line = existsSync(log) ? /^nginx (https:\/\/127\.0\.0\.1:[0-9]+) \(http (\S+), https \S+, CA (\S+)\)$/m.exec(readFileSync(log, 'utf8')) : null
    }
    t.ok(line, `serve printed its URLs: ${readFileSync(log, 'utf8').trim()}`)
    if (!line) return
    const r = await request(`${line[1]}/healthz`, { ca: readFileSync(line[3]!), servername: 'localhost' })
    t.same([r.status, r.body], [200, { status: 'ok' }], 'the API through the served nginx, over HTTPS')
    const master = Number(readFileSync(join(prefix, 'nginx.pid'), 'utf8'))
    t.ok(isAlive(master))
    await serve.stop()
    for (let i = 0; i < 50 && isAlive(master); i++) await new Promise((r) => setTimeout(r, 100))
    t.notOk(isAlive(master), 'stopping serve stops nginx')
  })
}
