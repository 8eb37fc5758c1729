// The app's pino logger: JSON in production (pm2 writes it to files), pino-pretty for the dev
// server. Secrets never reach a log line: Authorization and cookies are redacted, and request
// bodies (passwords, tokens) are not logged at all.
import { pino, stdSerializers, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import type { Config } from './config.js'
import { redactSecrets, urlPassword } from './redact.js'

export const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.old_password',
  '*.new_password',
  '*.refresh',
  '*.access',
  '*.token',
  '*.databaseUrl',
  '*.connectionString',
  '*.signingKey',
  '*.privateKey',
]

export function createLogger(config: Config, pretty: boolean, stream?: NodeJS.WritableStream): Logger {
  if (stream) return pino(loggerOptions(config, false), stream)
  // pm2's cluster mode replaces process.stdout.write (the worker appends to the log file itself
  // and sends each line to the daemon): pino then writes through it, and so must we.
  if (pretty || stdoutReplaced()) return pino(loggerOptions(config, pretty))
  const log: Logger = pino(
    loggerOptions(config, false),
    stdoutDestination((droppedLogLines) => log.warn({ droppedLogLines }, 'log lines dropped: stdout was not being read')),
  )
  return log
}

const stdoutReplaced = () => process.stdout.write !== (process.stdout.constructor as { prototype: NodeJS.WriteStream }).prototype.write

/** Log bytes held while stdout cannot take them: ~5,000 lines; past it, lines are dropped. */
const LOG_BUFFER_BYTES = 1024 * 1024
/** How long the last lines may wait for a blocked stdout when the process exits. */
const EXIT_FLUSH_MS = 500

let giveUpAt = Infinity
const startExitClock = () => {
  giveUpAt = Date.now() + EXIT_FLUSH_MS
}

/**
 * Standard output that logging can never stall. Whoever started the process (a supervisor, systemd,
 * a container runtime) reads it through a pipe; when the reader stops, pino's default destination
 * buffers without bound and, at exit, retries the write forever: the worker answers nothing after
 * SIGTERM and never exits. Here the buffer is bounded (lines past it are dropped and counted, a
 * warning says how many once stdout is read again) and the last flush at exit gives up after
 * EXIT_FLUSH_MS. Serving requests matters more than a log line nobody is reading.
 */
function stdoutDestination(reportDrops: (dropped: number) => void): DestinationStream {
  // Once per process, before pino's own exit handler (registered as a destination is made),
  // which flushes.
  if (!process.listeners('exit').includes(startExitClock)) process.prependListener('exit', startExitClock)
  const stream = pino.destination({
    dest: 1,
    sync: false,
    maxLength: LOG_BUFFER_BYTES,
    // Asynchronous writes retry on a timer without blocking; only the synchronous flush at exit
    // sleeps between attempts, and it must stop.
    retryEAGAIN: () => Date.now() < giveUpAt,
  })
  const flushSync = stream.flushSync.bind(stream)
  stream.flushSync = () => {
    try {
      flushSync()
    } catch {
      // stdout still blocked at exit: the remaining lines are lost, the exit is not
    }
  }
  let dropped = 0
  let reportedAt = 0
  stream.on('drop', () => dropped++)
  // A write went through: stdout is read again. At most one warning a second, so a reader that is
  // only slow does not get a warning after every write. On the next tick: 'write' is emitted
  // before the written bytes leave the buffer, which may still be full.
  stream.on('write', () => {
    if (dropped === 0 || Date.now() - reportedAt < 1000) return
    reportedAt = Date.now()
    const n = dropped
    dropped = 0
    process.nextTick(reportDrops, n)
  })
  return stream
}

function loggerOptions(config: Config, pretty: boolean): LoggerOptions {
  // This process's own secrets, scrubbed wherever they would show up in a message or an error
  // (a driver echoing its connection string, say), on top of secret-looking patterns.
  const known = [config.jwt.signingKey, urlPassword(config.databaseUrl)].filter((s): s is string => !!s)
  const scrub = (text: string) => redactSecrets(text, known)
  return {
    level: config.logLevel,
    redact: { paths: REDACT, censor: '[redacted]' },
    serializers: {
      err: (err: Error) => {
        const out = stdSerializers.err(err)
        out.message = scrub(out.message)
        if (out.stack) out.stack = scrub(out.stack)
        return out
      },
    },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? scrub(a) : a)) as Parameters<typeof method>)
      },
    },
    base: { pid: process.pid, worker: config.workerId },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,worker' } } } : {}),
  }
}
