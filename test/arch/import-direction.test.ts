// The import direction of src/, checked on every file: the API every worker runs depends on nothing
// of the tooling around it, the ops tooling never on the measurement harness, and no library on the
// CLI (the CLI words errors as flags and picks exit codes; libraries throw typed errors).
//   lib   -> (nothing of ours)
//   api   -> lib
//   ops   -> api, lib
//   bench -> ops, api, lib
//   cli   -> anything
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const SRC = resolve(import.meta.dirname, '..', '..', 'src')
const ALLOWED: Record<string, string[]> = {
  lib: ['lib'],
  api: ['api', 'lib'],
  ops: ['ops', 'api', 'lib'],
  bench: ['bench', 'ops', 'api', 'lib'],
  cli: ['cli', 'bench', 'ops', 'api', 'lib'],
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name)
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** The product a file of src/ belongs to: its first folder under src/. */
const productOf = (file: string) => relative(SRC, file).split('/')[0]!

/** Relative specifiers of static imports, re-exports and dynamic import() calls. */
export function relativeImports(text: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm)) out.push(m[2]!)
  return out
}

t.test('every file of src/ sits in one of the products', async (t) => {
  const strays = sources(SRC).filter((f) => !(productOf(f) in ALLOWED))
  t.same(
    strays.map((f) => relative(SRC, f)),
    [],
    `src/ holds only ${Object.keys(ALLOWED).join(', ')}`,
  )
})

t.test('imports go one way: lib <- api <- ops <- bench <- cli', async (t) => {
  const files = sources(SRC)
  const wrong: string[] = []
  let edges = 0
  for (const file of files) {
    const from = productOf(file)
    for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec)
      const to = target.startsWith(SRC + '/') ? productOf(target) : 'outside src/'
      edges++
      if (!ALLOWED[from]?.includes(to)) wrong.push(`${relative(SRC, file)} -> ${spec} (${from} -> ${to})`)
    }
  }
  t.ok(edges > 200, `${edges} imports checked`)
  t.same(wrong, [], 'no import against the direction')
})

t.test('the checker sees what it must', async (t) => {
  t.same(relativeImports(`import { a } from '../cli/command.js'\nexport * from "./x.js"\nconst m = await import('../ops/y.js')\nimport './side.js'`), [
    '../cli/command.js',
    './x.js',
    '../ops/y.js',
    './side.js',
  ])
})
