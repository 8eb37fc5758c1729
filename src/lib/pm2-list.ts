// `pm2 jlist` read in one place, for everyone who asks pm2 which workers run: the deploy's on-host
// helper (health gate, status) and the benchmark stacks.

/** One process as pm2 lists it, reduced to what runway reads. */
export interface Pm2Process {
  id: number
  pid: number
  name: string
  status: string
  /** The working directory pm2 recorded (for a release: <root>/current, not where it resolves). */
  cwd: string
  /** When pm2 last started it (ms since the epoch); 0 when unknown. */
  startedAt: number
  restarts: number
  memory: number
}

interface JlistEntry {
  pm_id: number
  pid: number
  name: string
  monit?: { memory?: number }
  pm2_env?: { status?: string; pm_cwd?: string; pm_uptime?: number; restart_time?: number }
}

/** The JSON that starts a line and runs to the end; notices such as "[PM2] Spawning…" start with '[' too. */
function jsonAfterNotices(text: string): unknown {
  for (let at = 0; at !== -1 && at < text.length; at = text.indexOf('\n', at) + 1 || -1) {
    const rest = text.slice(at).trimStart()
    if (!rest.startsWith('[') && !rest.startsWith('{')) continue
    try {
      return JSON.parse(rest)
    } catch {}
  }
  return undefined
}

/** Parses `pm2 jlist` output; pm2 may print notices before the JSON array. Empty output: none. */
export function parseJlist(stdout: string): Pm2Process[] {
  if (!stdout.trim()) return []
  const list = jsonAfterNotices(stdout)
  if (list === undefined) throw new Error(`pm2 jlist printed no JSON: ${stdout.slice(0, 200)}`)
  if (!Array.isArray(list)) throw new Error(`pm2 jlist printed no list: ${stdout.slice(0, 200)}`)
  return (list as JlistEntry[]).map((p) => ({
    id: p.pm_id,
    pid: p.pid,
    name: p.name,
    status: p.pm2_env?.status ?? 'unknown',
    cwd: p.pm2_env?.pm_cwd ?? '',
    startedAt: p.pm2_env?.pm_uptime ?? 0,
    restarts: p.pm2_env?.restart_time ?? 0,
    memory: p.monit?.memory ?? 0,
  }))
}
