// The deploy, rollback and status flows. Order matters and is the point:
//
//   preflight (every host, read-only) → build the artifact once → per host, under the lock:
//   upload → npm ci --omit=dev → link shared → migrate → verify (start once, /readyz, no traffic)
//   ── switch current ── pm2 startOrReload → health gate → prune
//
// Anything that fails before the switch leaves the live release untouched (the new directory is
// kept and marked failed in the log). Anything that fails after it switches back to the previous
// release and reloads it. Every attempt ends with one audit-log line.
import { DEFAULT_PORT } from '../../api/config.js'
import type { WorkerFigures } from '../../api/metrics/figures.js'
import { appendAudit, entry, failedReleases, readAudit, type Action, type AuditEntry, type Result } from './audit.js'
import type { Artifact } from './artifact.js'
import {
  inUseScript,
  linkSharedScript,
  prepareScript,
  pruneScript,
  readState,
  releaseName,
  releasesToPrune,
  saveSettings,
  switchScript,
  type TargetSettings,
  type TargetState,
} from './layout.js'
import { acquireLock, readLock, type LockHolder } from './lock.js'
import { fleetChecks, type FleetFacts } from './fleet.js'
import { configCheck, failed, preflight, type Check } from './preflight.js'
import { migrate, npmCi, pm2, releaseScript, remoteJs, render, type RemoteVerb } from './commands.js'
import { SharedProxy, upstreamAddress } from './proxy.js'
import { batches, describePlan, ONE_AT_A_TIME, rollOut, type FleetSummary, type RollingPlan } from './rolling.js'
import { HostRun, type StepError, StopSignal, type Reporter, type StepRecord } from './steps.js'
import { LocalTarget, reasonLine, q, type Target, TargetError } from './target.js'

export { StepError, stopCleanlyOnSignals, StopSignal, type Reporter, type StepRecord } from './steps.js'

export class RolledBack extends Error {
  constructor(
    message: string,
    readonly live: string | null,
  ) {
    super(message)
  }
}

export interface HostReport {
  target: string
  action: Action
  release: string
  from: string | null
  result: Result | 'planned'
  reason?: string
  /** After the attempt: the release `current` points to. */
  live: string | null
  checks: Check[]
  steps: StepRecord[]
  durationMs: number
}

export interface DeployTiming {
  verifyTimeoutMs: number
  healthTimeoutMs: number
}

const DEFAULT_TIMING: DeployTiming = { verifyTimeoutMs: 30_000, healthTimeoutMs: 60_000 }

/** The app's PORT from shared/.env, as the workers will read it. */
async function appPort(target: Target): Promise<number | undefined> {
  return (await appListen(target)).port
}

/** The app's HOST and PORT from shared/.env. */
async function appListen(target: Target): Promise<{ host?: string; port?: number }> {
  const r = await target.sh('cat shared/.env')
  if (r.code !== 0) return {}
  const c = configCheck(r.stdout)
  return { host: c.config?.host, port: c.port }
}

export function healthUrl(settings: TargetSettings, port: number | undefined): string {
  return settings.healthUrl ?? `http://127.0.0.1:${port ?? DEFAULT_PORT}/readyz`
}

/** Taking a host out of the shared proxy's rotation while it changes, and back once healthy. */
export interface Rotation {
  leave(): Promise<string>
  rejoin(): Promise<string>
}

interface Context {
  run: HostRun
  settings: TargetSettings
  url: string
  timing: DeployTiming
  rotation?: Rotation
}

async function rejoin(ctx: Context): Promise<void> {
  if (ctx.rotation)
    await ctx.run.step(
      'rejoin upstream',
      () => ctx.rotation!.rejoin(),
      (d) => d,
    )
}

/**
 * The pm2 the daemon runs from, installed once per pm2 and Node version under shared/pm2/ (a
 * hard-linked copy of a release's node_modules), never inside a release: the daemon spawns every
 * worker (crash restarts, max_memory_restart) through its own copy of pm2, so a daemon started
 * from releases/<name> would break the day pruning removes that release. While a daemon runs,
 * the runtime it was started from (recorded in .runway/pm2-runtime) stays in use.
 */
export const pm2RuntimeScript = (settings: TargetSettings, release: string) =>
  [
    'set -e',
    `rec=.runway/pm2-runtime; pidfile=${q(`${settings.pm2Home}/pm2.pid`)}`,
    'if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && [ -s "$rec" ] && [ -d "$(cat "$rec")/node_modules/pm2" ]; then cat "$rec"; exit 0; fi',
    `src=releases/${q(release)}/node_modules`,
    `dir="$PWD/shared/pm2/$(node -p "require('./$src/pm2/package.json').version")-$(node -p process.version)"`,
    'if [ ! -d "$dir/node_modules/pm2" ]; then',
    '  tmp="$dir.tmp.$$"; rm -rf "$tmp"; mkdir -p "$tmp"',
    '  cp -al "$src" "$tmp/node_modules" 2>/dev/null || cp -a "$src" "$tmp/node_modules"',
    '  rm -rf "$dir"; mv -T "$tmp" "$dir"',
    'fi',
    // A daemon already running without a record (started by an older runway from a release)
    // keeps its release in use; prune skips it (see inUseScript).
    'mkdir -p .runway; echo "$dir" > "$rec.tmp"; mv -f "$rec.tmp" "$rec"',
    // shared/pm2/active: the same runtime under a fixed name, for the systemd unit and logrotate.
    'ln -sfn "$dir" shared/pm2/.active.tmp.$$ && mv -T shared/pm2/.active.tmp.$$ shared/pm2/active',
    'echo "$dir"',
  ].join('\n')

async function pm2Runtime(ctx: Context, release: string): Promise<string> {
  return (await ctx.run.sh(pm2RuntimeScript(ctx.settings, release))).trim().split('\n').pop()!
}

/** Runs a verb of the release's on-host helper (remote.js) and returns its detail; throws its reason. */
async function releaseVerb(ctx: Context, release: string, verb: RemoteVerb, flags: Record<string, string | number>, timeoutMs: number): Promise<string> {
  const cmd = remoteJs({ settings: ctx.settings, root: ctx.run.target.root, script: releaseScript(release), verb, flags })
  const r = await ctx.run.remote(render(cmd), timeoutMs)
  if (!r.ok) throw new Error(r.detail)
  return r.detail
}

async function reload(ctx: Context, release: string): Promise<string> {
  const root = ctx.run.target.root
  const runtime = await pm2Runtime(ctx, release)
  // Workers are started (or replaced one at a time, each only after its successor is ready) by
  // remote.js roll; pm2 records <root>/current/... as their script and cwd (--preserve-symlinks),
  // so every later restart starts from whatever current points to at that moment.
  const flags = { 'pm2-root': runtime, ecosystem: `${root}/current/ecosystem.config.js` }
  return releaseVerb(ctx, release, 'roll', flags, ctx.timing.healthTimeoutMs + 60_000)
}

async function gate(ctx: Context, release: string): Promise<string> {
  const flags = { release: `${ctx.run.target.root}/releases/${release}`, url: ctx.url, timeout: ctx.timing.healthTimeoutMs }
  return releaseVerb(ctx, release, 'gate', flags, ctx.timing.healthTimeoutMs)
}

async function savePm2(ctx: Context, release: string): Promise<void> {
  // The process list the systemd unit resurrects after a reboot (deploy/runway.service).
  const runtime = await pm2Runtime(ctx, release)
  await ctx.run.sh(`${render(pm2(ctx.settings, ctx.run.target.root, runtime, ['save', '--force']))} >/dev/null`)
}

/**
 * Makes `to` live: switch, reload, gate. If that fails, switches back to `from` (when there is
 * one), reloads and gates it, and throws RolledBack saying what failed and what is live now.
 */
async function activate(ctx: Context, to: string, from: string | null): Promise<void> {
  const { run } = ctx
  if (ctx.rotation)
    await run.step(
      'leave upstream',
      () => ctx.rotation!.leave(),
      (d) => d,
    )
  try {
    await run.step(
      'switch current',
      () => run.sh(switchScript(to)),
      () => `current -> releases/${to}`,
    )
    await run.step(
      'pm2 start/reload',
      () => reload(ctx, to),
      (d) => d,
    )
    await run.step(
      'health gate',
      () => gate(ctx, to),
      (d) => d,
    )
  } catch (err) {
    const reason = `${(err as StepError).step ?? 'activate'}: ${(err as Error).message}`
    if (!from) {
      // Nothing was live before: take the failed release down again rather than leave it serving.
      await run
        .step(
          'roll back',
          () =>
            pm2Runtime(ctx, to).then((rt) =>
              run.sh(
                `${render(pm2(ctx.settings, run.target.root, rt, ['delete', `releases/${to}/ecosystem.config.js`]))} >/dev/null 2>&1; rm -f current; true`,
              ),
            ),
          undefined,
          { cleanup: true },
        )
        .catch(() => {})
      throw new RolledBack(
        `${reason}; nothing was live before, so the app was stopped and current removed${ctx.rotation ? '; the host stays out of the upstream' : ''}`,
        null,
      )
    }
    await run
      .step(
        'roll back',
        async () => {
          await run.sh(switchScript(from))
          await reload(ctx, from)
          return gate(ctx, from)
        },
        () => `current -> releases/${from}, healthy`,
        { cleanup: true },
      )
      .catch((rollbackErr: Error) => {
        throw new RolledBack(
          `${reason}; ROLLBACK TO ${from} ALSO FAILED: ${rollbackErr.message}${ctx.rotation ? '; the host stays out of the upstream' : ''}`,
          null,
        )
      })
    // Healthy again on the release it ran: back into rotation (a failure to do so is said, not hidden).
    const back = ctx.rotation
      ? await ctx.run
          .step(
            'rejoin upstream',
            () => ctx.rotation!.rejoin(),
            (d) => d,
            { cleanup: true },
          )
          .then(
            () => '',
            (e: Error) => `; ${e.message}: the host stays out of the upstream`,
          )
      : ''
    throw new RolledBack(`${reason}; rolled back to ${from}${back}`, from)
  }
}

/** What a deploy ships: its size and sha known before preflight, the bytes built only after it. */
export interface ArtifactSource {
  estimateBytes: number
  sha: string
  gitChanges: string[]
  get(): Promise<Artifact>
}

export interface DeployOptions {
  targets: Target[]
  /** Flag overrides for each target's saved settings. */
  overrides: Partial<TargetSettings>
  /** Builds the artifact (after preflight), or returns one given with --artifact. */
  artifact: ArtifactSource
  allowDirty: boolean
  dryRun: boolean
  breakLock: boolean
  reporter: Reporter
  timing?: Partial<DeployTiming>
  /** How the hosts of a fleet are taken through (default: one at a time, fleet rollback on failure). */
  plan?: RollingPlan
  /** After the canary batch passed its health gates: null, or why its hosts are not good enough (e.g. load-test thresholds). */
  canaryCheck?: (hosts: Array<{ target: string; url: string }>) => Promise<string | null>
  /** Ctrl-C/SIGTERM from the CLI (stopCleanlyOnSignals); none by default. */
  stop?: StopSignal
  /** Opens the shared proxy's host ("local" or [user@]host[:port]) the way the fleet's hosts were opened. */
  openTarget?: (host: string, path: string) => Target
}

export interface DeployReport {
  ok: boolean
  dryRun: boolean
  sha: string
  hosts: HostReport[]
  /** Hosts not attempted (a rollout stops at the first failure). */
  skipped: string[]
  /** Several hosts: the plan, the batches, the first failure, the fleet rollback, and which host runs what. */
  fleet?: FleetSummary
}

/** The gate's URL on one host of a fleet: that host's own app, whatever a public URL would reach. */
export function hostHealthUrl(appHost: string | undefined, port: number | undefined): string {
  const h = !appHost || appHost === '0.0.0.0' || appHost === '::' ? '127.0.0.1' : appHost
  return `http://${h.includes(':') ? `[${h}]` : h}:${port ?? 3000}/readyz`
}

const isLoopbackUrl = (url: string) => /^(127\.|\[::1\]$|localhost$)/.test(new URL(url).hostname)

/** The shared proxy of a fleet, from the hosts' settings (they must agree), opened once. */
function openProxy(settings: TargetSettings[], open: DeployOptions['openTarget']): SharedProxy | Check | null {
  const seen = [...new Set(settings.map((s) => JSON.stringify(s.proxy ?? null)))]
  if (seen.length > 1)
    return { name: 'proxy', level: 'error', message: `the hosts name different proxies (${seen.join(' vs ')}): give --proxy/--proxy-conf for all of them` }
  const p = settings[0]?.proxy
  if (!p) return null
  const dir = SharedProxy.targetDir(p)
  if (p.host !== 'local' && !open)
    return { name: 'proxy', level: 'error', message: `the proxy ${p.host} is on another host and this caller cannot open ssh connections` }
  return new SharedProxy(p.host === 'local' ? new LocalTarget(dir) : open!(p.host, dir), p)
}

function rotationFor(proxy: SharedProxy | null, addr: string): Rotation | undefined {
  return proxy ? { leave: () => proxy.leave(addr), rejoin: () => proxy.rejoin(addr) } : undefined
}

interface Planned {
  state: TargetState
  settings: TargetSettings
  checks: Check[]
  url: string
  lock: LockHolder | null | undefined
  fleet?: FleetFacts
  addr: string
}

export async function deploy(o: DeployOptions): Promise<DeployReport> {
  const timing = { ...DEFAULT_TIMING, ...o.timing }
  const started = Date.now()
  const stop = o.stop ?? new StopSignal()
  const runs = o.targets.map((t) => new HostRun(t, o.reporter, stop))
  const planned: Planned[] = []
  const many = o.targets.length > 1

  // Preflight every host before touching any (all at once: it only reads): a rolling deploy must
  // not stop half-way on something that was knowable up front.
  const outcomes = await Promise.all(
    runs.map((run, i) =>
      run
        .step(
          'preflight',
          async () => {
            const state = await readState(run.target)
            const settings = { ...state.settings, ...o.overrides }
            const pre = await preflight({
              target: run.target,
              settings,
              artifactBytes: o.artifact.estimateBytes,
              gitChanges: o.artifact.gitChanges,
              allowDirty: o.allowDirty,
            })
            for (const c of pre.checks) o.reporter.check(run.target, c)
            // In a fleet the gate asks each host's own app: a URL through the shared nginx may be
            // answered by any host, so it would not say whether this one is healthy.
            const url =
              (many || settings.proxy) && (!settings.healthUrl || !isLoopbackUrl(settings.healthUrl))
                ? hostHealthUrl(pre.appHost, pre.port)
                : healthUrl(settings, pre.port)
            const addr = upstreamAddress({ upstream: settings.upstream, hostname: run.target.hostname, appHost: pre.appHost, port: pre.port })
            const value = { state, settings, checks: pre.checks, url, lock: await readLock(run.target), fleet: pre.fleet, addr }
            planned[i] = value
            const errors = failed(pre.checks)
            // A dry run fails its preflight step too (✗, not ✓): it goes on only to print the plan.
            if (errors.length)
              throw new Error(`${errors.length} problem${errors.length > 1 ? 's' : ''}: ${errors.map((e) => `${e.name}: ${e.message}`).join('; ')}`)
            return value
          },
          (v) => `${v.checks.filter((c) => c.level === 'ok').length} ok, ${v.checks.filter((c) => c.level === 'warn').length} warnings`,
        )
        .then(
          () => null,
          (err: Error) => err,
        ),
    ),
  )
  for (const [i, run] of runs.entries()) {
    const err = outcomes[i]
    if (err) {
      if (o.dryRun && planned[i]) continue
      const p = planned[i]
      const report = hostReport(run, 'deploy', '', p?.state.current ?? null, 'failed', p?.checks ?? [], Date.now() - started)
      report.reason = `preflight: ${err.message}`
      return { ok: false, dryRun: o.dryRun, sha: o.artifact.sha, hosts: [report], skipped: o.targets.filter((_, j) => j !== i).map((t) => t.label) }
    }
  }

  // Several hosts serve one API: one signing key, one database, one proxy that lists them all.
  // Compared before any host changes.
  const fleet = fleetChecks(runs.flatMap((run, i) => (planned[i]?.fleet ? [{ label: run.target.label, facts: planned[i]!.fleet! }] : [])))
  const proxy = openProxy(
    planned.map((p) => p.settings),
    o.openTarget,
  )
  if (proxy instanceof SharedProxy) fleet.push(await proxy.check(runs.map((run, i) => ({ label: run.target.label, addr: planned[i]!.addr }))))
  else if (proxy) fleet.push(proxy)
  const shared = proxy instanceof SharedProxy ? proxy : null
  for (const c of fleet) o.reporter.check(runs[0]!.target, c)
  if (many && planned.some((p) => p.settings.healthUrl && !isLoopbackUrl(p.settings.healthUrl)))
    o.reporter.info(
      `  health gate: each host's own app (${planned[0]!.url} on ${runs[0]!.target.label}), not --health-url: through a shared proxy any host could answer it`,
    )
  const fleetErrors = failed(fleet)
  if (fleetErrors.length) {
    for (const p of planned) p.checks.push(...fleetErrors)
    if (!o.dryRun) {
      await shared?.target.close()
      const report = hostReport(runs[0]!, 'deploy', '', planned[0]?.state.current ?? null, 'failed', planned[0]?.checks ?? [], Date.now() - started)
      report.reason = `preflight: ${fleetErrors.map((e) => e.message).join('; ')}`
      return { ok: false, dryRun: false, sha: o.artifact.sha, hosts: [report], skipped: o.targets.slice(1).map((t) => t.label) }
    }
  }

  const plan = o.plan ?? ONE_AT_A_TIME
  const name = releaseName(o.artifact.sha)
  if (o.dryRun) {
    await shared?.target.close()
    const hosts = runs.map((run, i) => {
      const p = planned[i]!
      const report = hostReport(run, 'deploy', name, p.state.current, 'planned', p.checks, 0)
      report.reason = planText(run.target, name, p, shared)
      return report
    })
    // A dry run "fails" when the real deploy would: a preflight error or a held lock.
    const ok = planned.every((p) => !failed(p.checks).length && p.lock === undefined)
    const groups = batches(runs.length, plan)
    if (many)
      o.reporter.info(
        `would roll out in ${groups.length} batch${groups.length > 1 ? 'es' : ''} (${describePlan(plan)}): ${groups.map((g) => g.map((i) => runs[i]!.target.label).join(' + ')).join(' → ')}`,
      )
    return { ok, dryRun: true, sha: o.artifact.sha, hosts, skipped: [] }
  }

  const artifact = await runs[0]!.step(
    'build artifact',
    () => o.artifact.get(),
    (a) => `${(a.bytes / 1048576).toFixed(1)} MB, sha ${a.revision.sha}${a.revision.dirty ? ' (dirty)' : ''}`,
  )
  try {
    if (!many) {
      const p = planned[0]!
      const report = await deployHost(runs[0]!, p, artifact, name, o.breakLock, timing, rotationFor(shared, p.addr))
      report.checks = p.checks
      return { ok: report.result === 'ok', dryRun: false, sha: artifact.revision.sha, hosts: [report], skipped: [] }
    }
    o.reporter.info(`rolling out to ${runs.length} hosts: ${describePlan(plan)}${shared ? `; each host leaves ${shared.label} while it changes` : ''}`)
    const out = await rollOut({
      targets: runs.map((r) => r.target.label),
      before: planned.map((p) => p.state.current),
      plan,
      info: (text) => o.reporter.info(text),
      stopped: () => stop.signal,
      change: async (i) => {
        const p = planned[i]!
        const report = await deployHost(runs[i]!, p, artifact, name, o.breakLock, timing, rotationFor(shared, p.addr))
        report.checks = p.checks
        return report
      },
      canary: o.canaryCheck ? (idx) => o.canaryCheck!(idx.map((i) => ({ target: runs[i]!.target.label, url: `http://${planned[i]!.addr}` }))) : undefined,
      revert: async (i, r) => {
        const p = planned[i]!
        if (!r.from) throw new Error(`nothing ran on ${r.target} before this deploy: it keeps ${r.release} (stop it with pm2 or deploy again)`)
        return rollback({
          target: runs[i]!.target,
          to: r.from ?? undefined,
          breakLock: false,
          reporter: o.reporter,
          overrides: o.overrides,
          timing,
          dryRun: false,
          stop,
          fleet: { rotation: rotationFor(shared, p.addr), url: p.url, reason: 'fleet rollback: a later host of this deploy failed' },
        })
      },
    })
    return { ok: out.ok, dryRun: false, sha: artifact.revision.sha, hosts: out.reports, skipped: out.skipped, fleet: out.summary }
  } finally {
    artifact.remove()
    await shared?.target.close()
  }
}

function planText(target: Target, name: string, p: Planned, proxy: SharedProxy | null): string {
  const prune = releasesToPrune([...p.state.releases, name], name, p.settings.keep)
  const rotation = (step: string) => (proxy ? `${step} (${p.addr} in ${proxy.label}) → ` : '')
  return [
    `would deploy releases/${name} to ${target.label} (live now: ${p.state.current ?? 'nothing'})`,
    p.lock !== undefined ? `the target is LOCKED by ${p.lock ? `${p.lock.by} (${p.lock.command}, since ${p.lock.since})` : 'an unknown holder'}` : 'lock: free',
    `steps: upload → npm ci --omit=dev (deps cache: ${p.settings.depsCache}) → link shared/.env, data, logs → runway migrate → verify on a spare port → ${rotation('leave upstream')}switch current → pm2 startOrReload (PM2_HOME=${p.settings.pm2Home}) → health gate ${p.url} → ${proxy ? 'rejoin upstream → ' : ''}keep ${p.settings.keep} releases${prune.length ? ` (would remove ${prune.join(', ')})` : ''}`,
  ].join('; ')
}

function hostReport(
  run: HostRun,
  action: Action,
  release: string,
  from: string | null,
  result: HostReport['result'],
  checks: Check[],
  durationMs: number,
): HostReport {
  return { target: run.target.label, action, release, from, result, live: from, checks, steps: run.steps, durationMs }
}

async function deployHost(
  run: HostRun,
  p: Planned,
  artifact: Artifact,
  name: string,
  breakLock: boolean,
  timing: DeployTiming,
  rotation?: Rotation,
): Promise<HostReport> {
  const { target } = run
  const { state, settings, url } = p
  const started = Date.now()
  let from = state.current
  const report = hostReport(run, 'deploy', name, from, 'failed', [], 0)
  const lock = await run
    .step(
      'lock',
      () => acquireLock(target, `deploy ${name}`, { breakLock }),
      (l) =>
        l.broke !== undefined
          ? `broke the lock held by ${l.broke ? `${l.broke.by} (${l.broke.command}, since ${l.broke.since})` : 'an unknown holder'}`
          : undefined,
    )
    .catch((err: Error) => err)
  if (lock instanceof Error) {
    // Someone else's deploy: not ours to log as a failed release of this target.
    report.reason = lock.message
    return report
  }
  const ctx: Context = { run, settings, url, timing, rotation }
  let activated = false
  try {
    // What is live is read under the lock: a deploy that finished while this one was in
    // preflight or building changed it, and `from` is what a failure rolls back to.
    from = (await readState(target)).current
    report.from = from
    report.live = from
    const changed = (Object.keys(settings) as Array<keyof TargetSettings>).filter((k) => JSON.stringify(settings[k]) !== JSON.stringify(state.settings[k]))
    if (changed.length)
      run.reporter.info(
        `  saving to ${target.root}/.runway/target.json (later deploys, rollbacks and status reuse it; see \`runway settings\`, which can --unset it): ${changed.map((k) => `${k}=${JSON.stringify(settings[k])} (was ${JSON.stringify(state.settings[k] ?? null)})`).join(', ')}`,
      )
    await saveSettings(target, settings)
    const rel = `releases/${name}`
    await run.step(
      'upload',
      async () => {
        await run.sh(`${prepareScript()} && { [ ! -e ${q(rel)} ] || { echo 'release ${name} already exists'; exit 1; }; } && rm -rf ${q(`${rel}.partial`)}`)
        await target.upload(artifact.dir, `${target.root}/${rel}.partial`)
        // Only complete uploads get a release name: `releases` never lists a half-copied one.
        await run.sh(`mv -T ${q(`${rel}.partial`)} ${q(rel)}`)
      },
      () => `${(artifact.bytes / 1048576).toFixed(1)} MB to ${rel}`,
    )
    await run.step(
      'npm ci --omit=dev',
      () => run.sh(depsScript(settings, target.root, name), 900_000).then((o) => reasonLine(o)),
      (d) => d,
    )
    await run.step(
      'link shared',
      () => run.sh(linkSharedScript(name)),
      () => '.env, data, logs -> shared/',
    )
    await run.step(
      'migrate',
      () => run.sh(render(migrate(settings, target.root, name))).then((o) => reasonLine(o)),
      (d) => d,
    )
    await run.step(
      'verify',
      async () => {
        const r = await run.remote(
          render(
            remoteJs({
              settings,
              root: target.root,
              cwd: rel,
              script: '.',
              verb: 'verify',
              flags: { release: { sh: '"$PWD"' }, timeout: timing.verifyTimeoutMs },
            }),
          ),
          timing.verifyTimeoutMs,
        )
        if (!r.ok) throw new Error(`the release does not start: ${r.detail}`)
        return r.detail
      },
      (d) => d,
    )
    await activate(ctx, name, from)
    activated = true
    report.live = name
    await rejoin(ctx)
    report.result = 'ok'
    // The release is live and healthy from here on: housekeeping that fails is reported, and does
    // not turn a good deploy into a failed one.
    await run
      .step(
        'prune',
        async () => {
          await savePm2(ctx, name)
          const inUse = new Set((await run.sh(inUseScript(target.root))).split('\n').filter(Boolean))
          // The daemon's own pm2 (its title hides it from /proc): a daemon an older runway started
          // from a release keeps that release, or every later worker restart would fail.
          const d = await run.remote(
            render(
              remoteJs({ settings, root: target.root, script: releaseScript(name), verb: 'daemon', flags: { release: `${target.root}/releases/${name}` } }),
            ),
            30_000,
          )
          const daemonRelease = typeof d.script === 'string' ? /\/releases\/([^/]+)\/node_modules\/pm2\//.exec(d.script)?.[1] : undefined
          if (daemonRelease) inUse.add(daemonRelease)
          const candidates = releasesToPrune([...(await readState(target)).releases], name, settings.keep)
          const gone = candidates.filter((r) => !inUse.has(r))
          await run.sh(`${pruneScript(gone)} && ${depsPruneScript(settings)}`)
          return { gone, kept: candidates.filter((r) => inUse.has(r)) }
        },
        ({ gone, kept }) =>
          `${gone.length ? `removed ${gone.join(', ')}` : `kept all ${settings.keep}`}${kept.length ? `; kept ${kept.join(', ')}: a running process still uses it` : ''}`,
      )
      .catch((err: Error) => run.reporter.info(`warning: ${target.label}: ${err.message} (the deploy itself succeeded)`))
  } catch (err) {
    if (err instanceof RolledBack) {
      // "rolled-back" only when the previous release is live again; a rollback that also failed
      // (or had nothing to go back to) leaves nothing healthy: that is a failure.
      report.result = err.live !== null && err.live === from ? 'rolled-back' : 'failed'
      report.reason = err.message
      report.live = err.live
    } else {
      report.result = 'failed'
      report.reason = `${(err as StepError).step ?? 'deploy'}: ${(err as Error).message}`
      report.live = activated ? name : from
    }
  } finally {
    report.durationMs = Date.now() - started
    await appendAudit(
      target,
      entry({
        action: 'deploy',
        sha: artifact.revision.sha,
        from,
        to: name,
        result: report.result as Result,
        live: report.live,
        reason: report.reason,
        durationMs: report.durationMs,
      }),
    ).catch((err: Error) => run.reporter.info(`could not write the audit log on ${target.label}: ${err.message}`))
    await lock.release()
  }
  return report
}

/**
 * `npm ci --omit=dev` in the release, or a hard-linked copy of node_modules installed earlier
 * from the same lockfile on the same Node version and platform (npm ci is deterministic for
 * those), which turns a minute of compiling better-sqlite3 into a second.
 */
function depsScript(settings: TargetSettings, root: string, release: string): string {
  const cache = settings.depsCache
  return [
    'set -e',
    `rel=${q(`${root}/releases/${release}`)}`,
    `cache=${q(cache)}`,
    `key=$( { cat "$rel/package-lock.json"; node -p 'process.version+process.arch+process.platform'; } | sha256sum | cut -c1-16)`,
    'if [ "$cache" != off ] && [ -d "$cache/$key/node_modules" ]; then',
    '  cp -al "$cache/$key/node_modules" "$rel/node_modules" 2>/dev/null || cp -a "$cache/$key/node_modules" "$rel/node_modules"',
    '  touch "$cache/$key"',
    '  echo "reused node_modules installed by npm ci from the same lockfile ($key)"',
    'else',
    `  ${npmCi(settings, root, { sh: '"$rel"' })}`,
    '  if [ "$cache" != off ]; then',
    '    mkdir -p "$cache"; tmp="$cache/.tmp.$$"; rm -rf "$tmp"; mkdir "$tmp"',
    '    cp -al "$rel/node_modules" "$tmp/node_modules" 2>/dev/null || cp -a "$rel/node_modules" "$tmp/node_modules"',
    '    mv -T "$tmp" "$cache/$key" 2>/dev/null || rm -rf "$tmp"',
    '  fi',
    '  echo "npm ci --omit=dev installed $(ls "$rel/node_modules" | wc -l) packages ($key)"',
    'fi',
  ].join('\n')
}

/** Keeps the three most recently used dependency sets. */
const depsPruneScript = (settings: TargetSettings) =>
  settings.depsCache === 'off'
    ? 'true'
    : `[ -d ${q(settings.depsCache)} ] && ls -1t ${q(settings.depsCache)} | tail -n +4 | while read -r k; do rm -rf ${q(settings.depsCache)}/"$k"; done; true`

export interface RollbackOptions {
  target: Target
  to?: string
  breakLock: boolean
  reporter: Reporter
  overrides: Partial<TargetSettings>
  timing?: Partial<DeployTiming>
  dryRun: boolean
  stop?: StopSignal
  /** Part of a fleet: the host's own health URL, its place in the shared proxy, why (for the log). */
  fleet?: { url?: string; rotation?: Rotation; reason?: string }
}

/** Switches back to an earlier release (default: the newest one before the live one that did not fail). */
/** Which release a rollback goes to, from the target's state and audit log. */
async function rollbackPlan(o: RollbackOptions): Promise<{ state: TargetState; from: string | null; to: string }> {
  const state = await readState(o.target)
  const from = state.current
  const bad = failedReleases(await readAudit(o.target))
  let to = o.to
  if (to) {
    if (!state.releases.includes(to)) throw new TargetError(`no release ${to} on ${o.target.label}: see \`runway releases\``)
    if (to === from) throw new TargetError(`${to} is already live on ${o.target.label}`)
  } else {
    const older = state.releases.filter((r) => (from ? r < from : true) && !bad.has(r))
    to = older.pop()
    if (!to) throw new TargetError(`no earlier healthy release on ${o.target.label} to roll back to (live: ${from ?? 'nothing'}): see \`runway releases\``)
  }
  return { state, from, to }
}

/** Switches back to an earlier release (default: the newest one before the live one that did not fail). */
export async function rollback(o: RollbackOptions): Promise<HostReport> {
  const timing = { ...DEFAULT_TIMING, ...o.timing }
  const run = new HostRun(o.target, o.reporter, o.stop)
  if (o.dryRun) {
    const { from, to } = await rollbackPlan(o)
    const report = hostReport(run, 'rollback', to, from, 'planned', [], 0)
    report.reason = `would switch ${o.target.label} from ${from ?? 'nothing'} to ${to}, pm2 start/reload, health gate`
    return report
  }
  const envCheck = await o.target.sh('test -e shared/.env')
  if (envCheck.code !== 0) throw new TargetError(`${o.target.root}/shared/.env is missing: nothing can run`)
  const started = Date.now()
  // The lock first, then the state: a deploy that finished meanwhile changed what is live.
  const lock = await run.step('lock', () => acquireLock(o.target, `rollback${o.to ? ` to ${o.to}` : ''}`, { breakLock: o.breakLock }))
  let plan: Awaited<ReturnType<typeof rollbackPlan>>
  try {
    plan = await rollbackPlan(o)
  } catch (err) {
    await lock.release()
    throw err
  }
  const { state, from, to } = plan
  const settings = { ...state.settings, ...o.overrides }
  const ctx: Context = { run, settings, url: o.fleet?.url ?? healthUrl(settings, await appPort(o.target)), timing, rotation: o.fleet?.rotation }
  const report = hostReport(run, 'rollback', to, from, 'failed', [], 0)
  const sha = to.split('-').pop() ?? ''
  let activated = false
  try {
    await activate(ctx, to, from)
    activated = true
    report.live = to
    await rejoin(ctx)
    report.result = 'ok'
    if (o.fleet?.reason) report.reason = o.fleet.reason
    await run.step('pm2 save', () => savePm2(ctx, to)).catch((err: Error) => run.reporter.info(`warning: ${o.target.label}: pm2 save: ${err.message}`))
  } catch (err) {
    if (!(err instanceof RolledBack)) {
      if (!activated) throw err
      // Live and healthy, but not back in the shared proxy's upstream.
      report.result = 'failed'
      report.reason = `${(err as StepError).step ?? 'rollback'}: ${(err as Error).message}`
    } else {
      report.result = err.live === from && from !== null ? 'rolled-back' : 'failed'
      report.reason = err.message.replace(/rolled back to/, 'restored')
      report.live = err.live
    }
  } finally {
    report.durationMs = Date.now() - started
    await appendAudit(
      o.target,
      entry({ action: 'rollback', sha, from, to, result: report.result as Result, live: report.live, reason: report.reason, durationMs: report.durationMs }),
    )
    await lock.release()
  }
  return report
}

export interface FleetRollbackOptions extends Omit<RollbackOptions, 'target' | 'fleet'> {
  targets: Target[]
  plan?: RollingPlan
  openTarget?: DeployOptions['openTarget']
}

export interface FleetRollbackReport {
  ok: boolean
  hosts: HostReport[]
  skipped: string[]
  fleet?: FleetSummary
}

/**
 * `runway rollback` over several hosts: the same rollout as a deploy (canary, batches, pause,
 * each host out of the shared proxy while it switches), and on a failure either a stop or the
 * hosts already switched back are put forward again to what they ran.
 */
export async function rollbackFleet(o: FleetRollbackOptions): Promise<FleetRollbackReport> {
  if (o.targets.length === 1 && !o.plan) {
    const r = await rollback({ ...o, target: o.targets[0]! })
    return { ok: r.result === 'ok' || r.result === 'planned', hosts: [r], skipped: [] }
  }
  const hosts = await Promise.all(
    o.targets.map(async (target) => {
      const state = await readState(target)
      const settings = { ...state.settings, ...o.overrides }
      const listen = await appListen(target)
      return {
        state,
        settings,
        url: hostHealthUrl(listen.host, listen.port),
        addr: upstreamAddress({ upstream: settings.upstream, hostname: target.hostname, appHost: listen.host, port: listen.port }),
      }
    }),
  )
  if (o.dryRun) {
    const reports: HostReport[] = []
    for (const target of o.targets) reports.push(await rollback({ ...o, target }))
    return { ok: true, hosts: reports, skipped: [] }
  }
  const proxy = openProxy(
    hosts.map((h) => h.settings),
    o.openTarget,
  )
  if (proxy && !(proxy instanceof SharedProxy)) throw new TargetError(proxy.message)
  const shared = proxy instanceof SharedProxy ? proxy : null
  if (shared) {
    const c = await shared.check(o.targets.map((t, i) => ({ label: t.label, addr: hosts[i]!.addr })))
    if (c.level === 'error') {
      await shared.target.close()
      throw new TargetError(c.message)
    }
  }
  const plan = o.plan ?? ONE_AT_A_TIME
  o.reporter.info(`rolling back ${o.targets.length} hosts: ${describePlan(plan)}${shared ? `; each host leaves ${shared.label} while it switches` : ''}`)
  try {
    const out = await rollOut({
      targets: o.targets.map((t) => t.label),
      before: hosts.map((h) => h.state.current),
      plan,
      info: (text) => o.reporter.info(text),
      stopped: () => o.stop?.signal ?? null,
      change: (i) => rollback({ ...o, target: o.targets[i]!, fleet: { url: hosts[i]!.url, rotation: rotationFor(shared, hosts[i]!.addr) } }),
      revert: (i, r) =>
        rollback({
          ...o,
          to: r.from ?? undefined,
          target: o.targets[i]!,
          fleet: {
            url: hosts[i]!.url,
            rotation: rotationFor(shared, hosts[i]!.addr),
            reason: 'fleet rollback: the rollback failed on another host, so this host went back to the release it ran',
          },
        }),
    })
    return { ok: out.ok, hosts: out.reports, skipped: out.skipped, fleet: out.summary }
  } finally {
    await shared?.target.close()
  }
}

export interface ReleaseInfo {
  name: string
  sha: string
  live: boolean
  failed?: string
  deployedAt?: string
  deployedBy?: string
}

export async function listReleases(target: Target): Promise<{ target: string; current: string | null; releases: ReleaseInfo[]; log: AuditEntry[] }> {
  const state = await readState(target)
  const log = await readAudit(target)
  const bad = failedReleases(log)
  const releases = state.releases.map((name) => {
    const last = log.filter((e) => e.to === name && e.action === 'deploy').pop()
    return { name, sha: name.split('-').pop() ?? '', live: name === state.current, failed: bad.get(name), deployedAt: last?.at, deployedBy: last?.by }
  })
  return { target: target.label, current: state.current, releases, log }
}

export interface StatusReport {
  target: string
  current: string | null
  healthy: boolean
  health: { url: string; healthy: boolean; detail: string }
  workers: Array<{ id: number; pid: number; status: string; cwd: string; uptimeMs: number; restarts: number; memory: number }>
  pm2Error?: string
  /** Why the target is not healthy (dead workers and their error line first), when it is not. */
  reason?: string
  /** From the app's metrics endpoint over 2 s; url absent when METRICS_PORT is not set. */
  metrics?: { url?: string; workers?: WorkerFigures[]; host?: WorkerFigures | null; error?: string }
  lastDeploy?: AuditEntry
}

export async function status(target: Target, overrides: Partial<TargetSettings> = {}): Promise<StatusReport> {
  const state = await readState(target)
  const settings = { ...state.settings, ...overrides }
  const log = await readAudit(target)
  const base = { target: target.label, current: state.current, lastDeploy: log.pop() }
  const url = healthUrl(settings, await appPort(target))
  if (!state.current) return { ...base, healthy: false, health: { url, healthy: false, detail: 'nothing deployed yet' }, workers: [] }
  const r = await target.sh(
    render(remoteJs({ settings, root: target.root, cwd: 'current', script: '.', verb: 'probe', flags: { release: { sh: '"$(pwd -P)"' }, url } })),
    { timeoutMs: 60_000 },
  )
  try {
    const p = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Omit<StatusReport, 'target' | 'current'> & { ok: boolean }
    return { ...base, healthy: p.ok, health: p.health, workers: p.workers, pm2Error: p.pm2Error, reason: p.reason, metrics: p.metrics }
  } catch {
    throw new TargetError(`cannot read the status on ${target.label}: ${reasonLine(r.stderr) || reasonLine(r.stdout)}`)
  }
}

export interface RestartOptions {
  target: Target
  stop?: StopSignal
  breakLock: boolean
  reporter: Reporter
  overrides: Partial<TargetSettings>
  timing?: Partial<DeployTiming>
}

/**
 * Starts the live release again when its pm2 daemon is gone (a reboot without the unit), or
 * replaces its workers one at a time when it runs: pm2 start/reload of `current`, health gate,
 * pm2 save. Nothing is switched; the audit log is not a release history, so nothing is logged.
 */
export async function restart(o: RestartOptions): Promise<{ target: string; live: string; detail: string; steps: StepRecord[] }> {
  const timing = { ...DEFAULT_TIMING, ...o.timing }
  const run = new HostRun(o.target, o.reporter, o.stop)
  const lock = await run.step('lock', () => acquireLock(o.target, 'restart', { breakLock: o.breakLock }))
  try {
    const state = await readState(o.target)
    if (!state.current) throw new TargetError(`nothing is deployed on ${o.target.label}: run \`runway deploy\` first`)
    if ((await o.target.sh('test -e shared/.env')).code !== 0) throw new TargetError(`${o.target.root}/shared/.env is missing: nothing can run`)
    const settings = { ...state.settings, ...o.overrides }
    const ctx: Context = { run, settings, url: healthUrl(settings, await appPort(o.target)), timing }
    const live = state.current
    await run.step(
      'pm2 start/reload',
      () => reload(ctx, live),
      (d) => d,
    )
    const detail = await run.step(
      'health gate',
      () => gate(ctx, live),
      (d) => d,
    )
    await run.step('pm2 save', () => savePm2(ctx, live)).catch((err: Error) => run.reporter.info(`warning: ${o.target.label}: pm2 save: ${err.message}`))
    return { target: o.target.label, live, detail, steps: run.steps }
  } finally {
    await lock.release()
  }
}
