// Bundles the compiled worker entry (dist/server.js) into one file, in place. Each pm2 worker
// starts from it: one module instead of ~40 compiled files plus ~680 ESM files of typebox (the
// schema builder), which cost a worker ~15 MB of RSS and a few hundred ms of start-up. The other
// packages stay external (native bindings, lazily loaded ones such as pg and the OpenAPI UI), and
// the rest of dist/ (the CLI) is left as tsc wrote it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** Packages compiled into the worker bundle; every other dependency is loaded from node_modules. */
const INLINED = new Set(['typebox'])

export async function bundleServer(root, distDir = join(root, 'dist')) {
  const { build } = await import('esbuild').catch(() => {
    throw new Error('esbuild is missing: `npm ci` (with dev dependencies) before building')
  })
  const { dependencies } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  await build({
    entryPoints: [join(distDir, 'server.js')],
    outdir: distDir,
    allowOverwrite: true,
    bundle: true,
    // Modules imported with import() (the store not chosen, the OpenAPI plugins) become chunks
    // loaded on demand, with the packages they import.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: Object.keys(dependencies).filter((d) => !INLINED.has(d)),
    sourcemap: 'linked',
    logLevel: 'warning',
  })
}
