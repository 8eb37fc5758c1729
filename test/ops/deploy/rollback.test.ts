// The automatic rollback after a failed health gate, fast: the real `runway deploy` CLI on a local
// target, the real pm2 (one cluster worker under the target's own PM2_HOME), the real
// ecosystem.config.js and the real on-target health checks (src/ops/deploy/remote.ts, run through
// tsx), around a tiny release whose app is a few lines of node:http instead of the API. No build,
// no npm ci (a dependency cache entry links this checkout's node_modules), so a deploy takes
// seconds; test/serial/deploy-local.test.ts does the same with the real artifact under load.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { freePort } from '../../../src/lib/process.js'
import { makeTarget, reapPm2, ROOT, runway } from '../../helpers/deploy.js'

const LOCK = JSON.stringify({ name: 'runway-tiny-release', lockfileVersion: 3, requires: true, packages: { '': { name: 'runway-tiny-release' } } })

/**
 * A release that deploys like the real one: REVISION, package files, the real ecosystem.config.js,
 * dist/api/server.js (answers every path with its release name; /readyz 503 under pm2 when `sick`,
 * so it passes the pre-switch verify and fails only the health gate), dist/ops/deploy/remote.js (the
 * real one from src/ via tsx) and a bin/runway.js whose `migrate` has nothing to do.
 */
function tinyRelease(t: Test, sha: string, o: { sick?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), `runway-tiny-${sha}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const sub of ['dist/api', 'dist/ops/deploy', 'bin']) mkdirSync(join(dir, sub), { recursive: true })
  writeFileSync(join(dir, 'REVISION'), JSON.stringify({ sha, dirty: false, builtAt: new Date().toISOString(), builtBy: 'test' }))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'runway-tiny-release', private: true }))
  writeFileSync(join(dir, 'package-lock.json'), LOCK)
  copyFileSync(join(ROOT, 'ecosystem.config.js'), join(dir, 'ecosystem.config.js'))
  writeFileSync(join(dir, 'dist', 'package.json'), '{"type":"module"}\n')
  writeFileSync(
    join(dir, 'dist', 'api', 'server.js'),
    `import { createServer } from 'node:http'
import { readFileSync } from 'node:fs'
const envFile = () => { try { return /^PORT=(\\d+)$/m.exec(readFileSync('.env', 'utf8'))?.[1] } catch { return undefined } }
const sick = ${Boolean(o.sick)} && process.env.NODE_APP_INSTANCE !== undefined
createServer((req, res) => {
  res.writeHead(req.url === '/readyz' && sick ? 503 : 200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ release: ${JSON.stringify(sha)}, status: sick ? 'unavailable' : 'ok' }))
}).listen(Number(process.env.PORT ?? envFile()), '127.0.0.1', () => process.send?.('ready'))
`,
  )
  writeFileSync(
    join(dir, 'dist', 'ops', 'deploy', 'remote.js'),
    `import { register } from 'tsx/esm/api'\nregister()\nawait import(${JSON.stringify(pathToFileURL(join(ROOT, 'src', 'ops', 'deploy', 'remote.ts')).href)})\n`,
  )
  writeFileSync(join(dir, 'bin', 'runway.js'), "console.log('tiny release: no store to migrate')\n")
  return dir
}

/**
 * A dependency cache entry for the tiny releases' lockfile, keyed exactly as the deploy keys it:
 * node_modules holds one symlink per package of this checkout (pm2, tsx), so the deploy copies
 * links instead of running npm ci, and nothing can write through to the checkout's packages.
 */
function depsCache(t: Test): string {
  const cache = mkdtempSync(join(tmpdir(), 'runway-tiny-deps-'))
  t.teardown(() => rmSync(cache, { recursive: true, force: true }))
  const lock = join(cache, 'package-lock.json')
  writeFileSync(lock, LOCK)
  const key = execFileSync('bash', ['-c', `{ cat "$1"; node -p 'process.version+process.arch+process.platform'; } | sha256sum | cut -c1-16`, 'key', lock], {
    encoding: 'utf8',
  }).trim()
  const modules = join(cache, key, 'node_modules')
  mkdirSync(modules, { recursive: true })
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (!name.startsWith('.')) symlinkSync(join(ROOT, 'node_modules', name), join(modules, name))
  }
  rmSync(lock)
  return cache
}

const port = await freePort()
const root = makeTarget(t, { port })
reapPm2(t, join(root, '.pm2'))
const cache = depsCache(t)
const deploy = (artifact: string, healthTimeout: string) =>
  runway(['deploy', '--path', root, '--artifact', artifact, '--workers', '1', '--deps-cache', cache, '--health-timeout', healthTimeout, '--json'], {
    timeoutMs: 180_000,
  })
const current = () => readlinkSync(join(root, 'current')).replace('releases/', '')
const serving = async () => {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`)
  return { status: res.status, body: (await res.json()) as { release: string } }
}

t.test('a release that fails the health gate after the switch is rolled back to the previous one', async (t) => {
  const first = await deploy(tinyRelease(t, 'v1'), '30')
  t.equal(first.code, 0, `v1 deployed${first.code ? `: ${first.err}` : ''}`)
  const v1 = JSON.parse(first.out).hosts[0]
  t.match(v1, { result: 'ok', from: null })
  t.match(
    v1.steps.find((s: { name: string }) => s.name === 'npm ci --omit=dev'),
    { ok: true, detail: /^reused node_modules/ },
    'dependencies came from the cache (no npm ci)',
  )
  t.equal(current(), v1.release)
  t.match(await serving(), { status: 200, body: { release: 'v1' } })
  // pm2 runs from a copy outside the release, named by its version and Node's, so a new pm2 or
  // Node gets a new copy (an unquoted require() once named it "-v20…" for every version).
  const pm2Version = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'pm2', 'package.json'), 'utf8')) as { version: string }).version
  const copies = readdirSync(join(root, 'shared', 'pm2')).filter((n) => n !== 'active')
  t.same(copies, [`${pm2Version}-${process.version}`], 'the pm2 runtime copy is named by both versions')

  const started = Date.now()
  const r = await deploy(tinyRelease(t, 'sick', { sick: true }), '2')
  t.comment(`the failed deploy and its rollback took ${Date.now() - started} ms`)
  t.equal(r.code, 1, 'the deploy failed')
  const host = JSON.parse(r.out).hosts[0]
  t.match(host, {
    result: 'rolled-back',
    from: v1.release,
    live: v1.release,
    reason: new RegExp(`^health gate: not healthy after 2000 ms: .*HTTP 503.*; rolled back to ${v1.release}$`),
  })
  t.same(
    host.steps.filter((s: { ok: boolean }) => !s.ok).map((s: { name: string }) => s.name),
    ['health gate'],
    'only the health gate failed',
  )
  t.ok(
    host.steps.some((s: { name: string }) => s.name === 'switch current'),
    'the sick release had been switched to',
  )
  t.match(host.steps.at(-1), { name: 'roll back', ok: true })
  t.equal(current(), v1.release, 'current points to v1 again')
  t.match(await serving(), { status: 200, body: { release: 'v1' } }, 'and v1 serves')
  const log = readFileSync(join(root, '.runway', 'deploys.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
  t.match(log.at(-1), { action: 'deploy', sha: 'sick', from: v1.release, result: 'rolled-back', reason: /HTTP 503/ })
})

t.test('a first release that fails the health gate is stopped again, leaving nothing running', async (t) => {
  const freshPort = await freePort()
  const fresh = makeTarget(t, { port: freshPort })
  reapPm2(t, join(fresh, '.pm2'))
  const r = await runway(
    [
      'deploy',
      '--path',
      fresh,
      '--artifact',
      tinyRelease(t, 'sick', { sick: true }),
      '--workers',
      '1',
      '--deps-cache',
      cache,
      '--health-timeout',
      '2',
      '--json',
    ],
    { timeoutMs: 180_000 },
  )
  t.equal(r.code, 1, 'the deploy failed')
  const host = JSON.parse(r.out).hosts[0]
  t.match(host, {
    result: 'failed',
    from: null,
    live: null,
    reason: /^health gate: not healthy after 2000 ms: .*HTTP 503.*; nothing was live before, so the app was stopped and current removed$/,
  })
  t.match(host.steps.at(-1), { name: 'roll back', ok: true })
  t.notOk(existsSync(join(fresh, 'current')), 'no current link')
  const pm2 = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2')
  const list = execFileSync(process.execPath, [pm2, 'jlist'], { encoding: 'utf8', env: { ...process.env, PM2_HOME: join(fresh, '.pm2') } })
  t.same(JSON.parse(list.slice(list.indexOf('['))), [], 'pm2 runs no app for the target')
  const answered = await fetch(`http://127.0.0.1:${freshPort}/readyz`).then(
    () => true,
    () => false,
  )
  t.notOk(answered, 'nothing listens on the port')
})
