// `runway check --deploy` findings on the path from nginx to the app: the site's upstream must name
// where the app listens (127.0.0.1:PORT or unix:UNIX_SOCKET), and with a Unix socket both sides
// must reach it: nginx's worker user through every directory above it, the app's user to create
// it. Each mistake here passes `nginx -t` and a deploy's health gate (which asks PORT directly),
// then answers every client with 502.
import { dirname } from 'node:path'
import type { Config } from '../../api/config.js'
import { upstreamServers } from './proxy.js'
import { q, type Target } from './target.js'

export interface UpstreamFinding {
  id: string
  level: 'error'
  message: string
}

const err = (id: string, message: string): UpstreamFinding => ({ id, level: 'error', message })

/** True for an upstream address on this host: a unix: path or a loopback host. */
const isLocal = (addr: string) => addr.startsWith('unix:') || /^(127\.[\d.]+|localhost|\[::1\])(:\d+)?$/.test(addr)

/**
 * nginxText: the site config given with --nginx-conf, or undefined when none was given. The nginx
 * user is the one nginx's workers run as (a running nginx, else its nginx.conf's `user`, else
 * Debian's www-data).
 */
export async function upstreamFindings(target: Target, config: Config, nginxText: string | undefined): Promise<UpstreamFinding[]> {
  const findings: UpstreamFinding[] = []
  const listens = [`127.0.0.1:${config.port}`, `localhost:${config.port}`, ...(config.unixSocket ? [`unix:${config.unixSocket}`] : [])]
  const servers = nginxText === undefined ? [] : upstreamServers(nginxText).map((s) => s.addr)
  // A fleet's upstream names other hosts: only a site whose servers are all on this host is judged.
  if (servers.length && servers.every(isLocal) && !servers.some((s) => listens.includes(s)))
    findings.push(
      err(
        'runway.E015',
        `nginx sends requests to ${servers.join(', ')}, but the app listens on ${config.unixSocket ? `unix:${config.unixSocket} and ` : ''}127.0.0.1:${config.port}: every request would get 502; render the site again (\`runway nginx render\`) or fix PORT/UNIX_SOCKET`,
      ),
    )
  if (!config.unixSocket) return findings

  const dir = dirname(config.unixSocket)
  const r = await target.sh(socketProbe(dir))
  const last = r.stdout.trim().split('\n').pop() ?? ''
  const [verdict, who, where] = last.split(' ')
  // A probe that could not decide says so: no verdict is never read as "nginx reaches the socket".
  if (verdict !== 'ok' && verdict !== 'app-cannot-create' && verdict !== 'nginx-cannot-reach') {
    const why =
      verdict === 'cannot-check'
        ? last.slice('cannot-check '.length)
        : `the probe printed ${JSON.stringify(last || r.stderr.trim().split('\n').pop() || '')} (exit ${r.code})`
    findings.push(err('runway.E018', `UNIX_SOCKET ${config.unixSocket}: could not check that nginx's user reaches it: ${why}`))
  }
  if (verdict === 'app-cannot-create')
    findings.push(
      err('runway.E016', `UNIX_SOCKET's directory ${dir}: ${who} (the app's user) cannot create the socket in ${where}: fix its owner or permissions`),
    )
  if (verdict === 'nginx-cannot-reach')
    findings.push(
      err(
        'runway.E017',
        `UNIX_SOCKET ${config.unixSocket}: nginx's user ${who} cannot enter ${where}, so nginx cannot reach the socket (502 for every request): \`chmod o+x ${where}\` (or give it nginx's group)`,
      ),
    )
  return findings
}

/**
 * A shell script printing one line: `ok`, `app-cannot-create USER DIR`, `nginx-cannot-reach
 * USER DIR`, or `cannot-check WHY` (a `stat` without GNU's -c, as BSD's or an old BusyBox's).
 * Permission bits are compared by hand (owner, group, other) because the nginx user cannot be
 * switched to without root.
 */
function socketProbe(dir: string): string {
  return `d=${q(dir)}
p="$d"; while [ ! -e "$p" ]; do p=$(dirname "$p"); done
if [ ! -d "$p" ] || [ ! -w "$p" ] || [ ! -x "$p" ]; then echo "app-cannot-create $(id -un) $p"; exit 0; fi
u=$(ps -o user= -C nginx 2>/dev/null | grep -vx root | head -n1)
[ -n "$u" ] || u=$(sed -n 's/^[[:space:]]*user[[:space:]]\\{1,\\}\\([^[:space:];]\\{1,\\}\\).*/\\1/p' /etc/nginx/nginx.conf 2>/dev/null | head -n1)
[ -n "$u" ] || u=www-data
uid=$(id -u "$u" 2>/dev/null) || { echo ok; exit 0; }
[ "$uid" = 0 ] && { echo ok; exit 0; }
groups=" $(id -G "$u") "
while :; do
  s=$(stat -c '%u %g %a' "$p" 2>/dev/null) && [ -n "$s" ] || { echo "cannot-check stat -c failed on $p: GNU coreutils' stat is needed"; exit 0; }
  set -- $s
  m=$(( 0$3 ))
  if [ "$1" = "$uid" ]; then bit=$(( m & 64 )); elif case "$groups" in *" $2 "*) true;; *) false;; esac; then bit=$(( m & 8 )); else bit=$(( m & 1 )); fi
  [ "$bit" = 0 ] && { echo "nginx-cannot-reach $u $p"; exit 0; }
  [ "$p" = / ] && break
  p=$(dirname "$p")
done
echo ok`
}
