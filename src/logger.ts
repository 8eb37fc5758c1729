// The app's pino logger: JSON in production (pm2 writes it to files), pino-pretty for the dev
// server. Secrets never reach a log line: Authorization and cookies are redacted, and request
// bodies (passwords, tokens) are not logged at all.
import { pino, type Logger, type LoggerOptions } from 'pino'
import type { Config } from './config.js'

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
]

export function createLogger(config: Config, pretty: boolean, stream?: NodeJS.WritableStream): Logger {
  return stream ? pino(loggerOptions(config, false), stream) : pino(loggerOptions(config, pretty))
}

function loggerOptions(config: Config, pretty: boolean): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { pid: process.pid, worker: config.workerId },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,worker' } } }
      : {}),
  }
}
