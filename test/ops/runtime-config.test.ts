// ecosystem.config.js and the npm scripts agree with the app they run: pm2's timeouts outlast the
// app's grace period, the instance variable is the one src/api/config.ts reads, the worker count
// follows WEB_CONCURRENCY, and `npm run dev` is what the dev-server stack starts.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/api/config.js'
import { ROOT } from '../../src/lib/build.js'
import { DEV_ARGS } from '../../src/bench/stacks/api.js'

/** Loads ecosystem.config.js the way pm2 does (require in a CommonJS process) with this env. */
function ecosystem(env: Record<string, string | undefined> = {}): any {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k]
  const out = execFileSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(join(ROOT, 'ecosystem.config.js'))})))`], {
    env: merged,
    encoding: 'utf8',
  })
  return JSON.parse(out).apps[0]
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

t.test('cluster mode, one worker per CPU unless WEB_CONCURRENCY says otherwise', async (t) => {
  const app = ecosystem({ WEB_CONCURRENCY: undefined })
  t.equal(app.exec_mode, 'cluster')
  t.equal(app.instances, availableParallelism())
  t.equal(ecosystem({ WEB_CONCURRENCY: '3' }).instances, 3)
  t.throws(() => ecosystem({ WEB_CONCURRENCY: 'many' }), /WEB_CONCURRENCY="many" is invalid: expected a whole number of workers/)
  t.throws(() => ecosystem({ WEB_CONCURRENCY: '0' }), /WEB_CONCURRENCY="0" is invalid/)
  t.match(app.script, /dist\/api\/server\.js$/, 'compiled code, not tsx')
})

t.test('pm2 waits longer than the app: ready after listen, SIGKILL only after the grace period', async (t) => {
  const app = ecosystem()
  const config = loadConfig({ NODE_ENV: 'test' })
  t.equal(app.wait_ready, true)
  t.ok(app.kill_timeout > config.shutdownGraceMs, `kill_timeout ${app.kill_timeout} ms > SHUTDOWN_GRACE ${config.shutdownGraceMs} ms`)
  t.ok(app.listen_timeout >= 10_000, 'listen_timeout leaves a slow start (migrations) time to send ready')
  t.ok(app.exp_backoff_restart_delay > 0, 'crash restarts back off')
  t.ok(app.stop_exit_codes.includes(78), 'a configuration error (exit 78) is not restarted in a loop')
  t.match(app.max_memory_restart, /^[0-9]+[MG]$/)
  t.equal(app.env_production.NODE_ENV, 'production')
  t.equal(app.merge_logs, true)
  t.match(app.out_file, /runway\.out\.log$/)
  t.match(ecosystem({ RUNWAY_LOG_DIR: '/var/log/runway' }).error_file, '/var/log/runway/runway.err.log')
})

t.test("pm2's instance variable is the one the app reads for x-runway-worker", async (t) => {
  const app = ecosystem()
  const config = loadConfig({ NODE_ENV: 'test', [app.instance_var]: '1' })
  t.equal(config.workerId, '1')
  t.equal(config.workerHeader, true, 'the header is on outside production')
  t.equal(loadConfig({ NODE_ENV: 'production', JWT_SIGNING_KEY: 'k'.repeat(40) }).workerHeader, false, 'and off in production unless WORKER_HEADER=true')
})

t.test('keep-alive: the app outlasts nginx so nginx, not the app, closes idle upstream connections', async (t) => {
  const config = loadConfig({ NODE_ENV: 'test' })
  // The upstream block of runway's nginx template: the pair is checked against the real value.
  const template = readFileSync(join(ROOT, 'nginx', 'site.conf.template'), 'utf8')
  const upstream = /^upstream .*\{\n([\s\S]*?)^\}/m.exec(template)?.[1] ?? ''
  const nginxSeconds = Number(/keepalive_timeout\s+([0-9]+)s;/.exec(upstream)?.[1])
  t.ok(nginxSeconds > 0, `nginx upstream keepalive_timeout is ${nginxSeconds} s`)
  t.ok(config.keepAliveTimeoutMs > nginxSeconds * 1000, `KEEP_ALIVE_TIMEOUT ${config.keepAliveTimeoutMs} ms > nginx's ${nginxSeconds} s`)
  t.ok(config.headersTimeoutMs <= config.requestTimeoutMs)
})

t.test('npm scripts', async (t) => {
  t.equal(pkg.scripts.dev, `NODE_ENV=development tsx ${DEV_ARGS.join(' ')}`, 'startDevServer runs exactly `npm run dev`')
  // runway start validates the settings, runs `pm2 start ecosystem.config.js --env production` (as
  // startPm2Cluster does) and waits for every worker's 'ready' (test/serial/runtime-start-reload).
  t.equal(pkg.scripts.start, 'node bin/runway.js start')
  t.equal(pkg.scripts['start:foreground'], 'pm2-runtime start ecosystem.config.js --env production')
  t.equal(pkg.scripts.reload, 'node bin/runway.js reload', 'never `pm2 reload`: it replaces workers that never became ready')
  t.equal(pkg.scripts.stop, 'pm2 delete ecosystem.config.js')
})
