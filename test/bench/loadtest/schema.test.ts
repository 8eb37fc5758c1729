// results.json: the schema accepts what compare/loadtest write and names what is wrong otherwise;
// medians, totals, ratios to the dev server, efficiency against the twins and the targets.
import t from 'tap'
import { annotate } from '../../../src/bench/loadtest/compare.js'
import { assertResults, resultsProblems } from '../../../src/bench/loadtest/schema.js'
import { renderMarkdown } from '../../../src/bench/loadtest/report-md.js'
import { cpuMsPer, errorRate, median, percentiles, summarize } from '../../../src/bench/loadtest/stats.js'
import { targetLines } from '../../../src/bench/loadtest/table.js'
import { compareResults, figures, row } from '../../helpers/loadtest.js'

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
  t.ok(
    problems.some((p) => p.startsWith('/results/0/summary/rps')),
    problems.join('\n'),
  )
  t.ok(
    problems.some((p) => p.startsWith('/machine')),
    problems.join('\n'),
  )
  t.ok(
    problems.some((p) => p.startsWith('/engine')),
    problems.join('\n'),
  )
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
  t.match(target(/production, one process ≥ 90%/), { value: 0.9, met: true })
  t.match(target(/pm2 cluster \(2 workers\) ≥ 90%/), { value: 0.75, met: false })
  const bareRatio = me('bare-cluster').summary!.rps / me('bare-single').summary!.rps
  t.match(target(/cluster ≥ 1.5×/), { value: 1.667, met: true, note: `the bare twins reach ${bareRatio.toFixed(2)}× on this machine` })
  t.match(target(/session: 0 errors through production, one process/), { value: 0, met: true })
  t.match(target(/session: 0 errors through pm2 cluster/), { value: 3, met: false })
  t.match(target(/^start: one production process ready ≤ 1 s/), { goal: '≤ 1000 ms', value: 500, met: true })
  t.ok(targetLines(doc).some((l) => l.trim() === 'met    start: one production process ready ≤ 1 s after it is started: 500 ms (goal ≤ 1000 ms)'))
  const slow = compareResults()
  slow.stages.find((s) => s.id === 'single')!.startupMs = 1520
  annotate(slow)
  t.match(
    slow.targets.find((x) => x.name.startsWith('start:')),
    { value: 1520, met: false },
    'a start of 1.5 s misses it',
  )
  t.ok(
    doc.warnings.some((w) => /cluster session: 3 failed responses \(.*\): 503 × 3 \(the app shed load \(runway_load_shed_total/.test(w)),
    doc.warnings.join('\n'),
  )
})

t.test('a saturated load generator and a busy machine are warned about', async (t) => {
  const doc = compareResults()
  doc.results[1]!.loadgenSaturated = true
  doc.results[1]!.summary!.loadgenCpu = 99
  doc.results[2]!.summary!.otherCpu = 60
  annotate(doc)
  t.ok(
    doc.warnings.some((w) => /single me: the load generator used 99% CPU .*try --workers 2/.test(w)),
    doc.warnings.join('\n'),
  )
  t.ok(
    doc.warnings.some((w) => /bare-single me: other processes used 60% CPU/.test(w)),
    doc.warnings.join('\n'),
  )
})

// The 2-core case that taught the wrong lesson: autocannon in one thread took a core, the cluster's
// two workers shared the other, and the cluster measured at 0.60× one process.
t.test('a run limited by the machine does not rank the stacks: a verdict on top, its goals not judged', async (t) => {
  const doc = compareResults()
  const cluster = doc.results.find((r) => r.stage === 'cluster' && r.scenario === 'me')!
  cluster.summary!.rps = 5400
  cluster.summary!.loadgenCpu = 98
  cluster.loadgenSaturated = true
  annotate(doc)
  t.match(cluster.untrusted, /^the load generator \(autocannon\) used 98% CPU, all it can/)
  t.equal(doc.results.filter((r) => r.untrusted).length, 1, 'only the saturated row')
  const target = (name: RegExp) => doc.targets.find((x) => name.test(x.name))!
  t.match(target(/cluster ≥ 1.5×/), { value: 0.6, met: null, note: /^not judged: pm2 cluster \(2 workers\) me was limited by the machine/ })
  t.match(target(/pm2 cluster \(2 workers\) ≥ 90%/), { met: null })
  t.match(target(/production, one process ≥ 90%/), { value: 0.9, met: true }, 'goals on trusted rows are still judged')
  t.match(doc.verdict, /^Not a ranking: 1 of 8 measurements were limited by the machine, not by the stack \(pm2 cluster \(2 workers\) me: the load generator/)
  t.match(doc.verdict, /install wrk \(apt-get install -y wrk\)/, 'wrk is not installed on the fixture machine')
  t.match(renderMarkdown(doc), /^# runway compare[^\n]*\n[\s\S]*?\n> \*\*Not a ranking: [\s\S]*## Targets/, 'report.md puts it above the goals')
  t.ok(
    targetLines(doc).some((l) => /^– +me: pm2 cluster ≥ 1\.5× one production process: 0\.60× \(goal ≥ 1\.5×\): not judged/.test(l)),
    targetLines(doc).join('\n'),
  )

  const withWrk = compareResults()
  withWrk.machine.wrk = 'wrk 4.1.0'
  withWrk.results[1]!.loadgenSaturated = true
  annotate(withWrk)
  t.match(withWrk.verdict, /rerun with --engine wrk/)

  const busy = compareResults()
  busy.results[0]!.summary!.otherCpu = 80
  annotate(busy)
  t.match(
    busy.verdict,
    /\(dev server me: other processes used 80% CPU during the runs\)\. Do not compare the stacks from this run; rerun on a quiet machine\.$/,
  )

  const quiet = compareResults()
  annotate(quiet)
  t.equal(quiet.verdict, undefined)
  t.equal(quiet.results.filter((r) => r.untrusted).length, 0)
})

t.test("the TLS twin against the minimal proxy: the rendered template's own cost, and its goal", async (t) => {
  const doc = compareResults()
  doc.stages.push(
    { id: 'tls', label: 'nginx (TLS) → pm2 cluster', kind: 'stage', status: 'ok', explanation: 'x' },
    { id: 'bare-tls', label: 'ceiling: nginx (TLS) → bare cluster', kind: 'twin', twinOf: 'tls', status: 'ok', explanation: 'x' },
    { id: 'proxy-tls', label: 'ceiling: minimal nginx proxy (TLS) → bare cluster', kind: 'twin', twinOf: 'tls', status: 'ok', explanation: 'x' },
  )
  doc.results.push(row('tls', 'me', 8000), row('bare-tls', 'me', 8500), row('proxy-tls', 'me', 10000))
  annotate(doc)
  const me = (stage: string) => doc.results.find((r) => r.stage === stage && r.scenario === 'me')!
  t.equal(me('tls').efficiency, 0.941, 'tls ÷ its ceiling twin')
  t.equal(me('bare-tls').efficiency, 0.85, 'the same template on the bare cluster ÷ the minimal proxy')
  t.equal(me('proxy-tls').efficiency, undefined)
  t.match(
    doc.targets.find((x) => /template/.test(x.name)),
    { name: 'me: the rendered nginx template (TLS) ≥ 90% of a minimal TLS proxy, both on the bare cluster', value: 0.85, met: false },
  )
  const without = compareResults()
  annotate(without)
  t.notOk(
    without.targets.some((x) => /template/.test(x.name)),
    'no minimal proxy, no template goal',
  )
})

t.test("session latency: medians of the runs' whole-session percentiles", async (t) => {
  const lat = (p50: number) => ({ p50, p90: p50 * 2, p99: p50 * 3, max: p50 * 4, mean: p50 })
  const s = summarize([
    figures(10, { sessions: { completed: 5, latency: lat(100) } }),
    figures(10, { sessions: { completed: 7, latency: lat(300) } }),
    figures(10, { sessions: { completed: 6, latency: lat(200) } }),
  ])
  t.same(s.sessions, { completed: 18, latency: { p50: 200, p90: 400, p99: 600, max: 1200, mean: 200 } })
  t.equal(summarize([figures(10)]).sessions, undefined, 'single-step scenarios have none')
  t.same(percentiles([5, 1, 4, 2, 3, 6, 7, 8, 9, 10]), { p50: 5, p90: 9, p99: 10, max: 10, mean: 5.5 })
  t.same(percentiles([]), { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 })
})

t.test('server CPU per operation: CPU% over the seconds, shared by the operations, to 0.1 ms', async (t) => {
  t.equal(cpuMsPer(190, 10, 842), 22.6, '1.9 cores for 10 s over 842 logins')
  t.equal(cpuMsPer(100, 1, 1000), 1)
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
