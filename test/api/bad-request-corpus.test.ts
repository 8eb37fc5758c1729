// A seeded corpus of bad requests (paths, methods, request lines, headers, bodies, tokens) sent
// over raw sockets to a real server process: 0 answers of 5xx, 0 connections left unanswered,
// the server alive and serving after. The seed is printed; CORPUS_SEED=<n> replays a run.
import t from 'tap'
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { createHmac } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteStore } from '../../src/api/store/sqlite.js'
import { createUser, FIXTURE_ARGON2_ENV, PASSWORD, SIGNING_KEY } from '../helpers/app.js'
import { startServerProcess } from '../helpers/faults.js'
import { rawRequest, type RawAnswer } from '../helpers/raw.js'

const SEED = Number(process.env.CORPUS_SEED ?? 20261130)
const SIZE = 1500

/** mulberry32: a small seeded PRNG, so a failing corpus can be replayed exactly. */
function rng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  return { next, pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!, int: (n: number) => Math.floor(next() * n) }
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
function hs256(payload: unknown, header: unknown = { alg: 'HS256', typ: 'JWT' }, key = SIGNING_KEY): string {
  const head = `${b64(header)}.${b64(payload)}`
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`
}

function corpus(seed: number, host: string, real: { access: string; refresh: string }): { name: string; bytes: Buffer }[] {
  const r = rng(seed)
  const now = Math.floor(Date.now() / 1000)
  const claims = { token_type: 'access', exp: now + 300, iat: now, jti: 'j'.repeat(32), sid: 's'.repeat(32), user_id: 1 }
  const tokens = [
    real.access,
    real.refresh,
    `${real.access}x`,
    real.access.split('.').slice(0, 2).join('.'),
    'garbage',
    '',
    'a.b.c',
    '....',
    'x'.repeat(9000),
    hs256({ ...claims, user_id: '1.0' }),
    hs256({ ...claims, user_id: '0x1' }),
    hs256({ ...claims, user_id: { id: 1 } }),
    hs256({ ...claims, user_id: [1] }),
    hs256({ ...claims, user_id: null }),
    hs256({ ...claims, user_id: 1e308 }),
    hs256({ ...claims, exp: 'soon' }),
    hs256({ ...claims, exp: now - 10 }),
    hs256({ ...claims, token_type: 'sliding' }),
    hs256({ ...claims, token_type: '__proto__' }),
    hs256({ ...claims, sid: 42 }),
    hs256(claims, { alg: 'none' }),
    hs256(claims, { alg: 'HS256', kid: '../../etc/passwd' }),
    hs256(claims, { alg: 'RS256' }),
    hs256('not json'),
    hs256([1, 2, 3]),
    `${b64({ alg: 'none' })}.${b64(claims)}.`,
    `${b64('{')}.${b64('{')}.${b64('{')}`,
  ]
  const paths = [
    '/api/token/',
    '/api/token/refresh/',
    '/api/token/verify/',
    '/api/token/blacklist/',
    '/api/me/',
    '/api/me',
    '/api/password/change/',
    '/api/register/',
    '/healthz',
    '/readyz',
    '/docs',
    '/docs/json',
    '/.well-known/jwks.json',
    '/',
    '/**',
    '/*/*',
    '/api/**',
    '/docs/**',
    '/:a(',
    '/api/*:a',
    '/api/:a(^(a+)+$)',
    '/%',
    '/%zz',
    '/%00',
    '/api/me/%2e%2e/',
    '/../../etc/passwd',
    '//api//me//',
    '/api/me/?a=%',
    '/api/token/?__proto__[x]=1',
    `/${'a'.repeat(8000)}`,
    '/ü/€',
    '/api/me/#frag',
    '*',
    'http://evil.example/api/me/',
    'api/me/',
    '/api/me/;jsessionid=1',
    '/api/token/verify/?token=x',
    '/docs/static/../../package.json',
  ]
  const methods = [
    'GET',
    'HEAD',
    'POST',
    'PUT',
    'PATCH',
    'DELETE',
    'OPTIONS',
    'TRACE',
    'CONNECT',
    'PROPFIND',
    'MKCOL',
    'LOCK',
    'SEARCH',
    'PURGE',
    'QUERY',
    'M-SEARCH',
    'get',
    'FOO',
    'G ET',
    '',
    'GET\x00',
  ]
  const jsonBodies = [
    '{}',
    '[]',
    'null',
    '1',
    '"str"',
    '{',
    '{"username":',
    '{"username":"alice","password":"x"}',
    `{"username":"alice","password":"${PASSWORD}"}`,
    '{"username":{"$gt":""},"password":{"$ne":null}}',
    '{"username":["alice"],"password":true}',
    '{"__proto__":{"admin":true},"username":"a","password":"b"}',
    '{"constructor":{"prototype":{"x":1}}}',
    '{"username":"\\u0000","password":"\\ud800"}',
    `{"username":"${'a'.repeat(200)}","password":"x"}`,
    `{"username":"a","password":"${'p'.repeat(5000)}"}`,
    '['.repeat(60000),
    '{"a":'.repeat(10000),
    '1e999999',
    '{"refresh":1}',
    '{"refresh":null}',
    '{"token":{}}',
    '{"token":"a.b.c"}',
    `{"refresh":"${real.access}"}`,
    `{"token":"${real.refresh}"}`,
    `{"refresh":"${real.refresh}"}`,
    '{"old_password":1,"new_password":[]}',
    '\ufeff{}',
    '{"a":1,"a":2}',
    'x'.repeat(70000),
  ]
  const contentTypes = [
    'application/json',
    'application/x-www-form-urlencoded',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/json; charset=utf-16',
    'application/xml',
    '',
    'application/json, text/html',
    'application/json;;;',
    'image/png',
    'application/vnd.api+json',
    'application/*',
  ]
  const formBodies = [
    'username=alice&password=x',
    'username[]=a&password[]=b',
    'username=%zz',
    '&&&===',
    `username=${'a'.repeat(1000)}`,
    '__proto__[x]=1',
    'a'.repeat(3000),
  ]
  const extraHeaders = [
    () => [`Authorization: Bearer ${r.pick(tokens)}`],
    () => [`Authorization: ${r.pick(['Bearer', 'JWT', 'Token', 'Basic', 'bearer', ''])} ${r.pick(tokens)}`],
    () => [`Authorization: Bearer ${r.pick(tokens)} ${r.pick(tokens)}`],
    () => ['Authorization: Bearer'],
    () => [`X-Forwarded-For: ${r.pick(['1.2.3.4', 'garbage', '::1, 10.0.0.1', 'x'.repeat(7000), '999.999.999.999', ', , ,'])}`],
    () => [`X-Request-Id: ${r.pick(['ok-1', '\t', 'x'.repeat(300), 'a b', '"><script>'])}`],
    () => ['Expect: 100-continue'],
    () => ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'],
    () => ['Upgrade: h2c', 'Connection: Upgrade, HTTP2-Settings', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'],
    () => [`Origin: ${r.pick(['null', 'https://evil.example', 'x'.repeat(500)])}`, 'Access-Control-Request-Method: POST'],
    () => [`Cookie: ${'a=b; '.repeat(500)}`],
    () => [`X-Big: ${'x'.repeat(20000)}`],
    () => ['Bad Header: x'],
    () => ['X-Ctl: a\x01b'],
    () => ['Content-Length: 5', 'Content-Length: 6'],
    () => ['Transfer-Encoding: chunked, identity'],
    () => ['Accept-Encoding: gzip, br, ' + 'x,'.repeat(1000)],
    () => ['Accept: application/xml'],
    () => ['Host: '],
  ]

  const out: { name: string; bytes: Buffer }[] = []
  // Fixed classics first, then random combinations up to SIZE.
  const lines = [
    'GET /\r\n\r\n',
    'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET / HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\nHost: x\n\n',
    '\x00\x01\x02\x03garbage\r\n\r\n',
    // Leading empty lines are skipped by HTTP parsers; the request after them is answered. (Empty
    // lines alone are an idle connection, closed by the keep-alive and header timeouts.)
    `\r\n\r\nGET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
    `POST /api/token/ HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    `POST /api/token/ HTTP/1.1\r\nHost: ${host}\r\nContent-Length: -1\r\n\r\n`,
    `POST /api/token/ HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}GET /api/me/ HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n${'X-Many: y\r\n'.repeat(3000)}\r\n`,
    `GET /healthz HTTP/1.0\r\n\r\n`,
    `OPTIONS * HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
  ]
  for (const [i, line] of lines.entries()) out.push({ name: `classic ${i}`, bytes: Buffer.from(line, 'latin1') })
  while (out.length < SIZE) {
    const method = r.pick(methods)
    const path = r.pick(paths)
    const headers = [`Host: ${host}`, 'Connection: close']
    for (let k = r.int(3); k > 0; k--) headers.push(...r.pick(extraHeaders)())
    let body = ''
    const kind = r.int(4)
    if (kind === 1) {
      body = r.pick(jsonBodies)
      headers.push(`Content-Type: ${r.pick(contentTypes)}`)
    } else if (kind === 2) {
      body = r.pick(formBodies)
      headers.push(`Content-Type: ${r.pick(contentTypes)}`)
    } else if (kind === 3) {
      body = JSON.stringify({ [r.pick(['token', 'refresh', 'username', 'password'])]: r.pick(tokens), password: r.pick(['', 'x', PASSWORD]) })
      headers.push('Content-Type: application/json')
    }
    // Only whole bodies: a client that hangs up halfway has no one left to answer.
    const chunked = body && r.int(5) === 0
    if (chunked) headers.push('Transfer-Encoding: chunked')
    else if (body || r.int(2)) headers.push(`Content-Length: ${Buffer.byteLength(body)}`)
    const payload = chunked ? `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n` : body
    const version = r.pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'])
    out.push({
      name: `${method} ${path.slice(0, 60)} [${headers
        .slice(2)
        .map((h) => h.slice(0, 40))
        .join(' | ')}] ${body.slice(0, 40)}`,
      bytes: Buffer.from(`${method} ${path} ${version}\r\n${headers.join('\r\n')}\r\n\r\n${payload}`, 'utf8'),
    })
  }
  return out
}

t.test(`a seeded corpus of ${SIZE} bad requests over raw sockets: 0 5xx, 0 unanswered, server alive`, async (t) => {
  t.comment(`seed ${SEED} (replay with CORPUS_SEED=${SEED})`)
  const dir = mkdtempSync(join(tmpdir(), 'runway-corpus-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const data = join(dir, 'data')
  const seed = SqliteStore.open(data)
  await seed.migrate()
  await createUser(seed, 'alice')
  await seed.close()
  const logFile = join(dir, 'server.log')
  // Load shedding off: a 503 from a busy test machine is not what this test is about.
  const { url, service } = await startServerProcess(
    t,
    {
      DATA_DIR: data,
      LOG_REQUESTS: 'false',
      MAX_EVENT_LOOP_DELAY: '0',
      LOGIN_RATE_LIMIT_IP: '0',
      LOGIN_RATE_LIMIT_USER: '0',
      REQUEST_TIMEOUT: '10s',
      HEADERS_TIMEOUT: '5s',
      ...FIXTURE_ARGON2_ENV,
    },
    { logFile },
  )
  let exited = false
  void service.exited.then(() => (exited = true))
  const loginRes = await fetch(`${url}/api/token/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: PASSWORD }),
  })
  const real = (await loginRes.json()) as { access: string; refresh: string }
  const host = new URL(url).host

  const requests = corpus(SEED, host, real)
  const results: { name: string; answer: RawAnswer }[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < requests.length) {
        const req = requests[next++]!
        results.push({ name: req.name, answer: await rawRequest(url, req.bytes, 15_000) })
      }
    }),
  )
  const byStatus = new Map<number, number>()
  for (const { answer } of results) byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1)
  t.comment(`answers by status: ${JSON.stringify(Object.fromEntries([...byStatus].sort((a, b) => a[0] - b[0])))}`)
  const serverErrors = results.filter((x) => x.answer.status >= 500)
  const unanswered = results.filter((x) => x.answer.status === 0)
  t.equal(results.length, SIZE, 'every request sent')
  t.same(serverErrors.map((x) => `${x.answer.status} ${x.name}`).slice(0, 10), [], '0 answers of 5xx')
  t.same(unanswered.map((x) => x.name).slice(0, 10), [], '0 connections closed or left without an answer')

  t.notOk(exited, 'the server is alive')
  const me = await fetch(`${url}/api/me/`, { headers: { authorization: `Bearer ${real.access}` } })
  t.equal(me.status, 200, 'and serves after')
  const log = readFileSync(logFile, 'utf8')
  t.notMatch(log, /"level":50|"level":60/, 'no error logged')
})
