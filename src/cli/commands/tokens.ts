import { CliError, parseFlags, print, type Command } from '../command.js'
import { withStore } from '../context.js'

const usage = `Usage: runway tokens flush-expired

Deletes expired refresh tokens and sessions (simplejwt's flushexpiredtokens), and rate-limit
counters whose window ended. Run it daily from cron or a systemd timer; a revoked token stays
refused until it would have expired anyway.`

export const tokensCommand: Command = {
  name: 'tokens',
  summary: 'flush expired refresh tokens',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {}, true)
    if (values.help) return (print(usage), 0)
    if (positionals[0] !== 'flush-expired') throw new CliError('unknown action: the only action is `flush-expired`', 2)
    const n = await withStore(async (store) => {
      const flushed = await store.flushExpired(Math.floor(Date.now() / 1000))
      await store.flushRateLimits(Date.now())
      return flushed
    })
    print(`flushed ${n} expired refresh token${n === 1 ? '' : 's'}`)
    return 0
  },
}
