// nginx for tests: its binary (or a failure under CI, where .ci/run installs it, and a visible skip
// elsewhere; never a silent pass), and a raw HTTP(S) client with a chosen source address and CA.
import http from 'node:http'
import https from 'node:https'
import type { Test } from 'tap'
import { findNginx } from '../../src/stacks/nginx.js'

export function nginxOrSkip(t: Test): string | null {
  const bin = findNginx()
  if (bin) return bin
  if (process.env.CI === 'true') t.fail('nginx is not installed, and CI=true needs it: apt-get install -y nginx (.ci/run does)')
  else t.test('the tests that need nginx', { skip: 'nginx is not installed (apt-get install -y nginx); under CI=true this fails' }, async () => {})
  return null
}

export interface RawReply {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
  body: any
}

export interface RawRequest {
  method?: string
  headers?: Record<string, string>
  json?: unknown
  raw?: string | Buffer
  /** Trust this CA (PEM) for https URLs. */
  ca?: Buffer | string
  /** SNI name for https (an IP address URL sends none). */
  servername?: string
  /** Source address, e.g. 127.0.0.2, so the client is not the proxy's own address. */
  localAddress?: string
  timeoutMs?: number
}

/** node:http(s) request with a chosen source address and CA; resolves with the parsed body.
 *  A new connection per call (agent: false) so each request shows its own client address. */
export function request(url: string, o: RawRequest = {}): Promise<RawReply> {
  const target = new URL(url)
  const headers: Record<string, string> = { ...o.headers }
  let payload: string | Buffer | undefined = o.raw
  if (o.json !== undefined) {
    payload = JSON.stringify(o.json)
    headers['content-type'] ??= 'application/json'
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload))
  const lib = target.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method: o.method ?? (payload === undefined ? 'GET' : 'POST'),
        headers,
        agent: false,
        localAddress: o.localAddress,
        ...(target.protocol === 'https:' ? { ca: o.ca, servername: o.servername } : {}),
        timeout: o.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let body: unknown
          try {
            body = text ? JSON.parse(text) : undefined
          } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body })
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`timeout after ${o.timeoutMs ?? 15_000} ms`)))
    req.on('error', reject)
    req.end(payload)
  })
}
