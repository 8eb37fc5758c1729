// `runway compare --ceiling` end to end, briefly: every stage and twin comes up on free ports, is
// measured for a fixed number of requests on `me` and `session`, and is torn down, leaving no
// process and no port behind; results.json on disk validates; report.html renders in headless
// Chromium with its charts drawn. Speed is not asserted here (figures come from the CLI):
// structure, exact counts and 0 errors are. A count, not a time: `session` logs in at the real
// scrypt cost, and on a busy machine one second once completed no request at all.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { compare, type StageId } from '../../src/bench/loadtest/compare.js'
import { resultsProblems } from '../../src/bench/loadtest/schema.js'
import { failures } from '../../src/bench/loadtest/stats.js'
import { findNginx } from '../../src/bench/stacks/nginx.js'
import { isAlive, killGroup } from '../../src/lib/process.js'

const CHROMIUM = '/usr/bin/chromium'
const requirements = [findNginx() ? null : 'nginx (apt-get install -y nginx)', existsSync(CHROMIUM) ? null : 'chromium (apt-get install -y chromium)'].filter(
  Boolean,
)
if (requirements.length) {
  // CI installs both (.ci/run); elsewhere say what is missing rather than pass quietly.
  if (process.env.CI === 'true') t.fail(`missing ${requirements.join(' and ')}`)
  else t.plan(0, `missing ${requirements.join(' and ')}`)
} else {
  const out = mkdtempSync(join(tmpdir(), 'runway-compare-test-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const started: { stage: StageId; pids: number[]; url: string }[] = []
  // Whatever happens below, nothing this test started outlives it.
  t.teardown(() => {
    for (const s of started) for (const pid of s.pids) if (isAlive(pid)) killGroup(pid, 'SIGKILL')
  })

  /** Requests per row: the same count however fast the machine is (autocannon's `amount`). */
  const AMOUNT = 30
  const t0 = Date.now()
  const { results } = await compare({
    scenarios: ['me', 'session'],
    // Few connections and requests: a session starts with a login at the real scrypt cost (30
    // requests = 4 connections × one login, 3 × me, refresh, logout, and a second login for some).
    settings: { connections: 4, durationSec: 1, amount: AMOUNT, warmupSec: 0, runs: 1, workers: 0 },
    engine: 'autocannon',
    ceiling: true,
    instances: 2,
    users: 4,
    outDir: out,
    onStarted: (stage, pids, url) => started.push({ stage, pids, url }),
  })
  t.comment(`compare took ${Date.now() - t0} ms`)

  t.test('every stage and twin came up and was measured', async (t) => {
    t.same(
      results.stages.map((s) => [s.id, s.status, s.reason ?? '']),
      ['dev', 'single', 'bare-single', 'cluster', 'bare-cluster', 'nginx', 'bare-nginx', 'tls', 'bare-tls', 'proxy-tls'].map((id) => [id, 'ok', '']),
    )
    t.same(
      started.map((s) => s.stage),
      results.stages.map((s) => s.id),
    )
    for (const s of started) t.ok(s.pids.length >= 1, `${s.stage}: ${s.pids.length} processes`)
    t.match(started.find((s) => s.stage === 'tls')?.url, /^https:/)
    for (const row of results.results) {
      const twin = results.stages.find((s) => s.id === row.stage)?.kind === 'twin'
      if (twin && row.scenario === 'session') {
        t.equal(row.status, 'skipped', `${row.stage} session`)
        continue
      }
      const name = `${row.stage} ${row.scenario}`
      t.equal(row.status, 'ok', `${name}: ${row.reason ?? ''}`)
      t.equal(row.runs.length, 1, `${name}: one run`)
      const s = row.summary!
      t.equal(s.responses, AMOUNT, `${name}: exactly ${AMOUNT} responses`)
      t.same(
        Object.keys(s.statusCodes).filter((code) => !code.startsWith('2')),
        [],
        `${name}: only 2xx status codes`,
      )
      t.equal(failures(s), 0, `${name}: no failed responses`)
      t.ok(s.rps > 0, `${name}: ${s.rps} req/s (any rate: only its presence is checked)`)
      t.ok(s.serverRssMb > 10 && s.serverCpu >= 0, `${name}: server RSS (${s.serverRssMb} MB) and CPU (${s.serverCpu}%) sampled`)
    }
    // A stage and its twin are up together and measured in alternating runs: the twin's `me` run
    // comes before the stage's next scenario, not after all of them.
    const firstRun = (stage: string, scenario: string) => results.results.find((r) => r.stage === stage && r.scenario === scenario)?.runs[0]?.startedAt ?? ''
    t.ok(
      firstRun('single', 'me') < firstRun('bare-single', 'me') && firstRun('bare-single', 'me') < firstRun('single', 'session'),
      "twin runs interleaved with its stage's",
    )
    const eff = results.results.find((r) => r.stage === 'cluster' && r.scenario === 'me')?.efficiency
    t.ok(eff !== undefined && eff > 0, `cluster efficiency against its twin: ${eff}`)
    const template = results.results.find((r) => r.stage === 'bare-tls' && r.scenario === 'me')?.efficiency
    t.ok(template !== undefined && template > 0, `the rendered TLS template against the minimal proxy: ${template}`)
    t.ok(
      results.targets.some((x) => /rendered nginx template \(TLS\) ≥ 90% of a minimal TLS proxy/.test(x.name)),
      'the template goal is shown',
    )
    t.ok(results.targets.length >= 10, 'targets shown')
  })

  t.test('nothing is left running, no port left open', async (t) => {
    const deadline = Date.now() + 5000
    const alive = () => started.flatMap((s) => s.pids.filter(isAlive).map((pid) => `${s.stage}:${pid}`))
    while (alive().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    t.same(alive(), [], 'every process of every stage exited')
    for (const s of started) {
      const port = Number(new URL(s.url).port)
      const refused = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1')
        socket.once('connect', () => (socket.destroy(), resolve(false)))
        socket.once('error', () => resolve(true))
      })
      t.ok(refused, `${s.stage}: port ${port} is closed`)
    }
  })

  t.test('results.json on disk validates; report.md and report.html were written', async (t) => {
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
    t.same(resultsProblems(doc), [])
    t.equal(doc.engine, 'autocannon')
    t.match(doc.machine, { cpuCount: Number, node: process.version, nginx: /^[0-9.]+$/ })
    t.match(readFileSync(join(out, 'report.md'), 'utf8'), /## me\n/)
  })

  t.test('report.html renders in headless Chromium with its charts drawn', async (t) => {
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
    await page.waitForSelector('body[data-charts="drawn"]', { timeout: 15_000 })
    const shot = join(out, 'report.png')
    const png = await page.screenshot({ path: shot, fullPage: true })
    t.same(errors, [], 'no script errors')
    t.same(fetched, [], 'the page fetched nothing: it works offline')
    t.ok(png.length > 50_000, `screenshot ${png.length} bytes`)
    // Count each chart's bar-coloured pixels: drawn charts have bars, not just axes.
    // (Runs in the page; typed here without the DOM library.)
    interface Canvas {
      id: string
      width: number
      height: number
      getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null
    }
    const canvases = await page.evaluate(() =>
      [...(globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<Canvas> } }).document.querySelectorAll('canvas')].map((c) => {
        const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height)
        let painted = 0
        let bars = 0
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3]! > 0) painted++
          const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!]
          if ((r === 47 && g === 111 && b === 223) || (r === 217 && g === 83 && b === 79)) bars++
        }
        return { id: c.id, width: c.width, height: c.height, painted, bars }
      }),
    )
    t.same(
      canvases.map((c) => c.id),
      ['rps-me', 'lat-me', 'rps-session', 'lat-session'],
    )
    for (const c of canvases) {
      t.ok(c.width > 100 && c.height > 100, `${c.id} is ${c.width}×${c.height}`)
      t.ok(c.bars > 200, `${c.id} has ${c.bars} bar pixels (${c.painted} painted)`)
    }
  })
}
