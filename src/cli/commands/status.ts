import { CliError, parseFlags, print, type Command } from '../command.js'
import { asCliError, closeAll, openTargets, settingsFlags, settingsOverrides, SETTINGS_USAGE, targetFlags, TARGET_USAGE } from '../deploy-flags.js'
import { status, type StatusReport } from '../../ops/deploy/deploy.js'
import type { WorkerFigures } from '../../api/metrics/figures.js'

const usage = `Usage: runway status --path DIR [--host [USER@]HOST[:PORT] ...] [--json]

Shows, for each target: the live release, its pm2 workers (pid, status, uptime, restarts,
memory), the health URL's answer and, when the app's METRICS_PORT is set, each worker's figures
over 2 s from its metrics endpoint (request rate, 5xx share, p99 latency, event-loop lag p99 and
busy share), and the same for all its workers together. Exits 1 when a target is not healthy (for monitoring).

${TARGET_USAGE}

${SETTINGS_USAGE}`

const duration = (ms: number) =>
  ms < 60_000
    ? `${Math.round(ms / 1000)}s`
    : ms < 3_600_000
      ? `${Math.round(ms / 60_000)}m`
      : ms < 86_400_000
        ? `${(ms / 3_600_000).toFixed(1)}h`
        : `${(ms / 86_400_000).toFixed(1)}d`

const ms = (seconds: number | null) => (seconds === null ? '-' : `${(seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0)} ms`)
const pct = (share: number | null) => (share === null ? '-' : `${(share * 100).toFixed(1)}%`)
const figures = (f: WorkerFigures) =>
  `${f.requestsPerSec.toFixed(1).padStart(8)} req/s  5xx ${pct(f.errorRate).padEnd(6)} p99 ${ms(f.p99Seconds).padEnd(8)} lag p99 ${ms(f.lagP99Seconds).padEnd(8)} busy ${pct(f.utilization)}${f.ready === false ? '  NOT READY' : ''}`

function render(s: StatusReport): string {
  const lines = [`${s.target}: ${s.healthy ? 'healthy' : 'NOT HEALTHY'}`, `  live release  ${s.current ?? 'none'}`]
  if (s.lastDeploy)
    lines.push(
      `  last ${s.lastDeploy.action.padEnd(8)}  ${s.lastDeploy.to} ${s.lastDeploy.result} at ${s.lastDeploy.at.replace('T', ' ').slice(0, 19)} by ${s.lastDeploy.by}`,
    )
  lines.push(`  health        ${s.health.url}: ${s.health.detail}`)
  if (s.pm2Error) lines.push(`  pm2           ${s.pm2Error}`)
  for (const w of s.workers)
    lines.push(
      `  worker ${String(w.id).padEnd(6)} pid ${String(w.pid).padEnd(8)} ${w.status.padEnd(8)} up ${duration(w.uptimeMs).padEnd(6)} restarts ${String(w.restarts).padEnd(4)} ${(w.memory / 1048576).toFixed(0)} MB`,
    )
  const m = s.metrics
  if (m?.error) lines.push(`  metrics       ${m.url}: ${m.error}`)
  else if (m && !m.url) lines.push('  metrics       off (METRICS_PORT is not set)')
  for (const f of m?.workers ?? []) lines.push(`  worker ${f.worker.padEnd(6)} ${figures(f)}`)
  if (m?.host) lines.push(`  all workers   ${figures(m.host)}`)
  return lines.join('\n')
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'live release, pm2 workers (uptime, restarts, memory) and health of a target',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { ...targetFlags, ...settingsFlags })
    if (values.help) return (print(usage), 0)
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
