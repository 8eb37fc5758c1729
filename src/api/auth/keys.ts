// The key ring: what signs new tokens and what verifies old ones. For HS* it is one shared secret.
// For RS256/ES256/EdDSA the newest private key signs (its kid in the header) and every listed public
// key still verifies, so a key rotation does not log anyone out; /.well-known/jwks.json lists them.
import { createPrivateKey, createPublicKey, randomBytes, createHash, type KeyObject, type JsonWebKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ConfigError, type Config } from '../config.js'

export interface KeyRing {
  algorithm: Config['jwt']['algorithm']
  /** Secret (HS*) or PEM private key. */
  signingKey: string
  /** kid of the signing key (asymmetric only). */
  signingKid?: string
  /** kid → PEM public key (asymmetric) ; for HS* a single '' → secret entry. */
  verifyKeys: Map<string, string>
  jwks: JsonWebKey[]
}

const KEY_TYPES: Record<string, string[]> = { RS256: ['rsa'], ES256: ['ec'], EdDSA: ['ed25519', 'ed448'] }

/** RFC 7638 thumbprint: a kid every party computes the same way from the key itself. */
export function thumbprint(jwk: JsonWebKey): string {
  const members: Record<string, string[]> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] }
  const names = members[jwk.kty as string] ?? []
  const canonical = JSON.stringify(Object.fromEntries(names.map((n) => [n, jwk[n]])))
  return createHash('sha256').update(canonical).digest('base64url')
}

function readKeyFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`${what}=${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): point it at a PEM file`)
  }
}

function publicEntry(key: KeyObject, algorithm: string, file: string): { kid: string; pem: string; jwk: JsonWebKey } {
  const type = key.asymmetricKeyType ?? ''
  if (!KEY_TYPES[algorithm]?.includes(type)) {
    throw new ConfigError(`${file} holds a ${type || 'non-asymmetric'} key, which cannot be used with JWT_ALGORITHM=${algorithm}`)
  }
  if (algorithm === 'ES256' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ConfigError(`${file}: ES256 needs a P-256 key, not ${key.asymmetricKeyDetails?.namedCurve}`)
  }
  const jwk = key.export({ format: 'jwk' })
  const kid = thumbprint(jwk)
  return { kid, pem: key.export({ format: 'pem', type: 'spki' }).toString(), jwk: { ...jwk, kid, alg: algorithm, use: 'sig' } }
}

export function loadKeyRing(jwt: Config['jwt']): KeyRing {
  const { algorithm } = jwt
  if (algorithm.startsWith('HS')) {
    // Outside production (config refuses it there) a missing key becomes a per-process random one.
    const secret = jwt.signingKey || randomBytes(48).toString('base64url')
    return { algorithm, signingKey: secret, verifyKeys: new Map([['', secret]]), jwks: [] }
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(readKeyFile(jwt.privateKeyFile, 'JWT_PRIVATE_KEY_FILE'))
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(`JWT_PRIVATE_KEY_FILE=${jwt.privateKeyFile} is not a PEM private key`)
  }
  const signing = publicEntry(createPublicKey(privateKey), algorithm, jwt.privateKeyFile)
  const verifyKeys = new Map([[signing.kid, signing.pem]])
  const jwks = [signing.jwk]
  for (const file of jwt.publicKeyFiles) {
    let key: KeyObject
    try {
      key = createPublicKey(readKeyFile(file, 'JWT_PUBLIC_KEY_FILE'))
    } catch (err) {
      if (err instanceof ConfigError) throw err
      throw new ConfigError(`JWT_PUBLIC_KEY_FILE entry ${file} is not a PEM public key`)
    }
    const entry = publicEntry(key, algorithm, file)
    if (verifyKeys.has(entry.kid)) continue
    verifyKeys.set(entry.kid, entry.pem)
    jwks.push(entry.jwk)
  }
  return {
    algorithm,
    signingKey: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    signingKid: signing.kid,
    verifyKeys,
    jwks,
  }
}
