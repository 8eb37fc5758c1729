// CPU and memory of the server under test, of the load generator and of everything else, read
// from /proc while a run goes on. On a small machine the load generator shares cores with the
// server, so a report that does not say who used the CPU cannot be read honestly.
import { readFileSync } from 'node:fs'

/** Linux reports process CPU times in clock ticks; 100 per second on every mainstream kernel. */
const TICKS_PER_SEC = 100
const PAGE_BYTES = 4096

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

/** utime + stime (ticks) and RSS (bytes) of one process; null once it is gone. */
export function processStat(pid: number): { ticks: number; rssBytes: number } | null {
  const text = readText(`/proc/${pid}/stat`)
  if (!text) return null
  // The command name (field 2) may contain spaces; fields after the closing paren are fixed.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(rest[11]) + Number(rest[12])
  const rssBytes = Number(rest[21]) * PAGE_BYTES
  return { ticks, rssBytes }
}

/** Busy and total ticks of the whole machine (all cores), from the first line of /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const line = (readText('/proc/stat') ?? '').split('\n')[0] ?? ''
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) - (v[8] ?? 0) - (v[9] ?? 0) // guest time is already in user
  const idle = (v[3] ?? 0) + (v[4] ?? 0)
  return { busy: total - idle, total }
}

export interface CpuWindow {
  /** CPU% summed over the server's processes (100 = one core). */
  serverCpu: number
  serverRssMb: number
  loadgenCpu: number
  /** CPU% of everything that is neither the server nor the load generator. */
  otherCpu: number
}

/**
 * Measures from start() to stop(): process CPU from tick deltas (a process that exits mid-run
 * keeps the ticks it had at its last sample), memory as the sum of RSS at the last sample.
 */
export class CpuSampler {
  private first = new Map<number, number>()
  private last = new Map<number, number>()
  private rss = new Map<number, number>()
  private timer?: NodeJS.Timeout
  private t0 = 0
  private m0 = { busy: 0, total: 0 }

  constructor(
    /** Every process of the server (RunningStack.pids() lists the whole tree). */
    private readonly serverPids: readonly number[],
    private readonly loadgenPids: () => readonly number[],
    private readonly intervalMs = 500,
  ) {}

  start(): void {
    this.t0 = performance.now()
    this.m0 = machineTicks()
    this.sample(true)
    this.timer = setInterval(() => this.sample(false), this.intervalMs)
    this.timer.unref()
  }

  private sample(initial: boolean): void {
    for (const pid of [...this.serverPids, ...this.loadgenPids()]) {
      const st = processStat(pid)
      if (!st) continue
      if (initial || !this.first.has(pid)) this.first.set(pid, st.ticks)
      this.last.set(pid, st.ticks)
      this.rss.set(pid, st.rssBytes)
    }
  }

  stop(): CpuWindow {
    clearInterval(this.timer)
    this.sample(false)
    const seconds = Math.max(0.001, (performance.now() - this.t0) / 1000)
    const m1 = machineTicks()
    const cpuOf = (pids: readonly number[]) =>
      (pids.reduce((sum, pid) => sum + ((this.last.get(pid) ?? 0) - (this.first.get(pid) ?? 0)), 0) / TICKS_PER_SEC / seconds) * 100
    const serverCpu = cpuOf(this.serverPids)
    const loadgenCpu = cpuOf(this.loadgenPids())
    const machineCpu = ((m1.busy - this.m0.busy) / TICKS_PER_SEC / seconds) * 100
    const rss = this.serverPids.reduce((sum, pid) => sum + (this.rss.get(pid) ?? 0), 0)
    const r1 = (n: number) => Math.round(n * 10) / 10
    return {
      serverCpu: r1(serverCpu),
      serverRssMb: r1(rss / 1024 / 1024),
      loadgenCpu: r1(loadgenCpu),
      otherCpu: r1(Math.max(0, machineCpu - serverCpu - loadgenCpu)),
    }
  }
}

/**
 * Waits until the server is idle again (below `idlePct` CPU over a short window), at most maxMs.
 * A login-bound run leaves up to one password hash per connection queued when the load stops;
 * without this the next run would pay for the previous one's backlog.
 */
export async function waitForIdle(pids: readonly number[], o: { idlePct?: number; windowMs?: number; maxMs?: number } = {}): Promise<number> {
  const { idlePct = 15, windowMs = 250, maxMs = 15_000 } = o
  const t0 = performance.now()
  const ticks = () => pids.reduce((sum, pid) => sum + (processStat(pid)?.ticks ?? 0), 0)
  while (performance.now() - t0 < maxMs) {
    const before = ticks()
    const start = performance.now()
    await new Promise((r) => setTimeout(r, windowMs))
    const pct = ((ticks() - before) / TICKS_PER_SEC / ((performance.now() - start) / 1000)) * 100
    if (pct < idlePct) break
  }
  return performance.now() - t0
}
