// Makes the process's password hasher available as app.passwords: argon2id at the configured
// parameters, with its bounds on hashes running and waiting (beyond it: 503 + Retry-After).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import { PasswordHasher } from '../auth/passwords.js'
import { errors } from '../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    passwords: PasswordHasher
  }
}

export default fp(
  async function passwords(app: FastifyInstance, opts: { config: Config }) {
    const { argon2, threadPool, ...bounds } = opts.config.passwordHash
    // Said once at start: the pool's size decides memory (each pool thread that ever hashed keeps
    // its block in glibc's arena), and the ecosystem sets it per worker.
    app.log.info(
      { argon2id: argon2, concurrency: bounds.concurrency, queueLimit: bounds.queueLimit, threadPool },
      `password hashing: argon2id m=${argon2.memoryKiB} KiB t=${argon2.iterations} p=${argon2.parallelism}, ${bounds.concurrency} at once on a libuv pool of ${threadPool}`,
    )
    const overloaded = () => {
      app.shed('password_hash')
      return errors.overloaded()
    }
    app.decorate('passwords', new PasswordHasher({ params: argon2, ...bounds, overloaded }))
  },
  // app.shed (load shedding's counter and warning) comes from the metrics plugin: without it the
  // first refusal would throw, so the app refuses to build instead.
  { name: 'runway-passwords', dependencies: ['runway-metrics'] },
)
