// A real nginx in front of app servers, started for tests, `runway compare` and `runway nginx
// serve`: the standalone nginx.conf under a temp prefix (own pid, temp and logs, unprivileged
// free ports), checked with `nginx -t`, run in the foreground under startService and stopped by PID.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { findNginx, nginxVersion, testMainConfig } from '../../ops/proxy/nginx/binary.js'
import { renderNginx } from '../../ops/proxy/nginx/render.js'
import type { NginxSettings } from '../../ops/proxy/nginx/options.js'
import { createSelfSigned } from '../../ops/tls/self-signed.js'
import { freePort, processTree, startService, waitForHttp } from '../../lib/process.js'
import type { RunningStack } from './api.js'

export { findNginx, type RunningStack }

export interface NginxStack extends RunningStack {
  /** Plain HTTP (redirects to httpsUrl when TLS is on). */
  httpUrl: string
  httpsUrl?: string
  /** The CA that signed the server certificate (trust it: undici `connect: { ca }`, `https` `ca`). */
  caFile?: string
  prefix: string
  accessLog: string
  errorLog: string
  settings: NginxSettings
  /** Resolves when the nginx master exits (by stop() or on its own). */
  exited: Promise<number | null>
}

export interface StartNginxOptions {
  /** App servers, host:port. */
  upstreams: string[]
  tls?: boolean
  /** Directory for conf, logs, temp and certificates; a temp dir (removed on stop) by default. */
  prefix?: string
  /** limit_req on the token endpoints; false turns it off (load tests that log in a lot). */
  rateLimit?: { rate: string; burst: number } | false
  /** The app's BODY_LIMIT in bytes (default 65536), or an nginx size such as 64k. */
  bodyLimit?: number | string
  /** nginx worker processes (default 1). */
  workers?: number | 'auto'
  /** proxy_read/send_timeout, e.g. "30s". */
  proxyTimeout?: string
  /** Where nginx's own stdout/stderr go (default PREFIX/logs/nginx.out). */
  logFile?: string
  readyTimeoutMs?: number
  /** Browser origins for the CORS headers on nginx's own errors (the app's CORS_* settings). */
  cors?: { origins?: string[]; originRegexes?: string[]; credentials?: boolean }
  /**
   * Instead of the rendered templates, the least config that proxies at all (minimalProxyConf):
   * the reference the rendered template's own cost is measured against (compare --ceiling).
   */
  minimal?: boolean
  /** Benchmarks only: rewrites the config before `nginx -t` (loadtest/nginx-cost.ts drops one directive at a time). */
  edit?: (conf: string) => string
}

/**
 * nginx doing nothing but proxying: proxy_pass over keep-alive upstream connections, TLS when
 * asked (default protocols and ciphers), the same worker count, no access log, no headers, no
 * gzip, no error pages. Listens on the HTTP port too (plain proxy) so readiness is checked alike.
 */
export function minimalProxyConf(o: {
  prefix: string
  upstreams: string[]
  httpPort: number
  httpsPort?: number
  cert?: string
  key?: string
  workers: number | string
  keepalive: number
}): string {
  const tls = o.httpsPort !== undefined && o.cert && o.key
  return `worker_processes ${o.workers};
pid ${o.prefix}/nginx.pid;
error_log ${o.prefix}/logs/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path ${o.prefix}/temp/client_body;
    proxy_temp_path ${o.prefix}/temp/proxy;
    fastcgi_temp_path ${o.prefix}/temp/fastcgi;
    uwsgi_temp_path ${o.prefix}/temp/uwsgi;
    scgi_temp_path ${o.prefix}/temp/scgi;
    upstream minimal_app {
${o.upstreams.map((u) => `        server ${u};`).join('\n')}
        keepalive ${o.keepalive};
    }
    server {
        listen 127.0.0.1:${o.httpPort};
${tls ? `        listen 127.0.0.1:${o.httpsPort} ssl;\n        ssl_certificate ${o.cert};\n        ssl_certificate_key ${o.key};\n` : ''}        keepalive_requests 1000000;
        location / {
            proxy_pass http://minimal_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`
}

export async function startNginx(o: StartNginxOptions): Promise<NginxStack> {
  const bin = findNginx()
  if (!bin) throw new Error('nginx is not installed: apt-get install -y nginx (or put it on PATH)')
  const ownPrefix = !o.prefix
  const prefix = resolve(o.prefix ?? mkdtempSync(join(tmpdir(), 'runway-nginx-')))
  mkdirSync(prefix, { recursive: true })
  // When run as root, nginx workers run as nobody: they must reach the prefix (temp files, webroot).
  chmodSync(prefix, 0o755)
  for (const sub of ['conf', 'logs', 'temp', 'acme']) mkdirSync(join(prefix, sub), { recursive: true })
  const cleanup = () => {
    if (ownPrefix) rmSync(prefix, { recursive: true, force: true })
  }
  try {
    const tls = o.tls ?? false
    const httpPort = await freePort()
    let httpsPort = await freePort()
    while (httpsPort === httpPort) httpsPort = await freePort()
    let cert: { cert: string; key: string; caCert: string } | undefined
    if (tls) cert = await createSelfSigned({ out: join(prefix, 'tls'), names: ['localhost'] })
    const { settings, text } = renderNginx({
      variant: 'standalone',
      prefix,
      upstreams: o.upstreams,
      tls,
      httpPort,
      httpsPort,
      cert: cert?.cert,
      key: cert?.key,
      bodyLimit: o.bodyLimit,
      rate: o.rateLimit === false ? 'off' : o.rateLimit?.rate,
      burst: o.rateLimit === false ? undefined : o.rateLimit?.burst,
      workers: o.workers ?? 1,
      // Load generators (autocannon) race nginx's close after keepalive_requests and count a reset
      // now and then; a stack for tests and benchmarks keeps client connections open.
      clientKeepaliveRequests: 1_000_000,
      proxyTimeout: o.proxyTimeout,
      nginxVersion: await nginxVersion(bin),
      corsOrigins: o.cors?.origins,
      corsOriginRegexes: o.cors?.originRegexes,
      corsCredentials: o.cors?.credentials,
    })
    const conf = join(prefix, 'conf', 'nginx.conf')
    const chosen = o.minimal
      ? minimalProxyConf({
          prefix,
          upstreams: o.upstreams,
          httpPort,
          ...(tls ? { httpsPort, cert: cert!.cert, key: cert!.key } : {}),
          workers: settings.workers,
          keepalive: settings.keepalive,
        })
      : text
    writeFileSync(conf, o.edit ? o.edit(chosen) : chosen)
    const errorLog = join(prefix, 'logs', 'error.log')
    await testMainConfig(bin, prefix, conf)
    const service = startService({
      name: 'nginx',
      command: bin,
      args: ['-p', `${prefix}/`, '-e', errorLog, '-c', conf, '-g', 'daemon off;'],
      logFile: o.logFile ?? join(prefix, 'logs', 'nginx.out'),
    })
    const httpUrl = `http://127.0.0.1:${httpPort}`
    const httpsUrl = tls ? `https://127.0.0.1:${httpsPort}` : undefined
    try {
      // Any answer means nginx is listening on every port (the master binds them all before the
      // workers accept). The ACME path answers on plain HTTP without a redirect and without the app.
      await waitForHttp(`${httpUrl}/.well-known/acme-challenge/runway-ready`, { service, timeoutMs: o.readyTimeoutMs ?? 15_000, accept: () => true })
    } catch (err) {
      await service.stop(2000)
      let log = ''
      try {
        log = readFileSync(errorLog, 'utf8').trim().split('\n').at(-1) ?? ''
      } catch {}
      throw new Error(`${(err as Error).message}${log ? `; nginx: ${log}` : ''}`)
    }
    return {
      name: 'nginx',
      url: httpsUrl ?? httpUrl,
      httpUrl,
      httpsUrl,
      caFile: cert?.caCert,
      prefix,
      accessLog: settings.accessLog,
      errorLog,
      settings,
      exited: service.exited,
      async pids() {
        return processTree(service.pid)
      },
      async stop() {
        await service.stop(5000)
        cleanup()
      },
    }
  } catch (err) {
    cleanup()
    throw err
  }
}
