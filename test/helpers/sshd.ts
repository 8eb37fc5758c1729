// A test-owned sshd: Debian's sshd on a free loopback port with its own host key, a generated
// client key, its own authorized_keys and a strict known_hosts, reached by the system ssh/rsync
// exactly as an operator's would be. Stopped by PID at teardown.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort, startService } from '../../src/lib/process.js'

export const SSHD = '/usr/sbin/sshd'
export const haveSshd = () => existsSync(SSHD) && spawnSync('ssh', ['-V']).status === 0

export interface TestSshd {
  dir: string
  /** user@127.0.0.1:PORT */
  host: string
  /** --host HOST --ssh-config FILE */
  flags: string[]
  log(): string
}

export async function startSshd(t: Test): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'runway-sshd-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'runway-test', '-f', file])
  keygen(join(dir, 'host_key'))
  keygen(join(dir, 'client_key'))
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')))
  const sshPort = await freePort()
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${sshPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'Subsystem sftp internal-sftp',
      // What a session starts carries the test's mark, so test/helpers/reaper.mjs can find it.
      ...(process.env.RUNWAY_TEST_OWNER ? [`SetEnv RUNWAY_TEST_OWNER=${process.env.RUNWAY_TEST_OWNER}`] : []),
      '',
    ].join('\n'),
  )
  mkdirSync('/run/sshd', { recursive: true })
  const sshd = startService({ name: 'sshd', command: SSHD, args: ['-D', '-e', '-f', join(dir, 'sshd_config')], logFile: join(dir, 'sshd.log') })
  t.teardown(() => sshd.stop(2000))
  const hostKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${sshPort} ${hostKey}\n`)
  writeFileSync(
    join(dir, 'ssh_config'),
    [`Host *`, `  IdentityFile ${dir}/client_key`, '  IdentitiesOnly yes', `  UserKnownHostsFile ${dir}/known_hosts`, '  StrictHostKeyChecking yes', ''].join(
      '\n',
    ),
  )
  const user = userInfo().username
  const deadline = Date.now() + 15_000
  let up = false
  while (!up && Date.now() < deadline) {
    up =
      spawnSync('ssh', ['-F', join(dir, 'ssh_config'), '-p', String(sshPort), '-o', 'BatchMode=yes', `${user}@127.0.0.1`, 'true'], { timeout: 5000 }).status ===
      0
    if (!up) await new Promise((r) => setTimeout(r, 200))
  }
  if (!up) throw new Error(`sshd did not accept the test key: ${readFileSync(join(dir, 'sshd.log'), 'utf8').slice(-500)}`)
  const host = `${user}@127.0.0.1:${sshPort}`
  return { dir, host, flags: ['--host', host, '--ssh-config', join(dir, 'ssh_config')], log: () => readFileSync(join(dir, 'sshd.log'), 'utf8') }
}
