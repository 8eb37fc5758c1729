// Password hashing. New hashes are argon2id (OWASP's first choice), stored in the PHC string format
// (`$argon2id$v=19$m=…,p=…,t=…$salt$hash`), so each hash carries its own cost and older ones
// still verify after the settings change. Hashes made before argon2id — `scrypt$N$r$p$salt$hash`
// — keep verifying, and a successful login replaces any hash that is not argon2id at the current
// parameters (Django's must_update), so a user base moves to the current cost as it logs in.
//
// Both run in libuv's thread pool, never on the event loop. A PasswordHasher also bounds how many
// run at once and how long a login may wait for its turn: a login storm gets quick 503s instead of
// a queue that holds connections until clients give up.
import argon2 from 'argon2'
import { scrypt as scryptCb, randomBytes, timingSafeEqual, type ScryptOptions } from 'node:crypto'

export interface Argon2Params {
  /** Memory per hash in KiB (argon2's m). */
  memoryKiB: number
  /** Passes over the memory (argon2's t). */
  iterations: number
  /** Lanes (argon2's p). */
  parallelism: number
}

/** OWASP password storage cheat sheet: argon2id, m=19 MiB, t=2, p=1. */
export const OWASP_ARGON2: Argon2Params = { memoryKiB: 19456, iterations: 2, parallelism: 1 }

/**
 * OWASP's equally strong argon2id settings (p=1), trading memory for passes. Production refuses
 * parameters that are not at least one of these in both memory and passes.
 */
export const OWASP_ARGON2_MINIMUMS: ReadonlyArray<Pick<Argon2Params, 'memoryKiB' | 'iterations'>> = [
  { memoryKiB: 47104, iterations: 1 },
  { memoryKiB: 19456, iterations: 2 },
  { memoryKiB: 12288, iterations: 3 },
  { memoryKiB: 9216, iterations: 4 },
  { memoryKiB: 7168, iterations: 5 },
]

export function meetsOwaspMinimum(p: Argon2Params): boolean {
  return OWASP_ARGON2_MINIMUMS.some((min) => p.memoryKiB >= min.memoryKiB && p.iterations >= min.iterations)
}

/** A password as hashed: NFKC, so the same password typed on another keyboard or OS matches. */
const normalized = (password: string) => password.normalize('NFKC')

/** One argon2id hash at `params`. (The salt is made here: argon2's own would take a thread-pool trip.) */
export function hashPassword(password: string, params: Argon2Params = OWASP_ARGON2): Promise<string> {
  const { memoryKiB: memoryCost, iterations: timeCost, parallelism } = params
  return argon2.hash(normalized(password), { type: argon2.argon2id, memoryCost, timeCost, parallelism, salt: randomBytes(16) })
}

// Legacy scrypt hashes (runway before argon2id): verified, never made by the API any more.
export interface ScryptParams {
  N: number
  r: number
  p: number
}
/** The cost runway's scrypt hashes were made with. */
export const OWASP_SCRYPT: ScryptParams = { N: 2 ** 14, r: 8, p: 5 }
const SCRYPT_KEY_LEN = 32

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }
  return new Promise((resolve, reject) => scryptCb(normalized(password), salt, SCRYPT_KEY_LEN, options, (err, key) => (err ? reject(err) : resolve(key))))
}

/** A legacy `scrypt$…` hash, as runway stored them before argon2id (tests and migrations make them). */
export async function hashPasswordScrypt(password: string, params: ScryptParams = OWASP_SCRYPT): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password, salt, params)
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** Checks a password against a stored hash of either kind; a malformed or unknown hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (stored.startsWith('$argon2')) {
    try {
      return await argon2.verify(stored, normalized(password))
    } catch {
      return false // not a valid PHC string
    }
  }
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, N, r, p, salt, hash] = parts as [string, string, string, string, string, string]
  const expected = Buffer.from(hash, 'base64url')
  try {
    const key = await scrypt(password, Buffer.from(salt, 'base64url'), { N: Number(N), r: Number(r), p: Number(p) })
    return key.length === expected.length && timingSafeEqual(key, expected)
  } catch {
    return false // parameters scrypt refuses
  }
}

/** True when `stored` is not argon2id at exactly `params`: the next successful login replaces it. */
export function needsRehash(stored: string, params: Argon2Params): boolean {
  if (!stored.startsWith('$argon2id$')) return true
  try {
    return argon2.needsRehash(stored, { memoryCost: params.memoryKiB, timeCost: params.iterations, parallelism: params.parallelism })
  } catch {
    return true
  }
}

/**
 * A hash of a random secret at `params`, for unknown users to verify against: the same work as a
 * real user's check, so response time does not tell which usernames exist. Built, not computed
 * (verifying costs the same whatever the stored hash bytes are), so start-up pays nothing for it.
 */
export function dummyHash(params: Argon2Params): string {
  const b64 = (n: number) => randomBytes(n).toString('base64').replace(/=+$/, '')
  return `$argon2id$v=19$m=${params.memoryKiB},p=${params.parallelism},t=${params.iterations}$${b64(16)}$${b64(32)}`
}

export interface HasherOptions {
  params: Argon2Params
  /** Hashes run at once (each holds a libuv thread and `memoryKiB` of memory). */
  concurrency: number
  /** Hashes that may wait for a slot; one more is refused with `overloaded()`. */
  queueLimit: number
  /**
   * The longest a hash may wait for its slot, in ms (0 = no bound). One whose expected wait (its
   * place in the queue ÷ concurrency × the recent time per hash) is longer is refused with
   * `overloaded()` at once; the time per hash is measured as hashes run, so the bound follows how
   * busy the machine really is. One that has waited this long anyway (the machine got busier
   * after it was queued) leaves the queue with `overloaded()` then: a refusal the client still
   * hears, instead of an answer after it gave up.
   */
  maxWaitMs: number
  /** The error a refused hash throws (the API's 503 + Retry-After). */
  overloaded: () => Error
}

interface Waiter {
  resolve: () => void
  timer: NodeJS.Timeout | undefined
}

/** Weight of the newest hash in the running average of time per hash. */
const EWMA_WEIGHT = 0.2

/**
 * The process's password hasher: argon2id at the configured parameters, at most `concurrency`
 * hashes at once, at most `queueLimit` waiting and none waiting longer than `maxWaitMs`.
 * Counts what it did (tests read `stats`).
 */
export class PasswordHasher {
  readonly params: Argon2Params
  private readonly dummy: string
  private running = 0
  private readonly waiting: Waiter[] = []
  /** Recent wall time per hash in ms (an exponentially weighted average); 0 until one has run. */
  private msPerHash = 0
  readonly stats = { hashed: 0, verified: 0, refused: 0 }

  constructor(private readonly o: HasherOptions) {
    this.params = o.params
    this.dummy = dummyHash(o.params)
  }

  /** Hashes running and waiting right now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length }
  }

  hash(password: string): Promise<string> {
    return this.gate(() => hashPassword(password, this.params)).then((h) => (this.stats.hashed++, h))
  }

  /** Verifies against `stored`, or against the dummy hash when there is no user (same cost). */
  verify(password: string, stored: string | undefined): Promise<boolean> {
    return this.gate(() => verifyPassword(password, stored ?? this.dummy)).then((ok) => (this.stats.verified++, ok && stored !== undefined))
  }

  needsRehash(stored: string): boolean {
    return needsRehash(stored, this.params)
  }

  /** How long a hash queued now would wait for its slot, in ms (0 until a hash has been timed). */
  get expectedWaitMs(): number {
    return Math.ceil((this.waiting.length + 1) / this.o.concurrency) * this.msPerHash
  }

  /** Runs `work` when a slot is free; refuses at once when the queue is full or too slow. */
  private async gate<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.o.concurrency) {
      if (this.waiting.length >= this.o.queueLimit || (this.o.maxWaitMs > 0 && this.expectedWaitMs > this.o.maxWaitMs)) {
        this.stats.refused++
        throw this.o.overloaded()
      }
      await this.waitForSlot()
    } else this.running++
    const started = performance.now()
    try {
      return await work()
    } finally {
      const ms = performance.now() - started
      this.msPerHash = this.msPerHash === 0 ? ms : this.msPerHash + EWMA_WEIGHT * (ms - this.msPerHash)
      // Hand the slot straight to the next waiter (running stays the same), or free it.
      const next = this.waiting.shift()
      if (next) {
        clearTimeout(next.timer)
        next.resolve()
      } else this.running--
    }
  }

  /** Resolves when a finishing hash hands this one its slot; rejects once it has waited maxWaitMs. */
  private waitForSlot(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, timer: undefined }
      if (this.o.maxWaitMs > 0) {
        waiter.timer = setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1)
          this.stats.refused++
          reject(this.o.overloaded())
        }, this.o.maxWaitMs)
      }
      this.waiting.push(waiter)
    })
  }
}
