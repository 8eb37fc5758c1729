// Compiles src/ to dist/. dist/ gets its own package.json marking it ESM, because the
// package root stays CommonJS so that pm2 can require() ecosystem.config.js.
import { execFileSync } from 'node:child_process'
import { rmSync, copyFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
rmSync('dist', { recursive: true, force: true })
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
copyFileSync('src/package.json', 'dist/package.json')
