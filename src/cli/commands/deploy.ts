import { cpSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CliError, note, parseFlags, print, type Command } from '../command.js'
import { ArtifactError, buildArtifact, directoryBytes, gitState, readArtifact } from '../../ops/deploy/artifact.js'
import { spawn } from 'node:child_process'
import {
  asCliError,
  closeAll,
  fleetText,
  openTargets,
  ROLLING_USAGE,
  rollingFlags,
  rollingPlan,
  seconds,
  settingsFlags,
  settingsOverrides,
  SETTINGS_USAGE,
  stderrReporter,
  targetFlags,
  targetOpener,
  TARGET_USAGE,
} from '../deploy-flags.js'
import { deploy, stopCleanlyOnSignals, type ArtifactSource, type DeployReport } from '../../ops/deploy/deploy.js'

const usage = `Usage: runway deploy --path DIR [--host [USER@]HOST[:PORT] ...] [options]

Builds the app once (dist/, package.json, package-lock.json, ecosystem.config.js, bin/) and
releases it to each target (several hosts: canary, batches, fleet rollback; see Fleet below):

  preflight → build artifact → upload → npm ci --omit=dev → link shared/.env, data, logs →
  runway migrate → verify (start once on a spare port, /readyz) → switch current (atomic) →
  pm2 startOrReload --env production --update-env → health gate → keep the last N releases

A failure before the switch leaves the live release untouched; after it, the previous release is
switched back and reloaded automatically. Every attempt is appended to DIR/.runway/deploys.log.
The target needs Node.js, and DIR/shared/.env with NODE_ENV=production and a strong
JWT_SIGNING_KEY (see docs/deploying.md).

${TARGET_USAGE}

Deploy:
  --source DIR            the git checkout to build (default: the current directory)
  --artifact DIR          deploy an artifact built earlier instead of building one
  --build-only --out DIR  build the artifact into DIR and stop (CI: build once, deploy the same bytes)
  --allow-dirty           deploy a working tree with uncommitted changes (a warning, not an error)
  --dry-run               run the read-only preflight, print the plan, change nothing
  --break-lock            take the deploy lock even if held (only when its holder is dead)
  --health-timeout SEC    how long the health gate waits (default 60)
  --verify-timeout SEC    how long the new release gets to answer /readyz before the switch (default 30)
  --keep N                releases to keep (default 5; the live one is always kept)
  --deps-cache DIR|off    node_modules reused across releases with an identical lockfile
                          (default DIR/.runway/deps; off = a fresh npm ci every time)

${ROLLING_USAGE}
  --canary-threshold EXPR after the canaries pass their gates, \`runway loadtest\` each of them
                          (at its upstream address) with this threshold (repeatable, e.g. 'p99<250ms',
                          'errors<0.1%'); the rollout goes on only if every threshold holds
  --canary-duration SEC   how long that load test runs per canary host (default 10)

${SETTINGS_USAGE}
  --nginx-conf FILE       nginx config on the target: preflight runs nginx -t and checks its
  --nginx-prefix DIR        ssl_certificate files for expiry (-p DIR for nginx -t)
  --tls-cert FILE         another certificate to check for expiry (repeatable)

Exit status: 0 deployed; 1 refused or failed (see the last line); 2 usage.`

function summary(r: DeployReport): string {
  if (r.fleet && !r.dryRun) return fleetText(r.fleet)
  if (r.dryRun)
    return r.hosts.map((h) => `dry run: ${h.reason}`).join('\n') + (r.ok ? '' : '\ndry run: preflight found problems or a target is locked (see above)')
  const lines = r.hosts.map((h) =>
    h.result === 'ok'
      ? `deployed ${h.release} to ${h.target} in ${(h.durationMs / 1000).toFixed(1)}s (was ${h.from ?? 'nothing'})`
      : `${h.result === 'rolled-back' ? 'rolled back' : 'not deployed'} on ${h.target}: ${h.reason}`,
  )
  if (r.skipped.length) lines.push(`not attempted: ${r.skipped.join(', ')}`)
  return lines.join('\n')
}

export const deployCommand: Command = {
  name: 'deploy',
  summary: 'release the app to a directory or over SSH: atomic switch, health gate, auto-rollback',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      ...targetFlags,
      ...settingsFlags,
      source: { type: 'string' },
      artifact: { type: 'string' },
      'build-only': { type: 'boolean' },
      out: { type: 'string' },
      'allow-dirty': { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      'break-lock': { type: 'boolean' },
      'health-timeout': { type: 'string' },
      'verify-timeout': { type: 'string' },
      keep: { type: 'string' },
      'deps-cache': { type: 'string' },
      'nginx-conf': { type: 'string' },
      'nginx-prefix': { type: 'string' },
      'tls-cert': { type: 'string', multiple: true },
      ...rollingFlags,
      'canary-threshold': { type: 'string', multiple: true },
      'canary-duration': { type: 'string' },
    })
    if (values.help) return (print(usage), 0)
    const source = resolve(values.source ?? '.')

    try {
      if (values['build-only']) {
        if (!values.out) throw new CliError('--build-only needs --out DIR', 2)
        const git = gitState(source)
        if (git.changes.length && !values['allow-dirty'])
          throw new CliError(`${source} has ${git.changes.length} uncommitted changes: commit them or pass --allow-dirty`)
        const a = await buildArtifact(source)
        cpSync(a.dir, resolve(values.out), { recursive: true })
        a.remove()
        print(
          values.json
            ? JSON.stringify({ ok: true, out: resolve(values.out), ...a.revision, bytes: a.bytes })
            : `built artifact ${a.revision.sha} into ${resolve(values.out)}`,
        )
        return 0
      }

      const overrides = settingsOverrides(values)
      const plan = rollingPlan(values)
      const thresholds = values['canary-threshold'] ?? []
      if (thresholds.length && !plan.canary) throw new CliError('--canary-threshold needs --canary N', 2)
      const canaryMs = seconds('canary-duration', values['canary-duration'], 10)
      const timing = {
        healthTimeoutMs: seconds('health-timeout', values['health-timeout'], 60),
        verifyTimeoutMs: seconds('verify-timeout', values['verify-timeout'], 30),
      }
      let artifact: ArtifactSource
      if (values.artifact) {
        const given = readArtifact(resolve(values.artifact))
        artifact = {
          estimateBytes: given.bytes,
          sha: given.revision.sha,
          gitChanges: given.revision.dirty ? ['(artifact built from a dirty tree)'] : [],
          get: async () => given,
        }
      } else {
        const git = gitState(source)
        // Before the build, the last build's size is the estimate the disk check uses.
        const estimate = ['dist', 'package.json', 'package-lock.json', 'ecosystem.config.js', 'bin'].reduce((n, f) => n + directoryBytes(join(source, f)), 0)
        if (!existsSync(join(source, 'package.json'))) throw new CliError(`${source} is not a runway checkout (no package.json): use --source`, 2)
        artifact = { estimateBytes: estimate, sha: git.sha, gitChanges: git.changes, get: () => buildArtifact(source) }
      }

      const targets = openTargets(values)
      const multi = targets.length > 1
      note(`runway deploy ${artifact.sha} → ${targets.map((t) => t.label).join(', ')}${values['dry-run'] ? ' (dry run)' : ''}`)
      const stop = stopCleanlyOnSignals(note)
      let report: DeployReport
      try {
        report = await deploy({
          targets,
          overrides,
          artifact,
          allowDirty: values['allow-dirty'] ?? false,
          dryRun: values['dry-run'] ?? false,
          breakLock: values['break-lock'] ?? false,
          reporter: stderrReporter(multi),
          timing,
          stop,
          plan,
          openTarget: targetOpener(values),
          canaryCheck: thresholds.length ? (hosts) => canaryLoadtest(hosts, thresholds, canaryMs) : undefined,
        })
      } finally {
        await closeAll(targets)
      }
      if (values.json) print(JSON.stringify(report))
      // A failed host's reason is already on its ✗ step line and is the error line below: not a third time.
      else if (report.ok || report.dryRun || report.fleet) print(summary(report))
      else {
        const done = summary({ ...report, hosts: report.hosts.filter((h) => h.result === 'ok') })
        if (done) print(done)
      }
      if (!report.ok) {
        const h = report.hosts.find((x) => x.result !== 'ok' && x.result !== 'planned') ?? report.hosts[0]
        const code = stop.signal ? 130 : 1
        if (values.json) return code
        const f = report.fleet?.failure
        const back = report.fleet?.rollback ? (report.fleet.rollback.ok ? '; the fleet was rolled back' : '; the FLEET ROLLBACK FAILED on some host') : ''
        throw new CliError(
          report.dryRun
            ? 'dry run found problems (see above); nothing was changed'
            : f
              ? `${f.stage === 'canary' ? 'deploy stopped: the canary check failed on' : 'deploy failed on'} ${f.target}: ${f.reason}${back}`
              : `deploy failed on ${h?.target}: ${h?.reason ?? 'see above'}`,
          code,
        )
      }
      return 0
    } catch (err) {
      if (err instanceof ArtifactError) throw new CliError(err.message)
      return asCliError(err)
    }
  },
}

/**
 * The canary load test: \`runway loadtest\` (this same CLI, as a child) against each canary host's
 * own address, with the operator's thresholds. Null when all hold, else why not.
 */
async function canaryLoadtest(hosts: Array<{ target: string; url: string }>, thresholds: string[], durationMs: number): Promise<string | null> {
  for (const h of hosts) {
    note(
      `  [${h.target}] canary load test: runway loadtest --target ${h.url} ${thresholds.map((x) => `--threshold '${x}'`).join(' ')} --duration ${durationMs / 1000}`,
    )
    const args = [
      process.argv[1]!,
      'loadtest',
      '--target',
      h.url,
      '--duration',
      String(durationMs / 1000),
      '--warmup',
      '0',
      '--quiet',
      ...thresholds.flatMap((x) => ['--threshold', x]),
    ]
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.stderr.on('data', (d) => (out += d))
      child.on('close', (code) => resolve({ code, out }))
    })
    const lines = r.out.split('\n').filter(Boolean)
    for (const l of lines.filter((l) => /^(pass|FAIL) /.test(l))) note(`  [${h.target}]   ${l}`)
    if (r.code !== 0)
      return `${h.target}: ${
        r.code === 99
          ? lines
              .filter((l) => l.startsWith('FAIL '))
              .map((l) => l.slice(5).trim())
              .join('; ') || 'a threshold failed'
          : `the load test could not run: ${lines.pop() ?? `exit ${r.code}`}`
      }`
  }
  return null
}
