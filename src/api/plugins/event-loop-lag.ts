// Event-loop lag, sampled once a second, for load shedding. This is what @fastify/under-pressure
// measured, without the rest of its sampling: it also called process.memoryUsage(), which opens
// /proc/self/statm, so with every fd taken (idle keep-alive sockets up to `ulimit -n`) it threw
// EMFILE from a timer and the process exited ("fatal error, closing"). A histogram needs no fd.
import { monitorEventLoopDelay } from 'node:perf_hooks'

const RESOLUTION_MS = 10
const SAMPLE_MS = 1000

export interface LagMonitor {
  /** Mean lag of the last sample, in ms (the histogram's resolution taken off, as under-pressure). */
  lagMs(): number
  stop(): void
}

export function startLagMonitor(): LagMonitor {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()
  let lag = 0
  const timer = setInterval(() => {
    lag = Math.max(0, histogram.mean / 1e6 - RESOLUTION_MS)
    histogram.reset()
  }, SAMPLE_MS)
  timer.unref()
  return {
    lagMs: () => lag,
    stop: () => {
      clearInterval(timer)
      histogram.disable()
    },
  }
}
