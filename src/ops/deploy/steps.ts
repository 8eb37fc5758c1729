// The step runner under every deploy flow: each step of a host is timed, reported as it ends
// (✓/✗ with its detail) and recorded for the host's report; a failure carries its step's name.
// A stop signal (Ctrl-C, SIGTERM) lets the step in progress end and keeps new ones from starting,
// except cleanup steps (rolling back), which always run.
import type { Check } from './preflight.js'
import { reasonLine, type Target } from './target.js'

export interface StepRecord {
  name: string
  ms: number
  ok: boolean
  detail?: string
}

export interface Reporter {
  /** A step finished (or failed). */
  step(target: Target, s: StepRecord): void
  check(target: Target, c: Check): void
  info(text: string): void
}

export class StepError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message)
  }
}

/** A release failed after the switch and the previous one was put back; `live` is what `current` points to now. */
/** Set once a stop was asked for; every HostRun of a command shares one. */
export class StopSignal {
  signal: NodeJS.Signals | null = null
}

/**
 * Ctrl-C (or SIGTERM from CI) during a deploy does not kill it mid-step: the step in progress ends
 * (a terminal's Ctrl-C also reaches its child ssh/npm), no further step starts, a release already
 * switched to is rolled back, the lock is released and the log says "interrupted". A second
 * signal exits at once (the lock then stays, for --break-lock).
 */
export function stopCleanlyOnSignals(note: (text: string) => void): StopSignal {
  const stop = new StopSignal()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stop.signal) process.exit(130)
      stop.signal = signal
      note(`runway: ${signal}: stopping after the current step and leaving the target consistent (send it again to abort at once)`)
    })
  }
  return stop
}

export class HostRun {
  readonly steps: StepRecord[] = []
  constructor(
    readonly target: Target,
    readonly reporter: Reporter,
    readonly stop: StopSignal = new StopSignal(),
  ) {}

  /** `cleanup` steps (rolling back) still run after an interrupt; the others do not start. */
  async step<T>(name: string, fn: () => Promise<T>, detail?: (v: T) => string | undefined, o: { cleanup?: boolean } = {}): Promise<T> {
    const started = Date.now()
    const interrupted = () => this.stop.signal
    try {
      if (interrupted() && !o.cleanup) throw new Error(`interrupted by ${interrupted()}`)
      const value = await fn()
      const rec = { name, ms: Date.now() - started, ok: true, detail: detail?.(value) }
      this.steps.push(rec)
      this.reporter.step(this.target, rec)
      return value
    } catch (err) {
      const message = interrupted() && !o.cleanup ? `interrupted by ${interrupted()}` : (err as Error).message
      const rec = { name, ms: Date.now() - started, ok: false, detail: message }
      this.steps.push(rec)
      this.reporter.step(this.target, rec)
      throw err instanceof StepError && !interrupted() ? err : new StepError(name, message)
    }
  }

  /** Runs a script on the target; a non-zero exit becomes a StepError with its last output line. */
  async sh(script: string, timeoutMs = 120_000): Promise<string> {
    const r = await this.target.sh(script, { timeoutMs })
    if (r.code !== 0) throw new Error(reasonLine(r.stderr) || reasonLine(r.stdout) || `exit code ${r.code}`)
    return r.stdout
  }

  /** remote.js verbs print one JSON line; ok:false carries the reason. */
  async remote(script: string, timeoutMs: number): Promise<{ ok: boolean; detail: string; [k: string]: unknown }> {
    const r = await this.target.sh(script, { timeoutMs: timeoutMs + 30_000 })
    const line = r.stdout.trim().split('\n').pop() ?? ''
    try {
      return JSON.parse(line)
    } catch {
      return { ok: false, detail: reasonLine(r.stderr) || line || `exit code ${r.code}` }
    }
  }
}
