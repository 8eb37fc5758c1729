import { resolve } from 'node:path'
import { CliError, parseFlags, print, type Command } from '../command.js'
import { compare, STAGE_IDS, type StageId } from '../../bench/loadtest/compare.js'
import { defaultOutDir, engineFlag, int, MEASURE_FLAGS, MEASURE_HELP, measureSettings, scenarioList } from '../measure-flags.js'
import { defaultEngine } from '../../bench/loadtest/engines.js'
import { Progress } from '../../bench/loadtest/progress.js'
import { SCENARIO_NAMES } from '../../bench/loadtest/scenarios.js'
import { scenarioTable, scenariosOf, targetLines, textTable } from '../../bench/loadtest/table.js'

const usage = `Usage: runway compare [options]

Brings up each stack on this machine in turn, warms it up, measures the scenarios, stops it and
leaves nothing running:
  dev        the dev server exactly as \`npm run dev\` runs it (tsx watch, pretty logs)
  single     one compiled production process (node dist/api/server.js, JSON logs)
  single-pg  the same process on PostgreSQL (only with --database-url: a fresh schema, dropped after)
  cluster    the pm2 cluster from ecosystem.config.js (one worker per CPU unless --instances)
  nginx      nginx → pm2 cluster over HTTP, with the rendered templates
  tls        nginx (TLS, generated certificate) → pm2 cluster over HTTPS
Prints a table per scenario and writes results.json, report.md and report.html (charts, works
offline) to loadtest/results/<timestamp>/, and logs/<stage>/ for a stack that answered with
failures. Progress goes to stderr.

Options:
${MEASURE_HELP.replace('DEFAULT_RUNS', '3').replace('DEFAULT_WARMUP', '3').replace('DEFAULT_ENGINE', 'wrk when installed, else autocannon')}
  --stages LIST         which stacks, from: ${STAGE_IDS.join(', ')} (default: all but single-pg,
                        and single-pg too with --database-url)
  --database-url URL    PostgreSQL for the single-pg stage (default: DATABASE_URL if set); the
                        stage uses a fresh schema in it and drops it afterwards
  --store postgres      shorthand: --stages single,single-pg (SQLite and PostgreSQL side by side)
  --ceiling             also measure each production stack's ceiling twin (bare node:http, bare
                        node:cluster, the same nginx in front of it) and show efficiency =
                        stack ÷ twin; a stack and its twin run together, their runs alternating.
                        The TLS stage gets a second twin, a minimal TLS proxy (proxy_pass and
                        upstream keep-alive only) on the bare cluster: the rendered template's
                        own cost is its TLS twin ÷ that (goal ≥ 90%)
  --instances N         pm2 and node:cluster workers (default: one per CPU)
  --users N             users the login-based scenarios spread over (default 8)

Stacks run on free ports with a fresh SQLite data dir, a random signing key, and login rate
limits off (they would turn login-heavy scenarios into 429s). A stack whose requirement is
missing (no nginx) is reported as skipped. Goals (each production stack ≥ 90% of its twin on me,
with --ceiling the template ≥ 90% of a minimal proxy, cluster ≥ 1.5× one process, 0 session
errors) are shown, not enforced; for a gate use \`runway loadtest --threshold\`. A measurement
limited by the machine rather than the stack (the load generator used all the CPU it can, or
other processes took over 30%) is marked, the goals it feeds are not judged, and the run says at
the top that it cannot rank the stacks.

Exit status: 0 when every stack ran (skipped ones included), 1 when a stack failed to start or
to be measured, 2 for bad usage.`

export function stageList(value: string | undefined): StageId[] | undefined {
  if (value === undefined) return undefined
  const ids = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const bad = ids.find((id) => !STAGE_IDS.includes(id as StageId))
  if (bad || ids.length === 0) throw new CliError(`unknown stage ${JSON.stringify(bad ?? value)}: choose from ${STAGE_IDS.join(', ')}`, 2)
  return ids as StageId[]
}

export const compareCommand: Command = {
  name: 'compare',
  summary: 'load-test dev server vs production stacks on this machine (tables, JSON, HTML)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      ...MEASURE_FLAGS,
      stages: { type: 'string' },
      ceiling: { type: 'boolean' },
      instances: { type: 'string' },
      users: { type: 'string' },
      'database-url': { type: 'string' },
      store: { type: 'string' },
    })
    if (values.help) return (print(usage), 0)
    const settings = measureSettings(values, { runs: 3, warmup: 3 })
    if (values.store !== undefined && values.store !== 'postgres' && values.store !== 'sqlite') {
      throw new CliError(`--store must be sqlite or postgres, not ${JSON.stringify(values.store)}`, 2)
    }
    const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL ?? ''
    if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) throw new CliError('--database-url must be a postgres:// URL', 2)
    if (values.store === 'postgres' && !databaseUrl) throw new CliError('--store postgres needs --database-url postgres://… (or DATABASE_URL)', 2)
    const stages = values.store === 'postgres' && !values.stages ? (['single', 'single-pg'] as StageId[]) : stageList(values.stages)
    const progress = new Progress(process.stderr, values.quiet ?? false)
    const { results, dir } = await compare({
      scenarios: scenarioList(values.scenarios, SCENARIO_NAMES),
      settings,
      engine: engineFlag(values.engine, defaultEngine),
      ceiling: values.ceiling ?? false,
      ...(stages ? { stages } : {}),
      ...(databaseUrl ? { databaseUrl } : {}),
      ...(values.instances ? { instances: int(values.instances, '--instances', 2, 1, 256) } : {}),
      users: int(values.users, '--users', 8, 1, 1000),
      outDir: resolve(values.out ?? defaultOutDir()),
      progress,
    })
    if (values.json) print(JSON.stringify(results, null, 2))
    else {
      // A run that cannot rank the stacks says so before any figure, and again under the goals.
      if (results.verdict) print(`\n${results.verdict}`)
      for (const scenario of scenariosOf(results)) print(`\n${scenario}\n${textTable(scenarioTable(results, scenario))}`)
      if (results.targets.length)
        print(
          `\nTargets (goals, not enforced${results.verdict ? '; this run cannot judge them, see the top' : ''}):\n${targetLines(results)
            .map((l) => `  ${l}`)
            .join('\n')}`,
        )
      if (results.warnings.length) print(`\nWarnings:\n${results.warnings.map((w) => `  - ${w}`).join('\n')}`)
      print(`\nWrote ${dir}/results.json, report.md and report.html`)
    }
    const failed = results.stages.filter((s) => s.status === 'failed')
    const failedRows = results.results.filter((r) => r.status === 'failed')
    if (failed.length) throw new CliError(`${failed[0]!.label} failed: ${failed[0]!.reason} (results so far are in ${dir})`)
    if (failedRows.length) throw new CliError(`${failedRows[0]!.stage} ${failedRows[0]!.scenario} could not be measured: ${failedRows[0]!.reason} (see ${dir})`)
    return 0
  },
}
