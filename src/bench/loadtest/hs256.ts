// HS256 JWTs with node:crypto alone: the ceiling twin verifies with it (the thinnest honest token
// check: header, HMAC, expiry, type) and `runway compare` mints the twin's tokens with it, with
// the claims the API issues (token_type, exp, iat, jti, user_id, sid).
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url')
const HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))

export function signHs256(payload: Record<string, unknown>, key: string): string {
  const body = `${HEADER}.${b64url(JSON.stringify(payload))}`
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`
}

/** The payload of a valid, unexpired HS256 token; null for anything else. */
export function verifyHs256(token: string, key: string, nowSec = Date.now() / 1000): Record<string, unknown> | null {
  const dot1 = token.indexOf('.')
  const dot2 = token.indexOf('.', dot1 + 1)
  if (dot1 < 0 || dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) return null
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, dot1), 'base64url').toString('utf8')) as { alg?: unknown }
    if (header.alg !== 'HS256') return null
    const expected = createHmac('sha256', key).update(token.slice(0, dot2)).digest()
    const given = Buffer.from(token.slice(dot2 + 1), 'base64url')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
    const payload = JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url').toString('utf8')) as Record<string, unknown>
    if (typeof payload.exp !== 'number' || payload.exp <= nowSec) return null
    return payload
  } catch {
    return null
  }
}

/** An access token shaped like the API's, for a user id, valid for `lifetimeSec`. */
export function mintAccessToken(userId: number, key: string, lifetimeSec = 3600): string {
  const now = Math.floor(Date.now() / 1000)
  const hex = () => randomUUID().replaceAll('-', '')
  return signHs256({ token_type: 'access', exp: now + lifetimeSec, iat: now, jti: hex(), user_id: String(userId), sid: hex() }, key)
}
