// Progress on stderr while a load test runs: stage, scenario, phase, time left and live req/s.
// On a terminal one line is redrawn in place; in a log (CI, pipes) a line is written every few
// seconds, so the output stays readable without a terminal.

export interface ProgressState {
  stage: string
  scenario: string
  phase: string
  /** Seconds left in the current phase. */
  left?: number
  rps?: number
}

export class Progress {
  private lastWrite = 0
  private drawn = false
  constructor(
    private readonly out: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean } = process.stderr,
    private readonly quiet = false,
  ) {}

  update(s: ProgressState, force = false): void {
    if (this.quiet) return
    const parts = [`${s.stage}`, s.scenario, s.phase]
    if (s.left !== undefined) parts.push(`${Math.max(0, Math.ceil(s.left))} s left`)
    if (s.rps !== undefined) parts.push(`${Math.round(s.rps).toLocaleString('en-US')} req/s`)
    const line = parts.filter(Boolean).join(' · ')
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line}`)
      this.drawn = true
    } else if (force || Date.now() - this.lastWrite >= 5000) {
      this.out.write(`${line}\n`)
      this.lastWrite = Date.now()
    }
  }

  /** A line that stays (stage started, warning, ...). */
  note(text: string): void {
    if (this.quiet) return
    this.clear()
    this.out.write(`${text}\n`)
  }

  clear(): void {
    if (this.drawn) this.out.write('\r\x1b[2K')
    this.drawn = false
  }
}
