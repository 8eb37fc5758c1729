// `runway check --deploy` against crafted target directories: a bad configuration reports each
// finding with its id, a good one passes, and silenced ids do not count.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runway } from '../../helpers/deploy.js'

const GOOD_KEY = 'kR3v9XqP0s7LmN2bT5wY8zA1cE4gH6jU-strong-key'

function target(env: string, nginx?: string): string {
  const root = mkdtempSync(join(tmpdir(), 'runway-check-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'shared', 'logs'), { recursive: true })
  writeFileSync(join(root, 'shared', '.env'), env)
  if (nginx) writeFileSync(join(root, 'nginx.conf'), nginx.replaceAll('ROOT', root))
  return root
}
const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' })
function cert(dir: string, name: string, days: number): void {
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, `${name}.key`),
    '-out',
    join(dir, `${name}.crt`),
    '-days',
    String(days),
    '-subj',
    `/CN=${name}`,
    '-addext',
    `subjectAltName=DNS:${name}`,
  ])
}
const nginxConf = (crt: string, key: string, names: string, keepalive = '60s') =>
  `events {}\nhttp {\n  upstream runway {\n    server 127.0.0.1:3000;\n    keepalive 32;\n    keepalive_timeout ${keepalive};\n  }\n  server {\n    listen 443 ssl;\n    server_name ${names};\n    ssl_certificate ${crt};\n    ssl_certificate_key ${key};\n  }\n}\n`

async function check(root: string, extra: string[] = []) {
  const r = await runway(['check', '--deploy', '--path', root, '--json', ...extra])
  return { code: r.code, report: JSON.parse(r.out), err: r.err }
}

t.test('a bad configuration: every problem reported with its id, exit 1', async (t) => {
  const root = target(
    [
      'NODE_ENV=development',
      'JWT_SIGNING_KEY=abababababababababababababababababab',
      'TRUST_PROXY=false',
      'KEEP_ALIVE_TIMEOUT=70s',
      'WEB_CONCURRENCY=512',
      'DATA_DIR=ROOTFILE/data',
      'OPENAPI_UI=true',
      '',
    ].join('\n'),
  )
  writeFileSync(join(root, 'file'), 'x')
  writeFileSync(join(root, 'shared', '.env'), readEnv(root).replace('ROOTFILE', join(root, 'file')))
  // The target's log directory (shared/logs) is a file.
  rmSync(join(root, 'shared', 'logs'), { recursive: true })
  writeFileSync(join(root, 'shared', 'logs'), 'x')
  cert(root, 'api.example.com', 3)
  cert(root, 'other', 30)
  writeFileSync(join(root, 'nginx.conf'), nginxConf(join(root, 'api.example.com.crt'), join(root, 'other.key'), 'api.example.com www.example.com', '75s'))
  const { code, report } = await check(root, ['--nginx-conf', join(root, 'nginx.conf')])
  t.equal(code, 1)
  // (W009, the open file limit, depends on the machine running the test.)
  const ids = report.findings
    .map((f: { id: string }) => f.id)
    .filter((id: string) => id !== 'runway.W009')
    .sort()
  t.same(
    ids,
    [
      'runway.E003',
      'runway.E004',
      'runway.E006',
      'runway.E007',
      'runway.E011',
      'runway.E012',
      'runway.W001',
      'runway.W003',
      'runway.W004',
      'runway.W007',
      'runway.W008',
    ].sort(),
    JSON.stringify(report.findings, null, 1),
  )
  t.match(
    report.findings.find((f: { id: string }) => f.id === 'runway.E006').message,
    /KEEP_ALIVE_TIMEOUT \(70s\) is not above nginx's upstream keepalive_timeout \(75s\): set it to 80s/,
  )
  t.match(report.findings.find((f: { id: string }) => f.id === 'runway.W008').message, /does not cover www\.example\.com/)
})

t.test('settings the workers would refuse, a missing .env and a missing certificate', async (t) => {
  const root = target('JWT_SIGNING_KEY=short\nLOG_LEVEL=verbose\n')
  const r = await check(root)
  t.equal(r.code, 1)
  t.match(r.report.findings, [{ id: 'runway.E002', level: 'error', message: /LOG_LEVEL="verbose" is invalid/ }])
  rmSync(join(root, 'shared', '.env'))
  const missing = await check(root)
  t.match(missing.report.findings, [{ id: 'runway.E001', message: /shared\/\.env is missing/ }])
  writeFileSync(join(root, 'shared', '.env'), `JWT_SIGNING_KEY=${GOOD_KEY}\nOPENAPI_UI=false\n`)
  writeFileSync(join(root, 'nginx.conf'), nginxConf(join(root, 'none.crt'), join(root, 'none.key'), 'api.example.com'))
  const nocert = await check(root, ['--nginx-conf', join(root, 'nginx.conf'), '--silence', 'runway.W003', '--silence', 'runway.W009'])
  t.equal(nocert.code, 1)
  t.match(
    nocert.report.findings.filter((f: { silenced?: boolean }) => !f.silenced),
    [{ id: 'runway.E009', message: /none\.crt \(ssl_certificate\) is missing: create it/ }],
  )
})

t.test('a good configuration passes; silenced ids are listed but do not count', async (t) => {
  const root = target(`JWT_SIGNING_KEY=${GOOD_KEY}\nTRUST_PROXY=127.0.0.1\nOPENAPI_UI=true\nSILENCED_CHECKS=runway.W001,runway.W009\n`)
  cert(root, 'api.example.com', 90)
  writeFileSync(join(root, 'nginx.conf'), nginxConf(join(root, 'api.example.com.crt'), join(root, 'api.example.com.key'), 'api.example.com'))
  const r = await check(root, ['--nginx-conf', join(root, 'nginx.conf')])
  t.equal(r.code, 0, JSON.stringify(r.report))
  t.ok(
    r.report.findings.every((f: { silenced?: boolean }) => f.silenced),
    'only silenced findings',
  )
  t.match(r.report.findings, [{ id: 'runway.W001', silenced: true }])
  const text = await runway(['check', '--deploy', '--path', root, '--nginx-conf', join(root, 'nginx.conf')])
  t.equal(text.code, 0)
  t.match(text.out, /\(silenced\) ! runway\.W001: the OpenAPI UI is served at \/docs.*\n.*: 0 errors, 0 warnings, \d silenced\n$/)
})

function readEnv(root: string): string {
  return execFileSync('cat', [join(root, 'shared', '.env')], { encoding: 'utf8' })
}

t.test("nginx's upstream must be where the app listens, and nginx's user must reach a Unix socket", async (t) => {
  const root = target(`JWT_SIGNING_KEY=${GOOD_KEY}\nTRUST_PROXY=127.0.0.1\nOPENAPI_UI=false\nPORT=3000\n`)
  chmodSync(root, 0o755) // mkdtemp's 700 would hide everything below from nginx's user
  chmodSync(join(root, 'shared'), 0o755)
  cert(root, 'api.example.com', 90)
  const site = (server: string) =>
    nginxConf(join(root, 'api.example.com.crt'), join(root, 'api.example.com.key'), 'api.example.com').replace('127.0.0.1:3000', server)
  const errors = async (): Promise<Array<{ id: string; message: string }>> => {
    const r = await check(root, ['--nginx-conf', join(root, 'nginx.conf'), '--silence', 'runway.W009'])
    return r.report.findings.filter((f: { level: string }) => f.level === 'error')
  }
  /** The one error found: its id and message. */
  const only = async (id: string, message: RegExp) => {
    const found = await errors()
    t.same(
      found.map((f) => f.id),
      [id],
    )
    t.match(found[0]?.message, message)
  }

  writeFileSync(join(root, 'nginx.conf'), site('127.0.0.1:3001'))
  await only('runway.E015', /nginx sends requests to 127\.0\.0\.1:3001, but the app listens on 127\.0\.0\.1:3000/)
  writeFileSync(join(root, 'nginx.conf'), site('10.0.0.2:3000'))
  t.same(await errors(), [], "a fleet's upstream on other hosts is not judged")

  const socket = join(root, 'shared', 'run', 'app.sock')
  writeFileSync(join(root, 'shared', '.env'), `${readEnv(root)}UNIX_SOCKET=${socket}\n`)
  writeFileSync(join(root, 'nginx.conf'), site(`unix:${join(root, 'other.sock')}`))
  await only('runway.E015', /nginx sends requests to unix:.*other\.sock, but the app listens on unix:.*app\.sock and 127\.0\.0\.1:3000/)

  writeFileSync(join(root, 'nginx.conf'), site(`unix:${socket}`))
  mkdirSync(join(root, 'shared', 'run'), { mode: 0o700 })
  chmodSync(join(root, 'shared', 'run'), 0o700)
  await only('runway.E017', new RegExp(`nginx's user \\S+ cannot enter ${join(root, 'shared', 'run')}, so nginx cannot reach the socket`))
  chmodSync(join(root, 'shared', 'run'), 0o711)
  t.same(await errors(), [], 'shared/run at 711 (as host init makes it): nginx reaches the socket')
  rmSync(join(root, 'shared', 'run'), { recursive: true })
  t.same(await errors(), [], 'a socket directory the app will create is judged by the directory it is created in')

  writeFileSync(join(root, 'shared', 'run'), 'a file')
  await only('runway.E016', /UNIX_SOCKET's directory .*shared\/run: \S+ \(the app's user\) cannot create the socket in .*shared\/run/)

  // A target whose stat is not GNU's (no -c): the check says it could not decide, never "ok" and
  // never a false E017.
  rmSync(join(root, 'shared', 'run'))
  const bin = mkdtempSync(join(tmpdir(), 'runway-bsd-stat-'))
  t.teardown(() => rmSync(bin, { recursive: true, force: true }))
  writeFileSync(join(bin, 'stat'), '#!/bin/sh\necho "stat: illegal option -- c" >&2\nexit 1\n', { mode: 0o755 })
  const r = await runway(['check', '--deploy', '--path', root, '--json', '--nginx-conf', join(root, 'nginx.conf'), '--silence', 'runway.W009'], {
    env: { PATH: `${bin}:${process.env.PATH}` },
  })
  const found = (JSON.parse(r.out) as { findings: Array<{ id: string; level: string; message: string }> }).findings.filter((f) => f.level === 'error')
  t.same(
    found.map((f) => f.id),
    ['runway.E018'],
  )
  t.match(found[0]?.message, /could not check that nginx's user reaches it: stat -c failed on .*: GNU coreutils' stat is needed/)
  t.equal(r.code, 1, 'and the check fails')
})
