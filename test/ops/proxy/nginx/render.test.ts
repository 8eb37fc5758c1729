// `runway nginx render` and `runway tls self-signed`: every variant renders and passes the real
// `nginx -t`; every bad value is refused before rendering, with one line naming the flag.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../../src/api/config.js'
import { testRendered, NginxTestError } from '../../../../src/ops/proxy/nginx/binary.js'
import { validate, type NginxInput } from '../../../../src/ops/proxy/nginx/options.js'
import { InvalidSetting } from '../../../../src/lib/errors.js'
import { renderNginx } from '../../../../src/ops/proxy/nginx/render.js'
import { renderTemplate } from '../../../../src/ops/proxy/template.js'
import { minimalProxyConf } from '../../../../src/bench/stacks/nginx.js'
import { createSelfSigned } from '../../../../src/ops/tls/self-signed.js'
import type { Command } from '../../../../src/cli/command.js'
import { nginxCommand } from '../../../../src/cli/commands/nginx.js'
import { tlsCommand } from '../../../../src/cli/commands/tls.js'
import { nginxOrSkip } from '../../../helpers/nginx.js'

const MOZILLA_INTERMEDIATE_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305'
const runwayBin = join(import.meta.dirname, '..', '..', '..', '..', 'bin', 'runway.js')

const bin = nginxOrSkip(t)
const dir = mkdtempSync(join(tmpdir(), 'runway-nginx-render-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Directive lines (comments stripped, whitespace collapsed). */
const directives = (text: string) =>
  text
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim().replace(/\s+/g, ' '))
    .filter(Boolean)

// The rendered text is checked whether or not nginx is installed; only `nginx -t` needs the binary
// (nginxOrSkip above shows that part as skipped, or fails under CI=true).
{
  const tls = await createSelfSigned({ out: join(dir, 'tls'), names: ['api.local'] })
  const logs = { accessLog: join(dir, 'access.log') }
  const cert = { cert: tls.cert, key: tls.key }

  const variants: [string, NginxInput][] = [
    ['site, TLS, one app server', { serverNames: ['api.local'], upstreams: ['127.0.0.1:3000'], ...cert, ...logs }],
    [
      'site, TLS, several hosts, tuned limits, behind a load balancer',
      {
        serverNames: ['api.example.com', 'www.example.com'],
        upstreams: ['10.0.0.1:3000', '10.0.0.2:3000', 'localhost:3000', '[::1]:3000', 'unix:/run/runway.sock'],
        ...cert,
        ...logs,
        realIpFrom: ['10.1.0.0/16', '192.0.2.7', 'fd00::/8'],
        bodyLimit: '1m',
        rate: '30r/m',
        burst: 5,
        keepalive: 64,
        proxyTimeout: '45s',
      },
    ],
    [
      'site, TLS with OCSP stapling',
      { serverNames: ['api.local'], upstreams: ['127.0.0.1:3000'], ...cert, ...logs, trustedChain: tls.caCert, resolver: '127.0.0.53' },
    ],
    ['site, plain HTTP', { serverNames: ['api.local'], upstreams: ['127.0.0.1:3000'], tls: false, ...logs }],
    [
      'site, one address, IPv4 only, no rate limit, no default server',
      { serverNames: ['api.local'], upstreams: ['127.0.0.1:3000'], ...cert, ...logs, listen: '127.0.0.1', ipv6: false, rate: 'off', defaultServer: false },
    ],
    [
      'standalone, TLS',
      {
        variant: 'standalone',
        prefix: join(dir, 'p1'),
        upstreams: ['127.0.0.1:3000', '127.0.0.1:3001'],
        ...cert,
        httpPort: 18080,
        httpsPort: 18443,
        workers: 1,
      },
    ],
    ['standalone, plain HTTP', { variant: 'standalone', prefix: join(dir, 'p2'), upstreams: ['127.0.0.1:3000'], tls: false, rate: 'off' }],
    [
      'site, TLS, CORS origins and regexes with credentials',
      {
        serverNames: ['api.local'],
        upstreams: ['127.0.0.1:3000'],
        ...cert,
        ...logs,
        corsOrigins: ['https://app.example.com', 'null'],
        corsOriginRegexes: ['https://[a-z0-9-]+\\.example\\.com(:[0-9]{2,5})?'],
        corsCredentials: true,
      },
    ],
    [
      'standalone, plain HTTP, CORS any origin',
      { variant: 'standalone', prefix: join(dir, 'p3'), upstreams: ['127.0.0.1:3000'], tls: false, corsOrigins: ['*'] },
    ],
  ]
  for (const [name, input] of variants) {
    t.test(`renders${bin ? ' and passes nginx -t' : ''}: ${name}`, async (t) => {
      const { text, settings } = renderNginx(input)
      t.notMatch(text, /\{\{|\}\}/, 'no template tag is left')
      if (bin) await t.resolves(testRendered(bin, text, settings.variant, settings.prefix || undefined))
    })
  }

  t.test('the site config carries every setting the issue asks for', async (t) => {
    const text = renderNginx(variants[0]![1]).text
    const d = directives(text)
    const has = (line: string) => t.ok(d.includes(line), line)
    // upstream keep-alive, shorter than the app's own keep-alive timeout
    has('keepalive 128;')
    has('keepalive_timeout 60s;')
    has('keepalive_requests 1000;')
    const appKeepAlive = loadConfig({}).keepAliveTimeoutMs
    t.ok(60_000 < appKeepAlive, `nginx's upstream keepalive_timeout (60s) < the app's KEEP_ALIVE_TIMEOUT (${appKeepAlive} ms)`)
    has('proxy_http_version 1.1;')
    has('proxy_set_header Connection "";')
    has('proxy_set_header X-Forwarded-For $remote_addr;')
    has('proxy_set_header X-Forwarded-Proto $scheme;')
    // the request id: the app's (its answer's X-Request-Id), nginx's own only where the app did not answer
    t.notOk(
      d.some((l) => l.startsWith('proxy_set_header X-Request-Id')),
      "the client's X-Request-Id reaches the app as sent",
    )
    t.notOk(d.includes('proxy_set_header X-Real-IP $remote_addr;'), 'no X-Real-IP: the app reads X-Forwarded-For')
    t.match(text, /map \$upstream_http_x_request_id \$runway_request_id \{\s*"" \$runway_client_request_id;\s*default \$upstream_http_x_request_id;/)
    t.match(text, /map \$http_x_request_id \$runway_client_request_id \{\s*"~\^\[A-Za-z0-9\._:-\]\{1,128\}\$" \$http_x_request_id;\s*default \$request_id;/)
    has('proxy_next_upstream error timeout http_502 http_503 http_504;')
    // port 80: ACME webroot, everything else redirected; unknown hosts dropped
    has('location ^~ /.well-known/acme-challenge/ {')
    has('root /var/www/letsencrypt;')
    has('return 301 https://$host$request_uri;')
    t.equal(d.filter((l) => l === 'return 444;').length, 2, 'default servers on 80 and 443 drop unknown hosts')
    has('listen 443 ssl http2;')
    // Mozilla intermediate
    has('ssl_protocols TLSv1.2 TLSv1.3;')
    has(`ssl_ciphers ${MOZILLA_INTERMEDIATE_CIPHERS};`)
    has('ssl_prefer_server_ciphers off;')
    has('ssl_session_cache shared:runway_tls:10m;')
    has('ssl_session_tickets off;')
    has('add_header Strict-Transport-Security "max-age=63072000" always;')
    t.notMatch(text, /ssl_stapling/, 'no OCSP stapling without a real chain')
    // limits, compression, headers, errors, logs
    has('limit_req zone=runway_token burst=10 nodelay;')
    has('limit_req_status 429;')
    const bodyLimit = loadConfig({}).bodyLimit
    t.equal(bodyLimit, 65536)
    has('client_max_body_size 64k;')
    has('gzip_types application/json;')
    has('server_tokens off;')
    has('add_header X-Content-Type-Options "nosniff" always;')
    has('add_header X-Frame-Options "DENY" always;')
    for (const code of [413, 429, 502, 503, 504]) {
      t.match(text, new RegExp(`error_page [0-9 ]*${code}[0-9 ]* /\\.runway-error/${code};`), `error_page ${code}`)
      t.match(
        text,
        new RegExp(`location = /\\.runway-error/${code} \\{\\s*internal;\\s*default_type application/json;[^}]*return ${code} '\\{"detail":"[^"]+"\\}\\\\n';`),
        `${code} has a JSON body`,
      )
    }
    t.match(text, /log_format runway_json escape=json '\{"time".*"request_id":"\$runway_request_id"/s)
    t.match(text, /"upstream_response_time":"\$upstream_response_time"/)

    const stapled = directives(renderNginx(variants[2]![1]).text)
    t.ok(
      stapled.includes('ssl_stapling on;') && stapled.includes('ssl_stapling_verify on;') && stapled.includes(`ssl_trusted_certificate ${tls.caCert};`),
      'OCSP stapling with a chain',
    )
    t.ok(stapled.includes('resolver 127.0.0.53 valid=300s;'))

    const many = directives(renderNginx(variants[1]![1]).text)
    for (const u of ['10.0.0.1:3000', '10.0.0.2:3000', 'localhost:3000', '[::1]:3000', 'unix:/run/runway.sock'])
      t.ok(many.includes(`server ${u} max_fails=1 fail_timeout=10s;`), u)
    t.ok(
      many.includes('add_header Retry-After "2" always;') &&
        many.includes(`return 429 '{"detail":"Request was throttled. Expected available in 2 seconds."}\\n';`),
      '30r/m: Retry-After 2',
    )
    t.ok(
      many.includes('client_max_body_size 1m;') &&
        many.includes('limit_req_zone $runway_token_limit_key zone=runway_token:10m rate=30r/m;') &&
        many.includes('proxy_read_timeout 45s;'),
    )
    t.ok(many.includes('server_name api.example.com www.example.com;'))
    t.ok(
      many.includes('set_real_ip_from 10.1.0.0/16;') && many.includes('set_real_ip_from fd00::/8;') && many.includes('real_ip_header X-Forwarded-For;'),
      'real client address from a load balancer',
    )
    t.notMatch(text, /set_real_ip_from/, 'no real_ip without --real-ip-from')

    const plain = directives(renderNginx(variants[3]![1]).text).join('\n')
    t.notMatch(plain, /^ssl_|add_header Strict-Transport-Security|return 301|listen \S+ ssl/m, 'plain HTTP: no TLS settings, no HSTS, no redirect')
    t.notMatch(renderNginx(variants[4]![1]).text, /limit_req|default_server/, 'rate limit and default servers can be left out')
  })

  t.test('standalone: own pid, temp and log paths under the prefix, unprivileged ports', async (t) => {
    const p = join(dir, 'p1')
    const d = directives(renderNginx(variants[5]![1]).text)
    for (const line of [
      `pid ${p}/nginx.pid;`,
      `error_log ${p}/logs/error.log warn;`,
      `client_body_temp_path ${p}/temp/client_body;`,
      `proxy_temp_path ${p}/temp/proxy;`,
      `access_log ${p}/logs/access.log runway_json buffer=64k flush=1s;`,
      'listen 127.0.0.1:18080;',
      'listen 127.0.0.1:18443 ssl http2;',
      'return 301 https://$host:18443$request_uri;',
      'worker_processes 1;',
    ])
      t.ok(d.includes(line), line)
    t.notMatch(d.join('\n'), /\/var\/|\/run\/|\/etc\//, 'nothing outside the prefix')
  })

  t.test('the access log is buffered (64k, flushed every second) unless turned off', async (t) => {
    const logLines = (input: object) => directives(renderNginx({ ...variants[0]![1], ...input }).text).filter((l) => l.startsWith('access_log '))
    const buffered = logLines({})
    t.ok(buffered.length >= 2, 'every server that logs')
    for (const l of buffered) t.match(l, /^access_log \S+ runway_json buffer=64k flush=1s;$/)
    for (const l of logLines({ accessLogBuffer: '256k' })) t.match(l, /runway_json buffer=256k flush=1s;$/)
    for (const l of logLines({ accessLogBuffer: 'off' })) t.match(l, /runway_json;$/)
  })

  t.test("the minimal proxy (compare's reference for the template's cost) proxies and does nothing else", async (t) => {
    const conf = minimalProxyConf({
      prefix: '/tmp/p',
      upstreams: ['127.0.0.1:3001', '127.0.0.1:3002'],
      httpPort: 18080,
      httpsPort: 18443,
      cert: '/tmp/p/c.pem',
      key: '/tmp/p/k.pem',
      workers: 1,
      keepalive: 128,
    })
    const d = directives(conf)
    for (const line of [
      'worker_processes 1;',
      'access_log off;',
      'server 127.0.0.1:3001;',
      'server 127.0.0.1:3002;',
      'keepalive 128;',
      'listen 127.0.0.1:18443 ssl;',
      'ssl_certificate /tmp/p/c.pem;',
      'proxy_pass http://minimal_app;',
      'proxy_http_version 1.1;',
      'proxy_set_header Connection "";',
    ])
      t.ok(d.includes(line), line)
    t.notMatch(conf, /add_header|gzip|error_page|log_format|ssl_ciphers|limit_req/, "none of the template's work")
    t.notMatch(
      minimalProxyConf({ prefix: '/tmp/p', upstreams: ['127.0.0.1:3001'], httpPort: 18080, workers: 1, keepalive: 8 }),
      /ssl/,
      'plain when no certificate',
    )
  })

  t.test('http2 syntax follows the target nginx version', async (t) => {
    const old = directives(renderNginx({ ...variants[0]![1], nginxVersion: '1.22.1' }).text)
    const recent = directives(renderNginx({ ...variants[0]![1], nginxVersion: '1.25.1' }).text)
    t.ok(old.includes('listen 443 ssl http2;') && !old.includes('http2 on;'))
    t.ok(recent.includes('listen 443 ssl;') && recent.includes('http2 on;'))
  })

  t.test('nginx -t failures come back as one line', { skip: bin ? false : 'nginx is not installed' }, async (t) => {
    const { text } = renderNginx({ ...variants[0]![1], cert: join(dir, 'missing.crt') })
    const err = await testRendered(bin!, text, 'site').catch((e: unknown) => e)
    t.type(err, NginxTestError)
    t.match((err as Error).message, /^\[emerg\] cannot load certificate .*missing\.crt/)
    t.notMatch((err as Error).message, /\n/)
  })
}

t.test('invalid values are refused before rendering, naming the flag', async (t) => {
  const ok: NginxInput = { serverNames: ['api.local'], upstreams: ['127.0.0.1:3000'], cert: '/etc/ssl/api.crt', key: '/etc/ssl/api.key' }
  const bad: [string, NginxInput][] = [
    ['server-name', { serverNames: [] }],
    ['server-name', { serverNames: ['api local'] }],
    ['server-name', { serverNames: ['api.local;'] }],
    ['server-name', { serverNames: ['api.local', 'API.local'] }],
    ['server-name', { serverNames: ['-bad.example'] }],
    ['server-name', { serverNames: ['~^regex$'] }],
    ['upstream', { upstreams: [] }],
    ['upstream', { upstreams: ['127.0.0.1'] }],
    ['upstream', { upstreams: ['127.0.0.1:0'] }],
    ['upstream', { upstreams: ['127.0.0.1:70000'] }],
    ['upstream', { upstreams: ['127.0.0.1:3000;'] }],
    ['upstream', { upstreams: ['bad host:3000'] }],
    ['upstream', { upstreams: ['[zz::1]:3000'] }],
    ['upstream', { upstreams: ['unix:relative.sock'] }],
    ['upstream', { upstreams: ['127.0.0.1:3000', '127.0.0.1:3000'] }],
    ['http-port', { httpPort: 0 }],
    ['http-port', { httpPort: '80x' }],
    ['https-port', { httpsPort: 65536 }],
    ['https-port', { httpPort: 8443, httpsPort: 8443 }],
    ['listen', { listen: 'localhost' }],
    ['real-ip-from', { realIpFrom: ['10.0.0.0/33'] }],
    ['real-ip-from', { realIpFrom: ['lb.internal'] }],
    ['cert', { cert: undefined }],
    ['cert', { cert: 'relative/api.crt' }],
    ['cert', { cert: '/etc/ssl/my cert.pem' }],
    ['key', { key: "/etc/ssl/api.key';" }],
    ['cert', { tls: false }],
    ['resolver', { trustedChain: '/etc/ssl/chain.pem' }],
    ['resolver', { trustedChain: '/etc/ssl/chain.pem', resolver: 'dns.google' }],
    ['acme-webroot', { acmeWebroot: 'www' }],
    ['access-log', { accessLog: '/var/log/a b.log' }],
    ['access-log-buffer', { accessLogBuffer: '1k' }],
    ['access-log-buffer', { accessLogBuffer: '64x' }],
    ['access-log-buffer', { accessLogBuffer: '64k flush=0' }],
    ['body-limit', { bodyLimit: 10 }],
    ['body-limit', { bodyLimit: '64x' }],
    ['body-limit', { bodyLimit: '20m' }],
    ['rate', { rate: '5r/h' }],
    ['rate', { rate: '0r/s' }],
    ['rate', { rate: 'fast' }],
    ['burst', { burst: -1 }],
    ['burst', { burst: '1e3' }],
    ['keepalive', { keepalive: 0 }],
    ['client-keepalive-requests', { clientKeepaliveRequests: 0 }],
    ['proxy-timeout', { proxyTimeout: '1500ms' }],
    ['proxy-timeout', { proxyTimeout: '2h' }],
    ['proxy-timeout', { proxyTimeout: 'soon' }],
    ['prefix', { prefix: '/tmp/x' }],
    ['prefix', { variant: 'standalone' }],
    ['variant', { variant: 'apache' }],
    ['name', { name: 'Bad-Name' }],
    ['workers', { variant: 'standalone', prefix: '/tmp/x', workers: 0 }],
    ['nginx-version', { nginxVersion: 'latest' }],
    ['cors-origin', { corsOrigins: ['https://app.example.com/'] }],
    ['cors-origin', { corsOrigins: ['app.example.com'] }],
    ['cors-origin', { corsOrigins: ['https://app.example.com";'] }],
    ['cors-origin', { corsOrigins: ['*', 'https://app.example.com'] }],
    ['cors-credentials', { corsOrigins: ['*'], corsCredentials: true }],
    ['cors-credentials', { corsOriginRegexes: ['.*'], corsCredentials: true }],
    ['cors-origin-regex', { corsOriginRegexes: ['https://('] }],
    ['cors-origin-regex', { corsOriginRegexes: ['https://a"b'] }],
    ['cors-origin-regex', { corsOriginRegexes: ['https://a b'] }],
    ['cors-origin-regex', { corsOriginRegexes: ['https://a\\'] }],
  ]
  for (const [flag, change] of bad) {
    const input = { ...ok, ...change }
    if ('cert' in change && change.cert === undefined) delete input.cert
    const err = (() => {
      try {
        validate(input)
      } catch (e) {
        return e
      }
    })()
    t.type(err, InvalidSetting, `${JSON.stringify(change)} is refused`)
    t.equal((err as InvalidSetting).setting, flag, 'names the setting (the CLI words it as the flag)')
    t.match((err as Error).message, new RegExp(`^${flag} .* is invalid: expected .+`), (err as Error).message)
    t.notMatch((err as Error).message, /\n/)
  }
  t.doesNotThrow(() => validate(ok), 'the baseline is valid')
})

t.test('the template language refuses unknown names and unbalanced blocks', async (t) => {
  const tdir = mkdtempSync(join(tmpdir(), 'runway-tpl-'))
  t.teardown(() => rmSync(tdir, { recursive: true, force: true }))
  writeFileSync(join(tdir, 'a.template'), 'x {{missing}}\n')
  writeFileSync(join(tdir, 'b.template'), '{{#if flag}}\nx\n')
  writeFileSync(join(tdir, 'c.template'), '{{#if flag}}\n  {{> d}}\n{{else}}\nno\n{{/if}}\n')
  writeFileSync(join(tdir, 'd.template'), 'yes {{v}}\n  {{list}}\n')
  t.throws(() => renderTemplate('a', {}, tdir), /no value for \{\{missing\}\}/)
  t.throws(() => renderTemplate('b', { flag: true }, tdir), /without \{\{\/if\}\}/)
  t.throws(() => renderTemplate('c', { flag: 'yes' }, tdir), /needs a boolean/)
  t.equal(renderTemplate('c', { flag: true, v: 1, list: 'a\nb' }, tdir), '  yes 1\n    a\n    b')
  t.equal(renderTemplate('c', { flag: false, v: 1, list: '' }, tdir), 'no')
})

t.test('runway tls self-signed: a CA and a server certificate with the SANs', async (t) => {
  const out = join(dir, 'self-signed')
  const files = await createSelfSigned({ out, names: ['api.local', '*.api.local'] })
  t.ok(files.createdCa)
  const ca = new X509Certificate(readFileSync(files.caCert))
  const leaf = new X509Certificate(readFileSync(files.cert))
  t.ok(ca.ca, 'the CA certificate is a CA')
  t.notOk(leaf.ca, 'the server certificate is not')
  t.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'signed by the CA')
  t.equal(leaf.subjectAltName, 'DNS:api.local, DNS:*.api.local, IP Address:127.0.0.1')
  t.ok(leaf.checkHost('api.local') && leaf.checkHost('x.api.local') && leaf.checkIP('127.0.0.1'))
  t.match(leaf.keyUsage ?? [], ['1.3.6.1.5.5.7.3.1'], 'extendedKeyUsage serverAuth')
  t.equal(statSync(files.key).mode & 0o777, 0o600, 'server key is private')
  t.equal(statSync(files.caKey).mode & 0o777, 0o600, 'CA key is private')
  const again = await createSelfSigned({ out, names: ['other.local'] })
  t.notOk(again.createdCa, 'an existing CA is reused')
  t.equal(readFileSync(again.caCert, 'utf8'), readFileSync(files.caCert, 'utf8'))
  t.ok(new X509Certificate(readFileSync(again.cert)).checkIssued(ca))
  await t.rejects(createSelfSigned({ out, names: ['bad name'] }), { name: 'InvalidSetting', setting: 'name', value: 'bad name' })
  await t.rejects(createSelfSigned({ out, names: [] }), { name: 'InvalidSetting', setting: 'name' })
})

/** Runs a command in this process, capturing what it prints on stdout. */
async function inProcess(command: Command, argv: string[]): Promise<{ code: number; out: string }> {
  const write = process.stdout.write
  let out = ''
  process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write
  try {
    return { code: await command.run(argv), out }
  } finally {
    process.stdout.write = write
  }
}

t.test('CLI, as a real process: defaults from the app config, values from the environment, one-line errors', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'runway-nginx-cli-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '4123', BODY_LIMIT: '131072' }
  for (const k of Object.keys(env)) if (k.startsWith('NGINX_')) delete env[k]
  const run = (args: string[], extra: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [runwayBin, ...args], { cwd, encoding: 'utf8', env: { ...env, ...extra }, timeout: 60_000 })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }
  const out = join(cwd, 'runway.conf')
  writeFileSync(out, 'previous\n')
  let r = run(['nginx', 'render', '--server-name', 'api.local', '--no-tls', '--upstream', '127.0.0.1:3000;evil', '--out', out])
  t.equal(r.code, 2)
  t.match(r.err, /^runway nginx: --upstream "127\.0\.0\.1:3000;evil" is invalid: expected HOST:PORT/)
  t.equal(r.err.trim().split('\n').length, 1, 'one line')
  t.equal(readFileSync(out, 'utf8'), 'previous\n', 'the existing file is untouched')

  r = run(['nginx', 'render', '--no-tls', '--out', out], { NGINX_SERVER_NAME: 'env.example.com' })
  t.equal(r.code, 0, 'renders to --out')
  const written = readFileSync(out, 'utf8')
  t.match(written, /server_name env\.example\.com;/, 'values from the environment')
  t.match(written, /server 127\.0\.0\.1:4123 /, "the upstream defaults to the app's PORT")
  t.match(written, /client_max_body_size 128k;/, "the body limit defaults to the app's BODY_LIMIT")
  r = run(['nginx', 'render', '--no-tls', '--out', out], { NGINX_SERVER_NAME: 'env.example.com', UNIX_SOCKET: '/srv/runway/shared/run/app.sock' })
  t.equal(r.code, 0, r.err)
  t.match(readFileSync(out, 'utf8'), /server unix:\/srv\/runway\/shared\/run\/app\.sock /, "the app's UNIX_SOCKET, when it has one, is the upstream")

  r = run(['tls', 'self-signed', '--out', join(cwd, 'tls'), '--name', 'bad_name!'])
  t.equal(r.code, 2)
  t.match(r.err, /^runway tls: --name "bad_name!" is invalid/)
})

t.test('CORS: preflights never count against the rate limit; origins only when rendered with them', async (t) => {
  const base: NginxInput = { serverNames: ['api.local'], upstreams: ['127.0.0.1:3000'], tls: false }
  const plain = directives(renderNginx(base).text)
  t.ok(plain.includes('limit_req_zone $runway_token_limit_key zone=runway_token:10m rate=5r/s;'))
  t.ok(plain.includes('OPTIONS "";'), 'an empty key for OPTIONS: not counted')
  t.notOk(
    plain.some((l) => /Access-Control|cors/.test(l)),
    'no CORS header or map without origins',
  )
  const text = directives(renderNginx({ ...base, corsOrigins: ['https://app.example.com'], corsOriginRegexes: ['https://[a-z]+\\.example\\.org'] }).text)
  const map = text.slice(text.indexOf('map $http_origin $runway_cors_origin {'), text.indexOf('map $http_origin $runway_cors_origin {') + 6)
  t.strictSame(map, [
    'map $http_origin $runway_cors_origin {',
    'default "";',
    '"null" "";',
    '"https://app.example.com" "https://app.example.com";',
    '"~^(?:https://[a-z]+\\.example\\.org)$" $http_origin;',
    '}',
  ])
  t.equal(
    text.filter((l) => l === 'add_header Access-Control-Allow-Origin $runway_cors_origin always;').length,
    8 * 2,
    'on each of the 8 JSON errors, in the site and the default server',
  )
  const any = directives(renderNginx({ ...base, corsOrigins: ['*'] }).text)
  t.ok(any.includes('default "*";') && any.includes('"null" "";'), '* is any origin but null')
})

t.test("CLI --cors-from-app renders the app's own CORS settings", async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'runway-nginx-cors-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith('NGINX_') || k.startsWith('CORS_')) delete env[k]
  const run = (args: string[], extra: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [runwayBin, ...args], { cwd, encoding: 'utf8', env: { ...env, ...extra }, timeout: 60_000 })
    return { code: r.status, out: r.stdout, err: r.stderr }
  }
  writeFileSync(
    join(cwd, '.env'),
    'CORS_ALLOWED_ORIGINS=https://app.example.com\nCORS_ALLOWED_ORIGIN_REGEXES=https://[a-z]+\\.example\\.org\nCORS_ALLOW_CREDENTIALS=true\n',
  )
  let r = run(['nginx', 'render', '--server-name', 'api.local', '--no-tls', '--cors-from-app'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /"https:\/\/app\.example\.com" "https:\/\/app\.example\.com";/)
  t.match(r.out, /"~\^\(\?:https:\/\/\[a-z\]\+\\\.example\\\.org\)\$" \$http_origin;/)
  t.match(r.out, /add_header Access-Control-Allow-Credentials \$runway_cors_credentials always;/)
  r = run(['nginx', 'render', '--server-name', 'api.local', '--no-tls', '--cors-from-app', '--cors-origin', 'https://x.example'])
  t.equal(r.code, 2)
  t.match(r.err, /--cors-from-app takes the origins from the app/)
  writeFileSync(join(cwd, '.env'), 'CORS_ALLOWED_ORIGINS=https://app.example.com/\n')
  r = run(['nginx', 'render', '--server-name', 'api.local', '--no-tls', '--cors-from-app'])
  t.equal(r.code, 78)
  t.match(r.err, /configuration error: CORS_ALLOWED_ORIGINS has "https:\/\/app\.example\.com\/"/)
  r = run(['nginx', 'render', '--server-name', 'api.local', '--no-tls', '--cors-origin', 'https://app.example.com/'])
  t.equal(r.code, 2)
  t.match(r.err, /^runway nginx: --cors-origin "https:\/\/app\.example\.com\/" is invalid: expected an origin/)
})

t.test('CLI commands: stdout, lists from the environment, --check, --help', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'runway-nginx-cmd-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  let r = await inProcess(nginxCommand, ['render', '--server-name', 'api.local', '--no-tls', '--upstream', '10.0.0.5:3000', '--upstream', '10.0.0.6:3000'])
  t.equal(r.code, 0)
  t.match(r.out, /^# runway site configuration: api\.local -> 10\.0\.0\.5:3000, 10\.0\.0\.6:3000\n/, 'to stdout')

  process.env.NGINX_UPSTREAM = '10.0.0.7:3000,10.0.0.8:3000'
  t.teardown(() => delete process.env.NGINX_UPSTREAM)
  r = await inProcess(nginxCommand, ['render', '--server-name', 'api.local', '--no-tls'])
  t.match(r.out, /server 10\.0\.0\.7:3000 [^\n]*\n\s*server 10\.0\.0\.8:3000 /, 'NGINX_UPSTREAM, comma-separated')
  r = await inProcess(nginxCommand, ['render', '--server-name', 'api.local', '--no-tls', '--upstream', '10.0.0.9:3000'])
  t.match(r.out, /server 10\.0\.0\.9:3000 /, 'a flag wins over the environment')
  t.notMatch(r.out, /10\.0\.0\.7/)

  await t.rejects(inProcess(nginxCommand, ['render', '--server-name', 'api.local']), { exitCode: 2, message: /^--cert .*fullchain\.pem \(or --no-tls\)$/ })
  await t.rejects(inProcess(nginxCommand, ['render', '--server-name', 'api.local', '--no-tls', '--out', join(cwd, 'missing', 'x.conf')]), {
    message: /directory .*missing does not exist/,
  })
  await t.rejects(inProcess(nginxCommand, ['reload']), { exitCode: 2, message: /unknown action/ })
  await t.rejects(inProcess(nginxCommand, ['render', '--bogus']), { exitCode: 2, message: /--bogus/ })

  if (bin) {
    const missing = join(cwd, 'new.conf')
    await t.rejects(
      inProcess(nginxCommand, [
        'render',
        '--server-name',
        'api.local',
        '--cert',
        join(cwd, 'none.crt'),
        '--key',
        join(cwd, 'none.key'),
        '--check',
        '--out',
        missing,
        '--access-log',
        join(cwd, 'a.log'),
      ]),
      { exitCode: 1, message: /^nginx -t rejected the config: .*none\.crt.*\(nothing written\)$/ },
    )
    t.notOk(existsSync(missing), 'nothing written when nginx -t fails')
    const good = join(cwd, 'good.conf')
    r = await inProcess(nginxCommand, [
      'render',
      '--variant',
      'standalone',
      '--prefix',
      join(cwd, 'prefix'),
      '--no-tls',
      '--upstream',
      '127.0.0.1:3000',
      '--check',
      '--out',
      good,
    ])
    t.equal(r.code, 0)
    t.match(readFileSync(good, 'utf8'), /^# runway standalone nginx\.conf/, 'checked, then written')
  }

  r = await inProcess(tlsCommand, ['self-signed', '--out', join(cwd, 'tls'), '--name', 'api.local'])
  t.equal(r.code, 0)
  t.match(r.out, /^ca=.*ca\.crt\ncert=.*server\.crt\nkey=.*server\.key\nsubjectAltNames=DNS:api\.local,IP:127\.0\.0\.1\n$/)
  await t.rejects(inProcess(tlsCommand, ['self-signed', '--name', 'api.local']), { exitCode: 2, message: /--out DIR is required/ })
  await t.rejects(inProcess(tlsCommand, ['self-signed', '--out', cwd, '--name', 'a.local', '--days', 'x']), { exitCode: 2, message: /--days "x" is invalid/ })
  for (const command of [nginxCommand, tlsCommand]) {
    r = await inProcess(command, ['--help'])
    t.equal(r.code, 0)
    t.match(r.out, /^Usage: runway /)
  }
})

t.test('render --variant standalone makes PREFIX/logs and temp; a certificate not covering --server-name is warned about', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'runway-standalone-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const tls = await createSelfSigned({ out: join(base, 'tls'), names: ['api.local'] })
  const r = spawnSync(
    process.execPath,
    [
      runwayBin,
      'nginx',
      'render',
      '--variant',
      'standalone',
      '--prefix',
      join(base, 'ng'),
      '--cert',
      tls.cert,
      '--key',
      tls.key,
      '--out',
      join(base, 'nginx.conf'),
    ],
    { encoding: 'utf8', timeout: 60_000 },
  )
  t.equal(r.status, 0, r.stderr)
  for (const d of ['logs', 'temp']) t.ok(statSync(join(base, 'ng', d)).isDirectory(), `${d}/ exists`)
  t.match(
    r.stderr,
    /warning: .*server\.crt does not cover localhost: clients will refuse TLS/,
    'the default names localhost 127.0.0.1: localhost is not in the certificate',
  )
  const ok = spawnSync(
    process.execPath,
    [runwayBin, 'nginx', 'render', '--variant', 'standalone', '--prefix', join(base, 'ng'), '--server-name', 'api.local', '--cert', tls.cert, '--key', tls.key],
    { encoding: 'utf8', timeout: 60_000 },
  )
  t.equal(ok.status, 0, ok.stderr)
  t.notMatch(ok.stderr, /does not cover/)
})
