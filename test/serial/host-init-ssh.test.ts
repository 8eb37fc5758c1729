// `runway host init` on a fresh host reached over the test-owned sshd, then `runway deploy` to it
// end to end: the layout, a generated key, rendered unit/logrotate/nginx files, idempotence,
// --dry-run changing nothing.
import t from 'tap'
import http from 'node:http'
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testRendered, findNginx } from '../../src/ops/proxy/nginx/binary.js'
import { freePort } from '../../src/lib/process.js'
import { artifacts, DEPS_CACHE, reapPm2, runway } from '../helpers/deploy.js'
import { haveSshd, SSHD, startSshd } from '../helpers/sshd.js'

if (!haveSshd()) {
  if (process.env.CI === 'true') t.fail(`${SSHD} or ssh is missing (CI=true): apt-get install -y openssh-server openssh-client rsync`)
  else t.plan(0, `${SSHD} or ssh is not installed`)
} else {
  const sshd = await startSshd(t)
  const base = mkdtempSync(join(tmpdir(), 'runway-host-'))
  chmodSync(base, 0o755) // as /srv is: mkdtemp's 700 would keep nginx's user from the app's socket (runway.E017)
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const root = join(base, 'srv', 'runway') // does not exist yet: a fresh host
  const port = await freePort()
  const init = (extra: string[] = []) =>
    runway(['host', 'init', ...sshd.flags, '--path', root, '--server-name', 'api.example.test', '--port', String(port), '--json', ...extra], {
      timeoutMs: 120_000,
    })

  t.test('first contact with an unknown host key: one line saying how to accept it', async (t) => {
    writeFileSync(join(sshd.dir, 'empty_known_hosts'), '')
    writeFileSync(
      join(sshd.dir, 'ssh_config_new'),
      readFileSync(join(sshd.dir, 'ssh_config'), 'utf8').replace(`${sshd.dir}/known_hosts`, `${sshd.dir}/empty_known_hosts`),
    )
    const r = await runway(['status', '--host', sshd.host, '--ssh-config', join(sshd.dir, 'ssh_config_new'), '--path', root], { timeoutMs: 30_000 })
    t.equal(r.code, 1)
    t.match(
      r.err,
      /^runway status: ssh .*127\.0\.0\.1 failed: Host key verification failed\. \(the host key of .*127\.0\.0\.1 is not in known_hosts: check its fingerprint, then `ssh-keyscan -p \d+ 127\.0\.0\.1 >> ~\/\.ssh\/known_hosts` \(or ssh to it once interactively\)\)\n$/,
    )
  })

  t.test('--dry-run on a fresh host says what it would do and writes nothing', async (t) => {
    const r = await init(['--dry-run'])
    t.equal(r.code, 0, r.err)
    const report = JSON.parse(r.out)
    t.ok(report.actions.length >= 10)
    t.ok(
      report.actions.every((a: { status: string }) => a.status === 'would create'),
      'everything would be created',
    )
    t.notOk(existsSync(root), 'nothing was written')
  })

  t.test('host init over ssh: layout, .env with a generated key, rendered files; the audit passes', async (t) => {
    const r = await init()
    t.equal(r.code, 0, r.err)
    const report = JSON.parse(r.out)
    t.ok(report.actions.every((a: { status: string }) => a.status === 'created'))
    t.equal(report.ok, true, JSON.stringify(report.check))
    for (const d of ['releases', 'shared/data', 'shared/logs', '.runway']) t.ok(statSync(join(root, d)).isDirectory(), d)
    const env = readFileSync(join(root, 'shared', '.env'), 'utf8')
    t.match(env, /^NODE_ENV=production$/m)
    t.match(env, new RegExp(`^PORT=${port}$`, 'm'))
    t.ok(/^JWT_SIGNING_KEY=[A-Za-z0-9+/=]{64}$/m.test(env), 'a 48-byte random key')
    t.equal(statSync(join(root, 'shared', '.env')).mode & 0o777, 0o600, '.env readable by its owner only')
    t.match(
      readFileSync(join(root, 'shared', 'host', 'runway.service'), 'utf8'),
      new RegExp(`ExecStart=/usr/bin/env node ${root}/shared/pm2/active/node_modules/pm2/bin/pm2 resurrect`),
    )
    t.notMatch(readFileSync(join(root, 'shared', 'host', 'logrotate.conf'), 'utf8'), /@[A-Z_]+@/)
    t.match(env, new RegExp(`^UNIX_SOCKET=${root}/shared/run/app.sock$`, 'm'))
    t.equal(statSync(join(root, 'shared', 'run')).mode & 0o777, 0o711, "the socket's directory lets nginx's user through")
    const site = readFileSync(join(root, 'shared', 'host', 'nginx-site.conf'), 'utf8')
    t.match(site, new RegExp(`server unix:${root}/shared/run/app.sock `), "nginx's upstream is the app's socket")
    t.match(site, new RegExp(`ssl_certificate ${root}/shared/nginx/tls/placeholder.crt;`))
    t.match(
      execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', join(root, 'shared', 'nginx', 'tls', 'placeholder.crt')], {
        encoding: 'utf8',
      }),
      /DNS:api\.example\.test/,
    )
    const nginx = findNginx()
    if (nginx) await testRendered(nginx, site, 'site')
    else if (process.env.CI === 'true') t.fail('nginx is missing (CI=true)')
    t.match(sshd.log(), /Accepted publickey for /, 'it went through our sshd')
  })

  t.test('a second run changes nothing and keeps the key', async (t) => {
    const key = readFileSync(join(root, 'shared', '.env'), 'utf8')
    const r = await init()
    t.equal(r.code, 0, r.err)
    const statuses = JSON.parse(r.out).actions.map((a: { status: string }) => a.status)
    t.ok(
      statuses.every((s: string) => s === 'unchanged' || s === 'kept'),
      statuses.join(','),
    )
    t.equal(readFileSync(join(root, 'shared', '.env'), 'utf8'), key)
  })

  t.test('then runway deploy over ssh works end to end', async (t) => {
    reapPm2(t, join(root, '.pm2'))
    const art = await artifacts(t, { v1: null })
    const r = await runway(['deploy', ...sshd.flags, '--path', root, '--workers', '1', '--deps-cache', DEPS_CACHE, '--artifact', art.v1!, '--json'], {
      timeoutMs: 900_000,
    })
    t.equal(r.code, 0, r.err)
    t.match(JSON.parse(r.out), { ok: true, hosts: [{ result: 'ok' }] })
    const res = await fetch(`http://127.0.0.1:${port}/readyz`)
    t.equal(res.status, 200)
    const overSocket = await new Promise<number | undefined>((resolve, reject) =>
      http.get({ socketPath: join(root, 'shared', 'run', 'app.sock'), path: '/readyz' }, (r) => resolve(r.resume().statusCode)).on('error', reject),
    )
    t.equal(overSocket, 200, "the deployed app answers on the socket nginx's site points at")
    const s = await runway(['status', ...sshd.flags, '--path', root])
    t.equal(s.code, 0, s.err)
  })
}
