// `runway drill` usage: --help lists every drill with its duration; bad usage exits 2 in one line
// before anything starts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { DRILLS, drillPlan, planLoad } from '../../../src/bench/loadtest/drill/drills.js'
import { ROOT } from '../../../src/lib/build.js'

const runway = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'drill', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })

t.test("--help lists each drill with its duration and stages, and the default set's total", async (t) => {
  const r = runway('--help')
  t.equal(r.status, 0)
  for (const d of DRILLS)
    t.match(
      r.stdout,
      `\n  ${d.name.padEnd(9)} ${String(d.durationSec).padStart(2)} s × ${d.stages.length} stages (${d.stages.join(', ')}): ${d.title}\n`,
      d.name,
    )
  const { loadSec, stacks } = planLoad(drillPlan(DRILLS))
  t.equal(
    loadSec,
    DRILLS.reduce((n, d) => n + d.durationSec * d.stages.filter((id) => d.skip(id) === null).length, 0),
  )
  t.match(r.stdout, `the\ndefault set is ${loadSec} s of load on ${stacks} fresh stacks.`)
})

for (const [args, pattern] of [
  [['nope'], /^runway drill: unknown drill "nope": choose from crash, deploy, overload, slow, bad-input, wire\n$/],
  [['--stages', 'single-pg'], /^runway drill: the single-pg stage is not drilled yet/],
  [['deploy', '--stages', 'single'], /^runway drill: deploy cannot run on --stages single: a lone process has no reload[^\n]*\n$/],
  [['crash', 'deploy', '--stages', 'dev,single'], /^runway drill: deploy cannot run on --stages single: /],
  [['--stages', 'prod'], /^runway drill: unknown stage "prod"/],
  [['-c', '0'], /^runway drill: --connections must be a whole number from 1 to 1000, not "0"\n$/],
  [['--timeout', 'soon'], /^runway drill: --timeout must be a whole number/],
  [['--bogus'], /^runway drill: .*bogus.*\(see --help\)\n$/],
] as const) {
  t.test(`drill ${args.join(' ')}: exit 2, one line`, async (t) => {
    const r = runway(...args)
    t.equal(r.status, 2)
    t.match(r.stderr, pattern)
    t.equal(r.stdout, '')
  })
}
