// Bundles the worker entry, dist/api/server.js, in place: what each pm2 worker runs. V8 keeps the
// source text of every module it loads and Node a wrapper, cache entry and path lookups for each:
// from node_modules a worker loads ~370 CommonJS files (Fastify, its plugins, ...). One bundle
// with whitespace and syntax minified (names kept, so stack traces still read) measured 68 MB of
// RSS idle against 79-82 MB for tsc's layout (one production process on SQLite); fully minified,
// 71 MB. Under pm2, idle workers went from 76-79 to 72-73 MB.
// The rest of dist/ (the CLI, the ops tooling) stays as tsc wrote it. Modules loaded with import()
// (the store not chosen, the metrics registry) become chunks under dist/api/chunks/, loaded only
// when used.
import { rmSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Loaded from node_modules as before: native bindings, pg (optional native part, loaded only for
 * PostgreSQL), packages that read their own files at run time (the OpenAPI UI's assets, pino's
 * transport worker used by pino-pretty), and zxcvbn's password list: a CommonJS package loaded
 * with import(), whose named export esbuild's interop loses (a password change answered 500).
 */
const EXTERNAL = ['argon2', 'better-sqlite3', 'pg', 'pino', 'pino-pretty', '@fastify/swagger', '@fastify/swagger-ui', '@zxcvbn-ts/language-common']

export async function bundleWorker(root, distDir = join(root, 'dist')) {
  const { build } = await import('esbuild').catch(() => {
    throw new Error('esbuild is missing: `npm ci` (with dev dependencies) before building')
  })
  await build({
    entryPoints: [join(distDir, 'api', 'server.js')],
    outdir: join(distDir, 'api'),
    allowOverwrite: true,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minifyWhitespace: true,
    minifySyntax: true,
    external: EXTERNAL,
    // No source map: pm2 turns Node's source maps on in every worker, which then reads and keeps
    // the map (+4 MB per worker for one with names only, +8 MB with sources). Names are kept, so
    // a stack trace still says which function threw.
    sourcemap: false,
    // Bundled CommonJS calls require(): give the ES module one.
    banner: { js: "import{createRequire as __runwayRequire}from'node:module';const require=__runwayRequire(import.meta.url);" },
    // distDir may be outside the checkout (stageCopy compiles into a temp dir).
    nodePaths: [join(root, 'node_modules')],
    logLevel: 'warning',
  })
  rmSync(join(distDir, 'api', 'server.js.map'), { force: true }) // tsc's, of the file replaced
}
