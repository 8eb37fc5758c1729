// The figures block of the teaching guide (docs/from-runserver-to-production.md), rendered from a
// drill results file, so the guide's numbers are always the file's and never typed by hand
// (one of the blocks loadtest/doc-figures.ts renders: src/loadtest/doc-figures.ts).
import { kinds } from './analyse.js'
import { DRILL_NAMES } from './drills.js'
import type { DrillResults } from './run.js'

export function guideFigures(r: DrillResults | null, file: string): string {
  if (!r) {
    return [
      `No results file yet: \`${file}\` is missing, so this guide quotes no figure. Produce it with`,
      '`npm run drill -- --out docs/results/drill`, then `npm run docs:figures`.',
    ].join('\n')
  }
  const out = [
    `From \`${file}\` (${r.createdAt}; ${r.settings.connections} clients, ${r.settings.instances} pm2 workers, ${r.machine.cpuModel}, ${r.machine.cpuCount} CPUs, shared with the load):`,
    '',
  ]
  for (const d of r.drills) {
    out.push(`**${d.title}** — ${d.durationSec} s of load, fault at ${d.faultAtSec} s`, '')
    out.push('| stage | fault | failed after the fault | by kind | back to full rate | verdict |', '|---|---|---|---|---|---|')
    for (const s of d.stages) {
      if (!s.analysis || !s.fault) {
        out.push(`| ${s.label} | ${s.status}: ${s.reason ?? ''} | | | | |`)
        continue
      }
      const a = s.analysis
      const rest: Record<string, number> = {}
      for (const w of a.windows.slice(1)) for (const [k, n] of Object.entries(w.byKind)) rest[k] = (rest[k] ?? 0) + n
      out.push(
        `| ${s.label} | ${s.fault.action} | ${a.failedAfterFault} | ${kinds(rest)} | ${a.recoverySec === null ? 'never (in the run)' : `${a.recoverySec} s`} | ${(s.verdict ?? '').replaceAll('|', '\\|')} |`,
      )
    }
    out.push('')
  }
  const missing = DRILL_NAMES.filter((n) => !r.drills.some((d) => d.name === n))
  if (missing.length) out.push(`Not in this file, so no figures here: ${missing.join(', ')} (run them with \`npm run drill -- ${missing.join(' ')}\`).`)
  return out.join('\n').trimEnd()
}
