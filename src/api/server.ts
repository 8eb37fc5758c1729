// Process entry: config → buildApp → listen → tell pm2 "ready" → close gracefully on a signal.
// `node dist/api/server.js` is one production process (what each pm2 worker runs); `npm run dev` runs
// this same file through tsx watch, with pretty logs: the runserver of runway.
import closeWithGrace from 'close-with-grace'
import { createRequire } from 'node:module'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, readEnv, type Config } from './config.js'
import type { Server as NetServer } from 'node:net'
import { connectionDrainer } from './drain.js'
import { listenOnUnixSocket } from './unix-listener.js'
import { redactSecrets } from './redact.js'
import { StoreNeedsOperatorError } from './store/store.js'
import type { MetricsListener } from './metrics/cluster.js'

function devBanner(url: string): string {
  return [
    '',
    `Starting development server at ${url}/`,
    'Quit the server with CONTROL-C.',
    '',
    'WARNING: This is a development server. Do not use it in a production setting.',
    'It is one process on one core, restarts on file changes and logs for humans.',
    'For production: `npm run build && npm start` (compiled code under a pm2 cluster), behind nginx.',
    '',
  ].join('\n')
}

function canPrettyPrint(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
    return true
  } catch {
    return false
  }
}

async function main(): Promise<void> {
  let config: Config
  try {
    config = loadConfig(readEnv())
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`runway: configuration error: ${err.message}\n`)
      process.exit(78) // EX_CONFIG: pm2 and systemd logs show why, and restarts will not help
    }
    throw err
  }
  const dev = config.env === 'development'
  const app = await buildApp(config, { prettyLogs: dev && canPrettyPrint(), waitForStore: true })

  // SIGINT/SIGTERM (and pm2's "shutdown" message): stop accepting, answer what arrives on open
  // keep-alive connections with `Connection: close` for up to a second, close the idle ones,
  // let in-flight requests finish, then close the app and its store. Past SHUTDOWN_GRACE the
  // process exits anyway (code 1); pm2's kill_timeout is longer, so pm2 never has to SIGKILL.
  const doors: NetServer[] = [] // the UNIX_SOCKET listener, once open
  const drain = connectionDrainer(app, Math.min(1000, config.shutdownGraceMs / 4), doors)
  let metrics: MetricsListener | undefined
  const closeListeners = closeWithGrace({ delay: config.shutdownGraceMs, logger: app.log }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'fatal error, closing')
    else app.log.info({ signal }, 'shutting down gracefully')
    await drain()
    await app.close()
    await metrics?.close()
  })
  process.on('message', (msg) => {
    if (msg === 'shutdown') process.emit('SIGTERM')
  })
  app.addHook('onClose', async () => closeListeners.uninstall())

  const address = await app.listen({ host: config.host, port: config.port })
  if (config.unixSocket) {
    doors.push(await listenOnUnixSocket(app.server, config.unixSocket))
    app.log.info({ socket: config.unixSocket }, 'also listening on a Unix socket')
  }
  if (config.metrics) {
    // Loaded only here: a worker without METRICS_PORT never loads prom-client (~90 modules).
    const [{ appRegistry }, { startMetricsListener }] = await Promise.all([import('./metrics/registry.js'), import('./metrics/cluster.js')])
    metrics = await startMetricsListener({ ...config.metrics, worker: config.workerId, registry: appRegistry(app, config.workerId), log: app.log })
    app.log.info({ metrics: metrics.address }, 'metrics for the whole cluster at GET /metrics')
  }
  if (dev) process.stdout.write(devBanner(address))
  // pm2's wait_ready: only now, listening with the store migrated and reachable, is this worker
  // given traffic and the previous one stopped.
  process.send?.('ready')
}

/** The StoreNeedsOperatorError behind a start failure (Fastify may wrap a plugin's error). */
function needsOperator(err: unknown): StoreNeedsOperatorError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof StoreNeedsOperatorError) return e
  }
  return undefined
}

main().catch((err: unknown) => {
  const refused = needsOperator(err)
  if (refused) {
    // Restarting cannot fix a corrupt or read-only file: 78 is in pm2's stop_exit_codes, so this
    // stops here with the reason instead of crash-looping.
    process.stderr.write(`runway: cannot start: ${refused.message}; fix: ${refused.fix}\n`)
    process.exit(78)
  }
  process.stderr.write(`runway: failed to start: ${redactSecrets(err instanceof Error ? err.message : String(err))}\n`)
  process.exit(1)
})
