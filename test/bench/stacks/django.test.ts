// The stack `npm run bench:django` measures runway against: the DRF + simplejwt project in
// loadtest/django/ really starts under gunicorn, answers the same endpoints with the same shapes
// as runway (so the comparison compares like with like), hashes with Django's default hasher, and
// is gone after stop(). Needs Debian's Django packages: under CI=true a missing one fails.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requestJson } from '../../../src/bench/loadtest/http.js'
import { djangoVersions, startDjango } from '../../../src/bench/stacks/django.js'
import { isAlive } from '../../../src/lib/process.js'

let versions: ReturnType<typeof djangoVersions> | undefined
try {
  versions = djangoVersions()
} catch (err) {
  if (process.env.CI === 'true') t.fail(`${(err as Error).message} (.ci/run installs them)`)
  else t.test('the Django comparison stack', { skip: `${(err as Error).message}; under CI=true this fails` }, async () => {})
}

if (versions) {
  t.test('Django + simplejwt under gunicorn: the same endpoints and shapes as runway, then gone', async (t) => {
    t.match(versions, { django: /^\d+\.\d+/, djangorestframework: /^\d+\.\d+/, simplejwt: /^\d+\.\d+/, gunicorn: /^\d+\.\d+/ })
    const dir = mkdtempSync(join(tmpdir(), 'runway-django-test-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const app = await startDjango({ dir, workers: 1, users: 2 })
    const pids = await app.pids()
    t.teardown(() => app.stop())
    t.same(app.usernames, ['bench-0', 'bench-1'])
    t.match(app.hasher, /^pbkdf2_sha256\$\d+$/, "Django's default hasher")

    const login = await requestJson(`${app.url}/api/token/`, { method: 'POST', json: { username: 'bench-1', password: app.password } })
    t.equal(login.status, 200)
    t.match(login.body, { access: /^ey/, refresh: /^ey/ }, 'a token pair, as runway answers')
    const wrong = await requestJson(`${app.url}/api/token/`, { method: 'POST', json: { username: 'bench-1', password: 'not-it' } })
    t.equal(wrong.status, 401)
    const me = await requestJson(`${app.url}/api/me/`, { headers: { authorization: `Bearer ${(login.body as { access: string }).access}` } })
    t.equal(me.status, 200)
    t.match(me.body, { id: Number, username: 'bench-1' }, 'the user, as runway answers GET /api/me/')
    t.equal((await requestJson(`${app.url}/api/me/`)).status, 401, 'no token: 401')

    await app.stop()
    t.ok(
      pids.every((pid) => !isAlive(pid)),
      `gunicorn's arbiter and workers are gone (${pids.join(', ')})`,
    )
  })
}
