// nginx for tests: its binary, or a failure under CI (where .ci/run installs it) and a visible
// skip elsewhere. Never a silent pass.
import type { Test } from 'tap'
import { findNginx } from '../../src/stacks/nginx.js'

export function nginxOrSkip(t: Test): string | null {
  const bin = findNginx()
  if (bin) return bin
  if (process.env.CI === 'true') t.fail('nginx is not installed, and CI=true needs it: apt-get install -y nginx (.ci/run does)')
  else t.plan(0, 'nginx is not installed (apt-get install -y nginx); CI=true makes this a failure')
  return null
}
