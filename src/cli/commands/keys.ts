import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CliError, parseFlags, print, type Command } from '../command.js'

const usage = `Usage: runway keys generate --algorithm RS256|ES256|EdDSA [--out DIR]

Writes a new signing key pair as DIR/jwt-<alg>-<date>.key (PEM, mode 0600) and .pub.
Then set JWT_ALGORITHM, JWT_PRIVATE_KEY_FILE to the new .key and, during a rotation, keep the old
.pub in JWT_PUBLIC_KEY_FILE so tokens signed before the switch still verify.`

export const keysCommand: Command = {
  name: 'keys',
  summary: 'generate an asymmetric JWT signing key pair',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { algorithm: { type: 'string' }, out: { type: 'string' } }, true)
    if (values.help) return (print(usage), 0)
    if (positionals[0] !== 'generate') throw new CliError('unknown action: the only action is `generate`', 2)
    const alg = values.algorithm
    const pair =
      alg === 'RS256'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : alg === 'ES256'
          ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
          : alg === 'EdDSA'
            ? generateKeyPairSync('ed25519')
            : undefined
    if (!pair) throw new CliError('--algorithm must be RS256, ES256 or EdDSA (HS* uses JWT_SIGNING_KEY: `openssl rand -base64 48`)', 2)
    const dir = resolve(values.out ?? '.')
    mkdirSync(dir, { recursive: true })
    const base = join(dir, `jwt-${alg!.toLowerCase()}-${new Date().toISOString().slice(0, 10)}`)
    writeFileSync(`${base}.key`, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 })
    writeFileSync(`${base}.pub`, pair.publicKey.export({ format: 'pem', type: 'spki' }))
    print(`JWT_ALGORITHM=${alg}\nJWT_PRIVATE_KEY_FILE=${base}.key\n# public key: ${base}.pub`)
    return 0
  },
}
