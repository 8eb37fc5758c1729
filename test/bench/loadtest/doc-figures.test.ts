// The measured figures in docs/ are rendered from results files: a compare run becomes the `me`
// table, the session line and the goals (with the run's verdict on top when it cannot rank the
// stacks); a bench:nginx run becomes the template-cost table.
import t from 'tap'
import { annotate } from '../../../src/bench/loadtest/compare.js'
import {
  BLOCKS,
  compareFigures,
  type DjangoResults,
  type DjangoSide,
  djangoFigures,
  type LoginResults,
  loginFigures,
  missingResults,
  nginxCostFigures,
  rssFigures,
  stackFigures,
} from '../../../src/bench/loadtest/doc-figures.js'
import { compareResults } from '../../helpers/loadtest.js'

t.test('a compare run: settings, the me table, the session line, the goals', async (t) => {
  const r = compareResults()
  for (const x of r.results.filter((x) => x.scenario === 'session'))
    x.summary!.sessions = { completed: 9, latency: { p50: 800, p90: 1400, p99: 1600, max: 1700, mean: 850 } }
  annotate(r)
  const text = compareFigures(JSON.parse(JSON.stringify(r)), 'docs/results/compare/results.json')
  t.match(
    text,
    /^From `docs\/results\/compare\/results\.json` \(2026-11-29T10:00:00\.000Z\): Test CPU, 2 CPUs, Node v20\.0\.0, nginx 1\.22\.1; autocannon, 50 connections, 10 s × 3 runs after 3 s warm-up, medians; load average at the end 1 \/ 1 \/ 1/,
  )
  t.match(text, /\n\| stack \| req\/s \| p99 \| server CPU \| load gen CPU \| other CPU \| of its twin \| failed \|\n/)
  t.match(text, /\n\| production, one process \| 9,000 \| 9 ms \| 95 % \| 60 % \| 3 % \| 90% \| 0 \|\n/)
  t.match(
    text,
    /\n`session` \(login → 3 × me → refresh → logout, 50 connections\): 300–900 req\/s through the 3 stacks, 3 failed responses; a whole session takes 800 ms at the median, 1600 ms at worst p99/,
  )
  t.match(text, /\n- MISSED: me: pm2 cluster \(2 workers\) ≥ 90% of its ceiling twin: 75% \(goal ≥ 90%\)/)
  t.notMatch(text, /Not a ranking/)
  const bad = compareResults()
  bad.results[1]!.loadgenSaturated = true
  annotate(bad)
  const withheld = compareFigures(bad, 'f.json')
  t.match(withheld, /\n> \*\*Not a ranking: [^\n]*\*\*\n\nIts figures are not quoted here: the machine, not the stacks, set them\./, 'an untrusted run says so')
  t.notMatch(withheld, /\| stack \||9,000|Goals:/, 'and none of its figures reach the docs')
  t.throws(() => compareFigures({ schema: 'nope' }, 'f.json'), /^f\.json does not match the runway-loadtest\/1 schema/)
})

t.test("each stack's start-up, processes, memory and CPU from the same run", async (t) => {
  const r = compareResults()
  annotate(r)
  const text = stackFigures(r, 'c.json')
  t.match(text, /\| stack \| start → ready \| processes \| server RSS under load \| server CPU \| req\/s \|/)
  t.match(text, /\n\| dev server \| 0\.5 s \| 1 \| 120 MiB \| 95 % \| 4,000 \|/)
  t.notMatch(text, /ceiling/, 'stages only, not their twins')
  r.results[0]!.summary!.otherCpu = 99
  annotate(r)
  t.match(stackFigures(r, 'c.json'), /Its figures are not quoted here/)
})

t.test("bench:login and probe:rss runs: their tables; a busy machine's logins are not quoted", async (t) => {
  const login: LoginResults = {
    createdAt: '2026-11-30T16:00:00.000Z',
    argon2: { memoryKiB: 19456, iterations: 2, parallelism: 1 },
    machine: { cpus: 2, loadAverageBefore: [0.5, 0.4, 0.3], loadAverageAfter: [1, 1, 1] },
    settings: { durationSec: 10, connections: 16, users: 20 },
    results: [
      {
        stack: 'single',
        loginsPerSec: 51.2,
        cpuMsPerLogin: 19.5,
        serverRssMb: 98.4,
        loadgenCpuPct: 3,
        otherCpuPct: 4,
        latencyMs: { p50: 300, p99: 420 },
        errors: 0,
        statusCodes: { '200': 512, '503': 2 },
      },
    ],
  }
  const text = loginFigures(login, 'l.json')
  t.match(text, /argon2id m=19 MiB, t=2, p=1; 16 connections over 20 users, 10 s\./)
  t.match(text, /\n\| single \| 51\.2 \| 19\.5 ms \| 300 ms \| 420 ms \| 98 MB \| 3 % \| 4 % \| 2 \|$/)
  login.results[0]!.otherCpuPct = 77
  t.match(loginFigures(login, 'l.json'), /Other processes used up to 77% CPU[\s\S]*not quoted/)
  const rss = rssFigures(
    {
      createdAt: '2026-11-30T16:00:00.000Z',
      machine: { cpus: 2, loadAverageBefore: [1, 1, 1] },
      settings: { instances: 2, connections: 50, meSeconds: 60, loginSeconds: 20, env: {} },
      pm2StartMs: 2160,
      workersRssMb: { startPeak: [90.2, 88.9], idle: [85.6, 83.1], peakUnderMe: [101, 104.7], peakUnderLoginStorm: [99, 98], afterStorm: [97, 96] },
      loads: { meRps: 12345.6, loginsPerSec: 40.1 },
      workerRestarts: 0,
    },
    'r.json',
  )
  t.match(rss, /\n\| just started: the most in the first 10 s after ready \| 90 \/ 89 MB \|\n\| idle, 20 s after ready \| 86 \/ 83 MB \|/)
  t.match(rss, /\n\| peak under 60 s of `GET \/api\/me\/` \(12,346 req\/s\) \| 101 \/ 105 MB \|/)
  t.match(rss, /every worker ready after 2\.2 s; 0 restarts\./)
})

t.test('a bench:nginx run: one row per variant', async (t) => {
  const text = nginxCostFigures(
    {
      createdAt: '2026-11-30T15:00:00.000Z',
      machine: { cpus: 2, loadAverageBefore: [1.5, 1, 1], loadAverageAfter: [2, 1, 1] },
      settings: { engine: 'wrk', connections: 50, seconds: 5, runs: 5, nginxWorkers: 1, upstreamWorkers: 2 },
      variants: [
        { id: 'rendered', label: 'rendered template (as deployed)', status: 'ok', rps: 20000, runs: [20000], ofRendered: 1, ofMinimal: 0.8, otherCpu: 4 },
        { id: 'minimal', label: 'minimal proxy', status: 'ok', rps: 25000, runs: [25000], ofRendered: 1.25, ofMinimal: 1, otherCpu: 4 },
      ],
    },
    'docs/results/nginx-cost/results.json',
  )
  t.match(
    text,
    /^From `docs\/results\/nginx-cost\/results\.json` \(2026-11-30T15:00:00\.000Z\): 2 CPUs, load average 1\.5 \/ 1 \/ 1 before; wrk -c50, 5 × 5 s interleaved/,
  )
  t.match(text, /\n\| rendered template \(as deployed\) \| 20,000 \| 1\.00 \| 0\.80 \| 4 % \|/)
  t.match(text, /\n\| minimal proxy \| 25,000 \| 1\.25 \| 1\.00 \| 4 % \|$/)
})

t.test('a bench:nginx run on a busy machine quotes no figure', async (t) => {
  const v = (id: string, otherCpu: number) => ({ id, label: id, status: 'ok', rps: 9999, runs: [9999], ofRendered: 1, ofMinimal: 1, otherCpu })
  const text = nginxCostFigures(
    {
      machine: { cpus: 2, loadAverageBefore: [9, 9, 9], loadAverageAfter: [9, 9, 9] },
      settings: { engine: 'wrk', connections: 50, seconds: 4, runs: 5, nginxWorkers: 1, upstreamWorkers: 2 },
      variants: [v('rendered', 10), v('minimal', 131)],
    },
    'n.json',
  )
  t.match(text, /> \*\*Other processes used up to 131% CPU during these runs\.\*\*\n\nIts figures are not quoted here/)
  t.notMatch(text, /9,999/)
})

t.test('a bench:django run: both stacks, the ratios against their goals; a busy run quotes none', async (t) => {
  const side = (label: string, rps: number, perSec: number, otherCpuPct = 3): DjangoSide => ({
    label,
    workers: '2',
    hasher: label.startsWith('runway') ? 'argon2id m=19456 KiB t=2 p=1' : 'pbkdf2_sha256$260000',
    me: { rps, runs: [rps], p99Ms: 5.25, errors: 0, serverCpuPct: 150, loadgenCpuPct: 30, otherCpuPct },
    login: { perSec, runs: [perSec], cpuMsPerLogin: 22.3, p99Ms: 380, errors: 1, serverCpuPct: 190, otherCpuPct },
  })
  const doc: DjangoResults = {
    createdAt: '2026-12-01T02:46:41.802Z',
    machine: { cpus: 2, cpuModel: 'AMD EPYC', loadAverageBefore: [0.1, 0.2, 0.3], loadAverageAfter: [2, 2, 2] },
    versions: { node: 'v20.20.2', django: '3.2.25', djangorestframework: '3.14.0', simplejwt: '5.2.2', gunicorn: '20.1.0' },
    settings: { seconds: 5, runs: 3, connections: 50, loginSeconds: 10, loginConnections: 16, users: 20 },
    runway: side('runway: nginx TLS → pm2 cluster (2 workers)', 27000, 84.2),
    django: side('Django: nginx TLS → gunicorn -w 2', 1346, 26.8),
    ratios: { me: 20.06, login: 3.14 },
    goals: { me: 20, login: 1.5 },
  }
  const text = djangoFigures(doc, 'docs/results/django/results.json')
  t.match(
    text,
    /^From `docs\/results\/django\/results\.json` \(2026-12-01T02:46:41\.802Z\): 2 × AMD EPYC, load average 0\.1 \/ 0\.2 \/ 0\.3 before; Node v20\.20\.2 vs Django 3\.2\.25/,
  )
  t.match(text, /\n\| runway: nginx TLS → pm2 cluster \(2 workers\) \| 27,000 \| 5\.3 ms \| 84\.2 \| 22\.3 ms \| argon2id m=19456 KiB t=2 p=1 \| 1 \|/)
  t.match(text, /\n\| Django: nginx TLS → gunicorn -w 2 \| 1,346 \| 5\.3 ms \| 26\.8 \| 22\.3 ms \| pbkdf2_sha256\$260000 \| 1 \|/)
  t.match(text, /GET \/api\/me\/ \*\*20\.06×\*\* \(goal ≥ 20×: met\); logins \*\*3\.14×\*\* \(goal ≥ 1\.5×: met\)\.$/)
  const missed = djangoFigures({ ...doc, ratios: { me: 17.4, login: 1.2 } }, 'd.json')
  t.match(missed, /\*\*17\.40×\*\* \(goal ≥ 20×: missed\); logins \*\*1\.20×\*\* \(goal ≥ 1\.5×: missed\)/)
  const busy = djangoFigures({ ...doc, django: side('Django', 900, 10, 64) }, 'd.json')
  t.match(busy, /Other processes used up to 64% CPU[\s\S]*not quoted/)
  t.notMatch(busy, /27,000/)
})

t.test('every block names its document, its results file and how to produce it', async (t) => {
  t.same(
    BLOCKS.map((b) => b.id),
    ['drill-figures', 'compare-figures', 'stack-figures', 'login-figures', 'rss-figures', 'nginx-cost-figures', 'django-figures', 'django-guide-figures'],
  )
  for (const b of BLOCKS) t.match(missingResults(b.results, b.produce), new RegExp(`^No results file yet: \`${b.results.replaceAll('.', '\\.')}\` is missing`))
})
