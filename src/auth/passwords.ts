// Password hashing with scrypt from node:crypto, run on libuv's thread pool (off the event loop).
// Cost follows OWASP's password storage cheat sheet: N=2^14, r=8, p=5 is one of its equivalent
// scrypt settings (the same CPU work as N=2^17, p=1) but needs 16 MiB per hash instead of 128 MiB,
// so four concurrent logins do not claim half a gigabyte.
// Stored as `scrypt$N$r$p$salt$hash` (base64url), so the cost can be raised later and old hashes
// still verify.
import { scrypt as scryptCb, randomBytes, timingSafeEqual, type ScryptOptions } from 'node:crypto'

export interface ScryptParams {
  N: number
  r: number
  p: number
}
export const OWASP_SCRYPT: ScryptParams = { N: 2 ** 14, r: 8, p: 5 }
const KEY_LEN = 32

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize('NFKC'), salt, KEY_LEN, options, (err, key) => (err ? reject(err) : resolve(key))),
  )
}

export async function hashPassword(password: string, params: ScryptParams = OWASP_SCRYPT): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password, salt, params)
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, N, r, p, salt, hash] = parts as [string, string, string, string, string, string]
  const expected = Buffer.from(hash, 'base64url')
  const key = await scrypt(password, Buffer.from(salt, 'base64url'), { N: Number(N), r: Number(r), p: Number(p) })
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/**
 * Logins for unknown or inactive users verify against this hash, so they cost the same time as a
 * wrong password for a real user: response time does not reveal which usernames exist.
 */
let dummy: Promise<string> | undefined
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'))
  return dummy
}
