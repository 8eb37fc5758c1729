// The fleet preflight over SSH: two --host entries (the test-owned sshd reached as 127.0.0.1 and as
// localhost; one filesystem, so one shared/.env) through the real `runway deploy` CLI. The key
// fingerprints are compared across hosts, and the PostgreSQL probe runs on the target with the URL
// fed on stdin through ssh: an unreachable DATABASE_URL is refused without its password.
import t from 'tap'
import { appendFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../../src/lib/process.js'
import { fakeArtifact, makeTarget, runway, snapshot } from '../helpers/deploy.js'
import { haveSshd, SSHD, startSshd } from '../helpers/sshd.js'

const PASSWORD = 'ssh-fleet-Pa55word'

if (!haveSshd()) {
  if (process.env.CI === 'true') t.fail(`${SSHD} or ssh is missing (CI=true): apt-get install -y openssh-server openssh-client rsync`)
  else t.plan(0, `${SSHD} or ssh is not installed`)
} else {
  const sshd = await startSshd(t)
  const port = sshd.host.split(':').pop()!
  // The same sshd under a second name: known_hosts gets the key for it too.
  const hostKey = readFileSync(join(sshd.dir, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
  appendFileSync(join(sshd.dir, 'known_hosts'), `[localhost]:${port} ${hostKey}\n`)
  const second = sshd.host.replace('127.0.0.1', 'localhost')
  const flags = [...sshd.flags, '--host', second]

  t.test('two hosts, one key, one database: the fleet checks pass', async (t) => {
    const pgPort = await freePort()
    const { createServer } = await import('node:net')
    const listener = createServer((s) => s.destroy()).listen(pgPort, '127.0.0.1') // accepts TCP: reachable
    t.teardown(() => listener.close())
    const root = makeTarget(t, { env: { DATABASE_URL: `postgres://runway:${PASSWORD}@127.0.0.1:${pgPort}/runway` } })
    const r = await runway(['deploy', ...flags, '--path', root, '--artifact', fakeArtifact(t), '--dry-run'], { timeoutMs: 120_000 })
    t.match(r.err, /✓ fleet keys: one signing key on 2 hosts \(sha256:[0-9a-f]{12}\)/)
    t.match(r.err, new RegExp(`✓ fleet database: one database on 2 hosts \\(postgres://runway@127\\.0\\.0\\.1:${pgPort}/runway\\)`))
    t.match(r.err, /! database: PostgreSQL .* accepts connections; credentials and schema are checked by the migrate step/)
    t.notOk((r.out + r.err).includes(PASSWORD), 'the password is never printed')
  })

  t.test('an unreachable DATABASE_URL over ssh: refused, the URL without its password', async (t) => {
    const pgPort = await freePort() // nothing listens there
    const root = makeTarget(t, { env: { DATABASE_URL: `postgres://runway:${PASSWORD}@127.0.0.1:${pgPort}/runway` } })
    const before = snapshot(root)
    const r = await runway(['deploy', ...flags, '--path', root, '--artifact', fakeArtifact(t)], { timeoutMs: 120_000 })
    t.equal(r.code, 1)
    t.match(
      r.err,
      new RegExp(
        `\\nrunway deploy: deploy failed on ${sshd.host.replace(/\./g, '\\.')}:.*: preflight: 1 problem: database: PostgreSQL postgres://runway@127\\.0\\.0\\.1:${pgPort}/runway unreachable from the target: ECONNREFUSED`,
      ),
    )
    t.notOk((r.out + r.err).includes(PASSWORD), 'the password is never printed')
    t.same(snapshot(root), before, 'the target was not touched')
    t.match(sshd.log(), /Accepted publickey for /, 'it went through our sshd')
  })
}
