// The per-scenario table every output shares (terminal, report.md, report.html): one place
// decides which figures a reader sees and how they are written.
import type { Latency, ResultRow, Results, RunFigures } from './schema.js'
import { fmtInt, fmtMs, fmtPct, fmtRatio, OTHER_CPU_LIMIT } from './stats.js'

export interface Table {
  scenario: string
  headers: string[]
  rows: string[][]
}

export const stageLabel = (r: Results, id: string) => r.stages.find((s) => s.id === id)?.label ?? id

/** Scenarios in the order they were asked for, then any others present. */
export function scenariosOf(r: Results): string[] {
  return [...new Set([...r.settings.scenarios, ...r.results.map((x) => x.scenario)])].filter((s) => r.results.some((x) => x.scenario === s))
}

export function rowsFor(r: Results, scenario: string): ResultRow[] {
  const order = new Map(r.stages.map((s, i) => [s.id, i]))
  return r.results.filter((x) => x.scenario === scenario).sort((a, b) => (order.get(a.stage) ?? 99) - (order.get(b.stage) ?? 99))
}

/** The latency a reader should see: per whole session for multi-step scenarios, else per request. */
export const latencyOf = (s: RunFigures): Latency => s.sessions?.latency ?? s.latency

export function scenarioTable(r: Results, scenario: string): Table {
  const ceiling = r.settings.ceiling
  const compare = r.tool === 'compare'
  // A multi-step scenario's latency is per whole session (login → logout), when measured so.
  const perSession = rowsFor(r, scenario).some((x) => x.summary?.sessions)
  const lat = perSession ? ['session p50', 'session p90', 'session p99', 'session max'] : ['p50', 'p90', 'p99', 'max']
  const headers = ['stack', 'engine', 'req/s', ...lat, 'errors', 'timeouts', 'non-2xx', 'server CPU', 'server RSS', 'load gen CPU', 'other CPU']
  if (compare) headers.push('× dev')
  if (ceiling) headers.push('of twin')
  const rows = rowsFor(r, scenario).map((x) => {
    const name = stageLabel(r, x.stage)
    // A loadtest target's processes are not watched: its CPU shows up under "other" (if local).
    const remote = r.stages.find((st) => st.id === x.stage)?.kind === 'target'
    const s = x.summary
    const l = s ? latencyOf(s) : undefined
    if (!s || !l || x.status !== 'ok') {
      const cells = [name, x.engine, `${x.status}: ${x.reason ?? ''}`.trim()]
      while (cells.length < headers.length) cells.push('')
      return cells
    }
    const cells = [
      name,
      x.engine,
      fmtInt(s.rps),
      fmtMs(l.p50),
      fmtMs(l.p90),
      fmtMs(l.p99),
      fmtMs(l.max),
      fmtInt(s.errors),
      fmtInt(s.timeouts),
      fmtInt(s.non2xx + s.mismatches),
      remote ? '–' : `${Math.round(s.serverCpu)}%`,
      remote ? '–' : `${Math.round(s.serverRssMb)} MiB`,
      `${Math.round(s.loadgenCpu)}%${x.loadgenSaturated ? ' ⚠' : ''}`,
      `${Math.round(remote ? s.otherCpu + s.serverCpu : s.otherCpu)}%${!remote && s.otherCpu > OTHER_CPU_LIMIT ? ' ⚠' : ''}`,
    ]
    if (compare) cells.push(fmtRatio(x.ratioToDev))
    if (ceiling) cells.push(fmtPct(x.efficiency))
    return cells
  })
  return { scenario, headers, rows }
}

/** Fixed-width text for a terminal. */
export function textTable(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(t.headers), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n')
}

export function markdownTable(t: Table): string {
  const esc = (s: string) => s.replaceAll('|', '\\|')
  return [
    `| ${t.headers.join(' | ')} |`,
    `|${t.headers.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n')
}

export function targetLines(r: Results): string[] {
  return r.targets.map((t) => {
    const mark = t.met === null ? '–' : t.met ? 'met' : 'MISSED'
    // Rounded down, like the goals (≥) they are checked against: 79.6% shows as 79%, never as a
    // passing-looking 80%.
    const down = (v: number, digits: number) => (Math.floor(v * 10 ** digits + 1e-9) / 10 ** digits).toFixed(digits)
    const value =
      t.value === null
        ? 'not measured'
        : t.goal.endsWith('%')
          ? `${down(t.value * 100, 0)}%`
          : t.goal.endsWith('×')
            ? `${down(t.value, 2)}×`
            : t.goal.endsWith(' ms')
              ? `${Math.round(t.value)} ms`
              : String(t.value)
    return `${mark.padEnd(6)} ${t.name}: ${value} (goal ${t.goal})${t.note && t.value !== null ? `: ${t.note}` : ''}`
  })
}

/** The honest summary under every compare report. */
export const DEV_SERVER_VERDICT =
  'The dev server runs the same app on the same event loop, so a single request is about as fast, and on cheap endpoints one production process is ahead mostly by not pretty-printing a log line per request. Where it loses is everything around the request: it uses one core (the cluster uses all of them), a crash takes the service down until someone restarts it, a code change restarts it and drops in-flight requests, there is no zero-downtime reload, no TLS, no buffering of slow clients and no proxy-level rate limiting. Compare each production stage with its ceiling twin rather than with the dev server: the twin shows what that topology can reach on this machine at all.'
