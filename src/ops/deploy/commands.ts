// Every command deploy runs on a target that starts app code (remote.js verbs, pm2, migrate,
// npm ci), built as data in one place and turned into shell text once, by `render`: each word is
// quoted there and nowhere else, and every one of them runs under the same clean environment.
// Scripts that are shell logic (switch, prune, the deps cache) stay in layout.ts and deploy.ts and
// embed a rendered command where they start one.
import type { TargetSettings } from './layout.js'
import { q } from './target.js'

/** A word for the target's shell: a literal (quoted once by render) or an expansion it evaluates ($HOME). */
export type Word = string | { sh: string }

export interface RemoteCommand {
  /** Directory to run in (relative to the target's root, or absolute). */
  cwd?: string
  env: Array<[string, Word]>
  argv: Word[]
}

const word = (w: Word) => (typeof w === 'string' ? q(w) : w.sh)

/** `cd DIR && env -i K=V ... ARGV...`: the one place a command becomes shell text. */
export function render(c: RemoteCommand): string {
  const env = `env -i ${c.env.map(([k, v]) => `${k}=${word(v)}`).join(' ')}`
  return `${c.cwd ? `cd ${q(c.cwd)} && ` : ''}${env} ${c.argv.map(word).join(' ')}`
}

/** The environment app-facing commands get on the target: nothing from the deploying shell leaks into the workers. */
export function appEnv(settings: TargetSettings, root: string): Array<[string, Word]> {
  return [
    ['HOME', { sh: '"$HOME"' }],
    ['PATH', { sh: '"$PATH"' }],
    ['USER', { sh: '"${USER:-$(id -un)}"' }],
    ['LANG', 'C.UTF-8'],
    ['PM2_HOME', settings.pm2Home],
    ['RUNWAY_LOG_DIR', `${root}/shared/logs`],
    ...(settings.workers ? ([['WEB_CONCURRENCY', String(settings.workers)]] as Array<[string, Word]>) : []),
    ...(settings.healthCa ? ([['NODE_EXTRA_CA_CERTS', settings.healthCa]] as Array<[string, Word]>) : []),
  ]
}

export type RemoteVerb = 'verify' | 'gate' | 'probe' | 'daemon' | 'roll'

/**
 * `node <release>/dist/ops/deploy/remote.js VERB --flag value ...`, run from `cwd` (default the
 * target's root). `release` is the directory whose remote.js runs: a name under releases/, or a
 * path relative to cwd.
 */
export function remoteJs(o: {
  settings: TargetSettings
  root: string
  script: string
  verb: RemoteVerb
  flags: Record<string, Word | number>
  cwd?: string
}): RemoteCommand {
  const flags = Object.entries(o.flags).flatMap(([k, v]): Word[] => [`--${k}`, typeof v === 'number' ? String(v) : v])
  return { cwd: o.cwd ?? o.root, env: appEnv(o.settings, o.root), argv: ['node', `${o.script}/dist/ops/deploy/remote.js`, o.verb, ...flags] }
}

/** The remote.js of release `name`, run from the root. */
export const releaseScript = (name: string) => `releases/${name}`

/** `node <runtime>/node_modules/pm2/bin/pm2 ARGS` with the app environment. */
export function pm2(settings: TargetSettings, root: string, runtime: string, args: string[]): RemoteCommand {
  return { env: appEnv(settings, root), argv: ['node', `${runtime}/node_modules/pm2/bin/pm2`, ...args] }
}

/** `runway migrate` of a release, in production mode. */
export function migrate(settings: TargetSettings, root: string, release: string): RemoteCommand {
  return { cwd: `releases/${release}`, env: [...appEnv(settings, root), ['NODE_ENV', 'production']], argv: ['node', 'bin/runway.js', 'migrate'] }
}

/** `npm ci --omit=dev` in a directory (an expansion such as "$rel" inside a script). */
export function npmCi(settings: TargetSettings, root: string, dir: Word): string {
  const c = render({ env: appEnv(settings, root), argv: ['npm', 'ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'] })
  return `(cd ${word(dir)} && ${c} >/dev/null)`
}
