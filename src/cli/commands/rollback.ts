import { CliError, note, parseFlags, print, type Command } from '../command.js'
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
import { rollbackFleet, stopCleanlyOnSignals, type FleetRollbackReport } from '../../ops/deploy/deploy.js'

const usage = `Usage: runway rollback --path DIR [--host [USER@]HOST[:PORT] ...] [--to RELEASE] [options]

Makes an earlier release live again: switch current (atomic) → pm2 startOrReload → health gate.
Default: the newest release before the live one whose deploy did not fail (see \`runway releases\`).
If the rolled-back-to release fails its health gate, the release that was live is restored.
Schema migrations are not reversed: keep migrations backward compatible (add, then remove later).
Several hosts go through the same rollout as a deploy (--canary, --batch, --on-failure: with
rollback-fleet, a failure puts the hosts already switched back on the release they ran).

${TARGET_USAGE}

Rollback:
  --to RELEASE            the release directory name to go back to
  --dry-run               print what would happen, change nothing
  --break-lock            take the deploy lock even if held (only when its holder is dead)
  --health-timeout SEC    how long the health gate waits (default 60)

${ROLLING_USAGE}

${SETTINGS_USAGE}`

export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 'switch back to an earlier release (zero-downtime reload, health-gated)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      ...targetFlags,
      ...settingsFlags,
      ...rollingFlags,
      to: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'break-lock': { type: 'boolean' },
      'health-timeout': { type: 'string' },
    })
    if (values.help) return (print(usage), 0)
    const plan = rollingPlan(values)
    const targets = openTargets(values)
    const timing = { healthTimeoutMs: seconds('health-timeout', values['health-timeout'], 60) }
    const stop = stopCleanlyOnSignals(note)
    let report: FleetRollbackReport
    try {
      note(`runway rollback → ${targets.map((t) => t.label).join(', ')}${values['dry-run'] ? ' (dry run)' : ''}`)
      report = await rollbackFleet({
        targets,
        to: values.to,
        breakLock: values['break-lock'] ?? false,
        reporter: stderrReporter(targets.length > 1),
        overrides: settingsOverrides(values),
        timing,
        dryRun: values['dry-run'] ?? false,
        stop,
        plan: targets.length > 1 ? plan : undefined,
        openTarget: targetOpener(values),
      })
    } catch (err) {
      return asCliError(err)
    } finally {
      await closeAll(targets)
    }
    const { ok } = report
    if (values.json) print(JSON.stringify(report))
    else {
      for (const r of report.hosts)
        print(
          r.result === 'planned'
            ? `dry run: ${r.reason}`
            : r.result === 'ok'
              ? `rolled back ${r.target} from ${r.from ?? 'nothing'} to ${r.release} in ${(r.durationMs / 1000).toFixed(1)}s`
              : `rollback on ${r.target} failed: ${r.reason}`,
        )
      if (report.fleet) print(fleetText(report.fleet))
    }
    const code = ok ? 0 : stop.signal ? 130 : 1
    if (!ok && !values.json)
      throw new CliError(`rollback failed on ${report.fleet?.failure?.target ?? report.hosts.find((r) => r.result !== 'ok')?.target}: see above`, code)
    return code
  },
}
