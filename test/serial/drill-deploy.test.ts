// `runway drill deploy --stages nginx`: the production side of the deploy drill is a real
// `runway deploy --path` to a target on this machine (artifact, npm ci from the cache, migrate,
// verify, switch, pm2 startOrReload under the target's PM2_HOME, health gate), nginx in front,
// redeployed with a changed release under load. The new release really is live, its workers are
// new, every request is counted, and nothing is left running. (0 failed requests is the goal the
// verdict reports; the test asserts the mechanics, not the goal.)
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy } from '../../src/bench/loadtest/drill/drills.js'
import { drill } from '../../src/bench/loadtest/drill/run.js'
import { findNginx } from '../../src/bench/stacks/nginx.js'
import { isAlive, killGroup } from '../../src/lib/process.js'

if (!findNginx()) {
  if (process.env.CI === 'true') t.fail('missing nginx (apt-get install -y nginx)')
  else t.plan(0, 'missing nginx (apt-get install -y nginx)')
} else {
  const out = mkdtempSync(join(tmpdir(), 'runway-drill-deploy-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const started: number[] = []
  t.teardown(() => {
    for (const pid of started) if (isAlive(pid)) killGroup(pid, 'SIGKILL')
  })
  const { results } = await drill({
    drills: [deploy],
    stages: ['nginx'],
    connections: 4,
    timeoutMs: 2000,
    instances: 2,
    outDir: out,
    onStarted: (_s, _d, pids) => started.push(...pids),
  })
  const s = results.drills[0]!.stages[0]!

  t.test('runway deploy put the changed release live and replaced every worker', async (t) => {
    t.equal(s.status, 'ok', s.reason ?? '')
    t.equal(s.label, 'nginx → runway deploy --path (pm2 cluster)')
    t.match(s.fault, {
      confirmed: true,
      action: /^runway deploy --path of a changed release/,
      detail: /^runway deploy exit 0, release [0-9TZ]+-drill-v2 live; all 2 workers replaced/,
    })
  })

  t.test('every request counted once; healthy before the deploy', async (t) => {
    const a = s.analysis!
    t.equal(a.ok + a.failed, a.requests)
    t.equal(
      a.windows.reduce((n, w) => n + w.ok + w.failed, 0),
      a.requests,
    )
    t.equal(a.windows[0]!.failed, 0)
    t.ok(a.windows[2]!.ok > 0, 'served after the deploy')
    t.match(s.verdict, /^nginx → runway deploy --path \(pm2 cluster\): .*new code live\.$/)
  })

  t.test('nothing is left running', async (t) => {
    t.ok(started.length >= 4, `${started.length} processes (pm2 daemon, workers, nginx)`)
    for (let i = 0; i < 50 && started.some(isAlive); i++) await new Promise((r) => setTimeout(r, 100))
    t.same(started.filter(isAlive), [])
  })
}
