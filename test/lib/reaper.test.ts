// test/helpers/reaper.mjs: what a test process started is killed once that process is gone, even
// when it was SIGKILLed (tap's runner does that to a file that ran out of time) and its teardowns
// never ran — including a daemon that left its process group, as pm2's and nginx's do.
import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { isAlive } from '../../src/lib/process.js'

const REAPER = fileURLToPath(new URL('../helpers/reaper.mjs', import.meta.url))

t.test('a killed test process leaves nothing behind; what others started is left alone', async (t) => {
  // A stand-in test process: loads the reaper, starts a daemon (detached, its own session), prints
  // its pid, and is SIGKILLed with its teardown never run.
  const env = { ...process.env }
  delete env.RUNWAY_TEST_OWNER
  const script = `
    const { spawn } = require('node:child_process')
    const d = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' })
    d.unref()
    console.log(d.pid)
    setInterval(() => {}, 1000)`
  const fake = spawn(process.execPath, ['--import', REAPER, '-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  const daemon = await new Promise<number>((resolve) => fake.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))))
  // Started by this test process, not by the stand-in: carries another mark (or none).
  const bystander = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { ...env, RUNWAY_TEST_OWNER: 'someone-else' } })
  bystander.unref()
  t.teardown(() => {
    for (const pid of [daemon, bystander.pid!]) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  t.ok(isAlive(daemon), 'the daemon runs')
  fake.kill('SIGKILL')
  for (let i = 0; i < 50 && isAlive(daemon); i++) await new Promise((r) => setTimeout(r, 100))
  t.notOk(isAlive(daemon), 'the daemon the killed process started is gone within seconds')
  t.ok(isAlive(bystander.pid!), 'a process another test started is left alone')
})
