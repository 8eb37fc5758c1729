// The layout on a target (Capistrano's, which ops engineers already know):
//
//   <root>/releases/<UTC timestamp>-<git short sha>/   one directory per deploy, never modified after
//   <root>/shared/.env, shared/data/, shared/logs/     survive releases; linked into each one
//   <root>/current -> releases/<name>                  the live release, switched by rename(2)
//   <root>/.runway/target.json                         this target's settings (PM2_HOME, health URL...)
//   <root>/.runway/deploys.log                         audit log, one JSON object per line
//   <root>/.runway/lock/                               the deploy lock (see lock.ts)
//   <root>/.runway/deps/<key>/node_modules             installed dependencies, reused when the lockfile is unchanged
import { q, type Target, TargetError, reasonLine } from './target.js'

export const SHARED_LINKS = ['.env', 'data', 'logs'] as const

/** 2026-11-29T09:15:00.123Z + "abc1234" → "20261129T091500Z-abc1234" (sorts by time). */
export function releaseName(sha: string, at = new Date()): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  return `${stamp}-${sha}`
}

export const RELEASE_NAME = /^\d{8}T\d{6}Z-[0-9a-zA-Z._-]+$/

export interface TargetSettings {
  /** pm2's home on the target: its daemon, sockets, dump file. Never the user's default ~/.pm2 by accident. */
  pm2Home: string
  /** WEB_CONCURRENCY handed to ecosystem.config.js (unset = one worker per CPU). */
  workers?: number
  /** What the health gate polls; through nginx when nginx fronts the app. */
  healthUrl?: string
  /** CA file (on the target) to trust for an https health URL with a private CA. */
  healthCa?: string
  /** nginx config file on the target: `nginx -t` runs in preflight, its certificates are checked. */
  nginxConf?: string
  nginxPrefix?: string
  /** Extra TLS certificate files to check for expiry. */
  tlsCerts?: string[]
  /**
   * The nginx in front of a fleet, shared by its hosts: where it runs ("local" or
   * [user@]host[:port] over ssh), its rendered config and -p prefix. A host leaves that config's
   * upstream (`down`, then `nginx -s reload`) while it changes. See proxy.ts.
   */
  proxy?: ProxySettings
  /** How that nginx reaches this host's app, HOST:PORT (default: the --host name, or HOST from shared/.env, and PORT). */
  upstream?: string
  /** Releases to keep (the live one is always kept). */
  keep: number
  /** Where installed node_modules are cached by lockfile; "off" always runs a fresh `npm ci`. */
  depsCache: string
}

export interface ProxySettings {
  host: string
  conf: string
  prefix?: string
}

export function defaultSettings(root: string): TargetSettings {
  return { pm2Home: `${root}/.pm2`, keep: 5, depsCache: `${root}/.runway/deps` }
}

export interface TargetState {
  current: string | null
  releases: string[]
  settings: TargetSettings
  /** The target directory exists at all. */
  initialised: boolean
}

const SEP = '@@runway@@'

/** One round trip: which releases exist, which is live, the saved settings. */
export async function readState(target: Target): Promise<TargetState> {
  const r = await target.sh(
    [
      `[ -d ${q(target.root)} ] && echo yes || echo no`,
      `echo ${SEP}`,
      'readlink current 2>/dev/null || true',
      `echo ${SEP}`,
      'ls -1 releases 2>/dev/null || true',
      `echo ${SEP}`,
      'cat .runway/target.json 2>/dev/null || true',
    ].join('\n'),
  )
  if (r.code !== 0) throw new TargetError(`cannot read ${target.label}: ${reasonLine(r.stderr)}`)
  const [exists, link, list, json] = r.stdout.split(`${SEP}\n`)
  const releases = (list ?? '')
    .split('\n')
    .filter((n) => RELEASE_NAME.test(n))
    .sort()
  const currentName = (link ?? '').trim().split('/').pop() || null
  let saved: Partial<TargetSettings> = {}
  if (json?.trim()) {
    try {
      saved = JSON.parse(json)
    } catch {
      throw new TargetError(`${target.root}/.runway/target.json is not valid JSON: fix or delete it`)
    }
  }
  return {
    initialised: exists?.trim() === 'yes',
    current: currentName,
    releases,
    settings: { ...defaultSettings(target.root), ...saved },
  }
}

export async function saveSettings(target: Target, settings: TargetSettings): Promise<void> {
  const r = await target.sh(`mkdir -p .runway && cat > .runway/target.json.tmp && mv .runway/target.json.tmp .runway/target.json`, {
    input: `${JSON.stringify(settings, null, 2)}\n`,
  })
  if (r.code !== 0) throw new TargetError(`cannot write .runway/target.json: ${reasonLine(r.stderr)}`)
}

/** Creates the skeleton (idempotent). shared/.env is the operator's job: preflight insists on it. */
export const prepareScript = () => 'mkdir -p releases shared/data shared/logs .runway'

/** Links shared/.env, data/ and logs/ into a release (relative links: the tree can be moved). */
export const linkSharedScript = (release: string) =>
  [`cd releases/${q(release)}`, ...SHARED_LINKS.map((name) => `rm -rf ${q(name)} && ln -s ../../shared/${name} ${q(name)}`)].join(' && ')

/**
 * Points `current` at a release atomically: a new symlink under a temporary name, then rename(2)
 * over the old one (mv -T). A reader sees the old link or the new one, never none.
 */
export const switchScript = (release: string) =>
  `[ -d releases/${q(release)} ] && ln -sfn releases/${q(release)} .current.tmp.$$ && mv -T .current.tmp.$$ current`

/** Which releases pruning removes: all but the newest `keep`, never the live one. */
export function releasesToPrune(releases: string[], live: string | null, keep: number): string[] {
  const sorted = [...releases].sort()
  const kept = new Set(sorted.slice(-Math.max(1, keep)))
  if (live) kept.add(live)
  return sorted.filter((r) => !kept.has(r))
}

/**
 * Releases a running process still uses (its working directory, command line or environment
 * names releases/<name>): pm2's daemon and its workers. Pruning skips them whatever --keep says.
 */
export const inUseScript = (root: string) =>
  `for d in /proc/[0-9]*; do { readlink "$d/cwd"; tr '\\0' '\\n' < "$d/cmdline"; tr '\\0' '\\n' < "$d/environ"; } 2>/dev/null; done | grep -o ${q(`${root}/releases/`)}'[^/[:space:]]*' | sed 's|.*/||' | sort -u; true`

export const pruneScript = (names: string[]) => (names.length ? `rm -rf ${names.map((n) => `releases/${q(n)}`).join(' ')}` : 'true')
