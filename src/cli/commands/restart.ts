import { CliError, note, parseFlags, print, type Command } from '../command.js'
import {
  asCliError,
  closeAll,
  openTargets,
  seconds,
  settingsFlags,
  settingsOverrides,
  SETTINGS_USAGE,
  stderrReporter,
  targetFlags,
  TARGET_USAGE,
} from '../deploy-flags.js'
import { restart } from '../../ops/deploy/deploy.js'

const usage = `Usage: runway restart --path DIR [--host [USER@]HOST[:PORT] ...] [options]

Brings the live release (current) back under pm2 — after a reboot without the systemd unit, or
any time its daemon is gone — or, when it runs, replaces its workers one at a time (each only by
a ready one). Then the health gate, then pm2 save. Nothing is switched. Exits 1 quoting the
worker's error line when the release does not come up.

${TARGET_USAGE}

Restart:
  --break-lock            take the deploy lock even if held (only when its holder is dead)
  --health-timeout SEC    how long the health gate waits (default 60)

${SETTINGS_USAGE}`

export const restartCommand: Command = {
  name: 'restart',
  summary: 'start the live release of a target again (daemon gone, reboot), health-gated',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { ...targetFlags, ...settingsFlags, 'break-lock': { type: 'boolean' }, 'health-timeout': { type: 'string' } })
    if (values.help) return (print(usage), 0)
    const targets = openTargets(values)
    const timing = { healthTimeoutMs: seconds('health-timeout', values['health-timeout'], 60) }
    const done = []
    try {
      for (const target of targets) {
        note(`runway restart → ${target.label}`)
        done.push(
          await restart({
            target,
            breakLock: values['break-lock'] ?? false,
            reporter: stderrReporter(targets.length > 1),
            overrides: settingsOverrides(values),
            timing,
          }),
        )
      }
    } catch (err) {
      if (values.json) print(JSON.stringify({ ok: false, hosts: done, detail: (err as Error).message }))
      if (err instanceof CliError) throw err
      return asCliError(err)
    } finally {
      await closeAll(targets)
    }
    print(values.json ? JSON.stringify({ ok: true, hosts: done }) : done.map((d) => `restarted ${d.live} on ${d.target}: ${d.detail}`).join('\n'))
    return 0
  },
}
