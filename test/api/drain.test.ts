// Connection draining (src/api/drain.ts), in-process over a real socket: what a stopping worker does
// with in-flight requests, requests on open keep-alive connections, new connections and idle ones.
import t, { type Test } from 'tap'
import http from 'node:http'
import { connect, type Server as NetServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../../src/api/app.js'
import { connectionDrainer } from '../../src/api/drain.js'
import { listenOnUnixSocket } from '../../src/api/unix-listener.js'
import { testConfig } from '../helpers/app.js'
import { Connection } from '../helpers/runtime.js'

const IDLE_MS = 300

/** With `socket`, the app also listens on a Unix socket door (UNIX_SOCKET), as server.ts does. */
async function server(t: Test, o: { socket?: boolean } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-drain-'))
  const app = await buildApp(testConfig({ LOG_LEVEL: 'silent' }, dataDir))
  let handled = 0
  app.get('/slow', async () => {
    handled++
    await sleep(400)
    return { status: 'slow' }
  })
  const doors: NetServer[] = []
  const drain = connectionDrainer(app, IDLE_MS, doors)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const socketPath = join(dataDir, 'app.sock')
  if (o.socket) doors.push(await listenOnUnixSocket(app.server, socketPath))
  t.teardown(async () => {
    for (const door of doors) door.close()
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return { app, url, drain, socketPath, handled: () => handled }
}

t.test('an in-flight request completes, and the open connection is told to close', async (t) => {
  const { url, drain } = await server(t)
  const c = new Connection(url)
  t.teardown(() => c.close())
  const inflight = c.request('/slow')
  await sleep(100)
  const drained = drain()
  const r = await inflight
  t.equal(r.status, 200, 'the slow request answered 200')
  t.same(r.body, { status: 'slow' })
  t.equal(r.headers.connection, 'close', 'with Connection: close')
  await drained
  t.pass('drain resolved once the connection closed')
})

t.test('a request on an open keep-alive connection during the drain is served, not refused', async (t) => {
  const { url, drain } = await server(t)
  const c = new Connection(url)
  t.teardown(() => c.close())
  const first = await c.request('/healthz')
  t.equal(first.headers.connection, 'keep-alive', 'a keep-alive connection before the drain')
  const drained = drain()
  const during = await c.request('/healthz')
  t.equal(during.status, 200, 'served (Fastify alone would answer 503)')
  t.equal(during.headers.connection, 'close', 'and told to close')
  await drained
})

t.test('new connections are refused once the drain starts', async (t) => {
  const { url, drain } = await server(t)
  const c = new Connection(url)
  t.teardown(() => c.close())
  await c.request('/healthz') // keeps the server from closing at once
  const drained = drain()
  await t.rejects(new Connection(url).request('/healthz'), { code: 'ECONNREFUSED' })
  await drained
})

t.test('idle keep-alive connections are closed after the idle window, not held for keepAliveTimeout', async (t) => {
  const { url, drain } = await server(t)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const socketClosed = new Promise<number>((resolve) => {
    const req = http.get(url + '/healthz', { agent }, (res) => res.resume())
    req.once('socket', (socket) => socket.once('close', () => resolve(Date.now())))
  })
  await sleep(50)
  const started = Date.now()
  await drain()
  const took = Date.now() - started
  const closedAt = await socketClosed
  t.ok(took >= IDLE_MS - 20 && took < IDLE_MS + 1000, `drain waited the idle window (${took} ms), not the 65 s keep-alive`)
  t.ok(closedAt - started >= IDLE_MS - 20, 'the idle socket was closed by the server after the window')
})

t.test('over a Unix socket door: in-flight requests finish, new connections are refused', async (t) => {
  const { drain, socketPath: path, handled } = await server(t, { socket: true })
  const c = new Connection('http://localhost', path)
  t.teardown(() => c.close())
  const inflight = c.request('/slow')
  await sleep(100)
  const drained = drain()
  const r = await inflight
  t.equal(r.status, 200, 'the slow request over the socket answered 200')
  t.equal(r.headers.connection, 'close', 'with Connection: close')
  await t.rejects(new Connection('http://localhost', path).request('/healthz'), /ENOENT|ECONNREFUSED/, 'the socket no longer accepts')
  await drained
  t.equal(handled(), 1)
})

t.test('a client that sends its next request after `Connection: close` reads the whole answer, then the end: no reset', async (t) => {
  const { drain, socketPath: path, handled } = await server(t, { socket: true })
  // A raw client that pipelines: it writes its second request as soon as the first answer starts.
  const client = connect(path)
  t.teardown(() => client.destroy())
  let received = ''
  let sentSecond = false
  const outcome = new Promise<string>((resolve) => {
    client.on('data', (chunk) => {
      received += chunk
      if (!sentSecond) {
        sentSecond = true
        client.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
      }
    })
    client.on('end', () => resolve('end'))
    client.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
  client.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(100)
  const drained = drain()
  const ended = await outcome
  t.equal(ended, 'end', `the end of the stream, not ECONNRESET or EPIPE (${ended})`)
  t.match(received, /^HTTP\/1\.1 200 OK\r\n.*connection: close\r\n.*\{"status":"slow"\}$/is, 'the first answer, whole')
  t.equal(handled(), 1, 'the request sent after `Connection: close` was not processed')
  await drained
})
