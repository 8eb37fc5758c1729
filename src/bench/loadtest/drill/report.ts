// report.md and report.html of `runway drill`: per drill, the verdict per stage in plain words,
// the before / during / after figures, and (HTML) a timeline per stage — successes and failures
// per second, p99 latency, the fault marked — drawn offline by the inlined Chart.js.
import { chartLibrary } from '../report-html.js'
import { kinds } from './analyse.js'
import type { DrillResults, DrillStageResult } from './run.js'

const esc = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')
const scriptSafe = (s: string) => s.replaceAll('</', '<\\/').replaceAll('<!--', '<\\!--')

function stateLine(s: DrillStageResult): string {
  if (s.status === 'skipped') return `${s.label}: skipped, ${s.reason ?? ''}`
  if (!s.analysis) return `${s.label}: failed, ${s.reason ?? ''}`
  return `${s.verdict ?? ''}${s.status === 'failed' ? ` (FAILED: ${s.reason})` : ''}`
}

function windowRows(s: DrillStageResult): string[][] {
  return (s.analysis?.windows ?? []).map((w) => [
    w.name,
    `${w.fromSec.toFixed(1)}–${w.toSec.toFixed(1)} s`,
    String(w.ok),
    String(w.rate),
    String(w.failed),
    kinds(w.byKind),
    `${w.p50} ms`,
    `${w.p99} ms`,
  ])
}
const WINDOW_HEAD = ['window', 'time', 'ok', 'ok/s', 'failed', 'failures by kind', 'p50', 'p99']

export function renderDrillMarkdown(r: DrillResults): string {
  const out = [
    `# runway drill — ${r.createdAt}`,
    '',
    `${r.settings.connections} clients, ${r.settings.timeoutMs} ms request timeout, a client whose connection fails retries after ${r.settings.retryPauseMs} ms; ${r.settings.instances} pm2 workers. ${r.machine.cpuModel}, ${r.machine.cpuCount} CPUs; ${r.machine.sharedWith}.`,
  ]
  for (const d of r.drills) {
    out.push(
      '',
      `## ${d.title}`,
      '',
      `${d.durationSec} s of load, the fault at ${d.faultAtSec} s, "during" = the ${d.duringSec} s after it.`,
      '',
      ...d.stages.map((s) => `- ${stateLine(s)}`),
    )
    for (const s of d.stages.filter((x) => x.analysis)) {
      out.push(
        '',
        `### ${s.label}`,
        '',
        `Fault at ${(s.fault!.atMs / 1000).toFixed(1)} s: ${s.fault!.action} — ${s.fault!.detail}${s.settled ? `; afterwards ${s.settled}` : ''}.`,
        '',
      )
      out.push(`| ${WINDOW_HEAD.join(' | ')} |`, `|${WINDOW_HEAD.map(() => '---').join('|')}|`, ...windowRows(s).map((row) => `| ${row.join(' | ')} |`))
    }
    out.push('', `Why: ${d.explanation}`)
  }
  if (r.warnings.length) out.push('', '## Warnings', '', ...r.warnings.map((w) => `- ${w}`))
  return `${out.join('\n')}\n`
}

interface Timeline {
  id: string
  title: string
  fault: number
  labels: number[]
  ok: number[]
  failed: number[]
  p99: number[]
}

function timelines(r: DrillResults): Timeline[] {
  return r.drills.flatMap((d) =>
    d.stages
      .filter((s) => s.analysis && s.fault)
      .map((s) => ({
        id: `${d.name}-${s.stage}`,
        title: `${d.name} · ${s.label}`,
        fault: Math.round(s.fault!.atMs / 100) / 10,
        labels: s.analysis!.timeline.map((x) => x.t + 0.5), // a bar in the middle of its second
        ok: s.analysis!.timeline.map((x) => x.ok),
        failed: s.analysis!.timeline.map((x) => Object.values(x.failed).reduce((a, b) => a + b, 0)),
        p99: s.analysis!.timeline.map((x) => x.p99),
      })),
  )
}

// The fault is a vertical red line drawn by a tiny plugin (no annotation plugin needed offline).
const DRAW = `
const data = JSON.parse(document.getElementById('drill-data').textContent);
Chart.defaults.animation = false;
Chart.defaults.font.family = 'system-ui, sans-serif';
const faultLine = { id: 'fault', afterDatasetsDraw(chart, _args, opts) {
  const x = chart.scales.x.getPixelForValue(opts.at); const { top, bottom } = chart.chartArea; const c = chart.ctx;
  c.save(); c.strokeStyle = '#c0392b'; c.lineWidth = 2; c.setLineDash([6, 4]); c.beginPath(); c.moveTo(x, top); c.lineTo(x, bottom); c.stroke();
  c.fillStyle = '#c0392b'; c.fillText('fault', x + 4, top + 12); c.restore(); } };
let drawn = 0;
for (const d of data) {
  const el = document.getElementById('timeline-' + d.id);
  if (!el) continue;
  new Chart(el, {
    type: 'bar',
    data: { labels: d.labels, datasets: [
      { label: 'successes/s', data: d.ok, backgroundColor: '#2f6fdf', stack: 'n', yAxisID: 'y' },
      { label: 'failures/s', data: d.failed, backgroundColor: '#d9534f', stack: 'n', yAxisID: 'y' },
      { label: 'p99 latency (ms)', data: d.p99, type: 'line', borderColor: '#f2b134', backgroundColor: '#f2b134', yAxisID: 'ms', pointRadius: 2 } ] },
    options: { responsive: true, maintainAspectRatio: false,
      plugins: { title: { display: true, text: d.title }, fault: { at: d.fault } },
      scales: { x: { type: 'linear', min: 0, max: d.labels.length, title: { display: true, text: 'seconds' }, offset: false },
        y: { beginAtZero: true, stacked: true, title: { display: true, text: 'requests/s' } },
        ms: { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'p99 ms' } } } },
    plugins: [faultLine],
  });
  drawn++;
}
document.body.dataset.charts = String(drawn);
`

export function renderDrillHtml(r: DrillResults): string {
  const tl = timelines(r)
  const table = (s: DrillStageResult) =>
    `<table><thead><tr>${WINDOW_HEAD.map((h, i) => `<th${i < 2 ? ' class="l"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>${windowRows(s)
      .map((row) => `<tr>${row.map((c, i) => `<td${i < 2 || i === 5 ? ' class="l"' : ''}>${esc(c)}</td>`).join('')}</tr>`)
      .join('')}</tbody></table>`
  const sections = r.drills
    .map(
      (d) => `<section id="drill-${esc(d.name)}">
<h2>${esc(d.title)}</h2>
<p class="meta">${d.durationSec} s of load, the fault at ${d.faultAtSec} s, "during" = the ${d.duringSec} s after it.</p>
<ul class="verdicts">${d.stages.map((s) => `<li class="${s.status}">${esc(stateLine(s))}</li>`).join('')}</ul>
<p>${esc(d.explanation)}</p>
${d.stages
  .filter((s) => s.analysis && s.fault)
  .map(
    (s) => `<h3>${esc(s.label)}</h3>
<p class="meta">Fault at ${(s.fault!.atMs / 1000).toFixed(1)} s: ${esc(s.fault!.action)} — ${esc(s.fault!.detail)}${s.settled ? `; afterwards ${esc(s.settled)}` : ''}.</p>
<div class="chart"><canvas id="timeline-${esc(`${d.name}-${s.stage}`)}" aria-label="${esc(`${d.name} ${s.label}`)} timeline"></canvas></div>
${table(s)}`,
  )
  .join('\n')}
</section>`,
    )
    .join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>runway drill — ${esc(r.createdAt)}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1150px; padding: 0 1rem; color: #1d2433; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #dde3ec; } h3 { margin-bottom: .2rem; }
.meta { color: #4a5568; font-size: .92rem; }
.chart { position: relative; height: 260px; }
table { border-collapse: collapse; width: 100%; margin-top: .6rem; font-size: .85rem; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .45rem; border-bottom: 1px solid #e6eaf0; text-align: right; white-space: nowrap; }
th.l, td.l { text-align: left; } th { background: #f4f6fa; }
.verdicts li.failed { color: #a12622; } .verdicts li.skipped { color: #6b7280; } .warn li { color: #8a4b00; }
</style>
</head>
<body>
<h1>runway drill</h1>
<p class="meta">${esc(r.createdAt)} · ${r.settings.connections} clients, ${r.settings.timeoutMs} ms request timeout, retry after ${r.settings.retryPauseMs} ms on a failed connection · ${r.settings.instances} pm2 workers</p>
<p class="meta">${esc(`${r.machine.cpuModel}, ${r.machine.cpuCount} CPUs; ${r.machine.sharedWith}`)}.</p>
${r.warnings.length ? `<h2>Warnings</h2><ul class="warn">${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}
${sections}
<script type="application/json" id="drill-data">${scriptSafe(JSON.stringify(tl))}</script>
<script>${scriptSafe(chartLibrary())}</script>
<script>${DRAW}</script>
</body>
</html>
`
}
