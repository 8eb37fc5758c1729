// The same deploy, rollback and status over SSH: Debian's sshd started by this test on a free
// loopback port with its own host key, a generated client key, its own authorized_keys and a
// strict known_hosts, reached by the system ssh/rsync exactly as an operator's would be.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { freePort, startService } from '../../src/stacks/process.js'
import { artifacts, DEPS_CACHE, makeTarget, reapPm2, runway } from '../helpers/deploy.js'
import { seedUser, sessions, startLoad } from '../helpers/runtime.js'

const SSHD = '/usr/sbin/sshd'
if (!existsSync(SSHD) || spawnSync('ssh', ['-V']).status !== 0) {
  if (process.env.CI === 'true') t.fail(`${SSHD} or ssh is missing (CI=true): apt-get install -y openssh-server openssh-client rsync`)
  else t.plan(0, `${SSHD} or ssh is not installed: apt-get install -y openssh-server rsync`)
} else {
  await sshSuite()
}

async function sshSuite() {
  const dir = mkdtempSync(join(tmpdir(), 'runway-sshd-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'runway-test', '-f', file])
  keygen(join(dir, 'host_key'))
  keygen(join(dir, 'client_key'))
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')))

  const sshPort = await freePort()
  // This sshd only: loopback, key auth only, root allowed (the test user), our own files.
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${sshPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  )
  mkdirSync('/run/sshd', { recursive: true }) // privilege separation directory sshd insists on
  const sshd = startService({ name: 'sshd', command: SSHD, args: ['-D', '-e', '-f', join(dir, 'sshd_config')], logFile: join(dir, 'sshd.log') })
  t.teardown(() => sshd.stop(2000))

  const hostKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${sshPort} ${hostKey}\n`)
  // What an operator keeps in ~/.ssh/config; handed over with --ssh-config.
  writeFileSync(
    join(dir, 'ssh_config'),
    [`Host *`, `  IdentityFile ${dir}/client_key`, '  IdentitiesOnly yes', `  UserKnownHostsFile ${dir}/known_hosts`, '  StrictHostKeyChecking yes', ''].join('\n'),
  )
  const user = userInfo().username
  const host = `${user}@127.0.0.1:${sshPort}`
  const ssh = ['--host', host, '--ssh-config', join(dir, 'ssh_config')]

  // sshd is up when a real login works.
  const deadline = Date.now() + 15_000
  let up = false
  while (!up && Date.now() < deadline) {
    up = spawnSync('ssh', ['-F', join(dir, 'ssh_config'), '-p', String(sshPort), '-o', 'BatchMode=yes', `${user}@127.0.0.1`, 'true'], { timeout: 5000 }).status === 0
    if (!up) await new Promise((r) => setTimeout(r, 200))
  }
  if (!up) throw new Error(`sshd did not accept the test key: ${readFileSync(join(dir, 'sshd.log'), 'utf8').slice(-500)}`)

  const appPort = await freePort()
  const url = `http://127.0.0.1:${appPort}`
  const root = makeTarget(t, { port: appPort, env: { LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0' } })
  reapPm2(t, join(root, '.pm2'))
  await seedUser(join(root, 'shared'))
  const art = await artifacts(t, { v1: null, v2: null })
  const deploy = (sha: string) => runway(['deploy', ...ssh, '--path', root, '--workers', '2', '--deps-cache', DEPS_CACHE, '--artifact', art[sha]!, '--json'], { timeoutMs: 900_000 })
  const current = () => readlinkSync(join(root, 'current')).replace('releases/', '')
  let v1 = ''
  let v2 = ''

  t.test('deploy v1 then v2 over ssh', async (t) => {
    const first = await deploy('v1')
    t.equal(first.code, 0, first.err)
    const r1 = JSON.parse(first.out)
    t.match(r1, { ok: true, hosts: [{ target: `${host}:${root}`, result: 'ok' }] })
    v1 = r1.hosts[0].release
    const second = await deploy('v2')
    t.equal(second.code, 0, second.err)
    v2 = JSON.parse(second.out).hosts[0].release
    t.equal(current(), v2)
    t.ok(existsSync(join(root, 'releases', v1, 'dist', 'server.js')), 'v1 kept')
    const log = readFileSync(join(root, '.runway', 'deploys.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    t.match(log, [
      { sha: 'v1', from: null, to: v1, result: 'ok' },
      { sha: 'v2', from: v1, to: v2, result: 'ok' },
    ])
    t.match(readFileSync(join(dir, 'sshd.log'), 'utf8'), /Accepted publickey for /, 'it really went through our sshd')
  })

  t.test('status over ssh', async (t) => {
    const r = await runway(['status', ...ssh, '--path', root])
    t.equal(r.code, 0, r.err)
    t.match(r.out, new RegExp(`^${host.replace(/\./g, '\\.')}:${root}: healthy\\n  live release  ${v2}\\n`))
    // Worker ids are pm2's: a rolling reload starts each successor under a new id.
    const workers = [...r.out.matchAll(/worker \d+ +pid \d+ +online +up \d+s +restarts \d+ +\d+ MB/g)]
    t.equal(workers.length, 2, 'both workers listed, online')
    const json = JSON.parse((await runway(['status', ...ssh, '--path', root, '--json'])).out)[0]
    t.match(json, { current: v2, healthy: true, health: { url: `${url}/readyz`, healthy: true } })
  })

  t.test('rollback over ssh, under load, with zero failed requests', async (t) => {
    const load = startLoad(url, { connections: 4, mix: 'me', sessions: await sessions(url, 4), maxDurationS: 60 })
    const r = await runway(['rollback', ...ssh, '--path', root, '--json']).finally(() => new Promise((res) => setTimeout(res, 500)))
    const result = await load.stop()
    t.equal(r.code, 0, r.err)
    t.match(JSON.parse(r.out), { ok: true, hosts: [{ from: v2, release: v1, result: 'ok' }] })
    t.equal(current(), v1)
    t.ok(result.requests > 50, `${result.requests} requests`)
    t.equal(result.errors + result.timeouts + result.non2xx + result.badBodies, 0, `no failed request ${JSON.stringify(result.statuses)}`)
    const list = await runway(['releases', ...ssh, '--path', root])
    t.match(list.out, new RegExp(`\\* ${v1}  \\(live\\)`))
  })

  t.test('a rolling deploy preflights every host before touching any', async (t) => {
    const closed = await freePort() // nothing listens there
    const before = readdirSync(join(root, 'releases')).sort()
    const r = await runway(['deploy', '--host', host, '--host', `${user}@127.0.0.1:${closed}`, '--ssh-config', join(dir, 'ssh_config'), '--path', root, '--artifact', art.v2!, '--json'], { timeoutMs: 60_000 })
    t.equal(r.code, 1)
    const report = JSON.parse(r.out)
    t.match(report, { ok: false, hosts: [{ target: `${user}@127.0.0.1:${closed}:${root}`, result: 'failed', reason: /^preflight: ssh .* failed: .*(refused|closed)/ }] })
    t.same(report.skipped, [`${host}:${root}`], 'the reachable host was not deployed to')
    t.same(readdirSync(join(root, 'releases')).sort(), before, 'no release was uploaded anywhere')
    t.equal(current(), v1)
  })

  t.test('a host that refuses the key fails in one line, never prompting', async (t) => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other_key')])
    writeFileSync(join(dir, 'ssh_config_other'), readFileSync(join(dir, 'ssh_config'), 'utf8').replace(`${dir}/client_key`, `${dir}/other_key`))
    const r = await runway(['status', '--host', host, '--ssh-config', join(dir, 'ssh_config_other'), '--path', root], { timeoutMs: 30_000 })
    t.equal(r.code, 1)
    t.match(r.err, /^runway status: ssh .*127\.0\.0\.1 failed: .*Permission denied.*\(check the host, your key and ~\/\.ssh\/config; runway never prompts\)\n$/)
  })
}
