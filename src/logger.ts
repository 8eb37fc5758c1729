// pino options: JSON in production (pm2 writes it to files), pino-pretty for the dev server.
// Secrets never reach a log line: Authorization and cookies are redacted, and request bodies
// (passwords, tokens) are not logged at all.
import type { LoggerOptions } from 'pino'
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

export function loggerOptions(config: Config, pretty: boolean): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { pid: process.pid, worker: config.workerId },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,worker' } } }
      : {}),
  }
}
