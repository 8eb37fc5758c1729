// `runway drill crash deploy` on the real stacks (dev server, one production process, the pm2
// cluster): the faults really happen (the killed process is gone, pm2 replaces its worker, the
// dev server restarts on the changed file, pm2 reload replaces every worker), every request is
// counted once, nothing is left running, and report.html renders in headless Chromium with one
// timeline per stage drilled. Speed is not asserted; who recovers and who does not is.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { crash, deploy } from '../../src/bench/loadtest/drill/drills.js'
import { drill, type DrillResults } from '../../src/bench/loadtest/drill/run.js'
import { isAlive, killGroup } from '../../src/lib/process.js'

const CHROMIUM = '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true') t.fail('missing chromium (apt-get install -y chromium)')
  else t.plan(0, 'missing chromium (apt-get install -y chromium)')
} else {
  const out = mkdtempSync(join(tmpdir(), 'runway-drill-test-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const started: number[] = []
  t.teardown(() => {
    for (const pid of started) if (isAlive(pid)) killGroup(pid, 'SIGKILL')
  })
  const CLIENTS = 4
  const { results } = await drill({
    drills: [crash, deploy],
    stages: ['dev', 'single', 'cluster'],
    connections: CLIENTS,
    timeoutMs: 2000,
    instances: 2,
    outDir: out,
    onStarted: (_stage, _drill, pids) => started.push(...pids),
  })
  const get = (drillName: string, stage: string) => results.drills.find((d) => d.name === drillName)!.stages.find((s) => s.stage === stage)!

  t.test('every drill ran and its fault was confirmed', async (t) => {
    for (const d of results.drills) {
      for (const s of d.stages) {
        if (d.name === 'deploy' && s.stage === 'single') t.equal(s.status, 'skipped', 'a lone process has no reload')
        else t.equal(s.status, 'ok', `${d.name} ${s.stage}: ${s.reason ?? ''}`)
      }
    }
  })

  t.test('crash: the lone processes stay down, pm2 replaces its worker', async (t) => {
    for (const id of ['dev', 'single']) {
      const s = get('crash', id)
      t.match(s.fault, { confirmed: true, action: /^kill -9 of the server process \(pid [0-9]+\)$/ })
      t.match(s.settled, /nothing listens any more/)
      t.equal(s.analysis!.recoverySec, null, `${id}: not back by the end of the run`)
      t.equal(s.analysis!.windows[2]!.ok, 0, `${id}: no success after the crash`)
      t.ok(s.analysis!.windows[2]!.byKind.refused! > 0, `${id}: refused after the crash`)
      t.match(s.verdict, /down for the rest of the run after the crash/)
    }
    const c = get('crash', 'cluster')
    t.match(c.fault, { confirmed: true, action: /^kill -9 of pm2 worker [0-9]+ \(pid [0-9]+, 1 of 2\)$/ })
    t.match(c.settled, /^pm2 restarted it: 2 workers online/)
    t.not(c.analysis!.recoverySec, null, 'the cluster is back to full rate')
    t.ok(c.analysis!.failedAfterFault <= CLIENTS, `at most the requests in flight failed (${c.analysis!.failedAfterFault})`)
    t.ok(c.analysis!.windows[2]!.ok > 0)
  })

  t.test('deploy: new code live on both; pm2 reload fails no request', async (t) => {
    const dev = get('deploy', 'dev')
    t.match(dev.fault, { confirmed: true, detail: /^new server process [0-9]+ \(was [0-9]+\) listening/ })
    const c = get('deploy', 'cluster')
    t.match(c.fault, { confirmed: true, detail: /^all 2 workers replaced/ })
    t.equal(c.analysis!.failed, 0, `pm2 reload: ${JSON.stringify(c.analysis!.byKind)}`)
    t.match(c.verdict, /0 requests failed during the change; new code live/)
  })

  t.test('counting: every request in exactly one window and one second', async (t) => {
    for (const d of results.drills) {
      for (const s of d.stages.filter((x) => x.analysis)) {
        const a = s.analysis!
        t.equal(a.ok + a.failed, a.requests, `${d.name} ${s.stage}`)
        t.equal(
          a.windows.reduce((n, w) => n + w.ok + w.failed, 0),
          a.requests,
        )
        t.equal(
          a.timeline.reduce((n, x) => n + x.ok + Object.values(x.failed).reduce((p, q) => p + q, 0), 0),
          a.requests,
        )
        t.equal(a.windows[0]!.failed, 0, `${d.name} ${s.stage}: healthy before the fault`)
      }
    }
  })

  t.test('nothing is left running', async (t) => {
    t.ok(started.length >= 5)
    // A killed dev server's esbuild service notices its parent is gone on its next ping: allow 5 s.
    for (let i = 0; i < 50 && started.some(isAlive); i++) await new Promise((r) => setTimeout(r, 100))
    const cmd = (pid: number) => {
      try {
        return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 160)}`
      } catch {
        return `${pid} (gone)`
      }
    }
    t.same(started.filter(isAlive).map(cmd), [])
  })

  t.test('results.json, report.md and report.html', async (t) => {
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as DrillResults
    t.equal(doc.schema, 'runway-drill/1')
    t.same(
      doc.drills.map((d) => d.name),
      ['crash', 'deploy'],
    )
    t.match(readFileSync(join(out, 'report.md'), 'utf8'), /## crash: kill -9[\s\S]*- dev server: down for the rest of the run/)
    const profile = mkdtempSync(join(tmpdir(), 'runway-chromium-'))
    t.teardown(() => rmSync(profile, { recursive: true, force: true }))
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    })
    t.teardown(() => browser.close())
    const page = await browser.newPage()
    const fetched: string[] = []
    page.on('request', (req) => {
      if (!req.url().startsWith('file:')) fetched.push(req.url())
    })
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    await page.goto(`file://${join(out, 'report.html')}`)
    await page.waitForSelector('body[data-charts]', { timeout: 15_000 })
    t.same(errors, [], 'no script errors')
    t.same(fetched, [], 'offline')
    const drilled = doc.drills.flatMap((d) => d.stages.filter((s) => s.analysis).map((s) => `timeline-${d.name}-${s.stage}`))
    t.equal(drilled.length, 5)
    t.equal(
      await page.evaluate(() => (globalThis as unknown as { document: { body: { dataset: { charts: string } } } }).document.body.dataset.charts),
      '5',
      'one timeline drawn per stage drilled',
    )
    interface Canvas {
      id: string
      width: number
      height: number
      getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null
    }
    const canvases = await page.evaluate(() =>
      [...(globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<Canvas> } }).document.querySelectorAll('canvas')].map((c) => {
        const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height)
        let bars = 0
        let fault = 0
        for (let i = 0; i < data.length; i += 4) {
          const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!]
          if (r === 47 && g === 111 && b === 223) bars++
          if (r === 192 && g === 57 && b === 43) fault++
        }
        return { id: c.id, bars, fault }
      }),
    )
    t.same(
      canvases.map((c) => c.id),
      drilled,
    )
    for (const c of canvases) {
      t.ok(c.bars > 100, `${c.id}: success bars drawn (${c.bars} px)`)
      t.ok(c.fault > 20, `${c.id}: the fault line drawn (${c.fault} px)`)
    }
    await page.screenshot({ path: join(out, 'report.png'), fullPage: true })
  })
}
