// report.md: the same figures as results.json, for a pull request or a wiki page.
import { describeEngine } from './engines.js'
import type { Results, Stage } from './schema.js'
import { DEV_SERVER_VERDICT, markdownTable, scenarioTable, scenariosOf, targetLines } from './table.js'

export function settingsLine(r: Results): string {
  const s = r.settings
  const length = s.amount ? `${s.amount} requests` : `${s.durationSec} s`
  const engine = describeEngine(r.engine)
  return `Engine: ${engine} · ${s.connections} connections · ${length} × ${s.runs} run${s.runs === 1 ? '' : 's'} after ${s.warmupSec} s warm-up (not counted)${s.workers ? ` · ${s.workers} load-generator workers` : ''}. Each figure is the median of the runs; error counts are totals over all runs; req/s counts only 2xx responses with the expected body.`
}

export function machineLine(r: Results): string {
  const m = r.machine
  // Versions as the tools print them may start with the tool's name ("wrk debian/4.1.0 [epoll]").
  const version = (tool: string, v: string | null) => `${tool} ${v === null ? 'not installed' : v.replace(new RegExp(`^${tool}\\s+`, 'i'), '')}`
  return `Machine: ${m.cpuModel} × ${m.cpuCount} CPUs, ${m.memoryMb} MiB, ${m.os}; Node ${m.node}; ${version('nginx', m.nginx)}; ${version('wrk', m.wrk)}; ${version('autocannon', m.autocannon)}; load average at the end ${m.loadAverage.join(' / ')}.`
}

/** "ready in 420 ms, 3 processes", "failed: why", or '' (a stage that was not started by us). */
export function stageState(s: Stage): string {
  if (s.status !== 'ok') return `${s.status}: ${s.reason ?? ''}`.trim()
  if (s.startupMs === undefined) return ''
  const n = s.processes
  return `ready in ${s.startupMs} ms, ${n === undefined ? '? processes' : `${n} process${n === 1 ? '' : 'es'}`}`
}

export function renderMarkdown(r: Results): string {
  const out: string[] = []
  const title = r.tool === 'compare' ? 'runway compare' : `runway loadtest: ${r.stages[0]?.url ?? 'target'}`
  out.push(`# ${title} — ${r.createdAt}`, '', settingsLine(r), '', machineLine(r), '', `Shared CPUs: ${r.machine.sharedWith}.`, '')
  if (r.verdict) out.push(`> **${r.verdict}**`, '')
  if (r.targets.length) out.push('## Targets', '', ...targetLines(r).map((l) => `- ${l}`), '')
  if (r.thresholds.length) out.push('## Thresholds', '', ...r.thresholds.map((t) => `- ${t.pass ? 'pass' : 'FAIL'}: ${t.message}`), '')
  for (const scenario of scenariosOf(r)) {
    out.push(`## ${scenario}`, '', markdownTable(scenarioTable(r, scenario)), '')
  }
  if (r.stages.length > 1 || r.tool === 'compare') {
    out.push('## Why the stacks differ', '')
    for (const s of r.stages) {
      const state = stageState(s)
      out.push(`### ${s.label}${state ? (s.status === 'ok' ? ` (${state})` : ` — ${state}`) : ''}`, '', s.explanation, '')
    }
    if (r.tool === 'compare') out.push('### Where the dev server loses, and where it does not', '', DEV_SERVER_VERDICT, '')
  }
  if (r.warnings.length) out.push('## Warnings', '', ...r.warnings.map((w) => `- ${w}`), '')
  return `${out.join('\n').trimEnd()}\n`
}
