// Preload for a process under test (NODE_OPTIONS=--import=<this file>): appends the URL of every
// ES module (and CommonJS package entry imported from ESM) the process loads to
// $RUNWAY_MODULE_LOG, so a test can tell what a worker loaded at start.
import { register } from 'node:module'

register(
  'data:text/javascript,' +
    encodeURIComponent(`
import { appendFileSync } from 'node:fs'
export async function load(url, context, next) {
  if (process.env.RUNWAY_MODULE_LOG) appendFileSync(process.env.RUNWAY_MODULE_LOG, url + '\\n')
  return next(url, context)
}`),
)
