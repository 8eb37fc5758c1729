// Release gates: threshold syntax, evaluation and the baseline regression check, each with a
// passing and a failing case and the message a pipeline log would show.
import t from 'tap'
import { baselineFigures, checkRegression, checkThresholds, parsePercent, parseThreshold, THRESHOLD_EXIT_CODE } from '../../../src/bench/loadtest/thresholds.js'
import { compareResults, figures, row } from '../../helpers/loadtest.js'

t.equal(THRESHOLD_EXIT_CODE, 99, "k6's convention")

t.test('parses the documented forms', async (t) => {
  t.match(parseThreshold('p99<250ms'), { metric: 'p99', op: '<', value: 250, percent: false })
  t.match(parseThreshold('p90 <= 1.5s'), { metric: 'p90', op: '<=', value: 1500 })
  t.match(parseThreshold('errors<0.1%'), { metric: 'errors', op: '<', value: 0.1, percent: true })
  t.match(parseThreshold('errors<5'), { metric: 'errors', value: 5, percent: false })
  t.match(parseThreshold('rps>500'), { metric: 'rps', op: '>', value: 500 })
  t.match(parseThreshold('me:rps>=1000'), { scenario: 'me', metric: 'rps', op: '>=', value: 1000 })
})

t.test('refuses what it cannot mean', async (t) => {
  for (const bad of ['p99', 'p99<', 'latency<3ms', 'rps>5ms', 'p99<5%', 'non2xx<1%', 'p99=3ms', '']) {
    t.throws(() => parseThreshold(bad), { name: 'ThresholdSyntaxError' }, bad)
  }
  t.throws(() => parseThreshold('fast<1'), /unknown metric fast/)
  t.throws(() => parsePercent('ten', '--max-regression'), /--max-regression "ten" is not a percentage/)
  t.equal(parsePercent('10%', '--max-regression'), 10)
  t.equal(parsePercent('7.5', '--max-regression'), 7.5)
})

t.test('thresholds pass and fail with a message naming them', async (t) => {
  const rows = [row('target', 'me', 4000, { latency: { p50: 3, p90: 8, p99: 312, max: 400, mean: 5 }, responses: 1000, non2xx: 2 })]
  const [p99, errors, rps, pct] = checkThresholds(['p99<250ms', 'errors<5', 'rps>500', 'errors<0.1%'].map(parseThreshold), rows)
  t.equal(p99!.pass, false)
  t.equal(p99!.message, 'threshold p99<250ms failed on me: p99 was 312 ms')
  t.equal(errors!.pass, true)
  t.equal(rps!.pass, true)
  t.match(rps!.message, /^threshold rps>500 passed on me \(rps 4,000 req\/s\)$/)
  t.equal(pct!.pass, false, '2 of 1000 is 0.2%')
  t.equal(pct!.message, 'threshold errors<0.1% failed on me: errors was 0.2%')
})

t.test('a threshold for a scenario that did not run fails', async (t) => {
  const [r] = checkThresholds([parseThreshold('login:rps>1')], [row('target', 'me', 10)])
  t.equal(r!.pass, false)
  t.match(r!.message, /scenario login was not run/)
})

t.test('a scenario without figures fails every threshold', async (t) => {
  const [r] = checkThresholds([parseThreshold('rps>1')], [{ scenario: 'me', summary: undefined }])
  t.equal(r!.pass, false)
  t.match(r!.message, /produced no figures/)
})

t.test('baseline regression: within the limit passes, beyond it fails', async (t) => {
  const base = figures(1000, { latency: { p50: 2, p90: 5, p99: 10, max: 20, mean: 3 } })
  const ok = checkRegression('me', figures(950, { latency: { p50: 2, p90: 5, p99: 10.5, max: 20, mean: 3 } }), base, 10)
  t.ok(
    ok.every((c) => c.pass),
    ok.map((c) => c.message).join('; '),
  )
  const slow = checkRegression('me', figures(800, { latency: { p50: 2, p90: 5, p99: 13, max: 20, mean: 3 } }), base, 10)
  const [rps, p99, errors] = slow
  t.equal(rps!.pass, false)
  t.equal(rps!.message, 'regression check failed on me: rps 800 is 20% below the baseline 1,000 (max 10%)')
  t.equal(p99!.pass, false)
  t.equal(p99!.message, 'regression check failed on me: p99 13 ms is 30% above the baseline 10 ms (max 10%)')
  t.equal(errors!.pass, true)
  const broken = checkRegression('me', figures(1000, { non2xx: 1 }), base, 10)
  t.equal(broken[2]!.pass, false)
  t.match(broken[2]!.message, /1 failed responses where the baseline had none/)
})

t.test('baseline figures from a compare result need a stage', async (t) => {
  const doc = compareResults()
  t.match(baselineFigures(doc, 'me'), { problem: /several stages \(dev, single, bare-single, cluster, bare-cluster\): choose one with --baseline-stage/ })
  t.match(baselineFigures(doc, 'me', 'cluster'), { rps: 15000 })
  t.match(baselineFigures(doc, 'login'), { problem: 'the baseline has no login figures' })
})
