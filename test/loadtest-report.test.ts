// report.md and report.html from a results document: the tables, the engine named, targets,
// explanations; the HTML self-contained (Chart.js inlined, nothing fetched) and its text escaped.
import t from 'tap'
import { annotate } from '../src/loadtest/compare.js'
import { renderHtml } from '../src/loadtest/report-html.js'
import { renderMarkdown } from '../src/loadtest/report-md.js'
import { scenarioTable, targetLines, textTable } from '../src/loadtest/table.js'
import { compareResults } from './helpers/loadtest.js'

const doc = compareResults()
annotate(doc)

t.test('markdown', async (t) => {
  const md = renderMarkdown(doc)
  t.match(md, /^# runway compare — 2026-11-29T10:00:00.000Z\n/)
  t.match(md, /Engine: autocannon · 50 connections · 10 s × 3 runs after 3 s warm-up \(not counted\)/)
  t.match(md, /median of the runs; error counts are totals/)
  t.match(md, /\| stack \| engine \| req\/s \| p50 \| p90 \| p99 \| max \| errors \| timeouts \| non-2xx \| server CPU \| server RSS \| load gen CPU \| other CPU \| × dev \| of twin \|/)
  t.match(md, /\| production, one process \| autocannon \| 9,000 \| 2 ms \| 4 ms \| 9 ms \| 30 ms \| 0 \| 0 \| 0 \| 95% \| 120 MiB \| 60% \| 3% \| 2\.25× \| 90% \|/)
  t.match(md, /- met {4}me: production, one process ≥ 80% of its ceiling twin: 90% \(goal ≥ 80%\)/)
  t.match(md, /- MISSED me: pm2 cluster \(2 workers\) ≥ 80% of its ceiling twin: 75%/)
  t.match(md, /### dev server \(ready in 500 ms, 1 processes\)\n\nwhy dev <differs>/)
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
  t.same(charts.map((c) => c.scenario), ['me', 'session'])
  t.same(charts[0]!.rps, [4000, 9000, 10000, 15000, 20000])
  t.same(charts[0]!.twin, [false, false, true, false, true])
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
