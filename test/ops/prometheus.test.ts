// deploy/'s Prometheus example: the scrape config and the alert rules pass promtool's own checks,
// each alert fires in promtool's rule unit tests (test/ops/prometheus/alerts.test.yml), and every
// metric the rules name is in a real scrape of the app, whose runway_* series pass promtool's lint.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startMetricsListener } from '../../src/api/metrics/cluster.js'
import { appRegistry } from '../../src/api/metrics/registry.js'
import { freePort } from '../../src/lib/process.js'
import { call, startApp } from '../helpers/app.js'
import { ROOT } from '../helpers/deploy.js'

const CI = process.env.CI === 'true'
const PROMTOOL = ['/usr/bin/promtool', 'promtool'].find((p) => spawnSync(p, ['--version']).status === 0)
const promtool = (args: string[], o: { cwd?: string; input?: string } = {}) => spawnSync(PROMTOOL!, args, { encoding: 'utf8', ...o })
const CONFIG = join(ROOT, 'deploy', 'prometheus.yml')
const RULES = join(ROOT, 'deploy', 'prometheus-rules.yml')

if (!PROMTOOL) {
  if (CI) t.fail('promtool is missing (CI=true): apt-get install -y prometheus')
  else t.comment('promtool is not installed: the Prometheus example is not checked (apt-get install prometheus)')
} else {
  t.test('promtool accepts the scrape config (and the rule file it names) and the rules', async (t) => {
    const config = promtool(['check', 'config', CONFIG])
    t.equal(config.status, 0, config.stdout + config.stderr)
    t.match(config.stdout, /SUCCESS: 1 rule files found/)
    const rules = promtool(['check', 'rules', RULES])
    t.equal(rules.status, 0, rules.stdout + rules.stderr)
    t.match(rules.stdout, /SUCCESS: 7 rules found/)
    // The check really reads the file: a broken expression is refused.
    const dir = mkdtempSync(join(tmpdir(), 'runway-prom-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'broken.yml'), readFileSync(RULES, 'utf8').replace('> 0.01', '> > 0.01'))
    t.not(promtool(['check', 'rules', join(dir, 'broken.yml')]).status, 0, 'a broken rule fails the check')
    copyFileSync(CONFIG, join(dir, 'prometheus.yml'))
    t.not(promtool(['check', 'config', join(dir, 'prometheus.yml')]).status, 0, 'a config whose rule file is missing fails')
  })

  t.test('each alert fires on the series that should fire it, and not on healthy ones', async (t) => {
    const r = promtool(['test', 'rules', 'alerts.test.yml'], { cwd: join(ROOT, 'test', 'ops', 'prometheus') })
    t.equal(r.status, 0, r.stdout + r.stderr)
    t.match(r.stdout, /SUCCESS/)
  })

  t.test('a real scrape holds every metric the rules name, and its runway_* series pass promtool lint', async (t) => {
    const metricsPort = await freePort()
    const { app, url } = await startApp(t, { METRICS_PORT: String(metricsPort) })
    const dir = mkdtempSync(join(tmpdir(), 'runway-prom-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const listener = await startMetricsListener({
      host: '127.0.0.1',
      port: metricsPort,
      socketDir: join(dir, 's'),
      worker: '0',
      registry: appRegistry(app, '0'),
      log: { error: () => {} },
    })
    t.teardown(() => listener.close())
    await call(url, '/api/me/')
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    const names = new Set(
      [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
        type === 'histogram' ? [name!, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!],
      ),
    )
    const used = new Set([...readFileSync(RULES, 'utf8').matchAll(/\b((?:runway|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1]!))
    t.ok(used.size >= 6, `the rules name ${used.size} metrics`)
    for (const name of used) t.ok(names.has(name), `${name} is in the scrape`)

    const lint = promtool(['check', 'metrics'], { input: text })
    const problems = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.trim())
    // prom-client's own default metrics name three gauges *_total; runway's must have no problem.
    t.same(
      problems.filter((l) => !/^nodejs_active_(handles|requests|resources)_total /.test(l)),
      [],
      'no lint problem but the three known prom-client ones',
    )
  })
}
