// A local certificate authority and a server certificate it signed, for staging and tests:
// clients trust ca.crt, nginx serves server.crt/server.key. Made with the openssl binary (node:crypto
// creates keys but not certificates; nginx needs openssl anyway). An existing CA in the directory
// is reused, so clients that already trust it keep working when the server certificate is renewed.
import { execFile } from 'node:child_process'
import { randomBytes, X509Certificate } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import { InvalidSetting } from '../../lib/errors.js'
import { findExecutable } from '../../lib/executables.js'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface SelfSignedOptions {
  out: string
  /** DNS names (or IP addresses) for the certificate; 127.0.0.1 is always added. */
  names: string[]
  /** Server certificate lifetime (default 397 days, what browsers accept for a leaf). */
  days?: number
}

export interface SelfSignedFiles {
  dir: string
  caCert: string
  caKey: string
  cert: string
  key: string
  /** Whether the CA was created now (false: an existing one was reused). */
  createdCa: boolean
  subjectAltNames: string[]
}

export class TlsError extends Error {
  override name = 'TlsError'
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const DNS_NAME = new RegExp(`^(?:\\*\\.)?(?:${LABEL}\\.)*${LABEL}$`, 'i')

/** SAN entries for the names: DNS:… or IP:…, with 127.0.0.1 always present. */
export function subjectAltNames(names: string[]): string[] {
  if (!names.length) throw new InvalidSetting('name', undefined, 'the host name clients connect to, e.g. api.local')
  const out: string[] = []
  for (const name of [...names, '127.0.0.1']) {
    const bare = name.replace(/^\[(.*)\]$/, '$1')
    let entry: string
    if (isIP(bare)) entry = `IP:${bare}`
    else if (name.length <= 253 && DNS_NAME.test(name)) entry = `DNS:${name.toLowerCase()}`
    else throw new InvalidSetting('name', name, 'a host name such as api.local or an IP address')
    if (!out.includes(entry)) out.push(entry)
  }
  return out
}

async function openssl(bin: string, args: string[], cwd: string): Promise<void> {
  try {
    await run(bin, args, { cwd, timeout: 60_000 })
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    const line = (e.stderr || e.message).split('\n').find((l) => l.trim()) ?? 'failed'
    throw new TlsError(`openssl ${args[0]} failed: ${line.trim()}`)
  }
}

const serial = () =>
  `0x${randomBytes(16)
    .toString('hex')
    .replace(/^[89a-f]/, '7')}`

export async function createSelfSigned(o: SelfSignedOptions): Promise<SelfSignedFiles> {
  const sans = subjectAltNames(o.names)
  const days = o.days ?? 397
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new InvalidSetting('days', days, '1 to 3650')
  const bin = findExecutable('openssl', ['/usr/bin', '/usr/local/bin'])
  if (!bin) throw new TlsError('openssl is not installed: apt-get install -y openssl')
  const dir = resolve(o.out)
  mkdirSync(dir, { recursive: true })
  const files = { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

  let createdCa = false
  if (!(existsSync(files.caCert) && existsSync(files.caKey))) {
    await openssl(
      bin,
      [
        'req',
        '-x509',
        ...ec,
        '-keyout',
        files.caKey,
        '-out',
        files.caCert,
        '-days',
        '3650',
        '-set_serial',
        serial(),
        '-subj',
        `/O=runway/CN=runway local CA ${new Date().toISOString().slice(0, 10)}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE,pathlen:0',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-addext',
        'subjectKeyIdentifier=hash',
      ],
      dir,
    )
    chmodSync(files.caKey, 0o600)
    createdCa = true
  }

  const csr = join(dir, 'server.csr')
  const ext = join(dir, 'server.ext')
  const first = sans[0]!.replace(/^(DNS|IP):/, '')
  try {
    await openssl(bin, ['req', '-new', ...ec, '-keyout', files.key, '-out', csr, '-subj', `/O=runway/CN=${first}`], dir)
    chmodSync(files.key, 0o600)
    writeFileSync(
      ext,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid',
        `subjectAltName=${sans.join(',')}`,
        '',
      ].join('\n'),
    )
    await openssl(
      bin,
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        files.caCert,
        '-CAkey',
        files.caKey,
        '-set_serial',
        serial(),
        '-days',
        String(days),
        '-sha256',
        '-extfile',
        ext,
        '-out',
        files.cert,
      ],
      dir,
    )
  } finally {
    rmSync(csr, { force: true })
    rmSync(ext, { force: true })
  }
  // Belt and braces: the certificate really is issued by this CA (a stale ca.key would not be).
  const ca = new X509Certificate(readFileSync(files.caCert))
  const leaf = new X509Certificate(readFileSync(files.cert))
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey))
    throw new TlsError(`${files.cert} does not verify against ${files.caCert}: remove the directory's ca.* files to start a new CA`)
  return { dir, ...files, createdCa, subjectAltNames: sans }
}
