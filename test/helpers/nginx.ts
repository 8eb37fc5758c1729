// nginx for tests: its binary (or a failure under CI, where .ci/run installs it, and a visible skip
// elsewhere; never a silent pass), and the HTTP(S) client the tests use through it.
import type { Test } from 'tap'
import { findNginx } from '../../src/bench/stacks/nginx.js'
import { requestJson, type JsonReply, type JsonRequest } from '../../src/bench/loadtest/http.js'

export function nginxOrSkip(t: Test): string | null {
  const bin = findNginx()
  if (bin) return bin
  if (process.env.CI === 'true') t.fail('nginx is not installed, and CI=true needs it: apt-get install -y nginx (.ci/run does)')
  else t.test('the tests that need nginx', { skip: 'nginx is not installed (apt-get install -y nginx); under CI=true this fails' }, async () => {})
  return null
}

export type RawRequest = JsonRequest
export type RawReply = Omit<JsonReply, 'body'> & { body: any }

/** A request with a chosen source address and CA, a new connection per call (agent: false) so
 *  each request shows its own client address. */
export function request(url: string, o: RawRequest = {}): Promise<RawReply> {
  return requestJson(url, { timeoutMs: 15_000, ...o })
}
