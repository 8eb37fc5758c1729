// A deploy to several hosts is refused before any host changes when the hosts would not serve one
// API: different signing keys (tokens from A refused on B) or different databases. Preflight
// probes PostgreSQL from the target with the configured URL and never prints its password; it
// warns when TRUST_PROXY cannot trust the proxy that connects. Two real local targets (real bash,
// real files), the real `runway deploy` CLI, the shared PostgreSQL and a closed port.
import t, { type Test } from 'tap'
import pg from 'pg'
import { generateKeyPairSync } from 'node:crypto'
import { symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { deploy, type Reporter } from '../../../src/ops/deploy/deploy.js'
import { preflight, type Check } from '../../../src/ops/deploy/preflight.js'
import { LocalTarget } from '../../../src/ops/deploy/target.js'
import { freePort } from '../../../src/lib/process.js'
import { fakeArtifact, makeTarget, ROOT, runway, snapshot, STRONG_KEY } from '../../helpers/deploy.js'

const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const OTHER_KEY = 'fleet-test-other-signing-key-ZYXWVUTSRQ-9876543210'
const PASSWORD = 's3cret-Pa55word'

/** deploy() of two local targets, as `runway deploy --host a --host b` runs it. */
async function deployTwo(t: Test, envA: Record<string, string>, envB: Record<string, string>, dryRun = false) {
  const roots = [makeTarget(t, { env: envA }), makeTarget(t, { env: envB })]
  const before = roots.map(snapshot)
  const checks: string[] = []
  const reporter: Reporter = { step() {}, info() {}, check: (target, c: Check) => void checks.push(`${target.label} ${c.level} ${c.name}: ${c.message}`) }
  let built = false
  const report = await deploy({
    targets: roots.map((r) => new LocalTarget(r)),
    overrides: {},
    artifact: { estimateBytes: 1, sha: 'fleet1', gitChanges: [], get: async () => ((built = true), Promise.reject(new Error('must not build'))) },
    allowDirty: false,
    dryRun,
    breakLock: false,
    reporter,
  })
  t.notOk(built, 'nothing was built')
  t.same(roots.map(snapshot), before, 'no target was touched')
  return { report, roots, labels: roots.map((r) => new LocalTarget(r).label), checks: checks.join('\n') }
}

t.test('different signing keys on two hosts: refused in one line naming both, the keys never shown', async (t) => {
  const { report, labels, checks } = await deployTwo(t, {}, { JWT_SIGNING_KEY: OTHER_KEY })
  t.equal(report.ok, false)
  const reason = report.hosts[0]!.reason ?? ''
  t.notMatch(reason, /\n/, 'one line')
  t.match(reason, /^preflight: signing keys differ: /)
  for (const l of labels) t.ok(reason.includes(`${l} (sha256:`), `names ${l} with its fingerprint`)
  t.same(report.skipped, [labels[1]])
  for (const secret of [STRONG_KEY, OTHER_KEY]) t.notOk((reason + checks).includes(secret), 'the key is never printed')
})

t.test('one key on two hosts (an HS key, or EC key files with the same contents) passes the key check', async (t) => {
  const { checks } = await deployTwo(t, {}, {}, true)
  t.match(checks, /ok fleet keys: one signing key on 2 hosts \(sha256:[0-9a-f]{12}\)/)
  t.match(checks, /warn fleet database: 2 hosts each keep their own SQLite database/)

  // Asymmetric: the key files are hashed on the target; same contents = same fingerprint.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const rs = { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: 'jwt.pem' }
  const a = makeTarget(t, { env: rs })
  const b = makeTarget(t, { env: rs })
  writeFileSync(join(a, 'shared', 'jwt.pem'), pem)
  writeFileSync(join(b, 'shared', 'jwt.pem'), pem)
  const [fa, fb] = await Promise.all(
    [a, b].map((r) => preflight({ target: new LocalTarget(r), settings: {} as never, artifactBytes: 1, gitChanges: [], allowDirty: false })),
  )
  t.ok(fa!.fleet && fa!.fleet.keyFingerprint === fb!.fleet?.keyFingerprint, 'same key files, same fingerprint')
  writeFileSync(join(b, 'shared', 'jwt.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())
  const fb2 = await preflight({ target: new LocalTarget(b), settings: {} as never, artifactBytes: 1, gitChanges: [], allowDirty: false })
  t.not(fa!.fleet!.keyFingerprint, fb2.fleet?.keyFingerprint, 'another key file, another fingerprint')
})

t.test('different DATABASE_URLs: refused, URLs shown without their passwords', async (t) => {
  const port = await freePort()
  const url = (db: string) => `postgres://runway:${PASSWORD}@127.0.0.1:${port}/${db}`
  const { report, labels, checks } = await deployTwo(t, { DATABASE_URL: url('one') }, { DATABASE_URL: url('two') }, true)
  t.equal(report.ok, false, 'the dry run fails')
  t.match(
    checks,
    new RegExp(
      `error fleet database: DATABASE_URL differs: .*${labels[0]} \\(postgres://runway@127\\.0\\.0\\.1:${port}/one\\) vs .*${labels[1]} \\(postgres://runway@127\\.0\\.0\\.1:${port}/two\\)`,
    ),
  )
  t.notOk((checks + JSON.stringify(report)).includes(PASSWORD), 'the password is never printed')
})

t.test('unreachable DATABASE_URL: `runway deploy` refuses naming the URL without its password', async (t) => {
  const port = await freePort() // nothing listens there
  const root = makeTarget(t, { env: { DATABASE_URL: `postgres://runway:${PASSWORD}@127.0.0.1:${port}/runway` } })
  const before = snapshot(root)
  const r = await runway(['deploy', '--path', root, '--artifact', fakeArtifact(t)])
  t.equal(r.code, 1, 'refused')
  t.match(r.err, new RegExp(`✗ database: PostgreSQL postgres://runway@127\\.0\\.0\\.1:${port}/runway unreachable from the target: ECONNREFUSED`))
  t.match(r.err, /\nrunway deploy: deploy failed on local:.*: preflight: .*database: PostgreSQL postgres:\/\/runway@127\.0\.0\.1:\d+\/runway unreachable/)
  t.notMatch(r.err, /SQLite directory/, 'no SQLite line for a PostgreSQL store')
  t.notOk((r.out + r.err).includes(PASSWORD), 'the password is never printed')
  t.same(snapshot(root), before, 'the target was not touched')
})

t.test('with a live release, preflight logs in and reads the schema version', async (t) => {
  const probe = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 })
  const problem = await probe.connect().then(
    () => probe.end().then(() => null),
    (e: Error) => e.message,
  )
  if (problem && process.env.CI !== 'true') return void t.skip(`PostgreSQL at ${PG_URL} is not reachable (${problem}); set TEST_DATABASE_URL`, async () => {})
  if (problem) return void t.fail(`PostgreSQL at ${PG_URL} is not reachable: ${problem}`)
  const run = async (url: string) => {
    const root = makeTarget(t, { env: { DATABASE_URL: url } })
    symlinkSync(ROOT, join(root, 'current')) // a "live release" whose node_modules hold pg
    const pre = await preflight({ target: new LocalTarget(root), settings: {} as never, artifactBytes: 1, gitChanges: [], allowDirty: false })
    return pre.checks.find((c) => c.name === 'database')!
  }
  const ok = await run(PG_URL)
  t.equal(ok.level, 'ok')
  t.match(ok.message, /reachable, logged in; schema (migrated \(version \d+\)|at version \d+ of \d+)/)
  const u = new URL(PG_URL)
  u.pathname = '/runway_fleet_no_such_db'
  u.password = PASSWORD
  const bad = await run(u.toString())
  t.equal(bad.level, 'error')
  t.match(bad.message, /unreachable from the target: database "runway_fleet_no_such_db" does not exist/)
  t.notOk(bad.message.includes(PASSWORD))
})

t.test('TRUST_PROXY against the proxy that connects', async (t) => {
  const check = async (env: Record<string, string>, nginxConf?: string) => {
    const pre = await preflight({
      target: new LocalTarget(makeTarget(t, { env })),
      settings: { nginxConf } as never,
      artifactBytes: 1,
      gitChanges: [],
      allowDirty: false,
    })
    return pre.checks.find((c) => c.name === 'proxy trust')
  }
  t.match(await check({ HOST: '0.0.0.0', TRUST_PROXY: '127.0.0.1' }), {
    level: 'warn',
    message: /HOST=0\.0\.0\.0 without nginx on this host, but TRUST_PROXY=127\.0\.0\.1 trusts only this machine/,
  })
  t.match(await check({ HOST: '0.0.0.0', TRUST_PROXY: '10.0.0.5' }), { level: 'ok' })
  t.match(await check({ TRUST_PROXY: '10.0.0.5' }), { level: 'warn', message: /TRUST_PROXY=10\.0\.0\.5 does not trust the local proxy 127\.0\.0\.1/ })
  t.match(await check({ TRUST_PROXY: 'loopback' }), { level: 'ok' })
  t.equal(await check({ TRUST_PROXY: '1' }), undefined, 'a hop count: nothing to compare')
})

t.test('`runway check --deploy`: runway.E014 for an unreachable database, without its password', async (t) => {
  const port = await freePort()
  const root = makeTarget(t, { env: { DATABASE_URL: `postgres://runway:${PASSWORD}@127.0.0.1:${port}/runway` } })
  const r = await runway(['check', '--deploy', '--path', root, '--json'])
  t.equal(r.code, 1)
  const e014 = (JSON.parse(r.out) as { findings: Array<{ id: string; message: string }> }).findings.find((f) => f.id === 'runway.E014')
  t.match(e014?.message, new RegExp(`^PostgreSQL postgres://runway@127\\.0\\.0\\.1:${port}/runway unreachable from the target: ECONNREFUSED`))
  t.notOk((r.out + r.err).includes(PASSWORD), 'the password is never printed')
  // The deploy's preflight reports it once, as its own database line.
  const d = await runway(['deploy', '--path', root, '--artifact', fakeArtifact(t), '--dry-run'])
  t.equal(d.err.match(/✗ database: .*unreachable from the target/g)?.length, 1, 'one database line')
  t.notMatch(d.err, /runway\.E014/, 'not repeated as a check --deploy finding')
})
