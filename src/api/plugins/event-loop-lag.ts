// Event-loop lag, sampled once a second, for load shedding. This is what @fastify/under-pressure
// measured, without the rest of its sampling: it also called process.memoryUsage(), which opens
// /proc/self/statm, so with every fd taken (idle keep-alive sockets up to `ulimit -n`) it threw
// EMFILE from a timer and the process exited ("fatal error, closing"). A histogram needs no fd.
import { monitorEventLoopDelay } from 'node:perf_hooks'

const RESOLUTION_MS = 10
const SAMPLE_MS = 1000

export interface LagMonitor {
  /**
   * The longest the event loop was held during the last second, in ms (the histogram's resolution
   * taken off). The longest, not the mean under-pressure uses: one 1.5 s stall among a second's
   * hundred 10 ms ticks averages to 17–38 ms (measured), so a mean never sees the stall that made
   * every queued request wait 1.5 s.
   */
  lagMs(): number
  /** Drops what was measured so far (start-up), as if sampling began now. */
  forget(): void
  stop(): void
}

export function startLagMonitor(): LagMonitor {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()
  let lag = 0
  const timer = setInterval(() => {
    lag = Math.max(0, histogram.max / 1e6 - RESOLUTION_MS)
    histogram.reset()
  }, SAMPLE_MS)
  timer.unref()
  return {
    lagMs: () => lag,
    forget: () => {
      lag = 0
      histogram.reset()
    },
    stop: () => {
      clearInterval(timer)
      histogram.disable()
    },
  }
}
