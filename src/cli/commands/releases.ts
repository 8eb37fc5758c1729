import { parseFlags, print, type Command } from '../command.js'
import { asCliError, closeAll, openTargets, targetFlags, TARGET_USAGE } from '../deploy-flags.js'
import { listReleases } from '../../ops/deploy/deploy.js'

const usage = `Usage: runway releases --path DIR [--host [USER@]HOST[:PORT] ...] [--json]

Lists the releases on each target, oldest first: * marks the live one (current), ✗ one whose
deploy failed (with why), then who deployed it and when, from DIR/.runway/deploys.log.

${TARGET_USAGE}`

export const releasesCommand: Command = {
  name: 'releases',
  summary: 'list the releases on a target, marking the live and the failed ones',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { ...targetFlags })
    if (values.help) return (print(usage), 0)
    const targets = openTargets(values)
    const out = []
    try {
      for (const target of targets) out.push(await listReleases(target))
    } catch (err) {
      return asCliError(err)
    } finally {
      await closeAll(targets)
    }
    if (values.json) {
      print(JSON.stringify(out.map(({ log: _log, ...rest }) => rest)))
      return 0
    }
    for (const t of out) {
      print(`${t.target}${t.releases.length ? '' : ': no releases yet'}`)
      for (const r of t.releases) {
        const mark = r.live ? '*' : r.failed ? '✗' : ' '
        const who = r.deployedAt ? `  ${r.deployedAt.replace('T', ' ').slice(0, 19)} by ${r.deployedBy}` : ''
        print(`${mark} ${r.name}${r.live ? '  (live)' : ''}${who}${r.failed ? `  failed: ${r.failed}` : ''}`)
      }
    }
    return 0
  },
}
