// The nginx a fleet shares. While a host changes (switch, reload, health gate) it is out of that
// nginx's upstream: its `server` line in the rendered config gets nginx's own `down` flag, the
// config is checked (`nginx -t`, the old file put back if it fails) and nginx reloads. A reload is
// graceful: new workers start with the new upstream, old workers stop accepting, finish the
// requests they hold (including those in flight to the host leaving) and exit; `leave` waits for
// them, so when it returns no request is on its way to that host through nginx. A host comes back
// (`down` removed, reload) only once it is healthy; a sick host stays out and the summary says so.
//
// Why edit the rendered config rather than keep a separate upstream file: the config is what
// `runway nginx render` wrote and what preflight already runs `nginx -t` on; `down` keeps the
// server in the list (the operator sees the whole fleet), and nothing new has to be included.
import { dirname, isAbsolute } from 'node:path'
import type { ProxySettings } from './layout.js'
import type { Check } from './preflight.js'
import { q, reasonLine, type Target } from './target.js'

export interface UpstreamServer {
  addr: string
  down: boolean
}

const SERVER = /^(\s*server\s+)(\S+)([^;#\n]*);/gm

/** The `server` lines of the config's upstream blocks (the rendered config has nothing else named `server ADDR ...;` at line start). */
export function upstreamServers(conf: string): UpstreamServer[] {
  return [...conf.matchAll(SERVER)].map((m) => ({ addr: m[2]!, down: /\sdown\b/.test(` ${m[3]}`) }))
}

/** The config with `addr` marked down (or not). Throws when `addr` is not a server of an upstream. */
export function withServerDown(conf: string, addr: string, down: boolean): string {
  let found = false
  const text = conf.replace(SERVER, (line, head: string, a: string, params: string) => {
    if (a !== addr) return line
    found = true
    const rest = params.replace(/\s+down\b/g, '')
    return `${head}${a}${rest}${down ? ' down' : ''};`
  })
  if (!found) throw new Error(`${addr} is not a server in the upstream`)
  return text
}

/** Where nginx keeps its master's pid: the config's `pid` directive, relative to the prefix. */
export function pidFile(conf: string, prefix: string | undefined): string {
  const file = /^\s*pid\s+("?)([^";\s]+)\1\s*;/m.exec(conf)?.[2] ?? (prefix ? 'logs/nginx.pid' : '/run/nginx.pid')
  return isAbsolute(file) ? file : `${(prefix ?? '/etc/nginx').replace(/\/$/, '')}/${file}`
}

export type ProxyNote = (text: string) => void

const NGINX = `bin=$(PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin" command -v nginx) || { echo 'runway: nginx is not installed on the proxy host'; exit 1; }`

export class SharedProxy {
  /** Changes are made one at a time: hosts of a batch change in parallel, the config is one file. */
  private queue: Promise<unknown> = Promise.resolve()
  readonly label: string

  constructor(
    readonly target: Target,
    readonly settings: ProxySettings,
  ) {
    this.label = `nginx ${settings.host === 'local' ? '' : `on ${settings.host} `}(${settings.conf})`
  }

  static targetDir(settings: ProxySettings): string {
    return dirname(settings.conf)
  }

  private flags(): string {
    return `-c ${q(this.settings.conf)}${this.settings.prefix ? ` -p ${q(this.settings.prefix)}` : ''}`
  }

  async read(): Promise<string> {
    const r = await this.target.sh(`cat -- ${q(this.settings.conf)}`)
    if (r.code !== 0) throw new Error(`cannot read ${this.settings.conf} on the proxy host: ${reasonLine(r.stderr)}`)
    return r.stdout
  }

  /** Preflight: the config is readable, passes `nginx -t`, and lists every host of the fleet. */
  async check(hosts: Array<{ label: string; addr: string }>): Promise<Check> {
    let conf: string
    try {
      conf = await this.read()
    } catch (err) {
      return { name: 'proxy', level: 'error', message: (err as Error).message }
    }
    const servers = upstreamServers(conf)
    const missing = hosts.filter((h) => !servers.some((s) => s.addr === h.addr))
    if (missing.length)
      return {
        name: 'proxy',
        level: 'error',
        message: `${missing.map((h) => `${h.addr} (${h.label})`).join(', ')} not a server in the upstream of ${this.settings.conf} (servers: ${servers.map((s) => s.addr).join(', ') || 'none'}): render it with --upstream for every host, or set the host's upstream address with --upstream`,
      }
    const t = await this.target.sh(`${NGINX}; "$bin" -t -q ${this.flags()} 2>&1`)
    if (t.code !== 0) return { name: 'proxy', level: 'error', message: `nginx -t failed on the proxy host: ${reasonLine(t.stdout + t.stderr)}` }
    const down = servers.filter((s) => s.down)
    return {
      name: 'proxy',
      level: down.length ? 'warn' : 'ok',
      message: `${this.label}: ${servers.length} servers in the upstream${down.length ? `, ${down.map((s) => s.addr).join(', ')} down (a deploy brings a host back once it is healthy)` : ''}`,
    }
  }

  /** Takes `addr` out of rotation and waits for the requests nginx still has on their way to it. */
  leave(addr: string): Promise<string> {
    return this.serial(() => this.set(addr, true))
  }

  /** Puts `addr` back into rotation. */
  rejoin(addr: string): Promise<string> {
    return this.serial(() => this.set(addr, false))
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn)
    this.queue = next.catch(() => {})
    return next
  }

  private async set(addr: string, down: boolean): Promise<string> {
    const conf = await this.read()
    const servers = upstreamServers(conf)
    const me = servers.find((s) => s.addr === addr)
    if (!me) throw new Error(`${addr} is not a server in the upstream of ${this.settings.conf}`)
    if (me.down === down) return `${addr} already ${down ? 'out of' : 'in'} the upstream`
    // Never empty the upstream: the last server in rotation stays (its own pm2 reload is rolling).
    if (down && !servers.some((s) => s.addr !== addr && !s.down))
      return `${addr} stays in the upstream: it is the only server in rotation (pm2 replaces its workers one at a time)`
    const text = withServerDown(conf, addr, down)
    const started = Date.now()
    const pid = q(pidFile(conf, this.settings.prefix))
    const r = await this.target.sh(
      [
        'set -e',
        NGINX,
        `conf=${q(this.settings.conf)}`,
        'cp -p "$conf" "$conf.runway-prev"',
        'cat > "$conf.runway-next"',
        'cat "$conf.runway-next" > "$conf"; rm -f "$conf.runway-next"',
        `if ! out=$("$bin" -t -q ${this.flags()} 2>&1); then cat "$conf.runway-prev" > "$conf"; echo "runway: nginx -t failed, config restored: $out" | tr '\\n' ' '; exit 1; fi`,
        `master=$(cat ${pid} 2>/dev/null) && kill -0 "$master" 2>/dev/null || { cat "$conf.runway-prev" > "$conf"; echo "runway: nginx is not running (no live pid in ${pid.replace(/'/g, '')}), config restored"; exit 1; }`,
        'old=$(ps -o pid= --ppid "$master" | tr -d " ")',
        `"$bin" ${this.flags()} -s reload || { cat "$conf.runway-prev" > "$conf"; echo "runway: nginx -s reload failed, config restored"; exit 1; }`,
        // The old workers finish what they hold, then exit; bounded (a stuck request is nginx's business).
        'for i in $(seq 1 300); do alive=; for p in $old; do kill -0 "$p" 2>/dev/null && alive=1; done; [ -z "$alive" ] && break; sleep 0.1; done',
        '[ -z "$alive" ] && echo drained || echo "old workers still finishing after 30 s"',
      ].join('\n'),
      { input: text, timeoutMs: 60_000 },
    )
    if (r.code !== 0) throw new Error(reasonLine(r.stdout) || reasonLine(r.stderr) || `exit code ${r.code}`)
    const ms = Date.now() - started
    return down
      ? `${addr} out of the upstream, nginx reloaded, ${r.stdout.includes('drained') ? 'in-flight requests done' : r.stdout.trim()} (${ms} ms)`
      : `${addr} back in the upstream, nginx reloaded (${ms} ms)`
  }
}

/** How the shared nginx reaches a host's app: the saved setting, else HOST (when it names one address) or the --host name, and PORT. */
export function upstreamAddress(o: { upstream?: string; hostname: string; appHost?: string; port?: number }): string {
  if (o.upstream) return o.upstream
  const wildcard = !o.appHost || o.appHost === '0.0.0.0' || o.appHost === '::'
  const loopback = (h: string) => /^(127\.|::1$|localhost$)/.test(h)
  const host = !wildcard && !(loopback(o.appHost!) && !loopback(o.hostname)) ? o.appHost! : o.hostname
  return `${host.includes(':') ? `[${host}]` : host}:${o.port ?? 3000}`
}
