// The deploy machinery that needs no running app: release names, the atomic switch, shared links,
// pruning, the lock, the audit log, --dry-run and the lock refusal, on real directories.
import t from 'tap'
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { appendAudit, entry, failedReleases, readAudit } from '../../../src/ops/deploy/audit.js'
import { linkSharedScript, readState, releaseName, releasesToPrune, RELEASE_NAME, switchScript } from '../../../src/ops/deploy/layout.js'
import { acquireLock, LockedError, readLock } from '../../../src/ops/deploy/lock.js'
import { LocalTarget, parseHost, SshTarget } from '../../../src/ops/deploy/target.js'
import { fakeArtifact, makeTarget, runway, snapshot } from '../../helpers/deploy.js'

t.test('release names are UTC timestamps plus the sha, and sort by time', async (t) => {
  const a = releaseName('abc1234', new Date('2026-11-29T09:15:00.900Z'))
  t.equal(a, '20261129T091500Z-abc1234')
  t.match(a, RELEASE_NAME)
  const b = releaseName('0000000', new Date('2026-11-29T10:00:00Z'))
  t.same([b, a].sort(), [a, b])
})

t.test('pruning keeps the newest N and always the live release', async (t) => {
  const r = ['20260101T000000Z-a', '20260102T000000Z-b', '20260103T000000Z-c', '20260104T000000Z-d']
  t.same(releasesToPrune(r, r[3]!, 2), [r[0], r[1]])
  t.same(releasesToPrune(r, r[0]!, 2), [r[1]], 'an old live release (after a rollback) is kept')
  t.same(releasesToPrune(r, null, 10), [])
})

t.test('parseHost accepts [user@]host[:port] and nothing else', async (t) => {
  t.same(parseHost('deploy@web1:2222'), { destination: 'deploy@web1', port: 2222 })
  t.same(parseHost('10.0.0.5'), { destination: '10.0.0.5', port: undefined })
  t.throws(() => parseHost('web1;rm -rf /'), { name: 'InvalidSetting', setting: 'host', message: /expected \[user@\]host\[:port\]/ })
  t.throws(() => new SshTarget({ host: 'web1', path: 'relative/dir' }), { name: 'InvalidSetting', setting: 'path', message: /absolute path/ })
})

t.test('switch is a rename of a new link; shared files are linked into the release', async (t) => {
  const root = makeTarget(t)
  const target = new LocalTarget(root)
  for (const r of ['20260101T000000Z-a', '20260102T000000Z-b']) mkdirSync(join(root, 'releases', r, 'data'), { recursive: true })
  mkdirSync(join(root, 'shared', 'data'))
  mkdirSync(join(root, 'shared', 'logs'))

  t.equal((await target.sh(linkSharedScript('20260102T000000Z-b'))).code, 0)
  const rel = join(root, 'releases', '20260102T000000Z-b')
  t.equal(readlinkSync(join(rel, '.env')), '../../shared/.env')
  t.equal(readlinkSync(join(rel, 'data')), '../../shared/data', 'the release data/ directory became the shared one')
  t.match(readFileSync(join(rel, '.env'), 'utf8'), /NODE_ENV=production/)

  t.equal((await target.sh(switchScript('20260101T000000Z-a'))).code, 0)
  t.equal(readlinkSync(join(root, 'current')), 'releases/20260101T000000Z-a')
  const before = lstatSync(join(root, 'current')).ino
  t.equal((await target.sh(switchScript('20260102T000000Z-b'))).code, 0)
  t.equal(readlinkSync(join(root, 'current')), 'releases/20260102T000000Z-b')
  t.not(lstatSync(join(root, 'current')).ino, before, 'a new link was renamed over the old one (never rewritten in place)')
  t.same(
    snapshot(root).filter((p) => p.includes('current')),
    ['current@'],
    'no temporary link left behind',
  )
  t.not((await target.sh(switchScript('20990101T000000Z-missing'))).code, 0, 'switching to a release that does not exist fails')
  t.equal(readlinkSync(join(root, 'current')), 'releases/20260102T000000Z-b', 'and leaves current alone')

  const state = await readState(target)
  t.equal(state.current, '20260102T000000Z-b')
  t.same(state.releases, ['20260101T000000Z-a', '20260102T000000Z-b'])
  t.equal(state.settings.pm2Home, `${root}/.pm2`, 'pm2 lives under the target by default')
  t.equal(state.settings.keep, 5)
})

t.test('the lock: one holder, refusals name it, breaking is explicit', async (t) => {
  const target = new LocalTarget(makeTarget(t))
  t.equal(await readLock(target), undefined)
  const first = await acquireLock(target, 'deploy A')
  const err = await acquireLock(target, 'deploy B').catch((e: Error) => e)
  t.type(err, LockedError)
  t.match((err as Error).message, new RegExp(`locked by .*pid ${process.pid}, deploy A\\) since .*--break-lock`))
  const broken = await acquireLock(target, 'deploy C', { breakLock: true })
  t.match(broken.broke, { command: 'deploy A' }, 'the broken holder is reported')
  await first.release()
  t.match(await readLock(target), { command: 'deploy C' }, "the old holder releasing does not remove the new holder's lock")
  await broken.release()
  t.equal(await readLock(target), undefined)
})

t.test('audit log: appended JSON lines, failed releases derived from it', async (t) => {
  const target = new LocalTarget(makeTarget(t))
  await appendAudit(target, entry({ action: 'deploy', sha: 'a', from: null, to: 'R1', result: 'ok', durationMs: 5 }))
  await appendAudit(target, entry({ action: 'deploy', sha: 'b', from: 'R1', to: 'R2', result: 'rolled-back', reason: 'health gate: HTTP 503', durationMs: 7 }))
  await appendAudit(target, entry({ action: 'deploy', sha: 'c', from: 'R1', to: 'R3', result: 'failed', reason: 'verify: exited', durationMs: 3 }))
  writeFileSync(join(target.root, '.runway', 'deploys.log'), readFileSync(join(target.root, '.runway', 'deploys.log'), 'utf8') + '{torn line\n')
  const log = await readAudit(target)
  t.equal(log.length, 3, 'a torn line does not hide the others')
  t.match(log[1], { by: /.+@.+/, sha: 'b', from: 'R1', to: 'R2', result: 'rolled-back', reason: /503/, at: /^\d{4}-\d\d-\d\dT/ })
  t.same([...failedReleases(log).keys()], ['R2', 'R3'])
})

t.test('--dry-run prints the plan and changes nothing', async (t) => {
  const root = makeTarget(t)
  const before = snapshot(root)
  const artifact = fakeArtifact(t)
  const r = await runway(['deploy', '--path', root, '--artifact', artifact, '--dry-run'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /dry run: would deploy releases\/\d{8}T\d{6}Z-fake123 to local:/)
  t.match(r.out, /live now: nothing/)
  t.match(r.out, /npm ci --omit=dev .* switch current .* pm2 startOrReload \(PM2_HOME=.*\.pm2\) .* health gate http:\/\/127\.0\.0\.1:3000\/readyz/)
  t.match(r.err, /✓ config: production settings valid/)
  t.same(snapshot(root), before, 'no file was created, changed or removed on the target')

  const json = await runway(['deploy', '--path', root, '--artifact', artifact, '--dry-run', '--json'])
  t.equal(json.code, 0)
  t.match(JSON.parse(json.out), { ok: true, dryRun: true, sha: 'fake123', hosts: [{ result: 'planned', from: null }] })
  t.same(snapshot(root), before)
})

t.test('the lock stops a concurrent deploy and names the holder', async (t) => {
  const root = makeTarget(t)
  const target = new LocalTarget(root)
  const other = await acquireLock(target, 'deploy 20261129T000000Z-other')
  t.teardown(() => other.release())
  const r = await runway(['deploy', '--path', root, '--artifact', fakeArtifact(t)])
  t.equal(r.code, 1)
  t.match(
    r.err,
    new RegExp(`runway deploy: deploy failed on local:.*locked by .*\\(pid ${process.pid}, deploy 20261129T000000Z-other\\) since .*--break-lock\\n$`),
  )
  t.notOk(existsSync(join(root, 'releases')) && snapshot(join(root, 'releases')).length, 'nothing was uploaded')
  t.notOk(existsSync(join(root, 'current')))
  mkdirSync(join(root, 'releases', '20260101T000000Z-old'), { recursive: true })
  const rb = await runway(['rollback', '--path', root, '--to', '20260101T000000Z-old'])
  t.equal(rb.code, 1)
  t.match(rb.err, /\nrunway rollback: local:.* is locked by .*deploy 20261129T000000Z-other.*--break-lock\n$/, 'a rollback is refused too')
  t.notOk(existsSync(join(root, 'current')), 'and changed nothing')
  const dry = await runway(['deploy', '--path', root, '--artifact', fakeArtifact(t), '--dry-run'])
  t.equal(dry.code, 1, 'a dry run reports the lock too')
  t.match(dry.out, /LOCKED by .*deploy 20261129T000000Z-other/)
})

t.test('commands explain their usage and refuse bad flags in one line', async (t) => {
  for (const cmd of ['deploy', 'rollback', 'releases', 'status']) {
    const help = await runway([cmd, '--help'])
    t.equal(help.code, 0)
    t.match(help.out, new RegExp(`^Usage: runway ${cmd} --path DIR`))
  }
  const noPath = await runway(['status'])
  t.equal(noPath.code, 2)
  t.equal(noPath.err, 'runway status: --path is required: the deploy root on the target, e.g. --path /srv/runway\n')
  const badKeep = await runway(['deploy', '--path', '/tmp/x', '--keep', '0', '--dry-run'])
  t.equal(badKeep.code, 2)
  t.match(badKeep.err, /--keep must be a whole number/)
  const noRelease = await runway(['rollback', '--path', makeTarget(t)])
  t.equal(noRelease.code, 1)
  t.match(noRelease.err, /\nrunway rollback: no earlier healthy release on local:.* \(live: nothing\): see `runway releases`\n$/)
})

t.test('runway settings shows what a target remembers from earlier flags, and --unset forgets it', async (t) => {
  const root = makeTarget(t)
  mkdirSync(join(root, '.runway'), { recursive: true })
  writeFileSync(join(root, '.runway', 'target.json'), JSON.stringify({ pm2Home: `${root}/.pm2`, keep: 1, workers: 2, depsCache: `${root}/.runway/deps` }))
  const show = await runway(['settings', '--path', root])
  t.equal(show.code, 0, show.err)
  t.match(show.out, /keep +1\n/)
  t.match(show.out, /pm2Home +".*\.pm2" +\(default\)/)
  const unset = await runway(['settings', '--path', root, '--unset', 'keep', '--unset', 'workers', '--json'])
  t.equal(unset.code, 0, unset.err)
  t.match(JSON.parse(unset.out).settings, { keep: 5 })
  t.notOk('workers' in JSON.parse(readFileSync(join(root, '.runway', 'target.json'), 'utf8')), 'workers is back to one per CPU')
  const bad = await runway(['settings', '--path', root, '--unset', 'kep'])
  t.equal(bad.code, 2)
  t.match(bad.err, /kep: not a target setting/)
})
