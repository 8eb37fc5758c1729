// report.html: one self-contained page (opens offline, attachable to a ticket) with Chart.js
// inlined — throughput per stack and latency percentiles per scenario — the tables, the targets
// and the explanation of each stage. The data is embedded as JSON; the page draws it.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { FALLBACK_ENGINE } from './engines.js'
import type { Results } from './schema.js'
import { machineLine, settingsLine, stageState } from './report-md.js'
import { DEV_SERVER_VERDICT, latencyOf, rowsFor, scenarioTable, scenariosOf, stageLabel, targetLines } from './table.js'

let chartJs: string | undefined
/** Chart.js's UMD build from node_modules (its package exports hide dist/, so go via its main). */
export function chartLibrary(): string {
  chartJs ??= readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8')
  return chartJs
}

const esc = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')
/** JSON inside <script>: nothing in it may close the element. */
const scriptSafe = (s: string) => s.replaceAll('</', '<\\/').replaceAll('<!--', '<\\!--')

interface ChartData {
  scenario: string
  /** The throughput chart's title: names the grey bars only when a twin is among them. */
  title: string
  labels: string[]
  twin: boolean[]
  rps: number[]
  latencyTitle: string
  p50: number[]
  p90: number[]
  p99: number[]
}

function chartData(r: Results): ChartData[] {
  return scenariosOf(r).map((scenario) => {
    const rows = rowsFor(r, scenario).filter((x) => x.status === 'ok' && x.summary)
    const twin = rows.map((x) => r.stages.find((s) => s.id === x.stage)?.kind === 'twin')
    return {
      scenario,
      title: `${scenario}: throughput per stack${twin.some(Boolean) ? ' (grey: ceiling twins)' : ''}`,
      labels: rows.map((x) => `${stageLabel(r, x.stage)}${r.engine !== FALLBACK_ENGINE ? ` (${x.engine})` : ''}`),
      twin,
      rps: rows.map((x) => x.summary!.rps),
      latencyTitle: `${scenario}: ${rows.some((x) => x.summary!.sessions) ? 'whole-session time, login → logout' : 'latency percentiles'} (ms)`,
      p50: rows.map((x) => latencyOf(x.summary!).p50),
      p90: rows.map((x) => latencyOf(x.summary!).p90),
      p99: rows.map((x) => latencyOf(x.summary!).p99),
    }
  })
}

const DRAW = `
const data = JSON.parse(document.getElementById('runway-data').textContent);
Chart.defaults.animation = false;
Chart.defaults.font.family = 'system-ui, sans-serif';
for (const d of data) {
  const rps = document.getElementById('rps-' + d.scenario);
  const lat = document.getElementById('lat-' + d.scenario);
  if (!rps || d.labels.length === 0) continue;
  new Chart(rps, {
    type: 'bar',
    data: { labels: d.labels, datasets: [{ label: 'successful req/s (median)', data: d.rps,
      backgroundColor: d.twin.map((t) => (t ? '#b8c4d6' : '#2f6fdf')) }] },
    options: { indexAxis: 'y', responsive: true, maintainAspectRatio: false,
      plugins: { title: { display: true, text: d.title }, legend: { display: false } },
      scales: { x: { beginAtZero: true, title: { display: true, text: 'req/s' } } } },
  });
  new Chart(lat, {
    type: 'bar',
    data: { labels: d.labels, datasets: [
      { label: 'p50', data: d.p50, backgroundColor: '#7fb77e' },
      { label: 'p90', data: d.p90, backgroundColor: '#f2b134' },
      { label: 'p99', data: d.p99, backgroundColor: '#d9534f' } ] },
    options: { indexAxis: 'y', responsive: true, maintainAspectRatio: false,
      plugins: { title: { display: true, text: d.latencyTitle } },
      scales: { x: { beginAtZero: true, title: { display: true, text: 'ms' } } } },
  });
}
document.body.dataset.charts = 'drawn';
`

function table(r: Results, scenario: string): string {
  const t = scenarioTable(r, scenario)
  const head = t.headers.map((h, i) => `<th${i < 2 ? ' class="l"' : ''}>${esc(h)}</th>`).join('')
  // The table's rows are rowsFor's, in order: a row the machine limited is tinted, its reason on hover.
  const rows = rowsFor(r, scenario)
  const body = t.rows
    .map((row, n) => {
      const why = rows[n]?.untrusted
      return `<tr${why ? ` class="untrusted" title="${esc(`not trusted: ${why}`)}"` : ''}>${row.map((c, i) => `<td${i < 2 ? ' class="l"' : ''}>${esc(c)}</td>`).join('')}</tr>`
    })
    .join('\n')
  // In a scroller of its own: a narrow window scrolls the table, never cuts its last column.
  return `<div class="table"><table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`
}

export function renderHtml(r: Results): string {
  const title = r.tool === 'compare' ? 'runway compare' : `runway loadtest: ${r.stages[0]?.url ?? 'target'}`
  const charts = chartData(r)
  const sections = scenariosOf(r)
    .map((scenario) => {
      const n = Math.max(1, charts.find((c) => c.scenario === scenario)?.labels.length ?? 1)
      const h = 60 + n * 34
      return `<section id="scenario-${esc(scenario)}">
<h2>${esc(scenario)}</h2>
<div class="charts">
<div class="chart" style="height:${h}px"><canvas id="rps-${esc(scenario)}" aria-label="${esc(scenario)} throughput"></canvas></div>
<div class="chart" style="height:${h + 40}px"><canvas id="lat-${esc(scenario)}" aria-label="${esc(scenario)} latency"></canvas></div>
</div>
${table(r, scenario)}
</section>`
    })
    .join('\n')
  const stages = r.stages
    .map((s) => {
      const state = stageState(s)
      return `<h3>${esc(s.label)}${state ? ` <small>(${esc(state)})</small>` : ''}</h3><p>${esc(s.explanation)}</p>`
    })
    .join('\n')
  const list = (items: string[], cls = '') => (items.length ? `<ul${cls ? ` class="${cls}"` : ''}>${items.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>` : '')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} — ${esc(r.createdAt)}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1240px; padding: 0 1rem; color: #1d2433; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #dde3ec; } h3 { margin-bottom: .2rem; }
.meta { color: #4a5568; font-size: .92rem; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.chart { position: relative; min-width: 0; }
div.table { overflow-x: auto; margin-top: 1rem; }
table { border-collapse: collapse; width: 100%; font-size: .8rem; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .35rem; border-bottom: 1px solid #e6eaf0; text-align: right; white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; } td.l:first-child { white-space: normal; min-width: 9rem; }
th.l, td.l { text-align: left; } th { background: #f4f6fa; }
.warn li { color: #8a4b00; } tr.untrusted td { background: #fdf1f0; color: #6b4a48; } .verdict { border-left: 4px solid #d9534f; background: #fdf1f0; padding: .6rem .9rem; font-weight: 600; } small { color: #6b7280; font-weight: normal; }
@media (max-width: 800px) { .charts { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="meta">${esc(r.createdAt)}</p>
<p class="meta">${esc(settingsLine(r))}</p>
<p class="meta">${esc(machineLine(r))}</p>
<p class="meta">Shared CPUs: ${esc(r.machine.sharedWith)}.</p>
${r.verdict ? `<p class="verdict">${esc(r.verdict)}</p>` : ''}
${r.targets.length ? `<h2>Targets</h2>${list(targetLines(r))}` : ''}
${r.thresholds.length ? `<h2>Thresholds</h2>${list(r.thresholds.map((t) => `${t.pass ? 'pass' : 'FAIL'}: ${t.message}`))}` : ''}
${r.warnings.length ? `<h2>Warnings</h2>${list(r.warnings, 'warn')}` : ''}
${sections}
${r.tool === 'compare' ? `<h2>Why the stacks differ</h2>\n${stages}\n<h3>Where the dev server loses, and where it does not</h3><p>${esc(DEV_SERVER_VERDICT)}</p>` : ''}
<script type="application/json" id="runway-data">${scriptSafe(JSON.stringify(charts))}</script>
<script>${scriptSafe(chartLibrary())}</script>
<script>${DRAW}</script>
</body>
</html>
`
}
