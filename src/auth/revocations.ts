// Which login sessions are revoked, known to every process without a store query per request.
// Each process keeps the set in memory and polls a version counter (one indexed read) every
// REVOCATION_POLL_INTERVAL; only when it changed does it reload the set. A logout on one pm2
// worker therefore reaches every worker within one interval (250 ms by default).
import type { Store } from '../store/store.js'

export class RevocationCache {
  private revoked = new Map<string, number>()
  private version = -1
  private timer?: NodeJS.Timeout
  private chain: Promise<void> = Promise.resolve()
  private readonly changeListeners: (() => void)[] = []

  constructor(
    private readonly store: Store,
    private readonly pollMs: number,
    /** Tokens outlive their session's last refresh by at most this (the access lifetime). */
    private readonly slackSeconds: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  async start(): Promise<void> {
    await this.sync()
    this.timer = setInterval(() => void this.sync().catch(this.onError), this.pollMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** Called each time this process learns that the revocation version moved (anywhere). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener)
  }

  /** How many revoked sessions are known (those that could still hold unexpired tokens). */
  get size(): number {
    return this.revoked.size
  }

  isRevoked(sessionId: string): boolean {
    return this.revoked.has(sessionId)
  }

  /** Reloads if the store's version moved; call after a local revocation to see it at once. */
  sync(): Promise<void> {
    // Loads run one after another, and each caller waits for one that began after its call.
    const next = this.chain.then(() => this.load())
    this.chain = next.catch(() => {})
    return next
  }

  private async load(): Promise<void> {
    const version = await this.store.revocationVersion()
    if (version === this.version) return
    const now = Math.floor(Date.now() / 1000)
    const sessions = await this.store.revokedSessions(now - this.slackSeconds)
    this.revoked = new Map(sessions.map((s) => [s.id, s.expiresAt]))
    this.version = version
    for (const listener of this.changeListeners) listener()
  }
}
