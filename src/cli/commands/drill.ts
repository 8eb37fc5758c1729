import { resolve } from 'node:path'
import { CliError, parseFlags, print, type Command } from '../command.js'
import { defaultOutDir, int } from '../measure-flags.js'
import { cannotRun, DRILLS, DRILL_NAMES, drillByName, drillPlan, planLoad } from '../../bench/loadtest/drill/drills.js'
import { drill } from '../../bench/loadtest/drill/run.js'
import { Progress } from '../../bench/loadtest/progress.js'
import { STAGE_IDS } from '../../bench/loadtest/stages.js'
import { stageList } from './compare.js'

const DRILL_STAGES = STAGE_IDS.filter((s) => s !== 'single-pg')
const DEFAULT_LOAD = planLoad(drillPlan(DRILLS))

const usage = `Usage: runway drill [DRILL...] [options]

What goes wrong, side by side on the dev server and the production stacks: for each stage and
each drill, brings a fresh stack up (the same stacks as \`runway compare\`), runs steady load on
GET /api/me/, injects a fault at a fixed moment, and counts every request by how it ended (2xx,
refused, reset, timeout, HTTP status) per second, before, during and after the fault. Prints a
verdict per stage in plain words and writes results.json, report.md and report.html (a timeline
per stage with the fault marked; works offline) to loadtest/results/drill-<timestamp>/.

Drills (default: all, in this order), each with its seconds of load per stage and the stages it
runs on unless --stages says otherwise:
${DRILLS.map((d) => `  ${d.name.padEnd(9)} ${String(d.durationSec).padStart(2)} s × ${d.stages.length} stages (${d.stages.join(', ')}): ${d.title}`).join('\n')}
Each drill starts a fresh stack per stage (a few seconds each, more for the pm2 stages): the
default set is ${DEFAULT_LOAD.loadSec} s of load on ${DEFAULT_LOAD.stacks} fresh stacks.

Options:
  --stages LIST         run every drill on these stacks instead, from: ${DRILL_STAGES.join(', ')}
                        (a drill named with a stage it cannot run is refused)
  -c, --connections N   concurrent clients of the steady load (default 8)
  --timeout MS          per-request timeout of those clients (default 2000)
  --instances N         pm2 workers (default: one per CPU)
  --out DIR             where results.json, report.md and report.html go
  --json                print results.json on stdout instead of the verdicts
  --quiet               no progress on stderr

A client whose connection is refused or reset tries again after 20 ms, and each attempt counts
as one failed request: "failed requests" on a stack that stays down grow with the run, which is
the point. "Back to full rate" = no failure from then on and every later second at half or more
of the rate before the fault.

Exit status: 0 when every drill ran and its fault really happened (whatever the verdicts), 1
when a stack failed to start or a fault could not be confirmed, 2 for bad usage.`

export const drillCommand: Command = {
  name: 'drill',
  summary: 'fault drills (crash, deploy, overload, slow, bad-input, wire) on dev server vs production stacks',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      {
        stages: { type: 'string' },
        connections: { type: 'string', short: 'c' },
        timeout: { type: 'string' },
        instances: { type: 'string' },
        out: { type: 'string' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
      },
      true,
    )
    if (values.help) return (print(usage), 0)
    const names = positionals.flatMap((p) => p.split(',')).filter(Boolean)
    const unknown = names.find((n) => !drillByName(n))
    if (unknown) throw new CliError(`unknown drill ${JSON.stringify(unknown)}: choose from ${DRILL_NAMES.join(', ')}`, 2)
    const stages = stageList(values.stages)
    if (stages?.includes('single-pg')) throw new CliError(`the single-pg stage is not drilled yet: choose from ${DRILL_STAGES.join(', ')}`, 2)
    const drills = names.length ? [...new Set(names)].map((n) => drillByName(n)!) : [...DRILLS]
    if (stages) {
      // Asked for by name, a drill must run on every stage asked for; the default set runs each
      // drill where it can, and a stage none of them can run is refused.
      for (const id of stages) {
        const refusals = drills.map((d) => ({ d, why: cannotRun(d, id) })).filter((r) => r.why)
        if (names.length ? refusals.length : refusals.length === drills.length)
          throw new CliError(`${refusals[0]!.d.name} cannot run on --stages ${id}: ${refusals[0]!.why}`, 2)
      }
    }
    const progress = new Progress(process.stderr, values.quiet ?? false)
    const { results, dir } = await drill({
      drills,
      ...(stages ? { stages } : {}),
      connections: int(values.connections, '--connections', 8, 1, 1000),
      timeoutMs: int(values.timeout, '--timeout', 2000, 50, 60_000),
      ...(values.instances ? { instances: int(values.instances, '--instances', 2, 1, 64) } : {}),
      outDir: resolve(values.out ?? defaultOutDir().replace(/([^/]+)$/, 'drill-$1')),
      progress,
    })
    if (values.json) print(JSON.stringify(results, null, 2))
    else {
      for (const d of results.drills) {
        print(`\n${d.title}`)
        for (const s of d.stages)
          print(`  ${s.verdict ?? `${s.label}: ${s.status}, ${s.reason ?? ''}`}${s.status === 'failed' && s.verdict ? ` (FAILED: ${s.reason})` : ''}`)
      }
      if (results.warnings.length) print(`\nWarnings:\n${results.warnings.map((w) => `  - ${w}`).join('\n')}`)
      print(`\nWrote ${dir}/results.json, report.md and report.html`)
    }
    const failed = results.drills.flatMap((d) => d.stages.filter((s) => s.status === 'failed').map((s) => ({ d, s })))
    if (failed.length) throw new CliError(`${failed[0]!.d.name} on ${failed[0]!.s.label} failed: ${failed[0]!.s.reason} (results are in ${dir})`)
    return 0
  },
}
