// The lag monitor behind load shedding reads a one-off stall as what it is: a 1.5 s stall among a
// second of 10 ms ticks is 1.5 s of lag (a mean over the window read it as 17–38 ms, and a
// 50 ms shedding threshold then never fired), and the next quiet second reads low again.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { startLagMonitor } from '../../../src/api/plugins/event-loop-lag.js'

t.test('a 1.5 s stall reads as ~1.5 s of lag for the next second, then clears', async (t) => {
  const monitor = startLagMonitor()
  t.teardown(() => monitor.stop())
  await sleep(1300) // past one sample, with ticks recorded since: a mean would dilute the stall
  const until = Date.now() + 1500
  while (Date.now() < until);
  await sleep(50) // the overdue sample runs now, with the stall in its window
  t.ok(monitor.lagMs() >= 1000, `lag after the stall: ${Math.round(monitor.lagMs())} ms`)
  await sleep(2100) // two quiet samples later
  t.ok(monitor.lagMs() < 1000, `lag once the loop is free again: ${Math.round(monitor.lagMs())} ms`)
})

t.test('forget(): a stall before it (start-up work) stops counting at once', async (t) => {
  const monitor = startLagMonitor()
  t.teardown(() => monitor.stop())
  await sleep(100)
  const until = Date.now() + 1200
  while (Date.now() < until);
  await sleep(20) // the overdue sample runs: the stall is measured
  t.ok(monitor.lagMs() >= 1000, `measured: ${Math.round(monitor.lagMs())} ms`)
  monitor.forget()
  t.equal(monitor.lagMs(), 0, 'forgotten: the app would not shed for it')
  await sleep(1100)
  t.ok(monitor.lagMs() < 1000, `the next second reads the quiet loop: ${Math.round(monitor.lagMs())} ms`)
})
