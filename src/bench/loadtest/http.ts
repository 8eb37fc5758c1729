// A small JSON request over http or https (with a private CA), for what happens around a load
// run: logging in to get tokens, checking a target answers. Not on the measured path.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'

export interface JsonReply {
  status: number
  headers: IncomingHttpHeaders
  body: unknown
  text: string
}

export interface JsonRequest {
  method?: string
  headers?: Record<string, string>
  /** Sent as JSON; or `raw`, sent as it is. */
  json?: unknown
  raw?: string | Buffer
  /** Trust this CA (PEM) for https URLs. */
  ca?: string | Buffer
  /** SNI name for https (an IP address URL sends none). */
  servername?: string
  /** Source address, e.g. 127.0.0.2. */
  localAddress?: string
  timeoutMs?: number
}

/** One request on a new connection (agent: false); resolves with the body parsed when it is JSON. */
export function requestJson(url: string, o: JsonRequest = {}): Promise<JsonReply> {
  const target = new URL(url)
  const timeoutMs = o.timeoutMs ?? 10_000
  const headers: Record<string, string> = { ...o.headers }
  let payload = o.raw
  if (o.json !== undefined) {
    payload = JSON.stringify(o.json)
    headers['content-type'] ??= 'application/json'
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload))
  const https = target.protocol === 'https:'
  const send = https ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: o.method ?? (payload === undefined ? 'GET' : 'POST'),
        headers,
        agent: false,
        localAddress: o.localAddress,
        ...(https ? { ca: o.ca, servername: o.servername } : {}),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed: unknown
          try {
            parsed = text ? JSON.parse(text) : undefined
          } catch {
            parsed = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text })
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer from ${target.origin} within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(payload)
  })
}

/** Logs in and returns the token pair; the error names the status, never the password. */
export async function obtainTokens(baseUrl: string, username: string, password: string, ca?: string | Buffer): Promise<{ access: string; refresh: string }> {
  const r = await requestJson(new URL('/api/token/', baseUrl).href, { json: { username, password }, ca })
  const b = r.body as { access?: unknown; refresh?: unknown } | undefined
  if (r.status !== 200 || typeof b?.access !== 'string' || typeof b.refresh !== 'string') {
    const detail = (r.body as { detail?: unknown } | undefined)?.detail
    throw new Error(`login as ${JSON.stringify(username)} at ${baseUrl} answered ${r.status}${typeof detail === 'string' ? ` (${detail})` : ''}`)
  }
  return { access: b.access, refresh: b.refresh }
}
