// The app's pino logger: JSON in production (pm2 writes it to files), pino-pretty for the dev
// server. Secrets never reach a log line: Authorization and cookies are redacted, and request
// bodies (passwords, tokens) are not logged at all.
import { pino, stdSerializers, type Logger, type LoggerOptions } from 'pino'
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
  return stream ? pino(loggerOptions(config, false), stream) : pino(loggerOptions(config, pretty))
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
