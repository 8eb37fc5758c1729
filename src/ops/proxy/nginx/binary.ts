// Finding the nginx binary and asking it to check a config (`nginx -t`).
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { findExecutable, isExecutableFile } from '../../../lib/executables.js'

const run = promisify(execFile)

/** The nginx binary: NGINX_BIN when set (an nginx elsewhere, e.g. openresty's), else on PATH or
 *  where Debian and nginx.org's packages put it; null when absent. */
export function findNginx(): string | null {
  const explicit = process.env.NGINX_BIN
  if (explicit) {
    return isExecutableFile(explicit) ? explicit : null
  }
  return findExecutable('nginx', ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin', '/sbin'])
}

/** "1.22.1" from `nginx -v` (which prints to stderr). */
export async function nginxVersion(bin: string): Promise<string> {
  const { stdout, stderr } = await run(bin, ['-v'])
  const m = /nginx\/([0-9.]+)/.exec(stderr + stdout)
  if (!m) throw new Error(`could not read the version from \`${bin} -v\``)
  return m[1]!
}

export class NginxTestError extends Error {
  override name = 'NginxTestError'
}

/** The interesting line of `nginx -t` output ("[emerg] ... in /x/nginx.conf:12"). */
function nginxMessage(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  const bad = lines.find((l) => /\[(emerg|alert|crit|error)\]/.test(l)) ?? lines.find((l) => !/syntax is ok/.test(l)) ?? lines[0] ?? 'no output'
  return bad.replace(/^nginx: /, '')
}

/** `nginx -t` on a complete nginx.conf under `prefix`; throws NginxTestError with nginx's message. */
export async function testMainConfig(bin: string, prefix: string, confFile: string): Promise<string> {
  try {
    const { stderr } = await run(bin, ['-t', '-q', '-p', `${prefix}/`, '-e', join(prefix, 'logs', 'error.log'), '-c', confFile], { timeout: 30_000 })
    return stderr
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new NginxTestError(nginxMessage(e.stderr || e.message))
  }
}

/**
 * `nginx -t` on a rendered config. A standalone nginx.conf is tested as it is (its prefix must
 * exist). A site config is tested inside a throwaway nginx.conf whose http block carries the
 * settings Debian's stock nginx.conf has (gzip on, ssl_protocols, …), so a directive that would
 * clash with them (a duplicate) fails here too.
 */
export async function testRendered(bin: string, text: string, variant: 'site' | 'standalone', prefix?: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'runway-nginx-t-'))
  try {
    mkdirSync(join(dir, 'logs'))
    if (variant === 'standalone') {
      if (!prefix) throw new Error('testRendered: the standalone variant needs its prefix')
      for (const sub of ['logs', 'temp', 'conf']) mkdirSync(join(prefix, sub), { recursive: true })
      writeFileSync(join(dir, 'nginx.conf'), text)
      await testMainConfig(bin, prefix, join(dir, 'nginx.conf'))
      return
    }
    writeFileSync(join(dir, 'site.conf'), text)
    writeFileSync(
      join(dir, 'nginx.conf'),
      [
        `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/logs/error.log;`,
        'events { worker_connections 768; }',
        'http {',
        '    sendfile on; tcp_nopush on; types_hash_max_size 2048; default_type application/octet-stream;',
        '    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_prefer_server_ciphers on;',
        `    access_log ${dir}/logs/access.log; gzip on;`,
        `    client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;`,
        `    uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
        `    include ${dir}/site.conf;`,
        '}',
        '',
      ].join('\n'),
    )
    await testMainConfig(bin, dir, join(dir, 'nginx.conf'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
