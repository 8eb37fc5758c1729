// Loaded into every test process (tap's node-arg in package.json). When tap's runner kills a test
// file that ran out of time (SIGALRM, then SIGKILL half a second later), its teardowns never run,
// and what it started — pm2 daemons and workers, nginx, sshd, private PostgreSQL clusters — kept
// running and loaded the files after it. Here every process the test starts inherits
// RUNWAY_TEST_OWNER=<its pid>, and a detached watchdog kills whatever still carries that mark once
// the test process is gone, however it ended. (Processes started through the test sshd get the
// mark from its SetEnv: sshd gives sessions a clean environment.)
import { spawn } from 'node:child_process'

if (!process.env.RUNWAY_TEST_OWNER && process.platform === 'linux') {
  const owner = String(process.pid)
  process.env.RUNWAY_TEST_OWNER = owner
  const watchdog = `while kill -0 ${owner} 2>/dev/null; do sleep 1; done
for e in /proc/[0-9]*/environ; do
  p=\${e#/proc/}; p=\${p%/environ}
  grep -qzx 'RUNWAY_TEST_OWNER=${owner}' "$e" 2>/dev/null && kill -9 "$p" 2>/dev/null
done
exit 0`
  // Its own environment is not marked, so it never kills itself.
  spawn('sh', ['-c', watchdog], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }).unref()
}
