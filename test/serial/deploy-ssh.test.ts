// The same deploy, rollback and status over SSH, through the test-owned sshd (test/helpers/sshd.ts),
// reached by the system ssh/rsync exactly as an operator's would be.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../src/lib/process.js'
import { artifacts, DEPS_CACHE, makeTarget, reapPm2, runway } from '../helpers/deploy.js'
import { seedUser, sessions, startLoad } from '../helpers/runtime.js'
import { haveSshd, SSHD, startSshd } from '../helpers/sshd.js'

if (!haveSshd()) {
  if (process.env.CI === 'true') t.fail(`${SSHD} or ssh is missing (CI=true): apt-get install -y openssh-server openssh-client rsync`)
  else t.plan(0, `${SSHD} or ssh is not installed: apt-get install -y openssh-server rsync`)
} else {
  await sshSuite()
}

async function sshSuite() {
  const sshd = await startSshd(t)
  const { dir, host } = sshd
  const ssh = sshd.flags
  const user = userInfo().username

  const appPort = await freePort()
  const url = `http://127.0.0.1:${appPort}`
  const root = makeTarget(t, { port: appPort, env: { LOGIN_RATE_LIMIT_IP: '0', LOGIN_RATE_LIMIT_USER: '0' } })
  reapPm2(t, join(root, '.pm2'))
  await seedUser(join(root, 'shared'))
  const art = await artifacts(t, { v1: null, v2: null })
  const deploy = (sha: string) =>
    runway(['deploy', ...ssh, '--path', root, '--workers', '2', '--deps-cache', DEPS_CACHE, '--artifact', art[sha]!, '--json'], { timeoutMs: 900_000 })
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
    t.ok(existsSync(join(root, 'releases', v1, 'dist', 'api', 'server.js')), 'v1 kept')
    const log = readFileSync(join(root, '.runway', 'deploys.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
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
    const r = await runway(
      [
        'deploy',
        '--host',
        host,
        '--host',
        `${user}@127.0.0.1:${closed}`,
        '--ssh-config',
        join(dir, 'ssh_config'),
        '--path',
        root,
        '--artifact',
        art.v2!,
        '--json',
      ],
      { timeoutMs: 60_000 },
    )
    t.equal(r.code, 1)
    const report = JSON.parse(r.out)
    t.match(report, {
      ok: false,
      hosts: [{ target: `${user}@127.0.0.1:${closed}:${root}`, result: 'failed', reason: /^preflight: ssh .* failed: .*(refused|closed)/ }],
    })
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
