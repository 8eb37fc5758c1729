// Regenerates the figures block of docs/from-runserver-to-production.md from the drill results
// file the guide names (docs/results/drill/results.json, written by
// `npm run drill -- --out docs/results/drill`). No figure in the guide is typed by hand:
//   npx tsx loadtest/guide-figures.ts          rewrite the block
//   npx tsx loadtest/guide-figures.ts --check  exit 1 when the block is not what the file says
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../src/lib/build.js'
import { guideFigures, replaceFiguresBlock } from '../src/bench/loadtest/drill/guide.js'
import type { DrillResults } from '../src/bench/loadtest/drill/run.js'

const GUIDE = join(ROOT, 'docs', 'from-runserver-to-production.md')
const RESULTS = join(ROOT, 'docs', 'results', 'drill', 'results.json')
const results = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as DrillResults) : null
const before = readFileSync(GUIDE, 'utf8')
const after = replaceFiguresBlock(before, guideFigures(results, 'docs/results/drill/results.json'))
if (process.argv.includes('--check')) {
  if (after !== before) {
    process.stderr.write(`${GUIDE}: the figures block is not what ${RESULTS} says: run \`npx tsx loadtest/guide-figures.ts\`\n`)
    process.exit(1)
  }
} else {
  writeFileSync(GUIDE, after)
  process.stderr.write(`${GUIDE}: figures block rewritten from ${results ? RESULTS : 'no results file'}\n`)
}
