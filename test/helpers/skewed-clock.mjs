// Preload for a process under test (NODE_OPTIONS=--import=<this file>): the process plays a host
// whose wall clock is off by $RUNWAY_CLOCK_SKEW_MS (e.g. 3000: 3 s ahead). Date.now() and
// new Date() are shifted, so every wall-clock read in the process is (ours, fast-jwt's `iat`/`exp`,
// pino's timestamps); monotonic clocks (timers, performance.now, process.hrtime) are not, as on a
// real host whose NTP is off. Chosen over libfaketime (not in Debian's default install; it also
// shifts CLOCK_MONOTONIC unless told otherwise) and over changing the machine's clock (root, and it
// would skew every other process and test). The test checks that it took effect (a token's `iat`).
const skew = Number(process.env.RUNWAY_CLOCK_SKEW_MS ?? 0)
const RealDate = Date

class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + skew)
    else super(...args)
  }

  static now() {
    return RealDate.now() + skew
  }
}

globalThis.Date = SkewedDate
