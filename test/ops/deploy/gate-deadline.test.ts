// The health gate's stopping rule: a verdict is never cut short by the deadline.
import t from 'tap'
import { GRACE_MS, keepChecking } from '../../../src/ops/deploy/gate-deadline.js'

const at = (elapsedMs: number, o: { checked?: boolean; healthySince?: number } = {}) =>
  keepChecking({ checked: o.checked ?? true, elapsedMs, timeoutMs: 2000, healthySince: o.healthySince })

t.test('before the deadline: keep checking', async (t) => {
  t.ok(at(0, { checked: false }))
  t.ok(at(1999))
})

t.test('past the deadline with no check done yet (a slow pm2 jlist): one check still runs', async (t) => {
  t.ok(at(5000, { checked: false }))
})

t.test('past the deadline while healthy but not yet stable: keep checking until confirmed or broken', async (t) => {
  // The first healthy check came at 1.9 s; the window (1.5 s) is not over at 2.6 s, and over at
  // 3.5 s: the next check returns the verdict, so the loop must still run (the bug: it stopped).
  t.ok(at(2600, { healthySince: 1900 }))
  t.ok(at(3500, { healthySince: 1900 }), 'the check after the window is still made')
})

t.test('past the deadline and unhealthy, or past the grace: stop', async (t) => {
  t.notOk(at(2000))
  t.notOk(at(2000 + GRACE_MS, { healthySince: 1900 }), 'workers that never settle do not hold the gate forever')
})
