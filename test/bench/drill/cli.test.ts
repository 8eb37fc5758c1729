// `runway drill` usage: --help lists every drill with its duration; bad usage exits 2 in one line
// before anything starts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { DRILLS } from '../../../src/bench/loadtest/drill/drills.js'
import { ROOT } from '../../../src/lib/build.js'

const runway = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'drill', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })

t.test('--help lists each drill and its duration', async (t) => {
  const r = runway('--help')
  t.equal(r.status, 0)
  for (const d of DRILLS) t.match(r.stdout, new RegExp(`\\n  ${d.name} +${d.durationSec} s per stage: `), d.name)
})

for (const [args, pattern] of [
  [['nope'], /^runway drill: unknown drill "nope": choose from crash, deploy, overload, slow, bad-input, wire\n$/],
  [['--stages', 'single-pg'], /^runway drill: the single-pg stage is not drilled yet/],
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
