// Preflight refuses each problem with one line, before anything on the target changes: a bad or
// weak production config, an unreachable store, a failing `nginx -t`, an expired certificate (and
// warns about one expiring soon), too little disk, a dirty git tree. Real files, real nginx, real
// openssl certificates, a real small filesystem.
import t, { type Test } from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EXAMPLE_SIGNING_KEY } from '../../../src/api/config.js'
import { findNginx } from '../../../src/bench/stacks/nginx.js'
import { fakeArtifact, makeTarget, runway, snapshot } from '../../helpers/deploy.js'

const CI = process.env.CI === 'true'

/** deploy (not a dry run) with a stand-in artifact: only preflight can stop it this early. */
async function refused(t: Test, root: string, extra: string[] = [], artifact = fakeArtifact(t)) {
  const before = snapshot(root)
  const r = await runway(['deploy', '--path', root, '--artifact', artifact, ...extra])
  t.equal(r.code, 1, 'refused')
  t.match(r.err, /✗ preflight .*problem/)
  t.match(r.err, /\nrunway deploy: deploy failed on local:.*: preflight: /, 'the last line says why')
  t.same(snapshot(root), before, 'the target was not touched')
  return r.err
}

t.test('config: missing, weak, example key, invalid value', async (t) => {
  const missing = makeTarget(t)
  rmSync(join(missing, 'shared', '.env'))
  t.match(await refused(t, missing), /✗ config: shared\/\.env is missing on the target: create it with NODE_ENV=production and a strong JWT_SIGNING_KEY/)

  t.match(
    await refused(t, makeTarget(t, { env: { JWT_SIGNING_KEY: 'short-key' } })),
    /✗ config: shared\/\.env: JWT_SIGNING_KEY is 9 bytes: production needs at least 32/,
  )
  t.match(await refused(t, makeTarget(t, { env: { JWT_SIGNING_KEY: EXAMPLE_SIGNING_KEY } })), /✗ config: shared\/\.env: JWT_SIGNING_KEY is the example value/)
  t.match(await refused(t, makeTarget(t, { env: { PORT: '80x' } })), /✗ config: shared\/\.env: PORT="80x" is invalid: expected an integer/)
  t.match(await refused(t, makeTarget(t, { env: { NODE_ENV: 'development' } })), /✗ config: shared\/\.env sets NODE_ENV=development/)
  t.match(await refused(t, makeTarget(t, { env: { ACCES_TOKEN_LIFETIME: '5m' } })), /✗ config: shared\/\.env: ACCES_TOKEN_LIFETIME .*is not a runway setting/)
})

t.test('store: the SQLite directory must be usable', async (t) => {
  const root = makeTarget(t)
  writeFileSync(join(root, 'shared', 'data'), 'not a directory')
  t.match(await refused(t, root), /✗ store: store unreachable: .*shared\/data is not a directory/)
})

const nginx = findNginx()
t.test('nginx -t failing refuses; a valid config passes', { skip: !nginx && !CI && 'nginx is not installed' }, async (t) => {
  if (!nginx) return void t.fail('nginx is not installed (CI=true): apt-get install -y nginx')
  const root = makeTarget(t)
  const prefix = mkdtempSync(join(tmpdir(), 'runway-preflight-nginx-'))
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }))
  const conf = (body: string) =>
    `pid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${prefix}/tmp;\n  ${body}\n}\n`
  writeFileSync(join(prefix, 'good.conf'), conf('server { listen 127.0.0.1:18080; return 200; }'))
  writeFileSync(join(prefix, 'bad.conf'), conf('server { listen 127.0.0.1:18080; proxy_pass_nowhere on; }'))

  const err = await refused(t, root, ['--nginx-conf', join(prefix, 'bad.conf'), '--nginx-prefix', prefix])
  t.match(err, /✗ nginx: nginx -t failed: .*unknown directive "proxy_pass_nowhere" in .*bad\.conf:\d+/)

  const ok = await runway([
    'deploy',
    '--path',
    root,
    '--artifact',
    fakeArtifact(t),
    '--dry-run',
    '--nginx-conf',
    join(prefix, 'good.conf'),
    '--nginx-prefix',
    prefix,
  ])
  t.equal(ok.code, 0, ok.err)
  t.match(ok.err, /✓ nginx: nginx -t passed for .*good\.conf/)
})

/** A real certificate valid from `start` to `end` (openssl ca can set both dates). */
function certificate(dir: string, name: string, start: Date, end: Date): string {
  const stamp = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`
  const ca = join(dir, name)
  mkdirSync(ca, { recursive: true })
  writeFileSync(join(ca, 'index.txt'), '')
  writeFileSync(join(ca, 'serial'), '01\n')
  writeFileSync(
    join(ca, 'ca.cnf'),
    `[ca]\ndefault_ca = d\n[d]\ndatabase = ${ca}/index.txt\nnew_certs_dir = ${ca}\nserial = ${ca}/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = ${name}.test\n`,
  )
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })
  run([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${ca}/key.pem`,
    '-out',
    `${ca}/csr.pem`,
    '-config',
    `${ca}/ca.cnf`,
  ])
  run([
    'ca',
    '-batch',
    '-selfsign',
    '-config',
    `${ca}/ca.cnf`,
    '-keyfile',
    `${ca}/key.pem`,
    '-in',
    `${ca}/csr.pem`,
    '-out',
    `${ca}/cert.pem`,
    '-startdate',
    stamp(start),
    '-enddate',
    stamp(end),
    '-notext',
  ])
  return `${ca}/cert.pem`
}

t.test('TLS: expired refuses, expiring within 14 days warns, otherwise ok', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-preflight-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const day = 86_400_000
  const now = Date.now()
  const expired = certificate(dir, 'expired', new Date(now - 90 * day), new Date(now - 2 * day))
  const soon = certificate(dir, 'soon', new Date(now - 80 * day), new Date(now + 5 * day + 3_600_000))
  const fine = certificate(dir, 'fine', new Date(now - day), new Date(now + 80 * day))

  t.match(await refused(t, makeTarget(t), ['--tls-cert', expired]), /✗ tls: .*expired\/cert\.pem expired on \d{4}-\d\d-\d\d: renew it/)

  const root = makeTarget(t)
  const r = await runway(['deploy', '--path', root, '--artifact', fakeArtifact(t), '--dry-run', '--tls-cert', soon, '--tls-cert', fine])
  t.equal(r.code, 0, 'a certificate that expires soon is a warning, not a refusal')
  t.match(r.err, /! tls: .*soon\/cert\.pem expires in 5 days \(\d{4}-\d\d-\d\d\): renew it soon/)
  t.match(r.err, /✓ tls: .*fine\/cert\.pem valid for (79|80) more days/)

  writeFileSync(join(dir, 'garbage.pem'), 'not a certificate')
  t.match(await refused(t, makeTarget(t), ['--tls-cert', join(dir, 'garbage.pem')]), /✗ tls: .*garbage\.pem is not a PEM certificate/)
})

// A small real filesystem: a tmpfs of 256 KiB (mounting needs root, which CI has).
const isRoot = process.getuid?.() === 0
t.test('disk: less free space than the release needs', { skip: !isRoot && !CI && 'mounting a small tmpfs needs root' }, async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'runway-preflight-disk-'))
  t.teardown(() => rmSync(mnt, { recursive: true, force: true }))
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { encoding: 'utf8' })
  if (mount.status !== 0) return void t.fail(`cannot mount a small tmpfs to fill a disk: ${mount.stderr.trim()}`)
  t.teardown(() => spawnSync('umount', [mnt]))
  const root = join(mnt, 'srv')
  mkdirSync(join(root, 'shared'), { recursive: true })
  writeFileSync(join(root, 'shared', '.env'), 'NODE_ENV=production\nJWT_SIGNING_KEY=deploy-test-signing-key-0123456789-abcdefghijklmnop\n')
  const artifact = fakeArtifact(t)
  writeFileSync(join(artifact, 'dist', 'big.bin'), Buffer.alloc(1024 * 1024))
  t.match(await refused(t, root, [], artifact), /✗ disk: 0\.\d MB free on the target, the release needs 1\.0 MB: free some space/)
})

t.test('git: a dirty tree is refused unless --allow-dirty', async (t) => {
  const repo = mkdtempSync(join(tmpdir(), 'runway-preflight-git-'))
  t.teardown(() => rmSync(repo, { recursive: true, force: true }))
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { stdio: 'pipe' })
  git('init', '-q')
  writeFileSync(join(repo, 'package.json'), '{}\n')
  git('add', 'package.json')
  git('commit', '-q', '-m', 'init')
  writeFileSync(join(repo, 'uncommitted.txt'), 'x')
  const root = makeTarget(t)
  const before = snapshot(root)
  const r = await runway(['deploy', '--path', root, '--source', repo])
  t.equal(r.code, 1)
  t.match(r.err, /✗ git: 1 uncommitted change \(\?\? uncommitted\.txt\): commit or stash them, or pass --allow-dirty/)
  t.notMatch(r.err, /build artifact/, 'refused before building anything')
  t.same(snapshot(root), before)
  const dry = await runway(['deploy', '--path', root, '--source', repo, '--allow-dirty', '--dry-run'])
  t.match(dry.err, /! git: 1 uncommitted change .*deploying anyway \(--allow-dirty\)/)
})

t.test('several problems: one line each, all reported at once', async (t) => {
  const root = makeTarget(t, { env: { JWT_SIGNING_KEY: 'short' } })
  writeFileSync(join(root, 'shared', 'data'), 'x')
  const err = await refused(t, root, ['--tls-cert', '/nonexistent/cert.pem'])
  t.match(err, /✗ config: .*\n[\s\S]*✗ tls: \/nonexistent\/cert\.pem: cannot read the certificate/)
  t.match(err, /preflight: 2 problems: config: .*; tls: /)
})

t.test('a dry run facing a failed check says ✗, not ✓, and the cause is not repeated 3-4 times', async (t) => {
  const root = makeTarget(t, { env: { JWT_SIGNING_KEY: 'short-key' } })
  const dry = await runway(['deploy', '--path', root, '--artifact', fakeArtifact(t), '--dry-run'])
  t.equal(dry.code, 1)
  t.match(dry.err, /✗ preflight .*1 problem: config: /)
  t.notMatch(dry.err, /✓ preflight/)
  t.match(dry.out, /^dry run: would deploy releases\//, 'the plan is still printed')
  const real = await runway(['deploy', '--path', root, '--artifact', fakeArtifact(t)])
  t.equal(real.code, 1)
  t.equal(real.out, '', 'no summary line repeating the failure')
  t.equal((real.err + real.out).match(/JWT_SIGNING_KEY is 9 bytes/g)?.length, 3, 'the check line, the step line, the final line')
})
