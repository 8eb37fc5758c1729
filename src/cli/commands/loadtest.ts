import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { availableParallelism } from 'node:os'
import { CliError, parseFlags, print, type Command } from '../command.js'
import { engineFlag, int, MEASURE_FLAGS, MEASURE_HELP, measureSettings, scenarioList } from '../measure-flags.js'
import { ENGINES } from '../../bench/loadtest/engines.js'
import { obtainTokens, requestJson } from '../../bench/loadtest/http.js'
import { machineFacts } from '../../bench/loadtest/machine.js'
import { measureScenario } from '../../bench/loadtest/measure.js'
import { Progress } from '../../bench/loadtest/progress.js'
import { buildResults, writeResults } from '../../bench/loadtest/results.js'
import { assertResults, type ResultRow, type Results, type RunFigures, type Threshold } from '../../bench/loadtest/schema.js'
import { scenario as scenarioByName, type ScenarioContext } from '../../bench/loadtest/scenarios.js'
import { errorRate, failureBreakdown, failures } from '../../bench/loadtest/stats.js'
import { scenarioTable, textTable } from '../../bench/loadtest/table.js'
import {
  baselineFigures,
  checkRegression,
  checkThresholds,
  parsePercent,
  parseThreshold,
  THRESHOLD_EXIT_CODE,
  ThresholdSyntaxError,
} from '../../bench/loadtest/thresholds.js'

const usage = `Usage: runway loadtest --target URL [options]

Load-tests a running deployment (staging, or a local stack) from this machine, and gates a
release on the result.

Target:
  --target URL          base URL, http:// or https://
  --ca FILE             PEM CA to trust for an https target with a private CA (the login and
                        reachability checks verify it; the load engines never verify certificates)
  --username NAME       account for the token- and login-based scenarios (or LOADTEST_USERNAME)
                        The password comes from LOADTEST_PASSWORD or --password-file FILE, never
                        from the command line, and is never printed.
  --password-file FILE  read the password from the first line of FILE
  --amount N            stop each run after N requests instead of after --duration

What to run:
${MEASURE_HELP.replace('DEFAULT_RUNS', '1').replace('DEFAULT_WARMUP', '2').replace('DEFAULT_ENGINE', 'autocannon').replace('--scenarios LIST     ', '--scenarios LIST     ')}
                        (default scenario: healthz; me, verify, login, refresh and session log in)

Gates:
  --threshold EXPR      repeatable; [scenario:]metric op value, metrics rps, p50, p90, p99, max,
                        mean (ms or s), errors (count, or % of attempts), non2xx, timeouts:
                          --threshold 'p99<250ms' --threshold 'errors<0.1%' --threshold 'rps>500'
                          --threshold 'me:p99<100ms'
  --baseline FILE       results.json of an earlier run (loadtest or compare) to compare with
  --baseline-stage ID   the stage to take from a compare baseline (e.g. tls)
  --max-regression PCT  how much rps may fall and p99 may rise against the baseline (default 10%)

Exit status (a pipeline stops on non-zero):
  0   every threshold and the regression check passed
  99  a threshold or the regression check failed (k6's convention); the message names it
  1   the test could not run (target unreachable, login refused, no run completed)
  2   bad usage`

function password(values: { 'password-file'?: string | undefined }): string | undefined {
  if (values['password-file']) {
    try {
      return readFileSync(values['password-file'], 'utf8').split(/\r?\n/)[0]
    } catch (err) {
      throw new CliError(`cannot read --password-file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2)
    }
  }
  return process.env.LOADTEST_PASSWORD
}

export const loadtestCommand: Command = {
  name: 'loadtest',
  summary: 'load-test a running deployment; thresholds and baseline gate a release (exit 99)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      ...MEASURE_FLAGS,
      target: { type: 'string' },
      ca: { type: 'string' },
      username: { type: 'string' },
      'password-file': { type: 'string' },
      amount: { type: 'string' },
      threshold: { type: 'string', multiple: true },
      baseline: { type: 'string' },
      'baseline-stage': { type: 'string' },
      'max-regression': { type: 'string' },
    })
    if (values.help) return (print(usage), 0)
    if (!values.target) throw new CliError('--target URL is required (e.g. --target https://staging.example.com)', 2)
    let target: URL
    try {
      target = new URL(values.target)
      if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('scheme')
    } catch {
      throw new CliError(`--target must be an http:// or https:// URL, not ${JSON.stringify(values.target)}`, 2)
    }
    const scenarios = scenarioList(values.scenarios, ['healthz'])
    const settings = measureSettings(values, { runs: 1, warmup: 2 })
    const engine = engineFlag(values.engine)
    if (values.amount) settings.amount = int(values.amount, '--amount', 0, 1, 100_000_000)
    if (settings.amount && !ENGINES[engine].amount) throw new CliError(`${engine} runs for a duration: drop --amount or --engine ${engine}`, 2)
    let specs: ReturnType<typeof parseThreshold>[]
    let maxRegression = 10
    try {
      specs = (values.threshold ?? []).map(parseThreshold)
      if (values['max-regression']) maxRegression = parsePercent(values['max-regression'], '--max-regression')
    } catch (err) {
      if (err instanceof ThresholdSyntaxError) throw new CliError(err.message, 2)
      throw err
    }
    let baseline: Results | undefined
    if (values.baseline) {
      try {
        baseline = assertResults(JSON.parse(readFileSync(values.baseline, 'utf8')), values.baseline)
      } catch (err) {
        throw new CliError(`--baseline ${values.baseline}: ${(err as Error).message.replace(/^Unexpected token.*/, 'not JSON')}`, 2)
      }
    }
    // A baseline that cannot serve as one is refused before any load is sent.
    const baseFigures = new Map<string, RunFigures>()
    if (baseline) {
      for (const name of scenarios) {
        const b = baselineFigures(baseline, name, values['baseline-stage'])
        if ('problem' in b) throw new CliError(`--baseline: ${b.problem}`, 2)
        baseFigures.set(name, b)
      }
    }
    let ca: string | undefined
    if (values.ca) {
      try {
        ca = readFileSync(values.ca, 'utf8')
      } catch (err) {
        throw new CliError(`cannot read --ca ${values.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2)
      }
    }
    const base = target.href.replace(/\/+$/, '')

    const needs = new Set(scenarios.map((s) => scenarioByName(s).needs))
    const username = values.username ?? process.env.LOADTEST_USERNAME
    const pw = password(values)
    if ((needs.has('token') || needs.has('credentials')) && (!username || !pw)) {
      throw new CliError(
        `${scenarios.filter((s) => scenarioByName(s).needs !== 'nothing').join(', ')} log in: set --username (or LOADTEST_USERNAME) and LOADTEST_PASSWORD (or --password-file)`,
        2,
      )
    }
    // Reachable (and, over https, trusted) before any load is sent.
    try {
      await requestJson(`${base}/healthz`, { ...(ca ? { ca } : {}), timeoutMs: 10_000 })
    } catch (err) {
      const msg = (err as Error).message
      const hint = /certificate|self.signed|CERT/i.test(msg) ? ': pass --ca with the CA that signed it' : ''
      throw new CliError(`cannot reach ${base}: ${msg}${hint}`)
    }

    let tokens: string[] | undefined
    if (needs.has('token')) {
      try {
        tokens = [(await obtainTokens(base, username!, pw!, ca)).access]
      } catch (err) {
        throw new CliError(`${(err as Error).message}: check the username and password`)
      }
    }

    const progress = new Progress(process.stderr, values.quiet ?? false)
    const rows: ResultRow[] = []
    for (const name of scenarios) {
      const s = scenarioByName(name)
      const context: ScenarioContext =
        s.needs === 'token'
          ? { scenario: name, tokens: tokens! }
          : s.needs === 'credentials'
            ? { scenario: name, users: [username!], password: pw! }
            : { scenario: name }
      rows.push(await measureScenario({ stage: 'target', label: base, url: base, ...(ca ? { ca } : {}) }, s, context, settings, engine, { progress }))
    }

    const thresholds: Threshold[] = checkThresholds(specs, rows)
    for (const row of rows) {
      const b = baseFigures.get(row.scenario)
      if (b && row.summary) thresholds.push(...checkRegression(row.scenario, row.summary, b, maxRegression))
    }
    const results = buildResults({
      tool: 'loadtest',
      engine,
      scenarios,
      settings,
      ceiling: false,
      machine: await machineFacts({
        nginxBin: null,
        sharedWith: ['localhost', '127.0.0.1', '[::1]'].includes(target.hostname)
          ? `the target runs on this machine: the load generator shared its ${availableParallelism()} CPUs with it`
          : `the load generator ran alone on this machine's ${availableParallelism()} CPUs; the target is remote`,
      }),
      stages: [
        {
          id: 'target',
          label: base,
          kind: 'target',
          status: rows.every((r) => r.status === 'ok') ? 'ok' : 'failed',
          explanation: `The deployment at ${base}, measured from this machine over the network.`,
          url: base,
        },
      ],
      rows,
      thresholds,
      warnings: rows.flatMap((r) => [
        ...(r.loadgenSaturated
          ? [
              `${r.scenario}: the load generator used ${r.summary!.loadgenCpu}% CPU, a full core per thread: it may be the bottleneck; try --workers ${Math.max(2, settings.workers + 1)}`,
            ]
          : []),
        ...(r.summary && failures(r.summary)
          ? [`${r.scenario}: ${failures(r.summary)} failed responses (${Math.round(errorRate(r.summary) * 1000) / 1000}%): ${failureBreakdown(r.summary)}`]
          : []),
      ]),
    })
    if (values.out) writeResults(resolve(values.out), results)
    else assertResults(results)
    if (values.json) print(JSON.stringify(results, null, 2))
    else {
      for (const name of scenarios) print(`\n${name}\n${textTable(scenarioTable(results, name))}`)
      for (const t of thresholds) print(`${t.pass ? 'pass' : 'FAIL'}  ${t.message}`)
      for (const w of results.warnings) print(`warning: ${w}`)
    }
    const broken = rows.find((r) => r.status !== 'ok')
    if (broken) throw new CliError(`${broken.scenario} could not be measured: ${broken.reason}`)
    const failed = thresholds.filter((t) => !t.pass)
    // The cause, not only the symptom: which statuses failed, and what usually sends them.
    const why = rows.filter((r) => r.summary && failures(r.summary)).map((r) => `${r.scenario}: ${failureBreakdown(r.summary!)}`)
    if (failed.length)
      throw new CliError(`${failed.map((t) => t.message).join('; ')}${why.length ? ` (failures by cause: ${why.join('; ')})` : ''}`, THRESHOLD_EXIT_CODE)
    return 0
  },
}
