// Regenerates every measured-figures block in the docs from the results file committed beside it
// (the blocks and their files: src/loadtest/doc-figures.ts). No figure in the docs is typed by hand:
//   npm run docs:figures            rewrite the blocks
//   npm run docs:figures -- --check exit 1 when a block is not what its results file says
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BLOCKS, missingResults, replaceBlock } from '../src/bench/loadtest/doc-figures.js'
import { ROOT } from '../src/lib/build.js'

const check = process.argv.includes('--check')
const stale: string[] = []
const texts = new Map<string, string>()
for (const b of BLOCKS) {
  const path = join(ROOT, b.doc)
  const before = texts.get(path) ?? readFileSync(path, 'utf8')
  const file = join(ROOT, b.results)
  const block = existsSync(file) ? b.render(JSON.parse(readFileSync(file, 'utf8')), b.results) : missingResults(b.results, b.produce)
  const after = replaceBlock(before, b.id, block)
  if (after !== before) stale.push(`${b.doc} ${b.id}`)
  texts.set(path, after)
}
if (check) {
  if (stale.length) {
    process.stderr.write(`not what their results files say: ${stale.join(', ')}: run \`npm run docs:figures\`\n`)
    process.exit(1)
  }
} else {
  for (const [path, text] of texts) writeFileSync(path, text)
  process.stderr.write(`${BLOCKS.length} figures blocks rendered; ${stale.length ? `rewritten: ${stale.join(', ')}` : 'all were current'}\n`)
}
