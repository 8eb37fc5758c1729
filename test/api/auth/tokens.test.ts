// Our tokens as an independent JWT library (jose) sees them, and forgeries it can make.
import t from 'tap'
import { createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, UnsecuredJWT } from 'jose'
import { call, createUser, login, SIGNING_KEY, startApp } from '../../helpers/app.js'

const secret = createSecretKey(Buffer.from(SIGNING_KEY))

t.test('HS256 tokens verify with jose and carry simplejwt claims', async (t) => {
  const { url, store } = await startApp(t)
  const alice = await createUser(store)
  const pair = await login(url)
  const access = await jwtVerify(pair.access, secret, { algorithms: ['HS256'] })
  t.strictSame(access.protectedHeader, { alg: 'HS256', typ: 'JWT' })
  t.equal(access.payload.token_type, 'access')
  t.equal(access.payload.user_id, String(alice.id))
  t.match(access.payload.jti, /^[0-9a-f]{32}$/)
  t.equal(access.payload.exp! - access.payload.iat!, 300, 'access lifetime 5 min')
  const refresh = await jwtVerify(pair.refresh, secret, { algorithms: ['HS256'] })
  t.equal(refresh.payload.token_type, 'refresh')
  t.equal(refresh.payload.exp! - refresh.payload.iat!, 86400, 'refresh lifetime 1 day')
  t.not(refresh.payload.jti, access.payload.jti)
  t.equal(refresh.payload.sid, access.payload.sid, 'both belong to one login session')
  t.notOk(access.payload.iss, 'no iss unless configured')
})

t.test('issuer, audience, lifetimes and user id claim are configurable', async (t) => {
  const { url, store } = await startApp(t, {
    JWT_ISSUER: 'https://auth.example',
    JWT_AUDIENCE: 'api',
    ACCESS_TOKEN_LIFETIME: '90s',
    USER_ID_CLAIM: 'uid',
  })
  await createUser(store)
  const pair = await login(url)
  const { payload } = await jwtVerify(pair.access, secret, { issuer: 'https://auth.example', audience: 'api' })
  t.equal(payload.exp! - payload.iat!, 90)
  t.equal(payload.uid, '1')
  t.equal((await call(url, '/api/me/', { token: pair.access })).status, 200)
  // A token without the configured issuer/audience is refused.
  const now = Math.floor(Date.now() / 1000)
  const foreign = await new SignJWT({ token_type: 'access', jti: 'a'.repeat(32), sid: payload.sid, uid: '1', exp: now + 60, iat: now })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(secret)
  t.equal((await call(url, '/api/me/', { token: foreign })).status, 401)
})

t.test('the token type is checked on every use, also for a token already verified once (cached)', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const pair = await login(url)
  const wrongType = {
    detail: 'Given token not valid for any token type',
    code: 'token_not_valid',
    messages: [{ token_class: 'AccessToken', token_type: 'access', message: 'Token has wrong type' }],
  }
  // /api/token/verify/ accepts either type, so the refresh token is now known to be valid.
  t.equal((await call(url, '/api/token/verify/', { json: { token: pair.refresh } })).status, 200, 'the refresh token verifies')
  for (const attempt of ['after verify', 'again']) {
    const me = await call(url, '/api/me/', { token: pair.refresh })
    t.equal(me.status, 401, `refresh token as a Bearer access token (${attempt})`)
    t.strictSame(me.body, wrongType, attempt)
  }
  // And the other way round: an access token that just authenticated /api/me/ is no refresh token.
  t.equal((await call(url, '/api/me/', { token: pair.access })).status, 200)
  for (const path of ['/api/token/refresh/', '/api/token/blacklist/']) {
    const r = await call(url, path, { json: { refresh: pair.access } })
    t.equal(r.status, 401, `access token on ${path}`)
    t.strictSame(r.body, { detail: 'Token has wrong type', code: 'token_not_valid' }, path)
  }
  t.equal((await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })).status, 200, 'both tokens still work for their own purpose')
})

type Alg = 'HS256' | 'RS256' | 'ES256' | 'EdDSA'
const attackerKeys = {
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  ES256: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey,
  EdDSA: generateKeyPairSync('ed25519').privateKey,
}

/**
 * The same forgeries against every kind of server: HS256 (shared secret), RS256, ES256 and EdDSA
 * (key files, published in JWKS), and each asymmetric one also with a rotation key ring (two
 * public keys: the token's kid picks the key, another code path).
 */
const servers: Array<{ name: string; alg: Alg; ring?: boolean }> = [
  { name: 'HS256', alg: 'HS256' },
  ...(['RS256', 'ES256', 'EdDSA'] as const).flatMap((alg) => [
    { name: alg, alg },
    { name: `${alg} with a rotation key ring`, alg, ring: true },
  ]),
]

for (const server of servers) {
  t.test(`forged tokens are rejected everywhere: ${server.name} server`, async (t) => {
    const { alg } = server
    let env: Record<string, string> = {}
    let serverKey: KeyObject = secret
    if (alg !== 'HS256') {
      const dir = mkdtempSync(join(tmpdir(), 'runway-keys-'))
      t.teardown(() => rmSync(dir, { recursive: true, force: true }))
      const signing = keyFiles(dir, alg, 'signing')
      env = { JWT_ALGORITHM: alg, JWT_PRIVATE_KEY_FILE: signing.key }
      if (server.ring) env.JWT_PUBLIC_KEY_FILE = keyFiles(dir, alg, 'old').pub
      serverKey = createPrivateKey(readFileSync(signing.key))
    }
    const { url, store } = await startApp(t, env)
    await createUser(store)
    const bob = await createUser(store, 'bob')
    const pair = await login(url)
    t.equal((await call(url, '/api/me/', { token: pair.access })).status, 200, 'a genuine token works (so every 401 below is a refusal)')

    const header = decodeProtectedHeader(pair.access)
    t.equal(header.alg, alg)
    const kid = header.kid
    // What an attacker has: the public keys, from JWKS.
    const jwks = (await call(url, '/.well-known/jwks.json')).body.keys as Array<JsonWebKey & { kid: string }>
    t.equal(jwks.length, alg === 'HS256' ? 0 : server.ring ? 2 : 1)
    const oldKid = jwks.find((k) => k.kid !== kid)?.kid
    const publicPems = jwks.map((jwk) => createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString())

    const payload = decodeJwt(pair.access)
    const now = Math.floor(Date.now() / 1000)
    const claims = { ...payload, exp: now + 300 }
    const sign = (c: typeof payload, h: { alg: string; kid?: string }, key: KeyObject) => new SignJWT(c).setProtectedHeader({ typ: 'JWT', ...h }).sign(key)
    const [h, p, s] = pair.access.split('.') as [string, string, string]
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const otherSignature = pair.refresh.split('.')[2]!
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`

    const forgeries: Record<string, string | Promise<string>> = {
      'alg none': new UnsecuredJWT(claims).encode(),
      'alg none with the original signature': `${b64({ alg: 'none', typ: 'JWT', kid })}.${p}.${s}`,
      'alg none, lower-case': `${b64({ alg: 'nOnE', typ: 'JWT' })}.${p}.`,
      'HS256 with another secret': sign(claims, { alg: 'HS256', kid }, createSecretKey(Buffer.from('x'.repeat(48)))),
      'altered payload (another user)': `${h}.${b64({ ...payload, user_id: String(bob.id) })}.${s}`,
      'altered payload (later exp)': `${h}.${b64({ ...payload, exp: now + 86400 })}.${s}`,
      'signature of another token': `${h}.${p}.${otherSignature}`,
      'one signature character changed': `${h}.${p}.${flipped}`,
      'no signature': `${h}.${p}.`,
      expired: sign({ ...payload, exp: now - 5, iat: now - 305 }, { alg, kid }, serverKey),
    }
    // Signed by an attacker's own key of every asymmetric type, with the server's kid, none, or an unknown one.
    for (const [attackAlg, key] of Object.entries(attackerKeys)) {
      forgeries[`${attackAlg} signed by an attacker key`] = sign(claims, { alg: attackAlg }, key)
      if (kid) forgeries[`${attackAlg} signed by an attacker key, the server's kid`] = sign(claims, { alg: attackAlg, kid }, key)
      forgeries[`${attackAlg} signed by an attacker key, an unknown kid`] = sign(claims, { alg: attackAlg, kid: 'attacker' }, key)
    }
    if (alg === 'HS256') {
      forgeries['HS512 with the right secret'] = sign(claims, { alg: 'HS512' }, secret)
      forgeries['HS384 with the right secret'] = sign(claims, { alg: 'HS384' }, secret)
    } else {
      // Algorithm confusion: the public key (as published) used as an HMAC secret.
      for (const [i, pem] of publicPems.entries()) {
        for (const hs of ['HS256', 'HS384', 'HS512']) {
          forgeries[`${hs} keyed with public key ${i + 1} (PEM)`] = sign(claims, { alg: hs, kid: jwks[i]!.kid }, createSecretKey(Buffer.from(pem)))
          forgeries[`${hs} keyed with public key ${i + 1} (PEM, trimmed)`] = sign(claims, { alg: hs }, createSecretKey(Buffer.from(pem.trim())))
        }
        forgeries[`HS256 keyed with public key ${i + 1} (JWK JSON)`] = sign(
          claims,
          { alg: 'HS256', kid: jwks[i]!.kid },
          createSecretKey(Buffer.from(JSON.stringify(jwks[i]))),
        )
      }
      forgeries['HS256 keyed with the server kid'] = sign(claims, { alg: 'HS256', kid }, createSecretKey(Buffer.from(kid!)))
      // The server's own key, but an algorithm other than the configured one.
      if (alg === 'RS256') {
        forgeries['RS512 with the right key'] = sign(claims, { alg: 'RS512', kid }, serverKey)
        forgeries['PS256 with the right key'] = sign(claims, { alg: 'PS256', kid }, serverKey)
      }
      if (oldKid)
        forgeries["attacker key under the other trusted key's kid"] = sign(claims, { alg, kid: oldKid }, attackerKeys[alg as keyof typeof attackerKeys])
    }
    t.ok(Object.keys(forgeries).length >= 15, `${Object.keys(forgeries).length} forgeries`)
    for (const [name, pending] of Object.entries(forgeries)) {
      const token = await pending
      const me = await call(url, '/api/me/', { token })
      t.equal(me.status, 401, `${name}: /api/me/`)
      t.equal(me.body?.code, 'token_not_valid', `${name}: /api/me/ says token_not_valid`)
      const v = await call(url, '/api/token/verify/', { json: { token } })
      t.equal(v.status, 401, `${name}: verify`)
      t.equal(v.body?.code, 'token_not_valid', `${name}: verify says token_not_valid`)
    }
  })
}

function keyFiles(dir: string, alg: 'RS256' | 'ES256' | 'EdDSA', name: string) {
  const pair =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
        : generateKeyPairSync('ed25519')
  const key = join(dir, `${name}.key`)
  const pub = join(dir, `${name}.pub`)
  writeFileSync(key, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }))
  writeFileSync(pub, pair.publicKey.export({ format: 'pem', type: 'spki' }))
  return { key, pub }
}

for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
  t.test(`${alg} from key files, published in JWKS`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'runway-keys-'))
    const { key } = keyFiles(dir, alg, 'k1')
    const { url, store } = await startApp(t, { JWT_ALGORITHM: alg, JWT_PRIVATE_KEY_FILE: key })
    await createUser(store)
    const pair = await login(url)
    const jwks = (await call(url, '/.well-known/jwks.json')).body
    t.equal(jwks.keys.length, 1)
    t.notOk(jwks.keys[0].d, 'no private material published')
    const header = decodeProtectedHeader(pair.access)
    t.equal(header.alg, alg)
    t.equal(header.kid, jwks.keys[0].kid)
    const { payload } = await jwtVerify(pair.access, createLocalJWKSet(jwks))
    t.equal(payload.token_type, 'access')
    t.equal((await call(url, '/api/me/', { token: pair.access })).status, 200)
    t.equal((await call(url, '/api/token/refresh/', { json: { refresh: pair.refresh } })).status, 200)
  })
}

t.test('key rotation: sign with the newest key, verify with all listed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runway-keys-'))
  const old = keyFiles(dir, 'ES256', 'old')
  const next = keyFiles(dir, 'ES256', 'new')
  const before = await startApp(t, { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: old.key })
  await createUser(before.store)
  const oldPair = await login(before.url)
  await before.close()

  // The same users, a new signing key, the old public key still trusted.
  const after = await startApp(t, { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: next.key, JWT_PUBLIC_KEY_FILE: old.pub })
  await createUser(after.store)
  // A token signed with the old key (its session is unknown to this fresh store, which is not a
  // revocation): verify checks the signature with the old public key.
  const v = await call(after.url, '/api/token/verify/', { json: { token: oldPair.access } })
  t.equal(v.status, 200, 'token signed with the previous key still verifies')
  const jwks = (await call(after.url, '/.well-known/jwks.json')).body
  t.equal(jwks.keys.length, 2, 'both keys published')
  const fresh = await login(after.url)
  t.equal(decodeProtectedHeader(fresh.access).kid, jwks.keys[0].kid, 'new tokens carry the new kid')

  // Without the old public key, old tokens are refused.
  const strict = await startApp(t, { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: next.key })
  t.equal((await call(strict.url, '/api/token/verify/', { json: { token: oldPair.access } })).status, 401)
})

t.test('leeway tolerates clock skew on exp; other Authorization schemes can be allowed', async (t) => {
  const { url, store } = await startApp(t, { JWT_LEEWAY: '30s', AUTH_HEADER_TYPES: 'Bearer,JWT' })
  await createUser(store)
  const pair = await login(url)
  const { payload } = await jwtVerify(pair.access, secret)
  const now = Math.floor(Date.now() / 1000)
  const sign = (exp: number) => new SignJWT({ ...payload, exp, iat: exp - 300 }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret)
  t.equal((await call(url, '/api/me/', { token: await sign(now - 10) })).status, 200, 'expired 10 s ago, within 30 s of leeway')
  t.equal((await call(url, '/api/me/', { token: await sign(now - 60) })).status, 401, 'expired 60 s ago')
  t.equal((await call(url, '/api/me/', { headers: { authorization: `JWT ${pair.access}` } })).status, 200, 'JWT scheme')
  t.equal((await call(url, '/api/me/', { headers: { authorization: `Token ${pair.access}` } })).status, 401, 'unlisted scheme')
})
