// The order a change goes through a fleet (deploy or rollback, the same rules): canary hosts
// first, then batches of hosts changed at once, a pause between batches, and on the first
// failure either a stop (the hosts already changed keep the new release) or a fleet rollback
// (every host this run changed goes back to what it ran before, in the same batches, newest first).
// What a change is (deploy a release, switch back) is the caller's; this file only orders them.
import type { HostReport } from './deploy.js'

export type OnFailure = 'rollback-fleet' | 'stop'

export interface RollingPlan {
  /** Hosts changed (and gated, and load-tested when asked) before any other; 0 = none. */
  canary: number
  /** Hosts changed at once after the canaries: a count, or a percentage of the fleet (rounded up). */
  batch: number | { percent: number }
  onFailure: OnFailure
  /** Wait between batches (after a batch passed, before the next starts). */
  pauseMs: number
}

export const ONE_AT_A_TIME: RollingPlan = { canary: 0, batch: 1, onFailure: 'rollback-fleet', pauseMs: 0 }

/** Indices of the hosts in each batch, in order: the canary batch first when there is one. */
export function batches(n: number, plan: Pick<RollingPlan, 'canary' | 'batch'>): number[][] {
  const size = typeof plan.batch === 'number' ? plan.batch : Math.ceil((n * plan.batch.percent) / 100)
  const step = Math.max(1, size)
  const out: number[][] = []
  let i = 0
  const take = (k: number) => {
    const end = Math.min(n, i + k)
    out.push(Array.from({ length: end - i }, (_, j) => i + j))
    i = end
  }
  if (plan.canary > 0 && n > 0) take(plan.canary)
  while (i < n) take(step)
  return out
}

export const describePlan = (p: RollingPlan) =>
  `${p.canary ? `canary ${p.canary}, then ` : ''}${typeof p.batch === 'number' ? `${p.batch} at a time` : `${p.batch.percent}% at a time`}${p.pauseMs ? `, ${p.pauseMs / 1000}s between batches` : ''}, on failure ${p.onFailure}`

export interface FleetHost {
  target: string
  /** What `current` pointed to before this run. */
  before: string | null
  /** What it points to after this run (as far as this run knows). */
  live: string | null
  /** updated: on the new release; unchanged: not attempted; failed: its own change failed (the
   *  reason says whether its previous release is live again); reverted: changed, then put back by
   *  the fleet rollback. */
  outcome: 'updated' | 'unchanged' | 'failed' | 'reverted' | 'revert failed'
  reason?: string
}

export interface FleetSummary {
  plan: string
  batches: string[][]
  /** The first failure, which stopped the rollout. */
  failure?: { target: string; stage: 'change' | 'canary' | 'interrupted'; reason: string }
  /** What the fleet rollback did (on-failure rollback-fleet, when a host had been changed). */
  rollback?: { ok: boolean; ms: number; hosts: HostReport[] }
  hosts: FleetHost[]
}

export interface RollOutInput {
  targets: string[]
  /** What each host ran before. */
  before: Array<string | null>
  plan: RollingPlan
  info(text: string): void
  stopped(): string | null
  change(i: number): Promise<HostReport>
  /** After the canary batch passed its gates: null, or why the canaries are not good enough. */
  canary?(indices: number[]): Promise<string | null>
  /** Puts a changed host back to what it ran (report.from). */
  revert(i: number, report: HostReport): Promise<HostReport>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A change that threw (a held lock, an unreachable host) is a failed host, not a crashed rollout. */
async function safely(target: string, action: HostReport['action'], live: string | null, fn: () => Promise<HostReport>): Promise<HostReport> {
  const started = Date.now()
  try {
    return await fn()
  } catch (err) {
    return {
      target,
      action,
      release: '',
      from: live,
      result: 'failed',
      reason: (err as Error).message,
      live,
      checks: [],
      steps: [],
      durationMs: Date.now() - started,
    }
  }
}

export async function rollOut(o: RollOutInput): Promise<{ ok: boolean; reports: HostReport[]; skipped: string[]; summary: FleetSummary }> {
  const groups = batches(o.targets.length, o.plan)
  const reports = new Map<number, HostReport>()
  const summary: FleetSummary = { plan: describePlan(o.plan), batches: groups.map((g) => g.map((i) => o.targets[i]!)), hosts: [] }
  let done = 0
  for (const [b, group] of groups.entries()) {
    if (b > 0 && o.plan.pauseMs) {
      o.info(`  pausing ${o.plan.pauseMs / 1000}s before batch ${b + 1} of ${groups.length}`)
      await sleep(o.plan.pauseMs)
    }
    const signal = o.stopped()
    if (signal) {
      summary.failure = { target: o.targets[group[0]!]!, stage: 'interrupted', reason: `interrupted by ${signal} before batch ${b + 1}` }
      break
    }
    if (groups.length > 1)
      o.info(`batch ${b + 1} of ${groups.length}${b === 0 && o.plan.canary ? ' (canary)' : ''}: ${group.map((i) => o.targets[i]).join(', ')}`)
    const results = await Promise.all(group.map((i) => safely(o.targets[i]!, 'deploy', o.before[i] ?? null, () => o.change(i))))
    results.forEach((r, j) => {
      reports.set(group[j]!, r)
    })
    done = b + 1
    const bad = results.find((r) => r.result !== 'ok' && r.result !== 'planned')
    if (bad) {
      // Interrupted: the host in progress rolled itself back; no fleet rollback is started (a second
      // signal could cut it half-way), the summary says which hosts run what.
      summary.failure = { target: bad.target, stage: o.stopped() ? 'interrupted' : 'change', reason: bad.reason ?? bad.result }
      break
    }
    if (b === 0 && o.plan.canary && o.canary) {
      const why = await o.canary(group)
      if (why) {
        summary.failure = { target: group.map((i) => o.targets[i]).join(', '), stage: 'canary', reason: why }
        break
      }
    }
  }

  const reverted = new Map<number, HostReport>()
  const changed = [...reports].filter(([, r]) => r.result === 'ok').map(([i]) => i)
  if (summary.failure && summary.failure.stage !== 'interrupted' && o.plan.onFailure === 'rollback-fleet' && changed.length) {
    const started = Date.now()
    o.info(
      `fleet rollback: ${summary.failure.target} failed, so the ${changed.length} host${changed.length > 1 ? 's' : ''} this run changed go${changed.length > 1 ? '' : 'es'} back: ${changed.map((i) => `${o.targets[i]} to ${reports.get(i)!.from ?? 'nothing'}`).join(', ')}`,
    )
    // The same batch size, newest first: capacity is protected on the way back too.
    const back = [...changed].reverse()
    const size = batches(back.length, { canary: 0, batch: o.plan.batch })[0]?.length ?? 1
    for (let k = 0; k < back.length; k += size) {
      const group = back.slice(k, k + size)
      const results = await Promise.all(group.map((i) => safely(o.targets[i]!, 'rollback', reports.get(i)!.live, () => o.revert(i, reports.get(i)!))))
      results.forEach((r, j) => {
        reverted.set(group[j]!, r)
      })
    }
    const all = [...reverted.values()]
    summary.rollback = { ok: all.every((r) => r.result === 'ok'), ms: Date.now() - started, hosts: all }
  }

  summary.hosts = o.targets.map((target, i) => {
    const r = reports.get(i)
    const before = o.before[i] ?? null
    if (!r) return { target, before, live: before, outcome: 'unchanged' }
    const back = reverted.get(i)
    if (back)
      return back.result === 'ok'
        ? { target, before, live: back.live, outcome: 'reverted' }
        : { target, before, live: back.live, outcome: 'revert failed', reason: back.reason }
    if (r.result === 'ok') return { target, before, live: r.live, outcome: 'updated' }
    return { target, before, live: r.live, outcome: 'failed', reason: r.reason }
  })
  const skipped = groups
    .slice(done)
    .flat()
    .map((i) => o.targets[i]!)
  return { ok: !summary.failure, reports: [...reports.keys()].sort((a, b) => a - b).map((i) => reports.get(i)!), skipped, summary }
}
