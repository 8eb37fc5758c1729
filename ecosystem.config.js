// pm2 process file for runway's production runtime.
//
//   npm run build && npm start        # = pm2 start ecosystem.config.js --env production
//   npm run reload                    # zero-downtime: workers replaced one at a time
//   npm run start:foreground          # pm2-runtime: stays in the foreground (containers, systemd)
//
// CommonJS on purpose: pm2 require()s this file (the package root is CommonJS, src/ and dist/
// are ESM). Only pm2 settings live here; the API's own settings (PORT, DATA_DIR, JWT_*, ...) come
// from the environment or .env and are validated by src/api/config.ts in each worker.

const { readFileSync } = require('node:fs')
const { availableParallelism } = require('node:os')
const { join } = require('node:path')

// WEB_CONCURRENCY, RUNWAY_LOG_DIR and RUNWAY_MAX_MEMORY may also be set in this app's .env (the real
// environment wins, as for every other setting); `runway start` validates them before pm2 runs.
const dotenv = (() => {
  try {
    return require('dotenv').parse(readFileSync(join(__dirname, '.env')))
  } catch {
    return {}
  }
})()
const setting = (name) => process.env[name] || dotenv[name] || undefined

/** WEB_CONCURRENCY (Heroku's name, also used by gunicorn) = worker count; unset = one per CPU. */
function workerCount() {
  const raw = setting('WEB_CONCURRENCY')
  if (raw === undefined || raw.trim() === '') return availableParallelism()
  if (!/^[1-9][0-9]*$/.test(raw.trim())) {
    throw new Error(`WEB_CONCURRENCY=${JSON.stringify(raw)} is invalid: expected a whole number of workers, 1 or more (unset = one per CPU)`)
  }
  return Number(raw)
}

// The app's own grace period (SHUTDOWN_GRACE, default 10 s) is how long a worker lets in-flight
// requests finish after SIGINT before it exits by itself. pm2 must wait longer than that before
// it sends SIGKILL, or graceful shutdown is cut short.
const SHUTDOWN_GRACE_MS = 10_000

// Logs: the API writes pino JSON lines to stdout/stderr; pm2 appends them to these files as they
// are (no log_type: 'json', which would wrap each JSON line in another JSON object). Point
// RUNWAY_LOG_DIR at a directory that survives releases (deploy's shared/logs), and rotate it with
// logrotate (copytruncate) or pm2-logrotate.
const logDir = setting('RUNWAY_LOG_DIR') || join(__dirname, 'logs')

module.exports = {
  apps: [
    {
      name: 'runway',
      script: join(__dirname, 'dist', 'api', 'server.js'), // compiled by `npm run build`; never tsx here
      cwd: __dirname, // .env and the default ./data are read relative to this

      // Cluster mode: pm2's master process owns the listening socket and hands each new connection
      // to the next worker (round robin). Every worker is a full API process on the same port.
      exec_mode: 'cluster',
      instances: workerCount(),
      // Each worker gets its index (0..n-1) in this variable; src/api/config.ts reads the same name
      // for the x-runway-worker header and the `worker` field of every log line.
      instance_var: 'NODE_APP_INSTANCE',
      // Lean workers: no pm2 metrics agent inside each worker (@pm2/io, ~10 MB each; runway exposes
      // its own health endpoints), and a young generation capped at 2 MB semi-spaces (V8's default
      // grows to 16 MB under load: ~30 MB more resident memory per worker). The cap is a trade: the
      // app allocates ~10 KB per request, so it collects garbage more often and loses up to about a
      // tenth of its throughput (`runway compare --ceiling` runs one process and the twins with these flags
      // too, so the cost shows there); 4 MB took a worker past 100 MB in a login storm.
      pmx: false,
      node_args: ['--max-semi-space-size=2'],

      // Readiness: a worker counts as started (and, during `pm2 reload`, its predecessor is only
      // stopped) once it sends process.send('ready'), which src/api/server.ts does after it listens
      // with its store migrated and reachable. listen_timeout is how long pm2 waits for that
      // before carrying on anyway.
      wait_ready: true,
      listen_timeout: 15_000,
      // Stopping: pm2 sends SIGINT, the worker stops accepting, finishes in-flight requests,
      // closes idle keep-alive sockets and the store, and exits (src/api/server.ts). pm2 sends SIGKILL
      // after kill_timeout, which is longer than SHUTDOWN_GRACE so that never cuts a request.
      kill_timeout: SHUTDOWN_GRACE_MS + 5_000,

      // Crash handling: restart a dead worker after 100 ms, backing off (x1.5 per crash, up to
      // 15 s) while it keeps crashing; the delay resets once a worker stays up for 30 s. A worker
      // that exits 78 (configuration error) is not restarted: restarting cannot fix a bad setting.
      autorestart: true,
      exp_backoff_restart_delay: 100,
      stop_exit_codes: [78],
      // A worker whose resident memory grows past this is replaced, gracefully, like a reload (a
      // leak guard, not a limit: a worker idles near 66 MB and peaked under 100 MB under load (npm run probe:rss)).
      max_memory_restart: setting('RUNWAY_MAX_MEMORY') || '512M',

      out_file: join(logDir, 'runway.out.log'),
      error_file: join(logDir, 'runway.err.log'),
      // One file for all workers instead of one per instance; each pino line carries `pid` and
      // `worker`, so lines stay attributable.
      merge_logs: true,
      time: false, // pino already timestamps every line

      // Every other setting comes from the environment pm2 is started with, or .env. After changing
      // it, `pm2 reload ecosystem.config.js --env production --update-env` hands it to the workers.
      env_production: {
        NODE_ENV: 'production',
        // libuv's thread pool runs the password hashes (argon2id, ARGON2_MEMORY_COST each). glibc
        // keeps a freed hash's memory in the arena of the thread that ran it, so each pool thread
        // that ever hashed holds ~19 MiB for good: 4 threads (libuv's default) add ~76 MB to every
        // worker after a login burst. The pool is sized to the hashes a worker runs at once (its
        // share of the CPUs, as PASSWORD_HASH_CONCURRENCY's auto does); set UV_THREADPOOL_SIZE to
        // override. (The pool also serves async fs and DNS lookups: they wait at most one hash.)
        UV_THREADPOOL_SIZE: setting('UV_THREADPOOL_SIZE') || String(Math.max(1, Math.floor(availableParallelism() / workerCount()))),
      },
    },
  ],
}
