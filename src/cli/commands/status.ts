import { CliError, parseFlags, print, type Command } from '../command.js'
import { asCliError, closeAll, openTargets, settingsFlags, settingsOverrides, SETTINGS_USAGE, targetFlags, TARGET_USAGE } from '../../deploy/cli.js'
import { status, type StatusReport } from '../../deploy/deploy.js'

const usage = `Usage: runway status --path DIR [--host [USER@]HOST[:PORT] ...] [--json]

Shows, for each target: the live release, its pm2 workers (pid, status, uptime, restarts,
memory) and the health URL's answer. Exits 1 when a target is not healthy (for monitoring).

${TARGET_USAGE}

${SETTINGS_USAGE}`

const duration = (ms: number) => (ms < 60_000 ? `${Math.round(ms / 1000)}s` : ms < 3_600_000 ? `${Math.round(ms / 60_000)}m` : ms < 86_400_000 ? `${(ms / 3_600_000).toFixed(1)}h` : `${(ms / 86_400_000).toFixed(1)}d`)

function render(s: StatusReport): string {
  const lines = [`${s.target}: ${s.healthy ? 'healthy' : 'NOT HEALTHY'}`, `  live release  ${s.current ?? 'none'}`]
  if (s.lastDeploy) lines.push(`  last ${s.lastDeploy.action.padEnd(8)}  ${s.lastDeploy.to} ${s.lastDeploy.result} at ${s.lastDeploy.at.replace('T', ' ').slice(0, 19)} by ${s.lastDeploy.by}`)
  lines.push(`  health        ${s.health.url}: ${s.health.detail}`)
  if (s.pm2Error) lines.push(`  pm2           ${s.pm2Error}`)
  for (const w of s.workers) lines.push(`  worker ${String(w.id).padEnd(6)} pid ${String(w.pid).padEnd(8)} ${w.status.padEnd(8)} up ${duration(w.uptimeMs).padEnd(6)} restarts ${String(w.restarts).padEnd(4)} ${(w.memory / 1048576).toFixed(0)} MB`)
  return lines.join('\n')
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'live release, pm2 workers (uptime, restarts, memory) and health of a target',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { ...targetFlags, ...settingsFlags })
    if (values.help) return print(usage), 0
    const targets = openTargets(values)
    const out: StatusReport[] = []
    try {
      for (const target of targets) out.push(await status(target, settingsOverrides(values)))
    } catch (err) {
      return asCliError(err)
    } finally {
      await closeAll(targets)
    }
    print(values.json ? JSON.stringify(out) : out.map(render).join('\n'))
    const sick = out.filter((s) => !s.healthy)
    if (sick.length && !values.json) throw new CliError(`${sick.map((s) => s.target).join(', ')} not healthy: ${sick[0]!.reason ?? sick[0]!.health.detail}`)
    return sick.length ? 1 : 0
  },
}
