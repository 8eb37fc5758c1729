// Django's default password validators, as runway applies them: wording, order, the common list
// (loaded lazily), and the three places that use them (CLI, password change; sign-up in
// test/register.test.ts).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commonPasswords, PasswordMessages, passwordProblems } from '../../../src/api/auth/password-rules.js'
import { call, createUser, login, PASSWORD, startApp } from '../../helpers/app.js'

const { similar, tooShort, common, numeric } = PasswordMessages
const listLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('@zxcvbn-ts/language-common'))

// First in this file (its own process): nothing has asked for the list yet.
t.test('the common-password list is loaded on the first check, not when a worker starts', async (t) => {
  // No load shedding: a busy machine must not turn this login into a 503.
  const { url, store } = await startApp(t, { REGISTRATION_ENABLED: 'true', MAX_EVENT_LOOP_DELAY: '0' })
  await createUser(store)
  await login(url)
  t.equal(listLoaded(), false, 'an app that started and served a login holds no list')
  await passwordProblems('x', '')
  t.equal(listLoaded(), true)
})

t.test("Django's messages", async (t) => {
  t.equal(tooShort, 'This password is too short. It must contain at least 8 characters.')
  t.equal(common, 'This password is too common.')
  t.equal(numeric, 'This password is entirely numeric.')
  t.equal(similar, 'The password is too similar to the username.')
})

t.test('common passwords, compared case-insensitively', async (t) => {
  t.ok((await commonPasswords()).size > 40_000, 'the maintained list, not a hand-typed one')
  // The six the issue found accepted, plus case and whitespace variants.
  for (const pw of ['password', 'qwerty123', 'iloveyou1', 'Password1', 'abcdefgh', 'password1234', 'PASSWORD', ' iloveyou ', 'zyxwvuts', 'aaaaaaaaaa']) {
    t.ok((await passwordProblems(pw, 'alice')).includes(common), pw)
  }
  for (const pw of ['correct-horse-battery', 'Tr0ub4dor&3x', 'abcdefgh-my-own']) {
    t.strictSame(await passwordProblems(pw, 'alice'), [], pw)
  }
})

t.test("length, numeric, similarity; all problems in Django's order", async (t) => {
  t.strictSame(await passwordProblems('1234', 'bob'), [tooShort, common, numeric])
  t.strictSame(await passwordProblems('98127364519', 'bob'), [numeric])
  t.strictSame(await passwordProblems('x7!kq', 'bob'), [tooShort])
  t.strictSame(await passwordProblems('Leonardo2', 'leonardo'), [similar])
  t.strictSame(await passwordProblems('davinci-leonardo', 'leonardo.davinci'), [similar], 'parts and the whole')
  t.strictSame(await passwordProblems('a long passphrase nobody guesses', 'al'), [], 'a short username inside a long password is fine (Django ≥ 4.2)')
  t.strictSame(await passwordProblems('müller-straße-7', ''), [], 'no username, no similarity check')
})

t.test('the password-change endpoint answers the field errors', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const { access } = await login(url)
  for (const [pw, expected] of [
    ['Password1', [common]],
    ['1234', [tooShort, common, numeric]],
    ['alice1234', [similar]],
  ] as const) {
    const r = await call(url, '/api/password/change/', { token: access, json: { old_password: PASSWORD, new_password: pw } })
    t.equal(r.status, 400, pw)
    t.strictSame(r.body, { new_password: expected }, pw)
  }
  const ok = await call(url, '/api/password/change/', { token: access, json: { old_password: PASSWORD, new_password: 'a-new-long-password' } })
  t.equal(ok.status, 200)
})

t.test('runway user create / set-password refuse weak passwords unless --allow-weak', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runway-rules-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const bin = join(import.meta.dirname, '..', '..', '..', 'bin', 'runway.js')
  const run = (args: string[], input: string) => {
    const r = spawnSync(process.execPath, [bin, ...args], {
      cwd: dataDir,
      input,
      encoding: 'utf8',
      env: { ...process.env, DATA_DIR: dataDir },
      timeout: 60_000,
    })
    return { code: r.status, err: r.stderr, out: r.stdout }
  }
  let r = run(['user', 'create', '--username', 'carol'], 'qwerty123\n')
  t.equal(r.code, 1)
  t.equal(r.err, 'runway user: This password is too common. Choose another, or pass --allow-weak.\n')
  r = run(['user', 'create', '--username', 'carol', '--allow-weak'], 'qwerty123\n')
  t.equal(r.code, 0, r.err)
  r = run(['user', 'set-password', '--username', 'carol'], 'carol2024\n')
  t.equal(r.code, 1)
  t.match(r.err, /too similar to the username/)
  r = run(['user', 'set-password', '--username', 'carol'], 'an-uncommon-passphrase\n')
  t.equal(r.code, 0, r.err)
  r = run(['user', '--help'], '')
  t.match(r.out, /--allow-weak/)
})
