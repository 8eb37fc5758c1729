// The behaviour every Store implementation must show. Each implementation's test file calls
// storeBehaviour() with a factory for fresh, empty stores.
import type { Test } from 'tap'
import type { Store } from '../../src/store/store.js'

export function storeBehaviour(t: Test, fresh: (t: Test) => Promise<Store>) {
  const now = () => Math.floor(Date.now() / 1000)

  t.test('users', async (t) => {
    const store = await fresh(t)
    const alice = await store.createUser('alice', 'hash1')
    t.match(alice, { username: 'alice', passwordHash: 'hash1', isActive: true, lastLogin: null })
    await t.rejects(store.createUser('alice', 'x'), { name: 'DuplicateUserError' })
    t.same(await store.findUserByUsername('alice'), alice)
    t.same(await store.findUserById(alice.id), alice)
    t.strictSame(await store.findAuthUser(alice.id), { id: alice.id, username: 'alice', isActive: true }, 'no hash on the auth path')
    t.equal(await store.findAuthUser(alice.id + 1000), null)
    t.equal(await store.findUserByUsername('nobody'), null)
    await store.recordLogin(alice.id, 1234)
    t.equal((await store.findUserById(alice.id))!.lastLogin, 1234)
    await store.createUser('bob', 'hash2')
    t.same((await store.listUsers()).map((u) => u.username), ['alice', 'bob'])
    await store.deleteUser(alice.id)
    t.equal(await store.findUserById(alice.id), null)
    t.equal(await store.findAuthUser(alice.id), null, 'a deleted user no longer authenticates')
  })

  t.test('rotation is atomic, reuse revokes the family, the grace window does not', async (t) => {
    const store = await fresh(t)
    const u = await store.createUser('alice', 'h')
    const exp = now() + 3600
    await store.createSession({ sessionId: 's1', userId: u.id, refreshJti: 'r1', issuedAt: now(), expiresAt: exp })
    const rotate = (jti: string, next: string, graceSeconds = 0) =>
      store.rotateRefresh({ jti, now: now(), graceSeconds, blacklistOld: true, next: { jti: next, expiresAt: exp } })
    const racing = await Promise.all([rotate('r1', 'r2a', 60), rotate('r1', 'r2b', 60), rotate('r1', 'r2c', 60)])
    t.equal(racing.filter((r) => r.result === 'rotated').length, 1, 'one winner')
    t.same(racing.filter((r) => r.result !== 'rotated'), [
      { result: 'blacklisted', familyRevoked: false },
      { result: 'blacklisted', familyRevoked: false },
    ])
    const winner = ['r2a', 'r2b', 'r2c'][racing.findIndex((r) => r.result === 'rotated')]!
    t.notOk(await store.isRevoked({ jti: winner, sessionId: 's1' }), 'within the grace window the session lives')
    const v0 = await store.revocationVersion()
    t.same(await rotate('r1', 'r3'), { result: 'blacklisted', familyRevoked: true }, 'reuse after the grace window')
    t.ok((await store.revocationVersion()) > v0, 'revocation version moved')
    t.ok(await store.isRevoked({ jti: winner, sessionId: 's1' }), 'whole family revoked')
    t.same(await rotate(winner, 'r4'), { result: 'blacklisted', familyRevoked: false })
    t.same((await store.revokedSessions(now())).map((s) => s.id), ['s1'])
    t.same(await rotate('never-issued', 'x'), { result: 'unknown' })
  })

  t.test('logout blacklists the token and revokes its session once', async (t) => {
    const store = await fresh(t)
    const u = await store.createUser('alice', 'h')
    await store.createSession({ sessionId: 's1', userId: u.id, refreshJti: 'r1', issuedAt: now(), expiresAt: now() + 60 })
    await store.createSession({ sessionId: 's2', userId: u.id, refreshJti: 'q1', issuedAt: now(), expiresAt: now() + 60 })
    t.same(await store.blacklistRefresh('r1', now()), { result: 'rotated' })
    t.same(await store.blacklistRefresh('r1', now()), { result: 'blacklisted', familyRevoked: false })
    t.same(await store.blacklistRefresh('zzz', now()), { result: 'unknown' })
    t.ok(await store.isRevoked({ sessionId: 's1' }))
    t.notOk(await store.isRevoked({ jti: 'q1', sessionId: 's2' }))
  })

  t.test('password change and deactivation revoke every session of the user', async (t) => {
    const store = await fresh(t)
    const u = await store.createUser('alice', 'h')
    const other = await store.createUser('bob', 'h')
    for (const [sid, user] of [['a1', u.id], ['a2', u.id], ['b1', other.id]] as const) {
      await store.createSession({ sessionId: sid, userId: user, refreshJti: `r-${sid}`, issuedAt: now(), expiresAt: now() + 60 })
    }
    await store.setPassword(u.id, 'new-hash')
    t.equal((await store.findUserById(u.id))!.passwordHash, 'new-hash')
    t.same((await store.revokedSessions(now())).map((s) => s.id).sort(), ['a1', 'a2'])
    await store.setActive(other.id, false)
    t.equal((await store.findUserById(other.id))!.isActive, false)
    t.equal((await store.findAuthUser(other.id))!.isActive, false, 'the auth read sees the deactivation')
    t.ok(await store.isRevoked({ sessionId: 'b1' }))
  })

  t.test('deleting a user keeps its sessions revoked until they expire (no cascade)', async (t) => {
    const store = await fresh(t)
    const u = await store.createUser('alice', 'h')
    await store.createSession({ sessionId: 'd1', userId: u.id, refreshJti: 'rd1', issuedAt: now(), expiresAt: now() + 60 })
    const before = await store.revocationVersion()
    await store.deleteUser(u.id)
    t.equal(await store.findAuthUser(u.id), null)
    t.ok((await store.revocationVersion()) > before, 'every process hears of it')
    t.ok(await store.isRevoked({ sessionId: 'd1' }), 'the session reads as revoked')
    t.ok(await store.isRevoked({ jti: 'rd1', sessionId: 'd1' }), 'the refresh token reads as revoked')
    t.same((await store.revokedSessions(now())).map((s) => s.id), ['d1'], 'in the revocation set')
    t.match(await store.blacklistRefresh('rd1', now()), { result: 'blacklisted' })
    t.match(await store.rotateRefresh({ jti: 'rd1', now: now(), graceSeconds: 0, blacklistOld: true }), { result: 'blacklisted' })
    const again = await store.createUser('alice', 'h2')
    t.not(again.id, u.id, 'a new user with the same name gets a new id, not the revoked sessions')
    t.equal(await store.flushExpired(now() + 61), 1, 'flushed once expired')
    t.notOk(await store.isRevoked({ sessionId: 'd1' }))
  })

  t.test('a hash upgrade on login keeps the sessions and never overwrites a changed hash', async (t) => {
    const store = await fresh(t)
    const u = await store.createUser('alice', 'old-hash')
    await store.createSession({ sessionId: 'u1', userId: u.id, refreshJti: 'r-u1', issuedAt: now(), expiresAt: now() + 60 })
    t.equal(await store.upgradePasswordHash(u.id, 'old-hash', 'upgraded'), true)
    t.equal((await store.findUserById(u.id))!.passwordHash, 'upgraded')
    t.notOk(await store.isRevoked({ sessionId: 'u1' }), 'sessions stay')
    await store.setPassword(u.id, 'changed-hash')
    t.equal(await store.upgradePasswordHash(u.id, 'upgraded', 'stale-upgrade'), false, 'the hash changed meanwhile')
    t.equal((await store.findUserById(u.id))!.passwordHash, 'changed-hash', 'the password change wins')
  })

  t.test('flushExpired removes only what expired', async (t) => {
    const store = await fresh(t)
    const u = await store.createUser('alice', 'h')
    await store.createSession({ sessionId: 'old', userId: u.id, refreshJti: 'r-old', issuedAt: now() - 100, expiresAt: now() - 10 })
    await store.createSession({ sessionId: 'new', userId: u.id, refreshJti: 'r-new', issuedAt: now(), expiresAt: now() + 100 })
    t.equal(await store.flushExpired(now()), 1)
    t.same(await store.rotateRefresh({ jti: 'r-old', now: now(), graceSeconds: 0, blacklistOld: true }), { result: 'unknown' })
    t.same(await store.rotateRefresh({ jti: 'r-new', now: now(), graceSeconds: 0, blacklistOld: false }), { result: 'rotated' })
  })

  t.test('rate-limit counters: fixed windows', async (t) => {
    const store = await fresh(t)
    const t0 = Date.now()
    t.same(await store.hit('k', 1000, t0), { count: 1, resetAt: t0 + 1000 })
    t.same(await store.hit('k', 1000, t0 + 10), { count: 2, resetAt: t0 + 1000 })
    t.same(await store.hit('other', 1000, t0 + 10), { count: 1, resetAt: t0 + 1010 })
    t.same(await store.hit('k', 1000, t0 + 1000), { count: 1, resetAt: t0 + 2000 }, 'a new window starts')
  })

  t.test('ping, migrate twice, close', async (t) => {
    const store = await fresh(t)
    await store.ping()
    await store.migrate()
    await store.close()
    await t.rejects(store.ping(), 'a closed store does not answer')
  })
}
