// Lean production workers: the compiled worker loads only what it serves. Its code and most of its
// packages are one bundle (scripts/bundle-worker.mjs), not ~400 files; the store not chosen is
// never loaded (pg on SQLite), prom-client (a chunk) only with METRICS_PORT, and the OpenAPI
// plugins only with OPENAPI_UI=true (off in production). Checked on a real
// `node dist/api/server.js` by the modules it actually loaded, not by timing or memory figures
// (those are `npm run probe:rss`).
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startProductionProcess } from '../../src/bench/stacks/api.js'
import { freePort } from '../../src/lib/process.js'
import { Connection, PASSWORD, SIGNING_KEY, seedUser, staged } from '../helpers/runtime.js'

const copy = await staged(t, 'dist')
await seedUser(copy.dir, 'alice')
const HOOK = fileURLToPath(new URL('../helpers/module-log.mjs', import.meta.url))

/** Starts `node dist/api/server.js` with `env`, logs in once, returns the packages it loaded and /docs/json's status. */
async function loaded(t: Test, name: string, env: Record<string, string>) {
  const log = join(copy.dir, `${name}.modules`)
  const stack = await startProductionProcess({
    cwd: copy.dir,
    logFile: join(copy.dir, `${name}.log`),
    env: { JWT_SIGNING_KEY: SIGNING_KEY, DATA_DIR: join(copy.dir, 'data'), NODE_OPTIONS: `--import=${HOOK}`, RUNWAY_MODULE_LOG: log, ...env },
  })
  t.teardown(() => stack.stop())
  const c = new Connection(stack.url)
  t.teardown(() => c.close())
  const login = await c.request('/api/token/', { json: { username: 'alice', password: PASSWORD } })
  t.equal(login.status, 200, 'serves logins')
  // The password rules load zxcvbn's list with import(): bundled wrongly, this answered 500.
  const change = await c.request('/api/password/change/', {
    token: (login.body as { access: string }).access,
    json: { old_password: PASSWORD, new_password: 'password' },
  })
  t.match(change, { status: 400, body: { new_password: [/too common/] } }, 'checks a new password against the common-password list')
  const docs = (await c.request('/docs/json')).status
  const metricsPort = env.METRICS_PORT
  const metrics = metricsPort ? await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(async (r) => ({ status: r.status, text: await r.text() })) : null
  const urls = readFileSync(log, 'utf8').trim().split('\n')
  const packages = new Set(urls.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((p): p is string => !!p))
  const own = urls.filter((u) => u.startsWith(`file://${copy.dir}/dist/`)).map((u) => u.slice(`file://${copy.dir}/`.length))
  return { packages, own, docs, metrics }
}

const BUNDLED = ['fastify', '@fastify/jwt', '@fastify/cors', '@fastify/rate-limit', 'typebox', 'close-with-grace', 'dotenv', 'helmet']

t.test('default production worker on SQLite: one bundle, no pg, no prom-client, no OpenAPI', async (t) => {
  const { packages, own, docs } = await loaded(t, 'default', {})
  t.ok(own.includes('dist/api/server.js'), 'the worker entry is loaded')
  t.same(
    own.filter((f) => f !== 'dist/api/server.js' && !/^dist\/api\/chunks\/[\w-]+\.js$/.test(f)),
    [],
    "no file of tsc's layout: only the bundle and its chunks",
  )
  for (const p of BUNDLED) t.notOk(packages.has(p), `${p} is compiled into the bundle, not loaded from node_modules`)
  t.notOk(packages.has('pg'), 'pg is not loaded by a worker on SQLite')
  t.ok(packages.has('better-sqlite3'), 'the chosen store is')
  t.notOk(packages.has('prom-client'), 'prom-client is not loaded')
  t.notOk(packages.has('@fastify/swagger'), '@fastify/swagger not loaded')
  t.notOk(packages.has('@fastify/swagger-ui'), '@fastify/swagger-ui not loaded')
  t.equal(docs, 404, 'no /docs in production by default')
})

t.test('OPENAPI_UI=true and METRICS_PORT: the OpenAPI plugins and the metrics chunk are loaded and serve', async (t) => {
  const plain = await loaded(t, 'plain', {})
  const { packages, own, docs, metrics } = await loaded(t, 'docs-metrics', { OPENAPI_UI: 'true', METRICS_PORT: String(await freePort()) })
  t.ok(packages.has('@fastify/swagger') && packages.has('@fastify/swagger-ui'), 'the OpenAPI plugins are loaded when docs are on')
  t.ok(
    own.some((f) => !plain.own.includes(f)),
    'chunks a default worker does not load (the metrics registry, prom-client)',
  )
  t.equal(docs, 200, '/docs/json served')
  t.equal(metrics?.status, 200, 'GET /metrics served')
  t.match(metrics?.text, /^runway_/m, 'with runway series')
})
