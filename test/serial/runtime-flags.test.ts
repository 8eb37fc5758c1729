// Every stack that is measured beside the pm2 cluster runs with the V8 flags pm2 gives each
// worker (ecosystem.config.js node_args): one production process and the ceiling twins. Without
// them `runway compare` set a worker with a 2 MB young generation against processes with V8's
// default, and its ratios measured a runtime setting as well as code. Checked on the real
// processes' command lines (and the one process's libuv pool, in its environment).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { startProductionProcess } from '../../src/bench/stacks/api.js'
import { workerNodeArgs } from '../../src/bench/stacks/pm2.js'
import { startCeiling, type StageContext } from '../../src/bench/loadtest/stages.js'
import { ROOT } from '../../src/lib/build.js'
import { processTree } from '../../src/lib/process.js'
import { SIGNING_KEY, seedUser, staged } from '../helpers/runtime.js'

const copy = await staged(t, 'dist')
await seedUser(copy.dir, 'alice')
const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
const nodeProcesses = async (leader: number) => (await processTree(leader)).filter((pid) => /node$/.test(argv(pid)[0] ?? ''))

const expected = (createRequire(import.meta.url)(join(ROOT, 'ecosystem.config.js')) as { apps: { node_args: string[] }[] }).apps[0]!.node_args

t.test("workerNodeArgs reads the ecosystem's node_args", async (t) => {
  t.ok(expected.length > 0, `the ecosystem sets worker flags (${expected.join(' ')})`)
  t.same(workerNodeArgs(copy.dir), expected, 'from a staged copy')
  t.throws(() => workerNodeArgs(join(copy.dir, 'nowhere')), /ecosystem\.config\.js is missing/, 'a missing ecosystem is an error, not "no flags"')
})

t.test('one production process runs with them', async (t) => {
  const stack = await startProductionProcess({
    cwd: copy.dir,
    logFile: join(copy.dir, 'flags.log'),
    env: { JWT_SIGNING_KEY: SIGNING_KEY, DATA_DIR: join(copy.dir, 'data') },
  })
  t.teardown(() => stack.stop())
  const args = argv(stack.pid)
  for (const flag of expected) t.ok(args.includes(flag), `${flag} on its command line`)
  t.ok(args.indexOf(expected[0]!) < args.findIndex((a) => a.endsWith('dist/api/server.js')), 'before the script, where node reads its own flags')
  const environ = readFileSync(`/proc/${stack.pid}/environ`, 'utf8').split('\0')
  t.ok(
    environ.includes(`UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE || availableParallelism()}`),
    "and a libuv pool sized to its hash concurrency, as the ecosystem sizes a worker's",
  )
})

t.test('the ceiling twins, one process and node:cluster, run with them', async (t) => {
  const ctx: StageContext = {
    dataDir: join(copy.dir, 'data'),
    logDir: copy.dir,
    key: SIGNING_KEY,
    instances: 2,
    env: {},
    dist: () => Promise.reject(new Error('not used')),
    src: () => Promise.reject(new Error('not used')),
  }
  for (const workers of [0, 2]) {
    const twin = await startCeiling(ctx, workers, `ceiling ${workers}`)
    try {
      t.equal((await fetch(`${twin.url}/healthz`)).status, 200, `the twin with ${workers} workers answers`)
      const [leader] = await twin.pids()
      const procs = await nodeProcesses(leader!)
      t.equal(procs.length, workers + 1, `its node processes: ${workers ? 'the primary and each worker' : 'one'}`)
      for (const pid of procs) for (const flag of expected) t.ok(argv(pid).includes(flag), `${flag} in process ${pid}`)
    } finally {
      await twin.stop()
    }
  }
})
