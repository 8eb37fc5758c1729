#!/usr/bin/env node
// `runway` entry point. In a checkout (src/ and tsx present) it runs the TypeScript sources, so
// the CLI never lags behind the code; in a deployed release (dist/ only) it runs compiled code.

const { existsSync } = require('node:fs')
const { join } = require('node:path')
const { pathToFileURL } = require('node:url')

const root = join(__dirname, '..')
const source = join(root, 'src', 'cli', 'main.ts')
const compiled = join(root, 'dist', 'cli', 'main.js')

async function start() {
  let tsx = null
  if (existsSync(source)) tsx = await import('tsx/esm/api').catch(() => null)
  if (tsx) {
    tsx.register()
    await import(pathToFileURL(source).href)
  } else if (existsSync(compiled)) {
    await import(pathToFileURL(compiled).href)
  } else {
    process.stderr.write('runway: neither src/ with tsx nor dist/ found: run `npm install` (and `npm run build` for a release)\n')
    process.exitCode = 1
  }
}
start()
