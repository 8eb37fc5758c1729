// A small JSON request over http or https (with a private CA), for what happens around a load
// run: logging in to get tokens, checking a target answers. Not on the measured path.
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'

export interface JsonReply {
  status: number
  body: unknown
  text: string
}

export function requestJson(
  url: string,
  o: { method?: string; json?: unknown; headers?: Record<string, string>; ca?: string | Buffer; timeoutMs?: number } = {},
): Promise<JsonReply> {
  const target = new URL(url)
  const body = o.json === undefined ? undefined : JSON.stringify(o.json)
  const headers: Record<string, string> = { accept: 'application/json', ...o.headers }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      { method: o.method ?? (body === undefined ? 'GET' : 'POST'), headers, ...(o.ca ? { ca: o.ca } : {}), timeout: o.timeoutMs ?? 10_000, agent: false },
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
          resolve({ status: res.statusCode ?? 0, body: parsed, text })
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer from ${target.origin} within ${o.timeoutMs ?? 10_000} ms`)))
    req.on('error', reject)
    req.end(body)
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
