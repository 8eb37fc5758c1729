// Benchmark (not a test): what each part of the rendered nginx template costs. One bare
// node:cluster (the ceiling twin) behind several nginx instances side by side, all TLS with one
// worker: the rendered template as `runway compare` runs it, the same with one part removed or
// changed, and the minimal proxy (proxy_pass, TLS, upstream keep-alive). GET /api/me/ with wrk,
// runs interleaved across the variants (drift on a shared machine falls on all alike), median.
//   npm run bench:nginx -- [--seconds 5] [--runs 3] [--connections 50] [--json]
// On a shared machine run it as `flock /tmp/runway-heavy.lock npm run bench:nginx`.
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { NginxCostResults } from '../src/bench/loadtest/doc-figures.js'
import { ENGINES } from '../src/bench/loadtest/engines.js'
import { mintAccessToken } from '../src/bench/loadtest/hs256.js'
import { measureInterleaved } from '../src/bench/loadtest/measure.js'
import { writeJsonResults } from '../src/bench/loadtest/results.js'
import { scenario } from '../src/bench/loadtest/scenarios.js'
import { nginxOver, startCeiling, type Running, type StageContext } from '../src/bench/loadtest/stages.js'
import { benchPassword, createBenchUsers } from '../src/bench/loadtest/users.js'
import { positiveInt } from './args.js'

const USAGE = `Usage: npm run bench:nginx -- [options]

Measures GET /api/me/ through variants of the rendered nginx (TLS, one worker) in front of one
bare node:cluster, with wrk, runs interleaved; prints req/s and each variant ÷ the rendered
template and ÷ the minimal proxy. A part whose removal gains N% costs N% in the template.

Options:
  --seconds N      seconds per run (default 5)
  --runs N         runs per variant; the median is reported (default 3)
  --connections N  wrk connections (default 50)
  --json           one JSON object on stdout
  --out DIR        also write it to DIR/results.json (docs/results/nginx-cost feeds the docs)
  --help`

/** One variant: a name and how it changes the rendered config (none = as rendered). */
interface Variant {
  id: string
  label: string
  minimal?: boolean
  edit?: (conf: string) => string
}

const drop = (re: RegExp) => (conf: string) => {
  const out = conf.replace(re, '')
  if (out === conf) throw new Error(`variant matched nothing: ${re}`)
  return out
}

export const VARIANTS: Variant[] = [
  { id: 'rendered', label: 'rendered template (as deployed)' },
  { id: 'log-unbuffered', label: 'access log written per request (no buffer=)', edit: (c) => c.replace(/(access_log \S+ \S+_json)[^;]*;/g, '$1;') },
  { id: 'no-log', label: 'without the access log', edit: (c) => c.replace(/access_log \S+ \S+_json[^;]*;/g, 'access_log off;') },
  { id: 'no-headers', label: 'without the security headers (add_header)', edit: drop(/^\s*add_header [^\n]*\n/gm) },
  { id: 'no-gzip', label: 'without gzip', edit: drop(/^\s*gzip[^\n]*\n/gm) },
  { id: 'no-forwarded', label: 'without the Host and X-Forwarded-* headers', edit: drop(/^\s*proxy_set_header (?!Connection)[^\n]*\n/gm) },
  { id: 'no-error-pages', label: 'without the JSON error pages (error_page)', edit: drop(/^\s*error_page [^\n]*\n/gm) },
  { id: 'minimal', label: 'minimal proxy (proxy_pass, TLS, upstream keep-alive)', minimal: true },
]

async function main() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      runs: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) return console.log(USAGE)
  if (!ENGINES.wrk.version()) throw new Error(`wrk is needed: ${ENGINES.wrk.install}`)
  const seconds = positiveInt('seconds', values.seconds)
  const runs = positiveInt('runs', values.runs)
  const connections = positiveInt('connections', values.connections)
  const work = mkdtempSync(join(tmpdir(), 'runway-nginx-cost-'))
  const key = randomBytes(48).toString('base64url')
  const instances = availableParallelism()
  const ctx: StageContext = {
    dataDir: join(work, 'data'),
    logDir: join(work, 'logs'),
    key,
    instances,
    env: {},
    dist: () => Promise.reject(new Error('not used')),
    src: () => Promise.reject(new Error('not used')),
  }
  mkdirSync(ctx.logDir, { recursive: true })
  const stacks: Running[] = []
  const log = (s: string) => values.json || console.error(s)
  try {
    const users = await createBenchUsers(ctx.dataDir, 1, await benchPassword())
    // Over a Unix socket, as compare's twins and `runway host init`'s nginx reach their app.
    const bare = await startCeiling(ctx, instances, 'ceiling cluster', { socket: true })
    stacks.push(bare)
    const keepBare = { ...bare, stop: async () => undefined }
    const fronts: { v: Variant; run: Running }[] = []
    for (const v of VARIANTS) {
      const run = await nginxOver(keepBare, { tls: true, ...(v.minimal ? { minimal: true } : {}), ...(v.edit ? { edit: v.edit } : {}) })
      stacks.push(run)
      fronts.push({ v, run })
      log(`${v.id}: ${run.url}`)
    }
    const token = mintAccessToken(users.ids[0]!, key)
    const load0 = loadavg()
    const rows = await measureInterleaved(
      fronts.map(({ v, run }) => ({
        target: { stage: v.id, label: v.label, url: run.url, ...(run.ca ? { ca: run.ca } : {}), pids: run.pids },
        context: { scenario: 'me', tokens: [token] },
      })),
      scenario('me'),
      { connections, durationSec: seconds, warmupSec: 2, runs, workers: 0 },
      'wrk',
    )
    const rps = (id: string) => rows.find((r) => r.stage === id)?.summary?.rps ?? 0
    const out: NginxCostResults = {
      createdAt: new Date().toISOString(),
      machine: { cpus: availableParallelism(), loadAverageBefore: load0, loadAverageAfter: loadavg() },
      settings: { engine: 'wrk', connections, seconds, runs, nginxWorkers: 1, upstreamWorkers: instances },
      variants: rows.map((r) => ({
        id: r.stage,
        label: VARIANTS.find((v) => v.id === r.stage)!.label,
        status: r.status,
        ...(r.reason ? { reason: r.reason } : {}),
        rps: r.summary?.rps ?? 0,
        runs: r.runs.map((x) => x.rps),
        ofRendered: Math.round((rps(r.stage) / (rps('rendered') || 1)) * 1000) / 1000,
        ofMinimal: Math.round((rps(r.stage) / (rps('minimal') || 1)) * 1000) / 1000,
        p99Ms: r.summary?.latency.p99 ?? 0,
        serverCpu: r.summary?.serverCpu ?? 0,
        loadgenCpu: r.summary?.loadgenCpu ?? 0,
        otherCpu: r.summary?.otherCpu ?? 0,
      })),
    }
    if (values.out) writeJsonResults(values.out, out)
    if (values.json) console.log(JSON.stringify(out, null, 2))
    else {
      console.log(
        `nginx template cost, GET /api/me/ over TLS, wrk -c${connections}, ${runs} × ${seconds} s interleaved, median; load average ${load0.map((n) => n.toFixed(2)).join(' / ')} before`,
      )
      for (const v of out.variants) {
        console.log(
          `${v.label.padEnd(56)} ${String(Math.round(v.rps)).padStart(7)} req/s  ×rendered ${v.ofRendered.toFixed(2)}  ×minimal ${v.ofMinimal.toFixed(2)}  runs ${v.runs.map(Math.round).join('/')}  other CPU ${Math.round(v.otherCpu)}%${v.status !== 'ok' ? `  ${v.status}: ${v.reason}` : ''}`,
        )
      }
    }
  } finally {
    for (const s of stacks.reverse()) await s.stop().catch(() => undefined)
    rmSync(work, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  console.error(`bench:nginx: ${(err as Error).message}`)
  process.exit(1)
})
