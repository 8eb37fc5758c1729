// fd exhaustion: with every descriptor under `ulimit -n` taken by idle keep-alive sockets, the
// process stays up (new connections are refused, the open ones keep being served) and serves
// again once descriptors free up. A real child process under a real limit.
import t from 'tap'
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startServerProcess } from '../helpers/faults.js'

const LIMIT = 256
const SOCKETS = 400

interface Client {
  socket: Socket
  answers: number
  closed: boolean
  buffer: string
}

/** One keep-alive connection that sends GET /healthz and counts complete answers. */
function client(url: string): Client {
  const { port } = new URL(url)
  const c: Client = { socket: connect(Number(port), '127.0.0.1'), answers: 0, closed: false, buffer: '' }
  c.socket.on('connect', () => c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'))
  c.socket.on('data', (d) => {
    c.buffer += d.toString('latin1')
    c.answers = c.buffer.split('HTTP/1.1 200').length - 1
  })
  c.socket.on('error', () => {})
  c.socket.on('close', () => (c.closed = true))
  return c
}

t.test(`${SOCKETS} idle keep-alive sockets against ulimit -n ${LIMIT}: the process survives and recovers`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-fds-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const logFile = join(dir, 'server.log')
  const { url, service } = await startServerProcess(t, { DATA_DIR: join(dir, 'data'), LOG_REQUESTS: 'false' }, { nofile: LIMIT, logFile })
  let exited = false
  void service.exited.then(() => (exited = true))

  const clients = Array.from({ length: SOCKETS }, () => client(url))
  // Every connection settles: answered (and kept open) or refused (closed by the server).
  for (const until = Date.now() + 10_000; Date.now() < until; await sleep(100)) {
    if (clients.every((c) => c.answers > 0 || c.closed)) break
  }
  const served = clients.filter((c) => c.answers > 0 && !c.closed)
  const refused = clients.filter((c) => c.answers === 0 && c.closed)
  t.comment(`${served.length} connections served and held open, ${refused.length} refused`)
  t.equal(served.length + refused.length, SOCKETS, 'every connection answered or refused, none left hanging')
  t.ok(refused.length > 0, 'the fd limit was really reached')

  // Several event-loop lag samples later (once a second), still alive.
  await sleep(2500)
  t.notOk(exited, 'the process is alive while fds are exhausted')
  // The open connections keep being served.
  const sample = served.slice(0, 20)
  for (const c of sample) c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  for (const until = Date.now() + 5000; Date.now() < until && !sample.every((c) => c.answers >= 2); ) await sleep(50)
  t.ok(
    sample.every((c) => c.answers >= 2),
    'open connections still answered',
  )

  for (const c of clients) c.socket.destroy()
  let recovered = false
  for (const until = Date.now() + 5000; !recovered && Date.now() < until; await sleep(100)) {
    recovered = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    )
  }
  t.ok(recovered, 'new connections served once fds free up')
  t.notOk(exited, 'never exited')
  t.notMatch(readFileSync(logFile, 'utf8'), /fatal error, closing/, 'no fatal error logged')
})

t.test('the systemd unit ships a sane fd limit', async (t) => {
  const unit = readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'runway.service'), 'utf8')
  const limit = Number(/^LimitNOFILE=([0-9]+)$/m.exec(unit)?.[1])
  t.ok(limit >= 16384, `LimitNOFILE=${limit}`)
})
