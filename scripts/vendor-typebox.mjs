// Compiles typebox (the schema builder every route and the config use) into one file,
// dist/vendor/typebox.js, and points the compiled code at it. Loaded from node_modules, typebox is
// ~680 ES modules: ~15 MB of RSS and a few hundred ms of start-up in every worker. Only the
// exports the code uses are vendored (`Type`, `Value`); an import of anything else from typebox
// fails the build here, rather than loading two copies at run time.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const EXPORTS = { typebox: ['Type'], 'typebox/value': ['Value'] }
const IMPORT = /import\s*\{([^}]*)\}\s*from\s*'(typebox(?:\/[a-z]+)?)'/g

function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === 'vendor' ? [] : jsFiles(join(dir, e.name))) : e.name.endsWith('.js') ? [join(dir, e.name)] : [],
  )
}

export async function vendorTypebox(root, distDir = join(root, 'dist')) {
  const { build } = await import('esbuild').catch(() => {
    throw new Error('esbuild is missing: `npm ci` (with dev dependencies) before building')
  })
  const vendored = join(distDir, 'vendor', 'typebox.js')
  await build({
    stdin: {
      contents: Object.entries(EXPORTS)
        .map(([from, names]) => `export { ${names.join(', ')} } from '${from}'`)
        .join('\n'),
      resolveDir: root,
      loader: 'js',
    },
    outfile: vendored,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // V8 keeps every module's source text in the heap: minified, typebox's is ~40% of its size.
    minify: true,
    // distDir may be outside the checkout (stageCopy compiles into a temp dir).
    nodePaths: [join(root, 'node_modules')],
    logLevel: 'warning',
  })
  for (const file of jsFiles(distDir)) {
    const text = readFileSync(file, 'utf8')
    if (!text.includes("'typebox")) continue
    let target = relative(dirname(file), vendored)
    if (!target.startsWith('.')) target = `./${target}`
    const out = text.replace(IMPORT, (_, names, from) => {
      const wanted = names
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean)
      const missing = wanted.filter((n) => !EXPORTS[from]?.includes(n))
      if (missing.length) throw new Error(`${file} imports ${missing.join(', ')} from ${from}: add it to EXPORTS in scripts/vendor-typebox.mjs`)
      return `import {${names}} from '${target}'`
    })
    if (/from\s*'typebox/.test(out)) throw new Error(`${file} imports typebox in a form scripts/vendor-typebox.mjs does not rewrite`)
    writeFileSync(file, out)
  }
}
