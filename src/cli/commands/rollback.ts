import { CliError, note, parseFlags, print, type Command } from '../command.js'
import { asCliError, closeAll, openTargets, seconds, settingsFlags, settingsOverrides, SETTINGS_USAGE, stderrReporter, targetFlags, TARGET_USAGE } from '../deploy-flags.js'
import { rollback, stopCleanlyOnSignals } from '../../ops/deploy/deploy.js'

const usage = `Usage: runway rollback --path DIR [--host [USER@]HOST[:PORT] ...] [--to RELEASE] [options]

Makes an earlier release live again: switch current (atomic) → pm2 startOrReload → health gate.
Default: the newest release before the live one whose deploy did not fail (see \`runway releases\`).
If the rolled-back-to release fails its health gate, the release that was live is restored.
Schema migrations are not reversed: keep migrations backward compatible (add, then remove later).

${TARGET_USAGE}

Rollback:
  --to RELEASE            the release directory name to go back to
  --dry-run               print what would happen, change nothing
  --break-lock            take the deploy lock even if held (only when its holder is dead)
  --health-timeout SEC    how long the health gate waits (default 60)

${SETTINGS_USAGE}`

export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 'switch back to an earlier release (zero-downtime reload, health-gated)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      ...targetFlags,
      ...settingsFlags,
      to: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'break-lock': { type: 'boolean' },
      'health-timeout': { type: 'string' },
    })
    if (values.help) return print(usage), 0
    const targets = openTargets(values)
    const timing = { healthTimeoutMs: seconds('health-timeout', values['health-timeout'], 60) }
    const reports = []
    const interrupted = stopCleanlyOnSignals(note)
    try {
      for (const target of targets) {
        note(`runway rollback → ${target.label}${values['dry-run'] ? ' (dry run)' : ''}`)
        const r = await rollback({ target, to: values.to, breakLock: values['break-lock'] ?? false, reporter: stderrReporter(targets.length > 1), overrides: settingsOverrides(values), timing, dryRun: values['dry-run'] ?? false })
        reports.push(r)
        if (r.result !== 'ok' && r.result !== 'planned') break
      }
    } catch (err) {
      return asCliError(err)
    } finally {
      await closeAll(targets)
    }
    const ok = reports.length === targets.length && reports.every((r) => r.result === 'ok' || r.result === 'planned')
    if (values.json) print(JSON.stringify({ ok, hosts: reports }))
    else
      for (const r of reports)
        print(
          r.result === 'planned'
            ? `dry run: ${r.reason}`
            : r.result === 'ok'
              ? `rolled back ${r.target} from ${r.from ?? 'nothing'} to ${r.release} in ${(r.durationMs / 1000).toFixed(1)}s`
              : `rollback on ${r.target} failed: ${r.reason}`,
        )
    const code = ok ? 0 : interrupted() ? 130 : 1
    if (!ok && !values.json) throw new CliError(`rollback failed on ${reports.find((r) => r.result !== 'ok')?.target}: see above`, code)
    return code
  },
}
