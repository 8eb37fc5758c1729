// One place that turns measured rows into a results document and writes it: `runway compare` and
// `runway loadtest` both build theirs here and write results.json, report.md and report.html the
// same way, so a compare result can serve as a loadtest baseline.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { EngineName } from './engines.js'
import type { MeasureSettings } from './measure.js'
import { renderHtml } from './report-html.js'
import { renderMarkdown } from './report-md.js'
import { assertResults, type Machine, type ResultRow, type Results, type Stage, type Threshold } from './schema.js'

export interface ResultsParts {
  tool: Results['tool']
  engine: EngineName
  scenarios: string[]
  settings: MeasureSettings
  ceiling: boolean
  machine: Machine
  stages: Stage[]
  rows: ResultRow[]
  thresholds?: Threshold[]
  warnings?: string[]
}

/** The document, before annotation (targets empty) and before validation. */
export function buildResults(p: ResultsParts): Results {
  const s = p.settings
  return {
    schema: 'runway-loadtest/1',
    tool: p.tool,
    createdAt: new Date().toISOString(),
    engine: p.engine,
    settings: {
      scenarios: p.scenarios,
      connections: s.connections,
      durationSec: s.durationSec,
      ...(s.amount ? { amount: s.amount } : {}),
      warmupSec: s.warmupSec,
      runs: s.runs,
      workers: s.workers,
      ceiling: p.ceiling,
    },
    machine: p.machine,
    stages: p.stages,
    results: p.rows,
    targets: [],
    thresholds: p.thresholds ?? [],
    warnings: p.warnings ?? [],
  }
}

/** A benchmark's JSON (bench:login, probe:rss, bench:nginx) as DIR/results.json, for docs:figures. */
export function writeJsonResults(dir: string, doc: object): void {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(doc, null, 2)}\n`)
}

/** Validates the document and writes results.json, report.md and report.html into dir (created). */
export function writeResults(dir: string, r: Results): void {
  assertResults(r)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(r, null, 2)}\n`)
  writeFileSync(join(dir, 'report.md'), renderMarkdown(r))
  writeFileSync(join(dir, 'report.html'), renderHtml(r))
}
