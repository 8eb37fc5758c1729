// report.md and report.html from a results document: the tables, the engine named, targets,
// explanations; the HTML self-contained (Chart.js inlined, nothing fetched) and its text escaped.
import t from 'tap'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { annotate } from '../../../src/bench/loadtest/compare.js'
import { renderHtml } from '../../../src/bench/loadtest/report-html.js'
import { machineLine, renderMarkdown, stageState } from '../../../src/bench/loadtest/report-md.js'
import { scenarioTable, targetLines, textTable } from '../../../src/bench/loadtest/table.js'
import { compareResults, row } from '../../helpers/loadtest.js'

const doc = compareResults()
annotate(doc)

t.test('markdown', async (t) => {
  const md = renderMarkdown(doc)
  t.match(md, /^# runway compare — 2026-11-29T10:00:00.000Z\n/)
  t.match(md, /Engine: autocannon · 50 connections · 10 s × 3 runs after 3 s warm-up \(not counted\)/)
  t.match(md, /median of the runs; error counts are totals/)
  t.match(
    md,
    /\| stack \| engine \| req\/s \| p50 \| p90 \| p99 \| max \| errors \| timeouts \| non-2xx \| server CPU \| server RSS \| load gen CPU \| other CPU \| × dev \| of twin \|/,
  )
  t.match(
    md,
    /\| production, one process \| autocannon \| 9,000 \| 2 ms \| 4 ms \| 9 ms \| 30 ms \| 0 \| 0 \| 0 \| 95% \| 120 MiB \| 60% \| 3% \| 2\.25× \| 90% \|/,
  )
  t.match(md, /- met {4}me: production, one process ≥ 90% of its ceiling twin: 90% \(goal ≥ 90%\)/)
  t.match(md, /- MISSED me: pm2 cluster \(2 workers\) ≥ 90% of its ceiling twin: 75%/)
  t.match(md, /### dev server \(ready in 500 ms, 1 process\)\n\nwhy dev <differs>/)
  t.match(md, /Where the dev server loses, and where it does not/)
  t.match(md, /## Warnings\n\n- cluster session: 3 failed responses/)
})

t.test('terminal table lines up', async (t) => {
  const lines = textTable(scenarioTable(doc, 'me')).split('\n')
  t.equal(lines.length, 2 + 5)
  t.equal(new Set(lines.map((l) => l.length)).size <= 2, true, 'rows are the same width (the last column may be trimmed)')
})

t.test('html is one self-contained page', async (t) => {
  const html = renderHtml(doc)
  t.match(html, /^<!doctype html>/)
  t.notMatch(html, /<script[^>]+src=/i, 'no external script')
  t.notMatch(html, /<link[^>]+href=/i, 'no external stylesheet')
  t.match(html, /Chart\.js v4/, 'Chart.js is inlined')
  t.ok(html.length > 150_000, 'the library is really in the file')
  t.match(html, /<canvas id="rps-me"/)
  t.match(html, /<canvas id="lat-session"/)
  t.match(html, /why dev &lt;differs&gt;/, 'text is escaped')
  const data = /<script type="application\/json" id="runway-data">([\s\S]*?)<\/script>/.exec(html)
  t.ok(data, 'chart data embedded')
  const charts = JSON.parse(data![1]!) as { scenario: string; labels: string[]; rps: number[]; twin: boolean[] }[]
  t.same(
    charts.map((c) => c.scenario),
    ['me', 'session'],
  )
  t.same(charts[0]!.rps, [4000, 9000, 10000, 15000, 20000])
  t.same(charts[0]!.twin, [false, false, true, false, true])
})

t.test('a run the machine limited: its verdict above the tables, its limited rows marked', async (t) => {
  const r = compareResults()
  r.results[3]!.loadgenSaturated = true // cluster me
  annotate(r)
  const html = renderHtml(r)
  t.match(html, /<p class="verdict">Not a ranking: 1 of 8 measurements/)
  t.ok(html.indexOf('class="verdict"') < html.indexOf('<table>'), 'before any table')
  const marked = [...html.matchAll(/<tr class="untrusted" title="not trusted: ([^"]*)"><td class="l">([^<]*)</g)].map((m) => m[2])
  t.same(marked, ['pm2 cluster (2 workers)'])
  t.notMatch(renderHtml(compareResults()), /class="verdict"|class="untrusted"/, 'a trusted run has neither')
})

t.test('nothing in the data can close the script element', async (t) => {
  const evil = compareResults()
  evil.stages[0]!.label = '</script><script>alert(1)</script>'
  const html = renderHtml(evil)
  t.notMatch(html, /<\/script><script>alert/)
  t.match(html, /&lt;\/script&gt;&lt;script&gt;alert\(1\)/)
})

t.test('target lines round down, as the goals are checked: a miss never reads as the goal', async (t) => {
  const r = compareResults()
  r.targets = [
    { name: 'me: x ≥ 80% of its ceiling twin', goal: '≥ 80%', value: 0.796, met: false },
    { name: 'me: y ≥ 80% of its ceiling twin', goal: '≥ 80%', value: 0.57, met: false },
    { name: 'me: pm2 cluster ≥ 1.5× one production process', goal: '≥ 1.5×', value: 1.497, met: false },
    { name: 'me: z ≥ 80% of its ceiling twin', goal: '≥ 80%', value: 0.8, met: true },
  ]
  t.strictSame(targetLines(r), [
    'MISSED me: x ≥ 80% of its ceiling twin: 79% (goal ≥ 80%)',
    'MISSED me: y ≥ 80% of its ceiling twin: 57% (goal ≥ 80%)',
    'MISSED me: pm2 cluster ≥ 1.5× one production process: 1.49× (goal ≥ 1.5×)',
    'met    me: z ≥ 80% of its ceiling twin: 80% (goal ≥ 80%)',
  ])
})

t.test('a multi-step scenario shows whole-session latency; autocannon\'s 0 ms reads "< 1 ms"', async (t) => {
  const r = compareResults()
  for (const x of r.results.filter((x) => x.scenario === 'session'))
    x.summary!.sessions = { completed: 40, latency: { p50: 850, p90: 1500, p99: 1900, max: 2100, mean: 900 } }
  r.results[0]!.summary!.latency.p50 = 0
  const session = scenarioTable(r, 'session')
  t.same(session.headers.slice(3, 7), ['session p50', 'session p90', 'session p99', 'session max'])
  t.same(session.rows[0]!.slice(3, 7), ['850 ms', '1500 ms', '1900 ms', '2100 ms'])
  const me = scenarioTable(r, 'me')
  t.same(me.headers.slice(3, 7), ['p50', 'p90', 'p99', 'max'])
  t.equal(me.rows[0]![3], '< 1 ms')
  const charts = JSON.parse(/id="runway-data">([\s\S]*?)<\/script>/.exec(renderHtml(r))![1]!) as { latencyTitle: string; p50: number[] }[]
  t.same(
    charts.map((c) => c.latencyTitle),
    ['me: latency percentiles (ms)', 'session: whole-session time, login → logout (ms)'],
  )
  t.same(charts[1]!.p50, [850, 850, 850])
})

t.test('machine line and stage lines read as sentences', async (t) => {
  const r = compareResults()
  r.machine.wrk = 'wrk debian/4.1.0-3+b2 [epoll]'
  t.match(machineLine(r), /; wrk debian\/4\.1\.0-3\+b2 \[epoll\];/, 'the tool is named once')
  t.notMatch(machineLine(r), /wrk wrk/)
  r.machine.wrk = null
  t.match(machineLine(r), /; wrk not installed;/)
  t.equal(stageState({ ...r.stages[0]!, processes: 1 }), 'ready in 500 ms, 1 process')
  t.equal(stageState({ ...r.stages[0]!, processes: 3 }), 'ready in 500 ms, 3 processes')
  t.equal(stageState({ ...r.stages[0]!, status: 'skipped', reason: 'no nginx' }), 'skipped: no nginx')
})

t.test('the chart legend names ceiling twins only when twins ran', async (t) => {
  const titles = (html: string) => (JSON.parse(/id="runway-data">([\s\S]*?)<\/script>/.exec(html)![1]!) as { title: string }[]).map((d) => d.title)
  t.same(titles(renderHtml(doc)), ['me: throughput per stack (grey: ceiling twins)', 'session: throughput per stack'], 'session ran on no twin')
  const r = compareResults()
  r.settings.ceiling = false
  r.stages = r.stages.filter((s) => s.kind !== 'twin')
  r.results = r.results.filter((x) => !x.stage.startsWith('bare-'))
  t.same(titles(renderHtml(r)), ['me: throughput per stack', 'session: throughput per stack'], 'no twin ran, no grey legend')
})

// The layout checked where it is drawn: at 1280 px the widest table a compare run can produce
// (every stage and twin, six-figure rates, second-long latencies, saturation marks) fits the page.
const CHROMIUM = '/usr/bin/chromium'
t.test(
  'report.html at 1280 px: no table is cut, the page does not scroll sideways',
  { skip: existsSync(CHROMIUM) ? false : 'no chromium (apt-get install -y chromium)' },
  async (t) => {
    const r = compareResults()
    const extra: [string, string, 'stage' | 'twin', string?][] = [
      ['nginx', 'nginx → pm2 cluster (HTTP)', 'stage'],
      ['bare-nginx', 'ceiling: nginx → bare cluster (HTTP)', 'twin', 'nginx'],
      ['tls', 'nginx (TLS) → pm2 cluster', 'stage'],
      ['bare-tls', 'ceiling: nginx (TLS) → bare cluster', 'twin', 'tls'],
      ['proxy-tls', 'ceiling: minimal nginx proxy (TLS) → bare cluster', 'twin', 'tls'],
    ]
    for (const [id, label, kind, twinOf] of extra)
      r.stages.push({ id, label, kind, ...(twinOf ? { twinOf } : {}), status: 'ok', explanation: 'x', processes: 12, startupMs: 12345 })
    r.results = r.stages.flatMap((s) =>
      ['me', 'session'].map((sc) => ({
        ...row(s.id, sc, 123456.7, {
          latency: { p50: 1234.5, p90: 12345, p99: 123456, max: 1234567, mean: 1 },
          errors: 123456,
          timeouts: 12345,
          non2xx: 1234567,
          loadgenCpu: 199,
          otherCpu: 123,
          serverCpu: 199,
          serverRssMb: 1234,
        }),
        engine: 'wrk' as const,
        loadgenSaturated: true,
      })),
    )
    r.engine = 'wrk'
    annotate(r)
    const dir = mkdtempSync(join(tmpdir(), 'runway-report-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'report.html'), renderHtml(r))
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    })
    t.teardown(() => browser.close())
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    await page.goto(`file://${join(dir, 'report.html')}`)
    await page.waitForSelector('body[data-charts="drawn"]', { timeout: 15_000 })
    interface Box {
      getBoundingClientRect(): { right: number }
      scrollWidth: number
      clientWidth: number
      parentElement: Box
    }
    const layout = await page.evaluate(() => {
      const d = (globalThis as unknown as { document: { documentElement: Box; querySelectorAll(s: string): Iterable<Box> } }).document
      return {
        page: d.documentElement.scrollWidth,
        tables: [...d.querySelectorAll('table')].map((x) => ({
          right: x.getBoundingClientRect().right,
          box: x.parentElement.getBoundingClientRect().right,
          width: x.scrollWidth,
          room: x.parentElement.clientWidth,
        })),
      }
    })
    t.ok(layout.page <= 1280, `page is ${layout.page} px wide`)
    t.equal(layout.tables.length, 2)
    for (const x of layout.tables) t.ok(x.width <= x.room && x.right <= x.box + 0.5, `table ${x.width} px in ${x.room} px`)
  },
)
