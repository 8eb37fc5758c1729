// Optional sign-up, POST /api/register/ (REGISTRATION_ENABLED=true): Django's field errors, the
// password rules, the shared per-IP login limit, equal timing for taken usernames, and absence
// (route and OpenAPI entry) when off.
import t from 'tap'
import { PasswordMessages } from '../../../src/api/auth/password-rules.js'
import { call, createUser, login, PASSWORD, startApp } from '../../helpers/app.js'

const ON = { REGISTRATION_ENABLED: 'true' }
const taken = { username: ['A user with that username already exists.'] }

t.test('sign up, then log in', async (t) => {
  const { url, store } = await startApp(t, ON)
  for (const path of ['/api/register/', '/api/register']) {
    const username = path.endsWith('/') ? 'carol' : 'dave'
    const r = await call(url, path, { json: { username, password: PASSWORD } })
    t.equal(r.status, 201, path)
    t.strictSame(r.body, { id: (await store.findUserByUsername(username))!.id, username })
    t.match(r.headers.get('content-type'), /^application\/json/)
  }
  t.ok((await login(url, 'carol')).access, 'the new user logs in')
  const form = await call(url, '/api/register/', { form: { username: 'erin', password: PASSWORD } })
  t.equal(form.status, 201, 'form-encoded too, like the token endpoints')
  t.equal((await store.findUserByUsername('carol'))!.isActive, true)
})

t.test("Django's field errors", async (t) => {
  const { url, store } = await startApp(t, ON)
  await createUser(store)
  const cases: [unknown, Record<string, string[]>][] = [
    [{}, { username: ['This field is required.'], password: ['This field is required.'] }],
    [{ username: '', password: PASSWORD }, { username: ['This field may not be blank.'] }],
    [{ username: 'a'.repeat(151), password: PASSWORD }, { username: ['Ensure this field has no more than 150 characters.'] }],
    [
      { username: 'bad name!', password: PASSWORD },
      {
        username: [
          'Enter a valid username. This value may contain only unaccented lowercase a-z and uppercase A-Z letters, numbers, and @/./+/-/_ characters.',
        ],
      },
    ],
    [{ username: 'frank', password: 'Password1' }, { password: [PasswordMessages.common] }],
    [{ username: 'frank', password: '1234' }, { password: [PasswordMessages.tooShort, PasswordMessages.common, PasswordMessages.numeric] }],
    [{ username: 'frankenstein', password: 'frankenstein9' }, { password: [PasswordMessages.similar] }],
    [{ username: 'alice', password: PASSWORD }, taken],
  ]
  for (const [json, expected] of cases) {
    const r = await call(url, '/api/register/', { json })
    t.equal(r.status, 400, JSON.stringify(json))
    t.strictSame(r.body, expected, JSON.stringify(json))
  }
  t.equal((await store.listUsers()).length, 1, 'nothing was created')
  const concurrent = await Promise.all(Array.from({ length: 4 }, () => call(url, '/api/register/', { json: { username: 'grace', password: PASSWORD } })))
  t.strictSame(concurrent.map((r) => r.status).sort(), [201, 400, 400, 400], 'one of four concurrent sign-ups for a name wins')
  for (const r of concurrent.filter((r) => r.status === 400)) t.strictSame(r.body, taken)
})

t.test('sign-ups share the per-IP login limit', async (t) => {
  const { url, store } = await startApp(t, { ...ON, LOGIN_RATE_LIMIT_IP: '3', LOGIN_RATE_LIMIT_USER: '0' })
  await createUser(store)
  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: 'wrong' } })).status, 401)
  t.equal((await call(url, '/api/register/', { json: { username: 'alice', password: PASSWORD } })).status, 400)
  t.equal((await call(url, '/api/register/', { json: { username: 'heidi', password: PASSWORD } })).status, 201)
  const r = await call(url, '/api/register/', { json: { username: 'ivan', password: PASSWORD } })
  t.equal(r.status, 429, 'the fourth attempt from this address, logins and sign-ups together')
  t.ok(Number(r.headers.get('retry-after')) >= 1)
  t.equal((await call(url, '/api/token/', { json: { username: 'alice', password: PASSWORD } })).status, 429, 'and logins are limited by the sign-ups')
  t.equal(await store.findUserByUsername('ivan'), null)
})

t.test('a taken username answers in the time a free one takes (the password is hashed anyway)', async (t) => {
  // The real cost here (the test apps hash cheaply): this is what an attacker would time.
  const { url, store } = await startApp(t, { ...ON, LOGIN_RATE_LIMIT_IP: '0', ARGON2_MEMORY_COST: '19456', ARGON2_TIME_COST: '2' })
  await createUser(store)
  const time = async (username: string, status: number) => {
    const start = process.hrtime.bigint()
    const r = await call(url, '/api/register/', { json: { username, password: 'a-long-enough-passphrase' } })
    t.equal(r.status, status, username)
    return Number(process.hrtime.bigint() - start) / 1e6
  }
  await time('alice', 400)
  await time('warm-up', 201)
  const takenMs: number[] = []
  const freeMs: number[] = []
  for (let i = 0; i < 9; i++) {
    takenMs.push(await time('alice', 400))
    freeMs.push(await time(`new-user-${i}`, 201))
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const ratio = median(takenMs) / median(freeMs)
  t.comment(`median sign-up: taken ${median(takenMs).toFixed(1)} ms, free ${median(freeMs).toFixed(1)} ms`)
  // Wide bounds for a busy shared machine; without the hash for taken names the ratio is ~0.01.
  t.ok(ratio > 0.5 && ratio < 2, `taken/free time ratio ${ratio.toFixed(2)} is close to 1`)
  t.ok(median(takenMs) > 10, 'a real password hash is computed for a taken name')
})

t.test('off by default: 404 and not in the OpenAPI document; in it when on', async (t) => {
  const off = await startApp(t)
  const r = await call(off.url, '/api/register/', { json: { username: 'judy', password: PASSWORD } })
  t.equal(r.status, 404)
  t.strictSame(r.body, { detail: 'Not found.' })
  t.notOk((await call(off.url, '/docs/json')).body.paths['/api/register/'])
  const on = await startApp(t, ON)
  const doc = (await call(on.url, '/docs/json')).body
  t.ok(doc.paths['/api/register/']?.post?.requestBody)
  t.ok(doc.paths['/api/register/']?.post?.responses?.['201'])
})
