// deploy/: the systemd unit and the logrotate config render from their parameters and pass the
// real tools' own checks (systemd-analyze verify, logrotate --debug); render.sh refuses to print
// a half-rendered file; the CI pipeline example is valid YAML-shaped and runs the real commands.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../../helpers/deploy.js'

const CI = process.env.CI === 'true'
const render = (file: string, ...pairs: string[]) => spawnSync(join(ROOT, 'deploy', 'render.sh'), [join(ROOT, 'deploy', file), ...pairs], { encoding: 'utf8' })
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status === 0

/** A tool the rest of a test needs: missing, it fails under CI=true and otherwise shows as a skip with the reason (never a silent pass). */
function needs(t: Test, tool: string, install: string): boolean {
  if (has(tool)) return true
  if (CI) t.fail(`${tool} is missing (CI=true): ${install}`)
  else t.test(`the ${tool} checks`, { skip: `${tool} is not installed (${install}); under CI=true this fails` }, () => {})
  return false
}

t.test('render.sh fills every placeholder or refuses', async (t) => {
  const partial = render('runway.service', 'USER=deploy', 'ROOT=/srv/runway')
  t.equal(partial.status, 2)
  t.equal(partial.stdout, '', 'nothing half-rendered is printed')
  t.match(partial.stderr, /still needs: @PM2_HOME@/)
  const bad = render('runway.service', 'USER=deploy', 'ROOT=/srv/run way;rm', 'PM2_HOME=/x')
  t.equal(bad.status, 2)
  t.match(bad.stderr, /ROOT=.*only letters, digits/)
})

t.test('the systemd unit resurrects pm2 from the shared pm2 runtime (never a prunable release), as the given user', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-unit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const r = render('runway.service', `USER=${userInfo().username}`, `ROOT=${dir}`, `PM2_HOME=${dir}/.pm2`)
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, new RegExp(`ExecStart=/usr/bin/env node ${dir}/shared/pm2/active/node_modules/pm2/bin/pm2 resurrect`))
  t.match(r.stdout, new RegExp(`PIDFile=${dir}/.pm2/pm2.pid`))
  t.match(r.stdout, /Type=forking/)
  const unit = join(dir, 'runway.service')
  writeFileSync(unit, r.stdout)
  if (!needs(t, 'systemd-analyze', 'apt-get install -y systemd')) return
  const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' })
  t.equal(verify.status, 0, `systemd-analyze verify: ${verify.stderr}`)
  writeFileSync(unit, r.stdout.replace('Type=forking', 'Type=forkingg'))
  const broken = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' })
  t.match(broken.stderr, /Failed to parse service type|forkingg/, 'the check really reads the file')
})

t.test('logrotate accepts the config and would rotate the app and nginx logs', async (t) => {
  if (!needs(t, 'logrotate', 'apt-get install -y logrotate')) return
  const dir = mkdtempSync(join(tmpdir(), 'runway-logrotate-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'shared', 'logs'), { recursive: true })
  mkdirSync(join(dir, 'nginx'), { recursive: true })
  writeFileSync(join(dir, 'shared', 'logs', 'runway.out.log'), '{"msg":"x"}\n'.repeat(10))
  writeFileSync(join(dir, 'nginx', 'access.log'), 'x\n')
  const user = userInfo().username
  const r = render('logrotate.conf', `USER=${user}`, `ROOT=${dir}`, `PM2_HOME=${dir}/.pm2`, `NGINX_LOGS=${dir}/nginx`, `NGINX_PID=${dir}/nginx/nginx.pid`)
  t.equal(r.status, 0, r.stderr)
  const conf = join(dir, 'runway.logrotate')
  writeFileSync(conf, r.stdout)
  // --debug: parse and decide, rotate nothing. --force: decide as if the period had passed.
  const d = spawnSync('logrotate', ['--debug', '--force', '--state', join(dir, 'state'), conf], { encoding: 'utf8' })
  t.equal(d.status, 0, d.stderr)
  t.match(d.stderr, new RegExp(`considering log ${dir}/shared/logs/runway.out.log`))
  t.match(d.stderr, new RegExp(`considering log ${dir}/nginx/access.log`))
  t.notMatch(d.stderr, /error:/)
  t.ok(existsSync(join(dir, 'shared', 'logs', 'runway.out.log')), 'debug mode rotated nothing')
})

t.test('the CI pipeline example runs the real commands in order', async (t) => {
  const text = readFileSync(join(ROOT, 'deploy', 'ci-pipeline.yml'), 'utf8')
  const order = ['.ci/run', 'runway deploy --build-only', 'runway loadtest', '--threshold', 'runway deploy --artifact artifact --json', 'curl --fail']
  let at = -1
  for (const step of order) {
    const i = text.indexOf(step, at + 1)
    t.ok(i > at, `${step} comes next`)
    at = i
  }
  t.notMatch(text, /\t/, 'YAML has no tabs')
  // Every flag the example passes to runway exists in that command's --help.
  for (const [cmd, flags] of Object.entries({
    deploy: ['--build-only', '--out', '--artifact', '--host', '--path', '--json', '--health-url'],
    rollback: ['--host', '--path'],
    loadtest: ['--target', '--scenarios', '--duration', '--connections', '--threshold', '--out'],
  })) {
    const help = spawnSync(process.execPath, [join(ROOT, 'bin', 'runway.js'), cmd, '--help'], { encoding: 'utf8' }).stdout
    for (const flag of flags) t.match(help, flag, `runway ${cmd} has ${flag}`)
  }
})
