// The commands deploy runs on a target, built as data and rendered to shell text in one place:
// each word is quoted once (run through a real bash here: what goes in is what the program
// gets), nothing of the deploying shell's environment leaks, and each remote.js verb / pm2 /
// migrate / npm ci invocation has the shape the on-host side expects.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { appEnv, migrate, npmCi, pm2, releaseScript, remoteJs, render } from '../../../src/ops/deploy/commands.js'
import { defaultSettings } from '../../../src/ops/deploy/layout.js'

const settings = { ...defaultSettings("/srv/it's here"), workers: 2, healthCa: '/etc/ssl/ca with space.pem' }
const bash = (script: string, env: NodeJS.ProcessEnv = {}) => spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, ...env } })

t.test("render quotes each literal once; expansions are the shell's", async (t) => {
  const tricky = ["it's", 'a b', '$HOME', '`id`', '"x"', '*', 'new\nline']
  const r = bash(render({ env: appEnv(settings, '/srv/root'), argv: ['node', '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', ...tricky] }))
  t.equal(r.status, 0, r.stderr)
  t.same(JSON.parse(r.stdout), tricky, 'every argument arrives byte for byte')
  const env = bash(render({ env: appEnv(settings, "/srv/it's here"), argv: ['node', '-e', 'console.log(JSON.stringify(process.env))'] }), {
    SECRET_FROM_SHELL: 'leak',
    HOME: '/home/op',
  })
  const seen = JSON.parse(env.stdout)
  t.notOk('SECRET_FROM_SHELL' in seen, "the deploying shell's variables do not reach the app")
  t.match(seen, {
    HOME: '/home/op',
    LANG: 'C.UTF-8',
    PM2_HOME: "/srv/it's here/.pm2",
    RUNWAY_LOG_DIR: "/srv/it's here/shared/logs",
    WEB_CONCURRENCY: '2',
    NODE_EXTRA_CA_CERTS: '/etc/ssl/ca with space.pem',
  })
  t.ok(seen.USER, 'USER is set (from the target, or id -un)')
})

t.test('the on-host verbs, pm2, migrate and npm ci', async (t) => {
  const gate = remoteJs({
    settings,
    root: '/srv/r',
    script: releaseScript('20261130T150619Z-v2'),
    verb: 'gate',
    flags: { release: '/srv/r/releases/20261130T150619Z-v2', url: 'http://127.0.0.1:3000/readyz', timeout: 60000 },
  })
  t.same(gate.argv, [
    'node',
    'releases/20261130T150619Z-v2/dist/ops/deploy/remote.js',
    'gate',
    '--release',
    '/srv/r/releases/20261130T150619Z-v2',
    '--url',
    'http://127.0.0.1:3000/readyz',
    '--timeout',
    '60000',
  ])
  t.equal(gate.cwd, '/srv/r', 'from the root by default')
  t.match(render(gate), /^cd '\/srv\/r' && env -i HOME="\$HOME" PATH="\$PATH" USER="\$\{USER:-\$\(id -un\)\}" LANG='C\.UTF-8' PM2_HOME=/)
  const verify = remoteJs({ settings, root: '/srv/r', cwd: 'releases/x', script: '.', verb: 'verify', flags: { release: { sh: '"$PWD"' }, timeout: 30000 } })
  t.match(render(verify), /^cd 'releases\/x' && env -i .* 'node' '\.\/dist\/ops\/deploy\/remote\.js' 'verify' '--release' "\$PWD" '--timeout' '30000'$/)
  t.same(pm2(settings, '/srv/r', '/srv/r/shared/pm2/5.4.2-v20', ['save', '--force']).argv, [
    'node',
    '/srv/r/shared/pm2/5.4.2-v20/node_modules/pm2/bin/pm2',
    'save',
    '--force',
  ])
  const m = migrate(settings, '/srv/r', 'rel1')
  t.same([m.cwd, m.argv, m.env.at(-1)], ['releases/rel1', ['node', 'bin/runway.js', 'migrate'], ['NODE_ENV', 'production']])
  t.match(
    npmCi(settings, '/srv/r', { sh: '"$rel"' }),
    /^\(cd "\$rel" && env -i .* 'npm' 'ci' '--omit=dev' '--no-audit' '--no-fund' '--loglevel=error' >\/dev\/null\)$/,
  )
})
