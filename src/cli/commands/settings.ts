// `runway settings`: what a target remembers in .runway/target.json (flags given to an earlier
// deploy, such as --keep 1 or --workers 2), and a way to forget them.
import { closeAll, openTargets, targetFlags, TARGET_USAGE } from '../deploy-flags.js'
import { defaultSettings, readState, saveSettings, type TargetSettings } from '../../ops/deploy/layout.js'
import { TargetError } from '../../ops/deploy/target.js'
import { CliError, parseFlags, print, type Command } from '../command.js'

const usage = `Usage: runway settings --path DIR [--host [USER@]HOST[:PORT]] [--unset NAME ...] [--json]

Shows the settings a target remembers (DIR/.runway/target.json): a flag given once to
\`runway deploy\` (--keep, --workers, --health-url, --pm2-home, --nginx-conf, ...) is saved there
and reused by every later deploy, rollback, restart and status until changed. --unset NAME
returns one to its default (names as shown, e.g. keep, workers, healthUrl); --unset all, all of them.

${TARGET_USAGE}`

export const settingsCommand: Command = {
  name: 'settings',
  summary: 'show (or --unset) the settings a deploy target remembers from earlier flags',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { ...targetFlags, unset: { type: 'string', multiple: true } })
    if (values.help) return (print(usage), 0)
    const targets = openTargets(values, { single: true })
    const target = targets[0]!
    try {
      const state = await readState(target)
      const defaults = defaultSettings(target.root)
      let settings: TargetSettings = state.settings
      if (values.unset?.length) {
        const names = values.unset.includes('all') ? Object.keys(settings) : values.unset
        const unknown = names.filter((n) => !(n in settings) && !(n in defaults))
        if (unknown.length) throw new CliError(`${unknown.join(', ')}: not a target setting (${Object.keys(settings).join(', ')})`, 2)
        const next: Record<string, unknown> = { ...settings }
        for (const n of names) {
          if (n in defaults) next[n] = defaults[n as keyof TargetSettings]
          else delete next[n]
        }
        settings = next as unknown as TargetSettings
        await saveSettings(target, settings)
      }
      if (values.json) print(JSON.stringify({ target: target.label, settings, defaults }))
      else
        print(
          [
            `${target.label} (${target.root}/.runway/target.json):`,
            ...Object.entries(settings).map(
              ([k, v]) =>
                `  ${k.padEnd(12)} ${JSON.stringify(v)}${JSON.stringify(defaults[k as keyof TargetSettings]) === JSON.stringify(v) ? '  (default)' : ''}`,
            ),
          ].join('\n'),
        )
      return 0
    } catch (err) {
      if (err instanceof TargetError) throw new CliError(err.message)
      throw err
    } finally {
      await closeAll(targets)
    }
  },
}
