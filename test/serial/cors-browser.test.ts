// CORS from a real browser: headless Chromium loads a page from one local origin and logs in to
// the API (another origin) with fetch, then reads /api/me/; the same page served from a second
// origin, not listed in CORS_ALLOWED_ORIGINS, is blocked by the browser itself.
import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { createUser, PASSWORD, startApp } from '../helpers/app.js'

const CHROMIUM = '/usr/bin/chromium'

/** A static page server on a free port: its origin is http://127.0.0.1:<port>. */
async function pageServer(t: Test): Promise<string> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><title>spa</title><p>single-page app</p>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

interface Outcome {
  login?: { status: number; keys: string[] }
  me?: { status: number; body: unknown }
  error?: string
}

if (!existsSync(CHROMIUM)) {
  // CI installs it (.ci/run); elsewhere say what is missing rather than pass quietly.
  if (process.env.CI === 'true') t.fail('missing chromium (apt-get install -y chromium)')
  else t.plan(0, 'missing chromium (apt-get install -y chromium)')
} else {
  t.test('a page from an allowed origin logs in with fetch; another origin is blocked', async (t) => {
    const allowed = await pageServer(t)
    const other = await pageServer(t)
    const api = await startApp(t, { CORS_ALLOWED_ORIGINS: allowed })
    await createUser(api.store, 'alice')
    await createUser(api.store, 'bob')

    const profile = mkdtempSync(join(tmpdir(), 'runway-chromium-'))
    t.teardown(() => rmSync(profile, { recursive: true, force: true }))
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    })
    t.teardown(() => browser.close())
    const page = await browser.newPage()
    const console: string[] = []
    page.on('console', (m) => console.push(m.text()))

    // What the single-page app does: JSON login (a preflighted request), then a Bearer call.
    const spa = (args: { api: string; username: string; password: string; contentType: string }) =>
      (async (): Promise<Outcome> => {
        const out: Outcome = {}
        try {
          const body =
            args.contentType === 'application/json'
              ? JSON.stringify({ username: args.username, password: args.password })
              : `username=${args.username}&password=${args.password}`
          const login = await fetch(`${args.api}/api/token/`, { method: 'POST', headers: { 'content-type': args.contentType }, body })
          const tokens = (await login.json()) as { access: string }
          out.login = { status: login.status, keys: Object.keys(tokens).sort() }
          const me = await fetch(`${args.api}/api/me/`, { headers: { authorization: `Bearer ${tokens.access}` } })
          out.me = { status: me.status, body: await me.json() }
        } catch (err) {
          out.error = String(err)
        }
        return out
      })()

    await page.goto(`${allowed}/`)
    const ok = await page.evaluate(spa, { api: api.url, username: 'alice', password: PASSWORD, contentType: 'application/json' })
    t.strictSame(
      ok,
      { login: { status: 200, keys: ['access', 'refresh'] }, me: { status: 200, body: { id: 1, username: 'alice' } } },
      'allowed origin: login and me work',
    )
    t.ok((await api.store.findUserByUsername('alice'))!.lastLogin, 'the login reached the API')

    await page.goto(`${other}/`)
    const blocked = await page.evaluate(spa, { api: api.url, username: 'bob', password: PASSWORD, contentType: 'application/json' })
    t.match(blocked, { error: /TypeError: Failed to fetch/ }, 'other origin: the browser refuses the JSON login')
    t.notOk(blocked.login, 'the page never saw an answer')
    t.equal((await api.store.findUserByUsername('bob'))!.lastLogin, null, 'the preflight failed, so the POST was never sent')
    t.ok(
      console.some((m) => /blocked by CORS policy/.test(m)),
      'Chromium says why',
    )

    // A form-encoded login needs no preflight: the API runs it (as Django does, row
    // cors.simple.denied), but the browser still hides the answer from the page.
    const simple = await page.evaluate(spa, { api: api.url, username: 'bob', password: PASSWORD, contentType: 'application/x-www-form-urlencoded' })
    t.match(simple, { error: /TypeError: Failed to fetch/ }, 'the answer is hidden')
    t.ok((await api.store.findUserByUsername('bob'))!.lastLogin, 'though the request reached the API')
  })
}
