// `runway tls self-signed`: a local CA and a server certificate for staging and tests.
import { createSelfSigned, TlsError } from '../../ops/tls/self-signed.js'
import { CliError, flagError, note, parseFlags, print, type Command } from '../command.js'

const usage = `Usage: runway tls self-signed --out DIR --name api.local [--name …] [--days N]

Creates DIR/ca.crt + ca.key (a local certificate authority; reused when already there) and
DIR/server.crt + server.key, signed by it, with subjectAltNames for every --name and 127.0.0.1.
Keys are ECDSA P-256, written with mode 0600. For staging and tests only: in production use
Let's Encrypt (see docs/nginx-tls.md).
  nginx:   runway nginx render --cert DIR/server.crt --key DIR/server.key …
  clients: trust DIR/ca.crt (curl --cacert DIR/ca.crt, NODE_EXTRA_CA_CERTS=DIR/ca.crt)`

export const tlsCommand: Command = {
  name: 'tls',
  summary: 'create a local CA and a server certificate for staging and tests',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { out: { type: 'string' }, name: { type: 'string', multiple: true }, days: { type: 'string' } }, true)
    if (values.help) return (print(usage), 0)
    if (positionals[0] !== 'self-signed' || positionals.length > 1) throw new CliError('unknown action: the only action is `self-signed` (see --help)', 2)
    if (!values.out) throw new CliError('--out DIR is required: where to write ca.crt, server.crt and their keys', 2)
    if (values.days !== undefined && !/^[0-9]+$/.test(values.days))
      throw new CliError(`--days ${JSON.stringify(values.days)} is invalid: expected 1 to 3650`, 2)
    const days = values.days === undefined ? undefined : Number(values.days)
    try {
      const files = await createSelfSigned({ out: values.out, names: values.name ?? [], days })
      note(files.createdCa ? `created a new CA ${files.caCert}` : `reused the CA ${files.caCert}`)
      print(`ca=${files.caCert}\ncert=${files.cert}\nkey=${files.key}\nsubjectAltNames=${files.subjectAltNames.join(',')}`)
      return 0
    } catch (err) {
      if (err instanceof TlsError) throw new CliError(err.message)
      throw flagError(err)
    }
  },
}
