// The drill's load generator counts exactly: against a tiny server that fails exactly K requests
// with 503, resets exactly R connections and never answers exactly M requests, the record holds
// exactly K http_503, R reset and M timeout, and as many requests as the server received. A port
// nobody listens on gives only refused. The analysis splits them into windows and finds recovery.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { analyse } from '../../../src/bench/loadtest/drill/analyse.js'
import { runLoad, type LoadRecord } from '../../../src/bench/loadtest/drill/load.js'
import { freePort } from '../../../src/lib/process.js'

const count = (rec: LoadRecord, o: string) => rec.outcome.filter((x) => x === o).length

t.test('every injected failure is counted once, by kind', async (t) => {
  const K = 7
  const R = 5
  const M = 3
  let received = 0
  const hung: http.ServerResponse[] = []
  const server = http.createServer((req, res) => {
    const n = received++
    // Failures start after 50 requests, so every client has a warm keep-alive connection first.
    if (n >= 50 && n < 50 + K) return res.writeHead(503, { 'retry-after': '1' }).end('busy')
    if (n >= 100 && n < 100 + R) return req.socket.destroy()
    if (n >= 150 && n < 150 + M) return void hung.push(res)
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const rec = await runLoad({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: 4,
    timeoutMs: 400,
    durationMs: 1500,
    request: () => ({ method: 'GET', path: '/api/me/' }),
  })
  t.ok(received > 150 + M, `the server received ${received} requests`)
  t.equal(count(rec, 'http_503'), K, 'exactly K 503s')
  t.equal(count(rec, 'reset'), R, 'exactly R resets')
  t.equal(count(rec, 'timeout'), M, 'exactly M timeouts')
  t.equal(rec.t.length, received, 'one record per request the server received')
  t.equal(count(rec, 'ok'), received - K - R - M, 'the rest succeeded')
  t.equal(hung.length, M)
  t.equal(rec.retryAfter, K, 'each 503 carried Retry-After')

  const a = analyse(rec, 1500, 500, 500)
  t.equal(a.failed, K + R + M)
  t.same(a.byKind, { http_503: K, reset: R, timeout: M })
  t.equal(
    a.windows.reduce((s, w) => s + w.ok + w.failed, 0),
    rec.t.length,
    'the windows cover every request',
  )
  t.equal(
    a.timeline.reduce((s, x) => s + x.ok + Object.values(x.failed).reduce((p, q) => p + q, 0), 0),
    rec.t.length,
    'so does the timeline',
  )
})

t.test('honourRetryAfter: a client told Retry-After: 1 waits a second before its next request', async (t) => {
  const seen: number[] = []
  const server = http.createServer((_req, res) => {
    seen.push(performance.now())
    res.writeHead(503, { 'retry-after': '1' }).end('busy')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const polite = await runLoad({ url, connections: 1, timeoutMs: 400, durationMs: 1500, request: () => ({ method: 'GET', path: '/' }), honourRetryAfter: true })
  t.equal(polite.t.length, 2, 'one request at 0 s, one after the 1 s wait, none in the last 0.5 s wait')
  t.equal(polite.retryAfter, 2)
  t.ok(seen[1]! - seen[0]! >= 990, `the second came ${Math.round(seen[1]! - seen[0]!)} ms after the first`)
  seen.length = 0
  const eager = await runLoad({ url, connections: 1, timeoutMs: 400, durationMs: 300, request: () => ({ method: 'GET', path: '/' }) })
  t.ok(eager.t.length > 2, `without it the client goes straight on (${eager.t.length} requests in 0.3 s)`)
})

t.test('a port nobody listens on: every attempt is refused, none succeeds', async (t) => {
  const port = await freePort()
  const rec = await runLoad({ url: `http://127.0.0.1:${port}`, connections: 2, timeoutMs: 300, durationMs: 300, request: () => ({ method: 'GET', path: '/' }) })
  t.ok(rec.t.length > 0)
  t.equal(count(rec, 'refused'), rec.t.length)
})

t.test('recovery: back to full rate after the last failure, or never', async (t) => {
  // 10 s at 100 ok/s; a fault at 3 s; failures until 4.5 s, full rate again from 5 s.
  const synth = (down: (ms: number) => boolean): LoadRecord => {
    const rec: LoadRecord = { startedAt: 0, t: [], ms: [], outcome: [], retryAfter: 0 }
    for (let ms = 0; ms < 10_000; ms += 10) {
      rec.t.push(ms)
      rec.ms.push(1)
      rec.outcome.push(down(ms) ? 'refused' : 'ok')
    }
    return rec
  }
  const back = analyse(
    synth((ms) => ms >= 3000 && ms < 4500),
    10_000,
    3000,
    2000,
  )
  t.equal(back.recoverySec, 1.5)
  t.equal(back.failedAfterFault, 150)
  t.equal(back.baselineRate, 100)
  t.same(
    back.windows.map((w) => [w.name, w.ok, w.failed]),
    [
      ['before', 300, 0],
      ['during', 50, 150],
      ['after', 500, 0],
    ],
  )
  const down = analyse(
    synth((ms) => ms >= 3000),
    10_000,
    3000,
    2000,
  )
  t.equal(down.recoverySec, null, 'never back')
  const fine = analyse(
    synth(() => false),
    10_000,
    3000,
    2000,
  )
  t.equal(fine.recoverySec, 0, 'nothing happened: full rate throughout')
})
