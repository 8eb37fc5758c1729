// results.json: the schema accepts what compare/loadtest write and names what is wrong otherwise;
// medians, totals, ratios to the dev server, efficiency against the twins and the targets.
import t from 'tap'
import { annotate } from '../src/loadtest/compare.js'
import { assertResults, resultsProblems } from '../src/loadtest/schema.js'
import { errorRate, median, summarize } from '../src/loadtest/stats.js'
import { compareResults, figures } from './helpers/loadtest.js'

t.test('a complete document validates, and survives JSON', async (t) => {
  const doc = compareResults()
  annotate(doc)
  t.same(resultsProblems(doc), [])
  t.same(resultsProblems(JSON.parse(JSON.stringify(doc))), [])
  t.equal(assertResults(doc), doc)
})

t.test('problems name the path', async (t) => {
  const doc = compareResults() as unknown as Record<string, any>
  doc.results[0].summary.rps = -1
  delete doc.machine.cpuCount
  doc.engine = 'ab'
  const problems = resultsProblems(doc)
  t.ok(problems.some((p) => p.startsWith('/results/0/summary/rps')), problems.join('\n'))
  t.ok(problems.some((p) => p.startsWith('/machine')), problems.join('\n'))
  t.ok(problems.some((p) => p.startsWith('/engine')), problems.join('\n'))
  t.throws(() => assertResults(doc, 'old.json'), /^old\.json does not match the runway-loadtest\/1 schema: /)
  t.not(resultsProblems({ schema: 'runway-loadtest/2' }).length, 0)
})

t.test('ratios, efficiency and targets', async (t) => {
  const doc = compareResults()
  annotate(doc)
  const me = (stage: string) => doc.results.find((r) => r.stage === stage && r.scenario === 'me')!
  t.equal(me('dev').ratioToDev, 1)
  t.equal(me('single').ratioToDev, 2.25)
  t.equal(me('single').efficiency, 0.9, 'single ÷ bare single')
  t.equal(me('cluster').efficiency, 0.75, 'cluster ÷ bare cluster')
  t.equal(me('bare-cluster').efficiency, undefined, 'twins have no twin')
  const target = (name: RegExp) => doc.targets.find((x) => name.test(x.name))!
  t.match(target(/production, one process ≥ 80%/), { value: 0.9, met: true })
  t.match(target(/pm2 cluster \(2 workers\) ≥ 80%/), { value: 0.75, met: false })
  t.match(target(/cluster ≥ 1.5×/), { value: 1.667, met: true })
  t.match(target(/session: 0 errors through production, one process/), { value: 0, met: true })
  t.match(target(/session: 0 errors through pm2 cluster/), { value: 3, met: false })
  t.ok(doc.warnings.some((w) => /cluster session: 3 failed responses/.test(w)), doc.warnings.join('\n'))
})

t.test('a saturated load generator and a busy machine are warned about', async (t) => {
  const doc = compareResults()
  doc.results[1]!.loadgenSaturated = true
  doc.results[1]!.summary!.loadgenCpu = 99
  doc.results[2]!.summary!.otherCpu = 60
  annotate(doc)
  t.ok(doc.warnings.some((w) => /single me: the load generator used 99% CPU .*try --workers 2/.test(w)), doc.warnings.join('\n'))
  t.ok(doc.warnings.some((w) => /bare-single me: other processes used 60% CPU/.test(w)), doc.warnings.join('\n'))
})

t.test('medians of runs, totals of errors', async (t) => {
  t.equal(median([]), 0)
  t.equal(median([5, 1, 3]), 3)
  t.equal(median([4, 1, 3, 2]), 2.5)
  const s = summarize([figures(100, { non2xx: 1 }), figures(300), figures(200, { errors: 2, timeouts: 2 })])
  t.equal(s.rps, 200)
  t.equal(s.non2xx, 1)
  t.equal(s.errors, 2)
  t.equal(s.responses, 6000)
  t.equal(s.durationSec, 30)
  t.equal(errorRate(figures(100, { responses: 999, errors: 1, non2xx: 9 })), 1, '10 of 1000 attempts')
  t.equal(errorRate(figures(0, { responses: 0 })), 100, 'nothing answered is all errors')
})
