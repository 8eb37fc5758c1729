// Compiles src/ to dist/, compiles typebox into it (scripts/vendor-typebox.mjs), then bundles the
// worker entry (scripts/bundle-worker.mjs). dist/ gets its
// own package.json marking it ESM, because the package root stays CommonJS so that pm2 can
// require() ecosystem.config.js.
import { spawnSync } from 'node:child_process'
import { rmSync, copyFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { bundleWorker } from './bundle-worker.mjs'
import { vendorTypebox } from './vendor-typebox.mjs'

const require = createRequire(import.meta.url)
rmSync('dist', { recursive: true, force: true })
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
if (tsc.status !== 0) {
  process.stderr.write('build: TypeScript reported the errors above; fix them and run `npm run build` again\n')
  process.exit(1)
}
copyFileSync('src/package.json', 'dist/package.json')
await vendorTypebox(process.cwd())
await bundleWorker(process.cwd())
