// The behaviour every Store implementation must show. Each implementation's test file calls
// storeBehaviour() with a factory for fresh, empty stores.
import type { Test } from 'tap'
import type { Store } from '../../../src/api/store/store.js'

export function storeBehaviour(t: Test, fresh: (t: Test) => Promise<Store>) {
  const now = () => Math.floor(Date.now() / 1000)
  /** Sessions in the revocation log after position `after`. */
  const revokedSince = async (store: Store, after: number) =>
    (await store.revocationsSince(after, { limit: 1000, notBefore: now() })).flatMap((e) => (e.sessionId === null ? [] : [e.sessionId]))

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
    t.same(
      (await store.listUsers()).map((u) => u.username),
      ['alice', 'bob'],
    )
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
    t.same(
      racing.filter((r) => r.result !== 'rotated'),
      [
        { result: 'blacklisted', familyRevoked: false },
        { result: 'blacklisted', familyRevoked: false },
      ],
    )
    const winner = ['r2a', 'r2b', 'r2c'][racing.findIndex((r) => r.result === 'rotated')]!
    t.notOk(await store.isRevoked({ jti: winner, sessionId: 's1' }), 'within the grace window the session lives')
    t.same(await revokedSince(store, 0), [], 'nothing in the revocation log yet')
    t.same(await rotate('r1', 'r3'), { result: 'blacklisted', familyRevoked: true }, 'reuse after the grace window')
    const logged = await store.revocationsSince(0, { limit: 10, notBefore: now() })
    t.match(logged, [{ sessionId: 's1', userId: u.id, expiresAt: exp }], 'the revocation is in the log')
    t.ok(await store.isRevoked({ jti: winner, sessionId: 's1' }), 'whole family revoked')
    t.same(await rotate(winner, 'r4'), { result: 'blacklisted', familyRevoked: false })
    t.same(await revokedSince(store, 0), ['s1'])
    t.same(await revokedSince(store, logged[0]!.seq), [], 'nothing after it')
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
    for (const [sid, user] of [
      ['a1', u.id],
      ['a2', u.id],
      ['b1', other.id],
    ] as const) {
      await store.createSession({ sessionId: sid, userId: user, refreshJti: `r-${sid}`, issuedAt: now(), expiresAt: now() + 60 })
    }
    await store.setPassword(u.id, 'new-hash')
    t.equal((await store.findUserById(u.id))!.passwordHash, 'new-hash')
    t.same((await revokedSince(store, 0)).sort(), ['a1', 'a2'])
    // The user-wide entry expires at the revocation's own second: a read one second later (a busy
    // machine) must still see it, as the revocation cache does (it reads with the access lifetime as slack).
    const log = await store.revocationsSince(0, { limit: 10, notBefore: now() - 60 })
    t.same(
      log.filter((e) => e.sessionId === null).map((e) => e.userId),
      [u.id],
      'and the user as a whole, for caches of users',
    )
    await store.setActive(other.id, false)
    t.equal((await store.findUserById(other.id))!.isActive, false)
    t.equal((await store.findAuthUser(other.id))!.isActive, false, 'the auth read sees the deactivation')
    t.ok(await store.isRevoked({ sessionId: 'b1' }))
  })

  t.test('deleting a user keeps its sessions revoked until they expire (no cascade)', async (t) => {
    const store = await fresh(t)
    const u = await store.createUser('alice', 'h')
    await store.createSession({ sessionId: 'd1', userId: u.id, refreshJti: 'rd1', issuedAt: now(), expiresAt: now() + 60 })
    await store.deleteUser(u.id)
    t.equal(await store.findAuthUser(u.id), null)
    t.same(await revokedSince(store, 0), ['d1'], 'every process hears of it: in the revocation log')
    t.ok(await store.isRevoked({ sessionId: 'd1' }), 'the session reads as revoked')
    t.ok(await store.isRevoked({ jti: 'rd1', sessionId: 'd1' }), 'the refresh token reads as revoked')
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

  t.test('the revocation log: incremental, in order, batches, expired entries skipped, positions asked for again', async (t) => {
    const store = await fresh(t)
    const u = await store.createUser('alice', 'h')
    for (let i = 0; i < 5; i++) {
      await store.createSession({ sessionId: `s${i}`, userId: u.id, refreshJti: `r${i}`, issuedAt: now(), expiresAt: now() + (i === 2 ? -5 : 600) })
      await store.blacklistRefresh(`r${i}`, now())
    }
    const all = await store.revocationsSince(0, { limit: 100, notBefore: now() })
    t.same(
      all.map((e) => e.sessionId),
      ['s0', 's1', 's3', 's4'],
      'in order; the expired one skipped',
    )
    t.ok(
      all.every((e, i) => i === 0 || e.seq > all[i - 1]!.seq),
      'positions increase',
    )
    const first = await store.revocationsSince(0, { limit: 2, notBefore: now() })
    t.same(
      first.map((e) => e.sessionId),
      ['s0', 's1'],
      'a batch',
    )
    const rest = await store.revocationsSince(first[1]!.seq, { limit: 2, notBefore: now() })
    t.same(
      rest.map((e) => e.sessionId),
      ['s3', 's4'],
      'the next batch starts after the last position read',
    )
    const again = await store.revocationsSince(all[3]!.seq, { limit: 10, notBefore: now(), also: [all[0]!.seq] })
    t.same(
      again.map((e) => e.sessionId),
      ['s0'],
      'a position asked for again',
    )
    t.same(await store.revocationsSince(all[3]!.seq, { limit: 10, notBefore: now() }), [], 'nothing new')
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
    // Real time: PostgreSQL keeps windows on its own clock (hosts' clocks may disagree).
    const store = await fresh(t)
    const near = (value: number, expected: number) => Math.abs(value - expected) < 250
    const t0 = Date.now()
    const a = await store.hit('k', 600, t0)
    t.equal(a.count, 1)
    t.ok(near(a.resetAt, t0 + 600), 'resets one window later')
    const b = await store.hit('k', 600, Date.now())
    t.equal(b.count, 2, 'counts within the window')
    t.ok(near(b.resetAt, a.resetAt), 'same window')
    t.equal((await store.hit('other', 600, Date.now())).count, 1, 'keys are separate')
    await new Promise((r) => setTimeout(r, 700))
    const t1 = Date.now()
    const c = await store.hit('k', 600, t1)
    t.equal(c.count, 1, 'a new window starts')
    t.ok(near(c.resetAt, t1 + 600))
  })

  t.test('rate-limit counters: flushRateLimits deletes ended windows only; flushExpired leaves counters alone', async (t) => {
    const store = await fresh(t)
    await store.hit('short', 300, Date.now())
    await store.hit('long', 600_000, Date.now())
    await new Promise((r) => setTimeout(r, 400))
    await store.flushExpired(now() + 3600)
    t.equal((await store.hit('long', 600_000, Date.now())).count, 2, 'flushExpired: counters untouched')
    await store.flushRateLimits(Date.now())
    t.equal((await store.hit('long', 600_000, Date.now())).count, 3, 'a running window stays')
    t.equal((await store.hit('short', 300, Date.now())).count, 1, 'an ended one starts over')
  })

  t.test('ping, migrate twice, close', async (t) => {
    const store = await fresh(t)
    await store.ping()
    await store.migrate()
    await store.close()
    await t.rejects(store.ping(), 'a closed store does not answer')
  })
}
